#include "cache_emptier.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <new>

#include "cache_emptier_rule.h"
#include "capture_state.h"
#include "mem_tracker.h"
#include "gate_registry.h"
#include "gem/clock.h"
#include "gem/log.h"
#include "settings.h"
#include "stats.h"
#include "torch_cache.h"

namespace gem::hook {

namespace {

// Tokens granted in this process so far (note_token_granted()): a release is stale once a grant
// came after it. The emptier's own signal, not a statistic.
std::atomic<uint64_t> g_grants{0};

// Whether the client runs in unified-memory mode, where its cache is emptied unless
// GEMINI_EMPTY_CACHE says otherwise: as its memory sessions last heard from gem-pmgr. Called on the
// token worker at each idle release: a lock-free read.
bool unified_memory_mode() { return MemTracker::get().any_unified_memory(); }

bool wanted() { return empty_cache_wanted(settings().empty_cache, unified_memory_mode()); }

using Verdict = EmptyVerdict;

// The conditions of cache_emptier.h, for a release made when `grants` tokens had been granted.
Verdict judge(uint64_t grants) {
  if (stopping_at_exit()) return Verdict::kDrop;
  return judge_emptying(false, wanted(), grants, g_grants.load(std::memory_order_acquire), gates_quiet,
                        active_captures);
}

// Judged again with the GIL held, right before the call.
struct Recheck {
  uint64_t tokens;
  bool later = false;
  static bool still_wanted(void* p) {
    auto* r = static_cast<Recheck*>(p);
    const Verdict v = judge(r->tokens);
    r->later = v == Verdict::kLater;
    return v == Verdict::kEmpty;
  }
};

class Emptier {
 public:
  void note(uint64_t tokens, Micros now) {
    std::lock_guard<std::mutex> lk(mu_);
    if (gone_) return;
    pending_ = true;
    ++seq_;
    tokens_ = tokens;
    released_ = now;
    if (!started_ && !(started_ = start())) gone_ = true;
    cv_.notify_one();
  }

  // In a fork()ed child: the thread is the parent's; a new one starts at the child's first release.
  void reset_after_fork() {
    new (&mu_) std::mutex();
    new (&cv_) std::condition_variable();
    started_ = false;
    pending_ = false;
  }

 private:
  bool start();
  static void* thread_main(void* self);
  void run();
  /// One emptying attempt for the release made at `tokens` grants; true: look again later (a capture).
  bool attempt(uint64_t tokens);

  std::mutex mu_;
  std::condition_variable cv_;
  // Under mu_.
  bool started_ = false;
  bool gone_ = false;  // no CPython in the process: nothing to do, ever
  bool pending_ = false;
  uint64_t seq_ = 0;     // releases noted
  uint64_t tokens_ = 0;  // grants (note_token_granted()) at the last release
  Micros released_ = 0;
  Micros last_empty_ = -kEmptyMinGap;
};

Emptier& emptier() {
  static Emptier* e = new Emptier();  // never destroyed: the thread may run during exit
  return *e;
}

void after_fork_child() {
  emptier().reset_after_fork();
  torch_cache_after_fork();
}

bool Emptier::start() {
  static const bool atfork = pthread_atfork(nullptr, nullptr, after_fork_child) == 0;
  (void)atfork;
  // Signals are the program's: the thread blocks them all (as the program's threads expect).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  const int rc = pthread_create(&t, &attr, &Emptier::thread_main, this);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) LOG_WARN("cache emptier thread not started (error %d): PyTorch's cache is not emptied", rc);
  return rc == 0;
}

// No try/catch here: CPython stops a thread that takes the GIL while the interpreter finishes with
// pthread_exit, whose unwinding must pass.
void* Emptier::thread_main(void* self) {
  static_cast<Emptier*>(self)->run();
  return nullptr;
}

void Emptier::run() {
  if (!cpython_present()) {
    std::lock_guard<std::mutex> lk(mu_);
    gone_ = true;
    pending_ = false;
    return;
  }
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [this] { return pending_; });
    const Micros due = emptying_due(released_, settings().empty_cache_ms, last_empty_);
    const Micros now = mono_us();
    if (now < due) {
      cv_.wait_for(lk, std::chrono::microseconds(due - now));  // a new release moves `due`
      continue;
    }
    const uint64_t seq = seq_;
    const uint64_t tokens = tokens_;
    lk.unlock();
    const bool later = attempt(tokens);
    lk.lock();
    if (later) {
      cv_.wait_for(lk, std::chrono::microseconds(kEmptyRetry));
      continue;
    }
    if (seq_ == seq) pending_ = false;  // a release noted meanwhile gets its own attempt
  }
}

bool Emptier::attempt(uint64_t tokens) {
  const Verdict v = judge(tokens);
  if (v != Verdict::kEmpty) return v == Verdict::kLater;
  Recheck rc{tokens};
  const TorchEmpty r = empty_torch_cache(&Recheck::still_wanted, &rc);
  if (r == TorchEmpty::kCalled) {
    counters().cache_empties.fetch_add(1, std::memory_order_relaxed);
    LOG_DEBUG("emptied PyTorch's CUDA cache after an idle release");
  } else if (r == TorchEmpty::kRaised) {
    LOG_DEBUG("torch.cuda.empty_cache() raised; not retried for this release");
  } else if (r == TorchEmpty::kDeclined && !rc.later) {
    LOG_DEBUG("not emptied: the client took or asked for the token while the GIL was awaited");
  }
  if (r == TorchEmpty::kCalled || r == TorchEmpty::kRaised) {
    std::lock_guard<std::mutex> lk(mu_);
    last_empty_ = mono_us();
  }
  return r == TorchEmpty::kDeclined && rc.later;
}

}  // namespace

void note_token_granted() { g_grants.fetch_add(1, std::memory_order_acq_rel); }

void note_idle_release() {
  if (!wanted()) return;
  emptier().note(g_grants.load(std::memory_order_acquire), mono_us());
}

}  // namespace gem::hook
