#include "token_worker.h"

#include <time.h>

#include "cache_emptier.h"
#include "capture_state.h"
#include "gate.h"
#include "gate_registry.h"
#include "gem/log.h"
#include "settings.h"
#include "slice_timer.h"
#include "stats.h"

namespace gem::hook {

namespace {

void sleep_us(Micros us) {
  if (us <= 0) return;
  timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>((us % 1000000) * 1000)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

TokenConfig token_config() {
  const Settings& s = settings();
  TokenConfig c;
  c.idle_us = s.idle_us;
  c.fail_closed = s.fail_closed;
  c.empty_cache = s.empty_cache;
  c.pod_manager = s.pod_manager.to_string();
  return c;
}

TokenAnswer token_answer(PmgrClient::Answer a) {
  switch (a) {
    case PmgrClient::Answer::kGranted: return TokenAnswer::kGranted;
    case PmgrClient::Answer::kRefused: return TokenAnswer::kRefused;
    case PmgrClient::Answer::kBroken: return TokenAnswer::kBroken;
  }
  return TokenAnswer::kBroken;
}

PmgrEvent pmgr_event(PmgrClient::Event e) {
  switch (e) {
    case PmgrClient::Event::kNone: return PmgrEvent::kNone;
    case PmgrClient::Event::kRevoked: return PmgrEvent::kRevoked;
    case PmgrClient::Event::kBroken: return PmgrEvent::kBroken;
    case PmgrClient::Event::kEvict: return PmgrEvent::kEvict;
  }
  return PmgrEvent::kNone;
}

}  // namespace

TokenWorker::TokenWorker(CUdevice device, Gate& gate, SliceTimer& timer)
    : device_(device), gate_(gate), timer_(timer), machine_(token_config()) {}

TokenFacts TokenWorker::facts() {
  TokenFacts f;
  f.entered = gate_.entered();
  f.exited = gate_.exited();
  f.pacing = gate_.pacing();
  f.waiters = gate_.has_waiters();
  f.exiting = stopping_at_exit();
  f.connected = pmgr_.connected();
  f.managed = residency_.has_managed();
  f.evicted = residency_.evicted();
  f.latency = pmgr_.client_settings().latency_us > 0;
  f.program_syncing = gate_.program_syncing();  // first: a wait that ended has its time stored (gate.h)
  f.program_synced_at = gate_.program_synced_at();
  f.now = mono_us();
  return f;
}

void TokenWorker::run() {
  // Other threads may capture CUDA graphs while this one measures slices: in RELAXED mode its
  // event waits on the hook's own stream are not "potentially unsafe" calls that would invalidate a
  // GLOBAL capture. What is illegal in every mode (cuCtxSynchronize while a stream captures) it
  // leaves out by the capture rule (capture_rule.h).
  set_thread_capture_mode(CU_STREAM_CAPTURE_MODE_RELAXED);
  // A lookup that fails keeps what uuid_ held (a fork()ed child: the parent's).
  if (std::string u = device_uuid(device_); !u.empty()) uuid_ = u;
  // A client waiting for the token does not run, so its memory may leave meanwhile.
  pmgr_.on_evict_while_waiting([this](uint32_t flags) {
    for (const TokenAction& a : machine_.on_evict(facts(), flags)) perform_side(a);
  });
  TokenActions acts = machine_.start(facts());
  for (;;) acts = perform(acts);
}

void TokenWorker::perform_side(const TokenAction& a) {
  using K = TokenAction::Kind;
  switch (a.kind) {
    case K::kOpen: gate_.open(); break;
    case K::kStartSlice: timer_.start(a.us); break;
    case K::kDropStaleEvict: pmgr_.take_evict(); break;
    case K::kEvict: residency_.evict(a.flag); break;
    case K::kRetryDeferred: residency_.retry_deferred(); break;
    case K::kNoteIdleRelease: note_idle_release(); break;
    case K::kCountTokens:
      counters().tokens.fetch_add(a.n, std::memory_order_relaxed);
      note_token_granted();
      break;
    case K::kCountRevocations: counters().revocations.fetch_add(a.n, std::memory_order_relaxed); break;
    case K::kCountUnthrottled: counters().unthrottled_launches.fetch_add(a.n, std::memory_order_relaxed); break;
    case K::kLogWarn: LOG_WARN("%s", a.text.c_str()); break;
    default: break;  // the actions with a result are perform()'s
  }
}

TokenActions TokenWorker::perform(const TokenActions& acts) {
  using K = TokenAction::Kind;
  for (size_t i = 0; i + 1 < acts.size(); ++i) perform_side(acts[i]);
  if (acts.empty()) return machine_.start(facts());  // not reached: every list ends with a next step
  const TokenAction& a = acts.back();
  const Settings& s = settings();
  uint64_t q = 0;
  // GEMINI_LOG_LEVEL=debug: every step of the protocol but the waits and polls, with what the
  // machine and the gate saw (docs/operations.md, "Tracing the token protocol").
  if (a.kind != K::kWaitDemand && a.kind != K::kWaitPmgr && a.kind != K::kSleep && a.kind != K::kPollPmgr) {
    LOG_DEBUG("token: %s %lld us%s (%s; launches entered %llu, exited %llu)", token_action_name(a.kind),
              static_cast<long long>(a.kind == K::kRelease || a.kind == K::kReleaseAndRequest
                                         ? static_cast<Micros>(a.rel.used_us) : a.us),
              a.kind == K::kReleaseAndRequest ? ", again" : "", machine_.describe().c_str(),
              static_cast<unsigned long long>(gate_.entered()), static_cast<unsigned long long>(gate_.exited()));
  }
  switch (a.kind) {
    case K::kWaitDemand: {
      const bool demand = gate_.wait_for_demand_for(a.us);
      return machine_.on_demand(facts(), demand);
    }
    case K::kWaitPmgr: {
      // The connection's poll has ms resolution: below a ms, a look at it, then a sleep.
      const PmgrClient::Event ev = pmgr_.wait_event(a.us >= 1000 ? a.us : 0);
      if (a.us < 1000 && ev == PmgrClient::Event::kNone) sleep_us(a.us);
      return machine_.on_pmgr(facts(), pmgr_event(ev));
    }
    case K::kSleep:
      sleep_us(a.us);
      return machine_.on_tick(facts());
    case K::kConnect: {
      std::string why;
      const bool ok = pmgr_.connect(s.pod_manager, s.client, uuid_, s.secret, s.pmgr_timeout_ms, &why);
      return machine_.on_connect(facts(), ok, why);
    }
    case K::kRequest: {
      const PmgrClient::Answer r = pmgr_.request_token(static_cast<uint64_t>(a.us), &q, &why_);
      return machine_.on_answer(facts(), token_answer(r), q, why_);
    }
    case K::kReleaseAndRequest: {
      const PmgrClient::Answer r = pmgr_.release_and_request(a.rel, &q, &why_);
      return machine_.on_answer(facts(), token_answer(r), q, why_);
    }
    case K::kRelease: {
      const bool ok = pmgr_.release_token(a.rel);
      return machine_.on_released(facts(), ok);
    }
    case K::kRenew: {
      const PmgrClient::Answer r =
          pmgr_.renew_token(static_cast<uint64_t>(a.us), static_cast<uint64_t>(a.burst), &q, &why_);
      return machine_.on_renew(facts(), token_answer(r), q);
    }
    case K::kShut:
      // Launches that passed the gate before it shut are still inside the driver: let them finish
      // queueing (the drain then waits for the GPU).
      gate_.shut();
      gate_.wait_in_flight();
      return machine_.on_shut(facts());
    case K::kDrain: {
      Micros used = 0, end = 0;
      timer_.drain_and_measure(&used, &end);
      return machine_.on_drained(facts(), used, end);
    }
    case K::kSync: {
      const Micros before = mono_us();
      const bool ran = timer_.sync_contexts();
      const Micros waited = mono_us() - before;
      LOG_DEBUG("token: sync %s after %lld us (launches entered %llu; program syncing %d, last returned %lld us ago)",
                ran ? "returned" : "not run", static_cast<long long>(waited),
                static_cast<unsigned long long>(gate_.entered()), gate_.program_syncing() ? 1 : 0,
                static_cast<long long>(gate_.program_synced_at() > 0 ? mono_us() - gate_.program_synced_at() : -1));
      return machine_.on_sync(facts(), ran, waited);
    }
    case K::kPrefetch:
      residency_.prefetch_back();
      return machine_.on_prefetched(facts());
    case K::kPollPmgr: {
      pmgr_.wait_event(0);
      uint32_t flags = 0;
      const bool evict = pmgr_.take_evict(&flags);
      return machine_.on_polled(facts(), evict, flags);
    }
    default:
      // A list must end with a next step; a side action last is a machine defect: look for demand.
      perform_side(a);
      LOG_WARN("token machine: no next step after %s", token_action_name(a.kind));
      return machine_.start(facts());
  }
}

}  // namespace gem::hook
