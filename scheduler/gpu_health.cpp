// GpuHealth: see gpu_health.h.
#include "gpu_health.h"

#include "gem/log.h"

namespace gem::sched {

GpuHealth::~GpuHealth() { stop(); }

void GpuHealth::start(const GpuHealthOptions& opts) {
  opts_ = opts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    view_.reason = "starting";
  }
  thread_ = std::thread([this] { run(); });
}

GpuHealthView GpuHealth::view() const {
  std::lock_guard<std::mutex> lock(mu_);
  return view_;
}

void GpuHealth::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void GpuHealth::set(const GpuHealthView& v) {
  std::lock_guard<std::mutex> lock(mu_);
  view_ = v;
}

void GpuHealth::run() {
  Nvml nvml;
  std::string why;
  nvmlDevice_t dev = nullptr;
  if (!nvml.open(opts_.library, &why) || !nvml.device(opts_.uuid, &dev, &why)) {
    LOG_INFO("GPU health not watched: %s", why.c_str());
    set({false, false, 0, 0, "not watched: " + why, -1});
    return;
  }
  std::string xid_why;
  const bool events = nvml.watch_xid(dev, &xid_why);
  if (!events) LOG_WARN("GPU health: XID events not watched (%s); lost GPUs still are", xid_why.c_str());
  // The NVML index, as dcgm-exporter's `gpu` label has it: the UUID's place in NVML's order.
  int index = opts_.uuid.empty() ? 0 : -1;
  std::vector<std::string> all;
  std::string list_why;
  if (index < 0 && nvml.uuids(&all, &list_why)) {
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i] == opts_.uuid) index = static_cast<int>(i);
    }
  }
  set({true, false, 0, 0, events ? "" : "XID events not watched: " + xid_why, index});
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_) return;
      // Without an event set the turn does not block: pace it here.
      if (!events) cv_.wait_for(lock, std::chrono::milliseconds(opts_.period_ms), [this] { return stop_; });
      if (stop_) return;
    }
    turn(nvml);
  }
}

void GpuHealth::turn(Nvml& nvml) {
  GpuHealthView v = view();
  nvmlDevice_t dev = nullptr;
  const nvmlReturn_t r = nvml.lookup(opts_.uuid, &dev);
  const bool lost = r == NVML_ERROR_GPU_IS_LOST || (!opts_.uuid.empty() && r == NVML_ERROR_NOT_FOUND);
  if (lost && !v.lost) {
    LOG_ERROR("GPU %s lost: %s", opts_.uuid.empty() ? "0" : opts_.uuid.c_str(), nvml.error_text(r).c_str());
    v.lost = true;
    v.reason = "lost: " + nvml.error_text(r);
    set(v);
  }
  nvmlEventData_t data{};
  const nvmlReturn_t e = nvml.wait_event(opts_.period_ms, &data);
  if (e == NVML_SUCCESS && (data.eventType & nvmlEventTypeXidCriticalError) != 0) {
    v = view();
    ++v.xid_errors;
    v.last_xid = data.eventData;
    v.reason = "XID " + std::to_string(data.eventData);
    if (v.lost) v.reason = "lost; " + v.reason;
    LOG_ERROR("GPU %s: XID %llu (critical)", opts_.uuid.empty() ? "0" : opts_.uuid.c_str(), data.eventData);
    set(v);
  } else if (e == NVML_ERROR_GPU_IS_LOST && !v.lost) {
    v.lost = true;
    v.reason = "lost: " + nvml.error_text(e);
    LOG_ERROR("GPU %s lost (event wait)", opts_.uuid.empty() ? "0" : opts_.uuid.c_str());
    set(v);
  } else if (e != NVML_SUCCESS && e != NVML_ERROR_TIMEOUT && e != NVML_ERROR_UNINITIALIZED) {
    // An unexpected error must not spin the thread.
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(opts_.period_ms), [this] { return stop_; });
  }
}

}  // namespace gem::sched
