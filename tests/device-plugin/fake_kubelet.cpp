// FakeKubelet, TempDir, dial(): see fake_kubelet.h.
#include "fake_kubelet.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace gem::dp::test {

TempDir::TempDir() {
  char tmpl[] = "/tmp/gem-dp-XXXXXX";
  if (mkdtemp(tmpl) != nullptr) path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

bool FakeKubelet::start() {
  stop();
  ::unlink(socket_path().c_str());
  grpc::ServerBuilder b;
  b.AddListeningPort("unix:" + socket_path(), grpc::InsecureServerCredentials());
  b.RegisterService(this);
  server_ = b.BuildAndStart();
  return server_ != nullptr;
}

void FakeKubelet::stop() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  server_.reset();
  ::unlink(socket_path().c_str());
}

grpc::Status FakeKubelet::Register(grpc::ServerContext*, const v1beta1::RegisterRequest* req, v1beta1::Empty*) {
  if (req->version() != "v1beta1")
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unsupported API version " + req->version());
  struct stat st;
  const std::string endpoint = dir_ + "/" + req->endpoint();
  if (req->endpoint().find('/') != std::string::npos || ::stat(endpoint.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode))
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no socket at " + endpoint);
  std::lock_guard<std::mutex> lk(mu_);
  accepted_.push_back(*req);
  cv_.notify_all();
  return grpc::Status::OK;
}

bool FakeKubelet::wait_registrations(size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_for(lk, timeout, [&] { return accepted_.size() >= n; });
}

std::vector<v1beta1::RegisterRequest> FakeKubelet::accepted() const {
  std::lock_guard<std::mutex> lk(mu_);
  return accepted_;
}

std::unique_ptr<v1beta1::DevicePlugin::Stub> dial(const std::string& path) {
  return v1beta1::DevicePlugin::NewStub(grpc::CreateChannel("unix:" + path, grpc::InsecureChannelCredentials()));
}

std::unique_ptr<grpc::ClientContext> context(std::chrono::milliseconds timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

}  // namespace gem::dp::test
