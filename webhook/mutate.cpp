#include "mutate.h"

#include <algorithm>

#include "env_var.h"
#include "mps.h"
#include "placement.h"

namespace gemwh {

using nlohmann::json;

namespace {

// The webhook owns the names of hook_env(opts) in GPU containers: entries the user set under them
// are removed (one element each) and the webhook's definitions appended, so POD_NAME can rely on
// the two variables before it. POD_MANAGER_SOCKET would make the hook bypass the IP/port: removed only.
const char* const kRemovedEnv[] = {"POD_MANAGER_SOCKET"};

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string str_member(const json& obj, const char* key) {
  const json* v = member(obj, key);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

// An optional list field: absent/null is fine, otherwise it must be an array of objects.
bool object_list(const json& obj, const char* key, const json** out, std::string* err,
                 const std::string& where) {
  *out = member(obj, key);
  if (!*out) return true;
  if (!(*out)->is_array()) {
    *err = where + "." + key + " is not a list";
    return false;
  }
  for (const auto& e : **out) {
    if (!e.is_object()) {
      *err = where + "." + key + " has an element that is not an object";
      return false;
    }
  }
  return true;
}

bool quantity_nonzero(const json& q) {
  if (q.is_number()) return q.get<double>() != 0;
  if (q.is_string()) {
    std::string s = q.get<std::string>();
    return !s.empty() && s.find_first_not_of("0.") != std::string::npos;
  }
  return false;
}

bool uses_gpu(const json& container, const std::string& resource) {
  const json* res = member(container, "resources");
  if (!res) return false;
  for (const char* kind : {"limits", "requests"}) {
    const json* m = member(*res, kind);
    for (const std::string& name : {resource, std::string(kResShare), std::string(kResMemory)}) {
      const json* q = m ? member(*m, name.c_str()) : nullptr;
      if (q && quantity_nonzero(*q)) return true;
    }
  }
  return false;
}

// Same definition, ignoring fields the API server defaults (fieldRef.apiVersion).
bool env_matches(const json& have, const json& want) {
  if (want.contains("value")) {
    const json* v = member(have, "value");
    return v && *v == want["value"] && !member(have, "valueFrom");
  }
  const json* vf = member(have, "valueFrom");
  const json* fr = vf ? member(*vf, "fieldRef") : nullptr;
  return fr && !member(have, "value") &&
         str_member(*fr, "fieldPath") == want["valueFrom"]["fieldRef"]["fieldPath"].get<std::string>();
}

bool preload_has_hook(const std::string& value) {
  // ld.so splits LD_PRELOAD at ':' and ' '.
  size_t start = 0;
  while (start <= value.size()) {
    size_t end = value.find_first_of(": ", start);
    if (end == std::string::npos) end = value.size();
    if (value.compare(start, end - start, kHookPath) == 0) return true;
    start = end + 1;
  }
  return false;
}

// Mounts volume `name` at `path` in container `c` at `base` unless it is mounted there; false when
// something else is. `mounts`: the container's volumeMounts (null: none). *listed: whether the list
// exists, counting one this patch created (set then, so that a second call appends to it).
bool patch_mount(const json& c, const std::string& base, const json* mounts, bool* listed, const std::string& name,
                 const std::string& path, bool read_only, PatchBuilder* p, std::string* err) {
  if (mounts) {
    for (const auto& m : *mounts) {
      std::string at = str_member(m, "mountPath");
      while (at.size() > 1 && at.back() == '/') at.pop_back();
      if (at != path) continue;
      if (str_member(m, "name") != name) {
        *err = "container " + str_member(c, "name") + " already mounts something else at " + path;
        return false;
      }
      return true;
    }
  }
  json m = {{"name", name}, {"mountPath", path}};
  if (read_only) m["readOnly"] = true;
  if (*listed) {
    p->add(base + "/volumeMounts/-", m);
  } else {
    p->add(base + "/volumeMounts", json::array({m}));
    *listed = true;
  }
  return true;
}

// Adds the hook's env, LD_PRELOAD, the hook mount and (MPS on) the MPS pipe directory's mount to one
// container at `base` ("/spec/containers/3").
bool patch_container(const json& c, const std::string& base, const MutateOptions& opts, PatchBuilder* p,
                     std::string* err) {
  const json* env = nullptr;
  if (!object_list(c, "env", &env, err, base)) return false;
  const json* mounts = nullptr;
  if (!object_list(c, "volumeMounts", &mounts, err, base)) return false;

  json want = hook_env(opts);

  if (!env || env->empty()) {
    json all = want;
    all.push_back(value_env("LD_PRELOAD", kHookPath));
    if (!env) {
      p->add(base + "/env", all);  // a new key holding a one-container list: not a replacement
    } else {
      for (const auto& e : all) p->add(base + "/env/-", e);
    }
  } else {
    // LD_PRELOAD: the last definition is the one the kubelet uses.
    long last_preload = -1;
    for (size_t j = 0; j < env->size(); ++j) {
      if (str_member((*env)[j], "name") == "LD_PRELOAD") last_preload = long(j);
    }
    json preload_append;  // null: nothing to append
    if (last_preload < 0) {
      preload_append = value_env("LD_PRELOAD", kHookPath);
    } else {
      const json& e = (*env)[size_t(last_preload)];
      const std::string at = base + "/env/" + std::to_string(last_preload);
      if (member(e, "valueFrom")) {
        // Cannot prepend to a value from a ConfigMap/Secret/field: define LD_PRELOAD again after it;
        // "$(LD_PRELOAD)" expands to the earlier definition (dependent environment variables).
        preload_append = value_env("LD_PRELOAD", std::string(kHookPath) + ":$(LD_PRELOAD)");
      } else {
        const json* v = member(e, "value");
        if (v && !v->is_string()) {
          *err = base + "/env/" + std::to_string(last_preload) + " LD_PRELOAD value is not a string";
          return false;
        }
        std::string old = v ? v->get<std::string>() : std::string();
        if (!preload_has_hook(old)) {
          std::string now = old.empty() ? std::string(kHookPath) : std::string(kHookPath) + ":" + old;
          if (v) {
            p->test(at + "/value", old);
            p->replace(at + "/value", now);
          } else {
            p->test(at + "/name", "LD_PRELOAD");
            p->add(at + "/value", now);
          }
        }
      }
    }

    // The owned variables: keep them when all are there once, in order, with our values.
    bool intact = true;
    std::vector<size_t> pos;
    for (const auto& w : want) {
      const std::string name = w["name"].get<std::string>();
      long found = -1;
      int count = 0;
      for (size_t j = 0; j < env->size(); ++j) {
        if (str_member((*env)[j], "name") == name) {
          found = long(j);
          ++count;
        }
      }
      if (count != 1 || !env_matches((*env)[size_t(found)], w) ||
          (!pos.empty() && size_t(found) < pos.back())) {
        intact = false;
        break;
      }
      pos.push_back(size_t(found));
    }
    std::vector<size_t> remove;
    for (size_t j = 0; j < env->size(); ++j) {
      const std::string name = str_member((*env)[j], "name");
      bool owned = std::any_of(want.begin(), want.end(), [&](const json& w) { return w["name"] == name; });
      bool removed =
          std::find(std::begin(kRemovedEnv), std::end(kRemovedEnv), name) != std::end(kRemovedEnv);
      if ((owned && !intact) || removed) remove.push_back(j);
    }
    for (auto it = remove.rbegin(); it != remove.rend(); ++it) {
      const std::string at = base + "/env/" + std::to_string(*it);
      p->test(at + "/name", str_member((*env)[*it], "name"));
      p->remove(at);
    }
    if (!intact) {
      for (const auto& w : want) p->add(base + "/env/-", w);
    }
    if (preload_append.is_object()) p->add(base + "/env/-", preload_append);
  }

  // The hook's volume, read-only; the MPS pipe directory read-write, as the daemon mounts it.
  bool listed = mounts != nullptr;
  if (!patch_mount(c, base, mounts, &listed, kLibVolume, kLibMountPath, true, p, err)) return false;
  return opts.mps_pipe_directory.empty() ||
         patch_mount(c, base, mounts, &listed, kMpsVolume, opts.mps_pipe_directory, false, p, err);
}

json host_path_volume(const std::string& name, const std::string& path) {
  return {{"name", name}, {"hostPath", {{"path", path}, {"type", "Directory"}}}};
}

}  // namespace

MutateResult mutate_pod(const json& pod, const MutateOptions& opts) {
  MutateResult r;
  try {
    if (!pod.is_object()) {
      r.outcome = Outcome::kInvalid;
      r.message = "the object is not a JSON object";
      return r;
    }
    const json* meta = member(pod, "metadata");
    const json* labels = meta ? member(*meta, "labels") : nullptr;
    if (!labels || str_member(*labels, kLabelEnabled) != "true") return r;  // kNotOptedIn

    std::string err;
    auto invalid = [&](std::string why) {
      r.outcome = Outcome::kInvalid;
      r.message = std::move(why);
      r.patch = PatchBuilder();
      return r;
    };
    const json* annotations = meta ? member(*meta, "annotations") : nullptr;
    if (annotations && !annotations->is_object()) return invalid("metadata.annotations is not a map");
    const json* spec = member(pod, "spec");
    if (!spec || !spec->is_object()) return invalid("spec is missing");
    // The device plugin's resources first (what kube-scheduler counted), then the annotations.
    ResourceAsk ask;
    if (!resource_ask(*spec, &ask, &err)) return invalid(err);
    SharingSettings settings;
    if (!settings_for_pod(annotations ? *annotations : json(), ask, opts.defaults, &settings, &err, &r.warnings,
                          opts.memory_unit_mib)) {
      return invalid(err);
    }
    if (opts.gpu_resource != kResShare && opts.gpu_resource != kResMemory &&
        !check_one_kind_of_gpu(*spec, opts.gpu_resource, &err)) {
      return invalid(err);
    }
    const json *containers = nullptr, *inits = nullptr, *volumes = nullptr;
    if (!object_list(*spec, "containers", &containers, &err, "spec")) return invalid(err);
    if (!containers || containers->empty()) return invalid("spec.containers is missing or empty");
    if (!object_list(*spec, "initContainers", &inits, &err, "spec")) return invalid(err);
    if (!object_list(*spec, "volumes", &volumes, &err, "spec")) return invalid(err);

    // The pod manager, from an earlier invocation (reinvocation), in either mode: a regular container
    // (container mode) running gem-pmgr, or a native sidecar init container.
    bool have_sidecar = false;
    for (const auto& c : *containers) {
      if (str_member(c, "name") != kSidecarName) continue;
      const json* cmd = member(c, "command");
      if (!cmd || *cmd != json::array({"gem-pmgr"})) {
        return invalid(std::string("container name ") + kSidecarName + " is reserved");
      }
      have_sidecar = true;
    }
    if (inits) {
      for (const auto& c : *inits) {
        if (str_member(c, "name") != kSidecarName) continue;
        if (str_member(c, "restartPolicy") != "Always") {
          return invalid(std::string("init container name ") + kSidecarName + " is reserved");
        }
        have_sidecar = true;
      }
    }

    struct Target {
      const json* c;
      std::string base;
    };
    std::vector<Target> targets;
    if (inits) {
      for (size_t i = 0; i < inits->size(); ++i) {
        const json& c = (*inits)[i];
        if (str_member(c, "name") != kSidecarName && uses_gpu(c, opts.gpu_resource)) {
          targets.push_back({&c, "/spec/initContainers/" + std::to_string(i)});
        }
      }
    }
    for (size_t i = 0; i < containers->size(); ++i) {
      if (uses_gpu((*containers)[i], opts.gpu_resource)) {
        targets.push_back({&(*containers)[i], "/spec/containers/" + std::to_string(i)});
      }
    }
    if (targets.empty()) {
      r.outcome = have_sidecar ? Outcome::kUnchanged : Outcome::kNoGpu;
      if (!have_sidecar) {
        r.warnings.push_back(std::string("gemini: pod has label ") + kLabelEnabled +
                             "=true but no container requests " + opts.gpu_resource +
                             (opts.gpu_resource == kResShare ? std::string() : std::string(" or ") + kResShare) +
                             "; it is not put under GPU sharing");
      }
      return r;
    }

    PatchBuilder& p = r.patch;
    if (!annotations) {
      p.add("/metadata/annotations", json{{kAnnMutated, "true"}});
    } else if (str_member(*annotations, kAnnMutated) != "true") {
      p.add(std::string("/metadata/annotations/") + escape_pointer_token(kAnnMutated), "true");
    }
    for (const auto& t : targets) {
      if (!patch_container(*t.c, t.base, opts, &p, &err)) return invalid(err);
    }

    // Volumes: the hook directory (user containers), the schedulers' sockets (sidecar only), and
    // MPS's pipe directory (user containers; MPS on).
    std::vector<std::pair<std::string, std::string>> reserved = {{kLibVolume, kLibHostPath},
                                                                 {kSchedVolume, kSchedHostPath}};
    if (!opts.mps_pipe_directory.empty()) {
      reserved.emplace_back(kMpsVolume, opts.mps_pipe_directory);
      if (!patch_mps_host_ipc(*spec, &p, &err)) return invalid(err);
    }
    json new_volumes = json::array();
    for (const auto& [name, path] : reserved) {
      bool found = false;
      if (volumes) {
        for (const auto& v : *volumes) {
          if (str_member(v, "name") != name) continue;
          const json* hp = member(v, "hostPath");
          if (!hp || str_member(*hp, "path") != path) {
            return invalid("volume name " + name + " is reserved (the webhook's hostPath " + path + ")");
          }
          found = true;
        }
      }
      if (!found) new_volumes.push_back(host_path_volume(name, path));
    }
    if (!new_volumes.empty()) {
      if (volumes) {
        for (auto& v : new_volumes) p.add("/spec/volumes/-", v);
      } else {
        p.add("/spec/volumes", new_volumes);
      }
    }

    // Shared nodes only, which only governed pods tolerate.
    if (opts.shared_nodes && (ask.share > 0 || ask.memory > 0) && !patch_shared_node_placement(*spec, &p, &err)) {
      return invalid(err);
    }

    // Last: inserting at initContainers/0 shifts the indices the operations above used.
    if (!have_sidecar && opts.sidecar_mode == SidecarMode::kContainer) {
      // Appended, so the user's containers keep their indices (kubectl's default container).
      p.add("/spec/containers/-", pod_manager_sidecar(settings, opts));
    } else if (!have_sidecar) {
      json sidecar = pod_manager_sidecar(settings, opts);
      if (inits) {
        p.add("/spec/initContainers/0", sidecar);
      } else {
        p.add("/spec/initContainers", json::array({sidecar}));
      }
    }
    r.outcome = p.empty() ? Outcome::kUnchanged : Outcome::kPatched;
    return r;
  } catch (const std::exception& e) {  // defensive: a JSON type error in an unforeseen shape
    r.outcome = Outcome::kInvalid;
    r.message = std::string("malformed pod: ") + e.what();
    r.patch = PatchBuilder();
    return r;
  }
}

}  // namespace gemwh
