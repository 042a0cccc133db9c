// ConfigWatcher against real files in a temporary directory, for each way a config gets updated.
// A change must come through the inotify fd: check() is called only when poll() says it is
// readable, so a broken watch fails the test instead of being hidden by the timer fallback.
#include "../../scheduler/config_watcher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

namespace gem::sched {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "gem-cfgwatch-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Truncate + write through the same inode, as `echo > f` does.
void write_in_place(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ASSERT_EQ(close(fd), 0);
}

// What an editor's atomic save does: a new inode renamed over the old name.
void write_by_rename(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp~";
  write_in_place(tmp, text);
  ASSERT_EQ(rename(tmp.c_str(), path.c_str()), 0);
}

// Waits until the fd says readable and check() reports a change. Returns false at the deadline.
bool wait_change(ConfigWatcher& w, std::string* text, int timeout_ms = 1000) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() < 0) return false;
    pollfd p{w.fd(), POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0 && w.check(text)) return true;
  }
}

class ConfigWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()) << "mkdtemp failed"; }

  // Starts a watcher on `path` and consumes the first report, which must be `initial`.
  void start(ConfigWatcher& w, const std::string& initial) {
    std::string err;
    ASSERT_TRUE(w.start(&err)) << err;
    ASSERT_GE(w.fd(), 0);
    std::string text;
    ASSERT_TRUE(w.check(&text)) << w.last_error();
    ASSERT_EQ(text, initial);
    ASSERT_FALSE(w.check(&text)) << "unchanged file reported again";
  }

  TempDir dir_;
};

TEST_F(ConfigWatcherTest, InPlaceWrite) {
  std::string path = dir_ / "resource-config.txt";
  write_in_place(path, "one\n");
  ConfigWatcher w(path);
  start(w, "one\n");
  write_in_place(path, "two\n");
  std::string text;
  ASSERT_TRUE(wait_change(w, &text));
  EXPECT_EQ(text, "two\n");
  write_in_place(path, "three, longer\n");
  ASSERT_TRUE(wait_change(w, &text));
  EXPECT_EQ(text, "three, longer\n");
}

TEST_F(ConfigWatcherTest, RenameOver) {
  std::string path = dir_ / "resource-config.txt";
  write_in_place(path, "one\n");
  ConfigWatcher w(path);
  start(w, "one\n");
  write_by_rename(path, "two\n");
  std::string text;
  ASSERT_TRUE(wait_change(w, &text));
  EXPECT_EQ(text, "two\n");
  write_by_rename(path, "three\n");  // the watch must not have followed the old inode
  ASSERT_TRUE(wait_change(w, &text));
  EXPECT_EQ(text, "three\n");

  // `mv /elsewhere/new resource-config.txt`: the only event in the directory is IN_MOVED_TO.
  TempDir other;
  ASSERT_FALSE(other.path().empty());
  write_in_place(other / "new", "four\n");
  if (rename((other / "new").c_str(), path.c_str()) != 0)
    GTEST_SKIP() << "temp dirs on two file systems";
  ASSERT_TRUE(wait_change(w, &text));
  EXPECT_EQ(text, "four\n");
}

TEST_F(ConfigWatcherTest, SameContentIsNotAChange) {
  std::string path = dir_ / "resource-config.txt";
  write_in_place(path, "same\n");
  ConfigWatcher w(path);
  start(w, "same\n");

  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), nullptr, 0), 0);  // touch
  pollfd p{w.fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 1000), 1) << "touch raised no event: the test would prove nothing";
  std::string text;
  EXPECT_FALSE(w.check(&text));

  write_in_place(path, "same\n");
  write_by_rename(path, "same\n");
  write_in_place(dir_ / "unrelated", "x");
  EXPECT_FALSE(wait_change(w, &text, 200)) << "reported: " << text;
  EXPECT_EQ(w.last_error(), "");
}

TEST_F(ConfigWatcherTest, DeletedThenRecreated) {
  std::string path = dir_ / "resource-config.txt";
  write_in_place(path, "one\n");
  ConfigWatcher w(path);
  start(w, "one\n");

  ASSERT_EQ(unlink(path.c_str()), 0);
  pollfd p{w.fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 1000), 1);
  std::string text;
  EXPECT_FALSE(w.check(&text));
  EXPECT_NE(w.last_error().find("No such file"), std::string::npos) << w.last_error();

  // Back with the same bytes: nothing to reload.
  write_in_place(path, "one\n");
  EXPECT_FALSE(wait_change(w, &text, 200));
  EXPECT_EQ(w.last_error(), "");

  ASSERT_EQ(unlink(path.c_str()), 0);
  write_in_place(path, "two\n");
  ASSERT_TRUE(wait_change(w, &text));
  EXPECT_EQ(text, "two\n");
}

TEST_F(ConfigWatcherTest, EmptyFileIsNotReported) {
  std::string path = dir_ / "resource-config.txt";
  write_in_place(path, "one\n");
  ConfigWatcher w(path);
  start(w, "one\n");
  ASSERT_EQ(truncate(path.c_str(), 0), 0);  // what a reader may see mid in-place write
  std::string text;
  EXPECT_FALSE(wait_change(w, &text, 200));
  EXPECT_NE(w.last_error().find("is empty"), std::string::npos) << w.last_error();
  write_in_place(path, "two\n");
  ASSERT_TRUE(wait_change(w, &text));
  EXPECT_EQ(text, "two\n");
}

// kubelet's AtomicWriter: files live in a timestamped directory, `..data` points at it, and the
// user-visible name points through `..data`. An update builds a new directory, points
// `..data_tmp` at it, renames `..data_tmp` over `..data`, then deletes the old directory.
TEST_F(ConfigWatcherTest, KubernetesConfigMapSwap) {
  const std::string d = dir_.path();
  ASSERT_EQ(mkdir((d + "/..2026_11_21_10_00_00.1").c_str(), 0755), 0);
  write_in_place(d + "/..2026_11_21_10_00_00.1/resource-config.txt", "one\n");
  ASSERT_EQ(symlink("..2026_11_21_10_00_00.1", (d + "/..data").c_str()), 0);
  ASSERT_EQ(symlink("..data/resource-config.txt", (d + "/resource-config.txt").c_str()), 0);

  ConfigWatcher w(d + "/resource-config.txt");
  start(w, "one\n");

  auto swap = [&](const std::string& old_dir, const std::string& new_dir, const std::string& text) {
    ASSERT_EQ(mkdir((d + "/" + new_dir).c_str(), 0755), 0);
    write_in_place(d + "/" + new_dir + "/resource-config.txt", text);
    ASSERT_EQ(symlink(new_dir.c_str(), (d + "/..data_tmp").c_str()), 0);
    ASSERT_EQ(rename((d + "/..data_tmp").c_str(), (d + "/..data").c_str()), 0);
    fs::remove_all(d + "/" + old_dir);
  };

  std::string text;
  swap("..2026_11_21_10_00_00.1", "..2026_11_21_10_05_00.2", "two\n");
  ASSERT_TRUE(wait_change(w, &text));
  EXPECT_EQ(text, "two\n");
  swap("..2026_11_21_10_05_00.2", "..2026_11_21_10_10_00.3", "three\n");
  ASSERT_TRUE(wait_change(w, &text));
  EXPECT_EQ(text, "three\n");
  EXPECT_FALSE(wait_change(w, &text, 100)) << "reported twice: " << text;
}

// A path that is a symlink into another directory: in-place writes there raise no event in the
// path's own directory, so the watcher must watch the target's directory too.
TEST_F(ConfigWatcherTest, SymlinkIntoOtherDirectory) {
  ASSERT_EQ(mkdir((dir_ / "etc").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((dir_ / "real").c_str(), 0755), 0);
  write_in_place(dir_ / "real/cfg", "one\n");
  ASSERT_EQ(symlink("../real/cfg", (dir_ / "etc/resource-config.txt").c_str()), 0);
  ConfigWatcher w(dir_ / "etc/resource-config.txt");
  start(w, "one\n");
  write_in_place(dir_ / "real/cfg", "two\n");
  std::string text;
  ASSERT_TRUE(wait_change(w, &text));
  EXPECT_EQ(text, "two\n");
}

TEST_F(ConfigWatcherTest, DirectoryCreatedAfterStart) {
  std::string path = dir_ / "later/resource-config.txt";
  ConfigWatcher w(path);
  std::string err;
  EXPECT_FALSE(w.start(&err));
  EXPECT_NE(err.find("later"), std::string::npos) << err;
  ASSERT_GE(w.fd(), 0);
  std::string text;
  EXPECT_FALSE(w.check(&text));  // retries the watch, still missing
  EXPECT_NE(w.last_error().find("No such file"), std::string::npos) << w.last_error();

  ASSERT_EQ(mkdir((dir_ / "later").c_str(), 0755), 0);
  write_in_place(path, "one\n");
  ASSERT_TRUE(w.check(&text));  // the timer's call; adds the watch
  EXPECT_EQ(text, "one\n");
  write_in_place(path, "two\n");
  ASSERT_TRUE(wait_change(w, &text));
  EXPECT_EQ(text, "two\n");
}

TEST_F(ConfigWatcherTest, WorksWithoutInotifyThroughCheck) {
  std::string path = dir_ / "resource-config.txt";
  ConfigWatcher w(path);  // never started: the timer-only mode
  EXPECT_EQ(w.fd(), -1);
  std::string text;
  EXPECT_FALSE(w.check(&text));
  write_in_place(path, "one\n");
  ASSERT_TRUE(w.check(&text));
  EXPECT_EQ(text, "one\n");
  EXPECT_FALSE(w.check(&text));
  write_by_rename(path, "two\n");
  ASSERT_TRUE(w.check(&text));
  EXPECT_EQ(text, "two\n");
}

TEST_F(ConfigWatcherTest, ReadFileRefusesNonRegularFiles) {
  std::string fifo = dir_ / "fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  std::string out, err;
  EXPECT_FALSE(read_file(fifo, &out, &err));  // must not block waiting for a writer
  EXPECT_EQ(err, fifo + " is not a regular file");
  EXPECT_FALSE(read_file(dir_.path(), &out, &err));
  EXPECT_EQ(err, dir_.path() + " is not a regular file");
  EXPECT_FALSE(read_file(dir_ / "missing", &out, &err));
  EXPECT_EQ(err, "open " + (dir_ / "missing") + ": No such file or directory");
}

TEST_F(ConfigWatcherTest, ReadFileWholeContents) {
  std::string big(100000, 'x');
  big += "end";
  write_in_place(dir_ / "big", big);
  std::string out, err;
  ASSERT_TRUE(read_file(dir_ / "big", &out, &err)) << err;
  EXPECT_EQ(out, big);
}

}  // namespace
}  // namespace gem::sched
