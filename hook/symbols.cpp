#include "symbols.h"

#include <dlfcn.h>

#include <atomic>
#include <mutex>


namespace gem::hook {

namespace real {
#define GEM_LAUNCH(name, params, args, stream, ptsz) decltype(&::name) name = nullptr;
#define GEM_LOOKUP(name) decltype(&::name) name = nullptr;
#define GEM_CTX_END(name, params, args, device, ctx) decltype(&::name) name = nullptr;
#define GEM_WRAP(name, params, args) decltype(&::name) name = nullptr;
#define GEM_USE(name) decltype(&::name) name = nullptr;
#define GEM_USE_OR(name, older) decltype(&::name) name = nullptr;
#include "cuda_hooks.def"
}  // namespace real

namespace {

void* no_dlsym(void*, const char*) { return nullptr; }

DlsymFn find_real_dlsym() {
  // glibc >= 2.34 versions dlsym GLIBC_2.34; older ones GLIBC_2.2.5 (x86-64).
  void* p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
  if (p == nullptr) p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
  return p != nullptr ? reinterpret_cast<DlsymFn>(p) : no_dlsym;
}

struct Pair {
  void* real;
  void* wrapper;
};

constexpr int kWrapped = 0
#define GEM_LAUNCH(name, params, args, stream, ptsz) +1
#define GEM_LOOKUP(name) +1
#define GEM_CTX_END(name, params, args, device, ctx) +1
#define GEM_WRAP(name, params, args) +1
#include "cuda_hooks.def"
    ;

Pair g_pairs[kWrapped];
std::atomic<bool> g_resolved{false};
std::mutex g_resolve_mu;

template <typename T>
void load(void* lib, T* slot, const char* name) {
  *slot = reinterpret_cast<T>(real_dlsym(lib, name));
}

}  // namespace

DlsymFn real_dlsym_fn() {
  static const DlsymFn fn = find_real_dlsym();
  return fn;
}

void* real_dlsym(void* handle, const char* name) { return real_dlsym_fn()(handle, name); }

bool resolve(bool may_load) {
  if (g_resolved.load(std::memory_order_acquire)) return true;
  // Loading libcuda runs its constructors, which may call dlsym and come back here.
  static thread_local bool resolving = false;
  if (resolving) return false;
  std::lock_guard<std::mutex> lk(g_resolve_mu);
  resolving = true;
  struct Done {
    ~Done() { resolving = false; }
  } done;
  if (g_resolved.load(std::memory_order_relaxed)) return true;
  void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (lib == nullptr && may_load) lib = dlopen("libcuda.so.1", RTLD_LAZY);
  if (lib == nullptr) return false;
  int i = 0;
#define GEM_LAUNCH(name, params, args, stream, ptsz)                                             \
  load(lib, &real::name, #name);                                                   \
  g_pairs[i++] = {reinterpret_cast<void*>(real::name), reinterpret_cast<void*>(&::name)};
#define GEM_LOOKUP(name) GEM_LAUNCH(name, , , , )
#define GEM_CTX_END(name, params, args, device, ctx) GEM_LAUNCH(name, , , , )
#define GEM_WRAP(name, params, args) GEM_LAUNCH(name, , , , )
#define GEM_USE(name) load(lib, &real::name, #name);
#define GEM_USE_OR(name, older) \
  load(lib, &real::name, #name);  \
  if (real::name == nullptr) load(lib, &real::name, #older);
#include "cuda_hooks.def"
  g_resolved.store(true, std::memory_order_release);
  return true;
}

void* wrap(void* fn) {
  if (fn == nullptr || !resolve(false)) return fn;
  for (const Pair& p : g_pairs) {
    if (fn == p.real || fn == p.wrapper) return p.real == nullptr ? fn : p.wrapper;
  }
  return fn;
}

}  // namespace gem::hook
