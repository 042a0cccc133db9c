#include "gem/build_info.h"

#include <string>

#include "gem/protocol.h"

#ifndef GEM_REVISION
#define GEM_REVISION "unknown"
#endif

namespace gem {

const char* build_revision() { return GEM_REVISION; }

const char* build_protocol() {
  static const std::string v = std::to_string(proto::kVersion);
  return v.c_str();
}

void write_build_info(prom::Writer* w) {
  w->family("gem_build_info", "gauge", "1, labelled with the build's git revision and the wire protocol version.");
  w->sample("gem_build_info", {{"version", build_revision()}, {"protocol", build_protocol()}}, 1);
}

}  // namespace gem
