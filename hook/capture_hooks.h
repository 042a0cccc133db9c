// Stream captures in progress in this process, counted by the GEM_WRAP bodies of the capture
// functions of cuda_hooks.def (cuStreamBeginCapture*, cuStreamBeginCaptureToGraph*,
// cuStreamEndCapture*; the bodies are in capture_hooks.cpp, declared with the others in
// mem_hooks.h). The cache emptier (cache_emptier.h) never empties while one is in progress: freeing
// memory during a capture in the global or thread-local mode invalidates it (CUDA Programming
// Guide, "Prohibited and unhandled operations").
//
// A capture counts from just before its begin call (so a check that sees none cannot race a capture
// already starting) until the end call that leaves its stream not capturing, whatever that call
// returns (an invalidated capture ends too). A capture whose stream is destroyed without an end
// call stays counted: emptying then stays off for the process, the safe side.
// Thread-safety: lock-free; active_captures() may be called from any thread.
#pragma once

namespace gem::hook {

/// Stream captures begun and not yet ended in this process (any thread, any stream).
int active_captures();

}  // namespace gem::hook
