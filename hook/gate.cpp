#include "gate.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "gem/log.h"
#include "settings.h"
#include "stats.h"
#include "symbols.h"

namespace gem::hook {

namespace {

constexpr Micros kRetryPeriod = 1000000;  // unthrottled stretch before the next attempt, µs
constexpr int kMaxDevices = 64;
// The least quota a slice starts with after an unthrottled stretch (µs): enough to renew or drain.
constexpr Micros TokenMinQuota = 1000;

std::atomic<Gate*> g_gates[kMaxDevices];
std::atomic<bool> g_exiting{false};
std::mutex g_gates_mu;

void sleep_us(Micros us) {
  if (us <= 0) return;
  timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>((us % 1000000) * 1000)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

std::string uuid_string(const CUuuid& u) {
  const auto* b = reinterpret_cast<const unsigned char*>(u.bytes);
  char s[64];
  std::snprintf(s, sizeof s,
                "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return s;
}

// initial-exec: the hook is loaded at start-up (LD_PRELOAD), so its two words of TLS sit in the
// static block and each launch reads them without a call to __tls_get_addr.
__attribute__((tls_model("initial-exec"))) thread_local CUcontext tls_ctx = nullptr;
__attribute__((tls_model("initial-exec"))) thread_local Gate* tls_gate = nullptr;

void after_fork_child() {
  for (auto& g : g_gates) {
    if (Gate* gate = g.load()) gate->reset_after_fork();
  }
}

uint64_t pace_mask_for(int max_inflight) {
  uint64_t round = 1;
  while (round * 2 < static_cast<uint64_t>(std::max(max_inflight / 2, 1))) round *= 2;
  return round - 1;
}

}  // namespace

Gate::Gate(CUdevice device) : device_(device), pace_mask_(pace_mask_for(settings().max_inflight)) {
  // Registered after the driver's own exit handlers, so it runs before them.
  static const bool once = [] {
    std::atexit(stop_gates_at_exit);
    return pthread_atfork(nullptr, nullptr, after_fork_child) == 0;
  }();
  (void)once;
}

Gate* current_gate() {
  static const bool enabled = settings().enabled && real::cuCtxGetCurrent != nullptr;
  if (!enabled) return nullptr;
  CUcontext ctx = nullptr;
  if (real::cuCtxGetCurrent(&ctx) != CUDA_SUCCESS || ctx == nullptr) return nullptr;
  if (ctx == tls_ctx) return tls_gate;
  CUdevice dev = 0;
  if (real::cuCtxGetDevice == nullptr || real::cuCtxGetDevice(&dev) != CUDA_SUCCESS || dev < 0 ||
      dev >= kMaxDevices) {
    return nullptr;
  }
  Gate* g = g_gates[dev].load(std::memory_order_acquire);
  if (g == nullptr) {
    std::lock_guard<std::mutex> lk(g_gates_mu);
    g = g_gates[dev].load(std::memory_order_relaxed);
    if (g == nullptr) {
      g = new Gate(dev);  // lives for the process: launches may come during exit
      g_gates[dev].store(g, std::memory_order_release);
    }
  }
  tls_ctx = ctx;
  tls_gate = g;
  return g;
}

void Gate::reset_after_fork() {
  // The worker thread does not exist in the child; its mutex may be held by a thread that is gone.
  new (&mu_) std::mutex();
  new (&cv_open_) std::condition_variable();
  new (&cv_work_) std::condition_variable();
  open_.store(false);
  entered_.store(0);
  exited_.store(0);
  waiting_ = 0;
  worker_started_ = false;
  contexts_.clear();
  pmgr_.close();
  start_recorded_ = false;
  new (&pace_mu_) std::mutex();
  pacing_.store(0);
  pace_pending_[0] = pace_pending_[1] = false;
}

void Gate::pace(CUstream stream, bool ptsz) {
  // Recording into a stream that is being captured would add a node to the user's graph.
  CUstreamCaptureStatus capturing = CU_STREAM_CAPTURE_STATUS_NONE;
  auto is_capturing = ptsz ? real::cuStreamIsCapturing_ptsz : real::cuStreamIsCapturing;
  auto record = ptsz ? real::cuEventRecord_ptsz : real::cuEventRecord;
  if (is_capturing == nullptr || record == nullptr || real::cuEventSynchronize == nullptr ||
      is_capturing(stream, &capturing) != CUDA_SUCCESS || capturing != CU_STREAM_CAPTURE_STATUS_NONE) {
    return;
  }
  std::lock_guard<std::mutex> lk(pace_mu_);
  if (pace_ctx_ == nullptr) {
    pace_ctx_ = tls_ctx;
    for (CUevent& e : pace_events_) {
      if (real::cuEventCreate(&e, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) e = nullptr;
    }
  }
  CUevent e = pace_events_[pace_next_];
  if (pace_ctx_ != tls_ctx || e == nullptr) return;
  if (pace_pending_[pace_next_]) {
    pacing_.fetch_add(1, std::memory_order_relaxed);
    real::cuEventSynchronize(e);
    pacing_.fetch_sub(1, std::memory_order_relaxed);
  }
  pace_pending_[pace_next_] = record(e, stream) == CUDA_SUCCESS;
  pace_next_ ^= 1;
}

void forget_contexts(CUdevice device, CUcontext ctx) {
  for (int d = 0; d < kMaxDevices; ++d) {
    if (device >= 0 && d != device) continue;
    if (Gate* g = g_gates[d].load(std::memory_order_acquire)) g->forget_context(ctx);
  }
}

void stop_gates_at_exit() {
  g_exiting.store(true);
  // Wait for a drain in progress; afterwards the workers see g_exiting and leave the driver alone.
  for (auto& slot : g_gates) {
    if (Gate* g = slot.load()) g->wait_driver_idle();
  }
}

void Gate::forget_context(CUcontext ctx) {
  std::lock_guard<std::mutex> dlk(driver_mu_);
  std::lock_guard<std::mutex> lk(mu_);
  const bool all = ctx == nullptr;
  const bool had_first = !contexts_.empty() && (all || contexts_.front() == ctx);
  contexts_.erase(std::remove_if(contexts_.begin(), contexts_.end(),
                                 [&](CUcontext c) { return all || c == ctx; }),
                  contexts_.end());
  if (had_first) {  // the hook's stream and events lived in that context
    stream_ = nullptr;
    start_event_ = end_event_ = nullptr;
    start_recorded_ = false;
  }
  std::lock_guard<std::mutex> plk(pace_mu_);
  if (all || pace_ctx_ == ctx) {
    pace_ctx_ = nullptr;
    pace_events_[0] = pace_events_[1] = nullptr;
    pace_pending_[0] = pace_pending_[1] = false;
  }
}

void Gate::note_context(CUcontext ctx) {
  if (ctx != nullptr && std::find(contexts_.begin(), contexts_.end(), ctx) == contexts_.end()) {
    contexts_.push_back(ctx);
  }
}

void Gate::wait_open() {
  std::unique_lock<std::mutex> lk(mu_);
  note_context(tls_ctx);
  if (!worker_started_) {
    worker_started_ = true;
    std::thread([this] { worker_loop(); }).detach();
  }
  ++waiting_;
  cv_work_.notify_one();
  cv_open_.wait(lk, [this] { return open_.load(); });
  --waiting_;
}

void Gate::worker_loop() {
  // The drain may run while another thread captures a CUDA graph; relaxed mode keeps our
  // cuCtxSynchronize from invalidating that capture (CUDA Programming Guide, "Cross-stream
  // dependencies and events" / cudaStreamCaptureModeRelaxed).
  if (real::cuThreadExchangeStreamCaptureMode != nullptr) {
    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    real::cuThreadExchangeStreamCaptureMode(&mode);
  }
  if (real::cuDeviceGetUuid_v2 != nullptr) {
    CUuuid u;
    if (real::cuDeviceGetUuid_v2(&u, device_) == CUDA_SUCCESS) uuid_ = uuid_string(u);
  }
  Micros quota = 0;
  bool have_answer = false;  // a release asked for the token again and its answer is in `next`
  Outcome next = Outcome::kRetryLater;
  for (;;) {
    if (!have_answer) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_work_.wait(lk, [this] { return waiting_ > 0; });
      }
      next = obtain(&quota);
    }
    have_answer = false;
    if (next == Outcome::kRetryLater) {
      sleep_us(kRetryPeriod / 10);
      continue;
    }
    if (next == Outcome::kUnthrottled) run_unthrottled(&quota);
    slice_start_ = mono_us();
    record_start();
    {
      std::lock_guard<std::mutex> lk(mu_);
      open_.store(true, std::memory_order_seq_cst);
    }
    cv_open_.notify_all();
    counters().tokens.fetch_add(1, std::memory_order_relaxed);
    const bool idle_release = !hold(slice_start_ + quota);
    open_.store(false, std::memory_order_seq_cst);
    Micros used = 0, end = 0;
    drain_and_measure(&used, &end);
    // A burst is the GPU time of back-to-back slices up to an idle release (Gemini's kernel burst).
    burst_ += used;
    if (idle_release) {
      last_burst_ = burst_;
      burst_ = 0;
    }
    // A client whose quota ran out is busy and will want the token again even if, right now, its
    // threads wait in a synchronise rather than at the gate; saying so in the release keeps the
    // scheduler from treating it as gone and handing out turns by alternation.
    bool again = !idle_release;
    {
      std::lock_guard<std::mutex> lk(mu_);
      again = again || waiting_ > 0;
    }
    proto::TokenRelease rel{static_cast<uint64_t>(used),
                            static_cast<uint64_t>(idle_release ? last_burst_ : std::max(burst_, last_burst_)),
                            static_cast<uint64_t>(end - used), static_cast<uint64_t>(end), again};
    if (again) {
      uint64_t q = 0;
      const PmgrClient::Answer a = pmgr_.release_and_request(rel, &q, &why_);
      next = answer(a, static_cast<Micros>(q), &quota);
      have_answer = true;
    } else if (!pmgr_.release_token(rel)) {
      LOG_WARN("could not give the token back: pod manager connection lost");
    }
  }
}

Gate::Outcome Gate::degraded() const {
  return settings().fail_closed ? Outcome::kRetryLater : Outcome::kUnthrottled;
}

Gate::Outcome Gate::obtain(Micros* quota) {
  const Settings& s = settings();
  if (mono_us() < retry_at_) return degraded();
  if (!pmgr_.connected()) {
    std::string why;
    if (!pmgr_.connect(s.pod_manager, s.client, uuid_, s.secret, s.pmgr_timeout_ms, &why)) {
      retry_at_ = mono_us() + kRetryPeriod;
      if (!warned_) {
        LOG_WARN("pod manager %s unreachable (%s): %s; retrying every second", s.pod_manager.to_string().c_str(),
                 why.c_str(), s.fail_closed ? "launches wait (GEMINI_FAIL_CLOSED=1)" : "running unthrottled");
        warned_ = true;
      }
      return degraded();
    }
  }
  uint64_t q = 0;
  const PmgrClient::Answer a = pmgr_.request_token(static_cast<uint64_t>(last_burst_), &q, &why_);
  return answer(a, static_cast<Micros>(q), quota);
}

Gate::Outcome Gate::answer(PmgrClient::Answer a, Micros granted, Micros* quota) {
  const Settings& s = settings();
  if (a == PmgrClient::Answer::kGranted) {
    if (warned_) LOG_WARN("token granted again: launches are gated again");
    warned_ = false;
    *quota = std::min<Micros>(granted, proto::kMaxWireMicros);
    return Outcome::kGranted;
  }
  if (!warned_) {
    LOG_WARN("no token from pod manager %s (%s): %s; retrying every second", s.pod_manager.to_string().c_str(),
             why_.c_str(), s.fail_closed ? "launches wait (GEMINI_FAIL_CLOSED=1)" : "running unthrottled");
    warned_ = true;
  }
  retry_at_ = mono_us() + kRetryPeriod;
  return degraded();
}

void Gate::run_unthrottled(Micros* quota) {
  uint64_t counted = entered_.load();
  {
    std::lock_guard<std::mutex> lk(mu_);
    open_.store(true, std::memory_order_seq_cst);
  }
  cv_open_.notify_all();
  uint64_t seen = counted;
  auto count = [&] {  // launches made unthrottled, counted as they happen (the program may exit)
    const uint64_t e = entered_.load();
    counters().unthrottled_launches.fetch_add(e - counted, std::memory_order_relaxed);
    counted = e;
  };
  for (;;) {
    sleep_us(kRetryPeriod / 10);
    count();
    if (g_exiting.load() || mono_us() < retry_at_) continue;
    const uint64_t e = entered_.load();
    if (e == seen) continue;  // the program does not launch: nothing to ask for
    seen = e;
    const Micros asked = mono_us();
    if (obtain(quota) != Outcome::kGranted) continue;
    // Granted: shut the gate and let the unthrottled work finish before the slice starts.
    open_.store(false, std::memory_order_seq_cst);
    while (entered_.load(std::memory_order_seq_cst) != exited_.load(std::memory_order_seq_cst)) sched_yield();
    count();
    sync_contexts();
    *quota = std::max<Micros>(*quota - (mono_us() - asked), TokenMinQuota);
    return;
  }
}

bool Gate::hold(Micros until) {
  const Micros idle = static_cast<Micros>(settings().idle_ms) * 1000;
  uint64_t seen = entered_.load();
  Micros last_activity = mono_us();
  bool gpu_checked = false;
  for (;;) {
    const Micros now = mono_us();
    if (now >= until) {
      if (!renew(now, &until)) return true;
      continue;
    }
    // Sleeps on the pod manager's connection, so a revocation shuts the gate at once.
    const PmgrClient::Event ev = pmgr_.wait_event(std::min(until - now, std::max<Micros>(idle / 4, 500)));
    if (ev == PmgrClient::Event::kRevoked) {
      counters().revocations.fetch_add(1, std::memory_order_relaxed);
      LOG_WARN("the scheduler took the token back (held past quota + lease grace)");
      return true;
    }
    if (ev == PmgrClient::Event::kBroken) return true;
    const uint64_t e = entered_.load();
    const Micros t = mono_us();
    if (e != seen || e != exited_.load() || pacing_.load(std::memory_order_relaxed) > 0) {
      seen = e;
      last_activity = t;
      gpu_checked = false;
    } else if (t - last_activity >= idle) {
      if (gpu_checked) return false;
      // No launch for a while may only mean the program waits for the GPU (a synchronise after
      // each step): wait for its work too, and call it idle only if no launch follows within
      // GEMINI_IDLE_MS of the GPU going quiet.
      sync_contexts();
      gpu_checked = true;
      last_activity = mono_us();
    }
  }
}

bool Gate::renew(Micros now, Micros* until) {
  // Charged by CPU time: the work still queued is measured with the next slice, by the same client.
  const Micros used = now - slice_start_;
  uint64_t q = 0;
  const PmgrClient::Answer a =
      pmgr_.renew_token(static_cast<uint64_t>(used), static_cast<uint64_t>(burst_ + used), &q, &why_);
  if (a != PmgrClient::Answer::kGranted || q == 0) return false;
  counters().tokens.fetch_add(1, std::memory_order_relaxed);
  burst_ += used;
  slice_start_ = now;
  record_start();
  *until = now + std::min<Micros>(static_cast<Micros>(q), proto::kMaxWireMicros);
  return true;
}

void Gate::sync_contexts() {
  std::lock_guard<std::mutex> dlk(driver_mu_);
  if (g_exiting.load()) return;
  std::vector<CUcontext> ctxs;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ctxs = contexts_;
  }
  for (CUcontext c : ctxs) {
    if (real::cuCtxPushCurrent_v2(c) != CUDA_SUCCESS) continue;
    real::cuCtxSynchronize();
    CUcontext popped;
    real::cuCtxPopCurrent_v2(&popped);
  }
}

void Gate::record_start() {
  std::lock_guard<std::mutex> dlk(driver_mu_);
  start_recorded_ = false;
  if (g_exiting.load()) return;
  std::vector<CUcontext> ctxs;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ctxs = contexts_;
  }
  if (ctxs.empty() || real::cuEventRecord == nullptr) return;
  if (real::cuCtxPushCurrent_v2(ctxs.front()) != CUDA_SUCCESS) return;
  if (stream_ == nullptr) {
    if (real::cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS ||
        real::cuEventCreate(&start_event_, CU_EVENT_DEFAULT) != CUDA_SUCCESS ||
        real::cuEventCreate(&end_event_, CU_EVENT_DEFAULT) != CUDA_SUCCESS) {
      stream_ = nullptr;
    }
  }
  if (stream_ != nullptr) start_recorded_ = real::cuEventRecord(start_event_, stream_) == CUDA_SUCCESS;
  CUcontext popped;
  real::cuCtxPopCurrent_v2(&popped);
}

void Gate::drain_and_measure(Micros* used, Micros* end) {
  // Launches that passed the gate before it shut are still inside the driver: let them finish
  // queueing, then wait for the GPU.
  while (entered_.load(std::memory_order_seq_cst) != exited_.load(std::memory_order_seq_cst)) sched_yield();
  sync_contexts();
  std::lock_guard<std::mutex> dlk(driver_mu_);
  *end = mono_us();
  *used = *end - slice_start_;
  if (g_exiting.load()) return;
  std::vector<CUcontext> ctxs;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ctxs = contexts_;
  }
  *used = *end - slice_start_;
  if (start_recorded_ && !ctxs.empty() && real::cuCtxPushCurrent_v2(ctxs.front()) == CUDA_SUCCESS) {
    float ms = 0;
    if (real::cuEventRecord(end_event_, stream_) == CUDA_SUCCESS &&
        real::cuEventSynchronize(end_event_) == CUDA_SUCCESS &&
        real::cuEventElapsedTime_v2(&ms, start_event_, end_event_) == CUDA_SUCCESS && ms >= 0) {
      *used = std::min<Micros>(static_cast<Micros>(ms * 1000.0f), *end - slice_start_ + 1000);
    }
    CUcontext popped;
    real::cuCtxPopCurrent_v2(&popped);
  }
}

}  // namespace gem::hook
