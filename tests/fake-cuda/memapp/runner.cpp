#include "runner.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "../libcuda/fake_env.h"

namespace memapp {

namespace {

[[noreturn]] void fatal(const MemApi& a, const char* call, CUresult r) {
  fprintf(stderr, "fake-mem-app: %s failed: %s\n", call, error_name(a, r));
  fflush(stderr);
  _exit(1);
}

// "2s", "500ms", "1.5s" (a bare number is seconds).
bool parse_seconds(const std::string& s, double* out) {
  char* end = nullptr;
  double v = strtod(s.c_str(), &end);
  if (end == s.c_str() || v < 0) return false;
  std::string unit = end;
  if (unit == "ms") v /= 1000;
  else if (!unit.empty() && unit != "s") return false;
  *out = v;
  return true;
}

}  // namespace

bool parse_size(const std::string& s, uint64_t* out) {
  if (s == "0") {
    *out = 0;
    return true;
  }
  if (s == "max") {
    *out = ~0ull;
    return true;
  }
  return fakecuda::parse_bytes(s.c_str(), out);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

void Runner::setup() {
  if (CUresult r = a_.Init(0)) fatal(a_, "cuInit", r);
  if (CUresult r = a_.DeviceGet(&dev_, device_)) fatal(a_, "cuDeviceGet", r);
  if (CUresult r = a_.DevicePrimaryCtxRetain(&ctx_, dev_)) fatal(a_, "cuDevicePrimaryCtxRetain", r);
  if (CUresult r = a_.CtxSetCurrent(ctx_)) fatal(a_, "cuCtxSetCurrent", r);
  if (!ptsz_) {
    if (CUresult r = a_.StreamCreate(&stream_, CU_STREAM_NON_BLOCKING)) fatal(a_, "cuStreamCreate", r);
  }
}

bool Runner::check(Outcome& o, const char* call, CUresult r) {
  o.call = call;
  o.result = error_name(a_, r);
  o.ok = r == CUDA_SUCCESS;
  return o.ok;
}

int Runner::add(Held h) {
  held_[next_id_] = std::move(h);
  return next_id_++;
}

Held* Runner::find(Outcome& o, const std::string& id_text) {
  char* end = nullptr;
  long id = strtol(id_text.c_str(), &end, 10);
  auto it = held_.find(static_cast<int>(id));
  if (id_text.empty() || *end != '\0' || it == held_.end()) {
    o.call = "";
    o.result = "NO_SUCH_ID";
    o.ok = false;
    return nullptr;
  }
  return &it->second;
}

CUmemoryPool Runner::app_pool() {
  if (pool_ != nullptr) return pool_;
  CUmemoryPool p = nullptr;
  a_.DeviceGetMemPool(&p, dev_);
  return p;
}

bool Runner::run(const std::string& step) {
  const Args args = split(step, ':');
  const std::string& op = args[0];
  const size_t n = args.size();
  Outcome o;
  o.result = "BAD_STEP";
  bool parsed = true;
  if (op == "alloc" && n == 2) alloc(o, args);
  else if (op == "managed" && n == 2) managed(o, args);
  else if (op == "pitch" && n == 2) pitch(o, args);
  else if (op == "async" && n == 2) async(o, args, false);
  else if (op == "pool_alloc" && n == 2) async(o, args, true);
  else if (op == "free" && n == 2) free_id(o, args);
  else if (op == "memfree" && n == 2) free_ptr(o, args, false);
  else if (op == "free_async" && n == 2) free_ptr(o, args, true);
  else if (op == "free_all" && n == 1) free_all(o);
  else if (op == "pool_create" && n <= 2) pool_create(o, args);
  else if ((op == "pool_threshold" || op == "pool_trim") && n == 2) pool_step(o, op, args);
  else if ((op == "pool_info" || op == "set_mempool") && n == 1) pool_step(o, op, args);
  else if (op == "sync" && n == 1) check(o, "cuStreamSynchronize", a_.StreamSynchronize(stream_));
  else if (op == "ctx_sync" && n == 1) check(o, "cuCtxSynchronize", a_.CtxSynchronize());
  else if (op == "vmm" || op == "vmm_create" || op == "vmm_host" || op == "vmm_map" || op == "vmm_unmap" ||
           op == "vmm_release") {
    if (n == 2) vmm_step(o, op, args);
    else parsed = false;
  } else if (op == "array" && n >= 2) array(o, args, false);
  else if (op == "mipmap" && n >= 3) array(o, args, true);
  else if (op == "graph_mem" && (n == 2 || (n == 3 && args[2] == "keep"))) graph_mem(o, args);
  else if (op == "graph_launch" && n == 2) {
    if (Held* h = find(o, args[1]); h != nullptr) {
      if (h->kind == Held::Kind::kGraph) graph_launch(o, *h);
      else o.result = "NOT_GRAPH";
    }
  } else if (op == "graph_trim" && n == 1) check(o, "cuDeviceGraphMemTrim", a_.DeviceGraphMemTrim(dev_));
  else if (op == "graph_info" && n == 1) graph_info(o);
  else if ((op == "info" || op == "info_v1") && n == 1) info(o, op == "info_v1");
  else if (op == "nvml_info" && n == 1) nvml_info(o);
  else if (op == "ctx_release" && n == 1) ctx_release(o);
  else if (op == "hold" && n == 2) {
    double s = 0;
    if (!parse_seconds(args[1], &s)) parsed = false;
    else {
      std::this_thread::sleep_for(std::chrono::duration<double>(s));
      o.result = "OK";
      o.ok = true;
    }
  } else if (op == "wait_file" && n >= 2) {
    std::string path = step.substr(step.find(':') + 1);
    struct stat st;
    while (stat(path.c_str(), &st) != 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    o.result = "OK";
    o.ok = true;
  } else if (op == "alloc_until_oom" && n == 2) alloc_until_oom(o, args);
  else if ((op == "bench_alloc" || op == "bench_async") && n == 3) bench(o, args, op == "bench_async");
  else parsed = false;

  JsonLine line;
  line.str("step", step);
  line.str("call", o.call);
  line.str("result", parsed ? o.result : "BAD_STEP");
  std::string out = line.text();
  std::string extra = o.fields.text();
  if (extra.size() > 2) out = out.substr(0, out.size() - 1) + ", " + extra.substr(1);
  printf("%s\n", out.c_str());
  fflush(stdout);
  if (!parsed || o.result == "BAD_STEP") {
    fprintf(stderr, "fake-mem-app: bad step \"%s\" (syntax: tests/fake-cuda/memapp/main.cpp)\n", step.c_str());
    fflush(stderr);
    _exit(2);
  }
  return o.ok;
}

}  // namespace memapp
