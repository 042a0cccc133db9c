// Real driver functions and the map between them and the hook's wrappers.
// The real libcuda.so.1 is found at run time (never linked). Thread-safe after resolve().
#pragma once

#include "driver_api.h"

namespace gem::hook {

using DlsymFn = void* (*)(void*, const char*);

/// glibc's dlsym, reached through dlvsym (glibc 2.34 removed __libc_dlsym). Never null.
DlsymFn real_dlsym_fn();

/// real_dlsym_fn()(handle, name). Not for RTLD_NEXT (it would search after this library).
void* real_dlsym(void* handle, const char* name);

namespace real {
#define GEM_LAUNCH(name, params, args, stream, ptsz) extern decltype(&::name) name;
#define GEM_LOOKUP(name) extern decltype(&::name) name;
#define GEM_CTX_END(name, params, args, device, ctx) extern decltype(&::name) name;
#define GEM_WRAP(name, params, args) extern decltype(&::name) name;
#define GEM_USE(name) extern decltype(&::name) name;
#define GEM_USE_OR(name, older) extern decltype(&::name) name;
#include "cuda_hooks.def"
}  // namespace real

/// Loads the real pointers from libcuda.so.1 once. Cheap after the first call; no blocking work
/// beyond the loader's own lock (safe inside dlsym and cuGetProcAddress). False if no driver.
/// may_load: dlopen libcuda.so.1 if the process has not loaded it yet (only where the program
/// called a driver function itself; a dlsym look-up never drags the driver into a process).
bool resolve(bool may_load);

/// If `fn` is a real driver function the hook wraps (or one of its own wrappers), the wrapper;
/// else `fn` unchanged. Never loads the driver.
/// Matching by address keeps versioned and _ptsz variants apart
/// (cuda.h maps the unversioned names to _v2 and later versions, whose signatures differ).
void* wrap(void* fn);

}  // namespace gem::hook
