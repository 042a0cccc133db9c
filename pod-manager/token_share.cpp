#include "token_share.h"

#include <algorithm>

namespace gem::pmgr {

void TokenShare::granted(Micros quota, Micros now) {
  held_ = true;
  grant_at_ = now;
  quota_ = quota;
}

bool TokenShare::give_back(int who, Micros used, Micros end, Micros burst) {
  if (holders_.erase(who) == 0) return false;
  if (used > 0) busy_.push_back({end - used, end});
  burst_ = std::max(burst_, burst);
  return holders_.empty();
}

TokenShare::Report TokenShare::finish() {
  std::sort(busy_.begin(), busy_.end(), [](const Interval& a, const Interval& b) { return a.start < b.start; });
  Report r;
  Micros cur_start = 0, cur_end = INT64_MIN;
  for (const Interval& i : busy_) {
    if (i.start > cur_end) {
      if (cur_end != INT64_MIN) r.used += cur_end - cur_start;
      cur_start = i.start;
      cur_end = i.end;
    } else {
      cur_end = std::max(cur_end, i.end);
    }
  }
  if (cur_end != INT64_MIN) r.used += cur_end - cur_start;
  r.burst = burst_;
  reset();
  return r;
}

void TokenShare::reset() {
  held_ = false;
  holders_.clear();
  busy_.clear();
  burst_ = 0;
}

}  // namespace gem::pmgr
