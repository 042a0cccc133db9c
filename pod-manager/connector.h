// Non-blocking connections to a scheduler, for gem-pmgr's poll loop: nothing here waits.
#pragma once

#include <string>

#include "gem/net.h"

namespace gem::pmgr {

/// Starts connecting to `ep` without blocking. Returns a non-blocking, close-on-exec fd (owned by
/// the caller) whose connection may still be in progress: poll it for POLLOUT, then call
/// connect_result(). Returns -1 with *err when the attempt failed at once (no listener on a Unix
/// path, a bad address). TCP hosts are resolved with getaddrinfo: give numeric addresses (the
/// default) so that no name service is consulted; only the first address is tried.
int start_connect(const net::Endpoint& ep, std::string* err);

/// After POLLOUT (or POLLERR/POLLHUP) on a start_connect() fd: true when connected (TCP_NODELAY is
/// set then), false with *err naming the endpoint and the reason.
bool connect_result(int fd, const net::Endpoint& ep, std::string* err);

}  // namespace gem::pmgr
