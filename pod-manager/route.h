// One scheduler endpoint as seen by gem-pmgr: the pure protocol core (no sockets, no clock reads).
//
// Like etcd raft's state machine, a Route consumes events (a hook asks, releases, renews or goes away;
// the scheduler connection is made, fails, says something; time passes) and returns what to do as
// data (Actions): send a message to a hook or to the scheduler, start connecting, close the
// scheduler connection, drop a hook. The I/O edge (manager.cpp) executes them. Every method takes
// the time `now` (CLOCK_MONOTONIC µs) from the caller, so tests drive it with a simulated clock.
//
// Connection states: Disconnected -> (a hook needs it, retry_at passed) Connecting -> (connected)
// HelloSent -> (ClientSettings) Ready; a failure, timeout or silence goes back to Disconnected,
// answers every waiter with kSchedulerUnavailable (the hook runs unthrottled: fail-open) and allows
// no new attempt before retry_at (retry_period later). A refusal (the scheduler answers the Hello
// with an Error, or removes the client) also goes back to Disconnected, but the client is *held*:
// its waiters keep waiting (with heartbeats), new requests join them, and the route connects again
// at retry_at while any hook waits, until the scheduler admits it (docs/design.md, "Refused
// clients are held"). Rules: docs/design.md, "The pod manager". Memory sessions
// (docs/memory.md) are MemSessions fed by the same connection's settings; their total is reported
// to the scheduler (MemUsage, paced by UsageReport), whose Evict goes to the route's launch gates
// (docs/memory.md, "Residency"). Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <vector>

#include "action.h"
#include "gem/clock.h"
#include "gem/protocol.h"
#include "mem_sessions.h"
#include "token_share.h"
#include "usage_report.h"

namespace gem::pmgr {

/// --scheduler_timeout's default, µs: connecting to gem-schd, its answer to Hello, and its silence
/// while a request waits (docs/design.md, "Liveness").
inline constexpr Micros kDefaultSchedulerTimeout = 600000;
/// After a failed connection to gem-schd no new attempt is made for this long, µs: requests in
/// between are told "scheduler unavailable" and run unthrottled. A refused client asks again this often.
inline constexpr Micros kSchedulerRetryPeriod = 1000000;

struct RouteOptions {
  std::string client;       // this pod manager's client ID
  std::string device_uuid;  // sent in the Hello to the scheduler; "" for the shared default route
  std::string secret;       // sent in the Hello; may be empty
  uint32_t pid = 0;         // sent in the Hello
  bool has_declared = false;
  proto::ClientSettings declared;
  Micros scheduler_timeout = kDefaultSchedulerTimeout;  // connect, Hello answer, silence while waiting (µs)
  Micros retry_period = kSchedulerRetryPeriod;  // no new connection attempt this long after a failure (µs)
  Micros heartbeat_period = proto::kHeartbeatPeriodMs * 1000;  // to hooks that wait (µs)
  size_t max_waiters = 4096;  // queued hook requests, at most (the listener caps hooks anyway)
};

class Route {
 public:
  enum class State { kDisconnected, kConnecting, kHelloSent, kReady };

  explicit Route(RouteOptions opts);

  // Events from hooks (already authenticated by the edge). `rid`: the hook's request id, echoed.
  /// A hook said Hello for this route: answered at once with the settings known so far (pushed
  /// again when the scheduler tells them); starts connecting if allowed.
  void hook_hello(HookId h, uint64_t rid, Micros now, Actions* out);
  void hook_request(HookId h, uint64_t rid, const proto::TokenRequest& m, Micros now, Actions* out);
  void hook_release(HookId h, uint64_t rid, const proto::TokenRelease& m, Micros now, Actions* out);
  void hook_renew(HookId h, uint64_t rid, const proto::TokenRenew& m, Micros now, Actions* out);
  /// The hook's connection is gone: forgets it; charged from the grant until now if it held the token.
  /// A memory session's lease is released at once.
  void hook_gone(HookId h, Micros now, Actions* out);

  // Memory sessions (route_memory.cpp; docs/memory.md). They share the scheduler connection (the
  // limit is the client's ClientSettings.gpu_mem_bytes) but never take part in the token.
  /// A memory session said Hello for GPU `uuid` (non-empty): answered with MemState once the
  /// limit is known (see MemSessions); starts connecting to the scheduler if it is not.
  void mem_hello(HookId h, const std::string& uuid, uint64_t rid, Micros now, Actions* out);
  /// MemReserve / MemReturn / MemQuery from a memory session (see MemSessions). A reserve or a
  /// query while the scheduler is disconnected also tries to reconnect (when retry_at has passed),
  /// so the limit is learnt again; the answer never waits for it. A change of the client's total
  /// is reported to a Ready scheduler by UsageReport's rule (MemUsage, request id 0).
  void mem_reserve(HookId h, uint64_t rid, const proto::MemReserve& m, Micros now, Actions* out);
  void mem_return(HookId h, uint64_t rid, const proto::MemReturn& m, Micros now, Actions* out);
  void mem_query(HookId h, uint64_t rid, Micros now, Actions* out);

  // Events from the scheduler connection.
  void sched_connected(Micros now, Actions* out);
  /// Connecting failed or the connection broke (the edge has closed it).
  void sched_lost(const std::string& why, Micros now, Actions* out);
  /// Bytes came from the scheduler (whole message or not): it is alive.
  void sched_heard(Micros now);
  void sched_message(const proto::Message& m, Micros now, Actions* out);

  /// Deadlines: connect/Hello timeouts, scheduler silence, heartbeats to waiting hooks.
  void tick(Micros now, Actions* out);
  /// The earliest time tick() has something to do; kNever when nothing is due.
  Micros next_deadline() const;

  // Gang tokens (route_gang.cpp; gang.h has the rules, docs/scheduling.md "Gang tokens"), set by Gang.
  /// Gang mode on or off. On: a token no hook holds is kept (parked) until its quota ends; a grant
  /// is cut to end at `align_end` (µs, the gang's other tokens; kNever: none) when that leaves
  /// kGangMinQuota, and charged from `first_grant` (µs, their earliest grant) when earlier; with `split` (another member's token is held by no hook) a renewal is answered
  /// 0 here, so the holder gives the token back and the gang asks again together. Off: a parked
  /// token goes back at once.
  void set_gang(bool on, Micros align_end, Micros first_grant, bool split, Micros now, Actions* out);
  /// Asks the scheduler for the token for the gang (no hook waits yet): only when Ready, in gang
  /// mode, with no token held or asked for. The grant is parked until a hook takes it.
  void gang_ask(Micros now, Actions* out);
  /// Gives a parked token (held by the client, by no hook) back now, charged the time held.
  void unpark(Micros now, Actions* out);
  /// A hook holds the token, waits for it or renews it.
  bool busy() const { return token_.has_holders() || !waiters_.empty() || renewing_; }
  /// The client holds the token and no hook does.
  bool parked() const { return token_.held() && !token_.has_holders(); }
  /// When a hook last asked for, renewed, held or gave back the token (µs); see used_ever().
  Micros last_used() const { return last_used_; }
  bool used_ever() const { return used_ever_; }
  /// When the token held ends (µs): its grant plus its quota; kNever when none is held.
  Micros token_end() const { return token_.held() ? token_.grant_at() + token_.quota() : kNever; }
  bool gang() const { return gang_; }
  /// Launch-gate hooks routed here (memory sessions not counted).
  size_t gate_count() const { return hooks_.size(); }

  State state() const { return state_; }
  const proto::ClientSettings& settings() const { return settings_; }
  const TokenShare& token() const { return token_; }
  size_t waiter_count() const { return waiters_.size(); }
  /// Launch-gate hooks and memory sessions routed here.
  size_t hook_count() const { return hooks_.size() + mem_.count(); }
  const MemSessions& memory() const { return mem_; }
  bool renewing() const { return renewing_; }
  bool requested() const { return requested_; }
  /// Why the scheduler refused this client ("" when it is not refused): set by a refusal, cleared
  /// when the scheduler admits the client. Its processes wait meanwhile.
  const std::string& refused() const { return refused_; }
  /// Refusals this route received (each refused Hello or removal), for gem-pmgr's metrics.
  uint64_t refusals() const { return refusals_; }
  static const char* state_name(State s);

 private:
  struct Waiter {
    HookId hook;
    uint64_t rid;
  };
  enum class Link { kReady, kPending, kUnavailable };

  // Scheduler messages, one function each.
  void on_hello_reply(const proto::Message& m, Micros now, Actions* out);
  void on_grant(const proto::Message& m, const proto::TokenGrant& g, Micros now, Actions* out);
  void on_settings(const proto::ClientSettings& s, Micros now, Actions* out);
  void on_revoke(const proto::TokenRevoke& r, Micros now, Actions* out);
  void on_evict(const proto::Evict& e, Actions* out);
  /// Sends MemUsage when UsageReport says one is due (Ready only).
  void report_usage(Micros now, Actions* out);

  Link ensure_link(Micros now, Actions* out);
  bool outstanding() const { return requested_ || renewing_; }
  void note_waiting(Micros now);
  void add_waiter(HookId h, uint64_t rid, Micros now, Actions* out);
  /// Hook `h` joins the client's valid token and is granted what is left of its quota.
  void join_token(HookId h, uint64_t rid, Micros now, Actions* out);
  /// Queues `h` for the scheduler's next grant; false (and `h` told "unavailable") when the route
  /// cannot reach its scheduler now.
  bool queue_for_scheduler(HookId h, uint64_t rid, Micros now, Actions* out);
  void ask_scheduler(Micros now, Actions* out);
  void serve_waiters(Micros now, Actions* out);
  void return_token(Micros now, Actions* out);
  void fail(const std::string& why, Micros now, Actions* out);
  /// The scheduler refused (or removed) the client: disconnects like fail() but holds the waiters.
  void refuse(const proto::Error& e, Micros now, Actions* out);
  /// Closes the connection and resets the per-connection state (fail() and refuse()).
  void disconnect(const std::string& why, Micros now, Actions* out);
  void unavailable(HookId h, uint64_t rid, const std::string& why, Actions* out) const;
  void to_hook(HookId h, proto::Message m, Actions* out) const;
  void to_sched(proto::Message m, Actions* out) const;
  bool hook_waits() const;
  void note_used(Micros now) {
    last_used_ = now;
    used_ever_ = true;
  }
  /// Gang mode: a token no hook holds is kept while it is valid.
  bool keep_parked(Micros now) const { return gang_ && token_.valid(now); }
  /// A grant now is aligned with the gang's other tokens: gang mode, one of them held, and at least
  /// kGangMinQuota left of it (gang.h, rule 3). Then it is cut (gang_cut) and charged from their grant.
  bool gang_aligns(Micros now) const;
  /// A grant's quota, cut to end with the gang's other tokens when gang_aligns().
  Micros gang_cut(Micros quota, Micros now) const;

  RouteOptions opts_;
  State state_ = State::kDisconnected;
  Micros deadline_ = kNever;  // Connecting/HelloSent: give up at this time
  Micros retry_at_ = 0;       // Disconnected: no attempt before this
  Micros quiet_since_ = 0;    // last byte from the scheduler, or when waiting began
  Micros hb_due_ = kNever;    // next heartbeat to waiting hooks
  std::string last_error_;    // why the last attempt failed (for answers before retry_at)
  std::string refused_;       // the scheduler's refusal while the client is held; "" otherwise
  uint64_t refusals_ = 0;
  uint64_t next_id_ = 1;      // our request ids to the scheduler (0: plain token requests)
  uint64_t hello_id_ = 0;
  proto::ClientSettings settings_;
  std::set<HookId> hooks_;        // hooks routed here (said Hello)
  std::deque<Waiter> waiters_;    // hooks waiting for the next grant
  bool requested_ = false;        // a TokenRequest (or release with again) awaits its grant
  Micros last_burst_ = 0;
  TokenShare token_;
  bool renewing_ = false;         // a holder's TokenRenew was forwarded
  Waiter renew_for_{0, 0};        // hook 0: the renewing hook is gone
  uint64_t renew_id_ = 0;
  Micros renew_sent_at_ = 0;
  bool gang_ = false;              // gang mode (set_gang)
  Micros gang_end_ = kNever;      // gang mode: the other members' earliest token end
  Micros gang_start_ = kNever;    // gang mode: the other members' earliest grant
  bool gang_split_ = false;       // gang mode: another member's token is held by no hook
  Micros last_used_ = 0;          // a hook last asked for, renewed, held or gave back the token
  bool used_ever_ = false;
  MemSessions mem_;               // memory sessions and their budgets
  UsageReport usage_;             // what the scheduler was told of mem_'s total
};

}  // namespace gem::pmgr
