// The capture registry and rules; see capture_rules.h for the rules and their CUDA sources.
#include "capture_rules.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace fakecuda {

namespace {

// One capture sequence in progress (begun, not yet ended).
struct Capture {
  CUstream_st* stream;
  int device;
  bool blocking;  // the stream was created without CU_STREAM_NON_BLOCKING
  CUstreamCaptureMode mode;
  std::thread::id thread;  // the thread that began it
  CUgraph graph;
  bool owns_graph;
  uint64_t id;
  bool invalidated = false;
};

const char* mode_name(CUstreamCaptureMode m) {
  switch (m) {
    case CU_STREAM_CAPTURE_MODE_GLOBAL: return "global";
    case CU_STREAM_CAPTURE_MODE_THREAD_LOCAL: return "thread_local";
    case CU_STREAM_CAPTURE_MODE_RELAXED: return "relaxed";
    default: return "?";
  }
}

int open_log(const char* var) {
  const char* path = getenv(var);
  return path != nullptr && *path != '\0' ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
}

void write_line(int fd, const char* line, int n) {
  // One write() on an O_APPEND descriptor: lines from several processes never interleave.
  if (fd >= 0 && n > 0) (void)!write(fd, line, static_cast<size_t>(n));
}

class Registry {
 public:
  static Registry& get() {
    static Registry* r = new Registry();  // leaked, as Driver: no static destructor at exit
    return *r;
  }

  std::mutex mu;
  std::vector<Capture> captures;  // in progress
  // captures.size(), readable without the lock: potentially unsafe calls outside any capture (nearly
  // all of them) take a fast path without the lock or the calling thread's mode.
  std::atomic<size_t> active{0};
  uint64_t next_id = 1;
  std::atomic<uint64_t> invalidations{0};

  Capture* find(const CUstream_st* s) {
    for (Capture& c : captures) {
      if (c.stream == s) return &c;
    }
    return nullptr;
  }

  // Marks c invalidated (once: an already invalidated capture is not counted again). Caller holds mu.
  void invalidate(Capture& c, const char* api, const char* reason) {
    if (c.invalidated) return;
    c.invalidated = true;
    invalidations.fetch_add(1);
    static const int kernel_log = open_log("FAKE_CUDA_LOG");
    static const int capture_log = open_log("FAKE_CUDA_CAPTURE_LOG");
    char line[256];
    int n = std::snprintf(line, sizeof line, "capture-invalidated %d %s:%s:%s\n", static_cast<int>(getpid()), api,
                          mode_name(c.mode), reason);
    write_line(kernel_log, line, n);
    n = std::snprintf(line, sizeof line, "invalidated %s %s %s\n", api, mode_name(c.mode), reason);
    write_line(capture_log, line, n);
  }

  // Invalidates every capture in progress for which pred holds; true if there was one. Caller holds mu.
  template <typename Pred>
  bool invalidate_if(Pred pred, const char* api, const char* reason) {
    bool any = false;
    for (Capture& c : captures) {
      if (!pred(c)) continue;
      invalidate(c, api, reason);
      any = true;
    }
    return any;
  }

 private:
  Registry() = default;
};

// The calling thread's capture mode, in a pthread key (value: mode + 1; unset: GLOBAL) rather than a
// thread_local: growing the stand-in's ELF TLS block past its present 64 bytes makes ASan's dynamic
// TLS tracking (this library is dlopen'd) record garbage ranges and LeakSanitizer's tracer crash at
// exit under SANITIZE=1.
pthread_key_t mode_key() {
  static const pthread_key_t key = [] {
    pthread_key_t k;
    pthread_key_create(&k, nullptr);  // the values are not pointers: nothing to free
    return k;
  }();
  return key;
}

CUstreamCaptureMode thread_mode() {
  const auto v = reinterpret_cast<uintptr_t>(pthread_getspecific(mode_key()));
  return v == 0 ? CU_STREAM_CAPTURE_MODE_GLOBAL : static_cast<CUstreamCaptureMode>(v - 1);
}

void set_thread_mode(CUstreamCaptureMode m) {
  pthread_setspecific(mode_key(), reinterpret_cast<void*>(static_cast<uintptr_t>(m) + 1));
}

bool is_legacy(const StreamTarget& t) { return t.stream == nullptr && !t.per_thread; }

// The legacy stream's implicit synchronisation with the blocking streams of its device. Caller holds mu.
bool legacy_conflicts(Registry& r, int device, const char* api, bool invalidate) {
  auto blocking_on_device = [device](const Capture& c) { return c.device == device && c.blocking; };
  if (!invalidate) {
    for (const Capture& c : r.captures) {
      if (blocking_on_device(c)) return true;
    }
    return false;
  }
  return r.invalidate_if(blocking_on_device, api, "legacy-stream");
}

}  // namespace

CUresult capture_begin(CUstream_st* s, CUstreamCaptureMode mode, CUgraph graph, bool owns_graph) {
  Registry& r = Registry::get();
  std::lock_guard<std::mutex> lk(r.mu);
  if (r.find(s) != nullptr) return CUDA_ERROR_ILLEGAL_STATE;
  const bool blocking = (s->flags & CU_STREAM_NON_BLOCKING) == 0;
  r.captures.push_back(Capture{s, s->device, blocking, mode, std::this_thread::get_id(), graph, owns_graph,
                               r.next_id++});
  r.active.store(r.captures.size());
  return CUDA_SUCCESS;
}

CUresult capture_end(CUstream_st* s, CUgraph* graph) {
  Registry& r = Registry::get();
  std::lock_guard<std::mutex> lk(r.mu);
  Capture* c = r.find(s);
  if (c == nullptr) return CUDA_ERROR_ILLEGAL_STATE;
  if (c->mode != CU_STREAM_CAPTURE_MODE_RELAXED && c->thread != std::this_thread::get_id()) {
    return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
  }
  const bool invalidated = c->invalidated;
  CUgraph g = c->graph;
  const bool owns = c->owns_graph;
  r.captures.erase(r.captures.begin() + (c - r.captures.data()));
  r.active.store(r.captures.size());
  if (invalidated) {
    *graph = nullptr;
    if (owns) Driver::get().remove_handle(g, HandleKind::kGraph);
    return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  *graph = g;
  return CUDA_SUCCESS;
}

CUresult capture_status(const StreamTarget& t, CUstreamCaptureStatus* status, uint64_t* id, CUgraph* graph) {
  Registry& r = Registry::get();
  std::lock_guard<std::mutex> lk(r.mu);
  if (id != nullptr) *id = 0;
  if (graph != nullptr) *graph = nullptr;
  *status = CU_STREAM_CAPTURE_STATUS_NONE;
  if (is_legacy(t)) {
    return legacy_conflicts(r, t.device, nullptr, false) ? CUDA_ERROR_STREAM_CAPTURE_IMPLICIT : CUDA_SUCCESS;
  }
  if (t.stream == nullptr) return CUDA_SUCCESS;  // a per-thread stream never captures here
  if (const Capture* c = r.find(t.stream)) {
    *status = c->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED : CU_STREAM_CAPTURE_STATUS_ACTIVE;
    if (id != nullptr) *id = c->id;
    if (graph != nullptr) *graph = c->graph;
  }
  return CUDA_SUCCESS;
}

CUresult capture_enqueue(const StreamTarget& t, const char* api, CUgraph* graph, uint64_t* capture_id) {
  Registry& r = Registry::get();
  std::lock_guard<std::mutex> lk(r.mu);
  *graph = nullptr;
  if (capture_id != nullptr) *capture_id = 0;
  if (is_legacy(t)) {
    return legacy_conflicts(r, t.device, api, true) ? CUDA_ERROR_STREAM_CAPTURE_IMPLICIT : CUDA_SUCCESS;
  }
  if (t.stream == nullptr) return CUDA_SUCCESS;
  const Capture* c = r.find(t.stream);
  if (c == nullptr) return CUDA_SUCCESS;
  if (c->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  *graph = c->graph;
  if (capture_id != nullptr) *capture_id = c->id;
  return CUDA_SUCCESS;
}

CUresult capture_check_stream(const StreamTarget& t, StreamUse use, const char* api) {
  Registry& r = Registry::get();
  std::lock_guard<std::mutex> lk(r.mu);
  if (is_legacy(t)) {
    return legacy_conflicts(r, t.device, api, true) ? CUDA_ERROR_STREAM_CAPTURE_IMPLICIT : CUDA_SUCCESS;
  }
  if (use == StreamUse::kSyncQuery && t.stream != nullptr) {
    CUstream_st* s = t.stream;
    if (r.invalidate_if([s](const Capture& c) { return c.stream == s; }, api, "capturing-stream-sync")) {
      return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
  }
  return CUDA_SUCCESS;
}

CUresult capture_check_device_sync(int device, const char* api) {
  Registry& r = Registry::get();
  std::lock_guard<std::mutex> lk(r.mu);
  const bool any = r.invalidate_if([device](const Capture& c) { return c.device == device; }, api, "context-sync");
  return any ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : CUDA_SUCCESS;
}

CUresult capture_check_event(uint64_t capture_id, const char* api) {
  if (capture_id == 0) return CUDA_SUCCESS;
  Registry& r = Registry::get();
  std::lock_guard<std::mutex> lk(r.mu);
  r.invalidate_if([capture_id](const Capture& c) { return c.id == capture_id; }, api, "captured-event");
  return CUDA_ERROR_CAPTURED_EVENT;
}

CUresult capture_check_unsafe(const char* api) {
  Registry& r = Registry::get();
  if (r.active.load() == 0) return CUDA_SUCCESS;
  const CUstreamCaptureMode mine = thread_mode();
  if (mine == CU_STREAM_CAPTURE_MODE_RELAXED) return CUDA_SUCCESS;
  const std::thread::id me = std::this_thread::get_id();
  std::lock_guard<std::mutex> lk(r.mu);
  const bool own = r.invalidate_if(
      [me](const Capture& c) { return c.thread == me && c.mode != CU_STREAM_CAPTURE_MODE_RELAXED; }, api,
      "unsafe-call-in-own-capture");
  bool other = false;
  if (mine == CU_STREAM_CAPTURE_MODE_GLOBAL) {
    other = r.invalidate_if(
        [me](const Capture& c) { return c.thread != me && c.mode == CU_STREAM_CAPTURE_MODE_GLOBAL; }, api,
        "unsafe-call-beside-global-capture");
  }
  return own || other ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : CUDA_SUCCESS;
}

CUresult capture_exchange_mode(CUstreamCaptureMode* mode) {
  if (mode == nullptr || !valid_capture_mode(*mode)) return CUDA_ERROR_INVALID_VALUE;
  const CUstreamCaptureMode old = thread_mode();
  set_thread_mode(*mode);
  *mode = old;
  return CUDA_SUCCESS;
}

void capture_stream_destroyed(CUstream_st* s) {
  Registry& r = Registry::get();
  std::lock_guard<std::mutex> lk(r.mu);
  if (Capture* c = r.find(s)) r.captures.erase(r.captures.begin() + (c - r.captures.data()));
  r.active.store(r.captures.size());
}

uint64_t capture_invalidations() { return Registry::get().invalidations.load(); }

}  // namespace fakecuda
