// Command line of fake-capture-app (docs/interfaces.md).
#pragma once

#include <cuda.h>

#include <string>

namespace capapp {

/// What --violate makes a second thread do once, while the first capture is in progress.
enum class Violation {
  kNone,
  kCtxSync,            // cuCtxSynchronize: illegal in every mode
  kLegacyLaunch,       // a kernel on the legacy stream: illegal beside a blocking capture (--blocking)
  kOtherThreadUnsafe,  // cuMemAlloc from a GLOBAL-mode thread: illegal beside a GLOBAL capture only
};

/// Parsed flags; defaults as documented.
struct Options {
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;  // --mode global|thread_local|relaxed
  double seconds = 5.0;                                      // --seconds
  long kernel_us = 500;                                      // --kernel_us: each kernel's duration
  long nodes = 10;                                           // --nodes: kernels captured per graph (>= 1)
  long replays = 20;                                         // --replays: launches of each graph
  long alloc_bytes = 2L << 20;                               // --alloc_bytes: cuMemAlloc in each capture (0: none)
  long resident_bytes = 0;  // --resident_bytes: cuMemAlloc'd at start, outside any capture, freed at the end
  int threads = 1;                                           // --threads: capturing threads
  bool eager_thread = false;                                 // --eager_thread
  long gap_ms = 1;                                           // --gap_ms: sleep between captured launches
  bool blocking = false;                                     // --blocking: capture streams made with flags 0
  Violation violate = Violation::kNone;                      // --violate (hidden, for the tests)
};

/// "global" / "thread_local" / "relaxed" (as --mode spells them); "?" for anything else.
const char* mode_name(CUstreamCaptureMode m);
/// The --violate spelling of v ("none" for kNone).
const char* violation_name(Violation v);

/// Parses argv ("--flag value" or "--flag=value"). On error returns false and sets *error.
bool parse_args(int argc, char** argv, Options* out, std::string* error);

/// The usage text printed on a bad command line (the hidden --violate is left out).
extern const char kUsage[];

}  // namespace capapp
