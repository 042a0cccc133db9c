// Config's name index (include/gem/config.h): find() in O(1) on average instead of a scan, and
// the parser's duplicate-ID check in O(n) instead of O(n^2) (a 10^6-client config took hours).
#include <algorithm>
#include <functional>

#include "gem/config.h"

namespace gem {

namespace {

size_t hash_name(std::string_view name) { return std::hash<std::string_view>()(name); }

}  // namespace

void NameIndex::clear() {
  slots_.clear();
  size_ = 0;
}

void NameIndex::reserve(size_t n) {
  if (size_ != 0) return;  // growing needs the names: insert() does it as needed
  n = std::min(n, kMaxConfigClients);
  size_t want = 16;
  while (want < 2 * n) want *= 2;
  if (want > slots_.size()) slots_.assign(want, 0);
}

void NameIndex::rehash(const std::vector<ClientConfig>& clients, size_t slots) {
  std::vector<uint32_t> old = std::move(slots_);
  slots_.assign(slots, 0);
  const size_t mask = slots - 1;
  for (uint32_t v : old) {
    if (v == 0) continue;
    size_t i = hash_name(clients[v - 1].name) & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = v;
  }
}

size_t NameIndex::insert(const std::vector<ClientConfig>& clients, size_t pos) {
  if (2 * (size_ + 1) > slots_.size()) rehash(clients, std::max<size_t>(16, 2 * slots_.size()));
  const std::string& name = clients[pos].name;
  const size_t mask = slots_.size() - 1;
  size_t i = hash_name(name) & mask;
  for (; slots_[i] != 0; i = (i + 1) & mask) {
    const size_t p = slots_[i] - 1;
    if (clients[p].name == name) return p;
  }
  slots_[i] = static_cast<uint32_t>(pos + 1);
  ++size_;
  return pos;
}

size_t NameIndex::find(const std::vector<ClientConfig>& clients, std::string_view name) const {
  if (slots_.empty()) return npos;
  const size_t mask = slots_.size() - 1;
  for (size_t i = hash_name(name) & mask; slots_[i] != 0; i = (i + 1) & mask) {
    const size_t p = slots_[i] - 1;
    if (p < clients.size() && clients[p].name == name) return p;
  }
  return npos;
}

const ClientConfig* Config::find(std::string_view name) const {
  if (index_.size() == clients.size()) {
    const size_t p = index_.find(clients, name);
    return p == NameIndex::npos ? nullptr : &clients[p];
  }
  // Changed by hand since the last index: correct, if slow.
  for (const ClientConfig& c : clients) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

void Config::reindex() {
  index_.clear();
  if (clients.size() >= UINT32_MAX) return;  // find() scans
  index_.reserve(clients.size());
  for (size_t i = 0; i < clients.size(); ++i) index_.insert(clients, i);
}

}  // namespace gem
