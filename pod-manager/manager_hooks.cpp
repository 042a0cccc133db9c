// gem-pmgr's hook connections: authentication (Hello) and one handler per message type; the token
// protocol itself is the route's (route.h).
#include <unistd.h>

#include "gem/log.h"
#include "manager.h"
#include "gem/secret.h"

namespace gem::pmgr {

void Manager::on_hook_readable(HookId id) {
  std::vector<proto::Message> msgs;
  std::string why;
  const bool ok = hooks_.at(id).peer->read_messages(&msgs, &why);
  for (const proto::Message& m : msgs) {
    if (hooks_.count(id) == 0) return;
    on_hook_message(id, m);
    run_actions();
  }
  if (!ok && hooks_.count(id) != 0) drop_hook(id, why);
}

void Manager::on_hook_message(HookId id, const proto::Message& m) {
  Hook& h = hooks_.at(id);
  if (const auto* hello = std::get_if<proto::Hello>(&m.body)) {
    on_hook_hello(id, h, m.request_id, *hello);
  } else if (!h.hello) {
    refuse_hook(id, h, m.request_id, proto::ErrorCode::kProtocol, "Hello must come first");
  } else if (h.memory) {
    on_mem_message(id, h, m);
  } else if (const auto* req = std::get_if<proto::TokenRequest>(&m.body)) {
    on_hook_request(h, id, m.request_id, *req);
  } else if (const auto* rel = std::get_if<proto::TokenRelease>(&m.body)) {
    on_hook_release(h, id, m.request_id, *rel);
  } else if (const auto* ren = std::get_if<proto::TokenRenew>(&m.body)) {
    on_hook_renew(h, id, m.request_id, *ren);
  } else {
    refuse_hook(id, h, m.request_id, proto::ErrorCode::kProtocol,
                std::string("unexpected ") + proto::type_name(m.body) + " on a launch-gate connection");
  }
}

void Manager::on_hook_hello(HookId id, Hook& h, uint64_t rid, const proto::Hello& hello) {
  if (h.hello) {
    refuse_hook(id, h, rid, proto::ErrorCode::kProtocol, "second Hello on one connection");
    return;
  }
  if (hello.role != proto::Role::kHook && hello.role != proto::Role::kHookMemory) {
    refuse_hook(id, h, rid, proto::ErrorCode::kProtocol, "Hello with the wrong role");
    return;
  }
  if (hello.client != opts_.client) {
    refuse_hook(id, h, rid, proto::ErrorCode::kUnknownClient,
                "this pod manager serves '" + opts_.client.substr(0, 100) + "', not '" + hello.client.substr(0, 100) + "'");
    return;
  }
  if (!opts_.secret.empty() && !secrets_equal(hello.secret, opts_.secret)) {
    refuse_hook(id, h, rid, proto::ErrorCode::kDenied, "wrong or missing secret (GEMINI_SECRET_FILE)");
    return;
  }
  const bool memory = hello.role == proto::Role::kHookMemory;
  if (memory && hello.device_uuid.empty()) {
    refuse_hook(id, h, rid, proto::ErrorCode::kProtocol, "a memory session needs its GPU's UUID");
    return;
  }
  Sched* s = route_for(id, h, rid, hello);
  if (s == nullptr) return;
  h.hello = true;
  h.memory = memory;
  h.route = s->endpoint.to_string();
  h.pid = hello.pid;
  LOG_INFO("process %u connected%s for GPU %s (scheduler %s)", h.pid, memory ? " (memory session)" : "",
           hello.device_uuid.empty() ? "(unknown)" : hello.device_uuid.c_str(), h.route.c_str());
  Actions acts;
  if (memory) {
    s->route.mem_hello(id, hello.device_uuid, rid, mono_us(), &acts);
  } else {
    s->route.hook_hello(id, rid, mono_us(), &acts);
  }
  push(h.route, std::move(acts));
}

Manager::Sched* Manager::route_for(HookId id, Hook& h, uint64_t rid, const proto::Hello& hello) {
  net::Endpoint ep;
  std::string why;
  if (!scheduler_for(opts_, hello.device_uuid, &ep, &why)) {
    refuse_hook(id, h, rid, proto::ErrorCode::kProtocol, why);
    return nullptr;
  }
  const std::string key = ep.to_string();
  auto it = scheds_.find(key);
  if (it != scheds_.end()) return &it->second;
  if (scheds_.size() >= kMaxRoutes) {
    refuse_hook(id, h, rid, proto::ErrorCode::kBusy, "too many scheduler endpoints");
    return nullptr;
  }
  RouteOptions ro;
  ro.client = opts_.client;
  // The default route may serve several devices: it names none (gem-schd --gpu then checks nothing).
  ro.device_uuid = key == opts_.scheduler.to_string() ? std::string() : hello.device_uuid;
  ro.secret = opts_.secret;
  ro.pid = static_cast<uint32_t>(getpid());
  ro.has_declared = opts_.has_declared;
  ro.declared = opts_.declared;
  ro.scheduler_timeout = opts_.scheduler_timeout;
  return &scheds_.emplace(key, Sched{ep, Route(ro), -1, nullptr}).first->second;
}

void Manager::on_hook_request(Hook& h, HookId id, uint64_t rid, const proto::TokenRequest& m) {
  Actions acts;
  metrics_.asked(id, mono_us());
  sched_of(h)->route.hook_request(id, rid, m, mono_us(), &acts);
  push(h.route, std::move(acts));
}

void Manager::on_hook_release(Hook& h, HookId id, uint64_t rid, const proto::TokenRelease& m) {
  Actions acts;
  if (m.again) metrics_.asked(id, mono_us());
  sched_of(h)->route.hook_release(id, rid, m, mono_us(), &acts);
  push(h.route, std::move(acts));
}

void Manager::on_hook_renew(Hook& h, HookId id, uint64_t rid, const proto::TokenRenew& m) {
  Actions acts;
  sched_of(h)->route.hook_renew(id, rid, m, mono_us(), &acts);
  push(h.route, std::move(acts));
}

void Manager::refuse_hook(HookId id, Hook& h, uint64_t rid, proto::ErrorCode code, const std::string& why) {
  h.peer->send({rid, proto::Error{code, why}});  // best effort: the connection closes anyway
  drop_hook(id, why);
}

void Manager::drop_hook(HookId id, const std::string& why) {
  auto it = hooks_.find(id);
  if (it == hooks_.end()) return;
  const std::string key = it->second.route;
  if (it->second.hello) {
    LOG_INFO("process %u gone: %s", it->second.pid, why.c_str());
  } else {
    LOG_WARN("connection dropped before Hello: %s", why.c_str());
  }
  hooks_.erase(it);
  metrics_.gone(id);
  auto sit = scheds_.find(key);
  if (sit == scheds_.end()) return;
  Route& r = sit->second.route;
  Actions acts;
  r.hook_gone(id, mono_us(), &acts);
  push(key, std::move(acts));
  run_actions();
}

Manager::Sched* Manager::sched_of(const Hook& h) { return &scheds_.at(h.route); }

}  // namespace gem::pmgr
