#include "placement.h"

#include <algorithm>

#include "settings.h"

namespace gemwh {

using nlohmann::json;

namespace {

const json* find_key(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string text(const json& obj, const char* key) {
  const json* v = find_key(obj, key);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

bool nonzero(const json& q) {
  if (q.is_number()) return q.get<double>() != 0;
  if (!q.is_string()) return false;
  const std::string s = q.get<std::string>();
  return !s.empty() && s.find_first_not_of("0.") != std::string::npos;
}

// True when the container's limits or requests name `resource` with a quantity other than 0.
bool asks(const json& container, const char* resource) {
  const json* res = find_key(container, "resources");
  if (!res) return false;
  for (const char* kind : {"limits", "requests"}) {
    const json* m = find_key(*res, kind);
    const json* q = m ? find_key(*m, resource) : nullptr;
    if (q && nonzero(*q)) return true;
  }
  return false;
}

}  // namespace

json shared_node_toleration() {
  return {{"key", kSharedNodeKey}, {"operator", "Equal"}, {"value", kSharedNodeValue}, {"effect", kSharedNodeEffect}};
}

bool tolerates_shared_node(const json& tolerations) {
  if (!tolerations.is_array()) return false;
  for (const auto& t : tolerations) {
    const std::string key = text(t, "key"), op = text(t, "operator"), effect = text(t, "effect");
    if (!effect.empty() && effect != kSharedNodeEffect) continue;
    if (op == "Exists" && (key.empty() || key == kSharedNodeKey)) return true;
    // operator defaults to Equal.
    if ((op.empty() || op == "Equal") && key == kSharedNodeKey && text(t, "value") == kSharedNodeValue) return true;
  }
  return false;
}

bool patch_shared_node_placement(const json& spec, PatchBuilder* patch, std::string* err) {
  const json* tol = find_key(spec, "tolerations");
  if (tol && (!tol->is_array() || !std::all_of(tol->begin(), tol->end(), [](const json& t) { return t.is_object(); }))) {
    *err = "spec.tolerations is not a list of objects";
    return false;
  }
  const json* sel = find_key(spec, "nodeSelector");
  if (sel && !sel->is_object()) {
    *err = "spec.nodeSelector is not a map";
    return false;
  }
  const json* have = sel ? find_key(*sel, kSharedNodeKey) : nullptr;
  if (have && *have != kSharedNodeValue) {
    *err = std::string("spec.nodeSelector ") + kSharedNodeKey + "=" + (have->is_string() ? have->get<std::string>() : have->dump()) +
           " excludes the shared nodes that gemini.gpu-sharing.io/gpu-share and /gpu-memory are on; remove it";
    return false;
  }
  if (!tol) {
    patch->add("/spec/tolerations", json::array({shared_node_toleration()}));
  } else if (!tolerates_shared_node(*tol)) {
    patch->add("/spec/tolerations/-", shared_node_toleration());
  }
  if (!sel) {
    patch->add("/spec/nodeSelector", json{{kSharedNodeKey, kSharedNodeValue}});
  } else if (!have) {
    patch->add(std::string("/spec/nodeSelector/") + escape_pointer_token(kSharedNodeKey), kSharedNodeValue);
  }
  return true;
}

bool check_one_kind_of_gpu(const json& spec, const std::string& gpu_resource, std::string* err) {
  std::string whole, shared;  // the first container asking for each kind
  for (const char* list : {"initContainers", "containers"}) {
    const json* cs = find_key(spec, list);
    if (!cs || !cs->is_array()) continue;
    for (const auto& c : *cs) {
      const std::string name = text(c, "name");
      if (whole.empty() && asks(c, gpu_resource.c_str())) whole = name.empty() ? "?" : name;
      if (shared.empty() && (asks(c, kResShare) || asks(c, kResMemory))) shared = name.empty() ? "?" : name;
    }
  }
  if (whole.empty() || shared.empty()) return true;
  *err = std::string("the pod asks for both ") + gpu_resource + " (container " + whole + ") and a shared GPU (" +
         kResShare + " or " + kResMemory + ", container " + shared + "); a pod takes whole GPUs or a share of one, " +
         "and shared nodes do not advertise " + gpu_resource + ": remove " + gpu_resource;
  return false;
}

}  // namespace gemwh
