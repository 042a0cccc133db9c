// The process's stream captures as the hook sees them, and each thread's capture mode: the inputs
// of the capture rule (capture_rule.h; docs/design.md, "Stream capture").
//
// Fed by the GEM_WRAP bodies of capture_hooks.cpp: cuStreamBeginCapture* and
// cuStreamBeginCaptureToGraph* (a capture counts from just before its begin call, so a look that
// sees none cannot race a capture already starting, until the end call that leaves its stream not
// capturing, whatever that call returns: an invalidated capture ends too), cuStreamEndCapture*, and
// cuThreadExchangeStreamCaptureMode (the calling thread's mode). A capture whose stream is destroyed
// without an end call stays counted: the hook then stays on the safe side for the process.
//
// Cost: with no capture in progress every query here is one atomic load (the launch fast path
// pays that); with captures in progress a view takes a short lock over at most kMaxCaptures
// entries. Thread-safety: every function is thread-safe. After fork() the child forgets the
// parent's captures (CUDA does not survive fork).
#pragma once

#include "capture_rule.h"
#include "driver_api.h"

namespace gem::hook {

/// Captures tracked one by one; more at once are counted as begun by another thread in GLOBAL mode
/// (the strictest reading).
constexpr int kMaxCaptures = 256;

/// Captures begun and not yet ended in this process (any thread, any stream). One atomic load.
int active_captures();
/// active_captures() > 0.
inline bool capture_in_progress() { return active_captures() > 0; }

/// What the calling thread sees (capture_rule.h). No lock when no capture is in progress.
CaptureView capture_view();
/// capture_allows(capture_view(), c): whether the calling thread may make a call of kind `c` now.
/// Only a look: a capture may begin on another thread right after it. To make the call, use
/// with_capture_rule().
bool hook_may(HookCall c);

/// Runs `call` (driver calls of kind `c`) if the calling thread may make them now, and holds every
/// capture from beginning until it returns: a capture begun between the look and the call would be
/// invalidated by it (seen on the stand-in: a pacing wait on one thread invalidated another
/// thread's GLOBAL capture begun in between). Returns whether `call` ran. A begin call waits for at
/// most the calls in progress (a drain, a pacing wait, a prefetch: bounded by the work queued).
/// Lock order: the caller's own locks, then this one (shared; capture begin takes it exclusively
/// and holds nothing else).
template <typename F>
bool with_capture_rule(HookCall c, F&& call);

/// True when a launch onto `stream` (`ptsz`: stream 0 is the per-thread default stream) would be
/// recorded into a capture rather than run: no capture in progress -> false without a driver call;
/// the legacy stream -> false (it cannot be captured); else cuStreamIsCapturing (allowed during
/// capture, CUDA Programming Guide), active or invalidated.
bool stream_captures(CUstream stream, bool ptsz);

/// Sets the calling thread's capture mode through the driver (cuThreadExchangeStreamCaptureMode)
/// and notes it; for the hook's own threads, which set themselves RELAXED.
void set_thread_capture_mode(CUstreamCaptureMode mode);

namespace detail {
/// Shared by with_capture_rule() while its call runs; exclusive in capture_begin_note().
void rule_lock_shared();
void rule_unlock_shared();
}  // namespace detail

template <typename F>
bool with_capture_rule(HookCall c, F&& call) {
  detail::rule_lock_shared();
  const bool ok = hook_may(c);
  if (ok) call();
  detail::rule_unlock_shared();
  return ok;
}

// For the GEM_WRAP bodies (capture_hooks.cpp) only.
/// Before a begin call on `stream` in `mode`: counts the capture; returns its slot for
/// capture_begun().
int capture_begin_note(CUstream stream, bool ptsz, CUstreamCaptureMode mode);
/// After it: `ok` false takes the count back.
void capture_begun(int slot, bool ok);
/// After an end call that left `stream` not capturing.
void capture_ended(CUstream stream, bool ptsz);
/// After a successful cuThreadExchangeStreamCaptureMode that set the thread's mode to `mode`.
void thread_mode_set(CUstreamCaptureMode mode);

}  // namespace gem::hook
