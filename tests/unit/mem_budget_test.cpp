// gem-pmgr's MemBudget (one client's GPU memory on one GPU) driven by scenario scripts (format:
// script.h) in tests/unit/testdata/mem_budget/. Commands, sizes as script_num() reads them:
//   limit BYTES                       -> "notify S,S..." (the sessions set_limit names) or "notify -"
//   join S
//   reserve S need=N want=W [existing] -> "granted G lease=L held=H"
//   return S bytes=B                   -> "returned R lease=L held=H"
//   drop S                             -> "freed F held=H"
//   state                              -> "limit=L held=H sessions=N"
// Run with GEM_REWRITE=1 to rewrite the files with what the budget does now (then review the diff).
#include "../../pod-manager/mem_budget.h"

#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "gem/protocol.h"
#include "script.h"

namespace gem::pmgr {
namespace {

using gem::testing::script_num;

class BudgetScenario {
 public:
  std::vector<std::string> run(const std::string& line) {
    const gem::testing::Command c = gem::testing::parse_command(line);
    const std::string& verb = c.words.at(0);
    auto get = [&](const std::string& k) { return c.kv.count(k) ? script_num(c.kv.at(k)) : 0; };
    auto session = [&] { return static_cast<MemBudget::Session>(std::stoull(c.words.at(1))); };
    std::ostringstream o;
    if (verb == "limit") {
      const std::vector<MemBudget::Session> n = b_.set_limit(script_num(c.words.at(1)));
      o << "notify ";
      for (size_t i = 0; i < n.size(); ++i) o << (i ? "," : "") << n[i];
      if (n.empty()) o << "-";
    } else if (verb == "join") {
      b_.join(session());
      return {};
    } else if (verb == "reserve") {
      const uint64_t g = b_.reserve(session(), get("need"), get("want"), c.flag("existing"));
      o << "granted " << g << " lease=" << b_.held_by(session()) << " held=" << b_.held();
    } else if (verb == "return") {
      const uint64_t r = b_.give_back(session(), get("bytes"));
      o << "returned " << r << " lease=" << b_.held_by(session()) << " held=" << b_.held();
    } else if (verb == "drop") {
      const uint64_t f = b_.drop(session());
      o << "freed " << f << " held=" << b_.held();
    } else if (verb == "state") {
      o << "limit=" << b_.limit() << " held=" << b_.held() << " sessions=" << b_.sessions();
    } else {
      ADD_FAILURE() << "unknown command: " << line;
      return {};
    }
    return {o.str()};
  }

 private:
  MemBudget b_;
};

TEST(MemBudgetScenario, AllScriptsPass) {
  const std::string dir = gem::testing::testdata_dir("mem_budget");
  const std::vector<std::string> files = gem::testing::script_files(dir);
  ASSERT_GE(files.size(), 4u) << "scenario scripts not found in " << dir;
  for (const std::string& f : files) {
    SCOPED_TRACE(f);
    BudgetScenario sc;
    gem::testing::run_script(dir + "/" + f, [&sc](const std::string& line) { return sc.run(line); });
  }
}

// Properties over random operation sequences: the total is the sum of the leases, never exceeds
// the limit through any reserve (existing or not), and no operation overflows whatever the sizes.
TEST(MemBudget, RandomOperationsKeepTheInvariants) {
  std::mt19937_64 rng(7);
  const uint64_t sizes[] = {0, 1, 4096, 2ULL << 20, 64ULL << 20, 1ULL << 30, proto::kMaxWireBytes,
                            proto::kMaxWireBytes + 1, UINT64_MAX};
  for (int round = 0; round < 50; ++round) {
    MemBudget b(sizes[rng() % 9]);
    std::map<MemBudget::Session, uint64_t> leases;
    for (int op = 0; op < 2000; ++op) {
      const MemBudget::Session s = rng() % 6;
      const uint64_t x = sizes[rng() % 9], y = sizes[rng() % 9];
      switch (rng() % 5) {
        case 0: {
          const uint64_t before = b.held();
          const bool existing = rng() % 4 == 0;
          const uint64_t g = b.reserve(s, x, y, existing);
          leases[s] += g;
          const uint64_t need = proto::wire_bytes(x), want = std::max(need, proto::wire_bytes(y));
          EXPECT_TRUE(g == 0 || g == need || g == want || b.held() == MemBudget::kMaxHeld ||
                      (existing && b.held() == b.limit()));
          if (g > 0 && b.limit() != 0) {
            EXPECT_LE(b.held(), std::max(b.limit(), before)) << (existing ? "existing" : "new");
          }
          break;
        }
        case 1:
          leases[s] -= b.give_back(s, x);
          break;
        case 2:
          EXPECT_EQ(b.drop(s), leases[s]);
          leases.erase(s);
          break;
        case 3:
          b.set_limit(x);
          break;
        case 4:
          b.join(s);
          break;
      }
      uint64_t sum = 0;
      for (const auto& [id, l] : leases) {
        EXPECT_EQ(b.held_by(id), l);
        sum += l;
      }
      ASSERT_EQ(b.held(), sum);
      ASSERT_LE(b.held(), MemBudget::kMaxHeld);
    }
  }
}

// Issue 21, item 1: a session declaring 2^64-1 bytes it "holds already" is charged what is left of
// the client's GPU_MEM, not 2^50; a second one then gets nothing.
TEST(MemBudget, ExistingNeverTakesTheTotalAboveTheLimit) {
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  MemBudget b(256 * kMiB);
  EXPECT_EQ(b.reserve(1, 100 * kMiB, 100 * kMiB, false), 100 * kMiB);
  EXPECT_EQ(b.reserve(2, UINT64_MAX, UINT64_MAX, true), 156 * kMiB) << "what is left below the limit";
  EXPECT_EQ(b.held(), 256 * kMiB);
  EXPECT_EQ(b.reserve(3, UINT64_MAX, 0, true), 0u) << "nothing left";
  EXPECT_EQ(b.reserve(3, 1, 1, true), 0u);
  EXPECT_EQ(b.held(), 256 * kMiB);
}

TEST(MemBudget, ExistingLeasesSaturateAtTheCeiling) {
  MemBudget b(0);  // no limit: existing holdings are charged in full, up to 2^62 in all
  uint64_t total = 0;
  for (int i = 0; i < (1 << 13); ++i) total += b.reserve(static_cast<MemBudget::Session>(i % 3), UINT64_MAX, 0, true);
  EXPECT_EQ(total, MemBudget::kMaxHeld) << "2^13 grants of 2^50 reach 2^62 exactly";
  EXPECT_EQ(b.held(), MemBudget::kMaxHeld);
  EXPECT_EQ(b.reserve(9, 1, 1, true), 0u) << "no room below the ceiling";
  EXPECT_EQ(b.reserve(9, 0, 0, false), 0u);
}

}  // namespace
}  // namespace gem::pmgr
