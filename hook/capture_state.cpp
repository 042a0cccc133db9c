#include "capture_state.h"

#include <pthread.h>

#include <atomic>
#include <mutex>
#include <new>
#include <shared_mutex>

#include "symbols.h"

namespace gem::hook {

namespace {

struct Entry {
  bool used = false;
  CUstream stream = nullptr;
  bool per_thread = false;  // the per-thread default stream: the owner names it
  pthread_t owner{};
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
};

std::atomic<int> g_active{0};
std::shared_mutex g_rule_mu;  // with_capture_rule() shared, capture begin exclusive; before g_mu
std::mutex g_mu;
Entry g_entries[kMaxCaptures];  // under g_mu
int g_overflow = 0;             // captures beyond kMaxCaptures (under g_mu)

__attribute__((tls_model("initial-exec"))) thread_local CUstreamCaptureMode tl_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;

void after_fork_child() {
  new (&g_rule_mu) std::shared_mutex();
  new (&g_mu) std::mutex();
  for (Entry& e : g_entries) e = Entry{};
  g_overflow = 0;
  g_active.store(0);
}

bool is_legacy(CUstream stream, bool ptsz) { return (stream == nullptr && !ptsz) || stream == CU_STREAM_LEGACY; }

bool is_per_thread(CUstream stream, bool ptsz) {
  return (stream == nullptr && ptsz) || stream == CU_STREAM_PER_THREAD;
}

bool same(const Entry& e, CUstream stream, bool per_thread) {
  if (!e.used || e.per_thread != per_thread) return false;
  return per_thread ? pthread_equal(e.owner, pthread_self()) != 0 : e.stream == stream;
}

}  // namespace

int active_captures() { return g_active.load(std::memory_order_seq_cst); }

namespace detail {
void rule_lock_shared() { g_rule_mu.lock_shared(); }
void rule_unlock_shared() { g_rule_mu.unlock_shared(); }
}  // namespace detail

CaptureView capture_view() {
  CaptureView v;
  v.thread_mode = tl_mode;
  if (g_active.load(std::memory_order_seq_cst) == 0) return v;
  const pthread_t self = pthread_self();
  std::lock_guard<std::mutex> lk(g_mu);
  v.active = g_active.load(std::memory_order_relaxed);
  v.others_global = g_overflow;
  for (const Entry& e : g_entries) {
    if (!e.used) continue;
    if (pthread_equal(e.owner, self)) {
      if (e.mode != CU_STREAM_CAPTURE_MODE_RELAXED) ++v.own_strict;
    } else if (e.mode == CU_STREAM_CAPTURE_MODE_GLOBAL) {
      ++v.others_global;
    }
  }
  return v;
}

bool hook_may(HookCall c) { return capture_allows(capture_view(), c); }

bool stream_captures(CUstream stream, bool ptsz) {
  if (g_active.load(std::memory_order_seq_cst) == 0 || is_legacy(stream, ptsz)) return false;
  auto query = ptsz ? real::cuStreamIsCapturing_ptsz : real::cuStreamIsCapturing;
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
  return query != nullptr && query(stream, &st) == CUDA_SUCCESS && st != CU_STREAM_CAPTURE_STATUS_NONE;
}

void set_thread_capture_mode(CUstreamCaptureMode mode) {
  if (real::cuThreadExchangeStreamCaptureMode == nullptr) return;
  CUstreamCaptureMode m = mode;
  if (real::cuThreadExchangeStreamCaptureMode(&m) == CUDA_SUCCESS) tl_mode = mode;
}

int capture_begin_note(CUstream stream, bool ptsz, CUstreamCaptureMode mode) {
  static const bool atfork = pthread_atfork(nullptr, nullptr, after_fork_child) == 0;
  (void)atfork;
  // No hook call that the capture forbids is in progress once this is held, and every later one
  // sees the capture counted.
  std::unique_lock<std::shared_mutex> rule(g_rule_mu);
  std::lock_guard<std::mutex> lk(g_mu);
  g_active.fetch_add(1, std::memory_order_seq_cst);
  for (int i = 0; i < kMaxCaptures; ++i) {
    Entry& e = g_entries[i];
    if (e.used) continue;
    e.used = true;
    e.per_thread = is_per_thread(stream, ptsz);
    e.stream = stream;
    e.owner = pthread_self();
    e.mode = mode;
    return i;
  }
  ++g_overflow;
  return -1;
}

void capture_begun(int slot, bool ok) {
  if (ok) return;
  std::lock_guard<std::mutex> lk(g_mu);
  if (slot >= 0 && slot < kMaxCaptures && g_entries[slot].used) {
    g_entries[slot] = Entry{};
  } else if (g_overflow > 0) {
    --g_overflow;
  } else {
    return;
  }
  g_active.fetch_sub(1, std::memory_order_seq_cst);
}

void capture_ended(CUstream stream, bool ptsz) {
  const bool per_thread = is_per_thread(stream, ptsz);
  std::lock_guard<std::mutex> lk(g_mu);
  for (Entry& e : g_entries) {
    if (same(e, stream, per_thread)) {
      e = Entry{};
      g_active.fetch_sub(1, std::memory_order_seq_cst);
      return;
    }
  }
  if (g_overflow > 0) {
    --g_overflow;
    g_active.fetch_sub(1, std::memory_order_seq_cst);
  }
}

void thread_mode_set(CUstreamCaptureMode mode) { tl_mode = mode; }

}  // namespace gem::hook
