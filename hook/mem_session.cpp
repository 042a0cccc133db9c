#include "mem_session.h"

#include <unistd.h>

namespace gem::hook {

bool MemSession::open(const std::string& uuid, proto::MemState* state, std::string* why) {
  proto::Hello hello;
  hello.role = proto::Role::kHookMemory;
  hello.client = s_.client;
  hello.device_uuid = uuid;
  hello.pid = static_cast<uint32_t>(getpid());
  hello.secret = s_.secret;
  proto::Message reply;
  push_.reset();
  if (!conn_.open(s_.pod_manager, hello, s_.pmgr_timeout_ms, &reply, why)) return false;
  if (const auto* st = std::get_if<proto::MemState>(&reply.body)) {
    *state = *st;
    return true;
  }
  *why = std::string("pod manager answered the memory Hello with ") + proto::type_name(reply.body);
  conn_.close();
  return false;
}

bool MemSession::await(uint64_t id, proto::MemState* state, std::string* why) {
  for (;;) {
    proto::Message m;
    bool timed_out = false;
    if (!conn_.receive(&m, conn_.timeout_ms(), why, &timed_out)) {
      if (timed_out) {
        *why = "pod manager silent for " + std::to_string(conn_.timeout_ms()) + " ms (stopped or hung)";
        conn_.close();
      }
      return false;
    }
    if (const auto* st = std::get_if<proto::MemState>(&m.body)) {
      if (m.request_id == id) {
        *state = *st;
        return true;
      }
      if (m.request_id == 0) push_ = *st;
      continue;
    }
    if (const auto* e = std::get_if<proto::Error>(&m.body)) {
      *why = e->message;
      conn_.close();
      return false;
    }
    // Heartbeat: the pod manager is alive and working on it.
  }
}

bool MemSession::reserve(uint64_t need, uint64_t want, bool existing, proto::MemState* state, std::string* why) {
  uint64_t id = 0;
  if (!conn_.send(proto::MemReserve{need, want, existing}, &id)) {
    *why = "pod manager connection lost";
    return false;
  }
  return await(id, state, why);
}

bool MemSession::give_back(uint64_t bytes) { return conn_.send(proto::MemReturn{bytes}); }

bool MemSession::query(proto::MemState* state, std::string* why) {
  uint64_t id = 0;
  if (!conn_.send(proto::MemQuery{}, &id)) {
    *why = "pod manager connection lost";
    return false;
  }
  return await(id, state, why);
}

std::optional<proto::MemState> MemSession::take_push() {
  for (;;) {
    proto::Message m;
    std::string why;
    bool timed_out = false;
    if (!conn_.receive(&m, 0, &why, &timed_out)) break;
    if (const auto* st = std::get_if<proto::MemState>(&m.body); st != nullptr && m.request_id == 0) push_ = *st;
    if (std::holds_alternative<proto::Error>(m.body)) {
      conn_.close();
      break;
    }
  }
  auto p = push_;
  push_.reset();
  return p;
}

}  // namespace gem::hook
