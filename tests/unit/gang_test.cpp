// Gang tokens (pod-manager/gang.h) driven by scenario scripts over two routes, r0 and r1 (GPUs 0
// and 1 of one client), with a simulated clock (the format: script.h). Each file in
// tests/unit/testdata/gang/ is a list of "> T_MS command" lines, each followed by what the routes do.
// Commands:
//   rN <route command>     a route command of route_test.cpp (hook, mem, sched) on route rN; then
//                          the gang looks (Gang::update, window 1000 ms)
//   tick                   every route ticks, then the gang looks
//   state                  each route's state line, with gang=0|1 and parked=0|1
// Answers are "rN: <action>" (route_script.h's words). GEM_REWRITE=1 rewrites the files.
#include "../../pod-manager/gang.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "route_script.h"
#include "script.h"

namespace gem::pmgr {
namespace {

class GangScenario {
 public:
  GangScenario() : gang_(1000000) {
    for (uint64_t d = 0; d < 2; ++d) {
      routes_["r" + std::to_string(d)] = std::make_unique<RouteInterpreter>(RouteInterpreter::options(d));
    }
  }

  std::vector<std::string> run(const std::string& line) {
    const gem::testing::Command c = gem::testing::parse_command(line);
    const Micros now = static_cast<Micros>(std::stoll(c.words.at(0))) * 1000;
    const std::string& who = c.words.at(1);
    std::vector<std::string> out;
    if (who == "state") {
      for (const auto& [name, r] : routes_) {
        out.push_back(name + ": " + r->state_line() + " gang=" + std::to_string(r->route().gang()) +
                      " parked=" + std::to_string(r->route().parked()));
      }
      return out;
    }
    if (who == "tick") {
      for (const auto& [name, r] : routes_) {
        Actions acts;
        r->route().tick(now, &acts);
        for (const Action& a : acts) out.push_back(name + ": " + action_text(a));
      }
    } else if (routes_.count(who) != 0) {
      for (const std::string& l : routes_.at(who)->run_at(now, c, 2, line)) out.push_back(who + ": " + l);
    } else {
      ADD_FAILURE() << "unknown command: " << line;
      return out;
    }
    std::vector<Gang::Member> members;
    for (const auto& [name, r] : routes_) members.emplace_back(name, &r->route());
    std::vector<std::pair<std::string, Action>> acts;
    gang_.update(members, now, &acts);
    for (const auto& [name, a] : acts) out.push_back(name + ": " + action_text(a));
    return out;
  }

 private:
  Gang gang_;
  std::map<std::string, std::unique_ptr<RouteInterpreter>> routes_;
};

TEST(GangScenario, AllScriptsPass) {
  gem::testing::run_all_scripts("gang", 3, [](const std::string&) {
    auto sc = std::make_shared<GangScenario>();
    return [sc](const std::string& line) { return sc->run(line); };
  });
}

// Properties easier to state in code.

TEST(Gang, OffWithAZeroWindowAndForOneRoute) {
  RouteInterpreter r0(RouteInterpreter::options(0));
  Actions a;
  r0.route().hook_hello(1, 1, 0, &a);
  r0.route().hook_request(1, 2, {}, 0, &a);
  std::vector<std::pair<std::string, Action>> out;
  Gang(0).update({{"r0", &r0.route()}}, 0, &out);
  EXPECT_FALSE(r0.route().gang());
  EXPECT_FALSE(Gang(0).member(r0.route(), 0)) << "--gang_window 0 turns gangs off";
  Gang(1000000).update({{"r0", &r0.route()}}, 0, &out);
  EXPECT_FALSE(r0.route().gang()) << "a gang of one is no gang";
  EXPECT_TRUE(out.empty());
}

TEST(TokenShareGang, ChargeFromOnlyRaisesTheCharge) {
  TokenShare t;
  t.granted(100000, 50000);
  t.charge_from(80000);  // later than the grant: ignored
  EXPECT_EQ(t.charge_so_far(60000).used, 10000);
  t.charge_from(20000);
  EXPECT_EQ(t.charge_so_far(60000).used, 40000) << "charged from the gang's first grant";
  t.granted(100000, 70000);  // a new grant charges from itself again
  EXPECT_EQ(t.charge_so_far(80000).used, 10000);
}

}  // namespace
}  // namespace gem::pmgr
