// The token policy of gem-schd: a pure core with an injected clock, no I/O (like etcd's raft: the
// daemon feeds it events and carries out the grants it returns).
//
// One token per GPU; a client launches kernels only while it holds it (Gemini, Chen et al.,
// "Gemini: Enabling Multi-Tenant GPU Sharing Based on Kernel Burst Estimation", IEEE TCC 2021).
// Rules, in this order, among the clients waiting for the token:
//   1. clients whose share of GPU time is under their REQUEST, largest deficit first (measured
//      relative to REQUEST after one more quota, as weighted fair queueing does);
//   2. then clients under their LIMIT, least share above their REQUEST first;
//   3. never a client over its LIMIT (a LIMIT 0.25 client alone on the GPU gets 25% of it). LIMIT is a
//      rate, not a share of the window: each client below LIMIT 1 has an allowance of GPU time that
//      grows by LIMIT µs per µs of wall time, never above the swing (PolicyOptions::swing), and each
//      charge is taken from it; it may have the token while the allowance is not negative (a token
//      bucket: docs/scheduling.md, "LIMIT as a rate"). With quotas of at most swing / (1 - LIMIT) it
//      runs a short quota, waits, runs again, so LIMIT holds in every second, not only over the window.
// Latency clients (ClientShare::latency > 0, resource-config.txt's latency=MS) that wait while another
// client holds the token are granted a co-run token at once when their share is under their REQUEST
// (and LIMIT): they launch beside the holder and the GPU's own time slicing interleaves the two
// (docs/scheduling.md, "Latency clients"). Above its REQUEST a latency client waits like any other,
// so urgency never buys more than the REQUEST. A co-runner is charged like a holder.
// Quotas are fitted to the number of clients with demand (fit_quotas): at most window / n, never
// below quota_floor, so that every client is served once per window where that is possible.
// Ties go to the larger REQUEST, then to a client whose memory is resident (set_cold: its memory
// was moved to the host, docs/memory.md "Residency"; the preference never outranks a share), then
// to the client that has waited longest.
// Share = the client's GPU time decayed exponentially with a time constant of half the window
// (e^(-age / tau): what it used a window ago weighs e^-2 = 0.14), over what it would be had the client
// run all the time since it became active. Not a sliding window: usage leaving a window at once
// replayed every transient (a client starting first, an idle spell) a window later, a second of
// 0.5 then a second of 0.02 for a REQUEST 0.3 client (issue 19, H100); decay lets it fade.
// The quota of a grant follows the client's measured kernel burst, clamped to [min_quota, base_quota].
// Charging (docs/design.md, "Trust"): no client is trusted for accounting. A holder is charged at
// least the time the scheduler observed from its grant (or renewal) to its release; the time it
// reports may raise that charge (capped at one window), never lower it. A holder that keeps the
// token past quota + lease_grace is revoked (expire_lease) and charged up to then.
//
// Times are µs on whatever monotonic clock the caller uses. Not thread-safe: one owner.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gem/clock.h"

namespace gem::sched {

constexpr Micros kNever = INT64_MAX;

// gem-schd's policy flags' defaults, µs (the flags take ms; docs/interfaces.md lists them).
inline constexpr Micros kDefaultBaseQuota = 250000;   // --base_quota
inline constexpr Micros kDefaultMinQuota = 100000;    // --min_quota
inline constexpr Micros kDefaultWindow = 10000000;    // --window
inline constexpr Micros kDefaultLeaseGrace = 500000;  // --lease_grace
inline constexpr Micros kDefaultQuotaFloor = 10000;   // --quota_floor
/// The swing, µs: how far a client held to a share may run ahead of it in any stretch (issue 19;
/// docs/scheduling.md, "LIMIT as a rate"). With --fit_quotas on, a client held to a share w < 1 (its
/// LIMIT; its REQUEST > 0 while others want the GPU) gets quotas of at most swing / (1 - w) (and at
/// least quota_floor): between two quotas it waits about quota * (1 / w - 1), so any 1 s of its run
/// holds w within about swing / 1 s (0.04 at the default) instead of a 250 ms quota then a second's
/// wait. It is also the most GPU time a LIMIT client may bank. gem-schd --swing (ms); a smaller swing
/// halves the step one turn makes in a second's share at twice the hand-offs.
inline constexpr Micros kDefaultSwing = 40000;
/// How long, µs, a client that gave the token back still counts as wanting the GPU when the even
/// quota of another is chosen (issue 19). A busy client's release and its next request are two
/// messages when its program was inside a synchronize at the slice's end, and a grant made between
/// them used to see no contention and hand out a whole base quota: a second of 0.38 in a 0.3/0.7
/// split (H100). One second is the stretch over which issue 19 asks shares to hold.
inline constexpr Micros kContentionMemory = 1000000;

struct PolicyOptions {
  Micros base_quota = kDefaultBaseQuota;  // µs; first quota of a client and the largest quota
  Micros min_quota = kDefaultMinQuota; // µs; the smallest quota
  Micros window = kDefaultWindow; // µs; shares decay with a time constant of window / 2
  // µs; a holder that has not given the token back (nor renewed) by quota + lease_grace is charged
  // up to then and loses it (expire_lease); the hook drains and releases on its own, so this only
  // guards the other clients against a stuck, stopped or forging one. gem-schd --lease_grace.
  Micros lease_grace = kDefaultLeaseGrace;
  // Fit quotas to the clients with demand: a grant is at most 0.9 window / (clients waiting or holding),
  // but never less than quota_floor (µs), so n clients are served once per window when
  // n * quota_floor <= window. gem-schd --fit_quotas on|off, --quota_floor.
  bool fit_quotas = true;
  Micros quota_floor = kDefaultQuotaFloor;
  Micros swing = kDefaultSwing;  // µs; even quotas and the LIMIT bank (kDefaultSwing). gem-schd --swing.
};

/// A client's configured share of GPU time, each in [0, 1] with request <= limit.
struct ClientShare {
  std::string name;
  double request = 0;
  double limit = 1;
  Micros latency = 0;  // µs; > 0: a latency client (co-runs beside the holder within its REQUEST)
};

struct Grant {
  std::string client;
  Micros quota = 0;    // µs of GPU time
  bool corun = false;  // a co-run token: granted beside the holder to a latency client
};

/// A token taken back from its holder by expire_lease().
struct Revocation {
  std::string client;
  Micros held = 0;  // µs from the grant (or last renewal) to the revocation, as charged
};

struct ClientStats {
  double request = 0;
  double limit = 1;
  double share = 0;       // share of GPU time over the window, now
  Micros used_total = 0;  // µs charged since the client was added
  Micros used_window = 0; // µs charged inside the window [now - window, now] (metrics: GPU busy)
  uint64_t grants = 0;     // every grant, co-runs included (renewals too)
  uint64_t coruns = 0;     // co-run grants among them
  uint64_t revocations = 0;  // tokens taken back by expire_lease
  Micros latency = 0;      // µs, the configured latency target (0: none)
  bool waiting = false;
  bool holding = false;    // holds the token or a co-run token
  bool corun = false;      // holds a co-run token
};

class Policy {
 public:
  explicit Policy(PolicyOptions opts);

  /// Replaces the set of known clients. Clients absent from `clients` are dropped (a dropped holder
  /// loses the token); kept clients keep their usage. Returns the dropped names.
  std::vector<std::string> set_clients(const std::vector<ClientShare>& clients, Micros now);

  bool has_client(const std::string& name) const;

  /// Residency hint (docs/memory.md, "Residency"): `cold` = the client's memory was moved to the host,
  /// so granting it costs bringing it back. Only breaks ties between clients the rules rank equal
  /// (same key, same REQUEST): it never changes what REQUEST and LIMIT decide. Clients start warm;
  /// no effect for unknown clients.
  void set_cold(const std::string& name, bool cold);

  /// `name` asks for the token; last_burst (µs, 0 = unknown) steers its next quota. No effect for
  /// unknown clients or the current holder.
  void request(const std::string& name, Micros last_burst, Micros now);

  /// Whether `name` holds the token or a co-run token.
  bool holds(const std::string& name) const { return holder_ == name || coruns_.count(name) != 0; }

  /// The holder (or a co-runner) gives the token back having used `used` µs of GPU time (as it reports; may be any
  /// value), its last kernel burst lasting `burst` µs. Charged max(now - grant, min(used, window)):
  /// a report can raise the charge, never lower it below the time observed. Ignored unless `name`
  /// holds the token (e.g. a release that comes after a revocation).
  void release(const std::string& name, Micros used, Micros burst, Micros now);

  /// The client's connection is gone: it stops waiting, and if it held the token it is charged the
  /// time since the grant and the token is free at once.
  void disconnect(const std::string& name, Micros now);

  /// If the holder or a co-runner kept its token past its quota + lease_grace, charges it the time
  /// since its grant, frees the token and returns who lost it (the caller tells that client:
  /// TokenRevoke). One at a time: call until nullopt.
  std::optional<Revocation> expire_lease(Micros now);

  /// The next grant, or nullopt when there is none to make now: a co-run token for a waiting
  /// latency client while another holds the token (see above), else, when the token is free, the
  /// holder picked by the rules. Call until nullopt: one call makes one grant.
  std::optional<Grant> schedule(Micros now);

  /// Clients waiting or holding (the demand quotas are fitted to).
  size_t demand() const;

  /// The holder's quota ran out while it still runs, having used `used` µs since its grant: if no
  /// other client waits and the rules would pick it again with that usage charged (its LIMIT), it
  /// keeps the token; returns the new quota
  /// and charges as release() would (at least the time observed since the grant). Otherwise nullopt and nothing changes (the holder must
  /// drain and release()). Saves an uncontended client the drain at every quota.
  std::optional<Micros> renew(const std::string& name, Micros used, Micros burst, Micros now);

  /// The earliest time after `now` at which schedule() may do something it cannot do now
  /// (a waiting client's share drops under its LIMIT, or the holder's lease runs out); kNever if none.
  Micros next_event(Micros now) const;

  std::optional<ClientStats> stats(const std::string& name, Micros now) const;
  std::vector<std::string> clients() const;
  /// The names after `after` in order (all from the first when `after` is ""), at most `max`:
  /// resumable walks over many clients (metrics snapshots). O(log n + max).
  std::vector<std::string> clients_after(const std::string& after, size_t max) const;
  /// Name of the token holder, or empty (co-runners are not holders).
  const std::string& holder() const { return holder_; }
  /// Names of the clients holding a co-run token.
  std::vector<std::string> corunners() const;
  const PolicyOptions& options() const { return opts_; }

 private:
  struct Interval {
    Micros start, end;
  };
  struct Lease {
    Micros start = 0;  // the grant (or renewal)
    Micros quota = 0;
  };
  struct Client {
    double request = 0;
    double limit = 1;
    Micros latency = 0;
    Micros active_since = 0;
    std::deque<Interval> busy;  // charged GPU time, oldest first, inside the window
    bool waiting = false;
    Micros waiting_since = 0;
    Micros burst = 0;  // last measured burst, µs (0 = unknown)
    // How far, µs, its last hold given back by a release ran past its quota (the drain, the grant's
    // round trip), at most the swing: its next even quota is that much shorter (grant_quota).
    Micros overrun = 0;
    Micros used_total = 0;
    uint64_t grants = 0;
    uint64_t coruns = 0;
    uint64_t revocations = 0;
    bool cold = false;  // set_cold: memory moved to the host
    // LIMIT as a rate: GPU time the client may still use, µs, as of allowance_at (grows by LIMIT
    // per µs of wall time up to the swing, each charge is taken from it; >= 0: it may run).
    double allowance = 0;
    Micros allowance_at = 0;
    // Usage decayed with time constant tau(), µs, as of decayed_at: what the REQUEST rules rank by.
    double decayed = 0;
    Micros decayed_at = 0;
  };

  /// The waiting client the rules pick now (nullptr: none may have the token). `wanting` and
  /// `contending` are demand() and contenders(now), counted by the caller (which reuses them for the
  /// grant's quota). No side effects beyond dropping usage that left the window.
  const std::string* pick(Micros now, size_t wanting, size_t contending);
  void charge(Client& c, Micros used, Micros now);
  /// What a holder of `lease` releasing or renewing at `now` is charged for reporting `reported` µs.
  Micros holder_charge(const Lease& lease, Micros reported, Micros now) const;
  /// Whether a waiting latency client may have a co-run token now: under its REQUEST and LIMIT.
  bool may_corun(const Client& c, Micros now) const;
  /// The first time in (now, now + window] at which `pred(t)` holds for a waiting client (whose
  /// share only falls while it waits), to kEventPrecision; kNever if none.
  template <typename P>
  Micros first_time(Micros now, P&& pred) const;
  Micros fitted(Micros quota) const;
  Micros fitted(Micros quota, size_t demand) const;
  void forget_old(Client& c, Micros now) const;
  Micros usage_in_window(const Client& c, Micros now) const;
  double share(const Client& c, Micros now) const;
  /// A client arrives (it never ran, or not for half a window): every other client's share above its
  /// REQUEST is cut to its REQUEST (time used while nobody else wanted the GPU is not paid back, as a
  /// waking task's virtual runtime is clamped in CFS). O(clients), like pick().
  void forgive_surplus(const std::string& arriving, Micros now);
  /// The client's decayed usage at `now`, µs.
  double decayed(const Client& c, Micros now) const;
  /// The decay's time constant, µs: half the window.
  double tau() const { return static_cast<double>(opts_.window) / 2; }
  bool under_limit(const Client& c, Micros now) const;
  /// The client's allowance (µs, at most the swing) at `now` (see Client::allowance).
  double allowance(const Client& c, Micros now) const;
  /// The most GPU time (µs) a client below LIMIT 1 may bank while it waits for others or idles:
  /// enough to keep what it earns while another client holds the token, too little to shift a
  /// second by more than the swing.
  double bank() const { return static_cast<double>(opts_.swing); }
  /// At a grant or renewal: the allowance accrued so far, capped at 0, becomes the base that the
  /// hold earns on (uncapped) until its charge.
  void start_allowance(Client& c, Micros now) const;
  /// The first time >= now at which the client is under its LIMIT, were it charged nothing more; kNever for LIMIT 0.
  Micros limit_ready_at(const Client& c, Micros now) const;
  /// The quota of a grant to `c` now: its burst-based quota, fitted to the demand; held to a share
  /// w < 1 (its LIMIT, or its REQUEST while others contend), at most swing / (1 - w) less its
  /// last overrun (Client::overrun), never below quota_floor.
  Micros grant_quota(const Client& c, Micros now) const;
  /// `demand`: clients waiting or holding (fits the quota to the window); `contenders`: those and the
  /// clients whose last charge ended within kContentionMemory (decides whether a REQUEST holds `c`).
  Micros grant_quota(const Client& c, size_t demand, size_t contenders) const;
  /// Clients that want the GPU now or wanted it within kContentionMemory before `now`. O(clients).
  size_t contenders(Micros now) const;
  Micros quota_for(const Client& c) const;
  Micros span(const Client& c, Micros now) const;
  /// The share a grant of its (fitted, for `demand` clients wanting the GPU) quota adds, now.
  double projected_step(const Client& c, Micros now, size_t demand, size_t contenders) const;

  PolicyOptions opts_;
  std::map<std::string, Client> clients_;
  std::string holder_;
  Lease lease_;                          // the holder's
  std::map<std::string, Lease> coruns_;  // co-runners' leases
  // The latency clients' names (set_clients): while the token is held only they can be granted, so
  // schedule() and next_event() look at them alone rather than at every client.
  std::vector<std::string> latency_names_;
};

}  // namespace gem::sched
