#include <fcntl.h>

#include <cstdlib>

#include "fake_driver.h"
#include "fake_env.h"
#include "mem_model.h"

namespace fakecuda {

Driver& Driver::get() {
  static Driver* d = new Driver();  // leaked: see class comment
  return *d;
}

CUresult Driver::init() {
  std::lock_guard<std::mutex> lk(mu_);
  if (initialized()) return device_count_ > 0 ? CUDA_SUCCESS : CUDA_ERROR_NO_DEVICE;
  const int count = env_device_count();
  Memory::get().init(count, env_mem_bytes());
  int fd = -1;
  if (const char* path = getenv("FAKE_CUDA_LOG"); path && *path) {
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
  device_count_ = count;
  for (int d = 0; d < count; ++d) {
    sims_.push_back(new DeviceSim(d, fd));
    CUcontext c = new CUctx_st{d, true};
    primaries_.push_back(c);
    handles_[c] = HandleKind::kContext;
  }
  primary_refs_.assign(static_cast<size_t>(count), 0);
  initialized_.store(true, std::memory_order_release);
  return count > 0 ? CUDA_SUCCESS : CUDA_ERROR_NO_DEVICE;
}

void Driver::retain_primary(int d) {
  std::lock_guard<std::mutex> lk(mu_);
  ++primary_refs_[static_cast<size_t>(d)];
}

bool Driver::release_primary(int d, bool* now_zero) {
  std::lock_guard<std::mutex> lk(mu_);
  int& r = primary_refs_[static_cast<size_t>(d)];
  if (r == 0) return false;
  --r;
  *now_zero = r == 0;
  return true;
}

void Driver::add_handle(const void* h, HandleKind k) {
  std::lock_guard<std::mutex> lk(mu_);
  handles_[h] = k;
}

bool Driver::remove_handle(const void* h, HandleKind k) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = handles_.find(h);
  if (it == handles_.end() || it->second != k) return false;
  handles_.erase(it);
  // Kept reachable rather than freed: a racing thread may still use it, and LeakSanitizer (the
  // project's SANITIZE=1 tests load this library) then sees no leak.
  retired_.push_back(h);
  return true;
}

bool Driver::valid_handle(const void* h, HandleKind k) {
  if (h == nullptr) return false;
  std::lock_guard<std::mutex> lk(mu_);
  auto it = handles_.find(h);
  return it != handles_.end() && it->second == k;
}

std::vector<CUcontext>& ctx_stack() {
  thread_local std::vector<CUcontext> stack;
  return stack;
}

CUcontext current_ctx() {
  auto& s = ctx_stack();
  return s.empty() ? nullptr : s.back();
}

namespace {

// Latest op sequence per device on the calling thread's per-thread default stream.
std::vector<uint64_t>& per_thread_seqs() {
  thread_local std::vector<uint64_t> seqs;
  return seqs;
}

}  // namespace

CUresult resolve_stream(CUstream s, bool ptsz, StreamTarget* out) {
  Driver& drv = Driver::get();
  if (s == nullptr || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD) {
    CUcontext c = current_ctx();
    if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
    out->device = c->device;
    out->stream = nullptr;
    out->per_thread = s == CU_STREAM_PER_THREAD || (s == nullptr && ptsz);
    return CUDA_SUCCESS;
  }
  if (!drv.valid_handle(s, HandleKind::kStream)) return CUDA_ERROR_INVALID_HANDLE;
  out->device = s->device;
  out->stream = s;
  out->per_thread = false;
  return CUDA_SUCCESS;
}

void note_enqueued(const StreamTarget& t, uint64_t seq) {
  if (t.stream != nullptr) {
    uint64_t cur = t.stream->last_seq.load();
    while (cur < seq && !t.stream->last_seq.compare_exchange_weak(cur, seq)) {
    }
  } else if (t.per_thread) {
    auto& v = per_thread_seqs();
    if (v.size() <= static_cast<size_t>(t.device)) v.resize(static_cast<size_t>(t.device) + 1, 0);
    v[static_cast<size_t>(t.device)] = seq;
  }
}

uint64_t sync_seq(const StreamTarget& t) {
  if (t.stream != nullptr) return t.stream->last_seq.load();
  if (t.per_thread) {
    auto& v = per_thread_seqs();
    return static_cast<size_t>(t.device) < v.size() ? v[static_cast<size_t>(t.device)] : 0;
  }
  return Driver::get().sim(t.device).last_enqueued();
}

}  // namespace fakecuda
