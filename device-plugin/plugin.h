// The kubelet DevicePlugin service (v1beta1) for one of gem-device-plugin's two resources. Every
// handler catches what it calls (no exception leaves a gRPC handler: a bad request or an internal
// failure is a gRPC status). Thread-safe: gRPC calls the handlers from its own threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "allocation.h"
#include "deviceplugin/api.grpc.pb.h"
#include "inventory.h"

namespace gem::dp {

/// How long after a container got devices of one GPU GetPreferredAllocation of the other resource
/// prefers that GPU (kubelet allocates a container's resources one after another).
constexpr int64_t kDefaultHintWindowMs = 5000;
/// ListAndWatch re-checks for a stop or a cancelled stream at least this often.
constexpr int64_t kStreamPollMs = 200;

class ResourcePlugin final : public v1beta1::DevicePlugin::Service {
 public:
  /// `inv` outlives the plugin.
  ResourcePlugin(Kind kind, Inventory* inv, AllocateOptions opts,
                 std::chrono::milliseconds hint_window = std::chrono::milliseconds(kDefaultHintWindowMs))
      : kind_(kind), inv_(inv), opts_(std::move(opts)), hint_window_(hint_window) {}

  Kind kind() const { return kind_; }
  /// Ends every ListAndWatch stream within kStreamPollMs (before the server shuts down).
  void stop();
  /// Undoes stop() for the next server (call only while no server runs this plugin).
  void resume() { stopping_ = false; }

  /// GetPreferredAllocation available; no PreStartContainer.
  grpc::Status GetDevicePluginOptions(grpc::ServerContext* ctx, const v1beta1::Empty* req,
                                      v1beta1::DevicePluginOptions* out) override;
  /// The device list at once, then again at each health change, until the stream is cancelled or
  /// stop() is called.
  grpc::Status ListAndWatch(grpc::ServerContext* ctx, const v1beta1::Empty* req,
                            grpc::ServerWriter<v1beta1::ListAndWatchResponse>* writer) override;
  /// preferred() per container, with the placement hint.
  grpc::Status GetPreferredAllocation(grpc::ServerContext* ctx, const v1beta1::PreferredAllocationRequest* req,
                                      v1beta1::PreferredAllocationResponse* out) override;
  /// allocate() per container; INVALID_ARGUMENT with the reason when one container's IDs are refused.
  grpc::Status Allocate(grpc::ServerContext* ctx, const v1beta1::AllocateRequest* req,
                        v1beta1::AllocateResponse* out) override;
  /// Not requested (pre_start_required false): answers empty.
  grpc::Status PreStartContainer(grpc::ServerContext* ctx, const v1beta1::PreStartContainerRequest* req,
                                 v1beta1::PreStartContainerResponse* out) override;

 private:
  const Kind kind_;
  Inventory* const inv_;
  const AllocateOptions opts_;
  const std::chrono::milliseconds hint_window_;
  std::atomic<bool> stopping_{false};
};

}  // namespace gem::dp
