// The hook's TokenMachine (hook/token_machine.h, the pure token protocol) driven by scenario
// scripts with a simulated clock, like etcd raft's interaction tests (the format: script.h). Each
// file in tests/unit/testdata/token/ is a list of "> T_US command args..." lines (T in µs on the
// simulated clock), each followed by the actions the machine returns, one line each.
// Commands (what the token worker reports):
//   start    fork            demand | no-demand              connected | connect-failed why=W
//   granted Q | refused why=W | broken why=W       (the answer to request / release-and-request)
//   released | release-failed                      renewed Q | renew-refused | renew-broken
//   event none|revoked|broken|evict                tick      shut-done     prefetched
//   drained used=U end=E     synced waited=W | sync-refused      polled [evict] [flags=F]
//   evict-while-waiting [flags=F]                  state
// Facts (the gate's counts, the connection, the residency) are key=value words on any command and
// keep their value until set again: entered= exited= pacing= waiters= exiting= connected= managed=
// evicted= latency= program_syncing= (0 or 1 for the flags) program_synced_at= (µs). `connected` sets connected=1; a broken answer or event
// and release-failed set it to 0, as PmgrClient closes the connection then.
// The machine is built with GEMINI_IDLE_MS 1 ms (idle_us=1000), fail-open, GEMINI_EMPTY_CACHE
// unset; a file's first line "# config fail_closed empty_cache=1 idle_us=N" changes that.
// Every list the machine returns must end with exactly one next step (a wait or an action with a
// result) and hold no other: the driver prints "ERROR ..." otherwise.
// Run with GEM_REWRITE=1 to rewrite the files with what the machine does now (then review the diff).
#include "../../hook/token_machine.h"

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <random>
#include <sstream>

#include "script.h"

namespace gem::hook {
namespace {

using gem::testing::script_num;
using K = TokenAction::Kind;

bool is_next_step(K k) {
  switch (k) {
    case K::kWaitDemand: case K::kWaitPmgr: case K::kSleep: case K::kConnect: case K::kRequest:
    case K::kReleaseAndRequest: case K::kRelease: case K::kRenew: case K::kShut: case K::kDrain:
    case K::kSync: case K::kPrefetch: case K::kPollPmgr:
      return true;
    default:
      return false;
  }
}

std::string action_text(const TokenAction& a) {
  std::ostringstream o;
  o << token_action_name(a.kind);
  switch (a.kind) {
    case K::kWaitDemand: case K::kWaitPmgr: case K::kSleep: o << " " << a.us << "us"; break;
    case K::kRequest: o << " burst=" << a.us; break;
    case K::kRenew: o << " used=" << a.us << " burst=" << a.burst; break;
    case K::kStartSlice: o << " at=" << a.us; break;
    case K::kRelease: case K::kReleaseAndRequest:
      o << " used=" << a.rel.used_us << " burst=" << a.rel.burst_us << " start=" << a.rel.start_us
        << " end=" << a.rel.end_us << " again=" << a.rel.again << " unthrottled=" << a.rel.unthrottled_us;
      break;
    case K::kEvict: o << (a.flag ? " demand_paging" : " bulk"); break;
    case K::kCountTokens: case K::kCountRevocations: case K::kCountUnthrottled: o << " +" << a.n; break;
    case K::kLogWarn: o << ": " << a.text; break;
    default: break;
  }
  return o.str();
}

TokenConfig config_from(const std::string& path) {
  TokenConfig c;
  c.idle_us = 1000;
  c.pod_manager = "unix:/run/gem/pmgr.sock";
  std::ifstream f(path);
  std::string first;
  std::getline(f, first);
  if (first.rfind("# config", 0) != 0) return c;
  const gem::testing::Command cmd = gem::testing::parse_command(first.substr(8));
  c.fail_closed = cmd.flag("fail_closed");
  if (cmd.kv.count("empty_cache")) c.empty_cache = std::stoi(cmd.kv.at("empty_cache"));
  if (cmd.kv.count("idle_us")) c.idle_us = static_cast<Micros>(script_num(cmd.kv.at("idle_us")));
  return c;
}

class Scenario {
 public:
  explicit Scenario(TokenConfig c) : m_(std::move(c)) {}

  std::vector<std::string> run(const std::string& line) {
    const gem::testing::Command c = gem::testing::parse_command(line);
    if (c.words.back() == "state") return {m_.describe()};
    f_.now = static_cast<Micros>(std::stoll(c.words.at(0)));
    const std::string& verb = c.words.at(1);
    const std::string arg = c.words.size() > 2 ? c.words[2] : "";
    set_facts(c);
    auto get = [&](const std::string& k) { return c.kv.count(k) ? script_num(c.kv.at(k)) : 0; };
    auto why = [&] { return c.kv.count("why") ? c.kv.at("why") : std::string("no reason"); };
    TokenActions acts;
    bool side_only = false;
    if (verb == "start") {
      acts = m_.start(f_);
    } else if (verb == "fork") {  // the child's first launch starts a new worker thread
      m_.reset_after_fork();
      acts = m_.start(f_);
    } else if (verb == "demand" || verb == "no-demand") {
      acts = m_.on_demand(f_, verb == "demand");
    } else if (verb == "connected") {
      f_.connected = true;
      acts = m_.on_connect(f_, true, "");
    } else if (verb == "connect-failed") {
      acts = m_.on_connect(f_, false, why());
    } else if (verb == "granted") {
      acts = m_.on_answer(f_, TokenAnswer::kGranted, script_num(arg), "");
    } else if (verb == "refused") {
      acts = m_.on_answer(f_, TokenAnswer::kRefused, 0, why());
    } else if (verb == "broken") {
      f_.connected = false;
      acts = m_.on_answer(f_, TokenAnswer::kBroken, 0, why());
    } else if (verb == "released" || verb == "release-failed") {
      if (verb == "release-failed") f_.connected = false;
      acts = m_.on_released(f_, verb == "released");
    } else if (verb == "renewed") {
      acts = m_.on_renew(f_, TokenAnswer::kGranted, script_num(arg));
    } else if (verb == "renew-refused") {
      acts = m_.on_renew(f_, TokenAnswer::kGranted, 0);
    } else if (verb == "renew-broken") {
      f_.connected = false;
      acts = m_.on_renew(f_, TokenAnswer::kBroken, 0);
    } else if (verb == "event") {
      PmgrEvent ev = PmgrEvent::kNone;
      if (arg == "revoked") ev = PmgrEvent::kRevoked;
      if (arg == "broken") ev = PmgrEvent::kBroken, f_.connected = false;
      if (arg == "evict") ev = PmgrEvent::kEvict;
      acts = m_.on_pmgr(f_, ev);
    } else if (verb == "tick") {
      acts = m_.on_tick(f_);
    } else if (verb == "shut-done") {
      acts = m_.on_shut(f_);
    } else if (verb == "drained") {
      acts = m_.on_drained(f_, static_cast<Micros>(get("used")), static_cast<Micros>(get("end")));
    } else if (verb == "synced" || verb == "sync-refused") {
      acts = m_.on_sync(f_, verb == "synced", static_cast<Micros>(get("waited")));
    } else if (verb == "prefetched") {
      acts = m_.on_prefetched(f_);
    } else if (verb == "polled") {
      acts = m_.on_polled(f_, c.flag("evict"), static_cast<uint32_t>(get("flags")));
    } else if (verb == "evict-while-waiting") {
      acts = m_.on_evict(f_, static_cast<uint32_t>(get("flags")));
      side_only = true;
    } else {
      ADD_FAILURE() << "unknown command: " << line;
    }
    std::vector<std::string> out;
    for (size_t i = 0; i < acts.size(); ++i) {
      out.push_back(action_text(acts[i]));
      const bool last = i + 1 == acts.size();
      if (is_next_step(acts[i].kind) && (side_only || !last)) out.push_back("ERROR a next step before the end");
    }
    if (!side_only && (acts.empty() || !is_next_step(acts.back().kind))) out.push_back("ERROR no next step");
    return out;
  }

 private:
  void set_facts(const gem::testing::Command& c) {
    auto num = [&](const char* k, uint64_t* v) { if (c.kv.count(k)) *v = script_num(c.kv.at(k)); };
    auto flag = [&](const char* k, bool* v) { if (c.kv.count(k)) *v = c.kv.at(k) != "0"; };
    num("entered", &f_.entered);
    num("exited", &f_.exited);
    flag("pacing", &f_.pacing);
    flag("waiters", &f_.waiters);
    flag("exiting", &f_.exiting);
    flag("connected", &f_.connected);
    flag("managed", &f_.managed);
    flag("evicted", &f_.evicted);
    flag("latency", &f_.latency);
    flag("program_syncing", &f_.program_syncing);
    if (c.kv.count("program_synced_at")) f_.program_synced_at = static_cast<Micros>(script_num(c.kv.at("program_synced_at")));
  }

  TokenMachine m_;
  TokenFacts f_;
};

TEST(TokenMachineScenario, AllScriptsPass) {
  gem::testing::run_all_scripts("token", 10, [](const std::string& path) {
    auto sc = std::make_shared<Scenario>(config_from(path));
    return [sc](const std::string& line) { return sc->run(line); };
  });
}

// A token worker that answers every next step with a report chosen at random (a fixed seed per
// run), over many steps: whatever the pod manager, the GPU and the program do, the machine keeps the
// rules a user relies on.
class RandomWalk {
 public:
  RandomWalk(TokenConfig c, uint32_t seed) : fail_closed_(c.fail_closed), m_(std::move(c)), rng_(seed) {
    f_.managed = pick(2) == 0;
  }

  void run(int steps) {
    TokenActions acts = check(m_.start(f_), false);
    for (int i = 0; i < steps && !::testing::Test::HasFailure(); ++i) acts = check(report(acts.back()), false);
  }

 private:
  uint64_t pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  void advance(Micros most) { f_.now += static_cast<Micros>(pick(static_cast<uint64_t>(most) + 1)); }
  // The program launches while the gate is open, and some wait at it while it is shut.
  void program() {
    if (open_ && pick(2) == 0) {
      const uint64_t n = pick(5);
      f_.entered += n;
      f_.exited += n;
    }
    f_.waiters = !open_ && pick(3) == 0;
    f_.pacing = open_ && pick(8) == 0;
    f_.latency = pick(4) == 0;
    f_.program_syncing = pick(4) == 0;
    if (pick(4) == 0) f_.program_synced_at = f_.now;
    f_.evicted = f_.managed && pick(3) == 0;
  }
  TokenAnswer answer() {
    const uint64_t r = pick(6);
    if (r == 5) f_.connected = false;
    return r < 3 ? TokenAnswer::kGranted : r < 5 ? TokenAnswer::kRefused : TokenAnswer::kBroken;
  }
  uint64_t quota() { return pick(8) == 0 ? UINT64_MAX : pick(20000); }
  void failed() { failed_at_ = f_.now; }

  TokenActions report(const TokenAction& a) {
    program();
    switch (a.kind) {
      case K::kWaitDemand: advance(a.us); return m_.on_demand(f_, pick(2) == 0);
      case K::kWaitPmgr: {
        advance(a.us);
        const uint64_t r = pick(20);
        if (r == 0) return m_.on_pmgr(f_, PmgrEvent::kRevoked);
        if (r == 1) { f_.connected = false; return m_.on_pmgr(f_, PmgrEvent::kBroken); }
        return m_.on_pmgr(f_, r == 2 ? PmgrEvent::kEvict : PmgrEvent::kNone);
      }
      case K::kSleep: f_.now += a.us; return m_.on_tick(f_);
      case K::kConnect: {
        advance(100);
        f_.connected = pick(3) != 0;
        if (!f_.connected) failed();
        return m_.on_connect(f_, f_.connected, "refused");
      }
      case K::kRequest: case K::kReleaseAndRequest: {
        if (pick(4) == 0) check(m_.on_evict(f_, static_cast<uint32_t>(pick(2))), true);
        advance(3000);
        const TokenAnswer ans = answer();
        if (ans != TokenAnswer::kGranted) failed();
        return m_.on_answer(f_, ans, quota(), "why");
      }
      case K::kRelease: advance(100); return m_.on_released(f_, pick(4) != 0);
      case K::kRenew: { advance(100); const TokenAnswer ans = answer(); return m_.on_renew(f_, ans, quota()); }
      case K::kShut: advance(100); return m_.on_shut(f_);
      case K::kDrain: {
        advance(1000);
        const Micros used = static_cast<Micros>(pick(5000));
        drained_used_ = used;
        drained_end_ = f_.now;
        return m_.on_drained(f_, used, f_.now);
      }
      case K::kSync: { const Micros w = static_cast<Micros>(pick(1000)); f_.now += w; return m_.on_sync(f_, pick(5) != 0, w); }
      case K::kPrefetch: advance(1000); return m_.on_prefetched(f_);
      case K::kPollPmgr: return m_.on_polled(f_, pick(2) == 0, static_cast<uint32_t>(pick(2)));
      default: ADD_FAILURE() << "not a next step: " << token_action_name(a.kind); return m_.start(f_);
    }
  }

  // The rules, checked on each list as the worker performs it.
  TokenActions check(TokenActions acts, bool side_only) {
    const std::string at = " at t=" + std::to_string(f_.now) + " in " + m_.describe();
    if (!side_only) {
      EXPECT_FALSE(acts.empty()) << at;
    }
    for (size_t i = 0; i < acts.size(); ++i) {
      const TokenAction& a = acts[i];
      const bool last = i + 1 == acts.size();
      EXPECT_EQ(is_next_step(a.kind), last && !side_only) << action_text(a) << at;
      switch (a.kind) {
        case K::kOpen:
          // Fail-closed, the gate opens only for a slice; it never opens twice.
          EXPECT_FALSE(open_) << "opened an open gate" << at;
          if (fail_closed_) {
            EXPECT_TRUE(slice_) << "fail-closed gate opened without a token" << at;
          }
          open_ = true;
          break;
        case K::kShut: open_ = false; slice_ = false; break;
        case K::kStartSlice: slice_ = true; ++slices_; break;
        case K::kCountTokens: tokens_ += a.n; break;
        case K::kWaitDemand: EXPECT_FALSE(open_) << "waits for demand with the gate open" << at; break;
        case K::kWaitPmgr:
          EXPECT_TRUE(slice_ && open_) << at;
          EXPECT_GT(a.us, 0) << "a zero wait would spin" << at;
          EXPECT_LE(a.us, kIdlePoll) << at;
          break;
        case K::kRelease: case K::kReleaseAndRequest:
          EXPECT_FALSE(open_) << "gave the token back with the gate open" << at;
          EXPECT_EQ(a.rel.used_us, static_cast<uint64_t>(drained_used_)) << at;
          EXPECT_EQ(a.rel.end_us, static_cast<uint64_t>(drained_end_)) << at;
          EXPECT_EQ(a.rel.start_us + a.rel.used_us, a.rel.end_us) << at;
          break;
        case K::kRenew: EXPECT_GE(a.us, 0) << at; EXPECT_GE(a.burst, a.us) << at; break;
        case K::kDrain: EXPECT_FALSE(open_) << "drained with the gate open" << at; break;
        default: break;
      }
      // After a failed answer or connection, nothing is asked before kRetryPeriod.
      if ((a.kind == K::kConnect || a.kind == K::kRequest) && failed_at_ >= 0) {
        EXPECT_GE(f_.now, failed_at_ + kRetryPeriod) << action_text(a) << at;
      }
    }
    EXPECT_EQ(tokens_, slices_) << "one token counted per slice started" << at;
    return acts;
  }

  const bool fail_closed_;
  TokenMachine m_;
  std::mt19937 rng_;
  TokenFacts f_;
  bool open_ = false, slice_ = false;
  uint64_t tokens_ = 0, slices_ = 0;
  Micros failed_at_ = -1, drained_used_ = 0, drained_end_ = 0;
};

TEST(TokenMachineRandomWalk, KeepsTheGateRulesWhateverHappens) {
  for (const bool fail_closed : {false, true}) {
    for (uint32_t seed = 1; seed <= 20; ++seed) {
      SCOPED_TRACE("seed " + std::to_string(seed) + (fail_closed ? " fail-closed" : " fail-open"));
      TokenConfig c;
      c.idle_us = seed % 2 ? 1000 : 100;
      c.fail_closed = fail_closed;
      c.empty_cache = static_cast<int>(seed % 3) - 1;
      RandomWalk(c, seed).run(5000);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

}  // namespace
}  // namespace gem::hook
