// A fake kubelet for gem-device-plugin's tests: the Registration service on <dir>/kubelet.sock, as
// kubelet serves it, recording each RegisterRequest. Like kubelet it refuses a version other than
// v1beta1 and an endpoint whose socket is not there; it does not dial back (the tests do that with
// dial()). Thread-safe. Also: a temporary folder that removes itself, and a DevicePlugin client.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "deviceplugin/api.grpc.pb.h"

namespace gem::dp::test {

/// mkdtemp under /tmp (short: Unix socket paths are limited to 107 bytes); removed with its files.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class FakeKubelet final : public v1beta1::Registration::Service {
 public:
  /// Serves at <dir>/kubelet.sock once start() is called.
  explicit FakeKubelet(std::string dir) : dir_(std::move(dir)) {}
  ~FakeKubelet() override { stop(); }

  /// Removes a stale socket and serves; false when the server cannot start.
  bool start();
  /// Shuts down (1 s grace) and removes kubelet.sock, as a stopping kubelet leaves the folder.
  void stop();
  std::string socket_path() const { return dir_ + "/kubelet.sock"; }

  grpc::Status Register(grpc::ServerContext* ctx, const v1beta1::RegisterRequest* req,
                        v1beta1::Empty* out) override;

  /// Waits until at least `n` registrations were accepted, at most `timeout`.
  bool wait_registrations(size_t n, std::chrono::milliseconds timeout);
  /// Accepted requests, in order.
  std::vector<v1beta1::RegisterRequest> accepted() const;

 private:
  const std::string dir_;
  std::unique_ptr<grpc::Server> server_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1beta1::RegisterRequest> accepted_;
};

/// A DevicePlugin client on the Unix socket `path`.
std::unique_ptr<v1beta1::DevicePlugin::Stub> dial(const std::string& path);
/// A ClientContext with a deadline `timeout` from now.
std::unique_ptr<grpc::ClientContext> context(std::chrono::milliseconds timeout);

}  // namespace gem::dp::test
