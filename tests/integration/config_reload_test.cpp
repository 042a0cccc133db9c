// resource-config.txt changes while clients run: the new shares take effect within a second, by an
// in-place rewrite or a rename over the file; a broken file keeps the last good config.
#include <algorithm>

#include "harness.h"

namespace gemtest {
namespace {


int count_lines_with(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

class ConfigReloadTest : public GemTest {
 protected:
  /// 0.3/0.7 for 2.5 s, then 0.7/0.3: reloaded within 1 s, stats show the new REQUESTs, and the
  /// split over the last 4 s of the 8.5 s after the change follows them.
  void swap_shares(bool by_rename) {
    write_config({{"client1", 0.3, 1.0}, {"client2", 0.7, 1.0}});
    start_scheduler();
    start_pod_manager("client1");
    start_pod_manager("client2");
    AppOptions a;
    a.seconds = 11;
    a.client = "client1";
    start_app(a);
    a.client = "client2";
    start_app(a);
    sleep_ms(2500);
    const int reloads_before = count_lines_with(read_text(path("schd.log")), "reloaded");
    const std::string next = config_text({{"client1", 0.7, 1.0}, {"client2", 0.3, 1.0}});
    const Micros changed = mono_us();
    if (by_rename) {
      write_text_rename(path("resource-config.txt"), next);
    } else {
      write_text(path("resource-config.txt"), next);
    }
    const bool reloaded = wait_until(2 * slack(), [&] {
      return count_lines_with(read_text(path("schd.log")), "reloaded") > reloads_before;
    });
    const double reload_ms = (mono_us() - changed) / 1000.0;
    std::printf("    'reloaded' logged %.0f ms after the write\n", reload_ms);
    EXPECT_TRUE(reloaded) << "no 'reloaded' line in gem-schd's log";
    EXPECT_LE(reload_ms, 1000 * slack());
    // Stats are rewritten every 500 ms.
    const bool in_stats = wait_until(1.5 * slack(), [&] {
      const auto s = stats();
      return s.contains("clients") && s["clients"].contains("client1") &&
             std::abs(s["clients"]["client1"].value("request", 0.0) - 0.7) < 1e-9 &&
             std::abs(s["clients"]["client2"].value("request", 0.0) - 0.3) < 1e-9;
    });
    EXPECT_TRUE(in_stats) << "stats do not show the new REQUESTs: " << stats().dump();
    wait_apps(11 + 10 * slack());
    const auto ks = kernels();
    const ShareReport all = common_period_shares(ks, pids_by_client());
    const Micros from = changed + 4500000;
    ASSERT_GT(all.t1 - from, 3500000) << "run too short after the change: " << all.describe();
    const ShareReport after = period_shares(ks, pids_by_client(), from, all.t1);
    const ShareReport before = period_shares(ks, pids_by_client(), all.t0, changed);
    std::printf("    before the change %s\n    from 4.5 s after it %s\n", before.describe().c_str(),
                after.describe().c_str());
    EXPECT_NEAR(after.share.at("client1"), 0.7, share_tolerance()) << after.describe();
    EXPECT_NEAR(after.share.at("client2"), 0.3, share_tolerance()) << after.describe();
    // Reacts within about a second: already well on the new side 1 s after the change.
    const ShareReport early = period_shares(ks, pids_by_client(), changed + 1000000, changed + 3000000);
    std::printf("    1-3 s after the change %s\n", early.describe().c_str());
    EXPECT_GT(early.share.at("client1"), 0.5) << early.describe();
    stop_daemons_expect_clean();
  }
};

TEST_F(ConfigReloadTest, InPlaceRewriteSwapsShares) { swap_shares(false); }

TEST_F(ConfigReloadTest, RenameOverSwapsShares) { swap_shares(true); }

TEST_F(ConfigReloadTest, BadConfigKeepsLastGoodConfig) {
  write_config({{"client1", 0.3, 1.0}, {"client2", 0.7, 1.0}});
  start_scheduler();
  start_pod_manager("client1");
  start_pod_manager("client2");
  AppOptions a;
  a.seconds = 9;
  a.client = "client1";
  start_app(a);
  a.client = "client2";
  start_app(a);
  sleep_ms(1000);
  // Would swap the shares, but line 4 is broken.
  write_text(path("resource-config.txt"), "# swapped, with a typo\n2\nclient1 0.7 1.0 0\nclient2 0.3 lots 0\n");
  const std::string where = path("resource-config.txt") + ":4";
  const bool logged = wait_until(1.0 * slack(), [&] {
    const std::string log = read_text(path("schd.log"));
    return log.find(where) != std::string::npos && log.find("keeping the last good config") != std::string::npos;
  });
  EXPECT_TRUE(logged) << "gem-schd did not log " << where << " ... keeping the last good config:\n"
                      << tail(path("schd.log"));
  wait_apps(9 + 10 * slack());
  EXPECT_EQ(count_lines_with(read_text(path("schd.log")), "reloaded"), 0) << tail(path("schd.log"));
  const auto s = stats();
  ASSERT_TRUE(s.contains("clients")) << s.dump();
  EXPECT_DOUBLE_EQ(s["clients"]["client1"].value("request", 0.0), 0.3);
  EXPECT_DOUBLE_EQ(s["clients"]["client2"].value("request", 0.0), 0.7);
  const ShareReport r = common_period_shares(kernels(), pids_by_client());
  std::printf("    shares %s\n", r.describe().c_str());
  EXPECT_NEAR(r.share.at("client1"), 0.3, share_tolerance()) << r.describe();
  EXPECT_NEAR(r.share.at("client2"), 0.7, share_tolerance()) << r.describe();
  stop_daemons_expect_clean();
}

}  // namespace
}  // namespace gemtest
