#include "server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "gem/log.h"

namespace gem::sched {

namespace {
constexpr Micros kStatsPeriod = 500000;
constexpr Micros kConfigPollPeriod = 1000000;  // fallback when inotify misses an update
constexpr int kMaxPollMs = 200;

uint32_t to_ppm(double share) { return static_cast<uint32_t>(std::lround(share * 1e6)); }
}  // namespace

Server::Server(ServerOptions opts)
    : opts_(std::move(opts)), policy_(opts_.policy), watcher_(opts_.config_path) {}

Server::~Server() {
  if (listen_fd_ >= 0) close(listen_fd_);
}

bool Server::start(int listen_fd, std::string* err) {
  listen_fd_ = listen_fd;
  std::string werr;
  if (!watcher_.start(&config_, &werr, err)) return false;
  if (!werr.empty()) LOG_WARN("config watch: %s; polling the file instead", werr.c_str());
  apply_clients();
  LOG_INFO("loaded %s: %zu clients", opts_.config_path.c_str(), config_.clients.size());
  return true;
}

void Server::run(const volatile bool* stop) {
  std::vector<pollfd> fds;
  while (!*stop) {
    fds.clear();
    fds.push_back({listen_fd_, POLLIN, 0});
    if (watcher_.fd() >= 0) fds.push_back({watcher_.fd(), POLLIN, 0});
    for (auto& [fd, c] : conns_) {
      fds.push_back({fd, static_cast<short>(POLLIN | (c.peer->wants_write() ? POLLOUT : 0)), 0});
    }
    Micros now = mono_us();
    const Micros next = std::min(policy_.next_event(now), last_stats_ + kStatsPeriod);
    const int timeout_ms =
        static_cast<int>(std::clamp<Micros>((next - now + 999) / 1000, 0, kMaxPollMs));
    const int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) {
      LOG_ERROR("poll: %s", std::strerror(errno));
      return;
    }
    bool config_event = false;
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == listen_fd_) {
        accept_all();
      } else if (p.fd == watcher_.fd()) {
        config_event = true;
      } else if (conns_.count(p.fd) != 0) {
        if (p.revents & POLLOUT) {
          if (!conns_.at(p.fd).peer->flush()) {
            drop(p.fd, "write failed");
            continue;
          }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) on_readable(p.fd);
      }
    }
    now = mono_us();
    if (config_event || now - last_check_ >= kConfigPollPeriod) {
      last_check_ = now;
      reload_config(false);
    }
    schedule();
    if (!opts_.stats_path.empty() && mono_us() - last_stats_ >= kStatsPeriod) write_stats();
  }
}

void Server::accept_all() {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    conns_[fd].peer = std::make_unique<Peer>(fd);
  }
}

void Server::on_readable(int fd) {
  std::vector<proto::Message> msgs;
  std::string why;
  const bool ok = conns_.at(fd).peer->read_messages(&msgs, &why);
  for (const proto::Message& m : msgs) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    on_message(fd, it->second, m);
  }
  if (!ok && conns_.count(fd) != 0) drop(fd, why);
}

void Server::on_message(int fd, Conn& c, const proto::Message& m) {
  const Micros now = mono_us();
  if (const auto* h = std::get_if<proto::Hello>(&m.body)) {
    on_hello(fd, c, m, *h);
    return;
  }
  if (c.client.empty()) {
    c.peer->send({m.request_id, proto::Error{proto::ErrorCode::kProtocol, "Hello must come first"}});
    drop(fd, std::string("sent ") + proto::type_name(m.body) + " before Hello");
    return;
  }
  if (const auto* r = std::get_if<proto::TokenRequest>(&m.body)) {
    c.pending_request = m.request_id;
    policy_.request(c.client, static_cast<Micros>(r->last_burst_us), now);
  } else if (const auto* r = std::get_if<proto::TokenRelease>(&m.body)) {
    LOG_DEBUG("%s released: used %llu us, burst %llu us", c.client.c_str(),
              static_cast<unsigned long long>(r->used_us), static_cast<unsigned long long>(r->burst_us));
    policy_.release(c.client, static_cast<Micros>(r->used_us), static_cast<Micros>(r->burst_us), now);
    if (r->again) {
      c.pending_request = m.request_id;
      policy_.request(c.client, static_cast<Micros>(r->burst_us), now);
    }
  } else if (const auto* r = std::get_if<proto::TokenRenew>(&m.body)) {
    const auto quota = policy_.renew(c.client, static_cast<Micros>(r->used_us), static_cast<Micros>(r->burst_us), now);
    LOG_DEBUG("%s renewal after %llu us: %s", c.client.c_str(), static_cast<unsigned long long>(r->used_us),
              quota ? "granted" : "refused");
    c.peer->send({m.request_id, proto::TokenGrant{quota ? static_cast<uint64_t>(*quota) : 0}});
  } else {
    drop(fd, std::string("unexpected ") + proto::type_name(m.body));
  }
}

void Server::on_hello(int fd, Conn& c, const proto::Message& m, const proto::Hello& h) {
  auto refuse = [&](proto::ErrorCode code, const std::string& why) {
    c.peer->send({m.request_id, proto::Error{code, why}});
    drop(fd, why);
  };
  if (!c.client.empty() || h.role != proto::Role::kPodManager) {
    refuse(proto::ErrorCode::kProtocol, "unexpected Hello");
    return;
  }
  if (!opts_.gpu_uuid.empty() && !h.device_uuid.empty() && h.device_uuid != opts_.gpu_uuid) {
    refuse(proto::ErrorCode::kProtocol, "this gem-schd serves " + opts_.gpu_uuid + ", not " + h.device_uuid);
    return;
  }
  if (config_.find(h.client) == nullptr && dynamic_.count(h.client) == 0) {
    if (!opts_.dynamic_clients || !h.has_declared) {
      refuse(proto::ErrorCode::kUnknownClient, "client '" + h.client + "' is not in " + opts_.config_path);
      return;
    }
    ClientConfig d{h.client, h.declared.request_ppm / 1e6, h.declared.limit_ppm / 1e6, h.declared.gpu_mem_bytes};
    double requests = d.request;
    for (const auto& cc : config_.clients) requests += cc.request;
    for (const auto& [n, dc] : dynamic_) requests += dc.request;
    if (d.request > d.limit || d.limit > 1.0 || requests > 1.0 + 1e-9) {
      refuse(proto::ErrorCode::kUnknownClient,
             "client '" + h.client + "' declares REQUEST " + std::to_string(d.request) + " LIMIT " +
                 std::to_string(d.limit) + ": invalid or REQUESTs would sum above 1");
      return;
    }
    dynamic_[h.client] = d;
    apply_clients();
  }
  auto old = fd_of_client_.find(h.client);
  if (old != fd_of_client_.end() && old->second != fd) drop(old->second, "replaced by a new connection");
  c.client = h.client;
  fd_of_client_[h.client] = fd;
  LOG_INFO("pod manager for '%s' connected (pid %u)", h.client.c_str(), h.pid);
  c.peer->send({m.request_id, settings_of(h.client)});
}

void Server::drop(int fd, const std::string& why) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  const std::string client = it->second.client;
  if (!client.empty()) {
    LOG_INFO("pod manager for '%s' gone: %s", client.c_str(), why.c_str());
    auto f = fd_of_client_.find(client);
    if (f != fd_of_client_.end() && f->second == fd) {
      fd_of_client_.erase(f);
      policy_.disconnect(client, mono_us());
      if (dynamic_.erase(client) != 0) apply_clients();
    }
  } else {
    LOG_WARN("connection dropped: %s", why.c_str());
  }
  conns_.erase(it);
}

// Reading and parsing happen on the loader's thread; this only takes its results (cheap when
// there are none, as on the once-a-second call) and swaps a good config in.
void Server::reload_config(bool at_start) {
  (void)at_start;
  std::vector<ConfigUpdate> updates;
  if (!watcher_.take(&updates)) return;
  ConfigUpdate* good = nullptr;
  for (ConfigUpdate& u : updates) {
    if (u.ok) {
      good = &u;
    } else {
      LOG_ERROR("%s; keeping the last good config", u.error.c_str());
    }
  }
  if (good == nullptr) return;
  config_ = std::move(good->config);
  for (const auto& cc : config_.clients) dynamic_.erase(cc.name);
  LOG_INFO("reloaded %s: %zu clients", opts_.config_path.c_str(), config_.clients.size());
  apply_clients();
  // Tell connected pod managers their (possibly new) settings.
  for (auto& [name, fd] : fd_of_client_) conns_.at(fd).peer->send({0, settings_of(name)});
}

void Server::apply_clients() {
  std::vector<ClientShare> shares;
  for (const auto& cc : config_.clients) shares.push_back({cc.name, cc.request, cc.limit});
  for (const auto& [n, d] : dynamic_) shares.push_back({n, d.request, d.limit});
  const std::vector<std::string> dropped = policy_.set_clients(shares, mono_us());
  for (const std::string& name : dropped) {
    auto it = fd_of_client_.find(name);
    if (it == fd_of_client_.end()) continue;
    const int fd = it->second;
    conns_.at(fd).peer->send({0, proto::Error{proto::ErrorCode::kRemoved,
                                              "client '" + name + "' was removed from " + opts_.config_path}});
    drop(fd, "removed from the config");
  }
}

void Server::schedule() {
  const Micros now = mono_us();
  while (auto g = policy_.schedule(now)) {
    Conn* c = conn_of(g->client);
    if (c == nullptr) {  // cannot happen: waiting clients are connected; stay safe anyway
      policy_.disconnect(g->client, now);
      continue;
    }
    LOG_DEBUG("grant %s quota %lld us", g->client.c_str(), static_cast<long long>(g->quota));
    if (!c->peer->send({c->pending_request, proto::TokenGrant{static_cast<uint64_t>(g->quota)}})) {
      drop(fd_of_client_.at(g->client), "write failed");
    }
    return;
  }
}

Server::Conn* Server::conn_of(const std::string& client) {
  auto it = fd_of_client_.find(client);
  return it == fd_of_client_.end() ? nullptr : &conns_.at(it->second);
}

proto::ClientSettings Server::settings_of(const std::string& client) const {
  const ClientConfig* cc = config_.find(client);
  if (cc == nullptr) {
    auto it = dynamic_.find(client);
    if (it == dynamic_.end()) return {};
    cc = &it->second;
  }
  return {to_ppm(cc->request), to_ppm(cc->limit), cc->gpu_mem_bytes};
}

void Server::write_stats() {
  const Micros now = mono_us();
  last_stats_ = now;
  nlohmann::json j;
  j["time_us"] = now;
  j["window_us"] = policy_.options().window;
  j["holder"] = policy_.holder().empty() ? nlohmann::json(nullptr) : nlohmann::json(policy_.holder());
  j["clients"] = nlohmann::json::object();
  for (const std::string& name : policy_.clients()) {
    const auto s = policy_.stats(name, now);
    const proto::ClientSettings set = settings_of(name);
    j["clients"][name] = {{"request", s->request},         {"limit", s->limit},
                          {"gpu_mem", set.gpu_mem_bytes},  {"used_us_total", s->used_total},
                          {"share_window", s->share},      {"grants", s->grants},
                          {"connected", fd_of_client_.count(name) != 0}};
  }
  const std::string tmp = opts_.stats_path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) {
    LOG_WARN("cannot write %s: %s", tmp.c_str(), std::strerror(errno));
    return;
  }
  const std::string text = j.dump(1) + "\n";
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  if (std::rename(tmp.c_str(), opts_.stats_path.c_str()) != 0) {
    LOG_WARN("cannot rename %s: %s", tmp.c_str(), std::strerror(errno));
  }
}

}  // namespace gem::sched
