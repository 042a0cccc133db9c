#include "pmgr_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace gem::hook {

namespace {
constexpr int kConnectTimeoutMs = 1000;
constexpr int kHelloTimeoutMs = 2000;
}  // namespace

PmgrClient::~PmgrClient() { close(); }

void PmgrClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  in_ = proto::FrameBuffer();
}

bool PmgrClient::connect(const net::Endpoint& ep, const std::string& client, const std::string& uuid,
                         std::string* why) {
  close();
  fd_ = net::connect_to(ep, kConnectTimeoutMs, why);
  if (fd_ < 0) return false;
  proto::Hello hello;
  hello.role = proto::Role::kHook;
  hello.client = client;
  hello.device_uuid = uuid;
  hello.pid = static_cast<uint32_t>(getpid());
  proto::Message reply;
  if (!send({next_id_++, hello}) || !receive(&reply, kHelloTimeoutMs, why)) {
    close();
    return false;
  }
  if (const auto* e = std::get_if<proto::Error>(&reply.body)) {
    *why = e->message;
    close();
    return false;
  }
  if (const auto* s = std::get_if<proto::ClientSettings>(&reply.body)) settings_ = *s;
  return true;
}

PmgrClient::Answer PmgrClient::request_token(uint64_t last_burst_us, uint64_t* quota_us, std::string* why) {
  const uint64_t id = next_id_++;
  if (!send({id, proto::TokenRequest{last_burst_us}})) {
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
  for (;;) {
    proto::Message m;
    if (!receive(&m, -1, why)) return Answer::kBroken;
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
  }
}

bool PmgrClient::release_token(const proto::TokenRelease& rel) { return send({next_id_++, rel}); }

bool PmgrClient::send(const proto::Message& m) {
  std::vector<uint8_t> buf;
  if (fd_ < 0 || !proto::encode(m, &buf) || !net::send_all(fd_, buf.data(), buf.size(), 2000)) {
    close();
    return false;
  }
  return true;
}

bool PmgrClient::receive(proto::Message* m, int timeout_ms, std::string* why) {
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
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      *why = "pod manager did not answer";
      return false;
    }
    uint8_t buf[1024];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *why = n == 0 ? "pod manager closed the connection" : std::strerror(errno);
      close();
      return false;
    }
    in_.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace gem::hook
