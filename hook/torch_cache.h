// torch.cuda.empty_cache(), called through the CPython C API of the process, for the cache emptier
// (cache_emptier.h; docs/memory.md "Cache emptying" says why this way and on which versions).
//
// Nothing is linked: the C API is looked up with dlsym(RTLD_DEFAULT, ...) on first use; a process
// without CPython 3.7+ in its global symbol scope gets kNoPython and nothing else happens. torch is
// never imported: only a module already in sys.modules is used, and torch.cuda.empty_cache()
// itself does nothing until the program has initialised CUDA in PyTorch.
// The one Python object the hook adds is a function registered with `atexit` at the first call that
// holds the GIL: it tells the hook the interpreter is finishing, after which no call takes the GIL
// again (a thread taking it during finalisation is stopped by CPython).
//
// Threads: empty_torch_cache() takes the GIL, waiting as long as the program holds it; call it only
// from a thread of the hook's own that holds no lock another thread may need meanwhile, is not
// inside a CUDA call and never holds the GIL already (the emptier thread). Not reentrant.
#pragma once

namespace gem::hook {

enum class TorchEmpty {
  kCalled,    // torch.cuda.empty_cache() returned
  kRaised,    // it raised (the exception is cleared)
  kDeclined,  // still_wanted() said no once the GIL was held
  kNoTorch,   // torch (with torch.cuda.empty_cache) is not in sys.modules
  kNoPython,  // no usable CPython runtime, or it is not initialised or is finishing
};

/// Whether the process has the CPython C API the hook needs (looked up on the first call; then cheap).
bool cpython_present();

/// In a fork()ed child: the parent's emptier thread, whatever it was doing, is not in this process.
void torch_cache_after_fork();

/// Takes the GIL; with it held, if torch is imported and `still_wanted(ctx)` is true, calls
/// torch.cuda.empty_cache(). Releases the GIL before returning.
TorchEmpty empty_torch_cache(bool (*still_wanted)(void* ctx), void* ctx);

}  // namespace gem::hook
