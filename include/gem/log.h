// Levelled, rate-limited logging to stderr. Thread-safe. Nothing on a hot path may log.
// Level from the environment variable GEMINI_LOG_LEVEL (error, warn, info, debug; default info),
// or set_level(). Each call site prints at most kBurst lines per second; the rest are counted and
// reported as "(N messages suppressed)" with the next line that gets through. Debug lines are not
// limited: debug is asked for to trace every event.
#pragma once

#include <atomic>
#include <cstdint>

namespace gem::log {

enum class Level : int { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void set_level(Level level);
Level level();
/// Program name put in front of each line, e.g. "gem-schd". Not owned: pass a string literal.
void set_program(const char* name);

/// Per call site state for the rate limit. Zero-initialised statics; lock-free.
struct Site {
  std::atomic<int64_t> window_start_ms{0};
  std::atomic<int> count{0};
  std::atomic<int> suppressed{0};
};

constexpr int kBurst = 5;

void write(Level level, Site* site, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

}  // namespace gem::log

#define GEM_LOG(lvl, ...)                                                  \
  do {                                                                     \
    if (static_cast<int>(lvl) <= static_cast<int>(::gem::log::level())) {  \
      static ::gem::log::Site gem_log_site_;                               \
      ::gem::log::write(lvl, &gem_log_site_, __VA_ARGS__);                 \
    }                                                                      \
  } while (0)
#define LOG_ERROR(...) GEM_LOG(::gem::log::Level::kError, __VA_ARGS__)
#define LOG_WARN(...) GEM_LOG(::gem::log::Level::kWarn, __VA_ARGS__)
#define LOG_INFO(...) GEM_LOG(::gem::log::Level::kInfo, __VA_ARGS__)
#define LOG_DEBUG(...) GEM_LOG(::gem::log::Level::kDebug, __VA_ARGS__)
