// Structured access log: one JSON object per line on stderr (what `kubectl logs` collects).
// Fields: ts (RFC 3339 UTC, ms), level, msg ("access"), remote, method, path, status, bytes_in,
// bytes_out, dur_us (handler time, from routing to the response), and for /mutate: uid, kind,
// operation, namespace, name, decision, patch_ops, reason (only the non-empty ones).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "admission.h"

namespace gemwh {

struct AccessRecord {
  std::string remote, method, path;
  int status = 0;
  size_t bytes_in = 0, bytes_out = 0;
  int64_t dur_us = -1;                // -1: not measured (e.g. rejected before routing)
  const AdmissionResult* review = nullptr;  // not owned; null for other paths
};

/// The record as one JSON line (with '\n'). Pure, thread-safe.
std::string format_access(const AccessRecord& rec);

/// A non-access message ("msg": text) as one JSON line, level "info"/"warn"/"error".
std::string format_message(const char* level, const std::string& text);

/// Writes `line` with one fwrite (stdio locks the stream, so lines from threads do not interleave)
/// and flushes. Errors are ignored: logging never fails a request.
void write_line(std::FILE* out, const std::string& line);

}  // namespace gemwh
