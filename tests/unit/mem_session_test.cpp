// The memory session (hook/mem_session.*) against a scripted pod manager on a real Unix socket
// (scripted_peer.h): the Hello names the client, its GPU and secret; every call waits through
// heartbeats for its own answer, keeping a limit pushed on the way; refusals, wrong answers and
// silence are named and close the session (so lease sync reconnects); pushes are read without
// waiting.
#include "../../hook/mem_session.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <optional>

#include "gem/clock.h"
#include "gem/net.h"
#include "gem/protocol.h"
#include "scripted_peer.h"

namespace gem::hook {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr int kPatientMs = 10000;  // a timeout no test reaches on a loaded machine
const std::string kGpu = "GPU-fa4e0000-0000-0000-0000-000000000000";

using testing::ScriptedPeer;

// The scripted pod manager (scripted_peer.h) of these tests: it waits up to kPatientMs for each message.
class ScriptedPmgr : public ScriptedPeer {
 public:
  explicit ScriptedPmgr(Script script) : ScriptedPeer(std::move(script), kPatientMs) {}
};

Settings settings_for(const ScriptedPmgr& p, int timeout_ms = kPatientMs) {
  Settings s;
  s.client = "client-a";
  s.pod_manager = p.endpoint();
  s.secret = "s3cret";
  s.pmgr_timeout_ms = timeout_ms;
  return s;
}

// A memory session to `p` with the settings it borrows (settings_for) and what its calls fill in.
struct Session {
  explicit Session(const ScriptedPmgr& p, int timeout_ms = kPatientMs) : s(settings_for(p, timeout_ms)) {}
  /// Opens it for kGpu: true with the limit in st, false with why.
  bool open() { return ms.open(kGpu, &st, &why); }
  const Settings s;
  MemSession ms{s};
  proto::MemState st;
  std::string why;
};

proto::MemState limit_of(uint64_t limit, uint64_t granted = 0) { return {limit, granted, granted, 0}; }

TEST(MemSession, HelloNamesTheClientItsGpuAndSecretAndLearnsTheLimit) {
  proto::Hello seen;
  ScriptedPmgr p([&](ScriptedPeer& f) {
    seen = f.hello(proto::MemState{kGiB, 300 * kMiB, 0, proto::kFlagUnifiedMemory});
    proto::Message m;
    f.receive(&m);  // until the hook closes
  });
  Session t(p);
  ASSERT_TRUE(t.open()) << t.why;
  EXPECT_TRUE(t.ms.is_open());
  EXPECT_EQ(t.st.limit_bytes, kGiB);
  EXPECT_EQ(t.st.client_held_bytes, 300 * kMiB);
  EXPECT_EQ(t.st.flags, proto::kFlagUnifiedMemory);
  t.ms.close();
  EXPECT_FALSE(t.ms.is_open());
  p.join();
  EXPECT_EQ(seen.role, proto::Role::kHookMemory);
  EXPECT_EQ(seen.client, "client-a");
  EXPECT_EQ(seen.device_uuid, kGpu);
  EXPECT_EQ(seen.secret, "s3cret");
  EXPECT_EQ(seen.pid, static_cast<uint32_t>(getpid()));
}

TEST(MemSession, ARefusedHelloIsNamedAndLeavesNoSession) {
  ScriptedPmgr p([](ScriptedPeer& f) {
    f.expect<proto::Hello>();
    f.send(proto::Error{proto::ErrorCode::kDenied, "shared secret refused"}, f.last_id());
  });
  Session t(p);
  EXPECT_FALSE(t.open());
  EXPECT_EQ(t.why, "shared secret refused");
  EXPECT_FALSE(t.ms.is_open());
}

TEST(MemSession, AHelloAnsweredWithoutAMemStateIsNamedAndLeavesNoSession) {
  ScriptedPmgr p([](ScriptedPeer& f) {
    f.expect<proto::Hello>();
    f.send(proto::ClientSettings{}, f.last_id());  // a launch session's answer
  });
  Session t(p);
  EXPECT_FALSE(t.open());
  EXPECT_NE(t.why.find("memory Hello"), std::string::npos) << t.why;
  EXPECT_NE(t.why.find(proto::type_name(proto::Body{proto::ClientSettings{}})), std::string::npos) << t.why;
  EXPECT_FALSE(t.ms.is_open());
}

TEST(MemSession, AnUnreachablePodManagerIsNamed) {
  Settings s;
  std::string err;
  ASSERT_TRUE(net::parse_endpoint("/tmp/gem-mem-session-no-such-dir/pmgr.sock", &s.pod_manager, &err)) << err;
  MemSession ms(s);
  proto::MemState st;
  std::string why;
  EXPECT_FALSE(ms.open(kGpu, &st, &why));
  EXPECT_FALSE(why.empty());
  EXPECT_FALSE(ms.is_open());
}

TEST(MemSession, AReserveWaitsThroughHeartbeatsForItsOwnAnswerAndKeepsAPushMetOnTheWay) {
  proto::MemReserve asked;
  ScriptedPmgr p([&](ScriptedPeer& f) {
    f.hello(limit_of(kGiB));
    asked = f.expect<proto::MemReserve>();
    const uint64_t id = f.last_id();
    f.send({{0, proto::Heartbeat{}},
            {0, limit_of(2 * kGiB)},               // the limit changed meanwhile
            {id + 100, limit_of(kGiB, 99 * kMiB)},  // an answer to something else
            {id, limit_of(2 * kGiB, 42 * kMiB)}});
    proto::Message m;
    f.receive(&m);
  });
  Session t(p);
  ASSERT_TRUE(t.open()) << t.why;
  ASSERT_TRUE(t.ms.reserve(10 * kMiB, 42 * kMiB, true, &t.st, &t.why)) << t.why;
  EXPECT_EQ(t.st.granted_bytes, 42 * kMiB) << "its own answer, not another's";
  const auto push = t.ms.take_push();
  ASSERT_TRUE(push.has_value()) << "the push met while waiting is kept";
  EXPECT_EQ(push->limit_bytes, 2 * kGiB);
  EXPECT_FALSE(t.ms.take_push().has_value()) << "a push is taken once";
  EXPECT_TRUE(t.ms.is_open());
  t.ms.close();
  p.join();
  EXPECT_EQ(asked.need_bytes, 10 * kMiB);
  EXPECT_EQ(asked.want_bytes, 42 * kMiB);
  EXPECT_TRUE(asked.existing);
}

TEST(MemSession, AnErrorAnswerIsNamedAndClosesTheSession) {
  ScriptedPmgr p([](ScriptedPeer& f) {
    f.hello(limit_of(kGiB));
    f.expect<proto::MemReserve>();
    f.send(proto::Error{proto::ErrorCode::kRemoved, "client removed"}, f.last_id());
  });
  Session t(p);
  ASSERT_TRUE(t.open()) << t.why;
  EXPECT_FALSE(t.ms.reserve(kMiB, 33 * kMiB, false, &t.st, &t.why));
  EXPECT_EQ(t.why, "client removed");
  EXPECT_FALSE(t.ms.is_open());
  EXPECT_FALSE(t.ms.give_back(kMiB)) << "nothing is sent on a closed session";
  t.why.clear();
  EXPECT_FALSE(t.ms.query(&t.st, &t.why));
  EXPECT_EQ(t.why, "pod manager connection lost");
  t.why.clear();
  EXPECT_FALSE(t.ms.reserve(kMiB, kMiB, false, &t.st, &t.why));
  EXPECT_EQ(t.why, "pod manager connection lost");
}

TEST(MemSession, SilencePastTheTimeoutIsNamedAndClosesTheSession) {
  ScriptedPmgr p([](ScriptedPeer& f) {
    f.hello(limit_of(kGiB));
    f.expect<proto::MemQuery>();
    proto::Message m;
    f.receive(&m);  // never answers; returns when the hook gives up and closes
  });
  Session t(p, 1000);
  ASSERT_TRUE(t.open()) << t.why;
  EXPECT_FALSE(t.ms.query(&t.st, &t.why));
  EXPECT_EQ(t.why, "pod manager silent for 1000 ms (stopped or hung)");
  EXPECT_FALSE(t.ms.is_open());
}

TEST(MemSession, AGiveBackIsSentWithoutWaitingAndAQueryGetsTheLatestFigures) {
  proto::MemReturn back;
  ScriptedPmgr p([&](ScriptedPeer& f) {
    f.hello(limit_of(kGiB));
    back = f.expect<proto::MemReturn>();
    f.expect<proto::MemQuery>();
    f.send(proto::MemState{2 * kGiB, 500 * kMiB, 0, 0}, f.last_id());
    proto::Message m;
    f.receive(&m);
  });
  Session t(p);
  ASSERT_TRUE(t.open()) << t.why;
  EXPECT_TRUE(t.ms.give_back(7 * kMiB));
  ASSERT_TRUE(t.ms.query(&t.st, &t.why)) << t.why;
  EXPECT_EQ(t.st.limit_bytes, 2 * kGiB);
  EXPECT_EQ(t.st.client_held_bytes, 500 * kMiB);
  t.ms.close();
  p.join();
  EXPECT_EQ(back.bytes, 7 * kMiB);
}

/// take_push() until it returns something or the session closes (up to 10 s).
std::optional<proto::MemState> await_push(MemSession& ms) {
  const Micros until = mono_us() + Micros{kPatientMs} * 1000;
  while (mono_us() < until) {
    if (auto p = ms.take_push()) return p;
    if (!ms.is_open()) return std::nullopt;
    pollfd none{-1, 0, 0};
    poll(&none, 0, 1);  // yield a millisecond
  }
  return std::nullopt;
}

TEST(MemSession, PushesAreReadWithoutWaitingOnlyTheLatestCountsAndAHangUpCloses) {
  ScriptedPmgr p([](ScriptedPeer& f) {
    f.hello(limit_of(kGiB));
    f.expect<proto::MemReturn>();  // the hook has looked once: now push
    f.send({{0, limit_of(3 * kGiB)}, {0, proto::Heartbeat{}}, {0, limit_of(512 * kMiB)}});
    f.expect<proto::MemReturn>();  // then hang up
    f.hang_up();
  });
  Session t(p);
  ASSERT_TRUE(t.open()) << t.why;
  EXPECT_FALSE(t.ms.take_push().has_value()) << "nothing pushed yet: no wait, no push";
  EXPECT_TRUE(t.ms.is_open());
  ASSERT_TRUE(t.ms.give_back(kMiB));
  const auto push = await_push(t.ms);
  ASSERT_TRUE(push.has_value());
  EXPECT_EQ(push->limit_bytes, 512 * kMiB) << "the latest of the pushes";
  EXPECT_FALSE(t.ms.take_push().has_value());
  ASSERT_TRUE(t.ms.give_back(kMiB));
  EXPECT_FALSE(await_push(t.ms).has_value());
  EXPECT_FALSE(t.ms.is_open()) << "a broken session is closed, so lease sync reconnects";
}

}  // namespace
}  // namespace gem::hook
