// The hook's connection to its pod manager (hook/pmgr_client.h, hook/pmgr_conn.h) against a scripted
// pod manager on a real Unix socket (scripted_peer.h): Hello and settings, a grant after heartbeats,
// refusals, silence past GEMINI_PMGR_TIMEOUT_MS, an Evict while a request waits, revocation while
// holding, and bytes that are not a frame. What the token machine (token_machine_test.cpp) is told comes from here.
#include "../../hook/pmgr_client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>

#include "gem/clock.h"
#include "gem/net.h"
#include "gem/protocol.h"
#include "scripted_peer.h"

namespace gem::hook {
namespace {

constexpr int kTimeoutMs = 300;  // the hook's GEMINI_PMGR_TIMEOUT_MS in these tests

using testing::ScriptedPeer;

// The scripted pod manager (scripted_peer.h) of these tests: it waits up to 5 s for each message.
class FakePmgr : public ScriptedPeer {
 public:
  explicit FakePmgr(Script script) : ScriptedPeer(std::move(script), 5000) {}
};

bool connect(PmgrClient* c, const FakePmgr& p, std::string* why, int timeout_ms = kTimeoutMs) {
  return c->connect(p.endpoint(), "client-a", "GPU-fa4e0000-0000-0000-0000-000000000000", "s3cret", timeout_ms, why);
}

TEST(PmgrClient, HelloNamesTheClientDeviceAndSecretAndTakesTheSettings) {
  proto::Hello seen;
  FakePmgr p([&](ScriptedPeer& f) {
    proto::ClientSettings s;
    s.request_ppm = 300000;
    s.limit_ppm = 500000;
    s.latency_us = 20000;
    seen = f.hello(s);
  });
  PmgrClient c;
  std::string why;
  ASSERT_TRUE(connect(&c, p, &why)) << why;
  EXPECT_TRUE(c.connected());
  EXPECT_EQ(c.client_settings().limit_ppm, 500000u);
  EXPECT_EQ(c.client_settings().latency_us, 20000u);
  c.close();
  EXPECT_FALSE(c.connected());
  p.join();
  EXPECT_EQ(seen.client, "client-a");
  EXPECT_EQ(seen.device_uuid, "GPU-fa4e0000-0000-0000-0000-000000000000");
  EXPECT_EQ(seen.secret, "s3cret");
  EXPECT_EQ(seen.pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(seen.role, proto::Role::kHook);
}

TEST(PmgrClient, NoPodManagerIsAFailureWithAReason) {
  net::Endpoint ep;
  std::string why;
  ASSERT_TRUE(net::parse_endpoint("/tmp/gem-no-such-dir-for-this-test/pmgr.sock", &ep, &why));
  PmgrClient c;
  EXPECT_FALSE(c.connect(ep, "a", "", "", kTimeoutMs, &why));
  EXPECT_FALSE(why.empty());
  EXPECT_FALSE(c.connected());
}

TEST(PmgrClient, ARequestQueuedBehindHeartbeatsIsGrantedLongAfterTheTimeout) {
  FakePmgr p([](ScriptedPeer& f) {
    f.hello();
    const proto::TokenRequest r = f.expect<proto::TokenRequest>();
    EXPECT_EQ(r.last_burst_us, 4200u);
    const uint64_t id = f.last_id();
    // 2.5 × the hook's timeout (1 s here, heartbeats every 100 ms: slack for a loaded machine) in
    // heartbeats: the request stays alive.
    for (int i = 0; i < 25; ++i) {
      f.send(proto::Heartbeat{});
      usleep(100000);
    }
    f.send(proto::TokenGrant{250000}, id);
  });
  PmgrClient c;
  std::string why;
  ASSERT_TRUE(connect(&c, p, &why, 1000)) << why;
  uint64_t quota = 0;
  const Micros t0 = mono_us();
  EXPECT_EQ(c.request_token(4200, &quota, &why), PmgrClient::Answer::kGranted) << why;
  EXPECT_GE(mono_us() - t0, 2000000);
  EXPECT_EQ(quota, 250000u);
}

TEST(PmgrClient, SilencePastTheTimeoutBreaksTheConnectionAndSaysSo) {
  FakePmgr p([](ScriptedPeer& f) {
    f.hello();
    f.expect<proto::TokenRequest>();
    proto::Message m;
    f.receive(&m);  // waits until the hook gives up and closes
  });
  PmgrClient c;
  std::string why;
  ASSERT_TRUE(connect(&c, p, &why)) << why;
  uint64_t quota = 0;
  EXPECT_EQ(c.request_token(0, &quota, &why), PmgrClient::Answer::kBroken);
  EXPECT_NE(why.find("silent for 300 ms"), std::string::npos) << why;
  EXPECT_FALSE(c.connected());
}

TEST(PmgrClient, AnErrorAnswerIsARefusalWithTheMessage) {
  FakePmgr p([](ScriptedPeer& f) {
    f.hello();
    f.expect<proto::TokenRequest>();
    f.send(proto::Error{proto::ErrorCode::kUnknownClient, "client-a is not in resource-config.txt"}, f.last_id());
    f.expect<proto::TokenRequest>();
    f.hang_up();
  });
  PmgrClient c;
  std::string why;
  ASSERT_TRUE(connect(&c, p, &why)) << why;
  uint64_t quota = 0;
  EXPECT_EQ(c.request_token(0, &quota, &why), PmgrClient::Answer::kRefused);
  EXPECT_EQ(why, "client-a is not in resource-config.txt");
  // A pod manager that closes while the answer is awaited: broken, not refused.
  EXPECT_EQ(c.request_token(0, &quota, &why), PmgrClient::Answer::kBroken);
  EXPECT_FALSE(c.connected());
}

TEST(PmgrClient, AnEvictWhileARequestWaitsIsHandedOverAtOnce) {
  FakePmgr p([](ScriptedPeer& f) {
    f.hello();
    f.expect<proto::TokenRequest>();
    const uint64_t id = f.last_id();
    f.send(proto::Evict{proto::kEvictDemandPaging});
    f.send(proto::TokenGrant{1000}, id);
  });
  PmgrClient c;
  std::vector<uint32_t> evicts;
  c.on_evict_while_waiting([&](uint32_t flags) { evicts.push_back(flags); });
  std::string why;
  ASSERT_TRUE(connect(&c, p, &why)) << why;
  uint64_t quota = 0;
  EXPECT_EQ(c.request_token(0, &quota, &why), PmgrClient::Answer::kGranted);
  ASSERT_EQ(evicts.size(), 1u);
  EXPECT_EQ(evicts[0], proto::kEvictDemandPaging);
  EXPECT_FALSE(c.take_evict());  // handed over, not kept
}

TEST(PmgrClient, WhileHoldingARevocationAndAnEvictAreEventsAndSettingsAreTaken) {
  FakePmgr p([](ScriptedPeer& f) {
    f.hello();
    proto::ClientSettings s;
    s.latency_us = 5000;
    f.send(s);
    f.send(proto::Evict{0});
    f.send(proto::TokenRevoke{123});
    f.expect<proto::TokenRelease>();
    f.hang_up();
  });
  PmgrClient c;
  std::string why;
  ASSERT_TRUE(connect(&c, p, &why)) << why;
  EXPECT_EQ(c.wait_event(2000000), PmgrClient::Event::kEvict);
  EXPECT_EQ(c.client_settings().latency_us, 5000u);
  uint32_t flags = 7;
  EXPECT_TRUE(c.take_evict(&flags));
  EXPECT_EQ(flags, 0u);
  EXPECT_FALSE(c.take_evict());  // once
  EXPECT_EQ(c.wait_event(2000000), PmgrClient::Event::kRevoked);
  EXPECT_TRUE(c.release_token(proto::TokenRelease{}));
  EXPECT_EQ(c.wait_event(2000000), PmgrClient::Event::kBroken);
  EXPECT_FALSE(c.connected());
}

TEST(PmgrClient, AQuietWaitReturnsNoneWithinItsTime) {
  FakePmgr p([](ScriptedPeer& f) {
    f.hello();
    f.expect<proto::TokenRelease>();
  });
  PmgrClient c;
  std::string why;
  ASSERT_TRUE(connect(&c, p, &why)) << why;
  const Micros t0 = mono_us();
  EXPECT_EQ(c.wait_event(20000), PmgrClient::Event::kNone);
  const Micros waited = mono_us() - t0;
  EXPECT_GE(waited, 19000);
  EXPECT_TRUE(c.connected());
  EXPECT_EQ(c.wait_event(0), PmgrClient::Event::kNone);  // a look, no wait
  EXPECT_TRUE(c.release_token(proto::TokenRelease{}));
}

TEST(PmgrClient, RenewalAndReleaseCarryTheFiguresAndAGrantOfZeroIsARefusal) {
  proto::TokenRenew renew;
  proto::TokenRelease rel;
  FakePmgr p([&](ScriptedPeer& f) {
    f.hello();
    renew = f.expect<proto::TokenRenew>();
    f.send(proto::TokenGrant{0}, f.last_id());
    rel = f.expect<proto::TokenRelease>();
    f.send(proto::TokenGrant{9000}, f.last_id());
  });
  PmgrClient c;
  std::string why;
  ASSERT_TRUE(connect(&c, p, &why)) << why;
  uint64_t quota = 1;
  EXPECT_EQ(c.renew_token(2000, 5000, &quota, &why), PmgrClient::Answer::kGranted);
  EXPECT_EQ(quota, 0u);
  EXPECT_EQ(c.release_and_request(proto::TokenRelease{950, 2950, 5050, 6000, false, 77}, &quota, &why),
            PmgrClient::Answer::kGranted);
  EXPECT_EQ(quota, 9000u);
  c.close();
  p.join();
  EXPECT_EQ(renew.used_us, 2000u);
  EXPECT_EQ(renew.burst_us, 5000u);
  EXPECT_EQ(rel.used_us, 950u);
  EXPECT_EQ(rel.burst_us, 2950u);
  EXPECT_EQ(rel.end_us, 6000u);
  EXPECT_TRUE(rel.again);  // set by release_and_request whatever the caller said
  EXPECT_EQ(rel.unthrottled_us, 77u);
}

TEST(PmgrClient, BytesThatAreNotAFrameCloseTheConnection) {
  FakePmgr p([](ScriptedPeer& f) {
    f.hello();
    f.send_raw(std::string(64, '\xff'));
    proto::Message m;
    f.receive(&m);
  });
  PmgrClient c;
  std::string why;
  ASSERT_TRUE(connect(&c, p, &why)) << why;
  EXPECT_EQ(c.wait_event(2000000), PmgrClient::Event::kBroken);
  EXPECT_FALSE(c.connected());
}

}  // namespace
}  // namespace gem::hook
