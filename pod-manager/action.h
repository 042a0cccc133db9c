// What gem-pmgr's pure units (Route, MemSessions) ask the I/O edge (manager*.cpp) to do: they
// return Actions as data and never touch a socket, so tests drive them with a simulated clock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gem/clock.h"
#include "gem/protocol.h"

namespace gem::pmgr {

/// A hook connection (launch gate or memory session), as numbered by the edge (never reused while
/// the daemon runs).
using HookId = uint64_t;

/// A deadline that never comes (µs).
constexpr Micros kNever = INT64_MAX;

struct Action {
  enum class Kind {
    kToHook,          // send msg to hook; if that fails the edge drops the hook (hook_gone)
    kToScheduler,     // send msg to the scheduler; if that fails the edge reports sched_lost
    kConnect,         // start a non-blocking connection; report sched_connected / sched_lost
    kCloseScheduler,  // close the scheduler connection, whatever its state (no report back)
    kDropHook,        // close this hook's connection (why); the edge then reports hook_gone
  };
  Kind kind = Kind::kToHook;
  HookId hook = 0;
  proto::Message msg;
  std::string why;
};
using Actions = std::vector<Action>;

}  // namespace gem::pmgr
