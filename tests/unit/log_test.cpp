// Logging: line format, level filter, the per-site rate limit, truncation, and whole lines from
// concurrent threads. fd 2 is pointed at a temp file while a test captures it.
#include "gem/log.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace gem::log {
namespace {

class CaptureStderr {
 public:
  CaptureStderr() {
    char tmpl[] = "/tmp/gem-log-test-XXXXXX";
    fd_ = mkstemp(tmpl);
    unlink(tmpl);
    saved_ = dup(2);
    dup2(fd_, 2);
  }
  ~CaptureStderr() { restore(); }
  // Restores fd 2 and returns what was written, split into lines.
  std::vector<std::string> lines() {
    restore();
    std::string all;
    char buf[4096];
    ssize_t n;
    lseek(fd_, 0, SEEK_SET);
    while ((n = read(fd_, buf, sizeof(buf))) > 0) all.append(buf, static_cast<size_t>(n));
    std::vector<std::string> out;
    std::istringstream in(all);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    EXPECT_TRUE(all.empty() || all.back() == '\n');
    return out;
  }

 private:
  void restore() {
    if (saved_ >= 0) {
      dup2(saved_, 2);
      close(saved_);
      saved_ = -1;
    }
  }
  int fd_ = -1;
  int saved_ = -1;
};

// True when `line` starts with a timestamp like 2026-11-21T15:04:05.123Z and a space.
bool has_timestamp(const std::string& line) {
  const std::string shape = "dddd-dd-ddTdd:dd:dd.dddZ ";
  if (line.size() < shape.size()) return false;
  for (size_t i = 0; i < shape.size(); ++i) {
    bool ok = shape[i] == 'd' ? (line[i] >= '0' && line[i] <= '9') : line[i] == shape[i];
    if (!ok) return false;
  }
  return true;
}

// One call site, so every call shares one rate-limit Site.
void warn_here(int i) { LOG_WARN("repeated warning %d", i); }

TEST(Log, LineFormat) {
  set_level(Level::kInfo);
  set_program("gem-test");
  CaptureStderr cap;
  errno = EPIPE;
  LOG_WARN("disk %s at %d%%", "full", 99);
  EXPECT_EQ(errno, EPIPE);  // logging must not clobber errno
  LOG_ERROR("trailing newline dropped\n");
  std::vector<std::string> lines = cap.lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(has_timestamp(lines[0])) << lines[0];
  EXPECT_EQ(lines[0].substr(25),
            "gem-test[" + std::to_string(getpid()) + "] WARN: disk full at 99%");
  EXPECT_NE(lines[1].find(" ERROR: trailing newline dropped"), std::string::npos) << lines[1];
  EXPECT_EQ(lines[1].back(), 'd');
}

TEST(Log, LevelFilter) {
  set_level(Level::kWarn);
  CaptureStderr cap;
  LOG_DEBUG("debug hidden");
  LOG_INFO("info hidden");
  LOG_WARN("warn shown");
  LOG_ERROR("error shown");
  set_level(Level::kDebug);
  LOG_DEBUG("debug shown");
  EXPECT_EQ(level(), Level::kDebug);
  std::vector<std::string> lines = cap.lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find("warn shown"), std::string::npos);
  EXPECT_NE(lines[1].find("error shown"), std::string::npos);
  EXPECT_NE(lines[2].find("DEBUG: debug shown"), std::string::npos);
  set_level(Level::kInfo);
}

// The environment is read once, lazily; a child process gets a fresh copy of that state.
TEST(Log, LevelFromEnvironment) {
  struct Case {
    const char* value;
    Level want;
  } cases[] = {{"error", Level::kError}, {"warn", Level::kWarn}, {"debug", Level::kDebug},
               {"info", Level::kInfo},   {"bogus", Level::kInfo}, {nullptr, Level::kInfo}};
  for (const Case& c : cases) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // The parent's level is already fixed, so the child execs this binary afresh.
      setenv("GEM_LOG_TEST_CHILD", "1", 1);
      int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
      dup2(devnull, 1);
      if (c.value != nullptr) {
        setenv("GEMINI_LOG_LEVEL", c.value, 1);
      } else {
        unsetenv("GEMINI_LOG_LEVEL");
      }
      execl("/proc/self/exe", "/proc/self/exe", "--gtest_filter=Log.PrintLevelForParent",
            static_cast<char*>(nullptr));
      _exit(100);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 10 + static_cast<int>(c.want)) << (c.value ? c.value : "unset");
  }
}

// Helper for LevelFromEnvironment: reports the level through the exit status, and does nothing
// unless run in the child it starts.
TEST(Log, PrintLevelForParent) {
  if (getenv("GEM_LOG_TEST_CHILD") == nullptr) return;
  _exit(10 + static_cast<int>(level()));
}

TEST(Log, RateLimitPerSite) {
  set_level(Level::kInfo);
  CaptureStderr cap;
  for (int i = 0; i < 20; ++i) warn_here(i);
  LOG_WARN("another site is not limited");
  usleep(1100 * 1000);  // let the one-second window pass
  warn_here(20);
  warn_here(21);
  std::vector<std::string> lines = cap.lines();
  ASSERT_EQ(lines.size(), static_cast<size_t>(kBurst) + 3);
  for (int i = 0; i < kBurst; ++i) {
    EXPECT_NE(lines[i].find("repeated warning " + std::to_string(i)), std::string::npos) << lines[i];
    EXPECT_EQ(lines[i].find("suppressed"), std::string::npos) << lines[i];
  }
  EXPECT_NE(lines[kBurst].find("another site is not limited"), std::string::npos);
  std::string expect = "repeated warning 20 (" + std::to_string(20 - kBurst) +
                       " similar messages suppressed)";
  EXPECT_NE(lines[kBurst + 1].find(expect), std::string::npos) << lines[kBurst + 1];
  EXPECT_EQ(lines[kBurst + 2].find("suppressed"), std::string::npos) << lines[kBurst + 2];
}

// Debug is asked for to trace every event (a schedule's grants at tens a second): none is dropped.
void debug_here(int i) { LOG_DEBUG("repeated debug %d", i); }

TEST(Log, DebugLinesAreNotRateLimited) {
  set_level(Level::kDebug);
  CaptureStderr cap;
  for (int i = 0; i < 3 * kBurst; ++i) debug_here(i);
  std::vector<std::string> lines = cap.lines();
  set_level(Level::kInfo);
  ASSERT_EQ(lines.size(), static_cast<size_t>(3 * kBurst));
  for (int i = 0; i < 3 * kBurst; ++i) {
    EXPECT_NE(lines[i].find("repeated debug " + std::to_string(i)), std::string::npos) << lines[i];
    EXPECT_EQ(lines[i].find("suppressed"), std::string::npos) << lines[i];
  }
}

TEST(Log, LongLinesTruncated) {
  set_level(Level::kInfo);
  CaptureStderr cap;
  std::string huge(10000, 'h');
  LOG_INFO("%s", huge.c_str());
  std::vector<std::string> lines = cap.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_LE(lines[0].size() + 1, 4096u);  // one atomic write to a pipe
  EXPECT_GT(lines[0].size(), 1000u);
  EXPECT_EQ(lines[0].substr(lines[0].size() - 4), "h...");
}

// Lines from threads logging at once come out whole.
TEST(Log, ThreadsDoNotInterleave) {
  set_level(Level::kInfo);
  CaptureStderr cap;
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      Site site;  // own site per thread, so the rate limit does not drop lines
      std::string body(1500, static_cast<char>('a' + t));
      for (int i = 0; i < kBurst; ++i) write(Level::kInfo, &site, "T%d %s END", t, body.c_str());
    });
  }
  for (auto& th : threads) th.join();
  std::vector<std::string> lines = cap.lines();
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kBurst));
  int per_thread[kThreads] = {};
  for (const std::string& l : lines) {
    ASSERT_TRUE(has_timestamp(l)) << l.substr(0, 120);
    size_t at = l.find(" INFO: T");
    ASSERT_NE(at, std::string::npos) << l.substr(0, 120);
    int t = l[at + 8] - '0';
    ASSERT_TRUE(t >= 0 && t < kThreads) << l.substr(0, 120);
    per_thread[t]++;
    EXPECT_EQ(l.substr(at + 9), " " + std::string(1500, static_cast<char>('a' + t)) + " END");
  }
  for (int n : per_thread) EXPECT_EQ(n, kBurst);
}

}  // namespace
}  // namespace gem::log
