// ResourcePlugin: see plugin.h.
#include "plugin.h"

#include <exception>

#include "gem/log.h"

namespace gem::dp {

namespace {
// Runs `body`, turning an escaping exception into INTERNAL (gRPC must not see one).
template <typename Body>
grpc::Status guarded(const char* what, Body&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    LOG_ERROR("%s: %s", what, e.what());
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string(what) + ": " + e.what());
  } catch (...) {
    LOG_ERROR("%s: unknown exception", what);
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string(what) + ": unknown exception");
  }
}
}  // namespace

void ResourcePlugin::stop() {
  stopping_ = true;
  inv_->wake();
}

grpc::Status ResourcePlugin::GetDevicePluginOptions(grpc::ServerContext*, const v1beta1::Empty*,
                                                    v1beta1::DevicePluginOptions* out) {
  return guarded("GetDevicePluginOptions", [&] {
    out->set_pre_start_required(false);
    out->set_get_preferred_allocation_available(true);
    return grpc::Status::OK;
  });
}

grpc::Status ResourcePlugin::ListAndWatch(grpc::ServerContext* ctx, const v1beta1::Empty*,
                                          grpc::ServerWriter<v1beta1::ListAndWatchResponse>* writer) {
  return guarded("ListAndWatch", [&] {
    uint64_t sent = 0;
    while (!stopping_ && !ctx->IsCancelled()) {
      const uint64_t now = inv_->wait_change(sent, Inventory::Clock::now() + std::chrono::milliseconds(kStreamPollMs));
      if (now == sent || stopping_) continue;
      v1beta1::ListAndWatchResponse resp;
      list_devices(*inv_, kind_, &resp);
      if (!writer->Write(resp)) break;  // kubelet went away
      LOG_INFO("%s: sent %d devices (version %llu)", resource_name(kind_), resp.devices_size(),
               static_cast<unsigned long long>(now));
      sent = now;
    }
    return grpc::Status::OK;
  });
}

grpc::Status ResourcePlugin::GetPreferredAllocation(grpc::ServerContext*, const v1beta1::PreferredAllocationRequest* req,
                                                    v1beta1::PreferredAllocationResponse* out) {
  return guarded("GetPreferredAllocation", [&] {
    const std::string hint = inv_->recent_gpu(hint_window_);
    for (const auto& c : req->container_requests()) preferred(*inv_, kind_, c, hint, out->add_container_responses());
    return grpc::Status::OK;
  });
}

grpc::Status ResourcePlugin::Allocate(grpc::ServerContext*, const v1beta1::AllocateRequest* req,
                                      v1beta1::AllocateResponse* out) {
  return guarded("Allocate", [&] {
    std::string uuid, why;
    for (const auto& c : req->container_requests()) {
      if (!allocate(*inv_, kind_, opts_, c, out->add_container_responses(), &uuid, &why)) {
        LOG_WARN("Allocate %s refused: %s", resource_name(kind_), why.c_str());
        out->Clear();
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, why);
      }
      inv_->note_allocation(uuid);
      LOG_INFO("Allocate %s: %d devices of %s", resource_name(kind_), c.devicesids_size(), uuid.c_str());
    }
    return grpc::Status::OK;
  });
}

grpc::Status ResourcePlugin::PreStartContainer(grpc::ServerContext*, const v1beta1::PreStartContainerRequest*,
                                               v1beta1::PreStartContainerResponse*) {
  return grpc::Status::OK;
}

}  // namespace gem::dp
