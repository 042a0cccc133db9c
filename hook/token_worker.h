// The token protocol of one gate with the pod manager, spoken by the gate's worker thread. When
// launches wait it asks for the token, opens the gate for the quota and then, at the end of the
// quota, renews the token if the scheduler allows or shuts the gate; it also shuts it when the
// client is idle (no launch for 0.5 ms + GEMINI_IDLE_MS and its GPU work done, whatever is left of
// the quota: work conservation, docs/scheduling.md; 0.2 + 0.2 ms for a latency client), or at once
// when the token is revoked. It then
// has the slice drained and measured (SliceTimer) and gives the token back with that GPU time,
// asking again in the same message when the client is still busy.
// If the pod manager or scheduler cannot be reached, or the pod manager falls silent for
// GEMINI_PMGR_TIMEOUT_MS while a request waits, it leaves the gate open ("unthrottled") and asks
// again every second *with the gate open*, so a stopped daemon costs the program one timeout at
// most; with GEMINI_FAIL_CLOSED=1 launches wait instead. While holding the token it sleeps on the
// pod manager's connection, so a TokenRevoke shuts the gate at once. After an idle release it tells
// the cache emptier (cache_emptier.h), which empties PyTorch's cache on a thread of its own.
//
// Units: Micros (µs on gem/clock.h's monotonic clock); quotas and bursts go on the wire as µs.
// Ownership: one per Gate (a member), with the gate's connection to the pod manager (PmgrClient).
// The gate starts the thread (detached) at the first launch that finds it shut; it runs run() for
// the life of the process. A fork()ed child has no worker until its first launch waits.
// Threads: run() and the state here belong to the worker thread alone, so none of it is locked;
// reset_after_fork() runs in a fork()ed child before any other thread. It reaches the gate only
// through Gate's worker-side calls (open, shut, wait_in_flight, wait_for_demand, has_waiters and
// the launch counts), and the GPU through the SliceTimer, which orders its own locks.
// Settings: reads the process's settings() (hook/settings.h) where it needs them and keeps no copy:
// the client, the pod manager's address, the secret, GEMINI_PMGR_TIMEOUT_MS and GEMINI_FAIL_CLOSED
// are per process, the same for every per-device session; the Hello names the device by
// device_uuid() (looked up once, on the worker thread).
// Counters: tokens (grants and renewals), unthrottled_launches, revocations (hook/stats.h).
#pragma once

#include <string>

#include "driver_api.h"
#include "gem/clock.h"
#include "pmgr_client.h"
#include "residency.h"

namespace gem::hook {

class Gate;
class SliceTimer;

class TokenWorker {
 public:
  /// `device`: the gate's CUDA device ordinal; `gate` and `timer` outlive the worker.
  TokenWorker(CUdevice device, Gate& gate, SliceTimer& timer) : device_(device), gate_(gate), timer_(timer) {}
  TokenWorker(const TokenWorker&) = delete;
  TokenWorker& operator=(const TokenWorker&) = delete;

  /// The worker thread's body; never returns.
  [[noreturn]] void run();

  /// In a fork()ed child: the connection belongs to the parent.
  void reset_after_fork() { pmgr_.close(); }

 private:
  enum class Outcome { kGranted, kUnthrottled, kRetryLater };

  Outcome obtain(Micros* quota);
  Outcome answer(PmgrClient::Answer a, Micros granted, Micros* quota);
  /// What to do without a token: kUnthrottled, or kRetryLater with GEMINI_FAIL_CLOSED=1.
  Outcome degraded() const;
  /// Keeps the gate open without a token until one is granted (asking again every second while
  /// the program launches); returns with the gate shut, the unthrottled work drained and *quota
  /// set to what is left of the grant.
  void run_unthrottled(Micros* quota);
  /// Keeps the gate open until `until` (returns true), until the client is idle (false), or until
  /// the token is revoked or the pod manager lost (true); at `until` the token is renewed if the
  /// scheduler allows.
  bool hold(Micros until);
  bool renew(Micros now, Micros* until);
  /// Idle: waits for a launching thread at the gate; a unified-memory client meanwhile acts on an
  /// Evict from its pod manager (docs/memory.md, "Residency").
  void wait_for_demand();

  const CUdevice device_;
  Gate& gate_;
  SliceTimer& timer_;
  PmgrClient pmgr_;
  Residency residency_{device_, timer_};
  std::string uuid_;       // the device's UUID, named in the Hello
  Micros retry_at_ = 0;    // no request before this after a failure
  bool warned_ = false;    // the no-token warning was logged since the last grant
  std::string why_;        // why the last request got no token
  Micros burst_ = 0;       // µs of the burst in progress (slices since the last idle release)
  Micros last_burst_ = 0;  // µs of the last finished burst
  Micros unthrottled_us_ = 0;  // µs with launches while unthrottled, reported with the next release
};

}  // namespace gem::hook
