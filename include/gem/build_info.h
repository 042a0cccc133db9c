// What build a daemon is (gem_build_info, the Prometheus `<name>_build_info` convention:
// https://www.robustperception.io/exposing-the-software-version-to-prometheus). The revision is the
// git commit the build came from ("unknown" outside a git checkout), set by the Makefile for
// common/build_info.cpp only, so a new commit rebuilds one file.
#pragma once

#include "gem/prom.h"

namespace gem {

/// The git revision of the build (`git describe --always --dirty`), or "unknown". Static storage.
const char* build_revision();
/// Writes gem_build_info{version=build_revision(), protocol=build_protocol()} 1 (family included).
void write_build_info(prom::Writer* w);
/// The wire protocol version the daemons speak (proto::kVersion), as text. Static storage.
const char* build_protocol();

}  // namespace gem
