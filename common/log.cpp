// Logging (include/gem/log.h). Runs inside arbitrary programs via libgemhook: no allocation, no
// global constructors (all state is constant-initialised atomics), errno preserved, one write(2)
// per line so lines from several threads or processes sharing stderr never interleave.
#include "gem/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

namespace gem::log {
namespace {

constexpr int kUnset = -1;
constexpr int64_t kWindowMs = 1000;
// At most PIPE_BUF, so a write to a pipe is atomic.
constexpr size_t kLineMax = 2048;

std::atomic<int> g_level{kUnset};
std::atomic<const char*> g_program{nullptr};

int level_from_env() {
  const char* v = getenv("GEMINI_LOG_LEVEL");
  if (v == nullptr) return static_cast<int>(Level::kInfo);
  if (strcasecmp(v, "error") == 0) return static_cast<int>(Level::kError);
  if (strcasecmp(v, "warn") == 0 || strcasecmp(v, "warning") == 0) {
    return static_cast<int>(Level::kWarn);
  }
  if (strcasecmp(v, "debug") == 0) return static_cast<int>(Level::kDebug);
  return static_cast<int>(Level::kInfo);
}

const char* level_name(Level l) {
  switch (l) {
    case Level::kError: return "ERROR";
    case Level::kWarn: return "WARN";
    case Level::kInfo: return "INFO";
    case Level::kDebug: return "DEBUG";
  }
  return "?";
}

int64_t mono_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Counts this call against the site's window. Returns false when the line is to be dropped;
// otherwise *suppressed is how many were dropped since the last line that got through.
bool admit(Site* site, int* suppressed) {
  int64_t now = mono_ms();
  int64_t start = site->window_start_ms.load(std::memory_order_relaxed);
  // 0 = never used (zero-initialised static). Only the thread that moves the window resets the
  // count; a racing thread may count in the old window, which only makes the limit approximate.
  if (start == 0 || now - start >= kWindowMs) {
    if (site->window_start_ms.compare_exchange_strong(start, now == 0 ? 1 : now)) {
      site->count.store(0, std::memory_order_relaxed);
    }
  }
  if (site->count.fetch_add(1, std::memory_order_relaxed) >= kBurst) {
    site->suppressed.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  *suppressed = site->suppressed.exchange(0, std::memory_order_relaxed);
  return true;
}

// Appends with snprintf semantics but never moves *len past cap - 1.
void append(char* buf, size_t cap, size_t* len, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
void append(char* buf, size_t cap, size_t* len, const char* fmt, ...) {
  if (*len + 1 >= cap) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  *len += static_cast<size_t>(n) < cap - *len ? static_cast<size_t>(n) : cap - *len - 1;
}

}  // namespace

void set_level(Level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }

Level level() {
  int v = g_level.load(std::memory_order_relaxed);
  if (v == kUnset) {
    int from_env = level_from_env();
    // set_level() may have run meanwhile; it wins.
    if (g_level.compare_exchange_strong(v, from_env)) v = from_env;
  }
  return static_cast<Level>(v);
}

void set_program(const char* name) { g_program.store(name, std::memory_order_relaxed); }

void write(Level lvl, Site* site, const char* fmt, ...) {
  if (static_cast<int>(lvl) > static_cast<int>(level())) return;
  int saved_errno = errno;
  int suppressed = 0;
  // Debug lines are asked for (--log_level debug, GEMINI_LOG_LEVEL=debug) to trace every event, a
  // schedule's grants and releases at tens a second: they are not rate-limited.
  if (site != nullptr && lvl != Level::kDebug && !admit(site, &suppressed)) {
    errno = saved_errno;
    return;
  }

  char line[kLineMax];
  // Room kept back for the suppression note and the newline, so the message is what gets cut.
  constexpr size_t kTail = 48;
  constexpr size_t kBody = kLineMax - kTail;
  size_t len = 0;

  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  time_t secs = ts.tv_sec;
  tm t;
  gmtime_r(&secs, &t);  // gmtime, not localtime: no tzfile reads, no locks
  const char* prog = g_program.load(std::memory_order_relaxed);
  if (prog == nullptr) prog = program_invocation_short_name;
  append(line, kBody, &len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%d] %s: ", t.tm_year + 1900,
         t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
         static_cast<int>(ts.tv_nsec / 1000000), prog, static_cast<int>(getpid()),
         level_name(lvl));

  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line + len, kBody - len, fmt, ap);
  va_end(ap);
  if (n > 0) {
    if (static_cast<size_t>(n) >= kBody - len) {
      len = kBody - 1;
      memcpy(line + len - 3, "...", 3);
    } else {
      len += static_cast<size_t>(n);
    }
  }
  while (len > 0 && line[len - 1] == '\n') --len;  // callers that add their own newline
  if (suppressed > 0) {
    append(line, kLineMax, &len, " (%d similar messages suppressed)", suppressed);
  }
  line[len++] = '\n';

  const char* p = line;
  size_t left = len;
  while (left > 0) {
    ssize_t w = ::write(2, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;  // stderr closed or full: nowhere to report it
    p += w;
    left -= static_cast<size_t>(w);
  }
  errno = saved_errno;
}

}  // namespace gem::log
