#include "manager.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "gem/log.h"

namespace gem::pmgr {

namespace {
constexpr int kConnectTimeoutMs = 500;
constexpr int kHelloTimeoutMs = 1000;
constexpr Micros kRetryPeriod = 1000000;  // reconnect to a lost scheduler at most once a second
constexpr int kMaxPollMs = 200;

// Waits for the scheduler's answer to our Hello on a fresh blocking connection.
bool await_hello_reply(Peer& p, proto::Message* reply, std::string* why) {
  const Micros deadline = mono_us() + kHelloTimeoutMs * 1000;
  std::vector<proto::Message> msgs;
  while (msgs.empty()) {
    const Micros left = deadline - mono_us();
    if (left <= 0) {
      *why = "no answer to Hello";
      return false;
    }
    pollfd pfd{p.fd(), POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left / 1000) + 1) < 0 && errno != EINTR) {
      *why = std::strerror(errno);
      return false;
    }
    if (!p.read_messages(&msgs, why)) return false;
  }
  *reply = msgs.front();
  return true;
}
}  // namespace

Manager::Manager(ManagerOptions opts) : opts_(std::move(opts)) {}

Manager::~Manager() {
  if (listen_fd_ >= 0) close(listen_fd_);
}

void Manager::start(int listen_fd) { listen_fd_ = listen_fd; }

void Manager::run(const volatile bool* stop) {
  std::vector<pollfd> fds;
  std::vector<std::string> sched_uuid;  // parallel to fds for scheduler entries
  while (!*stop) {
    fds.clear();
    sched_uuid.clear();
    fds.push_back({listen_fd_, POLLIN, 0});
    sched_uuid.emplace_back();
    for (auto& [fd, h] : hooks_) {
      fds.push_back({fd, static_cast<short>(POLLIN | (h.peer->wants_write() ? POLLOUT : 0)), 0});
      sched_uuid.emplace_back();
    }
    for (auto& [uuid, r] : routes_) {
      if (!r.sched) continue;
      fds.push_back({r.sched->fd(), static_cast<short>(POLLIN | (r.sched->wants_write() ? POLLOUT : 0)), 0});
      sched_uuid.push_back(uuid);
    }
    if (poll(fds.data(), fds.size(), kMaxPollMs) < 0 && errno != EINTR) {
      LOG_ERROR("poll: %s", std::strerror(errno));
      return;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      const pollfd& p = fds[i];
      if (p.revents == 0) continue;
      if (i == 0) {
        accept_all();
      } else if (!sched_uuid[i].empty()) {
        auto it = routes_.find(sched_uuid[i]);
        if (it == routes_.end() || !it->second.sched || it->second.sched->fd() != p.fd) continue;
        if ((p.revents & POLLOUT) && !it->second.sched->flush()) {
          drop_sched(sched_uuid[i], "write failed");
          continue;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) on_sched_readable(sched_uuid[i]);
      } else if (hooks_.count(p.fd) != 0) {
        if ((p.revents & POLLOUT) && !hooks_.at(p.fd).peer->flush()) {
          drop_hook(p.fd, "write failed");
          continue;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) on_hook_readable(p.fd);
      }
    }
  }
}

void Manager::accept_all() {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    hooks_[fd].peer = std::make_unique<Peer>(fd);
  }
}

void Manager::on_hook_readable(int fd) {
  std::vector<proto::Message> msgs;
  std::string why;
  const bool ok = hooks_.at(fd).peer->read_messages(&msgs, &why);
  for (const proto::Message& m : msgs) {
    if (hooks_.count(fd) == 0) return;
    on_hook_message(fd, m);
  }
  if (!ok && hooks_.count(fd) != 0) drop_hook(fd, why);
}

void Manager::on_hook_message(int fd, const proto::Message& m) {
  Hook& h = hooks_.at(fd);
  const Micros now = mono_us();
  if (const auto* hello = std::get_if<proto::Hello>(&m.body)) {
    if (h.hello || hello->role != proto::Role::kHook) {
      drop_hook(fd, "unexpected Hello");
      return;
    }
    if (hello->client != opts_.client) {
      h.peer->send({m.request_id, proto::Error{proto::ErrorCode::kUnknownClient,
                                               "this pod manager serves '" + opts_.client + "', not '" +
                                                   hello->client + "'"}});
      drop_hook(fd, "wrong client name " + hello->client);
      return;
    }
    h.hello = true;
    h.uuid = hello->device_uuid;
    h.pid = hello->pid;
    LOG_INFO("process %u connected for GPU %s", h.pid, h.uuid.empty() ? "(unknown)" : h.uuid.c_str());
    Route* r = route_for(h.uuid);
    if (r == nullptr) {
      h.peer->send({m.request_id, proto::Error{proto::ErrorCode::kSchedulerUnavailable, "scheduler unreachable"}});
    } else {
      h.peer->send({m.request_id, r->settings});
    }
    return;
  }
  if (!h.hello) {
    drop_hook(fd, std::string("sent ") + proto::type_name(m.body) + " before Hello");
    return;
  }
  if (const auto* req = std::get_if<proto::TokenRequest>(&m.body)) {
    Route* r = route_for(h.uuid);
    if (r == nullptr) {
      h.peer->send({m.request_id, proto::Error{proto::ErrorCode::kSchedulerUnavailable, "scheduler unreachable"}});
      return;
    }
    if (req->last_burst_us > 0) r->last_burst = static_cast<Micros>(req->last_burst_us);
    if (r->token.valid(now) && !r->token.holds(fd)) {
      r->token.take(fd);
      h.peer->send({m.request_id, proto::TokenGrant{static_cast<uint64_t>(r->token.remaining(now))}});
      return;
    }
    r->waiters.push_back({fd, m.request_id});
    if (!r->requested && !r->token.held()) {
      r->requested = r->sched->send({0, proto::TokenRequest{static_cast<uint64_t>(r->last_burst)}});
      if (!r->requested) drop_sched(h.uuid, "write failed");
    }
  } else if (const auto* rel = std::get_if<proto::TokenRelease>(&m.body)) {
    auto it = routes_.find(h.uuid);
    if (it == routes_.end()) return;
    Route& r = it->second;
    const bool last = r.token.give_back(fd, static_cast<Micros>(rel->used_us), static_cast<Micros>(rel->end_us),
                                        static_cast<Micros>(rel->burst_us));
    if (!rel->again) {
      if (last) return_token(r);
      return;
    }
    if (!last && r.token.valid(now)) {  // other processes still hold a valid token: rejoin them
      r.token.take(fd);
      h.peer->send({m.request_id, proto::TokenGrant{static_cast<uint64_t>(r.token.remaining(now))}});
      return;
    }
    // Asking again is a token request: it needs a scheduler (reconnecting if it was lost).
    if (route_for(h.uuid) == nullptr) {
      h.peer->send({m.request_id, proto::Error{proto::ErrorCode::kSchedulerUnavailable, "scheduler unreachable"}});
      return;
    }
    r.waiters.push_back({fd, m.request_id});
    if (last) {
      return_token(r);  // the release says "again"
    } else if (!r.requested && !r.token.held()) {
      r.requested = r.sched->send({0, proto::TokenRequest{static_cast<uint64_t>(r.last_burst)}});
      if (!r.requested) drop_sched(h.uuid, "write failed");
    }
  } else if (const auto* ren = std::get_if<proto::TokenRenew>(&m.body)) {
    auto it = routes_.find(h.uuid);
    // Only a sole holder may renew: with several processes on the token the normal release
    // merges their intervals.
    if (it == routes_.end() || !it->second.sched || it->second.renewing || !it->second.token.holds(fd) ||
        it->second.token.holder_count() != 1) {
      h.peer->send({m.request_id, proto::TokenGrant{0}});
      return;
    }
    Route& r = it->second;
    r.renew_id = next_id_++;
    r.renew_for = {fd, m.request_id};
    r.renewing = r.sched->send({r.renew_id, *ren});
    if (!r.renewing) {
      h.peer->send({m.request_id, proto::TokenGrant{0}});
      drop_sched(h.uuid, "write failed");
    }
  } else {
    drop_hook(fd, std::string("unexpected ") + proto::type_name(m.body));
  }
}

void Manager::drop_hook(int fd, const std::string& why) {
  auto it = hooks_.find(fd);
  if (it == hooks_.end()) return;
  LOG_INFO("process %u gone: %s", it->second.pid, why.c_str());
  auto rit = routes_.find(it->second.uuid);
  if (rit != routes_.end()) {
    Route& r = rit->second;
    auto& w = r.waiters;
    w.erase(std::remove_if(w.begin(), w.end(), [fd](const Waiter& x) { return x.fd == fd; }), w.end());
    if (r.token.holds(fd) && r.token.lost(fd, mono_us())) return_token(r);
  }
  hooks_.erase(it);
}

Manager::Route* Manager::route_for(const std::string& uuid) {
  Route& r = routes_[uuid];
  if (r.sched) return &r;
  const Micros now = mono_us();
  if (now < r.retry_at) return nullptr;
  r.retry_at = now + kRetryPeriod;
  if (!opts_.scheduler_dir.empty() && !uuid.empty()) {
    r.endpoint = net::Endpoint{};
    r.endpoint.unix_path = opts_.scheduler_dir + "/" + uuid + ".sock";
  } else {
    r.endpoint = opts_.scheduler;
  }
  std::string err;
  const int fd = net::connect_to(r.endpoint, kConnectTimeoutMs, &err);
  if (fd < 0) {
    LOG_WARN("scheduler %s unreachable: %s", r.endpoint.to_string().c_str(), err.c_str());
    return nullptr;
  }
  auto peer = std::make_unique<Peer>(fd);
  proto::Hello hello{proto::Role::kPodManager, opts_.client, uuid, static_cast<uint32_t>(getpid()),
                     opts_.has_declared, opts_.declared};
  proto::Message reply;
  if (!peer->send({1, hello}) || !await_hello_reply(*peer, &reply, &err)) {
    LOG_WARN("scheduler %s: %s", r.endpoint.to_string().c_str(), err.c_str());
    return nullptr;
  }
  if (const auto* e = std::get_if<proto::Error>(&reply.body)) {
    LOG_ERROR("scheduler %s refused '%s': %s", r.endpoint.to_string().c_str(), opts_.client.c_str(),
              e->message.c_str());
    return nullptr;
  }
  if (const auto* s = std::get_if<proto::ClientSettings>(&reply.body)) r.settings = *s;
  LOG_INFO("connected to scheduler %s for GPU %s", r.endpoint.to_string().c_str(),
           uuid.empty() ? "(any)" : uuid.c_str());
  r.sched = std::move(peer);
  r.requested = false;
  return &r;
}

void Manager::on_sched_readable(const std::string& uuid) {
  Route& r = routes_.at(uuid);
  std::vector<proto::Message> msgs;
  std::string why;
  const bool ok = r.sched->read_messages(&msgs, &why);
  for (const proto::Message& m : msgs) {
    if (const auto* g = std::get_if<proto::TokenGrant>(&m.body)) {
      if (r.renewing && m.request_id == r.renew_id) {
        r.renewing = false;
        if (g->quota_us > 0) r.token.granted(static_cast<Micros>(g->quota_us), mono_us());
        auto it = hooks_.find(r.renew_for.fd);
        if (it != hooks_.end()) it->second.peer->send({r.renew_for.request_id, *g});
        continue;
      }
      r.requested = false;
      r.token.granted(static_cast<Micros>(g->quota_us), mono_us());
      serve_waiters(r);
    } else if (const auto* s = std::get_if<proto::ClientSettings>(&m.body)) {
      r.settings = *s;
      for (auto& [fd, h] : hooks_) {
        if (h.hello && h.uuid == uuid) h.peer->send({0, *s});
      }
    } else if (const auto* e = std::get_if<proto::Error>(&m.body)) {
      drop_sched(uuid, "scheduler says: " + e->message);
      return;
    }
  }
  if (!ok) drop_sched(uuid, why);
}

void Manager::serve_waiters(Route& r) {
  const Micros now = mono_us();
  while (!r.waiters.empty()) {
    const Waiter w = r.waiters.front();
    r.waiters.pop_front();
    auto it = hooks_.find(w.fd);
    if (it == hooks_.end()) continue;
    r.token.take(w.fd);
    it->second.peer->send({w.request_id, proto::TokenGrant{static_cast<uint64_t>(r.token.remaining(now))}});
  }
  // Granted but nobody is left to use it (the asker died): give it straight back.
  if (!r.token.has_holders()) return_token(r);
}

void Manager::return_token(Route& r) {
  const TokenShare::Report rep = r.token.finish();
  // Processes that asked while the token was out want it back: say so in the release itself.
  const bool again = !r.waiters.empty();
  const bool sent = r.sched && r.sched->send({0, proto::TokenRelease{static_cast<uint64_t>(rep.used),
                                                                     static_cast<uint64_t>(rep.burst), 0, 0, again}});
  if (!sent) LOG_WARN("could not return the token to %s", r.endpoint.to_string().c_str());
  if (rep.burst > 0) r.last_burst = rep.burst;
  r.requested = again && sent;
}

void Manager::drop_sched(const std::string& uuid, const std::string& why) {
  Route& r = routes_.at(uuid);
  LOG_WARN("lost scheduler %s: %s", r.endpoint.to_string().c_str(), why.c_str());
  r.sched.reset();
  r.requested = false;
  if (r.renewing) {
    auto it = hooks_.find(r.renew_for.fd);
    if (it != hooks_.end()) it->second.peer->send({r.renew_for.request_id, proto::TokenGrant{0}});
    r.renewing = false;
  }
  r.token.reset();
  r.retry_at = 0;  // the next request tries again at once
  for (const Waiter& w : r.waiters) {
    auto it = hooks_.find(w.fd);
    if (it == hooks_.end()) continue;
    it->second.peer->send({w.request_id, proto::Error{proto::ErrorCode::kSchedulerUnavailable, why}});
  }
  r.waiters.clear();
}

}  // namespace gem::pmgr
