// The non-template parts of FileLoader (file_loader.h): eventfds and the worker's wait.
#include "file_loader.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace gem::sched::file_loader {

bool make_fds(int* event_fd, int* stop_fd, std::string* err) {
  *event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  *stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (*event_fd < 0 || *stop_fd < 0) {
    *err = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  return true;
}

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

bool wait(int stop_fd, int watch_fd) {
  pollfd fds[2] = {{stop_fd, POLLIN, 0}, {watch_fd, POLLIN, 0}};
  const int n = poll(fds, watch_fd >= 0 ? 2 : 1, kCheckPeriodMs);
  if (n < 0 && errno != EINTR) {
    // Cannot happen with valid fds; do not spin.
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  return n > 0 && fds[0].revents != 0;
}

void close_fd(int fd) {
  if (fd >= 0) close(fd);
}

}  // namespace gem::sched::file_loader
