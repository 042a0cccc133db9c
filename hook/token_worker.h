// The worker thread of one gate: the I/O edge of the token protocol. The decisions (when to ask,
// open, shut, drain, renew, release, run unthrottled, move memory) are TokenMachine's
// (token_machine.h, scenario-tested); this class performs what it returns (the waits, the pod
// manager's messages, the gate, the slice timer, the residency moves, counters and log lines) and
// reports each result back.
//
// Units: Micros (µs on gem/clock.h's monotonic clock); quotas and bursts go on the wire as µs.
// Ownership: one per Gate (a member), with the gate's connection to the pod manager (PmgrClient).
// The gate starts the thread (detached) at the first launch that finds it shut; it runs run() for
// the life of the process. A fork()ed child has no worker until its first launch waits.
// Threads: run() and the state here belong to the worker thread alone, so none of it is locked;
// reset_after_fork() runs in a fork()ed child before any other thread. It reaches the gate only
// through Gate's worker-side calls (open, shut, wait_in_flight, wait_for_demand_for, has_waiters and
// the launch counts), and the GPU through the SliceTimer, which orders its own locks.
// Settings: reads the process's settings() (hook/settings.h) where it needs them and keeps no copy:
// the client, the pod manager's address, the secret, GEMINI_PMGR_TIMEOUT_MS and GEMINI_FAIL_CLOSED
// are per process, the same for every per-device session; the Hello names the device by
// device_uuid() (looked up once, on the worker thread). If the pod manager falls silent for
// GEMINI_PMGR_TIMEOUT_MS while a request waits, PmgrClient reports the connection broken.
// Counters: tokens (grants and renewals), unthrottled_launches, revocations (hook/stats.h).
#pragma once

#include <string>

#include "driver_api.h"
#include "gem/clock.h"
#include "pmgr_client.h"
#include "residency.h"
#include "token_machine.h"

namespace gem::hook {

class Gate;
class SliceTimer;

class TokenWorker {
 public:
  /// `device`: the gate's CUDA device ordinal; `gate` and `timer` outlive the worker.
  TokenWorker(CUdevice device, Gate& gate, SliceTimer& timer);
  TokenWorker(const TokenWorker&) = delete;
  TokenWorker& operator=(const TokenWorker&) = delete;

  /// The worker thread's body; never returns.
  [[noreturn]] void run();

  /// In a fork()ed child: the connection belongs to the parent.
  void reset_after_fork() {
    pmgr_.close();
    machine_.reset_after_fork();
  }

 private:
  /// What the machine reads: the gate's counts, the connection, the residency, the clock.
  TokenFacts facts();
  /// Performs `acts` in order; the last one is a wait or an action with a result, which is
  /// reported to the machine: returns the machine's next actions.
  TokenActions perform(const TokenActions& acts);
  /// Performs one action without a result (gate, timer, memory, counters, log).
  void perform_side(const TokenAction& a);

  const CUdevice device_;
  Gate& gate_;
  SliceTimer& timer_;
  PmgrClient pmgr_;
  Residency residency_{device_, timer_};
  TokenMachine machine_;
  std::string uuid_;  // the device's UUID, named in the Hello
  std::string why_;   // why the last request got no token
};

}  // namespace gem::hook
