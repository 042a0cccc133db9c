// libFuzzer target: the wire decoder (include/gem/protocol.h) as a daemon drives it, through
// gem::proto::FrameBuffer fed in chunks.
//
// Input: byte 0 = k (low 4 bits: number of split points), then k big-endian u16 split offsets,
// then the byte stream. The stream is appended to a FrameBuffer in the chunks the (sorted, reduced
// modulo stream size + 1) offsets cut it into, and every whole frame is taken out after each chunk.
//
// Properties (abort on violation):
//  - the frames decoded from the chunks are the ones decode() finds in the whole stream at once, and
//    the stream ends the same way (a malformed frame at the same place with the same reason, or the
//    same bytes left waiting for more): chunking never changes what a receiver sees;
//  - every decoded message re-encodes (encode() returns true) to exactly the bytes of its frame (the
//    wire format is canonical), and decode(encode(m)) gives m back;
//  - buffered() is what was appended and not yet taken out.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <algorithm>

#include "gem/protocol.h"

namespace proto = gem::proto;

#include "fuzz_check.h"

namespace {

constexpr const char* kFuzzTarget = "fuzz_frame";

bool same(const proto::ClientSettings& a, const proto::ClientSettings& b) {
  return a.request_ppm == b.request_ppm && a.limit_ppm == b.limit_ppm && a.gpu_mem_bytes == b.gpu_mem_bytes &&
         a.flags == b.flags;
}
bool same(const proto::Hello& a, const proto::Hello& b) {
  return a.role == b.role && a.client == b.client && a.device_uuid == b.device_uuid && a.pid == b.pid &&
         a.has_declared == b.has_declared && (!a.has_declared || same(a.declared, b.declared)) &&
         a.secret == b.secret;
}
bool same(const proto::Heartbeat&, const proto::Heartbeat&) { return true; }
bool same(const proto::TokenRevoke& a, const proto::TokenRevoke& b) { return a.held_us == b.held_us; }
bool same(const proto::TokenRequest& a, const proto::TokenRequest& b) { return a.last_burst_us == b.last_burst_us; }
bool same(const proto::TokenGrant& a, const proto::TokenGrant& b) { return a.quota_us == b.quota_us; }
bool same(const proto::TokenRelease& a, const proto::TokenRelease& b) {
  return a.used_us == b.used_us && a.burst_us == b.burst_us && a.start_us == b.start_us && a.end_us == b.end_us &&
         a.again == b.again && a.unthrottled_us == b.unthrottled_us;
}
bool same(const proto::TokenRenew& a, const proto::TokenRenew& b) {
  return a.used_us == b.used_us && a.burst_us == b.burst_us;
}
bool same(const proto::MemReserve& a, const proto::MemReserve& b) {
  return a.need_bytes == b.need_bytes && a.want_bytes == b.want_bytes && a.existing == b.existing;
}
bool same(const proto::MemReturn& a, const proto::MemReturn& b) { return a.bytes == b.bytes; }
bool same(const proto::MemQuery&, const proto::MemQuery&) { return true; }
bool same(const proto::MemState& a, const proto::MemState& b) {
  return a.limit_bytes == b.limit_bytes && a.client_held_bytes == b.client_held_bytes &&
         a.granted_bytes == b.granted_bytes && a.flags == b.flags;
}
bool same(const proto::MemUsage& a, const proto::MemUsage& b) { return a.bytes == b.bytes && a.flags == b.flags; }
bool same(const proto::Evict& a, const proto::Evict& b) { return a.flags == b.flags; }
bool same(const proto::Error& a, const proto::Error& b) { return a.code == b.code && a.message == b.message; }

bool same(const proto::Message& a, const proto::Message& b) {
  if (a.request_id != b.request_id || a.body.index() != b.body.index()) return false;
  return std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        return same(x, std::get<T>(b.body));
      },
      a.body);
}

// What a receiver sees in the whole stream at once: the frames, then how it ends.
struct Outcome {
  std::vector<proto::Message> msgs;
  std::vector<size_t> offsets;  // where each frame starts in the stream
  proto::DecodeStatus end = proto::DecodeStatus::kNeedMore;
  std::string error;
  size_t left = 0;  // bytes not consumed
};

Outcome decode_whole(const uint8_t* data, size_t len) {
  Outcome o;
  size_t pos = 0;
  for (;;) {
    proto::DecodeResult r = proto::decode(data + pos, len - pos);
    if (r.status != proto::DecodeStatus::kOk) {
      o.end = r.status;
      o.error = r.error;
      break;
    }
    CHECK(r.consumed >= proto::kHeaderSize && r.consumed <= proto::kHeaderSize + proto::kMaxPayload);
    CHECK(r.consumed <= len - pos);
    o.offsets.push_back(pos);
    o.msgs.push_back(std::move(r.msg));
    pos += r.consumed;
  }
  if (o.end == proto::DecodeStatus::kMalformed) CHECK(!o.error.empty());
  o.left = len - pos;
  return o;
}

void check_round_trip(const proto::Message& m, const uint8_t* frame, size_t frame_len) {
  std::vector<uint8_t> out;
  CHECK(proto::encode(m, &out));
  CHECK(out.size() == frame_len);
  CHECK(std::memcmp(out.data(), frame, frame_len) == 0);
  proto::DecodeResult again = proto::decode(out.data(), out.size());
  CHECK(again.status == proto::DecodeStatus::kOk);
  CHECK(again.consumed == out.size());
  CHECK(same(again.msg, m));
  CHECK(std::string(proto::type_name(m.body)) != "invalid");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t k = data[0] & 0x0f;
  size_t pos = 1;
  std::vector<size_t> cuts;
  for (size_t i = 0; i < k && pos + 2 <= size; ++i, pos += 2) {
    cuts.push_back(static_cast<size_t>(data[pos]) << 8 | data[pos + 1]);
  }
  if (cuts.size() < k) pos = size;  // ran out in the header: empty stream
  const uint8_t* stream = data + pos;
  const size_t len = size - pos;
  for (size_t& c : cuts) c %= len + 1;
  cuts.push_back(len);
  std::sort(cuts.begin(), cuts.end());

  const Outcome whole = decode_whole(stream, len);

  proto::FrameBuffer fb;
  size_t appended = 0, n = 0;
  proto::DecodeStatus end = proto::DecodeStatus::kNeedMore;
  std::string error;
  for (size_t cut : cuts) {
    if (end == proto::DecodeStatus::kMalformed) break;  // the connection is closed
    fb.append(stream + appended, cut - appended);
    appended = cut;
    for (;;) {
      CHECK(fb.buffered() <= appended);
      const size_t before = fb.buffered();
      const size_t frame_at = appended - before;
      proto::Message m;
      std::string err;
      const proto::DecodeStatus st = fb.next(&m, &err);
      if (st == proto::DecodeStatus::kMalformed) {
        CHECK(!err.empty());
        end = st;
        error = err;
        break;
      }
      if (st == proto::DecodeStatus::kNeedMore) {
        CHECK(fb.buffered() == before);
        break;
      }
      const size_t frame_len = before - fb.buffered();
      CHECK(frame_len >= proto::kHeaderSize);
      CHECK(n < whole.msgs.size());
      CHECK(whole.offsets[n] == frame_at);
      CHECK(same(m, whole.msgs[n]));
      check_round_trip(m, stream + frame_at, frame_len);
      ++n;
    }
  }
  // Everything appended: the same frames and the same end as the whole stream.
  CHECK(n == whole.msgs.size());
  CHECK(end == whole.end);
  if (end == proto::DecodeStatus::kMalformed) {
    CHECK(error == whole.error);
  } else {
    CHECK(appended == len);
    CHECK(fb.buffered() == whole.left);
  }
  return 0;
}
