#include "stats.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "settings.h"

namespace gem::hook {

namespace {

const char* const kNames[] = {
#define GEM_LAUNCH(name, params, args, stream, ptsz) #name,
#include "cuda_hooks.def"
};

std::string report_json() {
  Counters& c = counters();
  std::string s = "{\"pid\": " + std::to_string(getpid()) + ", \"launches\": {";
  for (int i = 0; i < kLaunchIdCount; ++i) {
    if (i) s += ", ";
    s += std::string("\"") + kNames[i] + "\": " + std::to_string(c.launches[i].load());
  }
  s += "}, \"tokens\": " + std::to_string(c.tokens.load()) +
       ", \"unthrottled_launches\": " + std::to_string(c.unthrottled_launches.load()) +
       ", \"revocations\": " + std::to_string(c.revocations.load());
  const std::pair<const char*, const std::atomic<uint64_t>*> more[] = {
      {"evictions", &c.evictions},     {"evicted_bytes", &c.evicted_bytes},         {"prefetches", &c.prefetches},
      {"prefetched_bytes", &c.prefetched_bytes}, {"prefetch_us_total", &c.prefetch_us_total},
      {"prefetch_us_max", &c.prefetch_us_max}, {"cache_empties", &c.cache_empties},
      {"captured_launches", &c.captured_launches}, {"capture_drains", &c.capture_drains}};
  for (const auto& [name, v] : more) s += std::string(", \"") + name + "\": " + std::to_string(v->load());
  s += "}\n";
  return s;
}

void report() {
  const Settings& s = settings();
  const std::string j = report_json();
  if (s.print_stats) std::fprintf(stderr, "gemhook stats: %s", j.c_str());
  if (!s.stats_file.empty()) {
    if (FILE* f = std::fopen(s.stats_file.c_str(), "w")) {
      std::fputs(j.c_str(), f);
      std::fclose(f);
    }
  }
}

}  // namespace

Counters& counters() {
  static Counters* c = new Counters();  // never destroyed: launches may run during exit
  return *c;
}

void install_stats_report() {
  static const bool once = [] {
    const Settings& s = settings();
    if (s.print_stats || !s.stats_file.empty()) std::atexit(report);
    return true;
  }();
  (void)once;
}

}  // namespace gem::hook
