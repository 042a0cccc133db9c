// One registration with kubelet: a ResourcePlugin served on its own Unix socket in kubelet's
// device-plugin folder, and the Register call that tells kubelet about it. Kubelet's protocol
// (https://kubernetes.io/docs/concepts/extend-kubernetes/compute-storage-net/device-plugins/):
// serve first, then Register(version v1beta1, endpoint = the socket's file name, resource name,
// options); kubelet then dials the socket and opens ListAndWatch. Not thread-safe: one owner
// (the Runner); the served plugin itself is thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "plugin.h"

namespace gem::dp {

/// Kubelet's API version string (k8s.io/kubelet deviceplugin/v1beta1 constants.go, Version).
constexpr const char* kApiVersion = "v1beta1";

class Endpoint {
 public:
  /// Serves `kind` at <dir>/<socket_name>.
  Endpoint(Kind kind, Inventory* inv, AllocateOptions opts, std::string dir, std::string socket_name,
           std::chrono::milliseconds hint_window = std::chrono::milliseconds(kDefaultHintWindowMs));
  ~Endpoint() { stop(); }
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  /// Removes a stale socket file and serves. False with *why (cannot bind).
  bool start(std::string* why);
  /// Ends the streams, then shuts the server down (in-flight calls get `grace`, then are
  /// cancelled) and removes the socket. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(1000));
  bool serving() const { return server_ != nullptr; }
  /// The socket file exists (kubelet removes the folder's sockets when it starts).
  bool socket_present() const;
  /// Register with kubelet at `kubelet_socket`, waiting at most `timeout` (for kubelet to accept
  /// the connection and answer). False with *why (gRPC's status: unavailable, refused, ...).
  bool register_with(const std::string& kubelet_socket, std::chrono::milliseconds timeout, std::string* why) const;

  const std::string& socket_name() const { return socket_name_; }
  std::string path() const { return dir_ + "/" + socket_name_; }

 private:
  ResourcePlugin plugin_;
  const std::string dir_, socket_name_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace gem::dp
