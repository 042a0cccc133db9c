// Launch counters, per wrapped function: relaxed atomics, one add per launch, no lock.
// Printed at exit with GEMINI_STATS=1 and/or written as JSON to GEMINI_STATS_FILE.
#pragma once

#include <atomic>
#include <cstdint>

namespace gem::hook {

enum LaunchId : int {
#define GEM_LAUNCH(name, params, args, stream, ptsz) kId_##name,
#include "cuda_hooks.def"
  kLaunchIdCount
};

struct Counters {
  std::atomic<uint64_t> launches[kLaunchIdCount];  // launches that ran (GPU work), by entry point
  std::atomic<uint64_t> captured_launches{0};  // launches recorded into a stream capture (not run)
  std::atomic<uint64_t> capture_drains{0};     // slices ended during a capture: no drain, wall time charged
  std::atomic<uint64_t> tokens{0};               // grants received
  std::atomic<uint64_t> unthrottled_launches{0};  // launches made while no daemon answered
  std::atomic<uint64_t> revocations{0};           // tokens taken back by the scheduler (TokenRevoke)
  // Residency (unified-memory mode, docs/memory.md): Evicts acted on and what they moved to the
  // host; prefetches back before a slice, their bytes, and their durations (µs, total and max).
  std::atomic<uint64_t> evictions{0};
  std::atomic<uint64_t> evicted_bytes{0};
  std::atomic<uint64_t> prefetches{0};
  std::atomic<uint64_t> prefetched_bytes{0};
  std::atomic<uint64_t> prefetch_us_total{0};
  std::atomic<uint64_t> prefetch_us_max{0};
  std::atomic<uint64_t> cache_empties{0};         // torch.cuda.empty_cache() calls made (cache_emptier.h)
};

Counters& counters();

/// Registers the at-exit report once, if asked for in the environment.
void install_stats_report();

}  // namespace gem::hook
