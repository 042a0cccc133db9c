// gem-schd --stats: the JSON usage file (docs/interfaces.md), rewritten atomically.
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "gem/log.h"
#include "server.h"
#include "stats.h"

namespace gem::sched {

nlohmann::json stats_record(const ClientView& c) {
  return {{"request", c.request},         {"limit", c.limit},
          {"gpu_mem", c.gpu_mem},         {"used_us_total", c.used_total},
          {"share_window", c.share},      {"grants", c.grants},
          {"connected", c.connected},     {"mem_bytes", c.mem_bytes},
          {"resident", c.resident},       {"evictions", c.evictions},
          {"latency_us", c.latency},      {"coruns", c.coruns},
          {"revocations", c.revocations}, {"corun", c.corun}};
}

void Server::write_stats() {
  const Micros now = mono_us();
  last_stats_ = now;
  nlohmann::json j;
  j["time_us"] = now;
  j["window_us"] = policy_.options().window;
  j["holder"] = policy_.holder().empty() ? nlohmann::json(nullptr) : nlohmann::json(policy_.holder());
  j["corunners"] = policy_.corunners();
  j["mem_budget"] = residency_.enabled() ? residency_.budget() : 0;
  j["resident_bytes"] = residency_.resident_bytes();
  if (health_ != nullptr) {
    const GpuHealthView h = health_->view();
    j["health"] = {{"watched", h.watched}, {"lost", h.lost}, {"xid_errors", h.xid_errors},
                   {"last_xid", h.last_xid}, {"reason", h.reason}};
  }
  j["clients"] = nlohmann::json::object();
  for (const std::string& name : policy_.clients()) j["clients"][name] = stats_record(client_view(name, now));
  j["refused"] = nlohmann::json::object();
  for (const Refused& r : refusals_.recent(now)) {
    j["refused"][r.client] = {{"reason", r.reason}, {"kind", r.kind}, {"last_us", r.last}, {"count", r.count}};
  }
  const std::string tmp = opts_.stats_path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) {
    LOG_WARN("cannot write %s: %s", tmp.c_str(), std::strerror(errno));
    return;
  }
  const std::string text = j.dump(1) + "\n";
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  if (std::rename(tmp.c_str(), opts_.stats_path.c_str()) != 0) {
    LOG_WARN("cannot rename %s: %s", tmp.c_str(), std::strerror(errno));
  }
}

}  // namespace gem::sched
