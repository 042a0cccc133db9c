// Route's part in gang tokens (gang.h has the rules; docs/scheduling.md, "Gang tokens"): the gang
// tells a route whether it is a member, when the gang's other tokens end and whether the gang is
// split; the route keeps (parks) a token no hook holds, asks for the gang, and cuts grants.
#include <algorithm>

#include "gang.h"
#include "route.h"

namespace gem::pmgr {

void Route::set_gang(bool on, Micros align_end, Micros first_grant, bool split, Micros now, Actions* out) {
  gang_ = on;
  gang_end_ = on ? align_end : kNever;
  gang_start_ = on ? first_grant : kNever;
  gang_split_ = on && split;
  if (!on) unpark(now, out);
}

void Route::gang_ask(Micros now, Actions* out) {
  if (!gang_ || state_ != State::kReady || requested_ || renewing_ || token_.held()) return;
  note_waiting(now);
  requested_ = true;
  to_sched({0, proto::TokenRequest{static_cast<uint64_t>(last_burst_)}}, out);
}

void Route::unpark(Micros now, Actions* out) {
  if (parked()) return_token(now, out);
}

bool Route::gang_aligns(Micros now) const {
  return gang_ && gang_end_ != kNever && gang_end_ - now >= kGangMinQuota;
}

Micros Route::gang_cut(Micros quota, Micros now) const {
  return gang_aligns(now) ? std::min(quota, gang_end_ - now) : quota;
}

}  // namespace gem::pmgr
