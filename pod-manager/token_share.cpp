#include "token_share.h"

#include <algorithm>

#include "gem/protocol.h"

namespace gem::pmgr {

void TokenShare::granted(Micros quota, Micros at) {
  held_ = true;
  grant_at_ = at;
  charge_from_ = at;
  quota_ = std::clamp<Micros>(quota, 0, proto::kMaxWireMicros);
}

Micros TokenShare::remaining(Micros now) const {
  if (!held_) return 0;
  return std::max<Micros>(grant_at_ + quota_ - now, 0);
}

bool TokenShare::give_back(Holder who, uint64_t used_us, uint64_t end_us, uint64_t burst_us, Micros now,
                           uint64_t unthrottled_us) {
  if (holders_.erase(who) == 0) return false;
  // Time run without a token (a daemon fault) raises the charge; processes' reports add up, and the
  // sum is clamped (the scheduler clamps a charge to its window anyway).
  unthrottled_ = std::min<Micros>(unthrottled_ + proto::wire_micros(unthrottled_us), proto::kMaxWireMicros);
  // Clamp to [grant, now]: both bounds and both wire values are in [0, 2^50], so no overflow.
  const Micros lo = grant_at_;
  const Micros hi = std::max(now, lo);
  const Micros end = std::clamp<Micros>(proto::wire_micros(end_us), lo, hi);
  const Micros start = std::clamp<Micros>(end - proto::wire_micros(used_us), lo, end);
  if (end > start && busy_.size() < kMaxIntervals) busy_.push_back({start, end});
  burst_ = std::max(burst_, proto::wire_micros(burst_us));
  return holders_.empty();
}

bool TokenShare::lost(Holder who, Micros now) {
  if (holders_.count(who) == 0) return false;
  const Micros held = std::max<Micros>(now - grant_at_, 0);
  return give_back(who, static_cast<uint64_t>(held), static_cast<uint64_t>(std::max<Micros>(now, 0)), 0, now);
}

TokenShare::Report TokenShare::charge_so_far(Micros now) const {
  std::vector<Interval> v = busy_;
  std::sort(v.begin(), v.end(), [](const Interval& a, const Interval& b) { return a.start < b.start; });
  Report r;
  bool open = false;
  Micros cur_start = 0, cur_end = 0;
  for (const Interval& i : v) {
    if (!open || i.start > cur_end) {
      if (open) r.used += cur_end - cur_start;
      cur_start = i.start;
      cur_end = i.end;
      open = true;
    } else {
      cur_end = std::max(cur_end, i.end);
    }
  }
  if (open) r.used += cur_end - cur_start;
  // Never less than what gem-pmgr saw: the token held from the grant until now.
  if (held_) r.used = std::max(r.used, std::max<Micros>(now - charge_from_, 0));
  r.used = std::min<Micros>(r.used + unthrottled_, proto::kMaxWireMicros);
  r.burst = burst_;
  return r;
}

TokenShare::Report TokenShare::finish(Micros now) {
  const Report r = charge_so_far(now);
  reset();
  return r;
}

void TokenShare::clear_charged() {
  busy_.clear();
  burst_ = 0;
  unthrottled_ = 0;
}

void TokenShare::reset() {
  held_ = false;
  holders_.clear();
  busy_.clear();
  burst_ = 0;
  unthrottled_ = 0;
}

}  // namespace gem::pmgr
