#include "token_machine.h"

#include <algorithm>
#include <sstream>

namespace gem::hook {

namespace {

using Kind = TokenAction::Kind;

TokenAction act(Kind k, Micros us = 0) {
  TokenAction a;
  a.kind = k;
  a.us = us;
  return a;
}

TokenAction count(Kind k, uint64_t n) {
  TokenAction a = act(k);
  a.n = n;
  return a;
}

TokenAction warn(std::string text) {
  TokenAction a = act(Kind::kLogWarn);
  a.text = std::move(text);
  return a;
}

void append(TokenActions* out, TokenActions more) {
  out->insert(out->end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
}

Micros wire_quota(uint64_t quota_us) {
  return quota_us > static_cast<uint64_t>(proto::kMaxWireMicros) ? proto::kMaxWireMicros
                                                                  : static_cast<Micros>(quota_us);
}

uint64_t wire(Micros us) { return us > 0 ? static_cast<uint64_t>(us) : 0; }

}  // namespace

Micros TokenMachine::grace_us() const {
  if (latency_) return std::min(config_.idle_us, kLatencyIdlePoll);
  return long_thinks_ >= kLongThinksToShorten ? std::min(config_.idle_us, kShortGrace) : config_.idle_us;
}

void TokenMachine::note_think(const TokenFacts& f) {
  if (think_from_ == 0) return;
  const Micros think = f.now - think_from_;
  think_from_ = 0;
  const bool long_think = think >= kLongThinkGraces * config_.idle_us;
  long_thinks_ = long_think ? std::min(long_thinks_ + 1, kLongThinksToShorten) : 0;
}

TokenActions TokenMachine::start(const TokenFacts& f) {
  state_ = State::kIdle;
  from_unthrottled_ = false;
  return wait_idle(f);
}

TokenActions TokenMachine::wait_idle(const TokenFacts& f) {
  state_ = State::kIdle;
  return {act(Kind::kWaitDemand, f.managed ? kIdleEvictLook : kIdleLook)};
}

TokenActions TokenMachine::unthrottled_wait() const { return {act(Kind::kSleep, kUnthrottledTick)}; }

TokenActions TokenMachine::on_demand(const TokenFacts& f, bool demand) {
  if (demand) {
    note_think(f);
    return obtain(f);
  }
  // Idle: a unified-memory client acts on an Evict from its pod manager (docs/memory.md, "Residency").
  if (!f.managed || !f.connected) return wait_idle(f);
  return {act(Kind::kRetryDeferred), act(Kind::kPollPmgr)};
}

TokenActions TokenMachine::on_polled(const TokenFacts& f, bool evict, uint32_t flags) {
  TokenActions out;
  if (evict && !f.evicted) {
    TokenAction e = act(Kind::kEvict);
    e.flag = (flags & proto::kEvictDemandPaging) != 0;
    out.push_back(e);
    // Unused cached blocks need not move (GEMINI_EMPTY_CACHE unset or 1).
    if (config_.empty_cache != 0) out.push_back(act(Kind::kNoteIdleRelease));
  }
  append(&out, wait_idle(f));
  return out;
}

TokenActions TokenMachine::on_evict(const TokenFacts& f, uint32_t flags) {
  if (f.evicted) return {};
  TokenAction e = act(Kind::kEvict);
  e.flag = (flags & proto::kEvictDemandPaging) != 0;
  return {e};
}

TokenActions TokenMachine::obtain(const TokenFacts& f) {
  if (f.now < retry_at_) return degraded(f);
  if (!f.connected) {
    state_ = State::kConnecting;
    return {act(Kind::kConnect)};
  }
  state_ = State::kAsking;
  return {act(Kind::kRequest, last_burst_)};
}

TokenActions TokenMachine::on_connect(const TokenFacts& f, bool ok, const std::string& why) {
  if (ok) {
    state_ = State::kAsking;
    return {act(Kind::kRequest, last_burst_)};
  }
  TokenActions out;
  retry_at_ = f.now + kRetryPeriod;
  warn_once(&out, "pod manager " + config_.pod_manager + " unreachable", why);
  append(&out, degraded(f));
  return out;
}

void TokenMachine::warn_once(TokenActions* out, const std::string& what, const std::string& why) {
  if (warned_) return;
  warned_ = true;
  out->push_back(warn(what + " (" + why + "): " +
                      (config_.fail_closed ? "launches wait (GEMINI_FAIL_CLOSED=1)" : "running unthrottled") +
                      "; retrying every second"));
}

TokenActions TokenMachine::degraded(const TokenFacts& f) {
  if (config_.fail_closed) {
    state_ = State::kFailedClosed;
    return unthrottled_wait();
  }
  if (state_ == State::kUnthrottled || from_unthrottled_) {  // already open: keep running
    state_ = State::kUnthrottled;
    from_unthrottled_ = false;
    return unthrottled_wait();
  }
  state_ = State::kUnthrottled;
  counted_ = seen_ = f.entered;
  tick_ = f.now;
  TokenActions out{act(Kind::kOpen)};
  append(&out, unthrottled_wait());
  return out;
}

TokenActions TokenMachine::on_answer(const TokenFacts& f, TokenAnswer a, uint64_t quota_us, const std::string& why) {
  TokenActions out;
  if (a == TokenAnswer::kGranted) {
    if (warned_) out.push_back(warn("token granted again: launches are gated again"));
    warned_ = false;
    quota_ = wire_quota(quota_us);
    if (from_unthrottled_) {  // shut the gate and let the unthrottled work finish first
      state_ = State::kShutting;
      out.push_back(act(Kind::kShut));
      return out;
    }
    append(&out, begin_slice(f));
    return out;
  }
  retry_at_ = f.now + kRetryPeriod;
  warn_once(&out, "no token from pod manager " + config_.pod_manager, why);
  append(&out, degraded(f));
  return out;
}

TokenActions TokenMachine::begin_slice(const TokenFacts&) {
  // The scheduler made this client resident with the grant: an Evict sent before it is stale.
  state_ = State::kStarting;
  return {act(Kind::kDropStaleEvict), act(Kind::kPrefetch)};
}

TokenActions TokenMachine::on_prefetched(const TokenFacts& f) {
  latency_ = f.latency;
  slice_start_ = f.now;
  until_ = f.now + quota_;
  seen_ = f.entered;
  synced_ = kNotSynced;
  last_activity_ = f.now;
  state_ = State::kHolding;
  TokenActions out{act(Kind::kStartSlice, f.now), act(Kind::kOpen), count(Kind::kCountTokens, 1)};
  append(&out, hold_next(f));
  return out;
}

TokenActions TokenMachine::hold_next(const TokenFacts& f) {
  state_ = State::kHolding;
  if (f.now >= until_) {
    // Charged by the time held: the work still queued is measured with the next slice.
    state_ = State::kRenewing;
    renew_at_ = f.now;
    renew_used_ = f.now - slice_start_;
    TokenAction r = act(Kind::kRenew, renew_used_);
    r.burst = burst_ + renew_used_;
    return {r};
  }
  return {act(Kind::kWaitPmgr, std::min(until_ - f.now, poll_us()))};
}

TokenActions TokenMachine::on_renew(const TokenFacts& f, TokenAnswer a, uint64_t quota_us) {
  if (a != TokenAnswer::kGranted || quota_us == 0) return end_slice(f, false);
  burst_ += renew_used_;
  slice_start_ = renew_at_;
  until_ = renew_at_ + wire_quota(quota_us);
  TokenActions out{count(Kind::kCountTokens, 1), act(Kind::kStartSlice, renew_at_)};
  append(&out, hold_next(f));
  return out;
}

TokenActions TokenMachine::on_pmgr(const TokenFacts& f, PmgrEvent ev) {
  if (ev == PmgrEvent::kRevoked) {
    TokenActions out{count(Kind::kCountRevocations, 1),
                     warn("the scheduler took the token back (held past quota + lease grace)")};
    append(&out, end_slice(f, false));
    return out;
  }
  if (ev == PmgrEvent::kBroken) return end_slice(f, false);
  if (f.entered != seen_ || f.entered != f.exited || f.pacing) {
    seen_ = f.entered;
    last_activity_ = f.now;
  } else if (f.now - last_activity_ >= poll_us() + grace_us()) {
    // No launch for a poll and the grace: ask the GPU. A latency client whose last sync covered
    // every launch has nothing on the GPU: it is idle without a second sync (issue 19).
    if (latency_ && synced_ == f.entered) return end_slice(f, true);
    state_ = State::kSyncing;
    return {act(Kind::kSync)};
  }
  return hold_next(f);
}

TokenActions TokenMachine::on_sync(const TokenFacts& f, bool ran, Micros waited_us) {
  if (from_unthrottled_) {  // the unthrottled work is done: the slice starts with what is left
    quota_ = std::max<Micros>(quota_ - (f.now - asked_at_), kTokenMinQuota);
    from_unthrottled_ = false;
    return begin_slice(f);
  }
  // A sync that returns at once found the work finished: the client is idle and gives the token
  // back, whatever is left of its quota (work conservation, docs/scheduling.md). One that waited
  // means the program probably waits for the GPU too (a synchronise after each step): it gets the
  // grace again from when the GPU went quiet. While a stream captures the GPU cannot be asked
  // (capture_rule.h): a program recording a graph launches no GPU work, so it is idle.
  // A quick sync while the program waited for the GPU itself caught that work finishing: the
  // program launches again microseconds later (a PyTorch loop granted the token with two matmuls of
  // its step left, H100 trace E8 in docs/scheduling.md). It gets the grace once per launch seen:
  // if an earlier look covered the same launches, the program had that grace and did not launch.
  if (!ran) return end_slice(f, true);
  if (f.entered != seen_) return hold_next(f);
  const bool looked_before = synced_ == seen_;
  synced_ = seen_;  // no launch came during the sync: it covered them all
  if (waited_us <= kSyncWasIdle && (looked_before || !program_waited(f, waited_us))) return end_slice(f, true);
  last_activity_ = f.now - poll_us();
  return hold_next(f);
}

bool TokenMachine::program_waited(const TokenFacts& f, Micros waited_us) {
  return f.program_syncing || (f.program_synced_at > 0 && f.program_synced_at >= f.now - waited_us - kSyncWasIdle);
}

TokenActions TokenMachine::end_slice(const TokenFacts& f, bool idle_release) {
  idle_release_ = idle_release;
  if (idle_release) think_from_ = std::max<Micros>(f.now, 1);
  from_unthrottled_ = false;
  state_ = State::kShutting;
  return {act(Kind::kShut)};
}

TokenActions TokenMachine::on_shut(const TokenFacts& f) {
  if (from_unthrottled_) {
    TokenActions out;
    count_unthrottled(f, &out);
    state_ = State::kSyncing;
    out.push_back(act(Kind::kSync));
    return out;
  }
  state_ = State::kDraining;
  return {act(Kind::kDrain)};
}

TokenActions TokenMachine::on_drained(const TokenFacts& f, Micros used_us, Micros end_us) {
  used_us = std::max<Micros>(used_us, 0);
  // A burst is the GPU time of back-to-back slices up to an idle release (Gemini's kernel burst).
  burst_ += used_us;
  if (idle_release_) {
    last_burst_ = burst_;
    burst_ = 0;
  }
  // A client whose quota ran out is busy and will want the token again even if, right now, its
  // threads wait in a synchronise rather than at the gate; saying so keeps the scheduler from
  // treating it as gone. GPU time used without a token since the last release is reported with
  // this one (the scheduler may charge a report above what it observed, never below).
  const bool again = !idle_release_ || f.waiters;
  if (idle_release_ && f.waiters) note_think(f);  // the program launched again during the drain
  TokenAction r = act(again ? Kind::kReleaseAndRequest : Kind::kRelease);
  r.rel = proto::TokenRelease{wire(used_us), wire(idle_release_ ? last_burst_ : std::max(burst_, last_burst_)),
                              wire(end_us - used_us), wire(end_us), again, wire(unthrottled_us_)};
  unthrottled_us_ = 0;
  state_ = again ? State::kAsking : State::kReleasing;
  return {r};
}

TokenActions TokenMachine::on_released(const TokenFacts& f, bool ok) {
  TokenActions out;
  if (!ok) out.push_back(warn("could not give the token back: pod manager connection lost"));
  // GEMINI_EMPTY_CACHE=1: the cache is emptied at every idle release. By default (unified-memory
  // mode) only when the client is told to evict: emptying a cache the client will refill at its
  // next iteration costs it the refill (docs/memory.md).
  if (config_.empty_cache == 1) out.push_back(act(Kind::kNoteIdleRelease));
  append(&out, wait_idle(f));
  return out;
}

void TokenMachine::count_unthrottled(const TokenFacts& f, TokenActions* out) {
  if (f.entered > counted_) out->push_back(count(Kind::kCountUnthrottled, f.entered - counted_));
  counted_ = f.entered;
}

TokenActions TokenMachine::on_tick(const TokenFacts& f) {
  if (state_ != State::kUnthrottled) return wait_idle(f);  // failing closed: look for demand again
  TokenActions out;
  // A tick in which the program launched counts as GPU time used without a token.
  if (f.entered != counted_) unthrottled_us_ = std::min<Micros>(unthrottled_us_ + (f.now - tick_), proto::kMaxWireMicros);
  tick_ = f.now;
  count_unthrottled(f, &out);
  if (f.exiting || f.now < retry_at_ || f.entered == seen_) {  // nothing to ask for yet
    append(&out, unthrottled_wait());
    return out;
  }
  seen_ = f.entered;
  asked_at_ = f.now;
  from_unthrottled_ = true;
  append(&out, obtain(f));
  return out;
}

const char* token_action_name(TokenAction::Kind k) {
  switch (k) {
    case Kind::kWaitDemand: return "wait-demand";
    case Kind::kWaitPmgr: return "wait-pmgr";
    case Kind::kSleep: return "sleep";
    case Kind::kConnect: return "connect";
    case Kind::kRequest: return "request";
    case Kind::kReleaseAndRequest: return "release-and-request";
    case Kind::kRelease: return "release";
    case Kind::kRenew: return "renew";
    case Kind::kOpen: return "open";
    case Kind::kShut: return "shut";
    case Kind::kDrain: return "drain";
    case Kind::kSync: return "sync";
    case Kind::kStartSlice: return "start-slice";
    case Kind::kPrefetch: return "prefetch";
    case Kind::kDropStaleEvict: return "drop-stale-evict";
    case Kind::kEvict: return "evict";
    case Kind::kRetryDeferred: return "retry-deferred";
    case Kind::kPollPmgr: return "poll-pmgr";
    case Kind::kNoteIdleRelease: return "note-idle-release";
    case Kind::kCountTokens: return "count-tokens";
    case Kind::kCountRevocations: return "count-revocations";
    case Kind::kCountUnthrottled: return "count-unthrottled";
    case Kind::kLogWarn: return "warn";
  }
  return "?";
}

std::string TokenMachine::describe() const {
  static const char* const kNames[] = {"Idle",    "Connecting", "Asking",   "Unthrottled", "Starting",  "Holding",
                                       "Syncing", "Renewing",   "Shutting", "Draining",    "Releasing", "FailedClosed"};
  std::ostringstream o;
  o << "state " << kNames[static_cast<int>(state_)] << " quota=" << quota_ << " burst=" << burst_
    << " last_burst=" << last_burst_ << " unthrottled=" << unthrottled_us_ << " retry_at=" << retry_at_;
  if (long_thinks_ > 0) o << " long_thinks=" << long_thinks_;
  if (state_ == State::kHolding || state_ == State::kSyncing || state_ == State::kRenewing) {
    o << " start=" << slice_start_ << " until=" << until_;
  }
  return o.str();
}

}  // namespace gem::hook
