// gem-pmgr's Route (the pure per-scheduler core) driven by scenario scripts with a simulated clock,
// like etcd raft's interaction tests (the format: script.h). Each file in tests/unit/testdata/route/
// is a list of "> T_MS command args..." lines, each followed by the actions the route must return.
// Commands:
//   hook H hello|gone                     hook H request [burst=B]
//   hook H release used=U end=E [burst=B] [again]      (µs; "max" is UINT64_MAX)
//   hook H renew used=U [burst=B]          every hook and mem command takes [id=N] (its request id)
//   mem H hello [gpu=D]                    a memory session for GPU D (default 0)
//   mem H reserve need=N want=W [existing] mem H return bytes=B    mem H query    (sizes: script_num)
//   sched connected|lost|heard|heartbeat|error|evict  sched settings req=R lim=L mem=M [flags=F]
//   sched grant Q [id=N]    sched revoke HELD          tick    state    memory
// Run with GEM_REWRITE=1 to rewrite the files with what the route does now (then review the diff).
#include "../../pod-manager/route.h"

#include <gtest/gtest.h>

#include <memory>
#include <sstream>

#include "script.h"

namespace gem::pmgr {
namespace {

using gem::testing::script_num;

std::string gpu_uuid(uint64_t d) {
  char buf[64];
  snprintf(buf, sizeof(buf), "GPU-fa4e0000-0000-0000-0000-%012llx", static_cast<unsigned long long>(d));
  return buf;
}

const char* code_name(proto::ErrorCode c) {
  switch (c) {
    case proto::ErrorCode::kUnknownClient: return "UnknownClient";
    case proto::ErrorCode::kSchedulerUnavailable: return "SchedulerUnavailable";
    case proto::ErrorCode::kProtocol: return "Protocol";
    case proto::ErrorCode::kRemoved: return "Removed";
    case proto::ErrorCode::kDenied: return "Denied";
    case proto::ErrorCode::kBusy: return "Busy";
  }
  return "?";
}

std::string body_text(const proto::Message& m) {
  std::ostringstream o;
  const proto::Body& b = m.body;
  if (const auto* s = std::get_if<proto::ClientSettings>(&b)) {
    o << "ClientSettings req=" << s->request_ppm << " lim=" << s->limit_ppm << " mem=" << s->gpu_mem_bytes;
  } else if (const auto* g = std::get_if<proto::TokenGrant>(&b)) {
    o << "TokenGrant quota=" << g->quota_us;
  } else if (const auto* e = std::get_if<proto::Error>(&b)) {
    o << "Error " << code_name(e->code);
  } else if (const auto* r = std::get_if<proto::TokenRevoke>(&b)) {
    o << "TokenRevoke held=" << r->held_us;
  } else if (const auto* h = std::get_if<proto::Hello>(&b)) {
    o << "Hello client=" << h->client << " uuid=" << h->device_uuid << " pid=" << h->pid << " secret=" << h->secret;
  } else if (const auto* q = std::get_if<proto::TokenRequest>(&b)) {
    o << "TokenRequest burst=" << q->last_burst_us;
  } else if (const auto* rel = std::get_if<proto::TokenRelease>(&b)) {
    o << "TokenRelease used=" << rel->used_us << " burst=" << rel->burst_us << " again=" << rel->again;
  } else if (const auto* ren = std::get_if<proto::TokenRenew>(&b)) {
    o << "TokenRenew used=" << ren->used_us << " burst=" << ren->burst_us;
  } else if (const auto* ms = std::get_if<proto::MemState>(&b)) {
    o << "MemState limit=" << ms->limit_bytes << " held=" << ms->client_held_bytes << " granted=" << ms->granted_bytes;
    if (ms->flags != 0) o << " flags=" << ms->flags;
  } else if (const auto* u = std::get_if<proto::MemUsage>(&b)) {
    o << "MemUsage bytes=" << u->bytes << " flags=" << u->flags;
  } else {
    o << proto::type_name(b);
  }
  if (m.request_id != 0) o << " id=" << m.request_id;
  return o.str();
}

std::string action_text(const Action& a) {
  switch (a.kind) {
    case Action::Kind::kToHook: return "hook " + std::to_string(a.hook) + " <- " + body_text(a.msg);
    case Action::Kind::kToScheduler: return "sched <- " + body_text(a.msg);
    case Action::Kind::kConnect: return "connect";
    case Action::Kind::kCloseScheduler: return a.why.empty() ? "close (quiet)" : "close: " + a.why;
    case Action::Kind::kDropHook: return "drop hook " + std::to_string(a.hook) + ": " + a.why;
  }
  return "?";
}

// One scenario: the route under test and the interpreter of its commands.
class Scenario {
 public:
  Scenario() : route_(options()) {}

  static RouteOptions options() {
    RouteOptions o;
    o.client = "c";
    o.device_uuid = "GPU-fa4e0000-0000-0000-0000-000000000000";
    o.secret = "s3";
    o.pid = 7;
    o.scheduler_timeout = 600000;
    o.retry_period = 1000000;
    o.heartbeat_period = 200000;
    return o;
  }

  // Runs one command line (without "> "); returns the route's actions, one line each.
  std::vector<std::string> run(const std::string& line) {
    const gem::testing::Command c = gem::testing::parse_command(line);
    const std::string& t_ms = c.words.at(0);
    const std::string& who = c.words.at(1);
    const Micros now = static_cast<Micros>(std::stoll(t_ms)) * 1000;
    const std::vector<std::string> words(c.words.begin() + 2, c.words.end());
    auto get = [&](const std::string& k) { return c.kv.count(k) ? script_num(c.kv.at(k)) : 0; };
    Actions acts;
    std::vector<std::string> out;
    if (who == "hook") {
      const HookId h = std::stoull(words.at(0));
      const std::string& verb = words.at(1);
      const uint64_t id = get("id");
      if (verb == "hello") {
        route_.hook_hello(h, id, now, &acts);
      } else if (verb == "request") {
        route_.hook_request(h, id, proto::TokenRequest{get("burst")}, now, &acts);
      } else if (verb == "release") {
        const bool again = c.flag("again");
        route_.hook_release(h, id, proto::TokenRelease{get("used"), get("burst"), 0, get("end"), again}, now, &acts);
      } else if (verb == "renew") {
        route_.hook_renew(h, id, proto::TokenRenew{get("used"), get("burst")}, now, &acts);
      } else if (verb == "gone") {
        route_.hook_gone(h, now, &acts);
      } else {
        ADD_FAILURE() << "unknown hook command: " << line;
      }
    } else if (who == "sched") {
      const std::string& verb = words.at(0);
      const uint64_t id = get("id");
      if (verb == "connected") {
        route_.sched_connected(now, &acts);
      } else if (verb == "lost") {
        route_.sched_lost("connection closed by peer", now, &acts);
      } else if (verb == "heard") {
        route_.sched_heard(now);
      } else if (verb == "heartbeat") {
        route_.sched_message({0, proto::Heartbeat{}}, now, &acts);
      } else if (verb == "error") {  // code=NAME (code_name's names); UnknownClient by default
        proto::ErrorCode code = proto::ErrorCode::kUnknownClient;
        if (c.kv.count("code")) {
          bool known = false;
          for (int i = 1; i <= 6; ++i) {
            if (c.kv.at("code") == code_name(static_cast<proto::ErrorCode>(i))) {
              code = static_cast<proto::ErrorCode>(i);
              known = true;
            }
          }
          if (!known) ADD_FAILURE() << "unknown error code: " << line;
        }
        route_.sched_message({id, proto::Error{code, "no such client"}}, now, &acts);
      } else if (verb == "settings") {
        route_.sched_message({id, proto::ClientSettings{static_cast<uint32_t>(get("req")), static_cast<uint32_t>(get("lim")),
                                                        get("mem"), static_cast<uint32_t>(get("flags"))}},
                             now, &acts);
      } else if (verb == "evict") {
        route_.sched_message({0, proto::Evict{}}, now, &acts);
      } else if (verb == "grant") {
        route_.sched_message({id, proto::TokenGrant{script_num(words.at(1))}}, now, &acts);
      } else if (verb == "revoke") {
        route_.sched_message({0, proto::TokenRevoke{script_num(words.at(1))}}, now, &acts);
      } else {
        ADD_FAILURE() << "unknown sched command: " << line;
      }
    } else if (who == "mem") {
      const HookId h = std::stoull(words.at(0));
      const std::string& verb = words.at(1);
      const uint64_t id = get("id");
      if (verb == "hello") {
        route_.mem_hello(h, gpu_uuid(get("gpu")), id, now, &acts);
      } else if (verb == "reserve") {
        route_.mem_reserve(h, id, proto::MemReserve{get("need"), get("want"), c.flag("existing")}, now, &acts);
      } else if (verb == "return") {
        route_.mem_return(h, id, proto::MemReturn{get("bytes")}, now, &acts);
      } else if (verb == "query") {
        route_.mem_query(h, id, now, &acts);
      } else if (verb == "gone") {
        route_.hook_gone(h, now, &acts);
      } else {
        ADD_FAILURE() << "unknown mem command: " << line;
      }
    } else if (who == "memory") {
      out.push_back(memory_line());
    } else if (who == "tick") {
      route_.tick(now, &acts);
    } else if (who == "state") {
      out.push_back(state_line());
    } else {
      ADD_FAILURE() << "unknown command: " << line;
    }
    for (const Action& a : acts) out.push_back(action_text(a));
    return out;
  }

 private:
  std::string state_line() const {
    std::ostringstream o;
    o << "state " << Route::state_name(route_.state()) << " token=" << (route_.token().held() ? "held" : "none")
      << " holders=";
    const auto hs = route_.token().holders();
    for (size_t i = 0; i < hs.size(); ++i) o << (i ? "," : "") << hs[i];
    if (hs.empty()) o << "-";
    o << " waiters=" << route_.waiter_count() << " requested=" << route_.requested()
      << " renewing=" << route_.renewing();
    const Micros d = route_.next_deadline();
    o << " next=";
    if (d == kNever) {
      o << "never";
    } else {
      o << d / 1000;
    }
    return o.str();
  }

  std::string memory_line() const {
    const MemSessions& m = route_.memory();
    std::ostringstream o;
    o << "memory known=" << m.known() << " limit=" << m.limit() << " sessions=" << m.count()
      << " hooks=" << route_.hook_count();
    o << " held=" << m.budget().held() << " leases=" << m.budget().sessions();
    return o.str();
  }

  Route route_;
};

TEST(RouteScenario, AllScriptsPass) {
  gem::testing::run_all_scripts("route", 15, [](const std::string&) {
    auto sc = std::make_shared<Scenario>();
    return [sc](const std::string& line) { return sc->run(line); };
  });
}

// Properties that are easier to state in code than in a script.

TEST(Route, IdleRouteHasNoDeadline) {
  Route r(Scenario::options());
  EXPECT_EQ(r.next_deadline(), kNever) << "an idle gem-pmgr sleeps in poll (at most 200 ms at a time)";
}

TEST(Route, HostileReleaseValuesAreClampedToTheHold) {
  Route r(Scenario::options());
  Actions a;
  r.hook_hello(1, 1, 0, &a);
  r.sched_connected(0, &a);
  r.sched_message({1, proto::ClientSettings{}}, 0, &a);
  r.hook_request(1, 2, {}, 0, &a);
  r.sched_message({0, proto::TokenGrant{UINT64_MAX}}, 1000, &a);
  a.clear();
  r.hook_release(1, 3, proto::TokenRelease{UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, false}, 51000, &a);
  ASSERT_EQ(a.size(), 1u);
  const auto* rel = std::get_if<proto::TokenRelease>(&a[0].msg.body);
  ASSERT_NE(rel, nullptr);
  EXPECT_EQ(rel->used_us, 50000u) << "held from 1 ms to 51 ms";
  EXPECT_EQ(rel->burst_us, static_cast<uint64_t>(proto::kMaxWireMicros));
}

TEST(Route, MemoryUsesTheDeclaredLimitWhenTheSchedulerIsUnreachable) {
  RouteOptions o = Scenario::options();
  o.has_declared = true;
  o.declared.gpu_mem_bytes = 3ULL << 30;
  Route r(o);
  Actions a;
  r.mem_hello(4, "GPU-fa4e0000-0000-0000-0000-000000000000", 9, 0, &a);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, Action::Kind::kConnect);
  a.clear();
  r.sched_connected(10, &a);
  r.sched_message({1, proto::Error{proto::ErrorCode::kUnknownClient, "no such client"}}, 20, &a);
  const auto* st = a.empty() ? nullptr : std::get_if<proto::MemState>(&a.back().msg.body);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(a.back().hook, 4u);
  EXPECT_EQ(a.back().msg.request_id, 9u);
  EXPECT_EQ(st->limit_bytes, 3ULL << 30) << "gem-schd refused the client: the declared --gpu_mem applies";
  a.clear();
  r.mem_reserve(4, 10, proto::MemReserve{3ULL << 30, 3ULL << 30, false}, 30, &a);
  r.mem_reserve(4, 11, proto::MemReserve{1, 1, false}, 40, &a);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(std::get<proto::MemState>(a[0].msg.body).granted_bytes, 3ULL << 30);
  EXPECT_EQ(std::get<proto::MemState>(a[1].msg.body).granted_bytes, 0u);
}

TEST(Route, MemorySessionsKeepTheRouteBusyAndGetNoTokenMessages) {
  Route r(Scenario::options());
  Actions a;
  r.mem_hello(1, "GPU-fa4e0000-0000-0000-0000-000000000000", 1, 0, &a);
  EXPECT_EQ(r.hook_count(), 1u);
  EXPECT_EQ(r.next_deadline(), 200000) << "the next heartbeat to the waiting Hello";
  a.clear();
  r.sched_connected(10, &a);
  r.sched_message({1, proto::ClientSettings{1, 2, 0}}, 20, &a);
  r.sched_message({0, proto::ClientSettings{1, 3, 0}}, 30, &a);
  ASSERT_EQ(a.size(), 2u) << "the Hello to gem-schd and the MemState answer; a reload keeping GPU_MEM is not pushed";
  EXPECT_TRUE(std::holds_alternative<proto::MemState>(a[1].msg.body));
  EXPECT_EQ(r.next_deadline(), kNever);
  a.clear();
  r.hook_gone(1, 40, &a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(r.hook_count(), 0u);
}

TEST(Route, LongErrorTextsFitInAFrame) {
  Route r(Scenario::options());
  Actions a;
  r.hook_hello(1, 1, 0, &a);
  r.sched_lost(std::string(1000, 'x'), 0, &a);
  a.clear();
  r.hook_request(1, 2, {}, 1000, &a);
  ASSERT_EQ(a.size(), 1u);
  std::vector<uint8_t> frame;
  EXPECT_TRUE(proto::encode(a[0].msg, &frame));
}

}  // namespace
}  // namespace gem::pmgr
