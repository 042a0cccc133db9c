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

// One variable set to `value` (POD_NAME set so the gate is on): the problems it gives.
Parsed one(const char* name, const std::string& value) { return parse({{"POD_NAME", "a"}, {name, value}}); }

struct IntegerVariable {
  const char* name;
  int Settings::*field;
  long lo, hi;
  int fallback;
};

const IntegerVariable kIntegers[] = {
    {"GEMINI_MAX_INFLIGHT", &Settings::max_inflight, 2, 1 << 20, kDefaultMaxInflight},
    {"GEMINI_PMGR_TIMEOUT_MS", &Settings::pmgr_timeout_ms, kMinPmgrTimeoutMs, kMaxPmgrTimeoutMs, kDefaultPmgrTimeoutMs},
    {"GEMINI_EMPTY_CACHE_MS", &Settings::empty_cache_ms, 0, kMaxEmptyCacheMs, kDefaultEmptyCacheMs},
};

TEST(HookSettings, IntegerVariablesTakeBothEndsOfTheirRangeAndNothingOutside) {
  for (const IntegerVariable& v : kIntegers) {
    for (long ok : {v.lo, v.hi}) {
      const Parsed p = one(v.name, std::to_string(ok));
      EXPECT_TRUE(p.problems.empty()) << v.name << "=" << ok;
      EXPECT_EQ(p.s.*v.field, ok) << v.name;
    }
    for (long bad : {v.lo - 1, v.hi + 1}) {
      const Parsed p = one(v.name, std::to_string(bad));
      EXPECT_EQ(p.s.*v.field, v.fallback) << v.name << "=" << bad;
      ASSERT_EQ(p.problems.size(), 1u) << v.name << "=" << bad;
      const std::string want = std::string(v.name) + "='" + std::to_string(bad) + "': not an integer from " +
                               std::to_string(v.lo) + " to " + std::to_string(v.hi) + "; using " +
                               std::to_string(v.fallback);
      EXPECT_EQ(p.problems[0], want);
    }
  }
}

TEST(HookSettings, IntegerVariablesRejectWhatIsNotOnePlainInteger) {
  // Too big for a long (strtol's ERANGE) or for an int, not a number, a fraction, a unit, spaces
  // on either side, two numbers: each is named and the default kept, never a part of it used.
  const char* const bads[] = {"99999999999999999999", "4294967298", "-99999999999999999999", "abc", "64.5",
                              "64ms", "64 ", " 64", "\t64", "6 4", "0x40", "--64"};
  for (const IntegerVariable& v : kIntegers) {
    for (const char* bad : bads) {
      const Parsed p = one(v.name, bad);
      EXPECT_EQ(p.s.*v.field, v.fallback) << v.name << "='" << bad << "'";
      ASSERT_EQ(p.problems.size(), 1u) << v.name << "='" << bad << "'";
      EXPECT_EQ(p.problems[0].rfind(std::string(v.name) + "='" + bad + "': not an integer", 0), 0u) << p.problems[0];
    }
  }
}

TEST(HookSettings, AnEmptyValueIsUnsetNotAProblem) {
  const Parsed p = parse({{"POD_NAME", "a"},
                          {"GEMINI_FAIL_CLOSED", ""},
                          {"GEMINI_IDLE_MS", ""},
                          {"GEMINI_MAX_INFLIGHT", ""},
                          {"GEMINI_PMGR_TIMEOUT_MS", ""},
                          {"GEMINI_SECRET_FILE", ""},
                          {"GEMINI_EMPTY_CACHE", ""},
                          {"GEMINI_EMPTY_CACHE_MS", ""},
                          {"GEMINI_STATS", ""},
                          {"GEMINI_STATS_FILE", ""},
                          {"POD_MANAGER_SOCKET", ""}});
  EXPECT_TRUE(p.problems.empty()) << p.problems[0];
  EXPECT_TRUE(p.s.enabled);
  EXPECT_EQ(p.s.pod_manager.to_string(), "127.0.0.1:50052");
  EXPECT_EQ(p.s.idle_us, kDefaultIdleUs);
  EXPECT_EQ(p.s.empty_cache, -1);
  EXPECT_TRUE(p.s.secret.empty());
  // An empty POD_NAME is no client: the hook passes everything through.
  EXPECT_FALSE(parse({{"POD_NAME", ""}}).s.enabled);
}

TEST(HookSettings, SwitchesTakeOnlyZeroOrOneAndSayWhatTheyUseInstead) {
  for (const char* bad : {"2", "-1", "01", "1 ", " 1", "yes", "TRUE", "on"}) {
    Parsed p = one("GEMINI_FAIL_CLOSED", bad);
    EXPECT_FALSE(p.s.fail_closed) << bad;
    ASSERT_EQ(p.problems.size(), 1u) << bad;
    EXPECT_EQ(p.problems[0], std::string("GEMINI_FAIL_CLOSED='") + bad + "': not 0 or 1; using 0");
    p = one("GEMINI_STATS", bad);
    EXPECT_FALSE(p.s.print_stats) << bad;
    ASSERT_EQ(p.problems.size(), 1u) << bad;
    EXPECT_EQ(p.problems[0], std::string("GEMINI_STATS='") + bad + "': not 0 or 1; using 0");
    // GEMINI_EMPTY_CACHE has a third state, unset: a bad value leaves it unset, and says so.
    p = one("GEMINI_EMPTY_CACHE", bad);
    EXPECT_EQ(p.s.empty_cache, -1) << bad;
    ASSERT_EQ(p.problems.size(), 1u) << bad;
    EXPECT_EQ(p.problems[0], std::string("GEMINI_EMPTY_CACHE='") + bad + "': not 0 or 1; using unset");
  }
  EXPECT_EQ(one("GEMINI_EMPTY_CACHE", "1").s.empty_cache, 1);
  EXPECT_EQ(one("GEMINI_EMPTY_CACHE", "0").s.empty_cache, 0);
  EXPECT_FALSE(one("GEMINI_FAIL_CLOSED", "0").s.fail_closed);
  EXPECT_FALSE(one("GEMINI_STATS", "0").s.print_stats);
}

TEST(HookSettings, IdleMsRejectsWhatIsNotADecimalNumberOfMs) {
  // Hexadecimal (strtod reads 0x10 as 16), infinity, spaces on either side, units, a value that is
  // 0 µs: each is named with the default it uses instead.
  for (const char* bad : {"0x10", "0X1p3", "inf", "-inf", "infinity", " 2", "2 ", "\n2", "2,5", "2ms", "1e", ".", "-0",
                          "1e-9", "0.0001"}) {
    const Parsed p = one("GEMINI_IDLE_MS", bad);
    EXPECT_EQ(p.s.idle_us, kDefaultIdleUs) << "'" << bad << "'";
    ASSERT_EQ(p.problems.size(), 1u) << "'" << bad << "'";
    EXPECT_EQ(p.problems[0], std::string("GEMINI_IDLE_MS='") + bad +
                                 "': not a decimal number of ms above 0 and at most 10000; using 2 ms");
  }
  // Decimal forms, the exponent included, are taken; a fraction of a µs is dropped.
  EXPECT_EQ(one("GEMINI_IDLE_MS", "1e3").s.idle_us, 1000000);
  EXPECT_EQ(one("GEMINI_IDLE_MS", "+3").s.idle_us, 3000);
  EXPECT_EQ(one("GEMINI_IDLE_MS", ".25").s.idle_us, 250);
  EXPECT_EQ(one("GEMINI_IDLE_MS", "0.0015").s.idle_us, 1);
  EXPECT_TRUE(one("GEMINI_IDLE_MS", "1e3").problems.empty());
}

TEST(HookSettings, ThePodManagerAddressFormsAndTheirProblems) {
  EXPECT_EQ(one("POD_MANAGER_SOCKET", "unix:/run/gem/p.sock").s.pod_manager.unix_path, "/run/gem/p.sock");
  EXPECT_EQ(parse({{"POD_NAME", "a"}, {"POD_MANAGER_IP", "::1"}, {"POD_MANAGER_PORT", "7"}}).s.enabled, false);
  EXPECT_EQ(parse({{"POD_NAME", "a"}, {"POD_MANAGER_IP", "[::1]"}, {"POD_MANAGER_PORT", "7"}}).s.pod_manager.port, 7);
  // A socket path that is not absolute, one too long for sockaddr_un, a bad host, a bad port: the
  // gate is turned off (launches run unthrottled), and the address and the reason are named.
  const std::vector<std::map<std::string, std::string>> bads = {
      {{"POD_MANAGER_SOCKET", "pmgr.sock"}},
      {{"POD_MANAGER_SOCKET", "/" + std::string(200, 'x')}},
      {{"POD_MANAGER_SOCKET", "unix:"}},
      {{"POD_MANAGER_IP", "bad host"}},
      {{"POD_MANAGER_PORT", "0"}},
      {{"POD_MANAGER_PORT", "http"}},
  };
  for (auto vars : bads) {
    vars["POD_NAME"] = "a";
    const Parsed p = parse(vars);
    EXPECT_FALSE(p.s.enabled) << vars.begin()->second;
    ASSERT_EQ(p.problems.size(), 1u) << vars.begin()->second;
    EXPECT_EQ(p.problems[0].rfind("pod manager address '", 0), 0u) << p.problems[0];
    EXPECT_NE(p.problems[0].find("; launches run unthrottled"), std::string::npos) << p.problems[0];
  }
}

TEST(HookSettings, ASecretFileWithoutAUsableFirstLineIsNamed) {
  char path[] = "/tmp/gem-hook-secret-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  for (const std::string& content : {std::string("\nsecret-on-line-two\n"), std::string("   \n"), std::string(""),
                                     std::string("bad\x01secret\n")}) {
    std::ofstream(path, std::ios::trunc) << content;
    const Parsed p = parse({{"POD_NAME", "a"}, {"GEMINI_SECRET_FILE", path}});
    EXPECT_TRUE(p.s.secret.empty()) << content;
    EXPECT_TRUE(p.s.enabled) << "a bad secret does not turn the gate off";
    ASSERT_EQ(p.problems.size(), 1u) << content;
    EXPECT_NE(p.problems[0].find(path), std::string::npos) << p.problems[0];
    EXPECT_EQ(p.problems[0].find("secret-on-line-two"), std::string::npos) << "the secret is never shown";
  }
  unlink(path);
}

TEST(HookSettings, EveryProblemIsReportedAtOnceInTheOrderOfTheVariables) {
  const Parsed p = parse({{"POD_NAME", "a"},
                          {"POD_MANAGER_SOCKET", "relative"},
                          {"GEMINI_FAIL_CLOSED", "x"},
                          {"GEMINI_IDLE_MS", "x"},
                          {"GEMINI_MAX_INFLIGHT", "x"},
                          {"GEMINI_PMGR_TIMEOUT_MS", "x"},
                          {"GEMINI_SECRET_FILE", "/tmp/gem-no-such-secret-file"},
                          {"GEMINI_EMPTY_CACHE", "x"},
                          {"GEMINI_EMPTY_CACHE_MS", "x"},
                          {"GEMINI_STATS", "x"}});
  const std::vector<std::string> starts = {"pod manager address", "GEMINI_FAIL_CLOSED=", "GEMINI_IDLE_MS=",
                                           "GEMINI_MAX_INFLIGHT=", "GEMINI_PMGR_TIMEOUT_MS=", "GEMINI_SECRET_FILE",
                                           "GEMINI_EMPTY_CACHE=", "GEMINI_EMPTY_CACHE_MS=", "GEMINI_STATS="};
  ASSERT_EQ(p.problems.size(), starts.size());
  for (size_t i = 0; i < starts.size(); ++i) EXPECT_EQ(p.problems[i].rfind(starts[i], 0), 0u) << p.problems[i];
}

}  // namespace
}  // namespace gem::hook
