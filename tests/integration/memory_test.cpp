// GPU_MEM enforcement, gem-pmgr's side (docs/memory.md): memory sessions spoken by hand
// (RawClient) to the real gem-pmgr and gem-schd, started with the flags users use. Every wait is
// for an answer or a state the daemons report, under a deadline scaled by slack().
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "harness.h"
#include "raw_client.h"

namespace gemtest {
namespace {

namespace proto = gem::proto;

constexpr uint64_t kMiB = uint64_t{1} << 20;
const char* const kUuid = "GPU-fa4e0000-0000-0000-0000-000000000000";

class MemoryTest : public GemTest {
 protected:
  /// Clients a (GPU_MEM 64 MiB) and b (32 MiB) with their pod managers.
  void start_two_clients(const std::string& mem_a = "64MiB", const std::string& mem_b = "32MiB") {
    write_config({{"a", 0.5, 1.0, mem_a}, {"b", 0.5, 1.0, mem_b}});
    start_scheduler();
    start_pod_manager("a");
    start_pod_manager("b");
  }

  /// A memory session of `client` whose Hello was answered; the answer in *first when given.
  std::unique_ptr<RawClient> session(const std::string& client, proto::MemState* first = nullptr,
                                     const std::string& pmgr = "", const std::string& uuid = kUuid) {
    auto c = std::make_unique<RawClient>();
    std::string why;
    EXPECT_TRUE(c->connect(pmgr_socket(pmgr.empty() ? client : pmgr), &why)) << why;
    EXPECT_TRUE(c->hello(client, proto::Role::kHookMemory, uuid));
    const auto m = c->receive_skipping_heartbeats(5 * slack());
    EXPECT_TRUE(m && m->request_id == 1 && std::holds_alternative<proto::MemState>(m->body))
        << "no MemState answering the Hello: " << (m ? proto::type_name(m->body) : "nothing");
    if (first != nullptr && m && std::holds_alternative<proto::MemState>(m->body)) {
      *first = std::get<proto::MemState>(m->body);
    }
    return c;
  }

  /// The MemState answering request `rid` (pushed MemStates before it are skipped and counted).
  proto::MemState answer(RawClient& c, uint64_t rid, int* pushed = nullptr) {
    for (;;) {
      const auto m = c.receive_skipping_heartbeats(5 * slack());
      if (!m) {
        ADD_FAILURE() << "no answer to request " << rid << (c.closed() ? " (closed)" : " (timeout)");
        return {};
      }
      const auto* st = std::get_if<proto::MemState>(&m->body);
      if (st == nullptr) {
        ADD_FAILURE() << "request " << rid << " answered with " << proto::type_name(m->body);
        return {};
      }
      if (m->request_id == rid) return *st;
      EXPECT_EQ(m->request_id, 0u) << "an answer to another request";
      if (pushed != nullptr) ++*pushed;
    }
  }

  proto::MemState reserve(RawClient& c, uint64_t need, uint64_t want, bool existing = false) {
    const uint64_t rid = ++rid_;
    EXPECT_TRUE(c.send({rid, proto::MemReserve{need, want, existing}}));
    return answer(c, rid);
  }

  proto::MemState query(RawClient& c) {
    const uint64_t rid = ++rid_;
    EXPECT_TRUE(c.send({rid, proto::MemQuery{}}));
    return answer(c, rid);
  }

  /// The next unsolicited MemState (request id 0) within `seconds`.
  std::optional<proto::MemState> pushed_state(RawClient& c, double seconds) {
    const auto m = c.receive_skipping_heartbeats(seconds);
    if (!m || m->request_id != 0 || !std::holds_alternative<proto::MemState>(m->body)) return std::nullopt;
    return std::get<proto::MemState>(m->body);
  }

  uint64_t rid_ = 100;
};

TEST_F(MemoryTest, HelloIsAnsweredWithTheLimitOfTheConfig) {
  start_two_clients();
  proto::MemState a{}, b{};
  auto sa = session("a", &a);
  auto sb = session("b", &b);
  EXPECT_EQ(a.limit_bytes, 64 * kMiB);
  EXPECT_EQ(b.limit_bytes, 32 * kMiB);
  EXPECT_EQ(a.client_held_bytes, 0u);
  EXPECT_EQ(a.granted_bytes, 0u);
  stop_daemons_expect_clean();
}

TEST_F(MemoryTest, TwoSessionsRacingForTheLastBytesOnlyOnePasses) {
  start_two_clients();
  auto s1 = session("a");
  auto s2 = session("a");
  ASSERT_EQ(reserve(*s1, 40 * kMiB, 40 * kMiB).granted_bytes, 40 * kMiB);
  // 24 MiB are left; both ask for 20 at once, many times over.
  for (int round = 0; round < 50; ++round) {
    const uint64_t r1 = ++rid_, r2 = ++rid_;
    ASSERT_TRUE(s1->send({r1, proto::MemReserve{20 * kMiB, 20 * kMiB, false}}));
    ASSERT_TRUE(s2->send({r2, proto::MemReserve{20 * kMiB, 20 * kMiB, false}}));
    const proto::MemState g1 = answer(*s1, r1), g2 = answer(*s2, r2);
    ASSERT_EQ((g1.granted_bytes != 0) + (g2.granted_bytes != 0), 1)
        << "round " << round << ": granted " << g1.granted_bytes << " and " << g2.granted_bytes;
    EXPECT_EQ(std::max(g1.client_held_bytes, g2.client_held_bytes), 60 * kMiB);
    RawClient& winner = g1.granted_bytes != 0 ? *s1 : *s2;
    ASSERT_TRUE(winner.send({++rid_, proto::MemReturn{20 * kMiB}}));
  }
  EXPECT_EQ(query(*s2).client_held_bytes, 40 * kMiB);
  stop_daemons_expect_clean();
}

TEST_F(MemoryTest, AKilledSessionsBytesAreFreeAtOnce) {
  start_two_clients();
  auto s1 = session("a");
  auto s2 = session("a");
  ASSERT_EQ(reserve(*s1, 64 * kMiB, 64 * kMiB).granted_bytes, 64 * kMiB);
  ASSERT_EQ(reserve(*s2, 1, 1).granted_bytes, 0u);
  // s1's connection is held by a child process only, which is then killed: the kernel closes it.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    for (;;) pause();
  }
  s1->close();
  ASSERT_EQ(kill(child, SIGKILL), 0);
  const Micros killed = mono_us();
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  const bool freed = wait_until(5 * slack(), [&] { return query(*s2).client_held_bytes == 0; });
  const double ms = (mono_us() - killed) / 1000.0;
  std::printf("    the killed session's 64 MiB were free %.1f ms after the kill\n", ms);
  ASSERT_TRUE(freed);
  EXPECT_LT(ms, 1000 * slack());
  EXPECT_EQ(reserve(*s2, 64 * kMiB, 64 * kMiB).granted_bytes, 64 * kMiB);
  // A plain close frees the same way.
  auto s3 = session("a");
  s2->close();
  ASSERT_TRUE(wait_until(5 * slack(), [&] { return query(*s3).client_held_bytes == 0; }));
  EXPECT_EQ(reserve(*s3, 64 * kMiB, 64 * kMiB).granted_bytes, 64 * kMiB);
  stop_daemons_expect_clean();
}

TEST_F(MemoryTest, ALiveGpuMemChangeIsPushedAndAppliesToTheNextReserve) {
  start_two_clients();
  auto s1 = session("a");
  auto s2 = session("a");
  ASSERT_EQ(reserve(*s1, 40 * kMiB, 40 * kMiB).granted_bytes, 40 * kMiB);
  // Lowered below what is held: pushed to both sessions, nothing freed, new reserves refused.
  write_text(path("resource-config.txt"), config_text({{"a", 0.5, 1.0, "32MiB"}, {"b", 0.5, 1.0, "32MiB"}}));
  for (RawClient* s : {s1.get(), s2.get()}) {
    const auto st = pushed_state(*s, 5 * slack());
    ASSERT_TRUE(st) << "no MemState pushed after the reload:\n" << tail(path("schd.log"));
    EXPECT_EQ(st->limit_bytes, 32 * kMiB);
    EXPECT_EQ(st->client_held_bytes, 40 * kMiB);
    EXPECT_EQ(st->granted_bytes, 0u);
  }
  proto::MemState r = reserve(*s2, 1, 1);
  EXPECT_EQ(r.granted_bytes, 0u);
  EXPECT_EQ(r.client_held_bytes, 40 * kMiB) << "lowering the limit frees nothing";
  // Raised: pushed again, and the next reserve may use the room.
  write_text(path("resource-config.txt"), config_text({{"a", 0.5, 1.0, "128MiB"}, {"b", 0.5, 1.0, "32MiB"}}));
  for (RawClient* s : {s1.get(), s2.get()}) {
    const auto st = pushed_state(*s, 5 * slack());
    ASSERT_TRUE(st);
    EXPECT_EQ(st->limit_bytes, 128 * kMiB);
  }
  r = reserve(*s2, 88 * kMiB, 88 * kMiB);
  EXPECT_EQ(r.granted_bytes, 88 * kMiB);
  EXPECT_EQ(r.limit_bytes, 128 * kMiB);
  EXPECT_EQ(reserve(*s2, 1, 1).granted_bytes, 0u);
  // A reload that keeps a's GPU_MEM pushes nothing to a's memory sessions. A launch-gate
  // connection of a is told every reload (ClientSettings): once it has this one, gem-pmgr a has
  // handled it, and a MemState for it would already be queued before the answer to a query.
  RawClient gate;
  ASSERT_TRUE(gate.connect(pmgr_socket("a")));
  ASSERT_TRUE(gate.hello("a", proto::Role::kHook, kUuid));
  ASSERT_TRUE(gate.receive_skipping_heartbeats(5 * slack()));
  write_text(path("resource-config.txt"), config_text({{"a", 0.4, 1.0, "128MiB"}, {"b", 0.5, 1.0, "16MiB"}}));
  const bool told = wait_until(5 * slack(), [&] {
    const auto m = gate.receive_skipping_heartbeats(0.05);
    const auto* cs = m ? std::get_if<proto::ClientSettings>(&m->body) : nullptr;
    return cs != nullptr && cs->request_ppm == 400000;
  });
  ASSERT_TRUE(told) << "gem-pmgr a was not told of the reload:\n" << tail(path("schd.log"));
  for (RawClient* s : {s1.get(), s2.get()}) {
    int pushed = 0;
    ASSERT_TRUE(s->send({++rid_, proto::MemQuery{}}));
    EXPECT_EQ(answer(*s, rid_, &pushed).limit_bytes, 128 * kMiB);
    EXPECT_EQ(pushed, 0) << "a reload that keeps GPU_MEM pushed a MemState";
  }
  stop_daemons_expect_clean();
}

TEST_F(MemoryTest, AnotherClientCannotTouchThisClientsTotal) {
  start_two_clients();
  auto sa = session("a");
  ASSERT_EQ(reserve(*sa, 40 * kMiB, 40 * kMiB).granted_bytes, 40 * kMiB);
  // b at a's pod manager is refused.
  RawClient intruder;
  ASSERT_TRUE(intruder.connect(pmgr_socket("a")));
  ASSERT_TRUE(intruder.hello("b", proto::Role::kHookMemory, kUuid));
  const auto m = intruder.receive_skipping_heartbeats(5 * slack());
  ASSERT_TRUE(m);
  EXPECT_EQ(error_code(*m), static_cast<int>(proto::ErrorCode::kUnknownClient));
  EXPECT_TRUE(intruder.wait_closed(5 * slack()));
  // b's own sessions reserve and return against b's budget only.
  auto sb = session("b");
  EXPECT_EQ(reserve(*sb, 32 * kMiB, 32 * kMiB).granted_bytes, 32 * kMiB);
  ASSERT_TRUE(sb->send({++rid_, proto::MemReturn{UINT64_MAX}}));
  EXPECT_EQ(query(*sb).client_held_bytes, 0u);
  const proto::MemState st = query(*sa);
  EXPECT_EQ(st.client_held_bytes, 40 * kMiB);
  EXPECT_EQ(reserve(*sa, 24 * kMiB, 64 * kMiB).granted_bytes, 24 * kMiB);
  stop_daemons_expect_clean();
}

TEST_F(MemoryTest, ExistingBytesAreGrantedUpToTheLimit) {
  start_two_clients();
  auto s1 = session("a");
  auto s2 = session("a");
  ASSERT_EQ(reserve(*s1, 60 * kMiB, 60 * kMiB).granted_bytes, 60 * kMiB);
  const proto::MemState e = reserve(*s2, 32 * kMiB, 64 * kMiB, true);
  EXPECT_EQ(e.granted_bytes, 4 * kMiB) << "declared holdings get what is left below GPU_MEM, never more";
  EXPECT_EQ(e.client_held_bytes, 64 * kMiB);
  EXPECT_EQ(reserve(*s2, 1, 1).granted_bytes, 0u);
  EXPECT_EQ(reserve(*s1, 1, 1).granted_bytes, 0u);
  auto s3 = session("a");
  EXPECT_EQ(reserve(*s3, 1, 1, true).granted_bytes, 0u) << "nothing left";
  stop_daemons_expect_clean();
}

// Issue 21, item 1: a memory session declaring 2^64-1 bytes it "holds already" was granted 2^50
// against GPU_MEM 256 MiB, and gem-schd was told so. Now: 256 MiB at most, for the client in all.
TEST_F(MemoryTest, ADeclaredHoldingOfTwoToThe64IsGrantedAtMostGpuMem) {
  start_two_clients("256MiB");
  auto s1 = session("a");
  const proto::MemState e = reserve(*s1, UINT64_MAX, UINT64_MAX, true);
  EXPECT_EQ(e.granted_bytes, 256 * kMiB);
  EXPECT_EQ(e.client_held_bytes, 256 * kMiB);
  auto s2 = session("a");
  EXPECT_EQ(reserve(*s2, UINT64_MAX, 0, true).granted_bytes, 0u);
  EXPECT_EQ(query(*s2).client_held_bytes, 256 * kMiB);
  uint64_t told = 0;
  const bool seen = wait_until(5 * slack(), [&] {
    told = stats()["clients"]["a"].value("mem_bytes", uint64_t{0});
    return told != 0;
  });
  EXPECT_TRUE(seen) << "gem-schd never heard of a's memory";
  EXPECT_EQ(told, 256 * kMiB) << "gem-schd was told more than GPU_MEM";
  stop_daemons_expect_clean();
}

// Issue 21, item 1: one client's memory sessions under 20 made-up GPU UUIDs (one scheduler, no
// --scheduler_dir) were granted 20 x 256 MiB under GPU_MEM 256 MiB. The route's GPU_MEM is one budget.
TEST_F(MemoryTest, MadeUpGpuUuidsShareOneGpuMem) {
  start_two_clients("256MiB");
  std::vector<std::unique_ptr<RawClient>> sessions;
  uint64_t granted = 0;
  for (int i = 0; i < 20; ++i) {
    char uuid[64];
    std::snprintf(uuid, sizeof uuid, "GPU-fa4e0000-0000-0000-0000-%012d", i);
    sessions.push_back(session("a", nullptr, "", uuid));
    granted += reserve(*sessions.back(), 256 * kMiB, 256 * kMiB).granted_bytes;
  }
  EXPECT_EQ(granted, 256 * kMiB) << "20 UUIDs multiplied GPU_MEM";
  EXPECT_EQ(query(*sessions.back()).client_held_bytes, 256 * kMiB);
  stop_daemons_expect_clean();
}

TEST_F(MemoryTest, AReturnLargerThanTheLeaseSaturatesAtIt) {
  start_two_clients();
  auto s1 = session("a");
  auto s2 = session("a");
  ASSERT_EQ(reserve(*s1, 40 * kMiB, 40 * kMiB).granted_bytes, 40 * kMiB);
  ASSERT_EQ(reserve(*s2, 10 * kMiB, 10 * kMiB).granted_bytes, 10 * kMiB);
  ASSERT_TRUE(s2->send({++rid_, proto::MemReturn{UINT64_MAX}}));
  ASSERT_TRUE(s2->send({++rid_, proto::MemReturn{1}}));
  EXPECT_EQ(query(*s2).client_held_bytes, 40 * kMiB) << "only s2's own 10 MiB went back";
  EXPECT_EQ(reserve(*s2, 24 * kMiB, 24 * kMiB).granted_bytes, 24 * kMiB);
  EXPECT_EQ(reserve(*s1, 1, 1).granted_bytes, 0u);
  stop_daemons_expect_clean();
}

TEST_F(MemoryTest, MixingTokenAndMemoryMessagesClosesOnlyThatConnection) {
  start_two_clients();
  auto keep = session("a");
  ASSERT_EQ(reserve(*keep, 8 * kMiB, 8 * kMiB).granted_bytes, 8 * kMiB);
  struct Case {
    proto::Role role;
    std::string uuid;
    proto::Body body;  // sent after the Hello (nothing when the Hello itself is refused)
    bool hello_refused;
  };
  const Case cases[] = {
      {proto::Role::kHookMemory, kUuid, proto::TokenRequest{0}, false},
      {proto::Role::kHookMemory, kUuid, proto::TokenRelease{}, false},
      {proto::Role::kHook, kUuid, proto::MemReserve{1, 1, false}, false},
      {proto::Role::kHook, "", proto::MemQuery{}, false},
      {proto::Role::kHookMemory, "", proto::MemQuery{}, true},  // a memory session names its GPU
  };
  for (const Case& c : cases) {
    RawClient bad;
    ASSERT_TRUE(bad.connect(pmgr_socket("a")));
    ASSERT_TRUE(bad.hello("a", c.role, c.uuid));
    if (!c.hello_refused) {
      const auto first = bad.receive_skipping_heartbeats(5 * slack());  // MemState or ClientSettings
      ASSERT_TRUE(first);
      ASSERT_EQ(error_code(*first), -1) << "Hello refused";
      ASSERT_TRUE(bad.send({7, c.body}));
    }
    std::vector<proto::Message> seen;
    EXPECT_TRUE(bad.wait_closed(5 * slack(), nullptr, &seen)) << proto::type_name(c.body);
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(error_code(seen.back()), static_cast<int>(proto::ErrorCode::kProtocol));
  }
  EXPECT_EQ(query(*keep).client_held_bytes, 8 * kMiB) << "the other session and its lease are untouched";
  stop_daemons_expect_clean();
}

TEST_F(MemoryTest, SecretIsRequiredOfMemorySessionsToo) {
  write_config({{"a", 0.5, 1.0, "64MiB"}});
  write_text(path("a.secret"), "s3cret-a\n");
  ASSERT_EQ(chmod(path("a.secret").c_str(), 0600), 0);
  start_scheduler();
  PodManagerOptions po;
  po.extra = {"--secret_file", path("a.secret")};
  start_pod_manager("a", po);
  RawClient c;
  ASSERT_TRUE(c.connect(pmgr_socket("a")));
  ASSERT_TRUE(c.hello("a", proto::Role::kHookMemory, kUuid, "wrong"));
  const auto m = c.receive_skipping_heartbeats(5 * slack());
  ASSERT_TRUE(m);
  EXPECT_EQ(error_code(*m), static_cast<int>(proto::ErrorCode::kDenied));
  RawClient ok;
  ASSERT_TRUE(ok.connect(pmgr_socket("a")));
  ASSERT_TRUE(ok.hello("a", proto::Role::kHookMemory, kUuid, "s3cret-a"));
  const auto st = ok.receive_skipping_heartbeats(5 * slack());
  ASSERT_TRUE(st && std::holds_alternative<proto::MemState>(st->body));
  EXPECT_EQ(std::get<proto::MemState>(st->body).limit_bytes, 64 * kMiB);
  stop_daemons_expect_clean();
}

// A scheduler that accepts connections and never answers: the memory Hello waits with heartbeats,
// then, when gem-pmgr gives up on the scheduler, is answered with the declared --gpu_mem.
TEST_F(MemoryTest, HelloWaitsWithHeartbeatsThenUsesTheDeclaredLimit) {
  const std::string mute = path("mute-schd.sock");
  const int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, mute.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(lfd, 16), 0);
  PodManagerOptions po;
  po.default_scheduler = false;
  po.extra = {"--scheduler", mute, "--scheduler_timeout", "1500", "--gpu_mem", "48MiB"};
  start_pod_manager("a", po);
  RawClient c;
  ASSERT_TRUE(c.connect(pmgr_socket("a")));
  const Micros t0 = mono_us();
  ASSERT_TRUE(c.hello("a", proto::Role::kHookMemory, kUuid));
  const auto m = c.receive_skipping_heartbeats(10 * slack());
  const double waited_ms = (mono_us() - t0) / 1000.0;
  std::printf("    answered after %.0f ms with %d heartbeats meanwhile\n", waited_ms, c.heartbeats());
  ASSERT_TRUE(m && m->request_id == 1 && std::holds_alternative<proto::MemState>(m->body));
  EXPECT_EQ(std::get<proto::MemState>(m->body).limit_bytes, 48 * kMiB);
  EXPECT_GE(waited_ms, 1400);
  EXPECT_GE(c.heartbeats(), 3) << "heartbeats every 200 ms while the Hello waited";
  // Still unreachable: a new session is answered at once with the same limit.
  RawClient c2;
  ASSERT_TRUE(c2.connect(pmgr_socket("a")));
  ASSERT_TRUE(c2.hello("a", proto::Role::kHookMemory, kUuid));
  const auto m2 = c2.receive_skipping_heartbeats(5 * slack());
  ASSERT_TRUE(m2 && std::holds_alternative<proto::MemState>(m2->body));
  EXPECT_EQ(std::get<proto::MemState>(m2->body).limit_bytes, 48 * kMiB);
  EXPECT_EQ(reserve(c2, 48 * kMiB, 64 * kMiB).granted_bytes, 48 * kMiB);
  EXPECT_EQ(reserve(c, 1, 1).granted_bytes, 0u);
  close(lfd);
  stop_daemons_expect_clean();
}

}  // namespace
}  // namespace gemtest
