#include "config_loader.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <system_error>
#include <utility>

namespace gem::sched {

namespace {

constexpr int kCheckPeriodMs = 1000;  // fallback when inotify misses an update (NFS, broken watch)

void signal_fd(int fd) {
  const uint64_t one = 1;
  while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
  // EAGAIN: the counter is saturated, so it is readable anyway.
}

void drain_fd(int fd) {
  uint64_t v;
  while (read(fd, &v, sizeof v) < 0 && errno == EINTR) {
  }
}

}  // namespace

ConfigLoader::ConfigLoader(std::string path) : path_(path), watcher_(std::move(path)) {}

ConfigLoader::~ConfigLoader() {
  if (worker_.joinable()) {
    signal_fd(stop_fd_);
    worker_.join();
  }
  if (event_fd_ >= 0) close(event_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
}

bool ConfigLoader::start(Config* initial, std::string* warning, std::string* err) {
  std::string werr;
  if (!watcher_.start(&werr)) *warning = werr;
  std::string text;
  if (!watcher_.check(&text)) {
    *err = "cannot read " + path_ + ": " + watcher_.last_error();
    return false;
  }
  ConfigError cerr;
  if (!parse_config(text, path_, initial, &cerr)) {
    *err = cerr.to_string();
    return false;
  }
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0 || stop_fd_ < 0) {
    *err = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  try {
    worker_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    *err = std::string("cannot start the config thread: ") + e.what();
    return false;
  }
  return true;
}

bool ConfigLoader::take(std::vector<ConfigUpdate>* out) {
  out->clear();
  if (event_fd_ < 0) return false;
  drain_fd(event_fd_);
  std::lock_guard<std::mutex> lock(mu_);
  out->swap(pending_);
  return !out->empty();
}

void ConfigLoader::push(ConfigUpdate u) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (u.ok) {
      // The loop has not taken the older config yet: it is superseded (and would cost memory).
      for (size_t i = pending_.size(); i-- > 0;) {
        if (pending_[i].ok) pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
      }
    } else {
      size_t errors = 0;
      for (const ConfigUpdate& p : pending_) errors += p.ok ? 0 : 1;
      for (size_t i = 0; errors >= kMaxPendingErrors && i < pending_.size();) {
        if (!pending_[i].ok) {
          pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
          --errors;
        } else {
          ++i;
        }
      }
    }
    pending_.push_back(std::move(u));
  }
  signal_fd(event_fd_);
}

void ConfigLoader::run() {
  for (;;) {
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {watcher_.fd(), POLLIN, 0}};
    const int n = poll(fds, watcher_.fd() >= 0 ? 2 : 1, kCheckPeriodMs);
    if (n < 0 && errno != EINTR) {
      // Cannot happen with valid fds; do not spin.
      struct timespec ts = {0, 100 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
    if (n > 0 && fds[0].revents != 0) return;
    try {
      std::string text;
      const std::string before = watcher_.last_error();
      if (!watcher_.check(&text)) {
        // A read error is reported when it first appears, not at every check.
        if (!watcher_.last_error().empty() && watcher_.last_error() != before) {
          push({false, Config{}, watcher_.last_error()});
        }
        continue;
      }
      ConfigUpdate u;
      ConfigError err;
      u.ok = parse_config(text, path_, &u.config, &err);
      if (!u.ok) u.error = err.to_string();
      text.clear();
      text.shrink_to_fit();
      push(std::move(u));
    } catch (const std::exception& e) {  // bad_alloc: keep serving the last good config
      try {
        push({false, Config{}, path_ + ": cannot reload: " + e.what()});
      } catch (...) {
      }
    }
  }
}

}  // namespace gem::sched
