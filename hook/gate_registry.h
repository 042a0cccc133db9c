// The registry of this process's gates: one Gate per CUDA device, made at the first launch on that
// device and never destroyed (launches may still come while the process exits), and the
// process-wide events every gate follows: fork() (the child starts with shut gates and no worker
// threads), exit (from stop_gates_at_exit() on no gate calls into the driver) and contexts about
// to be destroyed (forget_contexts()).
//
// Ownership: the registry owns the gates (an array of kMaxDevices pointers, filled once per
// device); everyone else borrows them for the life of the process.
// Thread-safety: every function here is thread-safe. current_gate() is on the launch fast path:
// after a thread's first launch in a context it costs one cuCtxGetCurrent and a compare with a
// thread-local cache (initial-exec TLS: no __tls_get_addr call); it takes the registry's lock only
// to make a device's gate, and never holds it together with a gate's own locks.
// The at-exit and after-fork handlers are registered when the first gate is made.
#pragma once

#include "driver_api.h"

namespace gem::hook {

class Gate;

/// The gate of the device of the calling thread's current context; nullptr when there is no
/// current context or gating is off (POD_NAME unset, or no driver). Cached per thread.
Gate* current_gate();

/// The same without making a gate: nullptr when no launch has reached this device yet (its
/// synchronize calls then concern no token). Cached per thread like current_gate().
Gate* current_gate_if_made();

/// The context current_gate() last found current on the calling thread (nullptr before its first
/// call): the context the thread's launches go to.
CUcontext current_gate_context();

/// Calls Gate::forget_context(ctx) on the gate of `device` (-1: every gate).
void forget_contexts(CUdevice device, CUcontext ctx);

/// True when every gate is quiet (Gate::quiet(): shut, nothing inside the driver or waiting), so the
/// process neither holds nor wants any token; true with no gate. For the cache emptier.
bool gates_quiet();

/// From the process's exit on, gates stop calling into the driver (it is being torn down): sets
/// the flag stopping_at_exit() reads, then waits for a drain in progress on each gate.
void stop_gates_at_exit();

/// True from stop_gates_at_exit() on: the driver must not be called any more.
bool stopping_at_exit();

}  // namespace gem::hook
