// gem-schd keeps granting the token while a 10^6-client resource-config.txt is reloaded (issue 6):
// the file is read and parsed on the loader thread, not in the poll loop. Two saturating clients
// run; the longest stretch without any kernel on the (stand-in) GPU while the big file is taken in
// is compared with generous bounds: before issue 6 the loop stopped for good (quadratic parse).
#include <algorithm>

#include "harness.h"

namespace gemtest {
namespace {

// client1 and client2 with the given shares, then `others` clients with REQUEST 0; when
// `duplicate_last`, the last line repeats client1's ID, so the whole file is parsed and refused.
std::string big_config(double r1, double r2, size_t others, bool duplicate_last) {
  std::string s = "# 10^6 clients\n" + std::to_string(others + 2) + "\n";
  s.reserve(others * 32);
  char line[64];
  std::snprintf(line, sizeof line, "client1 %g 1 0\nclient2 %g 1 0\n", r1, r2);
  s += line;
  for (size_t i = 0; i < others; ++i) {
    if (duplicate_last && i + 1 == others) {
      s += "client1 0 1 0\n";
    } else {
      s += "ns-" + std::to_string(i % 100) + "/pod-" + std::to_string(i) + " 0 1 0\n";
    }
  }
  return s;
}

int count_in_log(const std::string& log, const std::string& needle) {
  int n = 0;
  for (size_t p = log.find(needle); p != std::string::npos; p = log.find(needle, p + 1)) ++n;
  return n;
}

class ConfigScaleTest : public GemTest {
 protected:
  /// Runs two clients, swaps in the big file by rename at 2 s and waits for gem-schd's verdict
  /// (`expect` in its log); sets written_ and verdict_.
  void reload_big_config(bool refused, const std::string& expect) {
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
    const std::string text = big_config(0.7, 0.3, 999998, refused);
    sleep_ms(2000);
    written_ = mono_us();
    write_text_rename(path("resource-config.txt"), text);
    const bool seen = wait_until(30 * slack(), [&] {
      return count_in_log(read_text(path("schd.log")), expect) > 0;
    });
    verdict_ = mono_us();
    EXPECT_TRUE(seen) << "no '" << expect << "' in gem-schd's log:\n" << tail(path("schd.log"));
  }

  /// After the apps ended: the longest GPU idle stretch from the write until the verdict was seen
  /// (printed with the one in the second before the write, for comparison).
  Micros idle_while_reloading() {
    wait_apps(9 + 20 * slack());
    const auto ks = kernels();
    const Micros before = longest_idle(ks, written_ - 1000000, written_);
    const Micros during = longest_idle(ks, written_, verdict_);
    std::printf("    verdict %.0f ms after the write; longest GPU idle: %.0f ms in the second before, "
                "%.0f ms until the verdict\n",
                (verdict_ - written_) / 1000.0, before / 1000.0, during / 1000.0);
    return during;
  }

  Micros written_ = 0, verdict_ = 0;
};

// The whole file is read and parsed (the duplicate is on its last line) and refused: the loop
// never waits for it.
TEST_F(ConfigScaleTest, GrantsContinueWhileAMillionLinesAreParsedAndRefused) {
  reload_big_config(true, "already used on line 3; keeping the last good config");
  const Micros idle = idle_while_reloading();
  // Quotas are 30 ms here; a loop held up by the parse would leave the GPU idle for its length
  // (before issue 6: for good). Half a second covers a loaded 2-core machine.
  EXPECT_LT(idle, 500000 * slack());
  const auto s = stats();
  ASSERT_TRUE(s.contains("clients")) << s.dump();
  EXPECT_EQ(s["clients"].size(), 2u);
  EXPECT_DOUBLE_EQ(s["clients"]["client1"].value("request", 0.0), 0.3);
  stop_daemons_expect_clean();
}

// Accepted: parsed off the loop, then applied on it after the "reloaded" line (Policy::set_clients,
// about a second for 10^6 clients: bench/config_bench.cpp, docs/benchmarks.md). The window measured
// ends when the line is seen, so this bounds the read + parse part; the bound is looser since the
// apply may start inside it. Then the small file again: 999998 clients dropped, and gem-schd, no
// longer carrying 10^6 clients (its --stats file at that size takes seconds to write), stops
// cleanly. Not under the sanitizers: 10^6 clients there take several GB and minutes.
TEST_F(ConfigScaleTest, GrantsContinueWhileAMillionLinesAreReloaded) {
  if (sanitized()) GTEST_SKIP() << "10^6 applied clients under ASan: too much memory and time";
  reload_big_config(false, "reloaded");
  write_text_rename(path("resource-config.txt"),
                    config_text({{"client1", 0.3, 1.0}, {"client2", 0.7, 1.0}}));
  const bool back = wait_until(60 * slack(), [&] {
    return count_in_log(read_text(path("schd.log")), "reloaded") >= 2;
  });
  EXPECT_TRUE(back) << "the small config was not reloaded:\n" << tail(path("schd.log"));
  const Micros idle = idle_while_reloading();
  EXPECT_LT(idle, 3000000 * slack());
  stop_daemons_expect_clean();
}

}  // namespace
}  // namespace gemtest
