// The interpreter of Route scenario scripts (route_script.h).
#include "route_script.h"

#include <gtest/gtest.h>

#include <sstream>

namespace gem::pmgr {

using gem::testing::script_num;

std::string gpu_uuid(uint64_t d) {
  char buf[64];
  snprintf(buf, sizeof(buf), "GPU-fa4e0000-0000-0000-0000-%012llx", static_cast<unsigned long long>(d));
  return buf;
}

namespace {

const char* code_name(proto::ErrorCode c) {
  switch (c) {
    case proto::ErrorCode::kUnknownClient: return "UnknownClient";
    case proto::ErrorCode::kSchedulerUnavailable: return "SchedulerUnavailable";
    case proto::ErrorCode::kProtocol: return "Protocol";
    case proto::ErrorCode::kRemoved: return "Removed";
    case proto::ErrorCode::kDenied: return "Denied";
    case proto::ErrorCode::kBusy: return "Busy";
  }
  return "?";
}

std::string body_text(const proto::Message& m) {
  std::ostringstream o;
  const proto::Body& b = m.body;
  if (const auto* s = std::get_if<proto::ClientSettings>(&b)) {
    o << "ClientSettings req=" << s->request_ppm << " lim=" << s->limit_ppm << " mem=" << s->gpu_mem_bytes;
  } else if (const auto* g = std::get_if<proto::TokenGrant>(&b)) {
    o << "TokenGrant quota=" << g->quota_us;
  } else if (const auto* e = std::get_if<proto::Error>(&b)) {
    o << "Error " << code_name(e->code);
  } else if (const auto* r = std::get_if<proto::TokenRevoke>(&b)) {
    o << "TokenRevoke held=" << r->held_us;
  } else if (const auto* h = std::get_if<proto::Hello>(&b)) {
    o << "Hello client=" << h->client << " uuid=" << h->device_uuid << " pid=" << h->pid << " secret=" << h->secret;
  } else if (const auto* q = std::get_if<proto::TokenRequest>(&b)) {
    o << "TokenRequest burst=" << q->last_burst_us;
  } else if (const auto* rel = std::get_if<proto::TokenRelease>(&b)) {
    o << "TokenRelease used=" << rel->used_us << " burst=" << rel->burst_us << " again=" << rel->again;
  } else if (const auto* ren = std::get_if<proto::TokenRenew>(&b)) {
    o << "TokenRenew used=" << ren->used_us << " burst=" << ren->burst_us;
  } else if (const auto* ms = std::get_if<proto::MemState>(&b)) {
    o << "MemState limit=" << ms->limit_bytes << " held=" << ms->client_held_bytes << " granted=" << ms->granted_bytes;
    if (ms->flags != 0) o << " flags=" << ms->flags;
  } else if (const auto* u = std::get_if<proto::MemUsage>(&b)) {
    o << "MemUsage bytes=" << u->bytes << " flags=" << u->flags;
  } else {
    o << proto::type_name(b);
  }
  if (m.request_id != 0) o << " id=" << m.request_id;
  return o.str();
}

}  // namespace

std::string action_text(const Action& a) {
  switch (a.kind) {
    case Action::Kind::kToHook: return "hook " + std::to_string(a.hook) + " <- " + body_text(a.msg);
    case Action::Kind::kToScheduler: return "sched <- " + body_text(a.msg);
    case Action::Kind::kConnect: return "connect";
    case Action::Kind::kCloseScheduler: return a.why.empty() ? "close (quiet)" : "close: " + a.why;
    case Action::Kind::kDropHook: return "drop hook " + std::to_string(a.hook) + ": " + a.why;
  }
  return "?";
}

// One scenario: the route under test and the interpreter of its commands.
RouteInterpreter::RouteInterpreter(RouteOptions o) : route_(std::move(o)) {}

RouteOptions RouteInterpreter::options(uint64_t device) {
    RouteOptions o;
    o.client = "c";
    o.device_uuid = gpu_uuid(device);
    o.secret = "s3";
    o.pid = 7;
    o.scheduler_timeout = 600000;
    o.retry_period = 1000000;
    o.heartbeat_period = 200000;
    return o;
}

std::vector<std::string> RouteInterpreter::run(const std::string& line) {
  const gem::testing::Command c = gem::testing::parse_command(line);
  return run_at(static_cast<Micros>(std::stoll(c.words.at(0))) * 1000, c, 1, line);
}

std::vector<std::string> RouteInterpreter::run_at(Micros now, const gem::testing::Command& c, size_t first,
                                               const std::string& line) {
    const std::string& who = c.words.at(first);
    const std::vector<std::string> words(c.words.begin() + static_cast<std::ptrdiff_t>(first) + 1, c.words.end());
    auto get = [&](const std::string& k) { return c.kv.count(k) ? script_num(c.kv.at(k)) : 0; };
    Actions acts;
    std::vector<std::string> out;
    if (who == "hook") {
      const HookId h = std::stoull(words.at(0));
      const std::string& verb = words.at(1);
      const uint64_t id = get("id");
      if (verb == "hello") {
        route_.hook_hello(h, id, now, &acts);
      } else if (verb == "request") {
        route_.hook_request(h, id, proto::TokenRequest{get("burst")}, now, &acts);
      } else if (verb == "release") {
        const bool again = c.flag("again");
        route_.hook_release(h, id, proto::TokenRelease{get("used"), get("burst"), 0, get("end"), again}, now, &acts);
      } else if (verb == "renew") {
        route_.hook_renew(h, id, proto::TokenRenew{get("used"), get("burst")}, now, &acts);
      } else if (verb == "gone") {
        route_.hook_gone(h, now, &acts);
      } else {
        ADD_FAILURE() << "unknown hook command: " << line;
      }
    } else if (who == "sched") {
      const std::string& verb = words.at(0);
      const uint64_t id = get("id");
      if (verb == "connected") {
        route_.sched_connected(now, &acts);
      } else if (verb == "lost") {
        route_.sched_lost("connection closed by peer", now, &acts);
      } else if (verb == "heard") {
        route_.sched_heard(now);
      } else if (verb == "heartbeat") {
        route_.sched_message({0, proto::Heartbeat{}}, now, &acts);
      } else if (verb == "error") {  // code=NAME (code_name's names); UnknownClient by default
        proto::ErrorCode code = proto::ErrorCode::kUnknownClient;
        if (c.kv.count("code")) {
          bool known = false;
          for (int i = 1; i <= 6; ++i) {
            if (c.kv.at("code") == code_name(static_cast<proto::ErrorCode>(i))) {
              code = static_cast<proto::ErrorCode>(i);
              known = true;
            }
          }
          if (!known) ADD_FAILURE() << "unknown error code: " << line;
        }
        route_.sched_message({id, proto::Error{code, "no such client"}}, now, &acts);
      } else if (verb == "settings") {
        route_.sched_message({id, proto::ClientSettings{static_cast<uint32_t>(get("req")), static_cast<uint32_t>(get("lim")),
                                                        get("mem"), static_cast<uint32_t>(get("flags"))}},
                             now, &acts);
      } else if (verb == "evict") {
        route_.sched_message({0, proto::Evict{}}, now, &acts);
      } else if (verb == "grant") {
        route_.sched_message({id, proto::TokenGrant{script_num(words.at(1))}}, now, &acts);
      } else if (verb == "revoke") {
        route_.sched_message({0, proto::TokenRevoke{script_num(words.at(1))}}, now, &acts);
      } else {
        ADD_FAILURE() << "unknown sched command: " << line;
      }
    } else if (who == "mem") {
      const HookId h = std::stoull(words.at(0));
      const std::string& verb = words.at(1);
      const uint64_t id = get("id");
      if (verb == "hello") {
        route_.mem_hello(h, gpu_uuid(get("gpu")), id, now, &acts);
      } else if (verb == "reserve") {
        route_.mem_reserve(h, id, proto::MemReserve{get("need"), get("want"), c.flag("existing")}, now, &acts);
      } else if (verb == "return") {
        route_.mem_return(h, id, proto::MemReturn{get("bytes")}, now, &acts);
      } else if (verb == "query") {
        route_.mem_query(h, id, now, &acts);
      } else if (verb == "gone") {
        route_.hook_gone(h, now, &acts);
      } else {
        ADD_FAILURE() << "unknown mem command: " << line;
      }
    } else if (who == "memory") {
      out.push_back(memory_line());
    } else if (who == "tick") {
      route_.tick(now, &acts);
    } else if (who == "state") {
      out.push_back(state_line());
    } else {
      ADD_FAILURE() << "unknown command: " << line;
    }
    for (const Action& a : acts) out.push_back(action_text(a));
    return out;
}

std::string RouteInterpreter::state_line() const {
    std::ostringstream o;
    o << "state " << Route::state_name(route_.state()) << " token=" << (route_.token().held() ? "held" : "none")
      << " holders=";
    const auto hs = route_.token().holders();
    for (size_t i = 0; i < hs.size(); ++i) o << (i ? "," : "") << hs[i];
    if (hs.empty()) o << "-";
    o << " waiters=" << route_.waiter_count() << " requested=" << route_.requested()
      << " renewing=" << route_.renewing();
    const Micros d = route_.next_deadline();
    o << " next=";
    if (d == kNever) {
      o << "never";
    } else {
      o << d / 1000;
    }
    return o.str();
}

std::string RouteInterpreter::memory_line() const {
    const MemSessions& m = route_.memory();
    std::ostringstream o;
    o << "memory known=" << m.known() << " limit=" << m.limit() << " sessions=" << m.count()
      << " hooks=" << route_.hook_count();
    o << " held=" << m.budget().held() << " leases=" << m.budget().sessions();
    return o.str();
}

}  // namespace gem::pmgr
