// Inventory: see inventory.h.
#include "inventory.h"

namespace gem::dp {

Inventory::Inventory(std::vector<Gpu> gpus, uint64_t unit_mib)
    : gpus_(std::move(gpus)), unit_mib_(unit_mib == 0 ? 1 : unit_mib), healthy_(gpus_.size(), true) {}

const Gpu* Inventory::find(const std::string& uuid) const {
  for (const Gpu& g : gpus_)
    if (g.uuid == uuid) return &g;
  return nullptr;
}

bool Inventory::set_healthy(const std::string& uuid, bool healthy) {
  std::lock_guard<std::mutex> lk(mu_);
  for (size_t i = 0; i < gpus_.size(); ++i) {
    if (gpus_[i].uuid != uuid) continue;
    if (healthy_[i] == healthy) return false;
    healthy_[i] = healthy;
    ++version_;
    cv_.notify_all();
    return true;
  }
  return false;
}

bool Inventory::healthy(const std::string& uuid) const {
  std::lock_guard<std::mutex> lk(mu_);
  for (size_t i = 0; i < gpus_.size(); ++i)
    if (gpus_[i].uuid == uuid) return healthy_[i];
  return false;
}

std::vector<bool> Inventory::health(uint64_t* version) const {
  std::lock_guard<std::mutex> lk(mu_);
  if (version != nullptr) *version = version_;
  return healthy_;
}

uint64_t Inventory::wait_change(uint64_t seen, Clock::time_point deadline) {
  std::unique_lock<std::mutex> lk(mu_);
  if (version_ == seen) cv_.wait_until(lk, deadline);  // one wait: wake() or a change ends it
  return version_;
}

void Inventory::wake() {
  std::lock_guard<std::mutex> lk(mu_);
  cv_.notify_all();
}

void Inventory::note_allocation(const std::string& uuid) {
  std::lock_guard<std::mutex> lk(mu_);
  last_uuid_ = uuid;
  last_at_ = Clock::now();
}

std::string Inventory::recent_gpu(std::chrono::milliseconds window) const {
  std::lock_guard<std::mutex> lk(mu_);
  if (last_uuid_.empty() || Clock::now() - last_at_ > window) return "";
  return last_uuid_;
}

}  // namespace gem::dp
