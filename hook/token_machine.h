// The hook's side of the token protocol as a pure state machine (like gem-pmgr's Route and etcd
// raft's raft.go): the token worker (token_worker.h) reports what happened (a launch waits at the
// gate, the pod manager answered, a wait ended, the GPU drained) and executes the Actions returned,
// which say what to send, when to open or shut the gate, when to drain, measure, move memory, and
// what to wait for next. No socket, driver, log or clock here: tests drive it with a simulated clock
// from scenario scripts (tests/unit/testdata/token/, tests/unit/token_machine_test.cpp).
//
// The protocol (docs/design.md, "The token protocol"; docs/scheduling.md for the rules):
// - Idle: the worker waits for a launch at the shut gate (kWaitDemand). A launch makes it connect
//   (Hello) if needed and ask for the token (TokenRequest with the last burst).
// - Granted: a stale Evict is dropped, managed memory comes back (kPrefetch), the slice starts
//   (kStartSlice) and the gate opens for the quota. While holding, it sleeps on the pod manager's
//   connection in steps of kIdlePoll (kLatencyIdlePoll for a latency client) so a TokenRevoke shuts
//   the gate at once, and looks at the launch counts each step. No launch for a poll and the grace
//   (GEMINI_IDLE_MS; for a latency client at most kLatencyIdlePoll): it asks the GPU (kSync); a
//   sync that returns within kSyncWasIdle found the GPU drained, the client is idle and gives the
//   token back whatever is left of its quota (work conservation); one that waited gives the grace
//   again, and so does a quick one while the program itself waited for the GPU (a thread in a
//   synchronize call during the look or within kSyncWasIdle before it: the look caught the end of
//   that work and the program's next launch is microseconds away, issue 19's lost turns), once per
//   launch seen: a second look with no launch between is idle. Anticipation: after
//   kLongThinksToShorten idle releases each followed by a long think (no launch for
//   kLongThinkGraces graces), the grace is kShortGrace until a think is short again. A latency
//   client with no launch within that grace is idle without a second sync (the one that returned
//   covered every launch: under MPS a sync of an idle context can take
//   milliseconds, and a sync after every grace held a latency client's co-run token with its
//   launches waiting behind the syncs, issue 19; other clients still sync again until the rule
//   has run the GPU regression matrix). At the end of the quota it asks to renew (TokenRenew,
//   charged by the time held).
// - Slice end (quota refused, idle, revoked, connection lost): shut, wait for the launches inside the
//   driver, drain and measure (kDrain), then TokenRelease with the GPU time used, the burst (the
//   slices since the last idle release, Gemini's kernel burst), `again` when the client is still
//   busy (asked in the same message), and the µs run unthrottled since the last release.
// - No token (pod manager unreachable, refused, silent): the gate runs open ("unthrottled", counted
//   and charged with the next release) and asks again every kRetryPeriod while the program launches;
//   with GEMINI_FAIL_CLOSED=1 launches wait instead. A grant then shuts the gate, waits for the
//   unthrottled work, and starts a slice with what is left of the quota (at least kTokenMinQuota).
// - Unified memory: while idle, a client with managed memory looks every kIdleEvictLook for an
//   Evict and acts on it (kEvict); one kept back by a capture in progress is retried
//   (kRetryDeferred). An Evict arriving while a request waits is acted on at once (on_evict).
//
// Units: Micros (µs). Every list of Actions returned by an on_*() call ends with exactly one
// action that says what the worker does next: a wait (kWaitDemand, kWaitPmgr, kSleep) or an action
// whose result the worker reports back (kConnect, kRequest, kReleaseAndRequest, kRelease, kRenew,
// kShut, kDrain, kSync, kPrefetch, kPollPmgr: see each). on_evict() returns no such action.
// Thread-safety: none; one per gate, used by the gate's token worker thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gem/clock.h"
#include "gem/protocol.h"

namespace gem::hook {

/// TokenMachine::synced_ when no sync of the slice has covered the launches.
constexpr uint64_t kNotSynced = ~uint64_t{0};
/// While holding the token the worker looks at the launches this often (µs).
constexpr Micros kIdlePoll = 500;
/// A latency client's (latency=MS) look, and the most grace it gets (µs): it holds a co-run token
/// beside another client's (docs/scheduling.md) and is charged until it gives it back.
constexpr Micros kLatencyIdlePoll = 200;
/// A cuCtxSynchronize that returns within this (µs) found the GPU already drained.
constexpr Micros kSyncWasIdle = 200;
/// Anticipation (Iyer and Druschel, "Anticipatory scheduling", SOSP 2001: wait for a process's
/// next request only while its think time says it will come): the grace is a bet that the program
/// launches again soon. A think (from an idle release to the next launch) of at least
/// kLongThinkGraces graces is long; after kLongThinksToShorten long ones in a row the grace is
/// kShortGrace (µs), so the look comes one poll after the work ends instead of a poll and the
/// grace. Any shorter think restores the full grace at once (issue 19: a 5 %-duty client held the
/// GPU idle 1.8 ms after each turn, 2 points of its neighbour's throughput on the H100).
constexpr int kLongThinkGraces = 4;
constexpr int kLongThinksToShorten = 3;
constexpr Micros kShortGrace = 0;
/// After a failure no request before this (µs); also the unthrottled stretch between attempts.
constexpr Micros kRetryPeriod = 1000000;
/// How often a worker without a token looks at the program's launches (µs): while unthrottled and
/// while failing closed.
constexpr Micros kUnthrottledTick = kRetryPeriod / 10;
/// The least quota a slice starts with after an unthrottled stretch (µs): enough to renew or drain.
constexpr Micros kTokenMinQuota = 1000;
/// Idle, a process with managed memory looks for an Evict this often (µs): how late one may be acted on.
constexpr Micros kIdleEvictLook = 50000;
/// Idle, a process without managed memory wakes this often (µs) to look again.
constexpr Micros kIdleLook = 1000000;

/// What the worker reads before each report: the gate's counts, the connection, the residency.
struct TokenFacts {
  Micros now = 0;          // mono_us() when read
  uint64_t entered = 0;    // Gate::entered(): launches that reached the gate so far
  uint64_t exited = 0;     // Gate::exited()
  bool pacing = false;     // a launching thread waits in Gate::pace() (busy)
  bool waiters = false;    // a launching thread waits at the shut gate
  bool exiting = false;    // stopping_at_exit(): the process is exiting
  bool connected = false;  // PmgrClient::connected()
  bool managed = false;    // Residency::has_managed(): the process has managed memory on this device
  bool evicted = false;    // Residency::evicted()
  bool latency = false;    // the scheduler's settings declare a latency client (latency_us > 0)
  bool program_syncing = false;  // Gate::program_syncing(): a program thread waits for the GPU (read first)
  Micros program_synced_at = 0;  // Gate::program_synced_at(): when the last such wait returned (µs; 0: never)
};

/// The process's settings the machine needs (hook/settings.h), fixed for its life.
struct TokenConfig {
  Micros idle_us = 0;        // GEMINI_IDLE_MS in µs: the grace after the last launch
  bool fail_closed = false;  // GEMINI_FAIL_CLOSED=1: launches wait instead of running unthrottled
  int empty_cache = -1;      // GEMINI_EMPTY_CACHE: 1 on, 0 off, -1 (unset): on in unified-memory mode
  std::string pod_manager;   // the pod manager's address, for log lines
};

/// One thing for the worker to do. The kinds marked "reports" are answered by the named on_*() call.
struct TokenAction {
  enum class Kind {
    kWaitDemand,          // wait up to `us` for a launch at the gate; reports on_demand()
    kWaitPmgr,            // sleep on the pod manager's connection up to `us`; reports on_pmgr()
    kSleep,               // sleep `us`; reports on_tick()
    kConnect,             // connect and say Hello; reports on_connect()
    kRequest,             // TokenRequest{burst = us}; reports on_answer()
    kReleaseAndRequest,   // TokenRelease `rel` with again; reports on_answer()
    kRelease,             // TokenRelease `rel`; reports on_released()
    kRenew,               // TokenRenew{used = us, burst = burst}; reports on_renew()
    kOpen,                // open the gate (the launches waiting at it go)
    kShut,                // shut the gate and wait for the launches inside the driver; reports on_shut()
    kDrain,               // drain the GPU and measure the slice; reports on_drained()
    kSync,                // cuCtxSynchronize the contexts launched on; reports on_sync()
    kStartSlice,          // the slice starts at `us`: record the start event
    kPrefetch,            // bring evicted managed memory back before a slice; reports on_prefetched()
    kDropStaleEvict,      // forget an Evict received before the grant (the grant made the client resident)
    kEvict,               // move managed memory to the host; `flag`: demand paging (no bulk prefetch back)
    kRetryDeferred,       // act on an Evict a capture kept back, if no capture is in progress now
    kPollPmgr,            // read what the pod manager sent, without waiting; reports on_polled()
    kNoteIdleRelease,     // tell the cache emptier the client went idle (cache_emptier.h)
    kCountTokens,         // hook counter `tokens` += n
    kCountRevocations,    // hook counter `revocations` += n
    kCountUnthrottled,    // hook counter `unthrottled_launches` += n
    kLogWarn,             // log `text` as a warning
  };
  Kind kind = Kind::kWaitDemand;
  Micros us = 0;
  uint64_t n = 0;
  Micros burst = 0;
  bool flag = false;
  proto::TokenRelease rel;
  std::string text;
};
using TokenActions = std::vector<TokenAction>;

/// What the pod manager said to a request, a release-and-request or a renewal.
enum class TokenAnswer { kGranted, kRefused, kBroken };
/// What a wait on the pod manager's connection while holding the token ended with.
enum class PmgrEvent { kNone, kRevoked, kBroken, kEvict };

class TokenMachine {
 public:
  explicit TokenMachine(TokenConfig config) : config_(std::move(config)) {}

  /// The worker thread starts (also in a fork()ed child): waits for demand.
  TokenActions start(const TokenFacts& f);

  /// A kWaitDemand ended: `demand` when a launch waits at the gate.
  TokenActions on_demand(const TokenFacts& f, bool demand);
  /// kConnect's result: `ok`, or why not.
  TokenActions on_connect(const TokenFacts& f, bool ok, const std::string& why);
  /// The answer to kRequest or kReleaseAndRequest: kGranted with `quota_us`, or refused/broken (why).
  TokenActions on_answer(const TokenFacts& f, TokenAnswer a, uint64_t quota_us, const std::string& why);
  /// kRelease's result: false when the connection broke.
  TokenActions on_released(const TokenFacts& f, bool ok);
  /// The answer to kRenew: kGranted with quota_us > 0 renews; anything else ends the slice.
  TokenActions on_renew(const TokenFacts& f, TokenAnswer a, uint64_t quota_us);
  /// A kWaitPmgr ended with `ev`.
  TokenActions on_pmgr(const TokenFacts& f, PmgrEvent ev);
  /// A kSleep ended.
  TokenActions on_tick(const TokenFacts& f);
  /// kShut done: the gate is shut and no launch is inside the driver.
  TokenActions on_shut(const TokenFacts& f);
  /// kDrain's result: the slice's GPU time `used_us`, ending at `end_us` (mono µs).
  TokenActions on_drained(const TokenFacts& f, Micros used_us, Micros end_us);
  /// kSync's result: `ran` false when the capture rule forbade it (or at exit); `waited_us` how long
  /// the synchronise took.
  TokenActions on_sync(const TokenFacts& f, bool ran, Micros waited_us);
  /// kPrefetch done (f.now: after the memory is back).
  TokenActions on_prefetched(const TokenFacts& f);
  /// kPollPmgr's result: `evict` when an Evict is pending (taken), with its flags.
  TokenActions on_polled(const TokenFacts& f, bool evict, uint32_t flags);
  /// An Evict arrived while a request waited for its answer (the client does not run): act at once.
  /// Returns no next action (the worker goes on waiting for the answer).
  TokenActions on_evict(const TokenFacts& f, uint32_t flags);

  /// In a fork()ed child: the connection and the slice belong to the parent; the next start() begins idle.
  /// The burst in progress and the time run unthrottled are the parent's too: the parent reports
  /// them with its next release, and the child reporting them as well would charge the client twice.
  void reset_after_fork() {
    state_ = State::kIdle;
    burst_ = 0;
    unthrottled_us_ = 0;
    think_from_ = 0;
    long_thinks_ = 0;
  }

  enum class State { kIdle, kConnecting, kAsking, kUnthrottled, kStarting, kHolding, kSyncing, kRenewing,
                     kShutting, kDraining, kReleasing, kFailedClosed };
  State state() const { return state_; }
  /// For scenario scripts: one line with the state and the figures that drive it.
  std::string describe() const;

 private:
  TokenActions obtain(const TokenFacts& f);
  TokenActions degraded(const TokenFacts& f);
  TokenActions granted(const TokenFacts& f, uint64_t quota_us);
  TokenActions begin_slice(const TokenFacts& f);
  TokenActions end_slice(const TokenFacts& f, bool idle_release);
  TokenActions hold_next(const TokenFacts& f);
  TokenActions wait_idle(const TokenFacts& f);
  /// Whether a program thread waited for the GPU during a sync of `waited_us` that ended at f.now,
  /// or returned from such a wait within kSyncWasIdle before it began.
  static bool program_waited(const TokenFacts& f, Micros waited_us);
  TokenActions unthrottled_wait() const;
  void warn_once(TokenActions* out, const std::string& what, const std::string& why);
  /// Counts the launches made unthrottled since the last count.
  void count_unthrottled(const TokenFacts& f, TokenActions* out);
  Micros poll_us() const { return latency_ ? kLatencyIdlePoll : kIdlePoll; }
  /// The grace after the last launch seen before an idle look (µs): GEMINI_IDLE_MS, at most
  /// kLatencyIdlePoll for a latency client, kShortGrace after kLongThinksToShorten long thinks.
  Micros grace_us() const;
  /// A launch came after an idle release at think_from_: counts the think as long or not.
  void note_think(const TokenFacts& f);

  const TokenConfig config_;
  State state_ = State::kIdle;
  bool from_unthrottled_ = false;  // the request in progress was made while running unthrottled
  bool latency_ = false;           // this slice's client is a latency client
  Micros retry_at_ = 0;            // no request before this after a failure
  bool warned_ = false;            // the no-token warning was logged since the last grant
  Micros quota_ = 0;               // the quota granted (µs)
  Micros slice_start_ = 0;         // when the slice in progress started
  Micros until_ = 0;               // when its quota ends
  Micros renew_at_ = 0;            // when the renewal in progress was asked (its slice starts then)
  Micros renew_used_ = 0;          // the time held it charges
  Micros asked_at_ = 0;            // when a request from the unthrottled state was asked
  bool idle_release_ = false;      // the slice ending ends a burst
  uint64_t seen_ = 0;              // launch count at the last look
  uint64_t synced_ = kNotSynced;    // launch count a returned sync covered (no launch came during it)
  Micros last_activity_ = 0;       // when launches were last seen (or the GPU went quiet)
  uint64_t counted_ = 0;           // unthrottled: launches counted so far
  Micros tick_ = 0;                // unthrottled: the last tick
  Micros burst_ = 0;               // µs of the burst in progress (slices since the last idle release)
  Micros last_burst_ = 0;          // µs of the last finished burst
  Micros unthrottled_us_ = 0;      // µs with launches while unthrottled, reported with the next release
  Micros think_from_ = 0;          // when the last idle release was decided (0: no think to measure)
  int long_thinks_ = 0;            // long thinks in a row (capped at kLongThinksToShorten)
};

/// The name of an action kind, as scenario scripts print it ("wait-demand", "request", ...).
const char* token_action_name(TokenAction::Kind k);

}  // namespace gem::hook
