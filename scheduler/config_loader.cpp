#include "config_loader.h"

#include <utility>

namespace gem::sched {

ConfigLoader::ConfigLoader(std::string path)
    : FileLoader<Config>(path, kMaxConfigBytes, [path](const std::string& text, Config* out, std::string* err) {
        ConfigError cerr;
        if (parse_config(text, path, out, &cerr)) return true;
        *err = cerr.to_string();
        return false;
      }) {}

}  // namespace gem::sched
