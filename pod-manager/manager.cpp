// gem-pmgr's poll loop: builds the poll set, waits until the next deadline (at most 200 ms), and
// hands readable/writable sockets to the hook and scheduler handlers.
#include "manager.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "gem/log.h"

namespace gem::pmgr {

namespace {
constexpr Micros kMaxPollUs = 200000;  // the stop flag is checked at least this often
}  // namespace

bool scheduler_for(const ManagerOptions& opts, const std::string& uuid, net::Endpoint* ep, std::string* why) {
  if (!uuid.empty() && !proto::valid_gpu_uuid(uuid)) {
    *why = "device UUID '" + uuid.substr(0, 64) + (uuid.size() > 64 ? "...'" : "'") +
           " is not a GPU UUID (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)";
    return false;
  }
  if (opts.scheduler_dir.empty() || uuid.empty()) {
    *ep = opts.scheduler;
  } else {
    *ep = net::Endpoint{};
    ep->unix_path = opts.scheduler_dir + "/" + uuid + ".sock";
  }
  return true;
}

Manager::Manager(ManagerOptions opts) : opts_(std::move(opts)), gang_(opts_.gang_window) {}

Manager::~Manager() {
  for (auto& [key, s] : scheds_) close_sched(s);
}

void Manager::start(int listen_fd, bool is_unix) {
  listener_ = std::make_unique<Listener>(listen_fd, is_unix, opts_.listener);
}

void Manager::run(const volatile bool* stop) {
  while (!*stop) {
    tick(mono_us());
    if (endpoint_ != nullptr && endpoint_->wanted()) publish_metrics();
    build_poll_set(mono_us());
    const int rc = poll(fds_.data(), fds_.size(), poll_timeout_ms(mono_us()));
    if (rc < 0 && errno != EINTR) {
      LOG_ERROR("poll: %s", std::strerror(errno));
      poll(nullptr, 0, static_cast<int>(kMaxPollUs / 1000));  // never spin, whatever poll says
      continue;
    }
    for (size_t i = 0; i < fds_.size() && rc > 0; ++i) {
      if (fds_[i].revents != 0) dispatch(fds_[i], slots_[i]);
    }
  }
}

void Manager::tick(Micros now) {
  for (auto& [key, s] : scheds_) {
    Actions acts;
    s.route.tick(now, &acts);
    push(key, std::move(acts));
  }
  run_actions();
  update_gang(now);
  // Connections that never said Hello hold a slot of the cap: not for long.
  std::vector<HookId> late;
  for (const auto& [id, h] : hooks_) {
    if (!h.hello && now - h.peer->created() >= opts_.hook_hello_timeout) late.push_back(id);
  }
  for (HookId id : late) drop_hook(id, "no Hello within " + std::to_string(opts_.hook_hello_timeout / 1000) + " ms");
  // A route nobody uses any more, with nothing in flight, is forgotten (routes are capped). Only
  // here, where no handler holds a reference to one.
  for (auto it = scheds_.begin(); it != scheds_.end();) {
    const Route& r = it->second.route;
    if (r.hook_count() == 0 && r.state() == Route::State::kDisconnected && !r.token().held()) {
      close_sched(it->second);
      it = scheds_.erase(it);
    } else {
      ++it;
    }
  }
}

int Manager::poll_timeout_ms(Micros now) const {
  Micros next = now + kMaxPollUs;
  for (const auto& [key, s] : scheds_) next = std::min(next, s.route.next_deadline());
  for (const auto& [id, h] : hooks_) {
    if (!h.hello) next = std::min(next, h.peer->created() + opts_.hook_hello_timeout);
  }
  if (listener_ && !listener_->accepting(now)) next = std::min(next, listener_->resume_at());
  if (!todo_.empty()) return 0;
  const Micros wait = std::clamp<Micros>(next - now, 0, kMaxPollUs);
  return static_cast<int>((wait + 999) / 1000);  // round up: never wake just before a deadline
}

void Manager::build_poll_set(Micros now) {
  fds_.clear();
  slots_.clear();
  if (listener_ && listener_->accepting(now)) {
    fds_.push_back({listener_->fd(), POLLIN, 0});
    slots_.push_back({SlotKind::kListener, 0, {}});
  }
  for (const auto& [id, h] : hooks_) {
    fds_.push_back({h.peer->fd(), static_cast<short>(POLLIN | (h.peer->wants_write() ? POLLOUT : 0)), 0});
    slots_.push_back({SlotKind::kHook, id, {}});
  }
  for (const auto& [key, s] : scheds_) {
    if (s.connecting_fd >= 0) {
      fds_.push_back({s.connecting_fd, POLLOUT, 0});
      slots_.push_back({SlotKind::kConnecting, 0, key});
    } else if (s.peer) {
      fds_.push_back({s.peer->fd(), static_cast<short>(POLLIN | (s.peer->wants_write() ? POLLOUT : 0)), 0});
      slots_.push_back({SlotKind::kSched, 0, key});
    }
  }
}

void Manager::dispatch(const pollfd& p, const Slot& s) {
  switch (s.kind) {
    case SlotKind::kListener:
      accept_hooks();
      return;
    case SlotKind::kHook: {
      auto it = hooks_.find(s.hook);
      if (it == hooks_.end() || it->second.peer->fd() != p.fd) return;  // dropped meanwhile
      if ((p.revents & POLLOUT) && !it->second.peer->flush()) {
        drop_hook(s.hook, "write failed");
        return;
      }
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) on_hook_readable(s.hook);
      return;
    }
    case SlotKind::kConnecting: {
      auto it = scheds_.find(s.key);
      if (it != scheds_.end() && it->second.connecting_fd == p.fd) on_connect_ready(s.key);
      return;
    }
    case SlotKind::kSched: {
      auto it = scheds_.find(s.key);
      if (it == scheds_.end() || !it->second.peer || it->second.peer->fd() != p.fd) return;
      if ((p.revents & POLLOUT) && !it->second.peer->flush()) {
        sched_write_failed(s.key, "write failed");
        return;
      }
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) on_sched_readable(s.key);
      return;
    }
  }
}

void Manager::accept_hooks() {
  for (const int fd : listener_->accept_ready(hooks_.size())) {
    const HookId id = next_hook_++;
    hooks_[id].peer = std::make_unique<Peer>(fd);
  }
}

}  // namespace gem::pmgr
