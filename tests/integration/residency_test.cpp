// Residency (docs/memory.md, "Residency"), the daemons' side: the real gem-schd (--mem_budget) and
// gem-pmgr, three unified-memory clients whose memory sessions (spoken by hand, RawClient) hold
// leases, and token clients (Role::kHook) taking turns. The observable is the Evict arriving on a
// client's launch-gate connection, and gem-schd's --stats. Every wait is for a message or a state
// the daemons report, under a deadline scaled by slack().
#include <memory>

#include "harness.h"
#include "raw_client.h"

namespace gemtest {
namespace {

namespace proto = gem::proto;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
const char* const kUuid = "GPU-fa4e0000-0000-0000-0000-000000000000";

class ResidencyTest : public GemTest {
 protected:
  struct Client {
    std::unique_ptr<RawClient> token;   // a launch gate (Role::kHook)
    std::unique_ptr<RawClient> memory;  // a memory session (Role::kHookMemory)
  };

  /// Clients a, b, c (REQUEST 0.3, LIMIT 1, GPU_MEM 1GiB, um=on unless told), their pod managers,
  /// and gem-schd with `extra` flags. A holder keeps the token as long as the test needs it.
  void start(std::vector<std::string> extra, bool um = true) {
    const std::string mem = um ? "1GiB um=on" : "1GiB";
    start_with(mem, std::move(extra), {"a", "b", "c"});
  }

  /// Clients a, b, c with GPU_MEM (and options) `mem`; gem-schd with `extra`; real pod managers for
  /// `real` only (the others are left to forge()).
  void start_with(const std::string& mem, std::vector<std::string> extra, const std::vector<std::string>& real) {
    write_config({{"a", 0.3, 1.0, mem}, {"b", 0.3, 1.0, mem}, {"c", 0.3, 1.0, mem}});
    SchedulerOptions so;
    so.extra = std::move(extra);
    so.extra.insert(so.extra.end(), {"--lease_grace", "60000"});
    start_scheduler(so);
    for (const std::string& n : real) {
      start_pod_manager(n);
      clients_[n].token = connect(n, proto::Role::kHook);
      clients_[n].memory = connect(n, proto::Role::kHookMemory);
    }
  }

  /// A pod manager for `name` spoken by hand straight to gem-schd: its MemUsage says what it likes.
  /// Its connection stands in as the client's launch gate (Evict arrives there).
  void forge(const std::string& name) {
    auto c = std::make_unique<RawClient>();
    std::string why;
    ASSERT_TRUE(c->connect(path("schd.sock"), &why)) << why;
    ASSERT_TRUE(c->hello(name, proto::Role::kPodManager));
    const auto m = c->receive_skipping_heartbeats(5 * slack());
    ASSERT_TRUE(m && std::holds_alternative<proto::ClientSettings>(m->body)) << name << ": Hello not answered";
    clients_[name].token = std::move(c);
  }

  /// The forged pod manager of `name` reports `bytes` with `flags`; waits until gem-schd's stats show
  /// a charge of `charged`.
  void report(const std::string& name, uint64_t bytes, uint32_t flags, uint64_t charged) {
    ASSERT_TRUE(clients_[name].token->send({0, proto::MemUsage{bytes, flags}}));
    const bool told = wait_until(5 * slack(), [&] { return client_stats(name).value("mem_bytes", uint64_t{0}) == charged; });
    ASSERT_TRUE(told) << name << " reported " << bytes << ", expected a charge of " << charged << ":\n" << stats().dump(1);
  }

  std::unique_ptr<RawClient> connect(const std::string& name, proto::Role role) {
    auto c = std::make_unique<RawClient>();
    std::string why;
    EXPECT_TRUE(c->connect(pmgr_socket(name), &why)) << why;
    EXPECT_TRUE(c->hello(name, role, kUuid));
    const auto m = c->receive_skipping_heartbeats(5 * slack());
    const bool answered = m && m->request_id == 1 &&
                          (role == proto::Role::kHook ? std::holds_alternative<proto::ClientSettings>(m->body)
                                                      : std::holds_alternative<proto::MemState>(m->body));
    EXPECT_TRUE(answered) << name << ": Hello not answered: " << (m ? proto::type_name(m->body) : "nothing");
    return c;
  }

  /// `name`'s memory session leases `bytes`; waits until gem-schd's stats show the client's usage.
  void lease(const std::string& name, uint64_t bytes) {
    RawClient& s = *clients_[name].memory;
    const uint64_t rid = ++rid_;
    ASSERT_TRUE(s.send({rid, proto::MemReserve{bytes, bytes, false}}));
    const auto m = s.receive_skipping_heartbeats(5 * slack());
    ASSERT_TRUE(m && m->request_id == rid && std::holds_alternative<proto::MemState>(m->body));
    ASSERT_EQ(std::get<proto::MemState>(m->body).granted_bytes, bytes);
    const bool told = wait_until(5 * slack(), [&] { return client_stats(name).value("mem_bytes", uint64_t{0}) == bytes; });
    ASSERT_TRUE(told) << name << "'s usage never reached gem-schd:\n" << stats().dump(1);
  }

  /// The next message on a launch gate that is not a Heartbeat nor a pushed ClientSettings (the
  /// route sends the scheduler's settings when it becomes Ready).
  static std::optional<proto::Message> next(RawClient& c, double seconds) {
    const Micros deadline = mono_us() + static_cast<Micros>(seconds * 1e6);
    for (;;) {
      const double left = (deadline - mono_us()) / 1e6;
      if (left <= 0) return std::nullopt;
      auto m = c.receive_skipping_heartbeats(left);
      if (!m || m->request_id != 0 || !std::holds_alternative<proto::ClientSettings>(m->body)) return m;
    }
  }

  nlohmann::json client_stats(const std::string& name) const {
    const nlohmann::json j = stats();
    return j.contains("clients") && j["clients"].contains(name) ? j["clients"][name] : nlohmann::json::object();
  }

  /// `name` asks for the token and gets it; then, once gem-schd's stats show the grant, checks
  /// that the resident memory is within the budget (when evicting can make it fit: `fits`).
  /// Returns the stats of then.
  nlohmann::json take_turn(const std::string& name, bool fits = true) {
    RawClient& t = *clients_[name].token;
    const uint64_t rid = ++rid_;
    EXPECT_TRUE(t.send({rid, proto::TokenRequest{0}}));
    const auto m = next(t, 5 * slack());
    EXPECT_TRUE(m && m->request_id == rid && std::holds_alternative<proto::TokenGrant>(m->body))
        << name << " got " << (m ? proto::type_name(m->body) : "nothing") << " instead of its grant";
    const Micros granted = mono_us();  // gem-schd's stats carry the same clock (CLOCK_MONOTONIC)
    nlohmann::json j;
    const bool shown = wait_until(5 * slack(), [&] {
      j = stats();
      return j.value("time_us", Micros{0}) > granted && j.value("holder", nlohmann::json()) == name;
    });
    EXPECT_TRUE(shown) << "the grant to " << name << " never showed in the stats:\n" << j.dump(1);
    if (fits && j.value("mem_budget", uint64_t{0}) > 0) {
      EXPECT_LE(j.value("resident_bytes", UINT64_MAX), j.value("mem_budget", uint64_t{0}))
          << "resident memory above the budget after the grant to " << name << ":\n" << j.dump(1);
    }
    return j;
  }

  void give_back(const std::string& name) {
    EXPECT_TRUE(clients_[name].token->send({++rid_, proto::TokenRelease{1000, 1000, 0, 0, false}}));
  }

  /// The next message on `name`'s launch gate is an Evict (request id 0).
  void expect_evict(const std::string& name) {
    const auto m = next(*clients_[name].token, 5 * slack());
    EXPECT_TRUE(m && m->request_id == 0 && std::holds_alternative<proto::Evict>(m->body))
        << name << " expected Evict, got " << (m ? proto::type_name(m->body) : "nothing");
  }

  /// Nothing but heartbeats on `name`'s launch gate for a moment.
  void expect_quiet(const std::string& name, double seconds = 0.2) {
    const auto m = next(*clients_[name].token, seconds);
    EXPECT_FALSE(m.has_value()) << name << " got an unexpected " << proto::type_name(m->body);
  }

  std::map<std::string, Client> clients_;
  uint64_t rid_ = 100;
};

TEST_F(ResidencyTest, LeastRecentlyRunIsEvictedAndTheBudgetHolds) {
  start({"--mem_budget", "600MiB"});
  // a and b fit (512 MiB of 600): their turns evict nothing.
  lease("a", 256 * kMiB);
  lease("b", 256 * kMiB);
  for (const char* n : {"a", "b"}) {
    const nlohmann::json j = take_turn(n);
    EXPECT_EQ(j["mem_budget"], 600 * kMiB);
    give_back(n);
  }
  for (const char* n : {"a", "b", "c"}) expect_quiet(n);
  // c joins: three no longer fit. Each grant moves out the one that ran least recently.
  lease("c", 256 * kMiB);
  const std::pair<const char*, const char*> turns[] = {{"c", "a"}, {"a", "b"}, {"b", "c"}, {"c", "a"}};
  for (const auto& [holder, evicted] : turns) {
    SCOPED_TRACE(std::string("turn of ") + holder);
    const nlohmann::json j = take_turn(holder);
    expect_evict(evicted);
    for (const char* n : {"a", "b", "c"}) {
      if (std::string(n) != evicted) expect_quiet(n);
    }
    EXPECT_EQ(j["resident_bytes"], 512 * kMiB);
    EXPECT_EQ(j["clients"][holder]["resident"], true);
    EXPECT_EQ(j["clients"][evicted]["resident"], false);
    give_back(holder);
  }
  const nlohmann::json j = stats();
  EXPECT_EQ(j["clients"]["a"]["evictions"], 2u);
  EXPECT_EQ(j["clients"]["b"]["evictions"], 1u);
  EXPECT_EQ(j["clients"]["c"]["evictions"], 1u);
  stop_daemons_expect_clean();
}

TEST_F(ResidencyTest, ClientsWithoutUnifiedMemoryAreNeverEvicted) {
  start({"--mem_budget", "600MiB"}, /*um=*/false);
  for (const char* n : {"a", "b", "c"}) lease(n, 256 * kMiB);
  for (const char* n : {"a", "b", "c", "a"}) {
    const nlohmann::json j = take_turn(n, /*fits=*/false);
    EXPECT_EQ(j["resident_bytes"], 768 * kMiB) << "nothing can move: over the budget, and said so once";
    for (const char* o : {"a", "b", "c"}) {
      if (std::string(o) != n) expect_quiet(o);
    }
    give_back(n);
  }
  EXPECT_EQ(stats()["clients"]["a"]["evictions"], 0u);
  const std::string log = read_text(path("schd.log"));
  const size_t warned = log.find("above the budget");
  EXPECT_NE(warned, std::string::npos) << tail(path("schd.log"));
  EXPECT_EQ(log.find("above the budget", warned + 1), std::string::npos) << "warned once:\n" << tail(path("schd.log"));
  stop_daemons_expect_clean();
}

TEST_F(ResidencyTest, ResidencyOffNeverEvicts) {
  start({"--mem_budget", "600MiB", "--residency", "off"});
  for (const char* n : {"a", "b", "c"}) lease(n, 256 * kMiB);
  for (const char* n : {"a", "b", "c"}) {
    const nlohmann::json j = take_turn(n);
    EXPECT_EQ(j["mem_budget"], 0u);
    EXPECT_EQ(j["resident_bytes"], 768 * kMiB);
    give_back(n);
  }
  for (const char* n : {"a", "b", "c"}) expect_quiet(n);
  stop_daemons_expect_clean();
}

// Issue 21, item 1: a pod manager's MemUsage of 2^64-1 is charged at its GPU_MEM (256 MiB), so the
// other unified-memory clients (256 MiB each, 768 MiB in all within 800 MiB) are never evicted for it.
TEST_F(ResidencyTest, AReportAboveGpuMemIsChargedAtGpuMem) {
  start_with("256MiB um=on", {"--mem_budget", "800MiB"}, {"b", "c"});
  forge("a");
  report("a", UINT64_MAX, proto::kFlagUnifiedMemory, 256 * kMiB);
  lease("b", 256 * kMiB);
  lease("c", 256 * kMiB);
  for (const char* n : {"b", "c", "b", "c"}) {
    SCOPED_TRACE(std::string("turn of ") + n);
    const nlohmann::json j = take_turn(n);
    EXPECT_EQ(j["resident_bytes"], 768 * kMiB);
    for (const char* o : {"a", "b", "c"}) expect_quiet(o);
    give_back(n);
  }
  for (const char* n : {"a", "b", "c"}) EXPECT_EQ(stats()["clients"][n]["evictions"], 0u) << n;
  stop_daemons_expect_clean();
}

// Issue 21, item 2: unified memory is the config's (um=on), not the report's: a client reporting
// flags=0 is still evicted, least recently run first (a, never run, before c).
TEST_F(ResidencyTest, UnifiedMemoryIsTheConfigsNotTheReports) {
  start_with("256MiB um=on", {"--mem_budget", "600MiB"}, {"b", "c"});
  forge("a");
  report("a", 256 * kMiB, 0, 256 * kMiB);
  lease("b", 256 * kMiB);
  lease("c", 256 * kMiB);
  take_turn("b");
  expect_evict("a");
  expect_quiet("c");
  const nlohmann::json after = stats();
  EXPECT_EQ(after["clients"]["a"]["resident"], false) << after.dump(1);
  EXPECT_EQ(after["clients"]["a"]["evictions"], 1u);
  EXPECT_EQ(after["clients"]["c"]["evictions"], 0u) << "c was evicted in a's place";
  EXPECT_EQ(after["resident_bytes"], 512 * kMiB);
  give_back("b");
  stop_daemons_expect_clean();
}

// Without --mem_budget the budget is the GPU's total (NVML; here the stand-in's
// FAKE_CUDA_MEM_BYTES) less max(2 GiB, 5%); a GPU NVML does not know leaves residency off.
TEST_F(ResidencyTest, TheDefaultBudgetComesFromNvml) {
  write_config({{"a", 0.3, 1.0, "1GiB um=on"}});
  struct Case {
    const char* mem;
    std::vector<std::string> extra;
    uint64_t budget;
  };
  const Case cases[] = {{"16G", {}, 14 * kGiB},
                        {"64G", {}, 64 * kGiB - 64 * kGiB / 20},
                        {"64G", {"--gpu", "GPU-fa4e0000-0000-0000-0000-000000000007"}, 0},
                        {"64G", {"--mem_budget", "3GiB"}, 3 * kGiB}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string("FAKE_CUDA_MEM_BYTES=") + c.mem + (c.extra.empty() ? "" : " " + c.extra[0]));
    std::remove(path("stats.json").c_str());
    SchedulerOptions so;
    so.extra = c.extra;
    so.env = {{"LD_LIBRARY_PATH", bin("fake-cuda")}, {"FAKE_CUDA_MEM_BYTES", c.mem}};
    start_scheduler(so);
    nlohmann::json j;
    ASSERT_TRUE(wait_until(5 * slack(), [&] { return (j = stats()).contains("mem_budget"); })) << tail(path("schd.log"));
    EXPECT_EQ(j["mem_budget"], c.budget);
    EXPECT_TRUE(exited_ok(schd_->stop())) << tail(path("schd.log"));
  }
  EXPECT_NE(read_text(path("schd.log")).find("residency off: no --mem_budget"), std::string::npos);
}

}  // namespace
}  // namespace gemtest
