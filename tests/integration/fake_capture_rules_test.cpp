// The stand-in driver's stream-capture rules (tests/fake-cuda/libcuda/capture_rules.h), checked
// through fake-capture-app without the hook: a program that follows the rules runs clean in every
// capture mode with nothing invalidated, and each kind of violation invalidates the capture exactly
// in the modes where CUDA says it must (Programming Guide, "CUDA Graphs" > "Prohibited and Unhandled
// Operations"; cuThreadExchangeStreamCaptureMode). The violation is made inside the first capture
// by a handshake in the app, so no test depends on timing.
#include <sys/wait.h>

#include <sstream>

#include "harness.h"

namespace gemtest {
namespace {

const char* const kModes[] = {"global", "thread_local", "relaxed"};

struct AppRun {
  int status = -1;  // wait status; -1: did not finish
  nlohmann::json result;
  std::string err;
  std::vector<std::string> invalidations;  // FAKE_CUDA_CAPTURE_LOG lines
  std::string kernel_log;  // FAKE_CUDA_LOG path
};

class FakeCaptureRulesTest : public GemTest {
 protected:
  /// Runs fake-capture-app with `args` (no hook), FAKE_CUDA_CAPTURE_LOG and FAKE_CUDA_LOG in the
  /// test's directory, and waits for it.
  AppRun run(const std::vector<std::string>& args) {
    const std::string n = std::to_string(runs_++);
    const std::string out = path("cap" + n + ".out"), err = path("cap" + n + ".err");
    const std::string cap_log = path("cap" + n + ".capture.log"), kernel_log = path("cap" + n + ".kernels.log");
    SpawnOptions o;
    o.argv = {bin("fake-cuda/fake-capture-app")};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.env["LD_LIBRARY_PATH"] = bin("fake-cuda");
    o.env["FAKE_CUDA_CAPTURE_LOG"] = cap_log;
    o.env["FAKE_CUDA_LOG"] = kernel_log;
    o.unset_env = {"LD_PRELOAD", "FAKE_CUDA_DEVICES", "FAKE_CUDA_MEM_BYTES"};
    o.stdout_path = out;
    o.stderr_path = err;
    Process p(o);
    AppRun r;
    if (auto st = p.wait_for(30 * slack())) r.status = *st;
    r.err = read_text(err);
    const std::string text = read_text(out);
    if (!text.empty()) r.result = nlohmann::json::parse(text, nullptr, false);
    std::istringstream in(read_text(cap_log));
    for (std::string l; std::getline(in, l);) r.invalidations.push_back(l);
    r.kernel_log = kernel_log;
    return r;
  }

  /// Expects the run to have failed on the invalidated capture, with one invalidation logged for
  /// `api` in `mode`.
  static void expect_invalidated(const AppRun& r, const std::string& api, const std::string& mode) {
    ASSERT_NE(r.status, -1) << "fake-capture-app hangs\n" << r.err;
    EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1) << describe_status(r.status) << "\n" << r.err;
    EXPECT_NE(r.err.find("CUDA_ERROR_STREAM_CAPTURE_INVALIDATED"), std::string::npos) << r.err;
    ASSERT_EQ(r.invalidations.size(), 1u) << r.err;
    EXPECT_EQ(r.invalidations[0].rfind("invalidated " + api + " " + mode + " ", 0), 0u) << r.invalidations[0];
    // Also in the kernel log, in a line its readers skip (fewer than four fields, not a pid first).
    const std::string text = read_text(r.kernel_log);
    size_t kernel_lines = 0, capture_lines = 0;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) ++(l.rfind("capture-invalidated ", 0) == 0 ? capture_lines : kernel_lines);
    EXPECT_EQ(capture_lines, 1u) << text;
    EXPECT_EQ(read_kernels(r.kernel_log).size(), kernel_lines) << text;
  }

  /// Expects a clean run: exit 0, its JSON line, nothing invalidated.
  static void expect_clean(const AppRun& r) {
    ASSERT_NE(r.status, -1) << "fake-capture-app hangs\n" << r.err;
    EXPECT_TRUE(exited_ok(r.status)) << describe_status(r.status) << "\n" << r.err;
    EXPECT_TRUE(r.invalidations.empty()) << r.invalidations.front();
    ASSERT_TRUE(r.result.is_object()) << r.err;
    EXPECT_GE(r.result.value("captures", 0L), 1) << r.result.dump();
  }

  int runs_ = 0;
};

TEST_F(FakeCaptureRulesTest, LegalProgramRunsCleanInEveryMode) {
  for (const char* mode : kModes) {
    SCOPED_TRACE(mode);
    const AppRun r = run({"--mode", mode, "--seconds", "0.5", "--threads", "2", "--eager_thread", "--kernel_us", "100",
                       "--replays", "5"});
    expect_clean(r);
    EXPECT_EQ(r.result.value("mode", ""), mode);
    EXPECT_EQ(r.result.value("graph_kernels_run", 0L), r.result.value("replays", 0L) * 10) << r.result.dump();
    EXPECT_GE(r.result.value("captures", 0L), 2) << "one per capturing thread at least";
    EXPECT_GE(r.result.value("eager_launches", 0L), 1) << r.result.dump();
  }
}

TEST_F(FakeCaptureRulesTest, ContextSynchronizeInvalidatesInEveryMode) {
  for (const char* mode : kModes) {
    SCOPED_TRACE(mode);
    expect_invalidated(run({"--mode", mode, "--seconds", "0", "--violate", "ctx_sync"}), "cuCtxSynchronize", mode);
  }
}

TEST_F(FakeCaptureRulesTest, LegacyStreamInvalidatesABlockingCaptureOnly) {
  for (const char* mode : kModes) {
    SCOPED_TRACE(mode);
    const AppRun blocking = run({"--mode", mode, "--seconds", "0", "--violate", "legacy_launch", "--blocking"});
    expect_invalidated(blocking, "launch", mode);
    EXPECT_NE(blocking.err.find("CUDA_ERROR_STREAM_CAPTURE_IMPLICIT"), std::string::npos) << blocking.err;
    // A non-blocking capturing stream does not synchronise with the legacy stream: legal.
    const AppRun non_blocking = run({"--mode", mode, "--seconds", "0", "--violate", "legacy_launch"});
    expect_clean(non_blocking);
    EXPECT_EQ(non_blocking.result.value("violation_result", ""), "CUDA_SUCCESS");
  }
}

TEST_F(FakeCaptureRulesTest, UnsafeCallFromAnotherThreadInvalidatesAGlobalCaptureOnly) {
  expect_invalidated(run({"--mode", "global", "--seconds", "0", "--violate", "other_thread_unsafe"}), "cuMemAlloc",
                     "global");
  for (const char* mode : {"thread_local", "relaxed"}) {
    SCOPED_TRACE(mode);
    const AppRun r = run({"--mode", mode, "--seconds", "0", "--violate", "other_thread_unsafe"});
    expect_clean(r);
    EXPECT_EQ(r.result.value("violation_result", ""), "CUDA_SUCCESS") << r.err;
  }
}

}  // namespace
}  // namespace gemtest
