// Runner: see runner.h.
#include "runner.h"

#include <sys/stat.h>

#include "../scheduler/nvml_probe.h"
#include "gem/log.h"

namespace gem::dp {

Runner::Runner(Inventory* inv, RunnerOptions opts) : inv_(inv), opts_(std::move(opts)) {
  share_ = std::make_unique<Endpoint>(Kind::kShare, inv_, opts_.alloc, opts_.plugin_dir,
                                      opts_.socket_prefix + "share.sock", opts_.hint_window);
  memory_ = std::make_unique<Endpoint>(Kind::kMemory, inv_, opts_.alloc, opts_.plugin_dir,
                                       opts_.socket_prefix + "memory.sock", opts_.hint_window);
}

Runner::~Runner() {
  stop();
  if (health_.joinable()) health_.join();
}

void Runner::stop() {
  std::lock_guard<std::mutex> lk(mu_);
  stopping_ = true;
  cv_.notify_all();
}

bool Runner::wait_for(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, d, [this] { return stopping_; });
  return !stopping_;
}

Runner::Identity Runner::kubelet_identity() const {
  Identity id;
  struct stat st;
  const std::string path = opts_.plugin_dir + "/" + opts_.kubelet_socket;
  if (::stat(path.c_str(), &st) != 0) return id;
  id.present = true;
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.ctime_ns = static_cast<long long>(st.st_ctim.tv_sec) * 1000000000LL + st.st_ctim.tv_nsec;
  return id;
}

bool Runner::serve_and_register() {
  std::string why;
  for (Endpoint* e : {share_.get(), memory_.get()}) {
    if (!e->serving() || !e->socket_present()) {
      if (!e->start(&why)) {
        LOG_ERROR("%s", why.c_str());
        return false;
      }
    }
  }
  const std::string kubelet = opts_.plugin_dir + "/" + opts_.kubelet_socket;
  for (Endpoint* e : {share_.get(), memory_.get()}) {
    if (!e->register_with(kubelet, opts_.register_timeout, &why)) {
      LOG_WARN("%s; retrying every %lld ms", why.c_str(), static_cast<long long>(opts_.watch_interval.count()));
      return false;
    }
  }
  registrations_.fetch_add(1);
  LOG_INFO("registered %s and %s with %s", kShareResource, kMemoryResource, kubelet.c_str());
  return true;
}

void Runner::run() {
  if (!opts_.nvml_library.empty() && !health_.joinable()) health_ = std::thread([this] { health_loop(); });
  bool registered = false;
  Identity registered_with;
  do {
    const Identity now = kubelet_identity();
    const bool lost = !share_->socket_present() || !memory_->socket_present();
    if (registered && (!(now == registered_with) || lost)) {
      LOG_INFO("kubelet restarted (kubelet.sock %s, own sockets %s): serving again and re-registering",
               now == registered_with ? "same" : "changed", lost ? "removed" : "kept");
      share_->stop();
      memory_->stop();
      registered = false;
    }
    if (!registered && now.present) {
      registered = serve_and_register();
      if (registered) registered_with = kubelet_identity();
    }
  } while (wait_for(opts_.watch_interval));
  share_->stop();
  memory_->stop();
}

// NVML is not thread-safe per handle: this thread opens its own. A GPU is unhealthy while NVML
// cannot find it (lost, fallen off the bus, NOT_FOUND for its UUID); other failures (a transient
// error) leave the health as it was.
void Runner::health_loop() {
  gem::sched::Nvml nvml;
  std::string why;
  if (!nvml.open(opts_.nvml_library, &why)) {
    LOG_WARN("health watch off: %s", why.c_str());
    return;
  }
  do {
    for (const Gpu& g : inv_->gpus()) {
      nvmlDevice_t dev = nullptr;
      const nvmlReturn_t r = nvml.lookup(g.uuid, &dev);
      bool healthy = true;
      if (r == NVML_ERROR_GPU_IS_LOST || r == NVML_ERROR_NOT_FOUND || r == NVML_ERROR_GPU_NOT_FOUND)
        healthy = false;
      else if (r != NVML_SUCCESS)
        continue;
      if (inv_->set_healthy(g.uuid, healthy))
        LOG_WARN("GPU %s is now %s (%s)", g.uuid.c_str(), healthy ? kHealthy : kUnhealthy,
                 r == NVML_SUCCESS ? "found" : nvml.error_text(r).c_str());
    }
  } while (wait_for(opts_.health_interval));
}

}  // namespace gem::dp
