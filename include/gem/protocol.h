// Wire protocol shared by libgemhook, gem-pmgr and gem-schd.
//
// Framing (all integers big-endian, "network order"):
//   u32 magic 'GEM1' | u16 version | u16 type | u64 request_id | u32 payload_len | payload
// The header is kHeaderSize bytes; payload_len is at most kMaxPayload. A frame with a wrong magic,
// an unknown version or type, an oversized or truncated payload, or trailing payload bytes is
// malformed: the receiver closes that connection and nothing else.
// Strings are u16 length + bytes, at most kMaxName bytes, printable ASCII only.
// Shares (request, limit) travel as parts per million (u32) so no floats cross the wire.
// Every integer read off the wire is untrusted: receivers convert times with wire_micros() (which
// saturates) and never do arithmetic on a raw u64.
//
// Version 2 added Heartbeat, TokenRevoke and Hello.secret. Version 3 (this one) added the memory
// session (Role::kHookMemory) and its messages MemReserve, MemReturn, MemQuery and MemState
// (docs/memory.md), and residency (docs/memory.md, "Residency"): MemUsage and Evict. A peer of another
// version is refused as "unsupported version N" (the hook, gem-pmgr and gem-schd of one release go
// together).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace gem::proto {

constexpr uint32_t kMagic = 0x47454D31;  // "GEM1"
constexpr uint16_t kVersion = 4;  // 4: ClientSettings.latency_us
constexpr size_t kHeaderSize = 20;
constexpr size_t kMaxPayload = 1024;
// Client IDs are Kubernetes "namespace/name" (63 + 1 + 253 bytes at most); Gemini allowed 63.
constexpr size_t kMaxName = 320;
/// Longest shared secret (Hello.secret), bytes.
constexpr size_t kMaxSecret = 128;
/// Wire times (µs) are clamped to this (about 31.7 years) before any arithmetic, so sums and
/// differences of two of them never overflow an int64.
constexpr int64_t kMaxWireMicros = int64_t{1} << 50;

/// A time in µs from the wire as a signed count, saturated to [0, kMaxWireMicros].
constexpr int64_t wire_micros(uint64_t v) {
  return v > static_cast<uint64_t>(kMaxWireMicros) ? kMaxWireMicros : static_cast<int64_t>(v);
}

/// Memory sizes (bytes) from the wire are clamped to this (1 PiB) before any arithmetic, so a sum
/// of many of them never overflows a uint64.
constexpr uint64_t kMaxWireBytes = uint64_t{1} << 50;

/// A size in bytes from the wire, saturated to [0, kMaxWireBytes].
constexpr uint64_t wire_bytes(uint64_t v) { return v > kMaxWireBytes ? kMaxWireBytes : v; }

/// Liveness (docs/design.md, "Liveness"): a daemon sends a Heartbeat every kHeartbeatPeriodMs to
/// each peer that waits for an answer from it (a queued token request, a renewal, a Hello), so a
/// waiter tells a legitimately queued request from a hung daemon: no byte for the waiter's
/// timeout means the daemon is stopped or hung.
constexpr int kHeartbeatPeriodMs = 200;

/// How long a new connection to gem-schd or gem-pmgr has to say Hello before it is closed, ms
/// (docs/design.md, "Limits").
constexpr int kHelloTimeoutMs = 1000;

/// True for a device UUID as the driver reports it and nvidia-smi prints it:
/// "GPU-" + 8-4-4-4-12 lowercase or uppercase hex digits. Nothing else is routed or used in a path.
bool valid_gpu_uuid(const std::string& uuid);

/// Who opens a connection (Hello.role): the hook's launch gate (to gem-pmgr), a pod manager (to
/// gem-schd), or the hook's memory session for one GPU (to gem-pmgr; docs/memory.md).
enum class Role : uint8_t { kHook = 1, kPodManager = 2, kHookMemory = 3 };

/// Reply to Hello and, unsolicited (request_id 0), after a config reload: the client's settings.
struct ClientSettings {
  uint32_t request_ppm = 0;  // REQUEST, share of GPU time in parts per million
  uint32_t limit_ppm = 0;    // LIMIT, share of GPU time in parts per million
  uint64_t gpu_mem_bytes = 0;  // GPU_MEM; 0 = no limit
  uint32_t flags = 0;          // kFlagUnifiedMemory, ...; unknown bits are ignored
  uint32_t latency_us = 0;     // latency=MS target in µs; 0 = not a latency client
};

/// ClientSettings.flags / MemState.flags: the client runs in unified-memory mode (um=on).
constexpr uint32_t kFlagUnifiedMemory = 1;

/// First message on every connection (hook -> gem-pmgr, gem-pmgr -> gem-schd).
struct Hello {
  Role role = Role::kHook;
  std::string client;       // resource-config.txt ID
  std::string device_uuid;  // "GPU-xxxxxxxx-xxxx-..." as nvidia-smi prints it; may be empty
  uint32_t pid = 0;
  /// Settings the client declares for itself (gem-pmgr --request/--limit/--gpu_mem, e.g. from pod
  /// annotations). Used by gem-schd only with --dynamic_clients and only for IDs that
  /// resource-config.txt does not list.
  bool has_declared = false;
  ClientSettings declared;
  /// The client's shared secret (gem-schd --secrets, gem-pmgr --secret_file, the hook's
  /// GEMINI_SECRET_FILE); empty when none. Printable, at most kMaxSecret bytes.
  std::string secret;
};

/// Ask for the token. last_burst_us: length of the client's last kernel burst (0 = unknown).
struct TokenRequest {
  uint64_t last_burst_us = 0;
};

/// The token is granted for quota_us of GPU time, counted from when the grant is sent.
struct TokenGrant {
  uint64_t quota_us = 0;
};

/// The token is given back. used_us: GPU busy time measured while it was held.
/// start_us/end_us: CLOCK_MONOTONIC µs of the first launch and of the end of the drain
/// (the pod manager merges the intervals of several processes); burst_us: measured burst.
/// again: the sender wants the token back at once (its launches are waiting). It is one message,
/// not a release and a request, so the scheduler never picks the next holder in between without
/// counting the releasing client as waiting; the answer is a TokenGrant with this request id.
struct TokenRelease {
  uint64_t used_us = 0;
  uint64_t burst_us = 0;
  uint64_t start_us = 0;
  uint64_t end_us = 0;
  bool again = false;
  /// µs the sender ran launches without a token since its last release (its pod manager or the
  /// scheduler could not be reached: "unthrottled"). Added to the client's charge, which a report
  /// may raise and never lower (docs/design.md, "Trust"), so a client that ran through a daemon
  /// fault claims no catch-up afterwards from those that waited (docs/hardening.md, drills).
  uint64_t unthrottled_us = 0;
};

/// The holder's quota ran out while its launches still run: may it keep the token for another
/// quota without stopping? used_us/burst_us as in TokenRelease, counted since the grant or the
/// last renewal. Answered with a TokenGrant: quota_us > 0 renews (charged as a release and a new
/// grant); 0 means no: drain and send a TokenRelease. Saves an uncontended client the drain.
struct TokenRenew {
  uint64_t used_us = 0;
  uint64_t burst_us = 0;
};

/// "I am alive and your request is still queued" (daemon -> waiter). No payload; request_id 0.
struct Heartbeat {};

/// The token was taken back (gem-schd -> gem-pmgr -> the hooks holding it): the holder kept it
/// past its quota + the lease grace. held_us: how long it was held, as the scheduler charged it.
/// The hook shuts its gate on receipt; a later TokenRelease for that grant is ignored.
struct TokenRevoke {
  uint64_t held_us = 0;
};

/// Memory session (hook -> gem-pmgr, docs/memory.md): ask for a lease. The session's lease grows by
/// want_bytes when the client's total on this GPU stays within its limit, else by need_bytes when
/// that fits, else by nothing. existing: need_bytes are already allocated (re-sent after
/// reconnecting to a restarted gem-pmgr), so they are granted in full even over the limit.
/// Answered with MemState (granted_bytes = what the lease grew by; 0 = refused). Sizes in bytes;
/// the receiver clamps them with wire_bytes().
struct MemReserve {
  uint64_t need_bytes = 0;
  uint64_t want_bytes = 0;
  bool existing = false;
};

/// Memory session (hook -> gem-pmgr): give back `bytes` of the sender's own lease (saturating at
/// what it holds). No answer.
struct MemReturn {
  uint64_t bytes = 0;
};

/// Memory session (hook -> gem-pmgr): what is the limit now? Answered with MemState
/// (granted_bytes 0). No payload.
struct MemQuery {};

/// gem-pmgr -> hook on a memory session: the answer to Hello (once the limit is known), MemReserve
/// and MemQuery (their request id), and unsolicited (request id 0) when the limit changes.
/// limit_bytes: the client's GPU_MEM on this GPU, 0 = no limit. client_held_bytes: the leases of
/// all memory sessions of the client on this GPU, after this answer's grant. granted_bytes: what
/// the answered MemReserve added to the sender's lease (0 = refused, and 0 in every other answer).
struct MemState {
  uint64_t limit_bytes = 0;
  uint64_t client_held_bytes = 0;
  uint64_t granted_bytes = 0;
  uint32_t flags = 0;  // ClientSettings.flags of the client (kFlagUnifiedMemory)
};

/// gem-pmgr -> gem-schd (docs/memory.md, "Residency"): the client's GPU memory on this scheduler's
/// GPU, the sum of its memory sessions' leases there. flags: the ClientSettings.flags the client
/// runs with (kFlagUnifiedMemory: its memory can be moved to the host). Sent when the figure moved
/// by at least kUsageStep since the last one sent, or fell to 0, at most once per kUsagePeriodMs;
/// request id 0, no answer. The receiver clamps bytes with wire_bytes().
struct MemUsage {
  uint64_t bytes = 0;
  uint32_t flags = 0;
};

/// gem-schd -> gem-pmgr -> every launch-gate connection (Role::kHook) of the client on that GPU's
/// route: "move your managed memory to the host" (the GPU's memory budget needs it for another
/// client). No payload; request id 0, no answer. The hook brings its memory back itself before it
/// next runs (docs/memory.md, "Residency").
struct Evict {
  uint32_t flags = 0;  // kEvictDemandPaging: do not prefetch back; pages fault back on demand
};

/// Evict.flags: gem-schd --residency demand (the comparison point without bulk prefetch: the
/// client's memory goes to the host and comes back page by page as its kernels touch it).
constexpr uint32_t kEvictDemandPaging = 1;

/// MemUsage is sent when the usage moved by at least this since the last report (bytes)...
constexpr uint64_t kUsageStep = uint64_t{64} << 20;
/// ...and at most once per this period (ms).
constexpr int kUsagePeriodMs = 200;

enum class ErrorCode : uint16_t {
  kUnknownClient = 1,      // name not in resource-config.txt
  kSchedulerUnavailable = 2,  // gem-pmgr cannot reach gem-schd
  kProtocol = 3,           // malformed or unexpected message
  kRemoved = 4,            // client dropped from resource-config.txt
  kDenied = 5,             // peer credentials or shared secret refused, or the ID is already connected
  kBusy = 6,               // the daemon's connection cap is reached
};

struct Error {
  ErrorCode code = ErrorCode::kProtocol;
  std::string message;
};

using Body = std::variant<Hello, ClientSettings, TokenRequest, TokenGrant, TokenRelease, Error, TokenRenew,
                          Heartbeat, TokenRevoke, MemReserve, MemReturn, MemQuery, MemState, MemUsage, Evict>;

struct Message {
  uint64_t request_id = 0;
  Body body;
};

/// Appends the frame for `msg` to `out`. Returns false (and appends nothing) when a string is
/// longer than kMaxName or the payload would exceed kMaxPayload. Never throws except std::bad_alloc.
bool encode(const Message& msg, std::vector<uint8_t>* out);

enum class DecodeStatus { kOk, kNeedMore, kMalformed };

struct DecodeResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  size_t consumed = 0;  // bytes of the frame, when kOk
  Message msg;
  std::string error;  // why, when kMalformed
};

/// Decodes the first frame at the front of [data, data+len). Pure; no allocation beyond the message.
DecodeResult decode(const uint8_t* data, size_t len);

/// Accumulates bytes read from a stream socket and yields whole frames.
/// Not thread-safe; one per connection. Consumed bytes are dropped when they are at least half of
/// the buffer, so appending and decoding n bytes costs O(n) in total.
class FrameBuffer {
 public:
  void append(const uint8_t* data, size_t len);
  /// kOk fills *msg and drops the frame; kNeedMore waits for bytes; kMalformed: close the connection.
  DecodeStatus next(Message* msg, std::string* error);
  size_t buffered() const { return buf_.size() - start_; }

 private:
  std::vector<uint8_t> buf_;
  size_t start_ = 0;
};

const char* type_name(const Body& body);

}  // namespace gem::proto
