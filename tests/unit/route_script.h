// The interpreter of Route scenario scripts (route_test.cpp has the command list), shared by the
// route scripts (tests/unit/testdata/route/) and the gang scripts (gang_test.cpp), which drive
// several routes. Prints actions as "hook H <- Message", "sched <- Message", "connect", "close: why".
#pragma once

#include <string>
#include <vector>

#include "../../pod-manager/route.h"
#include "script.h"

namespace gem::pmgr {

/// "GPU-fa4e0000-0000-0000-0000-00000000000D": the stand-in's UUID of device d.
std::string gpu_uuid(uint64_t d);
/// One action as the scripts print it.
std::string action_text(const Action& a);

/// One Route and the interpreter of its script commands. Not thread-safe.
class RouteInterpreter {
 public:
  RouteInterpreter() : RouteInterpreter(options(0)) {}
  explicit RouteInterpreter(RouteOptions o);
  /// The options the scripts use: client "c", pid 7, secret "s3", timeouts 600 ms, retry 1 s,
  /// heartbeats every 200 ms, for GPU `device`.
  static RouteOptions options(uint64_t device = 0);
  /// Runs "T_MS who verb args..." (without "> "); returns the route's actions, one line each.
  std::vector<std::string> run(const std::string& line);
  /// Runs the command whose "who" word is c.words[first], at `now` (µs); `line` names it in failures.
  std::vector<std::string> run_at(Micros now, const gem::testing::Command& c, size_t first, const std::string& line);
  Route& route() { return route_; }
  /// "state Ready token=held holders=1 waiters=0 requested=0 renewing=0 next=T_MS".
  std::string state_line() const;
  std::string memory_line() const;

 private:
  Route route_;
};

}  // namespace gem::pmgr
