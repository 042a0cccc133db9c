// Endpoint: see endpoint.h.
#include "endpoint.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gem/log.h"

namespace gem::dp {

Endpoint::Endpoint(Kind kind, Inventory* inv, AllocateOptions opts, std::string dir, std::string socket_name,
                   std::chrono::milliseconds hint_window)
    : plugin_(kind, inv, std::move(opts), hint_window), dir_(std::move(dir)), socket_name_(std::move(socket_name)) {}

bool Endpoint::start(std::string* why) {
  stop();
  const std::string p = path();
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
    *why = "cannot remove " + p + ": " + std::strerror(errno);
    return false;
  }
  plugin_.resume();
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + p, grpc::InsecureServerCredentials());
  builder.RegisterService(&plugin_);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr) {
    *why = "cannot serve on " + p;
    return false;
  }
  LOG_INFO("%s: serving on %s", resource_name(plugin_.kind()), p.c_str());
  return true;
}

void Endpoint::stop(std::chrono::milliseconds grace) {
  if (server_ == nullptr) return;
  plugin_.stop();
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  server_.reset();
  ::unlink(path().c_str());
}

bool Endpoint::socket_present() const {
  struct stat st;
  return ::stat(path().c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool Endpoint::register_with(const std::string& kubelet_socket, std::chrono::milliseconds timeout,
                             std::string* why) const {
  auto channel = grpc::CreateChannel("unix:" + kubelet_socket, grpc::InsecureChannelCredentials());
  auto stub = v1beta1::Registration::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  ctx.set_wait_for_ready(true);  // wait (within the deadline) for kubelet to accept the connection
  v1beta1::RegisterRequest req;
  req.set_version(kApiVersion);
  req.set_endpoint(socket_name_);
  req.set_resource_name(resource_name(plugin_.kind()));
  req.mutable_options()->set_pre_start_required(false);
  req.mutable_options()->set_get_preferred_allocation_available(true);
  v1beta1::Empty resp;
  const grpc::Status s = stub->Register(&ctx, req, &resp);
  if (!s.ok()) {
    *why = "Register " + std::string(resource_name(plugin_.kind())) + " with " + kubelet_socket + ": " +
           s.error_message() + " (gRPC code " + std::to_string(static_cast<int>(s.error_code())) + ")";
    return false;
  }
  return true;
}

}  // namespace gem::dp
