// Socket helpers for the daemons and the hook: loopback TCP by default, Unix sockets when given a path.
// All file descriptors are created close-on-exec. No function here throws or logs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace gem::net {

/// Where to listen or connect: "host:port", "port" (host 127.0.0.1), "/abs/path" or "unix:path".
struct Endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string unix_path;  // non-empty: a Unix stream socket
  std::string to_string() const;
};

/// Parses an endpoint string as above. False with *err on a bad port or an empty string.
bool parse_endpoint(const std::string& text, Endpoint* out, std::string* err);

/// Mode of the daemons' Unix socket files: owner and group may connect, nobody else
/// (docs/design.md, "Trust"); the daemons also check each peer's uid (gem::Listener).
constexpr unsigned kSocketMode = 0660;

/// Listening socket, non-blocking. For TCP sets SO_REUSEADDR; for Unix removes a stale socket file
/// and creates the new one with `unix_mode` (never looser, whatever the umask).
/// Returns the fd or -1 with *err set (e.g. "bind 127.0.0.1:50051: Address already in use").
int listen_on(const Endpoint& ep, std::string* err, unsigned unix_mode = kSocketMode);

/// Blocking connect with a timeout in ms; returns a blocking fd with TCP_NODELAY, or -1 with *err.
int connect_to(const Endpoint& ep, int timeout_ms, std::string* err);

/// Writes all bytes, retrying on EINTR/EAGAIN, waiting at most timeout_ms in total (-1 = no limit).
/// MSG_NOSIGNAL: a closed peer gives false, never SIGPIPE.
bool send_all(int fd, const void* data, size_t len, int timeout_ms);

/// Sets O_NONBLOCK on or off. False on failure.
bool set_nonblocking(int fd, bool on);

/// Turns Nagle's algorithm off (TCP_NODELAY) on a connected TCP socket, both ends: the ones a daemon
/// accepts as well as the ones it connects. Token messages are tiny and each side often writes twice
/// without the other answering in between (a Heartbeat to a waiting peer, then its TokenGrant); with
/// Nagle's algorithm on, the second write waits for the first one's ACK, which the peer delays by up
/// to 40 ms (RFC 896; Linux's delayed ACK, tcp(7) TCP_QUICKACK), and the GPU idles while it holds a
/// grant. Measured: docs/scheduling.md, "Hand-offs". A failure only costs latency: not reported.
void set_tcp_nodelay(int fd);

}  // namespace gem::net
