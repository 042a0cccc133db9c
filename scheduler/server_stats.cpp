// gem-schd --stats: the JSON usage file (docs/interfaces.md), rewritten atomically.
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "gem/log.h"
#include "server.h"

namespace gem::sched {

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
  for (const std::string& name : policy_.clients()) {
    const auto s = policy_.stats(name, now);
    const proto::ClientSettings set = settings_of(name);
    const GpuResidency::Client* r = residency_.client(name);
    j["clients"][name] = {{"request", s->request},         {"limit", s->limit},
                          {"gpu_mem", set.gpu_mem_bytes},  {"used_us_total", s->used_total},
                          {"share_window", s->share},      {"grants", s->grants},
                          {"connected", fd_of_client_.count(name) != 0},
                          {"mem_bytes", r != nullptr ? r->bytes : 0},
                          {"resident", r == nullptr || r->resident || !r->um},
                          {"evictions", r != nullptr ? r->evictions : 0},
                          {"latency_us", s->latency},      {"coruns", s->coruns},
                          {"revocations", s->revocations}, {"corun", s->corun}};
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
