// Reloads resource-config.txt off gem-schd's poll loop (issue 6): FileLoader (file_loader.h) with
// parse_config and gem::kMaxConfigBytes. The loop only swaps the parsed Config in.
#pragma once

#include <string>

#include "gem/config.h"
#include "file_loader.h"

namespace gem::sched {

using ConfigUpdate = FileUpdate<Config>;

/// FileLoader<Config> for `path`; see file_loader.h for start(), fd(), take() and thread-safety.
class ConfigLoader : public FileLoader<Config> {
 public:
  explicit ConfigLoader(std::string path);
};

}  // namespace gem::sched
