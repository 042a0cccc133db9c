// The daemons' command line (include/gem/flags.h): what a user types and what each mistake says.
#include "gem/flags.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gem {
namespace {

// Parses `args` (without argv[0]) with --port/--config taking values and --stats_off a switch.
bool parse(Flags& f, std::vector<std::string> args, std::string* err) {
  std::vector<char*> argv{const_cast<char*>("gem-schd")};
  for (std::string& a : args) argv.push_back(a.data());
  return f.parse(static_cast<int>(argv.size()), argv.data(), err);
}

Flags make() { return Flags({"port", "config"}, {"stats_off"}); }

TEST(Flags, ValuesSpacedOrInlineAndSwitches) {
  Flags f = make();
  std::string err;
  ASSERT_TRUE(parse(f, {"--port", "50051", "--config=/etc/gem.txt", "--stats_off"}, &err)) << err;
  int64_t port = 0;
  ASSERT_TRUE(f.get_int("port", 1, 1, 65535, &port, &err)) << err;
  EXPECT_EQ(port, 50051);
  EXPECT_EQ(f.get("config", ""), "/etc/gem.txt");
  EXPECT_TRUE(f.has("stats_off"));
  EXPECT_EQ(f.get("missing", "fallback"), "fallback");
}

TEST(Flags, EachMistakeNamesTheArgument) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--nope", "1"}, "unknown flag --nope"},
      {{"--port"}, "--port needs a value"},
      {{"--stats_off=1"}, "--stats_off takes no value"},
      // A stray word (a forgotten "--", or a value after a switch) is refused, not ignored.
      {{"--stats_off", "resource-config.txt"}, "unexpected argument 'resource-config.txt'"},
      {{"50051"}, "unexpected argument '50051'"},
      {{"--"}, "unexpected argument '--'"},
  };
  for (const auto& [args, want] : cases) {
    Flags f = make();
    std::string err;
    EXPECT_FALSE(parse(f, args, &err)) << args.front();
    EXPECT_NE(err.find(want), std::string::npos) << "got: " << err;
  }
}

TEST(Flags, NumbersOutOfRangeSayTheRange) {
  Flags f = make();
  std::string err;
  ASSERT_TRUE(parse(f, {"--port", "70000"}, &err)) << err;
  int64_t port = 0;
  EXPECT_FALSE(f.get_int("port", 1, 1, 65535, &port, &err));
  EXPECT_EQ(err, "--port must be an integer from 1 to 65535, got '70000'");
}

}  // namespace
}  // namespace gem
