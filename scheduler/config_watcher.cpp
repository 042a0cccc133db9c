#include "config_watcher.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

namespace gem::sched {

namespace {

// Everything that can change what the path resolves to or what the file holds. IN_ATTRIB covers
// `touch` and chmod (a file that becomes readable); IN_DELETE/IN_MOVED_FROM let check() notice a
// missing file promptly.
constexpr uint32_t kMask = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY | IN_DELETE |
                           IN_MOVED_FROM | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

std::string errno_text(const std::string& what, const std::string& path, int e) {
  return what + " " + path + ": " + strerror(e);
}

std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// realpath() or "" when it cannot be resolved.
std::string resolve(const std::string& path) {
  char* r = realpath(path.c_str(), nullptr);
  if (r == nullptr) return {};
  std::string s(r);
  free(r);
  return s;
}

}  // namespace

bool read_file(const std::string& path, std::string* out, std::string* err, size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not hang the scheduler; fstat below then rejects it.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    *err = errno_text("open", path, errno);
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    *err = errno_text("stat", path, errno);
    close(fd);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *err = path + " is not a regular file";
    close(fd);
    return false;
  }
  auto too_large = [&] {
    *err = path + " is larger than " + std::to_string(max_bytes) + " bytes (" +
           std::to_string(max_bytes >> 20) + " MiB), the most gem-schd reads";
    close(fd);
    return false;
  };
  // Refused before reading when it says so; the read below still stops at the cap if it grows.
  if (st.st_size > static_cast<off_t>(max_bytes)) return too_large();
  out->clear();
  // One allocation for the whole file (plus one byte to see the end without a second grow).
  out->resize(static_cast<size_t>(st.st_size) + 1);
  size_t have = 0;
  for (;;) {
    if (have == out->size()) {
      if (out->size() > max_bytes) {
        out->clear();
        return too_large();
      }
      out->resize(std::min<size_t>(out->size() * 2 + 4096, max_bytes + 1));
    }
    ssize_t n = read(fd, &(*out)[have], out->size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = errno_text("read", path, errno);
      close(fd);
      return false;
    }
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  if (have > max_bytes) return too_large();
  out->resize(have);
  close(fd);
  return true;
}

ConfigWatcher::ConfigWatcher(std::string path, size_t max_bytes)
    : path_(std::move(path)), max_bytes_(max_bytes), dir_(dir_of(path_)) {}

ConfigWatcher::~ConfigWatcher() {
  if (fd_ >= 0) close(fd_);  // drops the watches too
}

bool ConfigWatcher::start(std::string* err) {
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) {
    *err = std::string("inotify_init1: ") + strerror(errno) + "; checking " + path_ +
           " on a timer only";
    return false;
  }
  dir_wd_ = inotify_add_watch(fd_, dir_.c_str(), kMask);
  if (dir_wd_ < 0) {
    *err = errno_text("inotify_add_watch", dir_, errno) + "; checking " + path_ +
           " on a timer until it works";
    return false;
  }
  return true;
}

void ConfigWatcher::drain() {
  // Large enough for many events per read(); aligned as inotify_event requires.
  alignas(struct inotify_event) char buf[16 * (sizeof(struct inotify_event) + NAME_MAX + 1)];
  for (;;) {
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EAGAIN: drained
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(p);
      p += sizeof(struct inotify_event) + ev->len;
      // The names do not matter: check() re-reads on any event. Only broken watches do.
      if (ev->wd == dir_wd_ && (ev->mask & (IN_IGNORED | IN_MOVE_SELF))) {
        // The directory was removed or renamed away: watch whatever the path names next.
        if (ev->mask & IN_MOVE_SELF) inotify_rm_watch(fd_, dir_wd_);
        if (target_wd_ == dir_wd_) target_wd_ = -1;
        dir_wd_ = -1;
      } else if (ev->wd == target_wd_ && (ev->mask & (IN_IGNORED | IN_MOVE_SELF))) {
        // Typically kubelet deleting the old ..2026_... directory.
        if (ev->mask & IN_MOVE_SELF) inotify_rm_watch(fd_, target_wd_);
        target_wd_ = -1;
        target_dir_.clear();
      }
    }
  }
}

// When the path is a symlink into another directory (not the ConfigMap case: there the symlinks
// live in the watched directory), in-place writes to the target raise events only there.
void ConfigWatcher::watch_target_dir() {
  std::string real = resolve(path_);
  if (real.empty()) return;
  std::string target = dir_of(real);
  if (target == target_dir_) return;
  if (target_wd_ >= 0 && target_wd_ != dir_wd_) inotify_rm_watch(fd_, target_wd_);
  target_wd_ = -1;
  target_dir_.clear();
  if (target == resolve(dir_)) return;  // the directory watch already sees it
  // Re-adding an inode that is already watched returns its existing wd; the mask is the same.
  target_wd_ = inotify_add_watch(fd_, target.c_str(), kMask);
  if (target_wd_ >= 0) target_dir_ = target;
}

bool ConfigWatcher::check(std::string* new_text) {
  if (fd_ >= 0) {
    drain();
    if (dir_wd_ < 0) dir_wd_ = inotify_add_watch(fd_, dir_.c_str(), kMask);
  }
  std::string text;
  std::string err;
  if (!read_file(path_, &text, &err, max_bytes_)) {
    last_error_ = std::move(err);
    return false;
  }
  if (text.empty()) {
    last_error_ = path_ + " is empty";
    return false;
  }
  last_error_.clear();
  if (fd_ >= 0) watch_target_dir();
  if (have_text_ && text == text_) return false;
  text_ = text;
  have_text_ = true;
  *new_text = std::move(text);
  return true;
}

}  // namespace gem::sched
