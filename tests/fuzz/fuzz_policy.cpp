// libFuzzer target: gem-schd's token policy (gem::sched::Policy, scheduler/policy.h) and gem-pmgr's
// TokenShare (pod-manager/token_share.h), driven by wire values the way the daemons pass them:
// every u64 from a TokenRequest/TokenRelease/TokenRenew/TokenGrant is cast with
// static_cast<Micros>(wire_u64), so a peer can send negative and huge values.
//
// Input: byte 0 picks the PolicyOptions (defaults or two small sets), bytes 1..4 the start of the
// simulated CLOCK_MONOTONIC (µs); then operations, one opcode byte each followed by its operands
// (reads past the end give zeros):
//   0 set_clients  mask, then per set bit (clients a b c d) REQUEST and LIMIT bytes, scaled so
//                  that 0 <= REQUEST <= LIMIT <= 1 and the REQUESTs sum to at most 1, as
//                  parse_config and the --dynamic_clients check guarantee
//   1 request      client, burst u64          2 release   client, used u64, burst u64, again u8
//   3 renew        client, used u64, burst u64           4 disconnect client
//   5 schedule     6 advance u16 µs           7 advance u64 % 2^36 µs
//   8 advance to next_event (when it is in the future and less than 2^36 µs away)
//   9 TokenShare granted quota u64           10 take who              11 give_back who, used, end, burst (u64 each)
//  12 lost who    13 finish                  14 reset                 15 give_back who, used u32, end = now - u16
//  16 finish and release the report to the Policy as client (what gem-pmgr does on the last give-back)
// Clients are a b c d and the unknown zz (client byte % 5); "who" (a process's connection) is byte % 4.
// The clock only moves forward and stays below 2^53 µs.
//
// Invariants (abort on violation), safety rather than exact charges:
//  - at most one holder, and a holder is a known client; stats() exists exactly for known clients;
//  - each client's share is finite and in [0, 1] (its charged intervals are in the past and within
//    its own grants, which do not overlap), used_total >= 0 never decreases, grants never decrease;
//  - a grant goes to a client that was waiting and becomes the holder, with 0 < quota <= base_quota;
//    a renewal keeps the holder and has 0 < quota <= base_quota;
//  - next_event(now) >= now when nobody holds the token;
//  - TokenShare: holders are exactly the processes that took and have not given back; give_back()
//    says "last" exactly when the last holder leaves; remaining() >= 0 and 0 unless held; finish()
//    reports used >= 0 and burst >= 0 and leaves nothing held.
// UndefinedBehaviorSanitizer aborts on signed overflow anywhere in the code under test.
//  - finish() charges at least the time from the grant (a hook's report never lowers it).
// The four TokenShare crashes this target found (overflows on wire values, a sentinel mistaken for
// an interval) are fixed; their inputs are regression seeds in tests/fuzz/corpus/policy/known-*.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "policy.h"
#include "token_share.h"
#include "gem/protocol.h"

using gem::Micros;
using gem::pmgr::TokenShare;
using gem::sched::ClientShare;
using gem::sched::Policy;
using gem::sched::PolicyOptions;

#include "fuzz_check.h"

namespace {

constexpr const char* kFuzzTarget = "fuzz_policy";


class Input {
 public:
  Input(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool done() const { return i_ >= n_; }
  uint8_t u8() { return i_ < n_ ? p_[i_++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() << 8 | u8()); }
  uint32_t u32() { return static_cast<uint32_t>(u16()) << 16 | u16(); }
  uint64_t u64() { return static_cast<uint64_t>(u32()) << 32 | u32(); }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t i_ = 0;
};

const char* const kNames[] = {"a", "b", "c", "d", "zz"};  // zz is never a client
constexpr Micros kMaxClock = Micros{1} << 53;
constexpr Micros kAdvanceMask = (Micros{1} << 36) - 1;

struct Harness {
  Policy policy;
  Micros now;
  std::map<std::string, ClientShare> known;  // what set_clients was last given
  std::map<std::string, Micros> used_total;  // last seen, per known client
  std::map<std::string, uint64_t> grants;
  TokenShare share;
  std::set<int> holders;  // the model of share's holders

  Harness(PolicyOptions o, Micros start) : policy(o), now(start) {}

  void advance(Micros d) { now = std::min(kMaxClock, now + d); }

  void check_policy() {
    const std::string& holder = policy.holder();
    if (!holder.empty()) CHECK(known.count(holder) == 1 && policy.has_client(holder));
    CHECK(policy.clients().size() == known.size());
    int holding = 0;
    for (const char* name : kNames) {
      const auto s = policy.stats(name, now);
      auto k = known.find(name);
      CHECK(s.has_value() == (k != known.end()));
      CHECK(policy.has_client(name) == s.has_value());
      if (!s) continue;
      CHECK(s->request == k->second.request && s->limit == k->second.limit);
      CHECK(std::isfinite(s->share));
      if (!(s->share >= 0 && s->share <= 1)) {
        std::fprintf(stderr, "client %s share %.17g\n", name, s->share);
        FAIL("0 <= share <= 1");
      }
      CHECK(s->used_total >= 0 && s->used_total >= used_total[name]);
      used_total[name] = s->used_total;
      CHECK(s->grants >= grants[name]);
      grants[name] = s->grants;
      CHECK(s->holding == (holder == name));
      holding += s->holding;
    }
    CHECK(holding == (holder.empty() ? 0 : 1));
  }

  void check_share() {
    CHECK(share.holder_count() == holders.size());
    CHECK(share.has_holders() == !holders.empty());
    for (int who = 0; who < 4; ++who) CHECK(share.holds(who) == (holders.count(who) == 1));
    const Micros rem = share.remaining(now);
    CHECK(rem >= 0);
    if (!share.held()) CHECK(rem == 0);
    if (share.valid(now)) CHECK(share.held());
  }

  Micros grant_at = 0;

  // gem-pmgr: the last process gave the token back. The charge is at least the time held.
  TokenShare::Report finish() {
    const bool was_held = share.held();
    const TokenShare::Report r = share.finish(now);
    CHECK(r.used >= 0 && r.burst >= 0);
    if (was_held) CHECK(r.used >= now - grant_at);  // a hook's report never lowers the charge
    CHECK(!share.held() && !share.has_holders());
    holders.clear();
    return r;
  }

  // A hook's TokenRelease, raw wire values (TokenShare clamps them itself).
  void give_back(int who, uint64_t used, uint64_t end, uint64_t burst) {
    const bool had = holders.erase(who) == 1;
    const bool last = share.give_back(who, used, end, burst, now);
    CHECK(last == (had && holders.empty()));
  }

  void set_clients(Input& in) {
    const uint8_t mask = in.u8();
    std::vector<ClientShare> next;
    double budget = 1;
    for (int i = 0; i < 4; ++i) {
      if (!(mask >> i & 1)) continue;
      const double r = in.u8() / 255.0 * budget;
      const uint8_t l = in.u8();
      const double lim = l == 255 ? 1.0 : std::min(1.0, r + l / 255.0 * (1 - r));
      budget = std::max(0.0, budget - r);
      next.push_back({kNames[i], r, lim});
    }
    const std::vector<std::string> dropped = policy.set_clients(next, now);
    std::map<std::string, ClientShare> now_known;
    for (const ClientShare& c : next) now_known[c.name] = c;
    for (const auto& [name, c] : known) {
      const bool gone = now_known.count(name) == 0;
      CHECK(gone == (std::find(dropped.begin(), dropped.end(), name) != dropped.end()));
      if (gone) {
        used_total.erase(name);
        grants.erase(name);
      }
    }
    CHECK(dropped.size() <= known.size());
    known = std::move(now_known);
  }

  void step(Input& in) {
    const uint8_t op = in.u8() % 17;
    const Micros base = policy.options().base_quota;
    switch (op) {
      case 0:
        set_clients(in);
        break;
      case 1: {
        const char* name = kNames[in.u8() % 5];
        policy.request(name, static_cast<Micros>(in.u64()), now);
        break;
      }
      case 2: {
        const std::string name = kNames[in.u8() % 5];
        const Micros used = static_cast<Micros>(in.u64());
        const Micros burst = static_cast<Micros>(in.u64());
        const bool again = in.u8() & 1;
        const std::string before = policy.holder();
        policy.release(name, used, burst, now);
        CHECK(policy.holder() == (before == name ? std::string() : before));
        if (again) policy.request(name, burst, now);  // as gem-schd does for TokenRelease.again
        break;
      }
      case 3: {
        const std::string name = kNames[in.u8() % 5];
        const Micros used = static_cast<Micros>(in.u64());
        const Micros burst = static_cast<Micros>(in.u64());
        const std::string before = policy.holder();
        const auto q = policy.renew(name, used, burst, now);
        CHECK(policy.holder() == before);
        if (q) CHECK(before == name && *q > 0 && *q <= base);
        break;
      }
      case 4: {
        const std::string name = kNames[in.u8() % 5];
        const std::string before = policy.holder();
        policy.disconnect(name, now);
        CHECK(policy.holder() == (before == name ? std::string() : before));
        if (const auto s = policy.stats(name, now)) CHECK(!s->waiting);
        break;
      }
      case 5: {
        std::set<std::string> waiting;
        for (const auto& [name, c] : known) {
          if (policy.stats(name, now)->waiting) waiting.insert(name);
        }
        const auto g = policy.schedule(now);
        if (g) {
          CHECK(waiting.count(g->client) == 1);
          CHECK(policy.holder() == g->client);
          CHECK(g->quota > 0 && g->quota <= base);
          CHECK(!policy.stats(g->client, now)->waiting);
        }
        break;
      }
      case 6:
        advance(in.u16());
        break;
      case 7:
        advance(static_cast<Micros>(in.u64() & kAdvanceMask));
        break;
      case 8: {
        const Micros t = policy.next_event(now);
        if (policy.holder().empty()) CHECK(t >= now);
        if (t > now && t - now <= kAdvanceMask) advance(t - now);
        break;
      }
      case 9: {
        share.granted(gem::proto::wire_micros(in.u64()), now);  // as gem-pmgr passes a TokenGrant
        grant_at = now;
        break;
      }
      case 10: {
        const int who = in.u8() % 4;
        share.take(who);
        holders.insert(who);
        break;
      }
      case 11: {
        const int who = in.u8() % 4;
        const uint64_t used = in.u64();
        const uint64_t end = in.u64();
        const uint64_t burst = in.u64();
        give_back(who, used, end, burst);
        break;
      }
      case 12: {
        const int who = in.u8() % 4;
        const bool had = holders.erase(who) == 1;
        CHECK(share.lost(who, now) == (had && holders.empty()));
        break;
      }
      case 13:
        finish();
        break;
      case 14:
        share.reset();
        holders.clear();
        break;
      case 15: {
        const int who = in.u8() % 4;
        const Micros used = in.u32();
        const Micros end = now - in.u16();
        give_back(who, used, end, static_cast<Micros>(in.u32()));
        break;
      }
      case 16: {
        const std::string name = kNames[in.u8() % 5];
        const TokenShare::Report r = finish();
        const std::string before = policy.holder();
        policy.release(name, r.used, r.burst, now);
        CHECK(policy.holder() == (before == name ? std::string() : before));
        break;
      }
    }
    check_policy();
    check_share();
  }
};

const PolicyOptions kOptions[] = {
    PolicyOptions{},
    PolicyOptions{1000, 100, 10000, 5000},
    PolicyOptions{7, 3, 50, 0},
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  const PolicyOptions& opts = kOptions[in.u8() % 3];
  Harness h(opts, static_cast<Micros>(in.u32()));
  for (int steps = 0; !in.done() && steps < 4096; ++steps) h.step(in);
  return 0;
}
