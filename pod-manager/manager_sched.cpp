// gem-pmgr's scheduler connections (non-blocking connect, reads) and the executor of the routes'
// Actions.
#include <unistd.h>

#include "connector.h"
#include "gem/log.h"
#include "manager.h"

namespace gem::pmgr {

void Manager::on_connect_ready(const std::string& key) {
  Sched& s = scheds_.at(key);
  std::string err;
  const int fd = s.connecting_fd;
  s.connecting_fd = -1;
  if (!connect_result(fd, s.endpoint, &err)) {
    close(fd);
    LOG_WARN("scheduler %s unreachable: %s", key.c_str(), err.c_str());
    lost_sched(key, err);
    return;
  }
  s.peer = std::make_unique<Peer>(fd);
  Actions acts;
  s.route.sched_connected(mono_us(), &acts);
  push(key, std::move(acts));
  run_actions();
}

void Manager::on_sched_readable(const std::string& key) {
  Sched& s = scheds_.at(key);
  std::vector<proto::Message> msgs;
  std::string why;
  const Micros heard_before = s.peer->last_heard();
  const bool ok = s.peer->read_messages(&msgs, &why);
  if (s.peer->last_heard() != heard_before) s.route.sched_heard(mono_us());
  const int fd = s.peer->fd();
  for (const proto::Message& m : msgs) {
    Actions acts;
    s.route.sched_message(m, mono_us(), &acts);
    push(key, std::move(acts));
    run_actions();
    if (!s.peer || s.peer->fd() != fd) return;  // the route closed the connection
  }
  if (!ok) lost_sched(key, why);
}

void Manager::sched_write_failed(const std::string& key, const std::string& why) {
  auto it = scheds_.find(key);
  if (it == scheds_.end()) return;
  if (it->second.peer) {
    // gem-schd may have said why before closing (kBusy at its connection cap): a write that fails
    // on the closed socket must not hide that answer, or a held client would run unthrottled
    // (issue 21, item 6). Read it first; the route acts on it (a refusal leaves it disconnected,
    // and sched_lost is then a no-op).
    const int fd = it->second.peer->fd();
    on_sched_readable(key);
    it = scheds_.find(key);
    if (it == scheds_.end() || !it->second.peer || it->second.peer->fd() != fd) return;
  }
  lost_sched(key, why);
}

void Manager::close_sched(Sched& s) {
  if (s.connecting_fd >= 0) close(s.connecting_fd);
  s.connecting_fd = -1;
  s.peer.reset();
}

void Manager::lost_sched(const std::string& key, const std::string& why) {
  auto it = scheds_.find(key);
  if (it == scheds_.end()) return;
  close_sched(it->second);
  Actions acts;
  it->second.route.sched_lost(why, mono_us(), &acts);
  push(key, std::move(acts));
  run_actions();
}

void Manager::update_gang(Micros now) {
  // Gangs off (--gang_window 0, the default): no route ever enters gang mode, nothing to look at.
  if (gang_.window() <= 0 || scheds_.empty()) return;
  std::vector<Gang::Member> routes;
  for (auto& [key, s] : scheds_) routes.emplace_back(key, &s.route);
  std::vector<std::pair<std::string, Action>> acts;
  gang_.update(routes, now, &acts);
  for (auto& ka : acts) todo_.push_back(std::move(ka));
  run_actions();
}

void Manager::push(const std::string& key, Actions&& acts) {
  for (Action& a : acts) todo_.emplace_back(key, std::move(a));
}

void Manager::run_actions() {
  // Executing an action may add more (a failed send drops a hook, which may return the token).
  while (!todo_.empty()) {
    std::pair<std::string, Action> next = std::move(todo_.front());
    todo_.pop_front();
    execute(next.first, next.second);
  }
}

void Manager::execute(const std::string& key, Action& a) {
  auto sit = scheds_.find(key);
  switch (a.kind) {
    case Action::Kind::kToHook: {
      auto it = hooks_.find(a.hook);
      if (it == hooks_.end()) return;
      metrics_.told(a.hook, a.msg, mono_us());
      // A hook that does not read fills its backlog: it alone is dropped.
      if (!it->second.peer->send(a.msg)) drop_hook(a.hook, "send failed (not reading?)");
      return;
    }
    case Action::Kind::kDropHook:
      drop_hook(a.hook, a.why);
      return;
    case Action::Kind::kToScheduler:
      if (sit == scheds_.end()) return;
      if (!sit->second.peer || !sit->second.peer->send(a.msg)) sched_write_failed(key, "write to the scheduler failed");
      return;
    case Action::Kind::kConnect: {
      if (sit == scheds_.end()) return;
      close_sched(sit->second);
      std::string err;
      const int fd = start_connect(sit->second.endpoint, &err);
      if (fd < 0) {
        LOG_WARN("scheduler %s unreachable: %s", key.c_str(), err.c_str());
        lost_sched(key, err);
        return;
      }
      sit->second.connecting_fd = fd;
      return;
    }
    case Action::Kind::kCloseScheduler:
      if (sit == scheds_.end()) return;
      if (!a.why.empty() && (sit->second.peer || sit->second.connecting_fd >= 0)) LOG_WARN("scheduler %s: %s", key.c_str(), a.why.c_str());
      close_sched(sit->second);
      return;
  }
}

}  // namespace gem::pmgr
