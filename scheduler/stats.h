// gem-schd --stats: the JSON usage file (docs/interfaces.md, "gem-schd"), written by
// Server::write_stats (server_stats.cpp). Pure.
#pragma once

#include <nlohmann/json.hpp>

#include "metrics.h"

namespace gem::sched {

/// The --stats file's object for one client: the fields of `c` (the record the metrics show too)
/// under the file's names: request, limit, gpu_mem (bytes), used_us_total (µs), share_window,
/// grants, connected, mem_bytes, resident, evictions, latency_us (µs), coruns, revocations, corun.
nlohmann::json stats_record(const ClientView& c);

}  // namespace gem::sched
