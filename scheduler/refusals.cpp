#include "refusals.h"

#include <algorithm>

#include "gem/config.h"

namespace gem::sched {

const char* Refusals::reason_label(proto::ErrorCode code) {
  switch (code) {
    case proto::ErrorCode::kUnknownClient: return "unknown_client";
    case proto::ErrorCode::kRemoved: return "removed";
    case proto::ErrorCode::kDenied: return "denied";
    case proto::ErrorCode::kBusy: return "busy";
    default: return "protocol";
  }
}

void Refusals::note(const std::string& client, proto::ErrorCode code, const std::string& reason, Micros now) {
  const char* kind = reason_label(code);
  ++totals_[kind];
  const std::string name = client_id_error(client).empty() && !client.empty() ? client : "(invalid ID)";
  auto it = shown_.find(name);
  if (it == shown_.end()) {
    if (shown_.size() >= kMaxRefusedShown) {
      auto oldest = std::min_element(shown_.begin(), shown_.end(),
                                     [](const auto& a, const auto& b) { return a.second.last < b.second.last; });
      shown_.erase(oldest);
    }
    it = shown_.emplace(name, Refused{name, "", "", 0, 0}).first;
  }
  Refused& r = it->second;
  // The reason may quote wire text: printable ASCII only, cut at 200 bytes.
  r.reason.clear();
  for (size_t i = 0; i < reason.size() && i < 200; ++i) {
    const unsigned char c = static_cast<unsigned char>(reason[i]);
    r.reason += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
  }
  if (reason.size() > 200) r.reason += "...";
  r.kind = kind;
  r.last = now;
  ++r.count;
}

void Refusals::admitted(const std::string& client) { shown_.erase(client); }

std::vector<Refused> Refusals::recent(Micros now) const {
  std::vector<Refused> out;
  for (const auto& [name, r] : shown_) {
    if (now - r.last <= kRefusedShownFor) out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const Refused& a, const Refused& b) {
    return a.last != b.last ? a.last > b.last : a.client < b.client;
  });
  return out;
}

}  // namespace gem::sched
