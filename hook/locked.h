// Two helpers the hook's thread-safe units share (mem_tracker, managed_ranges, pool_registry):
//  - locked(mu, fallback, f): runs f() under `mu`; a failure of the hook's own machinery (an
//    exception: std::bad_alloc from a map) never reaches the program: `fallback` comes back instead
//    (the hook lets the program's call through rather than fail it).
//  - PerProcess<T>: one T per process, made at the first get(), never destroyed (wrappers may run
//    during exit); a fork()ed child gets a fresh T (CUDA does not survive fork, and the parent's
//    lock may be held by a thread the child does not have: the old T is left behind).
// Header-only; no driver calls.
#pragma once

#include <pthread.h>

#include <atomic>
#include <mutex>

namespace gem::hook {

/// f() under `mu`, or `fallback` when f (or taking the lock) throws. Never throws.
template <typename R, typename F>
R locked(std::mutex& mu, R fallback, F&& f) noexcept {
  try {
    std::lock_guard<std::mutex> lk(mu);
    return f();
  } catch (...) {
    return fallback;
  }
}

/// f() under `mu`; an exception is swallowed. Never throws.
template <typename F>
void locked(std::mutex& mu, F&& f) noexcept {
  try {
    std::lock_guard<std::mutex> lk(mu);
    f();
  } catch (...) {
  }
}

/// The process's one T (see above). get() is thread-safe and lock-free after the first call.
template <typename T>
class PerProcess {
 public:
  static T& get() {
    T* t = slot().load(std::memory_order_acquire);
    if (t != nullptr) return *t;
    static const bool first = [] {
      slot().store(new T(), std::memory_order_release);
      pthread_atfork(nullptr, nullptr, &PerProcess::after_fork_child);
      return true;
    }();
    (void)first;
    return *slot().load(std::memory_order_acquire);
  }

 private:
  static std::atomic<T*>& slot() {
    static std::atomic<T*> s{nullptr};
    return s;
  }
  static void after_fork_child() { slot().store(new T(), std::memory_order_release); }
};

}  // namespace gem::hook
