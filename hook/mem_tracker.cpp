#include "mem_tracker.h"

#include <pthread.h>

#include <atomic>

#include "gem/log.h"
#include "settings.h"

namespace gem::hook {

namespace {

constexpr Micros kMemRetryPeriod = 1000000;  // a lost gem-pmgr is asked again at most once a second
constexpr Micros kPushCheckPeriod = 1000;  // pushed limit changes are looked for at most every ms

std::atomic<MemTracker*> g_tracker{nullptr};

void after_fork_child() {
  // The child holds none of the parent's device memory (CUDA does not survive fork) and must not
  // share its sessions; the old tracker is left behind (its lock may be held by a parent thread).
  g_tracker.store(new MemTracker(), std::memory_order_release);
}

}  // namespace

MemTracker& MemTracker::get() {
  MemTracker* t = g_tracker.load(std::memory_order_acquire);
  if (t != nullptr) return *t;
  static MemTracker* first = [] {
    auto* m = new MemTracker();
    g_tracker.store(m, std::memory_order_release);
    pthread_atfork(nullptr, nullptr, after_fork_child);
    return m;
  }();
  (void)first;
  return *g_tracker.load(std::memory_order_acquire);
}

bool MemTracker::active() { return settings().enabled; }

MemTracker::Gpu* MemTracker::gpu_by_uuid(const std::string& uuid) {
  auto& slot = gpus_[uuid];
  if (!slot) {
    slot = std::make_unique<Gpu>();
    slot->uuid = uuid;
  }
  return slot.get();
}

MemTracker::Gpu* MemTracker::gpu(CUdevice dev) {
  auto it = by_device_.find(dev);
  if (it != by_device_.end()) return it->second;
  const std::string uuid = device_uuid(dev);
  if (uuid.empty()) return nullptr;
  Gpu* g = gpu_by_uuid(uuid);
  by_device_[dev] = g;
  return g;
}

void MemTracker::apply(Gpu& g, const proto::MemState& st) {
  const uint64_t before = g.ledger.limit();
  g.ledger.set_limit(proto::wire_bytes(st.limit_bytes));
  g.client_held = proto::wire_bytes(st.client_held_bytes);
  g.known = true;
  g.um = (st.flags & proto::kFlagUnifiedMemory) != 0;
  g.ledger.set_tracking(g.um);
  if (g.um) any_um_.store(true, std::memory_order_relaxed);
  if (before != g.ledger.limit()) {
    LOG_INFO("GPU_MEM on %s is now %llu bytes", g.uuid.c_str(), static_cast<unsigned long long>(g.ledger.limit()));
  }
}

void MemTracker::connect(Gpu& g, Micros now) {
  if (g.session.is_open() || now < g.retry_at) return;
  g.retry_at = now + kMemRetryPeriod;
  proto::MemState st;
  std::string why;
  if (!g.session.open(g.uuid, &st, &why)) {
    if (!warned_) {
      warned_ = true;
      LOG_WARN("memory session for %s: pod manager %s: %s; %s", g.uuid.c_str(),
               settings().pod_manager.to_string().c_str(), why.c_str(),
               g.known ? "keeping the last lease" : (settings().fail_closed ? "refusing allocations" : "not limiting"));
    }
    return;
  }
  warned_ = false;
  apply(g, st);
  // A new session holds nothing at gem-pmgr: declare what this process already holds.
  g.ledger.remove_lease(g.ledger.lease());
  const uint64_t held = g.ledger.used();
  if (held > 0 && g.session.reserve(held, held, true, &st, &why)) {
    apply(g, st);
    g.ledger.add_lease(proto::wire_bytes(st.granted_bytes));
  }
}

void MemTracker::check_pushes(Gpu& g, Micros now) {
  if (!g.session.is_open() || now - g.push_checked < kPushCheckPeriod) return;
  g.push_checked = now;
  if (auto st = g.session.take_push()) {
    apply(g, *st);
    give_back_surplus(g, 0);
  }
}

void MemTracker::give_back_surplus(Gpu& g, uint64_t keep) {
  if (!g.ledger.leasing() || !g.session.is_open()) return;
  const uint64_t s = g.ledger.surplus(keep);
  if (s == 0) return;
  if (g.session.give_back(s)) g.ledger.remove_lease(s);
}

bool MemTracker::grow_lease(Gpu& g, uint64_t bytes) {
  const LeaseAsk a = g.ledger.ask(bytes);
  if (a.need == 0) return true;
  if (g.ledger.beyond_limit(bytes) || !g.session.is_open()) return false;
  proto::MemState st;
  std::string why;
  if (!g.session.reserve(a.need, a.want, false, &st, &why)) {
    LOG_WARN("memory session for %s: %s; keeping the last lease", g.uuid.c_str(), why.c_str());
    return false;
  }
  apply(g, st);
  g.ledger.add_lease(proto::wire_bytes(st.granted_bytes));
  return g.ledger.shortfall(bytes) == 0;
}

bool MemTracker::reserve(CUdevice dev, uint64_t bytes) {
  try {
    std::lock_guard<std::mutex> lk(mu_);
    Gpu* g = gpu(dev);
    if (g == nullptr) return true;  // the driver will refuse the call itself
    const Micros now = mono_us();
    connect(*g, now);
    check_pushes(*g, now);
    if (!g->known && settings().fail_closed) return false;
    if (g->ledger.limited()) {
      if (!grow_lease(*g, bytes)) return false;
    } else if (g->ledger.leasing()) {
      grow_lease(*g, bytes);  // no limit to enforce: the lease only tells gem-pmgr what is used
    }
    g->ledger.reserve(bytes);
    return true;
  } catch (...) {
    return true;
  }
}

void MemTracker::finish(CUdevice dev, uint64_t reserved, bool ok, MemKey key, uint64_t actual) {
  try {
    std::lock_guard<std::mutex> lk(mu_);
    Gpu* g = gpu(dev);
    if (g == nullptr) return;
    g->ledger.rollback(reserved);
    if (!ok) return;
    g->ledger.reserve(actual);
    g->ledger.commit(key, actual);
  } catch (...) {
  }
}

void MemTracker::release(MemKey key) {
  try {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [uuid, g] : gpus_) {
      if (!g->ledger.release(key)) continue;
      if (key.kind == MemKind::kPointer) {
        if (auto it = g->managed.find(key.id); it != g->managed.end()) {
          g->managed_bytes -= std::min(g->managed_bytes, it->second);
          g->managed.erase(it);
        }
      }
      check_pushes(*g, mono_us());
      give_back_surplus(*g, MemLedger::chunk_for(g->ledger.limit()));
      return;
    }
  } catch (...) {
  }
}

void MemTracker::settle(CUdevice dev, MemKey key, uint64_t bytes) {
  try {
    std::lock_guard<std::mutex> lk(mu_);
    if (Gpu* g = gpu(dev)) {
      const uint64_t before = g->ledger.settle(key, bytes);
      if (bytes < before) give_back_surplus(*g, MemLedger::chunk_for(g->ledger.limit()));
    }
  } catch (...) {
  }
}

bool MemTracker::within_limit(CUdevice dev, uint64_t bytes) {
  try {
    std::lock_guard<std::mutex> lk(mu_);
    Gpu* g = gpu(dev);
    if (g == nullptr) return true;
    connect(*g, mono_us());
    if (!g->known) return !settings().fail_closed;
    return !g->ledger.limited() || bytes <= left(*g);
  } catch (...) {
    return true;
  }
}

bool MemTracker::view_locked(Gpu& g, uint64_t* limit, uint64_t* free) {
  const Micros now = mono_us();
  connect(g, now);
  proto::MemState st;
  std::string why;
  if (g.session.is_open() && g.session.query(&st, &why)) apply(g, st);
  if (!g.known || !g.ledger.limited()) return false;
  *limit = g.ledger.limit();
  *free = left(g);
  return true;
}

uint64_t MemTracker::left(const Gpu& g) {
  // What the other processes of the client hold is not ours to use; our own unused lease is.
  const uint64_t lim = g.ledger.limit();
  const uint64_t others = g.client_held > g.ledger.lease() ? g.client_held - g.ledger.lease() : 0;
  return lim - std::min(lim, others + g.ledger.used());
}

bool MemTracker::view(CUdevice dev, uint64_t* limit, uint64_t* free) {
  try {
    std::lock_guard<std::mutex> lk(mu_);
    Gpu* g = gpu(dev);
    return g != nullptr && view_locked(*g, limit, free);
  } catch (...) {
    return false;
  }
}

bool MemTracker::view_uuid(const std::string& uuid, uint64_t* limit, uint64_t* free) {
  try {
    std::lock_guard<std::mutex> lk(mu_);
    return view_locked(*gpu_by_uuid(uuid), limit, free);
  } catch (...) {
    return false;
  }
}

bool MemTracker::unified_memory(CUdevice dev) {
  try {
    std::lock_guard<std::mutex> lk(mu_);
    Gpu* g = gpu(dev);
    return g != nullptr && g->um;
  } catch (...) {
    return false;
  }
}

void MemTracker::note_managed(CUdevice dev, uint64_t ptr, uint64_t bytes) {
  try {
    std::lock_guard<std::mutex> lk(mu_);
    Gpu* g = gpu(dev);
    if (g == nullptr) return;
    auto [it, fresh] = g->managed.try_emplace(ptr, bytes);
    if (!fresh) {
      g->managed_bytes -= std::min(g->managed_bytes, it->second);
      it->second = bytes;
    }
    g->managed_bytes = std::min(g->managed_bytes + bytes, MemLedger::kMaxBytes);
  } catch (...) {
  }
}

std::vector<std::pair<uint64_t, uint64_t>> MemTracker::managed_ranges(CUdevice dev) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  try {
    std::lock_guard<std::mutex> lk(mu_);
    if (Gpu* g = gpu(dev)) out.assign(g->managed.begin(), g->managed.end());
  } catch (...) {
  }
  return out;
}

uint64_t MemTracker::managed_bytes(CUdevice dev) {
  try {
    std::lock_guard<std::mutex> lk(mu_);
    Gpu* g = gpu(dev);
    return g != nullptr ? g->managed_bytes : 0;
  } catch (...) {
    return 0;
  }
}

std::vector<uint64_t> MemTracker::pools(CUdevice dev) {
  try {
    std::lock_guard<std::mutex> lk(mu_);
    Gpu* g = gpu(dev);
    return g != nullptr ? g->pools : std::vector<uint64_t>{};
  } catch (...) {
    return {};
  }
}

void MemTracker::note_pool(CUdevice dev, uint64_t pool) {
  try {
    std::lock_guard<std::mutex> lk(mu_);
    Gpu* g = gpu(dev);
    if (g == nullptr) return;
    for (uint64_t p : g->pools) {
      if (p == pool) return;
    }
    if (g->pools.size() < 64) g->pools.push_back(pool);
  } catch (...) {
  }
}

}  // namespace gem::hook
