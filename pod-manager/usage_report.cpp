// UsageReport: see usage_report.h.
#include "usage_report.h"

namespace gem::pmgr {

UsageReport::UsageReport(uint64_t step, Micros period) : step_(step), period_(period) {}

void UsageReport::reset() {
  sent_bytes_ = 0;
  sent_flags_ = 0;
  sent_ = false;
  pending_at_ = kNever;
}

bool UsageReport::due(uint64_t bytes, uint32_t flags) const {
  const uint64_t moved = bytes > sent_bytes_ ? bytes - sent_bytes_ : sent_bytes_ - bytes;
  if (moved >= step_) return true;
  if (sent_bytes_ == 0) return false;
  return bytes == 0 || flags != sent_flags_;
}

std::optional<proto::MemUsage> UsageReport::update(uint64_t bytes, uint32_t flags, Micros now) {
  bytes = proto::wire_bytes(bytes);
  if (!due(bytes, flags)) {
    pending_at_ = kNever;
    return std::nullopt;
  }
  if (sent_ && now - sent_at_ < period_) {
    pending_at_ = sent_at_ + period_;
    return std::nullopt;
  }
  sent_ = true;
  sent_at_ = now;
  sent_bytes_ = bytes;
  sent_flags_ = flags;
  pending_at_ = kNever;
  return proto::MemUsage{bytes, flags};
}

}  // namespace gem::pmgr
