// gem-schd's record of refused clients (scheduler/refusals.h): what `gemctl status`, the metrics
// and --stats show an administrator about pod managers that wait to be admitted.
#include "../../scheduler/refusals.h"

#include <gtest/gtest.h>

#include <string>

namespace gem::sched {
namespace {

constexpr Micros kSec = 1000000;

TEST(Refusals, ARefusedClientIsShownWithItsReasonAndCount) {
  Refusals r;
  r.note("train-a", proto::ErrorCode::kUnknownClient, "no such client 'train-a'", 1 * kSec);
  r.note("train-a", proto::ErrorCode::kUnknownClient, "no such client 'train-a'", 2 * kSec);
  const auto shown = r.recent(2 * kSec);
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0].client, "train-a");
  EXPECT_EQ(shown[0].reason, "no such client 'train-a'");
  EXPECT_EQ(shown[0].kind, "unknown_client");
  EXPECT_EQ(shown[0].count, 2u);
  EXPECT_EQ(shown[0].last, 2 * kSec);
  EXPECT_EQ(r.totals().at("unknown_client"), 2u);
}

TEST(Refusals, AdmissionRemovesTheRowButNotTheCount) {
  Refusals r;
  r.note("a", proto::ErrorCode::kRemoved, "client 'a' was removed", 0);
  r.admitted("a");
  EXPECT_TRUE(r.recent(0).empty());
  EXPECT_EQ(r.totals().at("removed"), 1u) << "a counter never decreases";
}

TEST(Refusals, ARowIsForgottenAMinuteAfterItsLastRefusal) {
  Refusals r;
  r.note("a", proto::ErrorCode::kDenied, "wrong secret", 0);
  EXPECT_EQ(r.recent(kRefusedShownFor).size(), 1u);
  EXPECT_TRUE(r.recent(kRefusedShownFor + 1).empty());
  r.note("a", proto::ErrorCode::kDenied, "wrong secret", kRefusedShownFor + 2);  // it asks again
  EXPECT_EQ(r.recent(kRefusedShownFor + 2).size(), 1u);
}

TEST(Refusals, MostRecentFirstAndTheLatestReasonWins) {
  Refusals r;
  r.note("old", proto::ErrorCode::kUnknownClient, "no such client", 1);
  r.note("new", proto::ErrorCode::kBusy, "too many connections", 3);
  r.note("old", proto::ErrorCode::kDenied, "wrong secret", 2);
  const auto shown = r.recent(3);
  ASSERT_EQ(shown.size(), 2u);
  EXPECT_EQ(shown[0].client, "new");
  EXPECT_EQ(shown[1].client, "old");
  EXPECT_EQ(shown[1].reason, "wrong secret");
  EXPECT_EQ(shown[1].kind, "denied");
  EXPECT_EQ(r.totals().at("busy"), 1u);
  EXPECT_EQ(r.totals().at("denied"), 1u);
  EXPECT_EQ(r.totals().at("unknown_client"), 1u);
}

TEST(Refusals, ManyNamesAreCappedOldestForgottenFirst) {
  Refusals r;
  for (size_t i = 0; i < kMaxRefusedShown + 10; ++i) {
    r.note("c" + std::to_string(i), proto::ErrorCode::kUnknownClient, "no such client", static_cast<Micros>(i));
  }
  const auto shown = r.recent(static_cast<Micros>(kMaxRefusedShown + 10));
  ASSERT_EQ(shown.size(), kMaxRefusedShown);
  EXPECT_EQ(shown.front().client, "c" + std::to_string(kMaxRefusedShown + 9));
  EXPECT_EQ(shown.back().client, "c10") << "the ten oldest names were forgotten";
  EXPECT_EQ(r.totals().at("unknown_client"), kMaxRefusedShown + 10) << "every refusal is counted";
}

TEST(Refusals, WireTextNeverReachesALabelUnchecked) {
  Refusals r;
  r.note("bad\nname\"}", proto::ErrorCode::kUnknownClient, "no such client", 0);
  r.note("", proto::ErrorCode::kProtocol, "empty ID", 0);
  r.note("ok", proto::ErrorCode::kProtocol, std::string("line\nbreak\x01") + std::string(300, 'x'), 0);
  const auto shown = r.recent(0);
  ASSERT_EQ(shown.size(), 2u);  // both invalid IDs share one row
  for (const Refused& x : shown) {
    EXPECT_TRUE(x.client == "ok" || x.client == "(invalid ID)") << x.client;
    for (char c : x.reason) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "unprintable byte in " << x.reason;
    EXPECT_LE(x.reason.size(), 203u);
  }
  EXPECT_EQ(r.totals().at("protocol"), 2u);
}

TEST(Refusals, ReasonLabelsAreTheMetricsLabels) {
  EXPECT_STREQ(Refusals::reason_label(proto::ErrorCode::kUnknownClient), "unknown_client");
  EXPECT_STREQ(Refusals::reason_label(proto::ErrorCode::kRemoved), "removed");
  EXPECT_STREQ(Refusals::reason_label(proto::ErrorCode::kDenied), "denied");
  EXPECT_STREQ(Refusals::reason_label(proto::ErrorCode::kBusy), "busy");
  EXPECT_STREQ(Refusals::reason_label(proto::ErrorCode::kProtocol), "protocol");
}

}  // namespace
}  // namespace gem::sched
