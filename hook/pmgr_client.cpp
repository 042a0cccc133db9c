#include "pmgr_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "gem/clock.h"

namespace gem::hook {

PmgrClient::~PmgrClient() { close(); }

void PmgrClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  in_ = proto::FrameBuffer();
}

bool PmgrClient::connect(const net::Endpoint& ep, const std::string& client, const std::string& uuid,
                         const std::string& secret, int timeout_ms, std::string* why) {
  close();
  timeout_ms_ = timeout_ms;
  fd_ = net::connect_to(ep, timeout_ms_, why);
  if (fd_ < 0) return false;
  proto::Hello hello;
  hello.role = proto::Role::kHook;
  hello.client = client;
  hello.device_uuid = uuid;
  hello.pid = static_cast<uint32_t>(getpid());
  hello.secret = secret;
  if (!send({next_id_++, hello})) {
    *why = "cannot send Hello";
    return false;
  }
  for (;;) {
    proto::Message reply;
    if (!receive(&reply, timeout_ms_, why)) {
      close();
      return false;
    }
    if (std::holds_alternative<proto::Heartbeat>(reply.body)) continue;
    if (const auto* e = std::get_if<proto::Error>(&reply.body)) {
      *why = e->message;
      close();
      return false;
    }
    if (const auto* s = std::get_if<proto::ClientSettings>(&reply.body)) settings_ = *s;
    return true;
  }
}

PmgrClient::Answer PmgrClient::request_token(uint64_t last_burst_us, uint64_t* quota_us, std::string* why) {
  if (!send({next_id_++, proto::TokenRequest{last_burst_us}})) {
    *why = "pod manager connection lost";
    return Answer::kBroken;
  }
  return await_answer(quota_us, why);
}

PmgrClient::Answer PmgrClient::release_and_request(proto::TokenRelease rel, uint64_t* quota_us, std::string* why) {
  rel.again = true;
  if (!send({next_id_++, rel})) {
    *why = "pod manager connection lost";
    return Answer::kBroken;
  }
  return await_answer(quota_us, why);
}

PmgrClient::Answer PmgrClient::renew_token(uint64_t used_us, uint64_t burst_us, uint64_t* quota_us,
                                           std::string* why) {
  if (!send({next_id_++, proto::TokenRenew{used_us, burst_us}})) {
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
    if (!receive(&m, timeout_ms_, why, &timed_out)) {
      if (timed_out) {
        *why = "pod manager silent for " + std::to_string(timeout_ms_) + " ms (stopped or hung)";
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
    // Heartbeat; or a TokenRevoke of a grant already given back (it applies while holding only).
  }
}

PmgrClient::Event PmgrClient::wait_event(int64_t wait_us) {
  const Micros deadline = mono_us() + (wait_us > 0 ? wait_us : 0);
  for (;;) {
    const Micros left = deadline - mono_us();
    if (fd_ < 0) {
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
    if (!receive(&m, ms, &why, &timed_out)) return timed_out ? Event::kNone : Event::kBroken;
    if (std::holds_alternative<proto::TokenRevoke>(m.body)) return Event::kRevoked;
    if (const auto* s = std::get_if<proto::ClientSettings>(&m.body)) settings_ = *s;
    if (std::holds_alternative<proto::Error>(m.body)) {
      close();
      return Event::kBroken;
    }
    if (mono_us() >= deadline) return Event::kNone;
  }
}

bool PmgrClient::release_token(const proto::TokenRelease& rel) { return send({next_id_++, rel}); }

bool PmgrClient::send(const proto::Message& m) {
  std::vector<uint8_t> buf;
  if (fd_ < 0 || !proto::encode(m, &buf) || !net::send_all(fd_, buf.data(), buf.size(), timeout_ms_)) {
    close();
    return false;
  }
  return true;
}

bool PmgrClient::receive(proto::Message* m, int timeout_ms, std::string* why, bool* timed_out) {
  if (timed_out != nullptr) *timed_out = false;
  const Micros deadline = mono_us() + static_cast<Micros>(timeout_ms < 0 ? 0 : timeout_ms) * 1000;
  for (;;) {
    switch (in_.next(m, why)) {
      case proto::DecodeStatus::kOk:
        return true;
      case proto::DecodeStatus::kMalformed:
        close();
        return false;
      case proto::DecodeStatus::kNeedMore:
        break;
    }
    if (fd_ < 0) {
      *why = "not connected";
      return false;
    }
    const Micros left = deadline - mono_us();
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, left <= 0 ? 0 : static_cast<int>((left + 999) / 1000));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      *why = std::strerror(errno);
      close();
      return false;
    }
    if (r == 0) {
      if (mono_us() < deadline) continue;  // poll woke early
      *why = "pod manager did not answer";
      if (timed_out != nullptr) *timed_out = true;
      return false;
    }
    uint8_t buf[1024];
    const ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) {
      *why = n == 0 ? "pod manager closed the connection" : std::strerror(errno);
      close();
      return false;
    }
    in_.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace gem::hook
