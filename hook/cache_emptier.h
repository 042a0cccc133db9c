// Cache emptying (issue 8; docs/memory.md "Cache emptying"): once the client has given its token
// back after going idle and has no work in flight, PyTorch's caching allocator is emptied
// (torch.cuda.empty_cache(), torch_cache.h) so the blocks it caches but does not use stop occupying
// the GPU while the client does not run.
//
// When: a gate's token worker calls note_idle_release() right after an idle release (the token
// given back with no launch waiting). The emptier thread, a thread of its own started at the first
// such call, empties once per release, after the process has gone GEMINI_EMPTY_CACHE_MS (50) without
// a token since it, at most once per kMinGap (200 ms; 5 a second), and only while
//  - emptying is wanted: GEMINI_EMPTY_CACHE=1, or the variable unset and the client in
//    unified-memory mode (unified_memory_mode() below); GEMINI_EMPTY_CACHE=0 turns it off;
//  - no token was granted in this process since the release (note_token_granted()), and every
//    gate is quiet (shut, nothing inside the driver or waiting at it): the client neither holds
//    nor wants the token;
//  - no stream capture is in progress in the process (capture_state.h): the release is kept and
//    emptied once the captures have ended, if the conditions still hold;
//  - the process is not exiting.
// They are checked before taking the GIL and again with it held, right before the call.
//
// Why a thread of its own: taking the GIL may wait for as long as the program holds it (a PyTorch
// thread blocked at the launch gate holds it until the token comes), and emptying synchronises the
// device; neither may ever delay the token worker or a launching thread. The worker's part is one
// short lock and a notify. Programs without CPython or without torch imported pay one look-up of
// the C API per process (and, with Python but no torch, one GIL hand-off per emptying attempt).
//
// Thread-safety: note_idle_release() is thread-safe and never blocks beyond a short lock; it never
// calls the driver or Python. After fork() the child has no emptier thread (a new one starts at its
// first idle release). Counter: cache_empties (hook/stats.h).
#pragma once

namespace gem::hook {

/// A gate's token worker gave the token back after the client went idle, with no launch waiting.
void note_idle_release();

/// A gate's token worker was granted (or renewed) the token: a release noted before it is stale
/// and is not emptied. Lock-free (one atomic increment); never blocks.
void note_token_granted();

}  // namespace gem::hook
