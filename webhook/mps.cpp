// NVIDIA MPS for the shared pods (mps.h). Pure; thread-safe.
#include "mps.h"

#include "mutate.h"

namespace gemwh {

using nlohmann::json;

namespace {

// True when `path` is `dir` or inside it (both clean absolute paths).
bool at_or_under(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

}  // namespace

bool valid_mps_pipe_directory(const std::string& dir, std::string* why) {
  auto fail = [&](std::string text) {
    if (why) *why = "\"" + dir + "\" " + std::move(text);
    return false;
  };
  if (dir.empty() || dir[0] != '/') return fail("is not an absolute path");
  if (dir == "/") return fail("is the root directory");
  if (dir.size() > kMaxMpsPipeDirectory) {
    return fail("is longer than " + std::to_string(kMaxMpsPipeDirectory) +
                " characters (MPS puts Unix sockets in it)");
  }
  for (char ch : dir) {
    if (ch <= ' ' || ch > '~') return fail("has a space or a character that is not printable ASCII");
  }
  for (size_t start = 1; start <= dir.size();) {
    size_t end = dir.find('/', start);
    if (end == std::string::npos) end = dir.size();
    const std::string part = dir.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return fail("is not a clean path (an empty, \".\" or \"..\" component, or a trailing \"/\")");
    }
    start = end + 1;
  }
  if (at_or_under(kSchedHostPath, dir)) {
    return fail(std::string("is or contains the schedulers' socket directory ") + kSchedHostPath);
  }
  for (const char* hook : {kLibHostPath, kLibMountPath}) {
    if (at_or_under(hook, dir) || at_or_under(dir, hook)) {
      return fail(std::string("overlaps the hook's directory ") + hook);
    }
  }
  return true;
}

bool patch_mps_host_ipc(const json& spec, PatchBuilder* patch, std::string* err) {
  auto it = spec.find("hostIPC");
  if (it == spec.end() || it->is_null()) {
    patch->add("/spec/hostIPC", true);
    return true;
  }
  if (!it->is_boolean()) {
    *err = "spec.hostIPC is not a boolean";
    return false;
  }
  if (!it->get<bool>()) {
    *err = std::string("spec.hostIPC is false, but this cluster runs shared GPU containers as NVIDIA MPS clients (") +
           kMpsPipeEnv + "), which need the node's IPC namespace: remove hostIPC: false";
    return false;
  }
  return true;
}

}  // namespace gemwh
