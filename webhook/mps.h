// NVIDIA MPS (Multi-Process Service) for the shared pods, an option (gem-webhook --mps_pipe_directory;
// docs/kubernetes.md, "MPS for latency clients (option)"). With it on, every container that gets the
// hook also gets CUDA_MPS_PIPE_DIRECTORY=DIR (hook_env) and the node's DIR mounted read-write at DIR
// (volume kMpsVolume, a hostPath of type Directory, which mutate_pod adds with the other reserved
// volumes), and the pod gets spec.hostIPC: true. The node DaemonSet of webhook/deploy/overlays/mps
// runs the MPS control daemon on DIR. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "patch.h"

namespace gemwh {

/// The reserved pod volume name of the MPS pipe directory (a hostPath, type Directory).
inline constexpr const char* kMpsVolume = "gemini-mps-pipe";
/// The variable that points an MPS client (libcuda) at the control daemon's pipe directory (NVIDIA,
/// "Multi-Process Service", "Environment Variables").
inline constexpr const char* kMpsPipeEnv = "CUDA_MPS_PIPE_DIRECTORY";
/// The longest pipe directory accepted, in characters: MPS puts Unix sockets there (sun_path holds
/// 108 bytes); the same bound as tools/gemtools/mps.py's MAX_PIPE_DIRECTORY.
inline constexpr std::size_t kMaxMpsPipeDirectory = 80;

/// True when `dir` can be gem-webhook --mps_pipe_directory: an absolute path of at most
/// kMaxMpsPipeDirectory printable ASCII characters without spaces, every component non-empty and
/// neither "." nor ".." (so not "/", no "//", no trailing "/"), that neither is nor contains the
/// schedulers' socket directory (kSchedHostPath: user containers would reach gem-schd) nor
/// overlaps the hook's directory on the node or in the container (kLibHostPath, kLibMountPath:
/// equal, inside or containing). The empty string (the option off) is not checked here. On false,
/// `why` (if given) says what is wrong, without the flag's name.
bool valid_mps_pipe_directory(const std::string& dir, std::string* why = nullptr);

/// Adds to `patch` spec.hostIPC: true for pod `spec` (a core/v1 PodSpec as JSON) unless it is
/// already true (reinvocation: nothing added). False with *err when spec.hostIPC is false or not a
/// boolean: the pod then cannot be an MPS client and is refused.
bool patch_mps_host_ipc(const nlohmann::json& spec, PatchBuilder* patch, std::string* err);

}  // namespace gemwh
