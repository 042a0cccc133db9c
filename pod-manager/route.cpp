#include "route.h"

#include <algorithm>

namespace gem::pmgr {

namespace {
proto::ClientSettings unknown_settings(const RouteOptions& o) {
  if (o.has_declared) return o.declared;
  return proto::ClientSettings{0, 1000000, 0};  // REQUEST 0, LIMIT 1, no memory limit
}
std::string ms(Micros us) { return std::to_string(us / 1000) + " ms"; }

// What an administrator does about a refusal, by its code (logged with the scheduler's reason).
const char* refusal_fix(proto::ErrorCode c) {
  switch (c) {
    case proto::ErrorCode::kUnknownClient:
    case proto::ErrorCode::kRemoved:
      return "add the client to gem-schd's resource-config.txt with REQUESTs summing to at most 1";
    case proto::ErrorCode::kDenied:
      return "give the client its shared secret (gem-schd --secrets), or stop the other gem-pmgr of this client";
    case proto::ErrorCode::kBusy: return "raise gem-schd's --max_connections";
    default: return "check gem-pmgr's --scheduler and the GPU it serves";
  }
}
}  // namespace

Route::Route(RouteOptions opts)
    : opts_(std::move(opts)), settings_(unknown_settings(opts_)), mem_(opts_.heartbeat_period) {}

const char* Route::state_name(State s) {
  switch (s) {
    case State::kDisconnected: return "Disconnected";
    case State::kConnecting: return "Connecting";
    case State::kHelloSent: return "HelloSent";
    case State::kReady: return "Ready";
  }
  return "?";
}

// ---- hooks ----

void Route::hook_hello(HookId h, uint64_t rid, Micros now, Actions* out) {
  hooks_.insert(h);
  to_hook(h, {rid, settings_}, out);
  ensure_link(now, out);  // connect early, so the first TokenRequest finds the route Ready
}

void Route::hook_request(HookId h, uint64_t rid, const proto::TokenRequest& m, Micros now, Actions* out) {
  note_used(now);
  if (m.last_burst_us > 0) last_burst_ = proto::wire_micros(m.last_burst_us);
  if (token_.valid(now) && !token_.holds(h)) {  // the client holds a valid token: join it
    join_token(h, rid, now, out);
    return;
  }
  if (queue_for_scheduler(h, rid, now, out)) ask_scheduler(now, out);
}

void Route::join_token(HookId h, uint64_t rid, Micros now, Actions* out) {
  token_.take(h);
  to_hook(h, {rid, proto::TokenGrant{static_cast<uint64_t>(token_.remaining(now))}}, out);
}

bool Route::queue_for_scheduler(HookId h, uint64_t rid, Micros now, Actions* out) {
  if (ensure_link(now, out) == Link::kUnavailable && refused_.empty()) {
    unavailable(h, rid, last_error_, out);
    return false;
  }
  add_waiter(h, rid, now, out);
  return true;
}

void Route::hook_release(HookId h, uint64_t rid, const proto::TokenRelease& m, Micros now, Actions* out) {
  // A non-holder's release (a revoked grant, a second release) charges and returns nothing.
  const bool was_holder = token_.holds(h);
  const bool last = token_.give_back(h, m.used_us, m.end_us, m.burst_us, now, m.unthrottled_us);
  note_used(now);
  if (!m.again) {
    if (last && !keep_parked(now)) return_token(now, out);  // a gang keeps it (gang.h, rule 2)
    return;
  }
  if (was_holder && !last && token_.valid(now)) {  // other processes still hold it: rejoin them
    join_token(h, rid, now, out);
    return;
  }
  // Asking again is a token request: it needs the scheduler.
  if (!queue_for_scheduler(h, rid, now, out)) return;
  if (last) {
    return_token(now, out);  // the release says "again"
  } else {
    ask_scheduler(now, out);
  }
}

void Route::hook_renew(HookId h, uint64_t rid, const proto::TokenRenew& m, Micros now, Actions* out) {
  // Only a sole holder may renew: with several processes on the token the normal release merges
  // their intervals.
  note_used(now);
  // A split gang ends its tokens together instead (gang.h, rule 3).
  if (state_ != State::kReady || renewing_ || !token_.holds(h) || token_.holder_count() != 1 || (gang_ && gang_split_)) {
    to_hook(h, {rid, proto::TokenGrant{0}}, out);
    return;
  }
  // Charged like a release: never less than the time held since the grant.
  const TokenShare::Report rep = token_.charge_so_far(now);
  const Micros burst = std::max(rep.burst, proto::wire_micros(m.burst_us));
  note_waiting(now);
  renewing_ = true;
  renew_id_ = next_id_++;
  renew_for_ = {h, rid};
  renew_sent_at_ = now;
  if (hb_due_ == kNever) hb_due_ = now + opts_.heartbeat_period;
  to_sched({renew_id_, proto::TokenRenew{static_cast<uint64_t>(rep.used), static_cast<uint64_t>(burst)}}, out);
}

void Route::hook_gone(HookId h, Micros now, Actions* out) {
  if (mem_.has(h)) {
    mem_.gone(h);
    report_usage(now, out);
  }
  hooks_.erase(h);
  waiters_.erase(std::remove_if(waiters_.begin(), waiters_.end(), [h](const Waiter& w) { return w.hook == h; }),
                 waiters_.end());
  if (renewing_ && renew_for_.hook == h) renew_for_.hook = 0;  // the answer is still awaited, then dropped
  if (token_.holds(h) && token_.lost(h, now)) return_token(now, out);
}

// ---- the scheduler ----

void Route::sched_connected(Micros now, Actions* out) {
  if (state_ != State::kConnecting) return;
  state_ = State::kHelloSent;
  deadline_ = now + opts_.scheduler_timeout;
  quiet_since_ = now;
  hello_id_ = next_id_++;
  proto::Hello hello;
  hello.role = proto::Role::kPodManager;
  hello.client = opts_.client;
  hello.device_uuid = opts_.device_uuid;
  hello.pid = opts_.pid;
  hello.has_declared = opts_.has_declared;
  hello.declared = opts_.declared;
  hello.secret = opts_.secret;
  to_sched({hello_id_, hello}, out);
}

void Route::sched_lost(const std::string& why, Micros now, Actions* out) {
  if (state_ == State::kDisconnected) return;
  fail(why, now, out);
}

void Route::sched_heard(Micros now) {
  if (state_ != State::kDisconnected) quiet_since_ = std::max(quiet_since_, now);
}

void Route::sched_message(const proto::Message& m, Micros now, Actions* out) {
  if (state_ != State::kHelloSent && state_ != State::kReady) return;  // nothing is connected
  sched_heard(now);
  if (state_ == State::kHelloSent) {
    on_hello_reply(m, now, out);
  } else if (const auto* g = std::get_if<proto::TokenGrant>(&m.body)) {
    on_grant(m, *g, now, out);
  } else if (const auto* s = std::get_if<proto::ClientSettings>(&m.body)) {
    on_settings(*s, now, out);
  } else if (const auto* r = std::get_if<proto::TokenRevoke>(&m.body)) {
    on_revoke(*r, now, out);
  } else if (const auto* ev = std::get_if<proto::Evict>(&m.body)) {
    on_evict(*ev, out);
  } else if (const auto* e = std::get_if<proto::Error>(&m.body)) {
    if (e->code == proto::ErrorCode::kRemoved) {
      refuse(*e, now, out);
    } else {
      fail("scheduler says: " + e->message, now, out);
    }
  } else if (!std::holds_alternative<proto::Heartbeat>(m.body)) {  // a Heartbeat only shows it is alive
    fail(std::string("scheduler sent an unexpected ") + proto::type_name(m.body), now, out);
  }
}

void Route::on_hello_reply(const proto::Message& m, Micros now, Actions* out) {
  if (std::holds_alternative<proto::Heartbeat>(m.body)) return;
  if (const auto* e = std::get_if<proto::Error>(&m.body)) {
    refuse(*e, now, out);
    return;
  }
  const auto* s = std::get_if<proto::ClientSettings>(&m.body);
  if (s == nullptr) {
    fail(std::string("scheduler answered Hello with ") + proto::type_name(m.body), now, out);
    return;
  }
  state_ = State::kReady;
  deadline_ = kNever;
  last_error_.clear();
  refused_.clear();
  usage_.reset();  // a new connection: the scheduler knows nothing of the client's memory
  on_settings(*s, now, out);
  if (!waiters_.empty()) ask_scheduler(now, out);
}

void Route::on_grant(const proto::Message& m, const proto::TokenGrant& g, Micros now, Actions* out) {
  const Micros quota = proto::wire_micros(g.quota_us);
  if (m.request_id != 0) {  // the answer to a renewal
    if (!renewing_ || m.request_id != renew_id_) return;  // stale: nothing awaits it
    renewing_ = false;
    // Applied only while the token is still held (its holder may have died, or it was revoked).
    const bool renewed = quota > 0 && token_.held() && renew_for_.hook != 0 && token_.holds(renew_for_.hook);
    if (renewed) {
      token_.clear_charged();  // the scheduler charged the hold until the renewal
      token_.granted(quota, renew_sent_at_);
    }
    if (renew_for_.hook != 0) {
      to_hook(renew_for_.hook, {renew_for_.rid, proto::TokenGrant{renewed ? static_cast<uint64_t>(quota) : 0}}, out);
    }
    if (!hook_waits()) hb_due_ = kNever;
    return;
  }
  if (!requested_ || token_.held()) return;  // a grant nobody asked for: ignore it
  requested_ = false;
  token_.granted(gang_cut(quota, now), now);
  if (gang_aligns(now) && gang_start_ != kNever) token_.charge_from(gang_start_);
  serve_waiters(now, out);
}

void Route::on_settings(const proto::ClientSettings& s, Micros now, Actions* out) {
  settings_ = s;
  for (HookId h : hooks_) to_hook(h, {0, s}, out);
  mem_.set_limit(s.gpu_mem_bytes, out, s.flags);
  report_usage(now, out);  // the flags travel with the figure
}

void Route::on_revoke(const proto::TokenRevoke& r, Micros now, Actions* out) {
  if (!token_.held()) return;
  // The scheduler took the token back and charged it itself: forget it without reporting.
  for (HookId h : token_.holders()) to_hook(h, {0, proto::TokenRevoke{r.held_us}}, out);
  token_.reset();
  if (!waiters_.empty()) ask_scheduler(now, out);
}

// ---- time ----

void Route::tick(Micros now, Actions* out) {
  if ((state_ == State::kConnecting || state_ == State::kHelloSent) && now >= deadline_) {
    fail(std::string(state_ == State::kConnecting ? "connect" : "Hello") + " timed out after " +
             ms(opts_.scheduler_timeout),
         now, out);
  } else if (state_ == State::kReady && outstanding() && now - quiet_since_ >= opts_.scheduler_timeout) {
    fail("scheduler silent for " + ms(now - quiet_since_) + " while a " + (renewing_ ? "renewal" : "grant") +
             " was awaited",
         now, out);
  }
  if (state_ == State::kDisconnected && !refused_.empty() && hook_waits() && now >= retry_at_) ensure_link(now, out);
  if (parked() && !token_.valid(now)) return_token(now, out);  // a gang's parked token ran out
  mem_.tick(now, out);
  if (now >= usage_.next_deadline()) report_usage(now, out);
  if (now >= hb_due_) {
    if (!hook_waits()) {
      hb_due_ = kNever;
      return;
    }
    std::set<HookId> sent;
    for (const Waiter& w : waiters_) {
      if (sent.insert(w.hook).second) to_hook(w.hook, {0, proto::Heartbeat{}}, out);
    }
    if (renewing_ && renew_for_.hook != 0 && sent.insert(renew_for_.hook).second) {
      to_hook(renew_for_.hook, {0, proto::Heartbeat{}}, out);
    }
    hb_due_ = now + opts_.heartbeat_period;
  }
}

Micros Route::next_deadline() const {
  Micros d = std::min(hb_due_, mem_.next_deadline());
  if (parked()) d = std::min(d, token_end() - TokenShare::kMinRemaining);
  if (state_ == State::kDisconnected && !refused_.empty() && hook_waits()) d = std::min(d, retry_at_);
  if (state_ == State::kConnecting || state_ == State::kHelloSent) d = std::min(d, deadline_);
  if (state_ == State::kReady && outstanding()) d = std::min(d, quiet_since_ + opts_.scheduler_timeout);
  if (state_ == State::kReady) d = std::min(d, usage_.next_deadline());
  return d;
}

// ---- helpers ----

Route::Link Route::ensure_link(Micros now, Actions* out) {
  if (state_ == State::kReady) return Link::kReady;
  if (state_ != State::kDisconnected) return Link::kPending;
  if (now < retry_at_) return Link::kUnavailable;
  state_ = State::kConnecting;
  deadline_ = now + opts_.scheduler_timeout;
  out->push_back({Action::Kind::kConnect, 0, {}, {}});
  return Link::kPending;
}

void Route::note_waiting(Micros now) {
  if (!outstanding()) quiet_since_ = now;  // silence counts from when we started to wait
}

void Route::add_waiter(HookId h, uint64_t rid, Micros now, Actions* out) {
  const bool dup = std::any_of(waiters_.begin(), waiters_.end(), [h](const Waiter& w) { return w.hook == h; });
  if (dup || waiters_.size() >= opts_.max_waiters) {
    to_hook(h, {rid, proto::Error{proto::ErrorCode::kProtocol, dup ? "already waiting for the token" : "too many waiters"}},
            out);
    if (dup) out->push_back({Action::Kind::kDropHook, h, {}, "asked for the token twice"});
    return;
  }
  if (hb_due_ == kNever) hb_due_ = now + opts_.heartbeat_period;
  waiters_.push_back({h, rid});
}

void Route::ask_scheduler(Micros now, Actions* out) {
  if (state_ != State::kReady || requested_ || token_.held() || waiters_.empty()) return;
  note_waiting(now);
  requested_ = true;
  to_sched({0, proto::TokenRequest{static_cast<uint64_t>(last_burst_)}}, out);
}

void Route::serve_waiters(Micros now, Actions* out) {
  while (!waiters_.empty()) {
    const Waiter w = waiters_.front();
    waiters_.pop_front();
    token_.take(w.hook);
    to_hook(w.hook, {w.rid, proto::TokenGrant{static_cast<uint64_t>(token_.remaining(now))}}, out);
  }
  if (!hook_waits()) hb_due_ = kNever;
  // Granted but nobody is left to use it (the asker died): give it straight back, unless a gang
  // keeps it for its process (gang.h, rule 2).
  if (!token_.has_holders() && !keep_parked(now)) return_token(now, out);
}

void Route::return_token(Micros now, Actions* out) {
  const Micros grant_at = token_.grant_at();
  const TokenShare::Report rep = token_.finish(now);
  if (rep.burst > 0) last_burst_ = rep.burst;
  if (state_ != State::kReady) return;
  // Processes that asked while the token was out want it back: say so in the release itself.
  const bool again = !waiters_.empty();
  if (again) note_waiting(now);
  requested_ = again;
  to_sched({0, proto::TokenRelease{static_cast<uint64_t>(rep.used), static_cast<uint64_t>(rep.burst),
                                   static_cast<uint64_t>(std::max<Micros>(grant_at, 0)),
                                   static_cast<uint64_t>(std::max<Micros>(now, 0)), again}},
           out);
}

void Route::disconnect(const std::string& why, Micros now, Actions* out) {
  out->push_back({Action::Kind::kCloseScheduler, 0, {}, why});
  state_ = State::kDisconnected;
  deadline_ = kNever;
  retry_at_ = now + opts_.retry_period;
  requested_ = false;
  token_.reset();
  if (renewing_ && renew_for_.hook != 0) to_hook(renew_for_.hook, {renew_for_.rid, proto::TokenGrant{0}}, out);
  renewing_ = false;
  usage_.reset();
  mem_.set_limit(settings_.gpu_mem_bytes, out, settings_.flags);  // the last limit known (or declared) holds meanwhile
}

void Route::fail(const std::string& why, Micros now, Actions* out) {
  disconnect(why, now, out);
  last_error_ = why;
  refused_.clear();
  for (const Waiter& w : waiters_) unavailable(w.hook, w.rid, why, out);
  waiters_.clear();
  hb_due_ = kNever;
}

void Route::refuse(const proto::Error& e, Micros now, Actions* out) {
  const std::string why = "scheduler refused '" + opts_.client + "': " + e.message;
  const std::string told = why + "; its processes wait until it is admitted (asked again every " +
                           ms(opts_.retry_period) + "): " + refusal_fix(e.code);
  ++refusals_;
  // Logged (the close's reason) when the refusal is new or changed, not at every retry: an empty
  // reason closes quietly.
  disconnect(told == refused_ ? std::string() : told, now, out);
  last_error_ = why;
  refused_ = told;
  // The waiters stay: held, not unthrottled. Heartbeats keep their waits alive.
  if (hook_waits() && hb_due_ == kNever) hb_due_ = now + opts_.heartbeat_period;
}

void Route::unavailable(HookId h, uint64_t rid, const std::string& why, Actions* out) const {
  to_hook(h, {rid, proto::Error{proto::ErrorCode::kSchedulerUnavailable,
                                "scheduler unavailable" + (why.empty() ? std::string() : ": " + why)}},
          out);
}

void Route::to_hook(HookId h, proto::Message m, Actions* out) const {
  // Error texts carry reasons from sockets and the scheduler: keep them within a frame's string cap.
  if (auto* e = std::get_if<proto::Error>(&m.body); e != nullptr && e->message.size() > 200) e->message.resize(200);
  out->push_back({Action::Kind::kToHook, h, std::move(m), {}});
}

void Route::to_sched(proto::Message m, Actions* out) const {
  out->push_back({Action::Kind::kToScheduler, 0, std::move(m), {}});
}

bool Route::hook_waits() const { return !waiters_.empty() || (renewing_ && renew_for_.hook != 0); }

}  // namespace gem::pmgr
