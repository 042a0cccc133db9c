// gem-schd's residency plan (scheduler/gpu_residency.h) driven by scenario scripts (format: script.h) in
// tests/unit/testdata/gpu_residency/, with a simulated clock. Commands (sizes as script_num() reads
// them; each file starts with a budget of 1 GiB, residency on):
//   budget B [off]             a new GpuResidency (forgets everything)
//   T usage NAME B [um] [mem=M] a MemUsage (T in ms) of B bytes, with the client's configured terms:
//                              um=on (um), GPU_MEM M (default 0: none)
//   T config NAME [um] [mem=M] a config reload: the client's new terms
//   T grant NAME               -> "evict N,N... resident=R" [" over"] [" warn"]  ("evict -": none)
//   T gone NAME
//   state                      -> "resident=R budget=B on|off", then "NAME bytes=B um|- resident|evicted
//                                 last_run=T|never evictions=N" per client
// Sizes print as NMiB when whole MiB. Run with GEM_REWRITE=1 to rewrite the files with what the
// plan does now (then review the diff).
#include "../../scheduler/gpu_residency.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <sstream>

#include "gem/protocol.h"
#include "script.h"

namespace gem::sched {
namespace {

using gem::testing::script_num;

std::string size_text(uint64_t b) {
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  return b % kMiB == 0 ? std::to_string(b / kMiB) + "MiB" : std::to_string(b);
}

class ResidencyScenario {
 public:
  std::vector<std::string> run(const std::string& line) {
    const gem::testing::Command c = gem::testing::parse_command(line);
    const std::vector<std::string>& w = c.words;
    if (w.at(0) == "budget") {
      r_ = GpuResidency(script_num(w.at(1)), !c.flag("off"));
      return {};
    }
    if (w.at(0) == "state") return state();
    const Micros now = static_cast<Micros>(std::stoll(w.at(0))) * 1000;
    const std::string& verb = w.at(1);
    const uint64_t mem = c.kv.count("mem") ? script_num(c.kv.at("mem")) : 0;
    if (verb == "usage") {
      r_.usage(w.at(2), script_num(w.at(3)), c.flag("um"), mem);
      return {};
    }
    if (verb == "config") {
      r_.configure(w.at(2), mem, c.flag("um"));
      return {};
    }
    if (verb == "gone") {
      r_.forget(w.at(2));
      return {};
    }
    if (verb == "grant") {
      const GpuResidency::Plan p = r_.grant(w.at(2), now);
      std::ostringstream o;
      o << "evict ";
      for (size_t i = 0; i < p.evict.size(); ++i) o << (i ? "," : "") << p.evict[i];
      if (p.evict.empty()) o << "-";
      o << " resident=" << size_text(p.resident_bytes) << (p.over_budget ? " over" : "") << (p.warn ? " warn" : "");
      return {o.str()};
    }
    ADD_FAILURE() << "unknown command: " << line;
    return {};
  }

 private:
  std::vector<std::string> state() const {
    std::vector<std::string> out;
    out.push_back("resident=" + size_text(r_.resident_bytes()) + " budget=" + size_text(r_.budget()) +
                  (r_.enabled() ? " on" : " off"));
    for (const std::string& name : names_) {
      const GpuResidency::Client* k = r_.client(name);
      if (k == nullptr) continue;
      std::ostringstream o;
      o << name << " bytes=" << size_text(k->bytes) << (k->gpu_mem ? " mem=" + size_text(k->gpu_mem) : "") << (k->um ? " um" : " -")
        << (k->resident ? " resident" : " evicted") << " last_run=";
      if (k->ran) {
        o << k->last_run / 1000;
      } else {
        o << "never";
      }
      o << " evictions=" << k->evictions;
      out.push_back(o.str());
    }
    return out;
  }

  const std::vector<std::string> names_ = {"a", "b", "c", "d", "e", "f"};
  GpuResidency r_{uint64_t{1} << 30, true};
};

TEST(ResidencyScenario, AllScriptsPass) {
  const std::string dir = gem::testing::testdata_dir("gpu_residency");
  const std::vector<std::string> files = gem::testing::script_files(dir);
  ASSERT_GE(files.size(), 6u) << "scenario scripts not found in " << dir;
  for (const std::string& f : files) {
    SCOPED_TRACE(f);
    ResidencyScenario sc;
    gem::testing::run_script(dir + "/" + f, [&sc](const std::string& line) { return sc.run(line); });
  }
}

TEST(GpuResidency, DefaultBudgetLeavesTheLargerOfTwoGiBAndFivePercent) {
  constexpr uint64_t kGiB = uint64_t{1} << 30;
  EXPECT_EQ(default_mem_budget(16 * kGiB), 14 * kGiB) << "5% of 16 GiB is under 2 GiB";
  EXPECT_EQ(default_mem_budget(40 * kGiB), 38 * kGiB) << "5% of 40 GiB is exactly 2 GiB";
  EXPECT_EQ(default_mem_budget(80 * kGiB), 76 * kGiB);
  EXPECT_EQ(default_mem_budget(143771ULL << 20), (143771ULL << 20) - (143771ULL << 20) / 20) << "an H200";
  EXPECT_EQ(default_mem_budget(2 * kGiB), 0u);
  EXPECT_EQ(default_mem_budget(kGiB), 0u);
  EXPECT_EQ(default_mem_budget(0), 0u);
  EXPECT_EQ(default_mem_budget(UINT64_MAX), UINT64_MAX - UINT64_MAX / 20);
}

TEST(GpuResidency, ABudgetOfZeroIsOff) {
  GpuResidency r(0, true);
  EXPECT_FALSE(r.enabled());
  r.usage("a", 1, true, 0);
  r.grant("b", 0);
  EXPECT_TRUE(r.grant("c", 1).evict.empty());
}

TEST(GpuResidency, HostileSizesAreClampedAndSumsNeverWrap) {
  GpuResidency r(uint64_t{1} << 40, true);
  for (int i = 0; i < 20000; ++i) r.usage("c" + std::to_string(i), UINT64_MAX, i % 2 == 0, 0);
  EXPECT_EQ(r.client("c0")->bytes, proto::kMaxWireBytes);
  EXPECT_EQ(r.resident_bytes(), UINT64_MAX) << "20000 x 2^50 saturates in the report";
  const GpuResidency::Plan p = r.grant("c1", 5);
  EXPECT_EQ(p.evict.size(), 10000u) << "every UM client goes, and still the non-UM ones do not fit";
  EXPECT_TRUE(p.over_budget);
  EXPECT_EQ(p.resident_bytes, 10000 * proto::kMaxWireBytes);
}

// A report cannot charge a client beyond its GPU_MEM, whatever it says (issue 21, item 1): 2^64-1
// from one client of GPU_MEM 256 MiB leaves the other UM clients resident.
TEST(GpuResidency, AReportIsChargedAtMostTheClientsGpuMem) {
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  GpuResidency r(800 * kMiB, true);
  r.usage("b", 256 * kMiB, true, 256 * kMiB);
  r.usage("c", 256 * kMiB, true, 256 * kMiB);
  r.usage("a", UINT64_MAX, true, 256 * kMiB);
  EXPECT_EQ(r.client("a")->bytes, 256 * kMiB);
  for (const char* holder : {"a", "b", "c", "a"}) {
    const GpuResidency::Plan p = r.grant(holder, 10);
    EXPECT_TRUE(p.evict.empty()) << "768 MiB fit in 800: nobody is evicted for " << holder;
    EXPECT_EQ(p.resident_bytes, 768 * kMiB);
  }
  r.configure("a", 128 * kMiB, true);
  EXPECT_EQ(r.client("a")->bytes, 128 * kMiB) << "a lower GPU_MEM applies to the last report at once";
  r.configure("a", 0, true);
  EXPECT_EQ(r.client("a")->bytes, proto::kMaxWireBytes) << "no GPU_MEM: the report, clamped to 2^50";
}

// Random usage reports, grants and departures: the plan's invariants hold after every grant.
TEST(GpuResidency, RandomSequencesKeepTheInvariants) {
  std::mt19937_64 rng(11);
  const uint64_t sizes[] = {0, 1, 64ULL << 20, 100ULL << 20, 256ULL << 20, 1ULL << 30, UINT64_MAX};
  const char* names[] = {"a", "b", "c", "d", "e"};
  for (int round = 0; round < 200; ++round) {
    const uint64_t budget = (rng() % 8 + 1) * (128ULL << 20);
    GpuResidency r(budget, true);
    std::map<std::string, Micros> last_run;
    for (int step = 0; step < 60; ++step) {
      const std::string name = names[rng() % 5];
      const Micros now = step * 1000;
      switch (rng() % 4) {
        case 0:
        case 1:
        {
          const uint64_t gpu_mem = sizes[rng() % 7];
          r.usage(name, sizes[rng() % 7], rng() % 3 != 0, gpu_mem);
          ASSERT_TRUE(gpu_mem == 0 || r.client(name)->bytes <= gpu_mem) << "a report is charged at most GPU_MEM";
          break;
        }
        case 2: {
          // What evicting could at best achieve: the holder and the non-UM clients stay.
          uint64_t floor = 0;
          std::map<std::string, bool> was_resident;
          for (const char* n : names) {
            const GpuResidency::Client* k = r.client(n);
            if (k == nullptr) continue;
            was_resident[n] = k->resident;
            if (n == name || !k->um) floor = std::min<uint64_t>(floor + k->bytes, UINT64_MAX / 2);
          }
          const GpuResidency::Plan p = r.grant(name, now);
          last_run[name] = now;
          ASSERT_EQ(p.resident_bytes, r.resident_bytes());
          if (floor <= budget) {
            ASSERT_LE(p.resident_bytes, budget) << "round " << round << " step " << step;
          }
          ASSERT_EQ(p.over_budget, p.resident_bytes > budget);
          ASSERT_TRUE(r.client(name)->resident) << "the holder is resident";
          Micros prev = -1;
          for (const std::string& e : p.evict) {
            ASSERT_NE(e, name) << "the holder is never evicted";
            const GpuResidency::Client* k = r.client(e);
            ASSERT_TRUE(k->um) << "a non-UM client is never evicted";
            ASSERT_TRUE(was_resident[e]) << "only a resident client is evicted";
            ASSERT_FALSE(k->resident);
            const Micros run = last_run.count(e) ? last_run[e] : -1;
            ASSERT_GE(run, prev) << "least recently run first";
            prev = run;
          }
          break;
        }
        default:
          r.forget(name);
          last_run.erase(name);
          break;
      }
    }
  }
}

}  // namespace
}  // namespace gem::sched
