#include "token_worker.h"

#include <time.h>

#include <algorithm>

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

constexpr Micros kRetryPeriod = 1000000;  // unthrottled stretch before the next attempt, µs
// The least quota a slice starts with after an unthrottled stretch (µs): enough to renew or drain.
constexpr Micros TokenMinQuota = 1000;
// While holding the token the worker looks at the launches this often (µs); a latency client's
// (latency=MS) every kLatencyIdlePoll, with that as its grace too: it holds a co-run token beside
// another client's (docs/scheduling.md) and is charged until it gives it back.
constexpr Micros kIdlePoll = 500;
constexpr Micros kLatencyIdlePoll = 200;
// A cuCtxSynchronize that returns within this (µs) found the GPU already drained.
constexpr Micros kSyncWasIdle = 200;

void sleep_us(Micros us) {
  if (us <= 0) return;
  timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>((us % 1000000) * 1000)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

}  // namespace

void TokenWorker::run() {
  // Other threads may capture CUDA graphs while this one measures slices: in RELAXED mode its
  // event waits on the hook's own stream are not "potentially unsafe" calls that would invalidate a
  // GLOBAL capture. What is illegal in every mode (cuCtxSynchronize while a stream captures) it
  // leaves out by the capture rule (capture_rule.h).
  set_thread_capture_mode(CU_STREAM_CAPTURE_MODE_RELAXED);
  // A lookup that fails keeps what uuid_ held (a fork()ed child: the parent's).
  if (std::string u = device_uuid(device_); !u.empty()) uuid_ = u;
  pmgr_.on_evict_while_waiting([this](uint32_t flags) {
    if (!residency_.evicted()) residency_.evict((flags & proto::kEvictDemandPaging) != 0);
  });
  Micros quota = 0;
  bool have_answer = false;  // a release asked for the token again and its answer is in `next`
  Outcome next = Outcome::kRetryLater;
  for (;;) {
    if (!have_answer) {
      wait_for_demand();
      next = obtain(&quota);
    }
    have_answer = false;
    if (next == Outcome::kRetryLater) {
      sleep_us(kRetryPeriod / 10);
      continue;
    }
    if (next == Outcome::kUnthrottled) run_unthrottled(&quota);
    // The scheduler made this client resident with the grant: an Evict sent before it is stale.
    pmgr_.take_evict();
    residency_.prefetch_back();
    timer_.start(mono_us());
    gate_.open();
    counters().tokens.fetch_add(1, std::memory_order_relaxed);
    note_token_granted();
    const bool idle_release = !hold(timer_.started() + quota);
    gate_.shut();
    // Launches that passed the gate before it shut are still inside the driver: let them finish
    // queueing, then wait for the GPU.
    gate_.wait_in_flight();
    Micros used = 0, end = 0;
    timer_.drain_and_measure(&used, &end);
    // A burst is the GPU time of back-to-back slices up to an idle release (Gemini's kernel burst).
    burst_ += used;
    if (idle_release) {
      last_burst_ = burst_;
      burst_ = 0;
    }
    // A client whose quota ran out is busy and will want the token again even if, right now, its
    // threads wait in a synchronise rather than at the gate; saying so in the release keeps the
    // scheduler from treating it as gone and handing out turns by alternation.
    const bool waiting = gate_.has_waiters();
    const bool again = !idle_release || waiting;
    // GPU time used without a token since the last release is reported with this one (the
    // scheduler may charge a report above what it observed, never below): a client that ran
    // unthrottled through a daemon fault is charged for it and claims no catch-up afterwards.
    proto::TokenRelease rel{static_cast<uint64_t>(used),
                            static_cast<uint64_t>(idle_release ? last_burst_ : std::max(burst_, last_burst_)),
                            static_cast<uint64_t>(end - used), static_cast<uint64_t>(end), again,
                            static_cast<uint64_t>(unthrottled_us_)};
    unthrottled_us_ = 0;
    if (again) {
      uint64_t q = 0;
      const PmgrClient::Answer a = pmgr_.release_and_request(rel, &q, &why_);
      next = answer(a, static_cast<Micros>(q), &quota);
      have_answer = true;
    } else {
      if (!pmgr_.release_token(rel)) LOG_WARN("could not give the token back: pod manager connection lost");
      // GEMINI_EMPTY_CACHE=1: the cache is emptied at every idle release. By default (unified-memory
      // mode) only when the client is told to evict (wait_for_demand): emptying a cache the client
      // will refill at its next iteration costs it the refill (measured, docs/memory.md).
      if (settings().empty_cache == 1) note_idle_release();
    }
  }
}

void TokenWorker::wait_for_demand() {
  for (;;) {
    // 50 ms: how late an Evict may be acted on; a process without managed memory looks once a second.
    const bool um = residency_.has_managed();
    if (gate_.wait_for_demand_for(um ? 50000 : 1000000)) return;
    if (!um || !pmgr_.connected()) continue;
    residency_.retry_deferred();
    pmgr_.wait_event(0);
    uint32_t flags = 0;
    if (pmgr_.take_evict(&flags) && !residency_.evicted()) {
      residency_.evict((flags & proto::kEvictDemandPaging) != 0);
      if (settings().empty_cache != 0) note_idle_release();  // unused cached blocks need not move
    }
  }
}

TokenWorker::Outcome TokenWorker::degraded() const {
  return settings().fail_closed ? Outcome::kRetryLater : Outcome::kUnthrottled;
}

TokenWorker::Outcome TokenWorker::obtain(Micros* quota) {
  const Settings& s = settings();
  if (mono_us() < retry_at_) return degraded();
  if (!pmgr_.connected()) {
    std::string why;
    if (!pmgr_.connect(s.pod_manager, s.client, uuid_, s.secret, s.pmgr_timeout_ms, &why)) {
      retry_at_ = mono_us() + kRetryPeriod;
      if (!warned_) {
        LOG_WARN("pod manager %s unreachable (%s): %s; retrying every second", s.pod_manager.to_string().c_str(),
                 why.c_str(), s.fail_closed ? "launches wait (GEMINI_FAIL_CLOSED=1)" : "running unthrottled");
        warned_ = true;
      }
      return degraded();
    }
  }
  uint64_t q = 0;
  const PmgrClient::Answer a = pmgr_.request_token(static_cast<uint64_t>(last_burst_), &q, &why_);
  return answer(a, static_cast<Micros>(q), quota);
}

TokenWorker::Outcome TokenWorker::answer(PmgrClient::Answer a, Micros granted, Micros* quota) {
  const Settings& s = settings();
  if (a == PmgrClient::Answer::kGranted) {
    if (warned_) LOG_WARN("token granted again: launches are gated again");
    warned_ = false;
    *quota = std::min<Micros>(granted, proto::kMaxWireMicros);
    return Outcome::kGranted;
  }
  if (!warned_) {
    LOG_WARN("no token from pod manager %s (%s): %s; retrying every second", s.pod_manager.to_string().c_str(),
             why_.c_str(), s.fail_closed ? "launches wait (GEMINI_FAIL_CLOSED=1)" : "running unthrottled");
    warned_ = true;
  }
  retry_at_ = mono_us() + kRetryPeriod;
  return degraded();
}

void TokenWorker::run_unthrottled(Micros* quota) {
  uint64_t counted = gate_.entered();
  gate_.open();
  uint64_t seen = counted;
  auto count = [&] {  // launches made unthrottled, counted as they happen (the program may exit)
    const uint64_t e = gate_.entered();
    counters().unthrottled_launches.fetch_add(e - counted, std::memory_order_relaxed);
    counted = e;
  };
  Micros tick = mono_us();
  for (;;) {
    sleep_us(kRetryPeriod / 10);
    // A tick in which the program launched counts as GPU time used without a token.
    const Micros now = mono_us();
    if (gate_.entered() != counted) unthrottled_us_ = std::min<Micros>(unthrottled_us_ + (now - tick), proto::kMaxWireMicros);
    tick = now;
    count();
    if (stopping_at_exit() || mono_us() < retry_at_) continue;
    const uint64_t e = gate_.entered();
    if (e == seen) continue;  // the program does not launch: nothing to ask for
    seen = e;
    const Micros asked = mono_us();
    if (obtain(quota) != Outcome::kGranted) continue;
    // Granted: shut the gate and let the unthrottled work finish before the slice starts.
    gate_.shut();
    gate_.wait_in_flight();
    count();
    timer_.sync_contexts();
    *quota = std::max<Micros>(*quota - (mono_us() - asked), TokenMinQuota);
    return;
  }
}

bool TokenWorker::hold(Micros until) {
  const bool latency = pmgr_.client_settings().latency_us > 0;
  const Micros poll = latency ? kLatencyIdlePoll : kIdlePoll;
  const Micros grace = latency ? std::min(settings().idle_us, kLatencyIdlePoll) : settings().idle_us;
  uint64_t seen = gate_.entered();
  Micros last_activity = mono_us();
  for (;;) {
    const Micros now = mono_us();
    if (now >= until) {
      if (!renew(now, &until)) return true;
      continue;
    }
    // Sleeps on the pod manager's connection (whose poll has ms resolution, so below a ms: a look
    // at it, then a sleep), so a revocation shuts the gate within `poll`; looks at the launches
    // every `poll`.
    const Micros wait = std::min(until - now, poll);
    const PmgrClient::Event ev = pmgr_.wait_event(wait >= 1000 ? wait : 0);
    if (wait < 1000 && ev == PmgrClient::Event::kNone) sleep_us(wait);
    if (ev == PmgrClient::Event::kRevoked) {
      counters().revocations.fetch_add(1, std::memory_order_relaxed);
      LOG_WARN("the scheduler took the token back (held past quota + lease grace)");
      return true;
    }
    if (ev == PmgrClient::Event::kBroken) return true;
    const uint64_t e = gate_.entered();
    const Micros t = mono_us();
    if (e != seen || e != gate_.exited() || gate_.pacing()) {
      seen = e;
      last_activity = t;
    } else if (t - last_activity >= poll + grace) {
      // No launch for a poll and the grace: ask the GPU. A sync that returns at once means the work
      // had finished: the client is idle and gives the token back, whatever is left of its quota
      // (work conservation, docs/scheduling.md). A sync that waited means the program probably
      // waits for the GPU too (a synchronise after each step): it gets the grace again from the
      // moment the GPU went quiet to launch its next step. While a stream captures, the GPU cannot
      // be asked (capture_rule.h): a program recording a graph launches no GPU work, so it is idle.
      const Micros before = mono_us();
      if (!timer_.sync_contexts()) return false;
      const Micros after = mono_us();
      if (gate_.entered() != seen) continue;
      if (after - before <= kSyncWasIdle) return false;
      last_activity = after - poll;
    }
  }
}

bool TokenWorker::renew(Micros now, Micros* until) {
  // Charged by CPU time: the work still queued is measured with the next slice, by the same client.
  const Micros used = now - timer_.started();
  uint64_t q = 0;
  const PmgrClient::Answer a =
      pmgr_.renew_token(static_cast<uint64_t>(used), static_cast<uint64_t>(burst_ + used), &q, &why_);
  if (a != PmgrClient::Answer::kGranted || q == 0) return false;
  counters().tokens.fetch_add(1, std::memory_order_relaxed);
  note_token_granted();
  burst_ += used;
  timer_.start(now);
  *until = now + std::min<Micros>(static_cast<Micros>(q), proto::kMaxWireMicros);
  return true;
}

}  // namespace gem::hook
