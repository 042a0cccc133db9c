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

#include "route_script.h"
#include "script.h"

namespace gem::pmgr {
namespace {

using gem::testing::script_num;

using Scenario = RouteInterpreter;


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
