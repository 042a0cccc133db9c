// libFuzzer target: the pure memory cores that take wire sizes (issue 21, item 1). gem-pmgr's
// MemSessions (pod-manager/mem_sessions.h, with its MemBudget) driven by the MemReserve /
// MemReturn / MemQuery a hook sends, and gem-schd's GpuResidency (scheduler/gpu_residency.h) driven
// by the MemUsage a pod manager sends, every u64 as it comes off the wire.
//
// Input: operations, one opcode byte each (% 11) followed by its operands (reads past the end give
// zeros). Sessions h are byte % 6, device UUIDs byte % 4, residency clients byte % 4 (a b c d):
//   0 hello h, uuid                1 set_limit limit u64, flags u8   2 reserve h, need u64, want u64, existing u8
//   3 return h, bytes u64          4 query h                         5 gone h
//   6 usage client, bytes u64, um u8, gpu_mem u64                    7 configure client, gpu_mem u64, um u8
//   8 grant client (the clock moves 1 ms)                            9 forget client
//  10 tick (the clock moves u16 ms)
//
// Properties (abort on violation):
//  MemSessions / MemBudget
//  - held() is exactly the sum of the connected sessions' leases; every lease <= MemBudget::kMaxHeld;
//  - a reserve (existing or not) never takes held() above max(limit, held before) when a limit is
//    set: 20 made-up UUIDs or a declared 2^64-1 share the one GPU_MEM; a grant is at most 2^50;
//  - a reserve or return changes only the sender's lease; a return never raises it;
//  - every MemState carries the current limit; a reserve's answer carries held() after the grant and
//    granted = what the sender's lease grew by.
//  GpuResidency
//  - a client's charge is min(report clamped to 2^50, GPU_MEM when not 0), whatever the report says;
//  - um is what configure()/usage() were told (the config), resident_bytes() is the sum of the
//    resident and non-UM clients' charges;
//  - a plan never evicts the holder nor a non-UM client, and each evicted client was resident.
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>

#include "gem/protocol.h"
#include "gpu_residency.h"
#include "mem_sessions.h"

using gem::Micros;
using gem::pmgr::Action;
using gem::pmgr::Actions;
using gem::pmgr::HookId;
using gem::pmgr::MemBudget;
using gem::pmgr::MemSessions;
using gem::sched::GpuResidency;
namespace proto = gem::proto;

#include "fuzz_check.h"

namespace {

constexpr const char* kFuzzTarget = "fuzz_memory";

struct Reader {
  const uint8_t* p;
  size_t n;
  uint8_t u8() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | u8();
    return v;
  }
};

const char* const kUuids[] = {"GPU-fa4e0000-0000-0000-0000-000000000000", "GPU-fa4e0000-0000-0000-0000-000000000001",
                              "GPU-fa4e0000-0000-0000-0000-000000000002", "GPU-fa4e0000-0000-0000-0000-000000000003"};
const char* const kClients[] = {"a", "b", "c", "d"};

// What the fuzzer told the residency about each client (the config's terms, the raw report).
struct Told {
  uint64_t report = 0;
  uint64_t gpu_mem = 0;
  bool um = false;
};

void check_sessions(const MemSessions& m, const std::map<HookId, bool>& live) {
  const MemBudget& b = m.budget();
  uint64_t sum = 0;
  for (const auto& [h, on] : live) {
    const uint64_t lease = b.held_by(h);
    CHECK(lease <= MemBudget::kMaxHeld);
    sum += lease;  // at most 6 x 2^62: no wrap
  }
  CHECK(sum == b.held());
  CHECK(m.held_total() == b.held());
}

void check_states(const Actions& acts, const MemSessions& m) {
  for (const Action& a : acts) {
    if (const auto* st = std::get_if<proto::MemState>(&a.msg.body)) {
      CHECK(st->limit_bytes == m.limit());
      CHECK(st->granted_bytes <= proto::kMaxWireBytes);
    }
  }
}

void check_residency(const GpuResidency& r, const std::map<std::string, Told>& told) {
  uint64_t sum = 0;  // at most 4 x 2^50
  for (const auto& [name, t] : told) {
    const GpuResidency::Client* c = r.client(name);
    if (c == nullptr) continue;
    const uint64_t want = std::min(proto::wire_bytes(t.report), t.gpu_mem == 0 ? UINT64_MAX : proto::wire_bytes(t.gpu_mem));
    CHECK(c->bytes == want);
    CHECK(c->um == t.um);
    if (c->resident || !c->um) sum += c->bytes;
  }
  CHECK(r.resident_bytes() == sum);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in{data, size};
  MemSessions m(200 * 1000);
  GpuResidency r(uint64_t{3} << 30, true);
  std::map<HookId, bool> live;
  std::map<std::string, Told> told;
  Micros now = 0;
  uint64_t rid = 0;
  while (in.n > 0) {
    Actions acts;
    const uint8_t op = in.u8() % 11;
    switch (op) {
      case 0: {
        const HookId h = in.u8() % 6;
        const char* uuid = kUuids[in.u8() % 4];
        if (live.count(h) != 0) break;  // the edge refuses a second Hello on one connection
        m.hello(h, uuid, ++rid, now, &acts);
        live[h] = true;
        break;
      }
      case 1: {
        const uint64_t limit = in.u64();
        const uint32_t flags = in.u8() & 1;
        m.set_limit(limit, &acts, flags);
        CHECK(m.limit() == proto::wire_bytes(limit));
        break;
      }
      case 2:
      case 3: {
        const HookId h = in.u8() % 6;
        const uint64_t a = in.u64();
        const uint64_t b = op == 2 ? in.u64() : 0;
        const bool existing = op == 2 && (in.u8() & 1) != 0;
        std::map<HookId, uint64_t> before;
        for (const auto& [s, on] : live) before[s] = m.budget().held_by(s);
        const uint64_t held = m.budget().held();
        if (op == 2) {
          m.reserve(h, ++rid, proto::MemReserve{a, b, existing}, &acts);
        } else {
          m.give_back(h, ++rid, proto::MemReturn{a}, &acts);
        }
        for (const auto& [s, lease] : before) {
          if (s != h) CHECK(m.budget().held_by(s) == lease);  // never another session's lease
        }
        if (op == 3) CHECK(m.budget().held_by(h) <= before[h]);
        if (op == 2 && m.known() && m.limit() != 0) CHECK(m.budget().held() <= std::max(m.limit(), held));
        if (op == 2 && m.known() && live.count(h) != 0) {
          const uint64_t grew = m.budget().held_by(h) - before[h];
          CHECK(grew <= proto::kMaxWireBytes);
          bool answered = false;
          for (const Action& act : acts) {
            const auto* st = std::get_if<proto::MemState>(&act.msg.body);
            if (st != nullptr && act.hook == h && act.msg.request_id == rid) {
              CHECK(st->granted_bytes == grew);
              CHECK(st->client_held_bytes == m.budget().held());
              answered = true;
            }
          }
          CHECK(answered);
        }
        break;
      }
      case 4:
        m.query(in.u8() % 6, ++rid, &acts);
        break;
      case 5: {
        const HookId h = in.u8() % 6;
        m.gone(h);
        live.erase(h);
        CHECK(m.budget().held_by(h) == 0);
        break;
      }
      case 6: {
        const char* c = kClients[in.u8() % 4];
        Told& t = told[c];
        t.report = in.u64();
        t.um = (in.u8() & 1) != 0;
        t.gpu_mem = in.u64();
        r.usage(c, t.report, t.um, t.gpu_mem);
        break;
      }
      case 7: {
        const char* c = kClients[in.u8() % 4];
        const uint64_t gpu_mem = in.u64();
        const bool um = (in.u8() & 1) != 0;
        r.configure(c, gpu_mem, um);
        Told& t = told[c];
        t.gpu_mem = gpu_mem;
        t.um = um;
        break;
      }
      case 8: {
        const std::string holder = kClients[in.u8() % 4];
        now += 1000;
        std::map<std::string, bool> was_resident;
        for (const char* c : kClients) {
          if (const GpuResidency::Client* k = r.client(c)) was_resident[c] = k->resident;
        }
        const GpuResidency::Plan p = r.grant(holder, now);
        told.try_emplace(holder);  // a grant makes an unknown client known (nothing reported)
        CHECK(r.client(holder)->resident);
        for (const std::string& e : p.evict) {
          CHECK(e != holder);
          const GpuResidency::Client* k = r.client(e);
          CHECK(k != nullptr && k->um && !k->resident && was_resident[e]);
        }
        CHECK(p.resident_bytes == r.resident_bytes());
        break;
      }
      case 9: {
        const char* c = kClients[in.u8() % 4];
        r.forget(c);
        told.erase(c);
        break;
      }
      default: {
        now += static_cast<Micros>(in.u8() << 8 | in.u8()) * 1000;
        m.tick(now, &acts);
        break;
      }
    }
    check_states(acts, m);
    check_sessions(m, live);
    check_residency(r, told);
  }
  return 0;
}
