// Encoding and decoding of the frames described in include/gem/protocol.h.
// decode() never reads past [data, data+len) and never trusts a length before checking it, because
// every byte here may come from a misbehaving peer.
#include "gem/protocol.h"

#include <cstdio>
#include <cstring>
#include <type_traits>

namespace gem::proto {
namespace {

// Message type on the wire: the variant index + 1, so 0 is never valid.
constexpr uint16_t kFirstType = 1;
constexpr uint16_t kLastType = std::variant_size_v<Body>;

const char* const kTypeNames[] = {"Hello", "ClientSettings", "TokenRequest", "TokenGrant", "TokenRelease",
                                  "Error",  "TokenRenew",     "Heartbeat",    "TokenRevoke",
                                  "MemReserve", "MemReturn", "MemQuery", "MemState", "MemUsage", "Evict"};
static_assert(sizeof(kTypeNames) / sizeof(kTypeNames[0]) == std::variant_size_v<Body>,
              "one name per message type");

bool valid_role(uint8_t role) {
  return role == static_cast<uint8_t>(Role::kHook) || role == static_cast<uint8_t>(Role::kPodManager) ||
         role == static_cast<uint8_t>(Role::kHookMemory);
}

bool printable(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

void put_u8(std::vector<uint8_t>* out, uint8_t v) { out->push_back(v); }
void put_u16(std::vector<uint8_t>* out, uint16_t v) {
  out->push_back(static_cast<uint8_t>(v >> 8));
  out->push_back(static_cast<uint8_t>(v));
}
void put_u32(std::vector<uint8_t>* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<uint8_t>(v >> shift));
}
void put_u64(std::vector<uint8_t>* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<uint8_t>(v >> shift));
}
// Refuses strings the receiver would reject, so a bad name fails here rather than as a dropped
// connection on the other side.
bool put_str(std::vector<uint8_t>* out, const std::string& s, size_t max = kMaxName) {
  if (s.size() > max || !printable(s)) return false;
  put_u16(out, static_cast<uint16_t>(s.size()));
  out->insert(out->end(), s.begin(), s.end());
  return true;
}

uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t get_u32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
uint64_t get_u64(const uint8_t* p) {
  return (static_cast<uint64_t>(get_u32(p)) << 32) | get_u32(p + 4);
}

bool encode_body(const Hello& m, std::vector<uint8_t>* out) {
  if (!valid_role(static_cast<uint8_t>(m.role))) return false;
  put_u8(out, static_cast<uint8_t>(m.role));
  if (!put_str(out, m.client) || !put_str(out, m.device_uuid)) return false;
  put_u32(out, m.pid);
  put_u8(out, m.has_declared ? 1 : 0);
  if (m.has_declared) {
    put_u32(out, m.declared.request_ppm);
    put_u32(out, m.declared.limit_ppm);
    put_u64(out, m.declared.gpu_mem_bytes);
    put_u32(out, m.declared.flags);
    put_u32(out, m.declared.latency_us);
  }
  return put_str(out, m.secret, kMaxSecret);
}
bool encode_body(const ClientSettings& m, std::vector<uint8_t>* out) {
  put_u32(out, m.request_ppm);
  put_u32(out, m.limit_ppm);
  put_u64(out, m.gpu_mem_bytes);
  put_u32(out, m.flags);
  put_u32(out, m.latency_us);
  return true;
}
bool encode_body(const TokenRequest& m, std::vector<uint8_t>* out) {
  put_u64(out, m.last_burst_us);
  return true;
}
bool encode_body(const TokenGrant& m, std::vector<uint8_t>* out) {
  put_u64(out, m.quota_us);
  return true;
}
bool encode_body(const TokenRelease& m, std::vector<uint8_t>* out) {
  put_u64(out, m.used_us);
  put_u64(out, m.burst_us);
  put_u64(out, m.start_us);
  put_u64(out, m.end_us);
  out->push_back(m.again ? 1 : 0);
  put_u64(out, m.unthrottled_us);
  return true;
}
bool encode_body(const TokenRenew& m, std::vector<uint8_t>* out) {
  put_u64(out, m.used_us);
  put_u64(out, m.burst_us);
  return true;
}
bool encode_body(const Heartbeat&, std::vector<uint8_t>*) { return true; }
bool encode_body(const TokenRevoke& m, std::vector<uint8_t>* out) {
  put_u64(out, m.held_us);
  return true;
}
bool encode_body(const MemReserve& m, std::vector<uint8_t>* out) {
  put_u64(out, m.need_bytes);
  put_u64(out, m.want_bytes);
  put_u8(out, m.existing ? 1 : 0);
  return true;
}
bool encode_body(const MemReturn& m, std::vector<uint8_t>* out) {
  put_u64(out, m.bytes);
  return true;
}
bool encode_body(const MemQuery&, std::vector<uint8_t>*) { return true; }
bool encode_body(const MemState& m, std::vector<uint8_t>* out) {
  put_u64(out, m.limit_bytes);
  put_u64(out, m.client_held_bytes);
  put_u64(out, m.granted_bytes);
  put_u32(out, m.flags);
  return true;
}
bool encode_body(const MemUsage& m, std::vector<uint8_t>* out) {
  put_u64(out, m.bytes);
  put_u32(out, m.flags);
  return true;
}
bool encode_body(const Evict& m, std::vector<uint8_t>* out) {
  put_u32(out, m.flags);
  return true;
}
bool encode_body(const Error& m, std::vector<uint8_t>* out) {
  put_u16(out, static_cast<uint16_t>(m.code));
  return put_str(out, m.message);
}

// Bounds-checked cursor over one payload. After the first short read everything reads as zero and
// ok() stays false, so the per-type decoders can read all fields and check once at the end.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  uint8_t u8() { return take(1) ? p_[pos_ - 1] : 0; }
  uint16_t u16() { return take(2) ? get_u16(p_ + pos_ - 2) : 0; }
  uint32_t u32() { return take(4) ? get_u32(p_ + pos_ - 4) : 0; }
  uint64_t u64() { return take(8) ? get_u64(p_ + pos_ - 8) : 0; }
  // Returns false only for a bad string; truncation shows in ok().
  bool str(std::string* s, std::string* err, size_t max = kMaxName) {
    uint16_t len = u16();
    if (!ok_) return true;
    if (len > max) {
      *err = "string length " + std::to_string(len) + " exceeds " + std::to_string(max);
      return false;
    }
    if (!take(len)) return true;
    const uint8_t* b = p_ + pos_ - len;
    for (size_t i = 0; i < len; ++i) {
      if (b[i] < 0x20 || b[i] > 0x7e) {
        *err = "non-printable byte in string";
        return false;
      }
    }
    s->assign(reinterpret_cast<const char*>(b), len);
    return true;
  }
  bool ok() const { return ok_; }
  size_t left() const { return ok_ ? n_ - pos_ : 0; }

 private:
  bool take(size_t k) {
    if (!ok_ || n_ - pos_ < k) {
      ok_ = false;
      return false;
    }
    pos_ += k;
    return true;
  }
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  bool ok_ = true;
};

bool decode_body(Reader* r, Hello* m, std::string* err) {
  uint8_t role = r->u8();
  if (r->ok() && !valid_role(role)) {
    *err = "role " + std::to_string(role) + " invalid";
    return false;
  }
  m->role = static_cast<Role>(role);
  if (!r->str(&m->client, err) || !r->str(&m->device_uuid, err)) return false;
  m->pid = r->u32();
  uint8_t has = r->u8();
  if (r->ok() && has > 1) {
    *err = "has_declared must be 0 or 1";
    return false;
  }
  m->has_declared = has == 1;
  if (m->has_declared) {
    m->declared.request_ppm = r->u32();
    m->declared.limit_ppm = r->u32();
    m->declared.gpu_mem_bytes = r->u64();
    m->declared.flags = r->u32();
    m->declared.latency_us = r->u32();
  }
  return r->str(&m->secret, err, kMaxSecret);
}
bool decode_body(Reader* r, ClientSettings* m, std::string*) {
  m->request_ppm = r->u32();
  m->limit_ppm = r->u32();
  m->gpu_mem_bytes = r->u64();
  m->flags = r->u32();
  m->latency_us = r->u32();
  return true;
}
bool decode_body(Reader* r, TokenRequest* m, std::string*) {
  m->last_burst_us = r->u64();
  return true;
}
bool decode_body(Reader* r, TokenGrant* m, std::string*) {
  m->quota_us = r->u64();
  return true;
}
bool decode_body(Reader* r, TokenRelease* m, std::string* err) {
  m->used_us = r->u64();
  m->burst_us = r->u64();
  m->start_us = r->u64();
  m->end_us = r->u64();
  const uint8_t again = r->u8();
  if (r->ok() && again > 1) {
    *err = "again must be 0 or 1";
    return false;
  }
  m->again = again == 1;
  m->unthrottled_us = r->u64();
  return true;
}
bool decode_body(Reader* r, TokenRenew* m, std::string*) {
  m->used_us = r->u64();
  m->burst_us = r->u64();
  return true;
}
bool decode_body(Reader*, Heartbeat*, std::string*) { return true; }
bool decode_body(Reader* r, TokenRevoke* m, std::string*) {
  m->held_us = r->u64();
  return true;
}
bool decode_body(Reader* r, MemReserve* m, std::string* err) {
  m->need_bytes = r->u64();
  m->want_bytes = r->u64();
  const uint8_t existing = r->u8();
  if (r->ok() && existing > 1) {
    *err = "existing must be 0 or 1";
    return false;
  }
  m->existing = existing == 1;
  return true;
}
bool decode_body(Reader* r, MemReturn* m, std::string*) {
  m->bytes = r->u64();
  return true;
}
bool decode_body(Reader*, MemQuery*, std::string*) { return true; }
bool decode_body(Reader* r, MemState* m, std::string*) {
  m->limit_bytes = r->u64();
  m->client_held_bytes = r->u64();
  m->granted_bytes = r->u64();
  m->flags = r->u32();
  return true;
}
bool decode_body(Reader* r, MemUsage* m, std::string*) {
  m->bytes = r->u64();
  m->flags = r->u32();
  return true;
}
bool decode_body(Reader* r, Evict* m, std::string*) {
  m->flags = r->u32();
  return true;
}
// Unknown error codes are kept as they are: the code only informs the log line on the receiver.
bool decode_body(Reader* r, Error* m, std::string* err) {
  m->code = static_cast<ErrorCode>(r->u16());
  return r->str(&m->message, err);
}

// Default-constructs the alternative for wire type `type` (already range-checked).
template <size_t I = 0>
void emplace_type(Body* body, uint16_t type) {
  if constexpr (I < std::variant_size_v<Body>) {
    if (type == I + 1) {
      body->emplace<I>();
      return;
    }
    emplace_type<I + 1>(body, type);
  }
}

DecodeResult malformed(std::string why) {
  DecodeResult r;
  r.status = DecodeStatus::kMalformed;
  r.error = std::move(why);
  return r;
}

std::string hex32(uint32_t v) {
  char buf[16];
  snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

}  // namespace

bool encode(const Message& msg, std::vector<uint8_t>* out) {
  std::vector<uint8_t> payload;
  payload.reserve(64);
  bool ok = std::visit([&](const auto& body) { return encode_body(body, &payload); }, msg.body);
  if (!ok || payload.size() > kMaxPayload) return false;
  put_u32(out, kMagic);
  put_u16(out, kVersion);
  put_u16(out, static_cast<uint16_t>(msg.body.index() + 1));
  put_u64(out, msg.request_id);
  put_u32(out, static_cast<uint32_t>(payload.size()));
  out->insert(out->end(), payload.begin(), payload.end());
  return true;
}

DecodeResult decode(const uint8_t* data, size_t len) {
  DecodeResult res;
  if (len < kHeaderSize) return res;  // kNeedMore
  uint32_t magic = get_u32(data);
  if (magic != kMagic) return malformed("bad magic " + hex32(magic));
  uint16_t version = get_u16(data + 4);
  if (version != kVersion) return malformed("unsupported version " + std::to_string(version));
  uint16_t type = get_u16(data + 6);
  if (type < kFirstType || type > kLastType) {
    return malformed("unknown message type " + std::to_string(type));
  }
  uint32_t payload_len = get_u32(data + 16);
  if (payload_len > kMaxPayload) {
    return malformed("payload length " + std::to_string(payload_len) + " exceeds " +
                     std::to_string(kMaxPayload));
  }
  if (len - kHeaderSize < payload_len) return res;  // kNeedMore

  res.msg.request_id = get_u64(data + 8);
  emplace_type(&res.msg.body, type);
  const char* name = kTypeNames[type - 1];
  Reader reader(data + kHeaderSize, payload_len);
  std::string err;
  bool ok = std::visit([&](auto& body) { return decode_body(&reader, &body, &err); }, res.msg.body);
  if (!ok) return malformed(std::move(err));
  if (!reader.ok()) return malformed(std::string("truncated ") + name + " payload");
  if (reader.left() != 0) {
    return malformed(std::to_string(reader.left()) + " trailing bytes after " + name);
  }
  res.status = DecodeStatus::kOk;
  res.consumed = kHeaderSize + payload_len;
  return res;
}

void FrameBuffer::append(const uint8_t* data, size_t len) {
  // Drop consumed frames once they are at least half the buffer: each byte is moved O(1) times.
  if (start_ > 0 && start_ * 2 >= buf_.size()) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buf_.insert(buf_.end(), data, data + len);
}

DecodeStatus FrameBuffer::next(Message* msg, std::string* error) {
  DecodeResult r = decode(buf_.data() + start_, buf_.size() - start_);
  if (r.status == DecodeStatus::kOk) {
    *msg = std::move(r.msg);
    start_ += r.consumed;
    if (start_ == buf_.size()) {
      buf_.clear();
      start_ = 0;
    }
  } else if (r.status == DecodeStatus::kMalformed && error != nullptr) {
    *error = std::move(r.error);
  }
  return r.status;
}

bool valid_gpu_uuid(const std::string& uuid) {
  // GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
  static constexpr size_t kGroups[] = {8, 4, 4, 4, 12};
  if (uuid.size() != 4 + 8 + 4 + 4 + 4 + 12 + 4 || uuid.compare(0, 4, "GPU-") != 0) return false;
  size_t pos = 4;
  for (size_t g = 0; g < 5; ++g) {
    if (g > 0 && uuid[pos++] != '-') return false;
    for (size_t i = 0; i < kGroups[g]; ++i, ++pos) {
      const char c = uuid[pos];
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
    }
  }
  return true;
}

const char* type_name(const Body& body) {
  size_t i = body.index();
  return i < std::variant_size_v<Body> ? kTypeNames[i] : "invalid";
}

}  // namespace gem::proto
