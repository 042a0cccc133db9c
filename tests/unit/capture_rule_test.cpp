// The hook's capture rule (hook/capture_rule.h: which of its own driver calls the calling thread may
// make while stream captures are in progress) driven by scenario scripts, as route_test.cpp does
// (the format: script.h). Each file in tests/unit/testdata/capture/ is a list of
//   > view active=N own=N others=N mode=global|thread_local|relaxed
// lines (the calling thread's CaptureView: captures in progress, those of its own not begun
// RELAXED, those of other threads begun GLOBAL, its capture mode), each answered by one line per
// kind of call: "<kind> allowed|refused". Run with GEM_REWRITE=1 to rewrite the files.
#include "../../hook/capture_rule.h"

#include <gtest/gtest.h>

#include "script.h"

namespace gem::hook {
namespace {

CUstreamCaptureMode mode_of(const std::string& m) {
  if (m == "relaxed") return CU_STREAM_CAPTURE_MODE_RELAXED;
  if (m == "thread_local") return CU_STREAM_CAPTURE_MODE_THREAD_LOCAL;
  if (m == "global") return CU_STREAM_CAPTURE_MODE_GLOBAL;
  ADD_FAILURE() << "unknown mode " << m;
  return CU_STREAM_CAPTURE_MODE_GLOBAL;
}

std::vector<std::string> run(const std::string& line) {
  const testing::Command c = testing::parse_command(line);
  if (c.words.empty() || c.words[0] != "view") return {"unknown command: " + line};
  CaptureView v;
  auto num = [&](const char* k) { return c.kv.count(k) ? static_cast<int>(testing::script_num(c.kv.at(k))) : 0; };
  v.active = num("active");
  v.own_strict = num("own");
  v.others_global = num("others");
  v.thread_mode = mode_of(c.kv.count("mode") ? c.kv.at("mode") : "global");
  const std::pair<const char*, HookCall> kinds[] = {{"context_sync", HookCall::kContextSync},
                                                    {"legacy_stream", HookCall::kLegacyStream},
                                                    {"unsafe", HookCall::kUnsafe},
                                                    {"memory_move", HookCall::kMemoryMove}};
  std::vector<std::string> out;
  for (const auto& [name, kind] : kinds) out.push_back(std::string(name) + (capture_allows(v, kind) ? " allowed" : " refused"));
  return out;
}

TEST(CaptureRuleScript, Scenarios) {
  testing::run_all_scripts("capture", 1, [](const std::string&) { return testing::Interpreter(run); });
}

// An unknown mode value is read as the strictest (GLOBAL).
TEST(CaptureRule, UnknownModeIsGlobal) {
  EXPECT_FALSE(unsafe_call_allowed(static_cast<CUstreamCaptureMode>(7), 0, 1));
  EXPECT_TRUE(unsafe_call_allowed(static_cast<CUstreamCaptureMode>(7), 0, 0));
}

}  // namespace
}  // namespace gem::hook
