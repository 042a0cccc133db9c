#include "scripted_peer.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

namespace gem::testing {

ScriptedPeer::ScriptedPeer(Script script, int wait_ms) : wait_ms_(wait_ms) {
  char dir[] = "/tmp/gem-scripted-peer-XXXXXX";
  EXPECT_NE(mkdtemp(dir), nullptr);
  dir_ = dir;
  std::string err;
  EXPECT_TRUE(net::parse_endpoint(dir_ + "/pmgr.sock", &ep_, &err)) << err;
  listen_fd_ = net::listen_on(ep_, &err);
  EXPECT_GE(listen_fd_, 0) << err;
  thread_ = std::thread([this, script = std::move(script)] {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, kAcceptMs) != 1) return;
    fd_ = accept(listen_fd_, nullptr, nullptr);
    if (fd_ >= 0) script(*this);
  });
}

ScriptedPeer::~ScriptedPeer() {
  join();
  if (fd_ >= 0) ::close(fd_);
  ::close(listen_fd_);
  unlink((dir_ + "/pmgr.sock").c_str());
  rmdir(dir_.c_str());
}

void ScriptedPeer::join() {
  if (thread_.joinable()) thread_.join();
}

void ScriptedPeer::send(const std::vector<proto::Message>& msgs) {
  std::vector<uint8_t> out;
  for (const auto& m : msgs) {
    std::vector<uint8_t> one;
    ASSERT_TRUE(proto::encode(m, &one));
    out.insert(out.end(), one.begin(), one.end());
  }
  ASSERT_TRUE(net::send_all(fd_, out.data(), out.size(), wait_ms_));
}

void ScriptedPeer::send_raw(const std::string& bytes) {
  ASSERT_TRUE(net::send_all(fd_, bytes.data(), bytes.size(), wait_ms_));
}

bool ScriptedPeer::receive(proto::Message* m) {
  for (;;) {
    std::string err;
    if (in_.next(m, &err) == proto::DecodeStatus::kOk) return true;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, wait_ms_) != 1) return false;
    uint8_t buf[4096];
    const ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n <= 0) return false;
    in_.append(buf, static_cast<size_t>(n));
  }
}

proto::Hello ScriptedPeer::hello(proto::Body answer) {
  const proto::Hello h = expect<proto::Hello>();
  send(std::move(answer), last_id_);
  return h;
}

void ScriptedPeer::hang_up() {
  ::close(fd_);
  fd_ = -1;
}

}  // namespace gem::testing
