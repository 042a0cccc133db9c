// The hook's record of stream captures and thread capture modes (hook/capture_state.h), without a
// driver: captures are noted as its GEM_WRAP bodies note them, from real threads, and what each
// thread may do is read back. The driver calls capture_state.cpp makes are left unresolved (null),
// as they are before the hook finds a driver.
#include "../../hook/capture_state.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "../../hook/symbols.h"

// The real-driver pointers capture_state.cpp refers to (hook/symbols.cpp defines them in the hook).
namespace gem::hook::real {
decltype(&::cuStreamIsCapturing) cuStreamIsCapturing = nullptr;
decltype(&::cuStreamIsCapturing_ptsz) cuStreamIsCapturing_ptsz = nullptr;
decltype(&::cuThreadExchangeStreamCaptureMode) cuThreadExchangeStreamCaptureMode = nullptr;
}  // namespace gem::hook::real

namespace gem::hook {
namespace {

CUstream stream(uintptr_t n) { return reinterpret_cast<CUstream>(n * 16); }

// Runs f on a new thread (its capture mode GLOBAL, as every thread starts) and waits for it.
template <typename F>
void on_thread(F&& f) {
  std::thread t(std::forward<F>(f));
  t.join();
}

// Each test leaves no capture behind: the record is process-wide.
class CaptureState : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(active_captures(), 0) << "a test left a capture counted"; }
};

TEST_F(CaptureState, NothingCapturedAllowsEverything) {
  EXPECT_FALSE(capture_in_progress());
  const CaptureView v = capture_view();
  EXPECT_EQ(v.active, 0);
  for (HookCall c : {HookCall::kContextSync, HookCall::kLegacyStream, HookCall::kUnsafe, HookCall::kMemoryMove}) {
    EXPECT_TRUE(hook_may(c));
  }
  // The legacy stream is never captured: no driver call is needed to say so.
  EXPECT_FALSE(stream_captures(nullptr, false));
}

TEST_F(CaptureState, AnotherThreadsGlobalCaptureBindsGlobalThreadsOnly) {
  const int slot = capture_begin_note(stream(1), false, CU_STREAM_CAPTURE_MODE_GLOBAL);
  capture_begun(slot, true);
  EXPECT_EQ(active_captures(), 1);
  on_thread([] {
    const CaptureView v = capture_view();
    EXPECT_EQ(v.active, 1);
    EXPECT_EQ(v.own_strict, 0);
    EXPECT_EQ(v.others_global, 1);
    EXPECT_FALSE(hook_may(HookCall::kUnsafe)) << "a GLOBAL thread beside a GLOBAL capture";
    EXPECT_FALSE(hook_may(HookCall::kContextSync));
    thread_mode_set(CU_STREAM_CAPTURE_MODE_RELAXED);  // as cuThreadExchangeStreamCaptureMode noted
    EXPECT_TRUE(hook_may(HookCall::kUnsafe));
    EXPECT_FALSE(hook_may(HookCall::kContextSync)) << "illegal in every mode";
  });
  // The capturing thread itself: its own GLOBAL capture binds it until it switches to RELAXED.
  EXPECT_EQ(capture_view().own_strict, 1);
  EXPECT_FALSE(hook_may(HookCall::kUnsafe));
  thread_mode_set(CU_STREAM_CAPTURE_MODE_RELAXED);
  EXPECT_TRUE(hook_may(HookCall::kUnsafe));
  thread_mode_set(CU_STREAM_CAPTURE_MODE_GLOBAL);
  capture_ended(stream(1), false);
  EXPECT_FALSE(capture_in_progress());
}

TEST_F(CaptureState, ThreadLocalAndRelaxedCapturesLeaveOtherThreadsFree) {
  // Threads are told apart by pthread_self(), which a new thread may reuse once one has exited:
  // the second capturing thread runs while the first is still alive.
  on_thread([] {
    capture_begun(capture_begin_note(stream(2), false, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), true);
    EXPECT_FALSE(hook_may(HookCall::kUnsafe)) << "its own THREAD_LOCAL capture binds the thread";
    on_thread([] {
      capture_begun(capture_begin_note(stream(3), false, CU_STREAM_CAPTURE_MODE_RELAXED), true);
      EXPECT_TRUE(hook_may(HookCall::kUnsafe)) << "a RELAXED capture binds nobody, nor does another's THREAD_LOCAL";
    });
  });
  const CaptureView v = capture_view();
  EXPECT_EQ(v.active, 2);
  EXPECT_EQ(v.others_global, 0);
  EXPECT_TRUE(hook_may(HookCall::kUnsafe));
  EXPECT_FALSE(hook_may(HookCall::kMemoryMove)) << "memory stays put while anything captures";
  capture_ended(stream(2), false);
  capture_ended(stream(3), false);
}

TEST_F(CaptureState, ARefusedBeginIsTakenBack) {
  const int slot = capture_begin_note(stream(4), false, CU_STREAM_CAPTURE_MODE_GLOBAL);
  EXPECT_TRUE(capture_in_progress()) << "counted from just before the begin call";
  capture_begun(slot, false);
  EXPECT_FALSE(capture_in_progress());
}

TEST_F(CaptureState, APerThreadStreamCaptureEndsOnItsOwnThreadOnly) {
  capture_begun(capture_begin_note(nullptr, true, CU_STREAM_CAPTURE_MODE_GLOBAL), true);
  on_thread([] { capture_ended(nullptr, true); });  // another thread's per-thread stream: not this one
  EXPECT_EQ(active_captures(), 1);
  capture_ended(CU_STREAM_PER_THREAD, false);  // the same stream, named the other way
  EXPECT_EQ(active_captures(), 0);
}

TEST_F(CaptureState, MoreCapturesThanTrackedCountAsGlobalOnOtherThreads) {
  for (int i = 0; i < kMaxCaptures + 3; ++i) capture_begun(capture_begin_note(stream(100 + i), false, CU_STREAM_CAPTURE_MODE_RELAXED), true);
  const CaptureView v = capture_view();
  EXPECT_EQ(v.active, kMaxCaptures + 3);
  EXPECT_EQ(v.others_global, 3) << "untracked ones read the strictest way";
  for (int i = 0; i < kMaxCaptures + 3; ++i) capture_ended(stream(100 + i), false);
  EXPECT_EQ(active_captures(), 0);
}

// A capture cannot begin while a call the rule allowed is running: it would be invalidated by it.
TEST_F(CaptureState, ABeginWaitsForAnAllowedCallInProgress) {
  std::atomic<bool> inside{false}, call_done{false}, begun{false};
  std::thread caller([&] {
    const bool ran = with_capture_rule(HookCall::kContextSync, [&] {
      inside = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      call_done = true;
    });
    EXPECT_TRUE(ran);
  });
  while (!inside) std::this_thread::yield();
  const int slot = capture_begin_note(stream(5), false, CU_STREAM_CAPTURE_MODE_GLOBAL);
  begun = true;
  EXPECT_TRUE(call_done) << "the begin was counted while the allowed call still ran";
  caller.join();
  // And once counted, the same call is refused.
  EXPECT_FALSE(with_capture_rule(HookCall::kContextSync, [] { ADD_FAILURE() << "ran during a capture"; }));
  capture_begun(slot, true);
  capture_ended(stream(5), false);
}

}  // namespace
}  // namespace gem::hook
