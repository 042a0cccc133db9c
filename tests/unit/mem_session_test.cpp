// The memory session (hook/mem_session.*) against a scripted pod manager on a real Unix socket:
// the Hello names the client, its GPU and secret; every call waits through heartbeats for its own
// answer, keeping a limit pushed on the way; refusals, wrong answers and silence are named and
// close the session (so lease sync reconnects); pushes are read without waiting.
#include "../../hook/mem_session.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "gem/clock.h"
#include "gem/net.h"
#include "gem/protocol.h"

namespace gem::hook {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr int kPatientMs = 10000;  // a timeout no test reaches on a loaded machine
const std::string kGpu = "GPU-fa4e0000-0000-0000-0000-000000000000";

// A pod manager that accepts one connection and runs `script` on it, on a thread of its own.
class ScriptedPmgr {
 public:
  explicit ScriptedPmgr(std::function<void(ScriptedPmgr&)> script) {
    char dir[] = "/tmp/gem-mem-session-XXXXXX";
    EXPECT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    std::string err;
    EXPECT_TRUE(net::parse_endpoint(dir_ + "/pmgr.sock", &ep_, &err)) << err;
    listen_fd_ = net::listen_on(ep_, &err);
    EXPECT_GE(listen_fd_, 0) << err;
    thread_ = std::thread([this, script] {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, kPatientMs) != 1) return;
      fd_ = accept(listen_fd_, nullptr, nullptr);
      if (fd_ >= 0) script(*this);
    });
  }
  ~ScriptedPmgr() {
    join();
    if (fd_ >= 0) ::close(fd_);
    ::close(listen_fd_);
    unlink((dir_ + "/pmgr.sock").c_str());
    rmdir(dir_.c_str());
  }
  const net::Endpoint& endpoint() const { return ep_; }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  /// Sends every message in one write, so the hook finds all of them readable at once.
  void send(std::vector<proto::Message> msgs) {
    std::vector<uint8_t> out;
    for (const auto& m : msgs) {
      std::vector<uint8_t> one;
      ASSERT_TRUE(proto::encode(m, &one));
      out.insert(out.end(), one.begin(), one.end());
    }
    ASSERT_TRUE(net::send_all(fd_, out.data(), out.size(), kPatientMs));
  }
  void send(proto::Body body, uint64_t id) { send({proto::Message{id, std::move(body)}}); }
  /// The next message from the hook; false when the hook closed the connection.
  bool receive(proto::Message* m) {
    for (;;) {
      std::string err;
      if (in_.next(m, &err) == proto::DecodeStatus::kOk) return true;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, kPatientMs) != 1) return false;
      uint8_t buf[4096];
      const ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n <= 0) return false;
      in_.append(buf, static_cast<size_t>(n));
    }
  }
  template <typename T>
  T expect() {
    proto::Message m;
    EXPECT_TRUE(receive(&m));
    EXPECT_TRUE(std::holds_alternative<T>(m.body)) << "got " << proto::type_name(m.body);
    last_id = m.request_id;
    return std::holds_alternative<T>(m.body) ? std::get<T>(m.body) : T{};
  }
  /// Takes the Hello and answers with `st`.
  proto::Hello hello(proto::MemState st = {}) {
    const proto::Hello h = expect<proto::Hello>();
    send(st, last_id);
    return h;
  }
  void hang_up() {
    ::close(fd_);
    fd_ = -1;
  }
  uint64_t last_id = 0;

 private:
  std::string dir_;
  net::Endpoint ep_;
  int listen_fd_ = -1;
  int fd_ = -1;
  std::thread thread_;
  proto::FrameBuffer in_;
};

Settings settings_for(const ScriptedPmgr& p, int timeout_ms = kPatientMs) {
  Settings s;
  s.client = "client-a";
  s.pod_manager = p.endpoint();
  s.secret = "s3cret";
  s.pmgr_timeout_ms = timeout_ms;
  return s;
}

proto::MemState limit_of(uint64_t limit, uint64_t granted = 0) { return {limit, granted, granted, 0}; }

TEST(MemSession, HelloNamesTheClientItsGpuAndSecretAndLearnsTheLimit) {
  proto::Hello seen;
  ScriptedPmgr p([&](ScriptedPmgr& f) {
    seen = f.hello({kGiB, 300 * kMiB, 0, proto::kFlagUnifiedMemory});
    proto::Message m;
    f.receive(&m);  // until the hook closes
  });
  const Settings s = settings_for(p);
  MemSession ms(s);
  proto::MemState st;
  std::string why;
  ASSERT_TRUE(ms.open(kGpu, &st, &why)) << why;
  EXPECT_TRUE(ms.is_open());
  EXPECT_EQ(st.limit_bytes, kGiB);
  EXPECT_EQ(st.client_held_bytes, 300 * kMiB);
  EXPECT_EQ(st.flags, proto::kFlagUnifiedMemory);
  ms.close();
  EXPECT_FALSE(ms.is_open());
  p.join();
  EXPECT_EQ(seen.role, proto::Role::kHookMemory);
  EXPECT_EQ(seen.client, "client-a");
  EXPECT_EQ(seen.device_uuid, kGpu);
  EXPECT_EQ(seen.secret, "s3cret");
  EXPECT_EQ(seen.pid, static_cast<uint32_t>(getpid()));
}

TEST(MemSession, ARefusedHelloIsNamedAndLeavesNoSession) {
  ScriptedPmgr p([](ScriptedPmgr& f) {
    f.expect<proto::Hello>();
    f.send(proto::Error{proto::ErrorCode::kDenied, "shared secret refused"}, f.last_id);
  });
  const Settings s = settings_for(p);
  MemSession ms(s);
  proto::MemState st;
  std::string why;
  EXPECT_FALSE(ms.open(kGpu, &st, &why));
  EXPECT_EQ(why, "shared secret refused");
  EXPECT_FALSE(ms.is_open());
}

TEST(MemSession, AHelloAnsweredWithoutAMemStateIsNamedAndLeavesNoSession) {
  ScriptedPmgr p([](ScriptedPmgr& f) {
    f.expect<proto::Hello>();
    f.send(proto::ClientSettings{}, f.last_id);  // a launch session's answer
  });
  const Settings s = settings_for(p);
  MemSession ms(s);
  proto::MemState st;
  std::string why;
  EXPECT_FALSE(ms.open(kGpu, &st, &why));
  EXPECT_NE(why.find("memory Hello"), std::string::npos) << why;
  EXPECT_NE(why.find(proto::type_name(proto::Body{proto::ClientSettings{}})), std::string::npos) << why;
  EXPECT_FALSE(ms.is_open());
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
  ScriptedPmgr p([&](ScriptedPmgr& f) {
    f.hello(limit_of(kGiB));
    asked = f.expect<proto::MemReserve>();
    const uint64_t id = f.last_id;
    f.send({{0, proto::Heartbeat{}},
            {0, limit_of(2 * kGiB)},               // the limit changed meanwhile
            {id + 100, limit_of(kGiB, 99 * kMiB)},  // an answer to something else
            {id, limit_of(2 * kGiB, 42 * kMiB)}});
    proto::Message m;
    f.receive(&m);
  });
  const Settings s = settings_for(p);
  MemSession ms(s);
  proto::MemState st;
  std::string why;
  ASSERT_TRUE(ms.open(kGpu, &st, &why)) << why;
  ASSERT_TRUE(ms.reserve(10 * kMiB, 42 * kMiB, true, &st, &why)) << why;
  EXPECT_EQ(st.granted_bytes, 42 * kMiB) << "its own answer, not another's";
  const auto push = ms.take_push();
  ASSERT_TRUE(push.has_value()) << "the push met while waiting is kept";
  EXPECT_EQ(push->limit_bytes, 2 * kGiB);
  EXPECT_FALSE(ms.take_push().has_value()) << "a push is taken once";
  EXPECT_TRUE(ms.is_open());
  ms.close();
  p.join();
  EXPECT_EQ(asked.need_bytes, 10 * kMiB);
  EXPECT_EQ(asked.want_bytes, 42 * kMiB);
  EXPECT_TRUE(asked.existing);
}

TEST(MemSession, AnErrorAnswerIsNamedAndClosesTheSession) {
  ScriptedPmgr p([](ScriptedPmgr& f) {
    f.hello(limit_of(kGiB));
    f.expect<proto::MemReserve>();
    f.send(proto::Error{proto::ErrorCode::kRemoved, "client removed"}, f.last_id);
  });
  const Settings s = settings_for(p);
  MemSession ms(s);
  proto::MemState st;
  std::string why;
  ASSERT_TRUE(ms.open(kGpu, &st, &why)) << why;
  EXPECT_FALSE(ms.reserve(kMiB, 33 * kMiB, false, &st, &why));
  EXPECT_EQ(why, "client removed");
  EXPECT_FALSE(ms.is_open());
  EXPECT_FALSE(ms.give_back(kMiB)) << "nothing is sent on a closed session";
  why.clear();
  EXPECT_FALSE(ms.query(&st, &why));
  EXPECT_EQ(why, "pod manager connection lost");
  why.clear();
  EXPECT_FALSE(ms.reserve(kMiB, kMiB, false, &st, &why));
  EXPECT_EQ(why, "pod manager connection lost");
}

TEST(MemSession, SilencePastTheTimeoutIsNamedAndClosesTheSession) {
  ScriptedPmgr p([](ScriptedPmgr& f) {
    f.hello(limit_of(kGiB));
    f.expect<proto::MemQuery>();
    proto::Message m;
    f.receive(&m);  // never answers; returns when the hook gives up and closes
  });
  const Settings s = settings_for(p, 1000);
  MemSession ms(s);
  proto::MemState st;
  std::string why;
  ASSERT_TRUE(ms.open(kGpu, &st, &why)) << why;
  EXPECT_FALSE(ms.query(&st, &why));
  EXPECT_EQ(why, "pod manager silent for 1000 ms (stopped or hung)");
  EXPECT_FALSE(ms.is_open());
}

TEST(MemSession, AGiveBackIsSentWithoutWaitingAndAQueryGetsTheLatestFigures) {
  proto::MemReturn back;
  ScriptedPmgr p([&](ScriptedPmgr& f) {
    f.hello(limit_of(kGiB));
    back = f.expect<proto::MemReturn>();
    f.expect<proto::MemQuery>();
    f.send(proto::MemState{2 * kGiB, 500 * kMiB, 0, 0}, f.last_id);
    proto::Message m;
    f.receive(&m);
  });
  const Settings s = settings_for(p);
  MemSession ms(s);
  proto::MemState st;
  std::string why;
  ASSERT_TRUE(ms.open(kGpu, &st, &why)) << why;
  EXPECT_TRUE(ms.give_back(7 * kMiB));
  ASSERT_TRUE(ms.query(&st, &why)) << why;
  EXPECT_EQ(st.limit_bytes, 2 * kGiB);
  EXPECT_EQ(st.client_held_bytes, 500 * kMiB);
  ms.close();
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
  ScriptedPmgr p([](ScriptedPmgr& f) {
    f.hello(limit_of(kGiB));
    f.expect<proto::MemReturn>();  // the hook has looked once: now push
    f.send({{0, limit_of(3 * kGiB)}, {0, proto::Heartbeat{}}, {0, limit_of(512 * kMiB)}});
    f.expect<proto::MemReturn>();  // then hang up
    f.hang_up();
  });
  const Settings s = settings_for(p);
  MemSession ms(s);
  proto::MemState st;
  std::string why;
  ASSERT_TRUE(ms.open(kGpu, &st, &why)) << why;
  EXPECT_FALSE(ms.take_push().has_value()) << "nothing pushed yet: no wait, no push";
  EXPECT_TRUE(ms.is_open());
  ASSERT_TRUE(ms.give_back(kMiB));
  const auto push = await_push(ms);
  ASSERT_TRUE(push.has_value());
  EXPECT_EQ(push->limit_bytes, 512 * kMiB) << "the latest of the pushes";
  EXPECT_FALSE(ms.take_push().has_value());
  ASSERT_TRUE(ms.give_back(kMiB));
  EXPECT_FALSE(await_push(ms).has_value());
  EXPECT_FALSE(ms.is_open()) << "a broken session is closed, so lease sync reconnects";
}

}  // namespace
}  // namespace gem::hook
