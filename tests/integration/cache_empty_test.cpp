// Cache emptying (issue 8, docs/memory.md "Cache emptying"): a Python program under the hook drives
// the stand-in driver through ctypes with a stand-in `torch` in sys.modules whose
// cuda.empty_cache() logs each call. The hook must call it after idle releases (once each), never
// while a stream capture is in progress, never in a program that did not import torch (and never
// import it), not at all by default, and a CUDA program without Python runs as before.
#include <sys/stat.h>

#include <cstdio>
#include <sstream>

#include "harness.h"

namespace gemtest {
namespace {

constexpr const char* kPython = "/usr/bin/python3";

// argv: MODE (torch: a stand-in torch in sys.modules; slow: the same, its empty_cache() taking
// 300 ms; plain: no torch) EXPECT (empty: wait for each emptying; none: pauses only, no call
// allowed; exit: exit as soon as an emptying began; gil: hold the GIL across a release and the
// next launches) EVENTS STATS TRAP. Exit codes: 2 CUDA error,
// 3 an awaited event did not come, 4 an emptying where none may be.
constexpr const char* kProgram = R"PY(
import ctypes, json, sys, time, types

mode, expect, events, stats_path, trap = sys.argv[1:6]
sys.path.insert(0, trap)  # its `torch` records an import: the hook must never import torch

def now_us():
    return time.monotonic_ns() // 1000

def log(what):
    with open(events, "a") as f:
        f.write("%s %d\n" % (what, now_us()))

calls = []
if mode in ("torch", "slow"):
    torch = types.ModuleType("torch")
    torch.cuda = types.ModuleType("torch.cuda")
    def empty_cache():
        calls.append(now_us())
        log("empty")
        if mode == "slow":  # still emptying (GIL released) while the program exits
            time.sleep(0.3)
            log("empty_done")
    torch.cuda.empty_cache = empty_cache
    sys.modules["torch"] = torch  # as if imported

def ok(r, what):
    if r != 0:
        log("error-%s-%d" % (what, r))
        sys.exit(2)

def wait_for(pred, what, seconds=60):
    end = time.monotonic() + seconds
    while not pred():
        if time.monotonic() > end:
            log("timeout-" + what)
            sys.exit(3)
        time.sleep(0.01)

def released_since(t):  # gem-schd's stats: nobody held the token at a time after t
    try:
        with open(stats_path) as f:
            s = json.load(f)
    except (OSError, ValueError):
        return False
    return s.get("holder") is None and s.get("time_us", 0) > t

cu = ctypes.CDLL("libcuda.so.1")
# PyDLL keeps the GIL during the call, as PyTorch's launches do: the launch waits at the gate with it.
cu_gil = ctypes.PyDLL("libcuda.so.1")
ok(cu.cuInit(0), "cuInit")
dev = ctypes.c_int()
ok(cu.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
ctx = ctypes.c_void_p()
ok(cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
ok(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
mod = ctypes.c_void_p()
ok(cu.cuModuleLoadData(ctypes.byref(mod), b"cache test"), "cuModuleLoadData")
fn = ctypes.c_void_p()
ok(cu.cuModuleGetFunction(ctypes.byref(fn), mod, b"sleep_300"), "cuModuleGetFunction")
for lib in (cu, cu_gil):
    lib.cuLaunchKernel.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 7 + [ctypes.c_void_p] * 3

def burst(lib, ctx_sync=True):
    for _ in range(30):
        ok(lib.cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, None, None, None), "cuLaunchKernel")
    if ctx_sync:
        ok(cu.cuCtxSynchronize(), "cuCtxSynchronize")
    else:  # legal during a capture of a non-blocking stream (cuCtxSynchronize never is)
        ok(cu.cuStreamSynchronize(None), "cuStreamSynchronize")

def wait_for_empty(n, what):
    wait_for(lambda: len(calls) > n, what)

if expect == "none":
    for i in range(3):
        burst(cu_gil if i % 2 else cu)
        log("burst")
        time.sleep(0.4)  # idle release, then well past GEMINI_EMPTY_CACHE_MS
    if calls:
        sys.exit(4)
elif expect == "exit":
    burst(cu)
    wait_for_empty(0, "empty")
    sys.exit(0)  # the interpreter finishes while the emptier is inside empty_cache()
elif expect == "gil":
    burst(cu)
    wait_for_empty(0, "first-empty")
    # The program keeps the GIL from the next release on (switch interval 10 s, no call that
    # releases it): the emptier waits for it while the program launches again, blocking at the
    # gate with the GIL held, and gets it only once the program sleeps.
    sys.setswitchinterval(10.0)
    burst(cu)
    spin_end = time.monotonic() + 1.5
    while time.monotonic() < spin_end:
        pass
    for _ in range(30):
        ok(cu_gil.cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, None, None, None), "cuLaunchKernel")
    ok(cu_gil.cuCtxSynchronize(), "cuCtxSynchronize")
    t = now_us()
    sys.setswitchinterval(0.005)
    log("gil_released")
    wait_for_empty(1, "empty-after-gil")  # for the release after the gated launches
    time.sleep(0.3)
    if calls[1] < t or len(calls) != 2:
        sys.exit(4)
else:
    # Each idle release is followed by one emptying, also after launches that held the GIL at the gate.
    for i in range(3):
        n = len(calls)
        burst(cu_gil if i % 2 else cu)
        log("burst")
        wait_for_empty(n, "empty-%d" % i)
    n = len(calls)
    time.sleep(0.5)  # no release, no emptying
    if len(calls) != n:
        sys.exit(4)
    # A release while a capture is in progress is not emptied until the capture ends. The captured
    # stream is non-blocking, so the legacy stream's launches and synchronisation are legal during
    # the capture (with a blocking one they would invalidate it).
    stream = ctypes.c_void_p()
    ok(cu.cuStreamCreate(ctypes.byref(stream), 1), "cuStreamCreate")  # CU_STREAM_NON_BLOCKING
    ok(cu.cuStreamBeginCapture_v2(stream, 2), "cuStreamBeginCapture_v2")  # relaxed mode
    log("capture_begin")
    t = now_us()
    burst(cu, ctx_sync=False)  # on the legacy stream, not captured
    log("burst")
    wait_for(lambda: released_since(t), "release-in-capture")
    time.sleep(0.5)  # well past GEMINI_EMPTY_CACHE_MS after that release
    log("capture_end")
    graph = ctypes.c_void_p()
    ok(cu.cuStreamEndCapture(stream, ctypes.byref(graph)), "cuStreamEndCapture")
    wait_for_empty(n, "empty-after-capture")  # no launch since: the release held back
print(json.dumps({"empties": len(calls)}))
)PY";

struct Event {
  std::string what;
  Micros at = 0;
};

std::vector<Event> read_events(const std::string& path) {
  std::vector<Event> out;
  std::istringstream in(read_text(path));
  Event e;
  while (in >> e.what >> e.at) out.push_back(e);
  return out;
}

std::string describe(const std::vector<Event>& evs) {
  std::string s;
  for (const Event& e : evs) s += "  " + e.what + " " + std::to_string(e.at) + "\n";
  return s;
}

class CacheEmptyTest : public GemTest {
 protected:
  void SetUp() override {
    GemTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_EQ(access(kPython, X_OK), 0) << kPython << " missing";
    write_text(path("cache_prog.py"), kProgram);
    // A `torch` package that leaves a mark if anything imports it.
    ASSERT_EQ(mkdir(path("trap").c_str(), 0755), 0);
    ASSERT_EQ(mkdir(path("trap/torch").c_str(), 0755), 0);
    write_text(path("trap/torch/__init__.py"), "open(" + nlohmann::json(path("torch-imported")).dump() + ", 'w').close()\n");
    write_config({{"cache", 1.0, 1.0}});
    start_scheduler();
    start_pod_manager("cache");
  }

  /// The Python program under the hook as client "cache"; `empty_cache`: GEMINI_EMPTY_CACHE or
  /// empty for unset.
  App& start_python(const std::string& mode, const std::string& expect, const std::string& events,
                    const std::string& empty_cache, const std::map<std::string, std::string>& env = {}) {
    AppOptions a;
    a.client = "cache";
    a.command = {kPython, path("cache_prog.py"), mode, expect, path(events), path("stats.json"), path("trap")};
    if (!empty_cache.empty()) a.env["GEMINI_EMPTY_CACHE"] = empty_cache;
    a.env["GEMINI_EMPTY_CACHE_MS"] = "50";
    for (const auto& [k, v] : env) a.env[k] = v;
    if (sanitized()) a.env["ASAN_OPTIONS"] = "verify_asan_link_order=0:detect_leaks=0";  // python is not ASan-built
    return start_app(a);
  }

  void expect_exit_ok(App& app, double seconds) {
    const auto st = app.proc->wait_for(seconds);
    ASSERT_TRUE(st.has_value()) << "still running after " << seconds << " s\n" << tail(app.err_path);
    EXPECT_TRUE(exited_ok(*st)) << describe_status(*st) << "\n" << tail(app.err_path) << tail(app.out_path);
  }
};

TEST_F(CacheEmptyTest, EmptiedAfterIdleReleasesNeverDuringCapture) {
  App& app = start_python("torch", "empty", "events", "1");
  expect_exit_ok(app, 60 * slack());
  const auto evs = read_events(path("events"));
  Micros begin = 0, end = 0;
  int empties = 0, in_capture = 0, after_capture = 0;
  for (const Event& e : evs) {
    if (e.what == "capture_begin") begin = e.at;
    if (e.what == "capture_end") end = e.at;
  }
  for (const Event& e : evs) {
    if (e.what != "empty") continue;
    ++empties;
    if (e.at >= begin && e.at <= end) ++in_capture;
    if (e.at > end) ++after_capture;
  }
  ASSERT_GT(begin, 0) << describe(evs);
  ASSERT_GT(end, begin) << describe(evs);
  EXPECT_EQ(empties, 4) << "one per idle release: three bursts and the one held back by the capture\n"
                        << describe(evs);
  EXPECT_EQ(in_capture, 0) << describe(evs);
  EXPECT_EQ(after_capture, 1) << describe(evs);
  const auto hs = app.hook_stats();
  EXPECT_EQ(hs.value("cache_empties", -1LL), empties) << hs.dump();
  EXPECT_GE(hs.value("tokens", 0LL), 4) << hs.dump();
  EXPECT_EQ(hs.value("unthrottled_launches", -1LL), 0) << hs.dump();
  stop_daemons_expect_clean();
}

TEST_F(CacheEmptyTest, NoCallWithoutTorchNorByDefault) {
  // torch never imported: no call, no import, no crash.
  App& plain = start_python("plain", "none", "events-plain", "1");
  expect_exit_ok(plain, 60 * slack());
  // torch imported, GEMINI_EMPTY_CACHE unset (and no unified-memory mode): off.
  App& off = start_python("torch", "none", "events-off", "");
  expect_exit_ok(off, 60 * slack());
  EXPECT_NE(access(path("torch-imported").c_str(), F_OK), 0) << "something imported torch";
  for (App* app : {&plain, &off}) {
    const auto hs = app->hook_stats();
    EXPECT_EQ(hs.value("cache_empties", -1LL), 0) << hs.dump();
    EXPECT_GE(hs.value("tokens", 0LL), 3) << hs.dump();
  }
  for (const char* f : {"events-plain", "events-off"}) {
    for (const Event& e : read_events(path(f))) EXPECT_NE(e.what, "empty") << f;
  }
  stop_daemons_expect_clean();
}

// The emptier waits for the GIL while the program holds it, also while the program is blocked at
// the launch gate with it (as PyTorch's launches are): the token comes regardless, and once the
// emptier has the GIL it sees the client took the token again and leaves that release alone.
TEST_F(CacheEmptyTest, GilHeldAtTheGateBlocksNothing) {
  App& app = start_python("torch", "gil", "events", "1", {{"GEMINI_LOG_LEVEL", "debug"}});
  expect_exit_ok(app, 60 * slack());
  EXPECT_NE(read_text(app.err_path).find("not emptied: the client took or asked for the token while the GIL was awaited"),
            std::string::npos)
      << tail(app.err_path);
  EXPECT_EQ(app.hook_stats().value("cache_empties", -1LL), 2) << app.hook_stats().dump();
  EXPECT_EQ(app.hook_stats().value("unthrottled_launches", -1LL), 0) << app.hook_stats().dump();
  stop_daemons_expect_clean();
}

// The interpreter's exit waits (GIL released) for an emptying in progress, which then finishes: the
// emptier never takes the GIL from a finalising interpreter (CPython would end its thread).
TEST_F(CacheEmptyTest, ExitWhileEmptyingWaitsForIt) {
  App& app = start_python("slow", "exit", "events", "1");
  expect_exit_ok(app, 60 * slack());
  std::vector<std::string> seen;
  for (const Event& e : read_events(path("events"))) {
    if (e.what != "burst") seen.push_back(e.what);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"empty", "empty_done"})) << read_text(path("events"));
  EXPECT_EQ(app.hook_stats().value("cache_empties", -1LL), 1) << app.hook_stats().dump();
  stop_daemons_expect_clean();
}

TEST_F(CacheEmptyTest, CudaProgramWithoutPythonRunsAsBefore) {
  AppOptions a;
  a.client = "cache";
  a.command = {bin("fake-cuda/fake-cuda-app"), "--seconds", "2", "--kernel_us", "200", "--idle_ms_every", "40:100"};
  a.env["GEMINI_EMPTY_CACHE"] = "1";
  App& app = start_app(a);
  wait_apps(2 + 20 * slack());
  const auto res = app.result();
  const auto hs = app.hook_stats();
  ASSERT_TRUE(res.contains("launches")) << read_text(app.out_path);
  EXPECT_EQ(hs["launches"].value("cuLaunchKernel", -1LL), res["launches"].get<long long>()) << hs.dump();
  EXPECT_GE(hs.value("tokens", 0LL), 3) << "idle releases between the pauses: " << hs.dump();
  EXPECT_EQ(hs.value("cache_empties", -1LL), 0) << hs.dump();
  EXPECT_EQ(hs.value("unthrottled_launches", -1LL), 0) << hs.dump();
  stop_daemons_expect_clean();
}

}  // namespace
}  // namespace gemtest
