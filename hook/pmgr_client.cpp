#include "pmgr_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "gem/clock.h"

namespace gem::hook {

void PmgrClient::close() { conn_.close(); }

bool PmgrClient::connect(const net::Endpoint& ep, const std::string& client, const std::string& uuid,
                         const std::string& secret, int timeout_ms, std::string* why) {
  proto::Hello hello;
  hello.role = proto::Role::kHook;
  hello.client = client;
  hello.device_uuid = uuid;
  hello.pid = static_cast<uint32_t>(getpid());
  hello.secret = secret;
  proto::Message reply;
  if (!conn_.open(ep, hello, timeout_ms, &reply, why)) return false;
  if (const auto* s = std::get_if<proto::ClientSettings>(&reply.body)) settings_ = *s;
  return true;
}

PmgrClient::Answer PmgrClient::request_token(uint64_t last_burst_us, uint64_t* quota_us, std::string* why) {
  if (!conn_.send(proto::TokenRequest{last_burst_us})) {
    *why = "pod manager connection lost";
    return Answer::kBroken;
  }
  return await_answer(quota_us, why);
}

PmgrClient::Answer PmgrClient::release_and_request(proto::TokenRelease rel, uint64_t* quota_us, std::string* why) {
  rel.again = true;
  if (!conn_.send(rel)) {
    *why = "pod manager connection lost";
    return Answer::kBroken;
  }
  return await_answer(quota_us, why);
}

PmgrClient::Answer PmgrClient::renew_token(uint64_t used_us, uint64_t burst_us, uint64_t* quota_us,
                                           std::string* why) {
  if (!conn_.send(proto::TokenRenew{used_us, burst_us})) {
    *why = "pod manager connection lost";
    return Answer::kBroken;
  }
  return await_answer(quota_us, why);
}

PmgrClient::Answer PmgrClient::await_answer(uint64_t* quota_us, std::string* why) {
  // Each message (a Heartbeat included) restarts the timeout: a queued request is kept alive by
  // the pod manager's heartbeats, a hung pod manager is given up after timeout_ms of silence.
  for (;;) {
    proto::Message m;
    bool timed_out = false;
    if (!conn_.receive(&m, conn_.timeout_ms(), why, &timed_out)) {
      if (timed_out) {
        *why = "pod manager silent for " + std::to_string(conn_.timeout_ms()) + " ms (stopped or hung)";
        close();
      }
      return Answer::kBroken;
    }
    if (const auto* g = std::get_if<proto::TokenGrant>(&m.body)) {
      *quota_us = g->quota_us;
      return Answer::kGranted;
    }
    if (const auto* s = std::get_if<proto::ClientSettings>(&m.body)) {
      settings_ = *s;
      continue;
    }
    if (const auto* e = std::get_if<proto::Error>(&m.body)) {
      *why = e->message;
      return Answer::kRefused;
    }
    if (const auto* ev = std::get_if<proto::Evict>(&m.body)) {
      if (on_evict_) {
        on_evict_(ev->flags);
      } else {  // acted on when idle (take_evict)
        evict_ = true;
        evict_flags_ = ev->flags;
      }
    }
    // Heartbeat; or a TokenRevoke of a grant already given back (it applies while holding only).
  }
}

PmgrClient::Event PmgrClient::wait_event(int64_t wait_us) {
  const Micros deadline = mono_us() + (wait_us > 0 ? wait_us : 0);
  for (;;) {
    const Micros left = deadline - mono_us();
    if (!conn_.is_open()) {
      // Nothing to watch: just let the time pass.
      if (left > 0) {
        timespec ts{static_cast<time_t>(left / 1000000), static_cast<long>((left % 1000000) * 1000)};
        nanosleep(&ts, nullptr);
      }
      return Event::kNone;
    }
    proto::Message m;
    bool timed_out = false;
    std::string why;
    // Rounded up to whole ms; sub-ms waits poll once without blocking.
    const int ms = left <= 0 ? 0 : static_cast<int>((left + 999) / 1000);
    if (!conn_.receive(&m, ms, &why, &timed_out)) return timed_out ? Event::kNone : Event::kBroken;
    if (std::holds_alternative<proto::TokenRevoke>(m.body)) return Event::kRevoked;
    if (const auto* ev = std::get_if<proto::Evict>(&m.body)) {
      evict_ = true;
      evict_flags_ = ev->flags;
      return Event::kEvict;
    }
    if (const auto* s = std::get_if<proto::ClientSettings>(&m.body)) settings_ = *s;
    if (std::holds_alternative<proto::Error>(m.body)) {
      close();
      return Event::kBroken;
    }
    if (mono_us() >= deadline) return Event::kNone;
  }
}

bool PmgrClient::release_token(const proto::TokenRelease& rel) { return conn_.send(rel); }

}  // namespace gem::hook
