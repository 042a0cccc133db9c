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

#include "gem/log.h"

namespace gem::sched {

namespace {
constexpr Micros kStatsPeriod = 500000;
constexpr Micros kConfigPollPeriod = 1000000;  // fallback when inotify misses an update
constexpr Micros kHeartbeatPeriod = proto::kHeartbeatPeriodMs * 1000;
constexpr Micros kMaxPoll = 200000;

uint32_t to_ppm(double share) { return static_cast<uint32_t>(std::lround(share * 1e6)); }
}  // namespace

Server::Server(ServerOptions opts)
    : opts_(std::move(opts)),
      policy_(opts_.policy),
      residency_(opts_.mem_budget, opts_.residency),
      watcher_(opts_.config_path) {}

Server::~Server() = default;

bool Server::start(int listen_fd, bool is_unix, std::string* err) {
  listener_ = std::make_unique<Listener>(listen_fd, is_unix, opts_.listener);
  std::string werr;
  if (!opts_.secrets_path.empty()) {
    secrets_loader_ = std::make_unique<SecretsLoader>(opts_.secrets_path);
    SecretTable table;
    if (!secrets_loader_->start(&table, &werr, err)) return false;
    secrets_.set(std::move(table));
    if (!werr.empty()) LOG_WARN("secrets watch: %s; polling the file instead", werr.c_str());
    werr.clear();
  }
  if (!watcher_.start(&config_, &werr, err)) return false;
  if (!werr.empty()) LOG_WARN("config watch: %s; polling the file instead", werr.c_str());
  apply_clients();
  LOG_INFO("loaded %s: %zu clients", opts_.config_path.c_str(), config_.clients.size());
  return true;
}

Micros Server::next_wakeup(Micros now) const {
  if (snapshot_ != nullptr) return now;  // a metrics snapshot is under way: its next slice
  Micros next = std::min(policy_.next_event(now), now + kMaxPoll);
  if (!opts_.stats_path.empty()) next = std::min(next, last_stats_ + kStatsPeriod);
  if (!listener_->accepting(now)) next = std::min(next, listener_->resume_at());
  for (const auto& [fd, c] : conns_) {
    if (c.waiting) next = std::min(next, last_heartbeat_ + kHeartbeatPeriod);
    if (c.client.empty()) next = std::min(next, c.peer->created() + opts_.hello_timeout);
  }
  return next;
}

void Server::run(const volatile bool* stop) {
  std::vector<pollfd> fds;
  while (!*stop) {
    Micros now = mono_us();
    fds.clear();
    const bool accepting = listener_->accepting(now);
    if (accepting) fds.push_back({listener_->fd(), POLLIN, 0});
    if (watcher_.fd() >= 0) fds.push_back({watcher_.fd(), POLLIN, 0});
    if (secrets_loader_ != nullptr) fds.push_back({secrets_loader_->fd(), POLLIN, 0});
    for (auto& [fd, c] : conns_) {
      fds.push_back({fd, static_cast<short>(POLLIN | (c.peer->wants_write() ? POLLOUT : 0)), 0});
    }
    const int timeout_ms = static_cast<int>(std::clamp<Micros>((next_wakeup(now) - now + 999) / 1000, 0, kMaxPoll / 1000));
    const int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) {
      LOG_ERROR("poll: %s", std::strerror(errno));
      return;
    }
    bool config_event = false;
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (accepting && p.fd == listener_->fd()) {
        accept_all();
      } else if (p.fd == watcher_.fd() || (secrets_loader_ != nullptr && p.fd == secrets_loader_->fd())) {
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
      reload_config();
      reload_secrets();
    }
    close_silent(now);
    expire_lease();
    schedule();
    heartbeat(mono_us());
    if (!opts_.stats_path.empty() && mono_us() - last_stats_ >= kStatsPeriod) write_stats();
    if (endpoint_ != nullptr && (snapshot_ != nullptr || endpoint_->wanted())) publish_metrics();
  }
}

void Server::accept_all() {
  for (const int fd : listener_->accept_ready(conns_.size())) conns_[fd].peer = std::make_unique<Peer>(fd);
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

bool Server::send_or_drop(int fd, const proto::Message& m) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return false;
  if (it->second.peer->send(m)) return true;
  drop(fd, it->second.peer->backlog() > 0 ? "not reading (write backlog full)" : "write failed");
  return false;
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
    // One request at a time: a pod manager never asks while it waits or holds, so a second one
    // is a flooder or a broken peer, not a queue to grow.
    if (c.waiting || policy_.holds(c.client)) {
      c.peer->send({m.request_id, proto::Error{proto::ErrorCode::kProtocol, "TokenRequest while one is outstanding"}});
      drop(fd, "TokenRequest while one is outstanding");
      return;
    }
    on_request(c, m, *r, now);
  } else if (const auto* r = std::get_if<proto::TokenRelease>(&m.body)) {
    on_release(c, m, *r, now);
  } else if (const auto* r = std::get_if<proto::TokenRenew>(&m.body)) {
    on_renew(fd, c, m, *r, now);
  } else if (const auto* u = std::get_if<proto::MemUsage>(&m.body)) {
    on_mem_usage(c, *u);
  } else if (!std::holds_alternative<proto::Heartbeat>(m.body)) {
    drop(fd, std::string("unexpected ") + proto::type_name(m.body));
  }
}

void Server::on_request(Conn& c, const proto::Message& m, const proto::TokenRequest& r, Micros now) {
  c.pending_request = m.request_id;
  c.waiting = !policy_.holds(c.client);
  LOG_DEBUG("%s requests the token%s", c.client.c_str(), c.waiting ? "" : " (holds it)");
  policy_.request(c.client, proto::wire_micros(r.last_burst_us), now);
  if (c.waiting) metrics_.requested(c.client, now);
}

void Server::on_release(Conn& c, const proto::Message& m, const proto::TokenRelease& r, Micros now) {
  LOG_DEBUG("%s released: used %llu us, burst %llu us", c.client.c_str(), static_cast<unsigned long long>(r.used_us),
            static_cast<unsigned long long>(r.burst_us));
  // The charge is at least the time observed since the grant (Policy::release): a report of 0
  // gains nothing. A release after a revocation is ignored there.
  policy_.release(c.client, proto::wire_micros(r.used_us), proto::wire_micros(r.burst_us), now);
  if (r.again) {
    if (c.waiting) return;  // already queued: the release's request adds nothing
    c.pending_request = m.request_id;
    c.waiting = true;
    policy_.request(c.client, proto::wire_micros(r.burst_us), now);
    metrics_.requested(c.client, now);
  }
}

void Server::on_renew(int fd, Conn& c, const proto::Message& m, const proto::TokenRenew& r, Micros now) {
  const auto quota = policy_.renew(c.client, proto::wire_micros(r.used_us), proto::wire_micros(r.burst_us), now);
  LOG_DEBUG("%s renewal after %llu us: %s", c.client.c_str(), static_cast<unsigned long long>(r.used_us),
            quota ? "granted" : "refused");
  if (quota) plan_residency(c.client, now);  // its usage may have grown while it held the token
  send_or_drop(fd, {m.request_id, proto::TokenGrant{quota ? static_cast<uint64_t>(*quota) : 0}});
}

// Why a pod manager's Hello is refused ("" when admitted); *code says how to tell it.
std::string Server::admit(const proto::Hello& h, proto::ErrorCode* code) {
  *code = proto::ErrorCode::kProtocol;
  if (h.role != proto::Role::kPodManager) return "unexpected Hello";
  if (!h.device_uuid.empty() && !proto::valid_gpu_uuid(h.device_uuid)) {
    return "device UUID '" + h.device_uuid + "' is not GPU- followed by hex digits";
  }
  if (!opts_.gpu_uuid.empty() && !h.device_uuid.empty() && h.device_uuid != opts_.gpu_uuid) {
    return "this gem-schd serves " + opts_.gpu_uuid + ", not " + h.device_uuid;
  }
  *code = proto::ErrorCode::kDenied;
  if (!secrets_.allows(h.client, h.secret)) return "shared secret refused for client '" + h.client + "'";
  auto old = fd_of_client_.find(h.client);
  if (old != fd_of_client_.end()) {
    return "client '" + h.client + "' is already connected; a second pod manager is refused";
  }
  *code = proto::ErrorCode::kUnknownClient;
  if (config_.find(h.client) == nullptr && dynamic_.count(h.client) == 0) {
    if (!opts_.dynamic_clients || !h.has_declared) return "client '" + h.client + "' is not in " + opts_.config_path;
    ClientConfig d{h.client, h.declared.request_ppm / 1e6, h.declared.limit_ppm / 1e6, h.declared.gpu_mem_bytes,
                   (h.declared.flags & proto::kFlagUnifiedMemory) != 0,
                   std::min<uint32_t>(h.declared.latency_us, static_cast<uint32_t>(kMaxLatencyMs * 1000))};
    double admitted = 0;
    for (const auto& cc : config_.clients) admitted += cc.request;
    for (const auto& [n, dc] : dynamic_) admitted += dc.request;
    if (std::string why = admission_error(d.request, d.limit, admitted); !why.empty()) {
      return "client '" + h.client + "' declared at its Hello: " + why;
    }
    dynamic_[h.client] = d;
    apply_clients();
  }
  return "";
}

void Server::on_hello(int fd, Conn& c, const proto::Message& m, const proto::Hello& h) {
  proto::ErrorCode code = proto::ErrorCode::kProtocol;
  const std::string why = c.client.empty() ? admit(h, &code) : "second Hello on one connection";
  if (!why.empty()) {
    if (c.client.empty()) refusals_.note(h.client, code, why, mono_us());
    c.peer->send({m.request_id, proto::Error{code, why}});
    drop(fd, why);
    return;
  }
  refusals_.admitted(h.client);
  c.client = h.client;
  fd_of_client_[h.client] = fd;
  LOG_INFO("pod manager for '%s' connected (pid %u)", h.client.c_str(), h.pid);
  send_or_drop(fd, {m.request_id, settings_of(h.client)});
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
      forget_residency(client);
      if (dynamic_.erase(client) != 0) apply_clients();
    }
  } else {
    LOG_WARN("connection dropped: %s", why.c_str());
  }
  conns_.erase(it);
}

// Reading and parsing happen on the loader's thread; this only takes its results (cheap when
// there are none, as on the once-a-second call) and swaps a good config in.
void Server::reload_config() {
  std::vector<ConfigUpdate> updates;
  if (!watcher_.take(&updates)) return;
  ConfigUpdate* good = nullptr;
  for (ConfigUpdate& u : updates) {
    metrics_.config_loaded(u.ok);
    if (u.ok) {
      good = &u;
    } else {
      LOG_ERROR("%s; keeping the last good config", u.error.c_str());
    }
  }
  if (good == nullptr) return;
  config_ = std::move(good->value);
  for (const auto& cc : config_.clients) dynamic_.erase(cc.name);
  LOG_INFO("reloaded %s: %zu clients", opts_.config_path.c_str(), config_.clients.size());
  apply_clients();
  reconfigure_residency();
  // Tell connected pod managers their (possibly new) settings.
  std::vector<std::pair<int, std::string>> told;
  for (const auto& [name, fd] : fd_of_client_) told.emplace_back(fd, name);
  for (const auto& [fd, name] : told) send_or_drop(fd, {0, settings_of(name)});
}

// Like reload_config(): the loader's thread read and parsed the file; this only swaps it in.
void Server::reload_secrets() {
  std::vector<FileUpdate<SecretTable>> updates;
  if (secrets_loader_ == nullptr || !secrets_loader_->take(&updates)) return;
  for (FileUpdate<SecretTable>& u : updates) {
    if (!u.ok) {
      LOG_ERROR("%s; keeping the last good secrets", u.error.c_str());
      continue;
    }
    secrets_loader_->retire(secrets_.set(std::move(u.value)));
    LOG_INFO("reloaded %s", opts_.secrets_path.c_str());
  }
}

void Server::apply_clients() {
  std::vector<ClientShare> shares;
  for (const auto& cc : config_.clients) shares.push_back({cc.name, cc.request, cc.limit, cc.latency_us});
  for (const auto& [n, d] : dynamic_) shares.push_back({n, d.request, d.limit, d.latency_us});
  warn_unfit(shares.size());
  const std::vector<std::string> dropped = policy_.set_clients(shares, mono_us());
  for (const std::string& name : dropped) {
    auto it = fd_of_client_.find(name);
    if (it == fd_of_client_.end()) continue;
    const int fd = it->second;
    const std::string why = "client '" + name + "' was removed from " + opts_.config_path;
    refusals_.note(name, proto::ErrorCode::kRemoved, why, mono_us());
    conns_.at(fd).peer->send({0, proto::Error{proto::ErrorCode::kRemoved, why}});
    drop(fd, "removed from the config");
  }
}

void Server::schedule() {
  const Micros now = mono_us();
  metrics_.holder_is(policy_.holder(), now);
  // One grant per call: the holder's when the token is free, then co-run tokens (Policy::schedule).
  while (auto g = policy_.schedule(now)) {
    Conn* c = conn_of(g->client);
    if (c == nullptr) {  // cannot happen: waiting clients are connected; stay safe anyway
      policy_.disconnect(g->client, now);
      continue;
    }
    LOG_DEBUG("grant %s quota %lld us%s", g->client.c_str(), static_cast<long long>(g->quota), g->corun ? " (co-run)" : "");
    c->waiting = false;
    metrics_.granted(g->client, now);
    // Evictions first: their memory leaves while the holder's comes back. A co-runner is a latency
    // client, never evicted (on_mem_usage), so its grant plans nothing.
    if (!g->corun) plan_residency(g->client, now);
    send_or_drop(fd_of_client_.at(g->client), {c->pending_request, proto::TokenGrant{static_cast<uint64_t>(g->quota)}});
  }
}

void Server::expire_lease() {
  while (const auto r = policy_.expire_lease(mono_us())) {
    LOG_WARN("'%s' kept the token %lld ms, past its quota + %lld ms of grace: revoked", r->client.c_str(),
             static_cast<long long>(r->held / 1000), static_cast<long long>(policy_.options().lease_grace / 1000));
    auto it = fd_of_client_.find(r->client);
    if (it != fd_of_client_.end()) send_or_drop(it->second, {0, proto::TokenRevoke{static_cast<uint64_t>(r->held)}});
  }
}

void Server::warn_unfit(size_t clients) {
  const PolicyOptions& o = policy_.options();
  const bool unfit = o.fit_quotas && static_cast<Micros>(clients) * o.quota_floor > o.window;
  if (unfit && clients != unfit_clients_) {
    LOG_WARN("%zu clients x the %lld ms quota floor exceed the %lld ms window: when all want the GPU, a client "
             "may wait longer than a window (raise --window or lower --quota_floor)",
             clients, static_cast<long long>(o.quota_floor / 1000), static_cast<long long>(o.window / 1000));
  } else if (!o.fit_quotas && clients > 0 && static_cast<Micros>(clients) * o.base_quota > o.window &&
             clients != unfit_clients_) {
    LOG_WARN("%zu clients x the %lld ms base quota exceed the %lld ms window and --fit_quotas is off: when all "
             "want the GPU, a client may wait longer than a window",
             clients, static_cast<long long>(o.base_quota / 1000), static_cast<long long>(o.window / 1000));
  }
  unfit_clients_ = clients;
}

void Server::heartbeat(Micros now) {
  if (now - last_heartbeat_ < kHeartbeatPeriod) return;
  last_heartbeat_ = now;
  std::vector<int> due;
  for (const auto& [fd, c] : conns_) {
    if (c.waiting) due.push_back(fd);
  }
  for (const int fd : due) send_or_drop(fd, {0, proto::Heartbeat{}});
}

void Server::close_silent(Micros now) {
  std::vector<int> late;
  for (const auto& [fd, c] : conns_) {
    if (c.client.empty() && now - c.peer->created() >= opts_.hello_timeout) late.push_back(fd);
  }
  for (const int fd : late) drop(fd, "no Hello within " + std::to_string(opts_.hello_timeout / 1000) + " ms");
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
  return {to_ppm(cc->request), to_ppm(cc->limit), cc->gpu_mem_bytes,
          cc->unified_memory ? proto::kFlagUnifiedMemory : 0u, cc->latency_us};
}

}  // namespace gem::sched
