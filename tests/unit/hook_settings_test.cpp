// The hook's settings from the environment (hook/settings.h, parse_settings): what each variable in
// docs/interfaces.md ("The hook") gives, the defaults, and a named problem for each value ignored.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "../../hook/settings.h"

namespace gem::hook {
namespace {

struct Parsed {
  Settings s;
  std::vector<std::string> problems;
};

Parsed parse(const std::map<std::string, std::string>& vars) {
  Parsed p;
  p.s = parse_settings(
      [&](const char* name) -> const char* {
        const auto it = vars.find(name);
        return it == vars.end() ? nullptr : it->second.c_str();
      },
      &p.problems);
  return p;
}

TEST(HookSettings, WithoutPodNameTheHookPassesEverythingThroughWithTheDefaults) {
  const Parsed p = parse({});
  EXPECT_FALSE(p.s.enabled);
  EXPECT_TRUE(p.problems.empty());
  EXPECT_EQ(p.s.pod_manager.to_string(), "127.0.0.1:50052");
  EXPECT_FALSE(p.s.fail_closed);
  EXPECT_EQ(p.s.idle_us, kDefaultIdleUs);
  EXPECT_EQ(p.s.idle_us, 2000);  // docs/interfaces.md: GEMINI_IDLE_MS 2
  EXPECT_EQ(p.s.max_inflight, 128);
  EXPECT_EQ(p.s.pmgr_timeout_ms, 800);
  EXPECT_EQ(p.s.empty_cache, -1);
  EXPECT_EQ(p.s.empty_cache_ms, 50);
  EXPECT_FALSE(p.s.print_stats);
  EXPECT_TRUE(p.s.stats_file.empty());
  EXPECT_TRUE(p.s.secret.empty());
}

TEST(HookSettings, EveryVariableIsRead) {
  const Parsed p = parse({{"POD_NAME", "team-a"},
                          {"POD_MANAGER_IP", "10.1.2.3"},
                          {"POD_MANAGER_PORT", "6000"},
                          {"GEMINI_FAIL_CLOSED", "1"},
                          {"GEMINI_IDLE_MS", "0.5"},
                          {"GEMINI_MAX_INFLIGHT", "64"},
                          {"GEMINI_PMGR_TIMEOUT_MS", "2000"},
                          {"GEMINI_EMPTY_CACHE", "0"},
                          {"GEMINI_EMPTY_CACHE_MS", "0"},
                          {"GEMINI_STATS", "1"},
                          {"GEMINI_STATS_FILE", "/tmp/stats.json"}});
  EXPECT_TRUE(p.problems.empty()) << p.problems[0];
  EXPECT_TRUE(p.s.enabled);
  EXPECT_EQ(p.s.client, "team-a");
  EXPECT_EQ(p.s.pod_manager.to_string(), "10.1.2.3:6000");
  EXPECT_TRUE(p.s.fail_closed);
  EXPECT_EQ(p.s.idle_us, 500);
  EXPECT_EQ(p.s.max_inflight, 64);
  EXPECT_EQ(p.s.pmgr_timeout_ms, 2000);
  EXPECT_EQ(p.s.empty_cache, 0);
  EXPECT_EQ(p.s.empty_cache_ms, 0);
  EXPECT_TRUE(p.s.print_stats);
  EXPECT_EQ(p.s.stats_file, "/tmp/stats.json");
}

TEST(HookSettings, TheSocketWinsOverIpAndPort) {
  const Parsed p = parse({{"POD_NAME", "a"}, {"POD_MANAGER_SOCKET", "/run/gem/pmgr.sock"}, {"POD_MANAGER_PORT", "1"}});
  EXPECT_TRUE(p.problems.empty());
  EXPECT_EQ(p.s.pod_manager.unix_path, "/run/gem/pmgr.sock");
}

TEST(HookSettings, ABadAddressTurnsTheGateOffAndSaysSo) {
  const Parsed p = parse({{"POD_NAME", "a"}, {"POD_MANAGER_PORT", "99999"}});
  EXPECT_FALSE(p.s.enabled);
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_NE(p.problems[0].find("127.0.0.1:99999"), std::string::npos) << p.problems[0];
  EXPECT_NE(p.problems[0].find("unthrottled"), std::string::npos) << p.problems[0];
}

TEST(HookSettings, EachIgnoredValueIsNamedAndTheDefaultKept) {
  const Parsed p = parse({{"POD_NAME", "a"},
                          {"GEMINI_FAIL_CLOSED", "yes"},
                          {"GEMINI_IDLE_MS", "2ms"},
                          {"GEMINI_MAX_INFLIGHT", "1"},
                          {"GEMINI_PMGR_TIMEOUT_MS", "10"},
                          {"GEMINI_EMPTY_CACHE", "true"},
                          {"GEMINI_EMPTY_CACHE_MS", "-5"},
                          {"GEMINI_STATS", "on"}});
  EXPECT_TRUE(p.s.enabled);
  EXPECT_FALSE(p.s.fail_closed);
  EXPECT_EQ(p.s.idle_us, kDefaultIdleUs);
  EXPECT_EQ(p.s.max_inflight, kDefaultMaxInflight);
  EXPECT_EQ(p.s.pmgr_timeout_ms, kDefaultPmgrTimeoutMs);
  EXPECT_EQ(p.s.empty_cache, -1);
  EXPECT_EQ(p.s.empty_cache_ms, kDefaultEmptyCacheMs);
  EXPECT_FALSE(p.s.print_stats);
  ASSERT_EQ(p.problems.size(), 7u);
  const std::vector<std::string> names = {"GEMINI_FAIL_CLOSED='yes'", "GEMINI_IDLE_MS='2ms'", "GEMINI_MAX_INFLIGHT='1'",
                                          "GEMINI_PMGR_TIMEOUT_MS='10'", "GEMINI_EMPTY_CACHE='true'",
                                          "GEMINI_EMPTY_CACHE_MS='-5'", "GEMINI_STATS='on'"};
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(p.problems[i].rfind(names[i], 0), 0u) << p.problems[i];
    EXPECT_NE(p.problems[i].find("using"), std::string::npos) << p.problems[i];
  }
  EXPECT_NE(p.problems[3].find("from 50 to 60000"), std::string::npos) << p.problems[3];
}

TEST(HookSettings, IdleMsTakesDecimalsWithinItsRange) {
  EXPECT_EQ(parse({{"GEMINI_IDLE_MS", "10000"}}).s.idle_us, 10000000);
  EXPECT_EQ(parse({{"GEMINI_IDLE_MS", "0.2"}}).s.idle_us, 200);
  for (const char* bad : {"0", "-1", "10000.5", "nan", "1e9", " "}) {
    const Parsed p = parse({{"GEMINI_IDLE_MS", bad}});
    EXPECT_EQ(p.s.idle_us, kDefaultIdleUs) << bad;
    EXPECT_EQ(p.problems.size(), 1u) << bad;
  }
}

TEST(HookSettings, TheSecretIsTheFilesFirstLineAndABadFileIsNamedNotShown) {
  char path[] = "/tmp/gem-hook-secret-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "  s3cret-value  \nsecond line\n";
  Parsed p = parse({{"GEMINI_SECRET_FILE", path}});
  EXPECT_EQ(p.s.secret, "s3cret-value");
  EXPECT_TRUE(p.problems.empty());
  p = parse({{"GEMINI_SECRET_FILE", "/tmp/gem-no-such-secret-file"}});
  EXPECT_TRUE(p.s.secret.empty());
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_NE(p.problems[0].find("GEMINI_SECRET_FILE"), std::string::npos) << p.problems[0];
  EXPECT_NE(p.problems[0].find("/tmp/gem-no-such-secret-file"), std::string::npos) << p.problems[0];
  EXPECT_NE(p.problems[0].find("refuse"), std::string::npos) << p.problems[0];
  unlink(path);
}

}  // namespace
}  // namespace gem::hook
