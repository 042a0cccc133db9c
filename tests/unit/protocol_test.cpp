// Wire protocol: round trips, every rejection class, stream reassembly, and a mutation fuzz loop
// (run under SANITIZE=1 to catch out-of-bounds reads).
#include "gem/protocol.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>

namespace gem::proto {
namespace {

std::vector<uint8_t> frame(const Message& m) {
  std::vector<uint8_t> out;
  EXPECT_TRUE(encode(m, &out));
  return out;
}

Message roundtrip(const Message& m) {
  std::vector<uint8_t> bytes = frame(m);
  DecodeResult r = decode(bytes.data(), bytes.size());
  EXPECT_EQ(r.status, DecodeStatus::kOk) << r.error;
  EXPECT_EQ(r.consumed, bytes.size());
  EXPECT_EQ(r.msg.request_id, m.request_id);
  EXPECT_EQ(r.msg.body.index(), m.body.index());
  return r.msg;
}

// A hand-built frame, so malformed headers and payloads can be expressed directly.
std::vector<uint8_t> raw(uint16_t type, const std::vector<uint8_t>& payload,
                         uint32_t magic = kMagic, uint16_t version = kVersion,
                         int64_t len_override = -1) {
  uint32_t len = len_override >= 0 ? static_cast<uint32_t>(len_override)
                                   : static_cast<uint32_t>(payload.size());
  std::vector<uint8_t> b = {
      uint8_t(magic >> 24), uint8_t(magic >> 16), uint8_t(magic >> 8), uint8_t(magic),
      uint8_t(version >> 8), uint8_t(version), uint8_t(type >> 8), uint8_t(type),
      0, 0, 0, 0, 0, 0, 0, 42,
      uint8_t(len >> 24), uint8_t(len >> 16), uint8_t(len >> 8), uint8_t(len)};
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

std::string malformed(const std::vector<uint8_t>& b) {
  DecodeResult r = decode(b.data(), b.size());
  EXPECT_EQ(r.status, DecodeStatus::kMalformed);
  return r.error;
}

Hello full_hello(bool declared) {
  Hello h;
  h.role = Role::kPodManager;
  h.client = std::string(kMaxName, 'n');
  h.device_uuid = std::string(kMaxName, '~');
  h.pid = 0xfedcba98;
  h.has_declared = declared;
  h.declared = {123456, 1000000, 0x123456789abcdef0ULL, kFlagUnifiedMemory};
  return h;
}

TEST(Protocol, HeaderLayout) {
  Message m{0x0102030405060708ULL, TokenGrant{0x1122334455667788ULL}};
  std::vector<uint8_t> b = frame(m);
  std::vector<uint8_t> want = {'G', 'E', 'M', '1', 0, 4, 0, 4, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 8,
                               0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
  EXPECT_EQ(b, want);
}

TEST(Protocol, TypeNumbersAndNames) {
  const Body bodies[] = {Hello{},      ClientSettings{}, TokenRequest{}, TokenGrant{}, TokenRelease{},
                         Error{},      TokenRenew{},     Heartbeat{},    TokenRevoke{}, MemReserve{},
                         MemReturn{},  MemQuery{},       MemState{},     MemUsage{},   Evict{}};
  const char* names[] = {"Hello",      "ClientSettings", "TokenRequest", "TokenGrant",  "TokenRelease",
                         "Error",      "TokenRenew",     "Heartbeat",    "TokenRevoke", "MemReserve",
                         "MemReturn",  "MemQuery",       "MemState",     "MemUsage",   "Evict"};
  static_assert(sizeof(names) / sizeof(names[0]) == std::variant_size_v<Body>, "every type listed");
  for (size_t i = 0; i < std::variant_size_v<Body>; ++i) {
    std::vector<uint8_t> b = frame(Message{1, bodies[i]});
    EXPECT_EQ(b[7], i + 1);
    EXPECT_STREQ(type_name(bodies[i]), names[i]);
  }
}

TEST(Protocol, HelloRoundTripMaxNames) {
  for (bool declared : {false, true}) {
    Hello in = full_hello(declared);
    Message out = roundtrip(Message{9, in});
    const Hello& h = std::get<Hello>(out.body);
    EXPECT_EQ(h.role, in.role);
    EXPECT_EQ(h.client, in.client);
    EXPECT_EQ(h.device_uuid, in.device_uuid);
    EXPECT_EQ(h.pid, in.pid);
    EXPECT_EQ(h.has_declared, declared);
    if (declared) {
      EXPECT_EQ(h.declared.request_ppm, 123456u);
      EXPECT_EQ(h.declared.limit_ppm, 1000000u);
      EXPECT_EQ(h.declared.gpu_mem_bytes, 0x123456789abcdef0ULL);
      EXPECT_EQ(h.declared.flags, kFlagUnifiedMemory) << "gem-pmgr --um reaches gem-schd --dynamic_clients";
    } else {
      EXPECT_EQ(h.declared.request_ppm, 0u);  // not on the wire, so not invented
    }
  }
}

TEST(Protocol, HelloEmptyStrings) {
  Hello in;
  in.role = Role::kHook;
  Message out = roundtrip(Message{0, in});
  EXPECT_EQ(std::get<Hello>(out.body).client, "");
  EXPECT_EQ(std::get<Hello>(out.body).role, Role::kHook);
}

TEST(Protocol, OtherTypesRoundTrip) {
  const uint64_t big = 0xffffffffffffffffULL;
  auto cs = std::get<ClientSettings>(roundtrip(Message{1, ClientSettings{7, 0xffffffffu, big}}).body);
  EXPECT_EQ(cs.request_ppm, 7u);
  EXPECT_EQ(cs.limit_ppm, 0xffffffffu);
  EXPECT_EQ(cs.gpu_mem_bytes, big);
  EXPECT_EQ(std::get<ClientSettings>(roundtrip(Message{1, ClientSettings{1, 2, 3, kFlagUnifiedMemory, 5000}}).body).flags,
            kFlagUnifiedMemory);
  EXPECT_EQ(std::get<ClientSettings>(roundtrip(Message{1, ClientSettings{1, 2, 3, 0, 5000}}).body).latency_us, 5000u);
  EXPECT_EQ(std::get<MemState>(roundtrip(Message{1, MemState{1, 2, 3, kFlagUnifiedMemory}}).body).flags,
            kFlagUnifiedMemory);
  EXPECT_EQ(std::get<TokenRequest>(roundtrip(Message{2, TokenRequest{big - 1}}).body).last_burst_us,
            big - 1);
  EXPECT_EQ(std::get<TokenGrant>(roundtrip(Message{big, TokenGrant{250000}}).body).quota_us, 250000u);
  auto rel = std::get<TokenRelease>(roundtrip(Message{3, TokenRelease{1, 2, 3, big}}).body);
  EXPECT_EQ(rel.used_us, 1u);
  EXPECT_EQ(rel.burst_us, 2u);
  EXPECT_EQ(rel.start_us, 3u);
  EXPECT_EQ(rel.end_us, big);
  EXPECT_FALSE(rel.again);
  auto renew = std::get<TokenRenew>(roundtrip(Message{5, TokenRenew{7, big}}).body);
  EXPECT_EQ(renew.used_us, 7u);
  EXPECT_EQ(renew.burst_us, big);
  EXPECT_TRUE(std::get<TokenRelease>(roundtrip(Message{3, TokenRelease{1, 2, 3, 4, true}}).body).again);
  Error e{ErrorCode::kRemoved, std::string(kMaxName, 'x')};
  auto eo = std::get<Error>(roundtrip(Message{4, e}).body);
  EXPECT_EQ(eo.code, ErrorCode::kRemoved);
  EXPECT_EQ(eo.message, e.message);
}

TEST(Protocol, EncodeRefusesBadStrings) {
  std::vector<uint8_t> out = {1, 2, 3};
  Hello h;
  h.client = std::string(kMaxName + 1, 'a');
  EXPECT_FALSE(encode(Message{1, h}, &out));
  h.client = "tab\there";
  EXPECT_FALSE(encode(Message{1, h}, &out));
  EXPECT_FALSE(encode(Message{1, Error{ErrorCode::kProtocol, std::string(kMaxName + 1, 'e')}}, &out));
  h.client = "ok";
  h.role = static_cast<Role>(7);
  EXPECT_FALSE(encode(Message{1, h}, &out));
  EXPECT_EQ(out, (std::vector<uint8_t>{1, 2, 3}));  // nothing appended on failure
}

TEST(Protocol, NeedMoreForPartialFrames) {
  std::vector<uint8_t> b = frame(Message{5, full_hello(true)});
  for (size_t n = 0; n < b.size(); ++n) {
    DecodeResult r = decode(b.data(), n);
    EXPECT_EQ(r.status, DecodeStatus::kNeedMore) << "at " << n;
  }
  EXPECT_EQ(decode(nullptr, 0).status, DecodeStatus::kNeedMore);
}

TEST(Protocol, BadHeaderRejectedWithoutPayload) {
  // Header complete and invalid: rejected at once, not after waiting for the (absent) payload.
  EXPECT_EQ(malformed(raw(4, {}, 0x12345678, kVersion, 8)), "bad magic 0x12345678");
  EXPECT_EQ(malformed(raw(4, {}, kMagic, 7, 8)), "unsupported version 7");
  // The previous releases' frames are refused by version, whatever follows.
  EXPECT_EQ(malformed(raw(4, std::vector<uint8_t>(8), kMagic, 2)), "unsupported version 2");
  EXPECT_EQ(malformed(raw(4, std::vector<uint8_t>(8), kMagic, 1)), "unsupported version 1");
  EXPECT_EQ(malformed(raw(16, {}, kMagic, kVersion, 8)), "unknown message type 16");
  EXPECT_EQ(malformed(raw(0, {}, kMagic, kVersion, 8)), "unknown message type 0");
  EXPECT_EQ(malformed(raw(4, {}, kMagic, kVersion, 70000)), "payload length 70000 exceeds 1024");
  EXPECT_EQ(malformed(raw(4, {}, kMagic, kVersion, 0xffffffffu)),
            "payload length 4294967295 exceeds 1024");
}

TEST(Protocol, MaxPayloadLengthWaits) {
  std::vector<uint8_t> b = raw(4, {}, kMagic, kVersion, kMaxPayload);
  EXPECT_EQ(decode(b.data(), b.size()).status, DecodeStatus::kNeedMore);
}

TEST(Protocol, PayloadErrors) {
  EXPECT_EQ(malformed(raw(4, std::vector<uint8_t>(10))), "2 trailing bytes after TokenGrant");
  EXPECT_EQ(malformed(raw(4, std::vector<uint8_t>(7))), "truncated TokenGrant payload");
  EXPECT_EQ(malformed(raw(5, std::vector<uint8_t>(42))), "1 trailing bytes after TokenRelease");
  std::vector<uint8_t> again2(33);
  again2[32] = 2;
  EXPECT_EQ(malformed(raw(5, again2)), "again must be 0 or 1");
  EXPECT_EQ(malformed(raw(2, std::vector<uint8_t>(15))), "truncated ClientSettings payload");
  EXPECT_EQ(malformed(raw(3, {})), "truncated TokenRequest payload");
  EXPECT_EQ(malformed(raw(1, {})), "truncated Hello payload");
  EXPECT_EQ(malformed(raw(6, {0, 3, 0, 5, 'a', 'b'})), "truncated Error payload");
}

// Hello payload: role, client, uuid, pid, has_declared [, declared], secret (empty).
std::vector<uint8_t> hello_payload(uint8_t role, const std::vector<uint8_t>& client,
                                   uint8_t has_declared, size_t declared_bytes) {
  std::vector<uint8_t> p = {role, uint8_t(client.size() >> 8), uint8_t(client.size())};
  p.insert(p.end(), client.begin(), client.end());
  p.insert(p.end(), {0, 0, 0, 0, 0, 1, has_declared});
  p.insert(p.end(), declared_bytes, 0);
  p.insert(p.end(), {0, 0});  // empty secret
  return p;
}

TEST(Protocol, HelloErrors) {
  EXPECT_EQ(decode(raw(1, hello_payload(1, {'a'}, 0, 0)).data(), 20 + 13).status, DecodeStatus::kOk);
  EXPECT_EQ(malformed(raw(1, hello_payload(9, {'a'}, 0, 0))), "role 9 invalid");
  EXPECT_EQ(malformed(raw(1, hello_payload(4, {'a'}, 0, 0))), "role 4 invalid");
  EXPECT_EQ(decode(raw(1, hello_payload(3, {'a'}, 0, 0)).data(), 20 + 13).status, DecodeStatus::kOk);
  EXPECT_EQ(malformed(raw(1, hello_payload(0, {'a'}, 0, 0))), "role 0 invalid");
  EXPECT_EQ(decode(raw(1, hello_payload(2, {'a'}, 1, 24)).data(), 20 + 37).status, DecodeStatus::kOk);
  EXPECT_EQ(malformed(raw(1, hello_payload(1, {'a'}, 2, 20))), "has_declared must be 0 or 1");
  EXPECT_EQ(malformed(raw(1, hello_payload(1, {'a'}, 1, 23))), "truncated Hello payload");
  EXPECT_EQ(malformed(raw(1, hello_payload(1, {'a'}, 1, 16))), "truncated Hello payload");
  EXPECT_EQ(malformed(raw(1, hello_payload(1, {'a'}, 0, 16))), "16 trailing bytes after Hello");
  std::vector<uint8_t> long_secret = hello_payload(1, {'a'}, 0, 0);
  long_secret.resize(long_secret.size() - 2);
  long_secret.insert(long_secret.end(), {0, 129});
  long_secret.insert(long_secret.end(), 129, 's');
  EXPECT_EQ(malformed(raw(1, long_secret)), "string length 129 exceeds 128");
  EXPECT_EQ(malformed(raw(1, hello_payload(1, {'a', 0x7f}, 0, 0))), "non-printable byte in string");
  EXPECT_EQ(malformed(raw(1, hello_payload(1, {'a', 0x80}, 0, 0))), "non-printable byte in string");
  EXPECT_EQ(malformed(raw(1, hello_payload(1, {'\n'}, 0, 0))), "non-printable byte in string");
  EXPECT_EQ(malformed(raw(1, hello_payload(1, std::vector<uint8_t>(400, 'a'), 0, 0))),
            "string length 400 exceeds 320");
  // A string length pointing past the payload is truncation, not an over-read.
  EXPECT_EQ(malformed(raw(1, {1, 0, 200, 'a'})), "truncated Hello payload");
}

TEST(Protocol, HeartbeatRevokeAndSecretRoundTrip) {
  EXPECT_TRUE(std::holds_alternative<Heartbeat>(roundtrip({0, Heartbeat{}}).body));
  EXPECT_EQ(std::get<TokenRevoke>(roundtrip({0, TokenRevoke{0xfedcba9876543210ULL}}).body).held_us,
            0xfedcba9876543210ULL);
  Hello h = full_hello(true);
  h.client = "c";
  h.device_uuid = "GPU-1";
  h.secret = std::string(kMaxSecret, 'k');
  EXPECT_EQ(std::get<Hello>(roundtrip({1, h}).body).secret, h.secret);
  h.secret += "k";
  std::vector<uint8_t> out;
  EXPECT_FALSE(encode({1, h}, &out)) << "a secret over kMaxSecret is refused at the sender";
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(malformed(raw(8, {0})), "1 trailing bytes after Heartbeat");
  EXPECT_EQ(malformed(raw(9, {0, 0})), "truncated TokenRevoke payload");
}

TEST(Protocol, MemoryMessagesRoundTrip) {
  const uint64_t big = 0xffffffffffffffffULL;
  Hello h;
  h.role = Role::kHookMemory;
  h.client = "ns/pod";
  h.device_uuid = "GPU-fa4e0000-0000-0000-0000-00000000000d";
  h.pid = 77;
  EXPECT_EQ(std::get<Hello>(roundtrip({1, h}).body).role, Role::kHookMemory);
  for (bool existing : {false, true}) {
    auto r = std::get<MemReserve>(roundtrip({11, MemReserve{big, 0x0102030405060708ULL, existing}}).body);
    EXPECT_EQ(r.need_bytes, big);
    EXPECT_EQ(r.want_bytes, 0x0102030405060708ULL);
    EXPECT_EQ(r.existing, existing);
  }
  EXPECT_EQ(std::get<MemReturn>(roundtrip({12, MemReturn{big - 3}}).body).bytes, big - 3);
  EXPECT_TRUE(std::holds_alternative<MemQuery>(roundtrip({13, MemQuery{}}).body));
  auto st = std::get<MemState>(roundtrip({0, MemState{4ULL << 30, big, 2ULL << 20}}).body);
  EXPECT_EQ(st.limit_bytes, 4ULL << 30);
  EXPECT_EQ(st.client_held_bytes, big);
  EXPECT_EQ(st.granted_bytes, 2ULL << 20);
}

TEST(Protocol, MemoryMessagesLayout) {
  std::vector<uint8_t> b = frame(Message{5, MemReserve{0x10, 0x20, true}});
  std::vector<uint8_t> want = {'G', 'E', 'M', '1', 0, 4, 0, 10, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 17,
                               0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x20, 1};
  EXPECT_EQ(b, want);
  b = frame(Message{0, MemState{1, 2, 3}});
  ASSERT_EQ(b.size(), kHeaderSize + 28);  // + u32 flags
  EXPECT_EQ(b[7], 13);
  EXPECT_EQ(b[kHeaderSize + 7], 1);
  EXPECT_EQ(b[kHeaderSize + 15], 2);
  EXPECT_EQ(b[kHeaderSize + 23], 3);
  EXPECT_EQ(frame(Message{1, MemQuery{}}).size(), kHeaderSize);
  EXPECT_EQ(frame(Message{1, MemReturn{9}}).size(), kHeaderSize + 8);
}

TEST(Protocol, MemoryMessagesErrors) {
  std::vector<uint8_t> reserve(17);
  EXPECT_EQ(decode(raw(10, reserve).data(), 20 + 17).status, DecodeStatus::kOk);
  reserve[16] = 2;
  EXPECT_EQ(malformed(raw(10, reserve)), "existing must be 0 or 1");
  reserve[16] = 0xff;
  EXPECT_EQ(malformed(raw(10, reserve)), "existing must be 0 or 1");
  EXPECT_EQ(malformed(raw(10, std::vector<uint8_t>(16))), "truncated MemReserve payload");
  EXPECT_EQ(malformed(raw(10, std::vector<uint8_t>(18))), "1 trailing bytes after MemReserve");
  EXPECT_EQ(malformed(raw(11, std::vector<uint8_t>(7))), "truncated MemReturn payload");
  EXPECT_EQ(malformed(raw(11, std::vector<uint8_t>(9))), "1 trailing bytes after MemReturn");
  EXPECT_EQ(malformed(raw(12, {0})), "1 trailing bytes after MemQuery");
  EXPECT_EQ(malformed(raw(13, std::vector<uint8_t>(27))), "truncated MemState payload");
  EXPECT_EQ(malformed(raw(13, std::vector<uint8_t>(29))), "1 trailing bytes after MemState");
  EXPECT_EQ(malformed(raw(13, {})), "truncated MemState payload");
  // Partial memory frames wait for more.
  std::vector<uint8_t> b = frame(Message{3, MemState{1, 2, 3}});
  for (size_t n = 0; n < b.size(); ++n) EXPECT_EQ(decode(b.data(), n).status, DecodeStatus::kNeedMore);
}

TEST(Protocol, ResidencyMessagesRoundTrip) {
  const uint64_t big = 0xffffffffffffffffULL;
  auto u = std::get<MemUsage>(roundtrip({0, MemUsage{big, 0xfffffffeu}}).body);
  EXPECT_EQ(u.bytes, big) << "sizes travel as sent; the receiver clamps them (wire_bytes)";
  EXPECT_EQ(u.flags, 0xfffffffeu) << "unknown flag bits travel as sent";
  u = std::get<MemUsage>(roundtrip({0, MemUsage{256ULL << 20, kFlagUnifiedMemory}}).body);
  EXPECT_EQ(u.bytes, 256ULL << 20);
  EXPECT_EQ(u.flags, kFlagUnifiedMemory);
  EXPECT_TRUE(std::holds_alternative<Evict>(roundtrip({0, Evict{}}).body));
}

TEST(Protocol, ResidencyMessagesLayout) {
  std::vector<uint8_t> b = frame(Message{0, MemUsage{0x0102030405060708ULL, 1}});
  std::vector<uint8_t> want = {'G', 'E', 'M', '1', 0, 4, 0, 14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12,
                               1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1};
  EXPECT_EQ(b, want);
  b = frame(Message{0, Evict{kEvictDemandPaging}});
  ASSERT_EQ(b.size(), kHeaderSize + 4);
  EXPECT_EQ(b[7], 15);
  EXPECT_EQ(b[kHeaderSize + 3], 1);
  EXPECT_EQ(std::get<Evict>(roundtrip({0, Evict{kEvictDemandPaging}}).body).flags, kEvictDemandPaging);
}

TEST(Protocol, ResidencyMessagesErrors) {
  EXPECT_EQ(decode(raw(14, std::vector<uint8_t>(12)).data(), 20 + 12).status, DecodeStatus::kOk);
  EXPECT_EQ(malformed(raw(14, std::vector<uint8_t>(11))), "truncated MemUsage payload");
  EXPECT_EQ(malformed(raw(14, std::vector<uint8_t>(8))), "truncated MemUsage payload");
  EXPECT_EQ(malformed(raw(14, {})), "truncated MemUsage payload");
  EXPECT_EQ(malformed(raw(14, std::vector<uint8_t>(13))), "1 trailing bytes after MemUsage");
  EXPECT_EQ(malformed(raw(15, {0})), "truncated Evict payload");
  EXPECT_EQ(malformed(raw(15, std::vector<uint8_t>(5))), "1 trailing bytes after Evict");
  EXPECT_EQ(malformed(raw(16, {})), "unknown message type 16");
  std::vector<uint8_t> b = frame(Message{0, MemUsage{1, 1}});
  for (size_t n = 0; n < b.size(); ++n) EXPECT_EQ(decode(b.data(), n).status, DecodeStatus::kNeedMore);
}

TEST(Protocol, WireBytesSaturates) {
  EXPECT_EQ(wire_bytes(0), 0u);
  EXPECT_EQ(wire_bytes(kMaxWireBytes), kMaxWireBytes);
  EXPECT_EQ(wire_bytes(kMaxWireBytes + 1), kMaxWireBytes);
  EXPECT_EQ(wire_bytes(UINT64_MAX), kMaxWireBytes);
  // 8192 saturated sizes still add without overflow.
  EXPECT_LE(wire_bytes(UINT64_MAX), UINT64_MAX / 8192);
}

TEST(Protocol, WireMicrosSaturates) {
  EXPECT_EQ(wire_micros(0), 0);
  EXPECT_EQ(wire_micros(123), 123);
  EXPECT_EQ(wire_micros(UINT64_MAX), kMaxWireMicros);
  EXPECT_EQ(wire_micros(static_cast<uint64_t>(INT64_MAX)), kMaxWireMicros);
  // Two saturated values still add and subtract without overflow.
  EXPECT_GT(wire_micros(UINT64_MAX) + wire_micros(UINT64_MAX), 0);
}

TEST(Protocol, GpuUuidFormat) {
  EXPECT_TRUE(valid_gpu_uuid("GPU-fa4e0000-0000-0000-0000-00000000000d"));
  EXPECT_TRUE(valid_gpu_uuid("GPU-ABCDEF01-2345-6789-abcd-ef0123456789"));
  for (const char* bad : {"", "GPU-", "../elsewhere/x", "GPU-fa4e0000-0000-0000-0000-00000000000", "GPU-fa4e0000-0000-0000-0000-00000000000d0",
                          "GPU-fa4e0000/0000-0000-0000-00000000000d", "MIG-fa4e0000-0000-0000-0000-00000000000d",
                          "GPU-fa4e0000-0000-0000-0000-00000000000g", "gpu-fa4e0000-0000-0000-0000-00000000000d",
                          "GPU-fa4e0000-0000-0000-0000-0000000/../d"}) {
    EXPECT_FALSE(valid_gpu_uuid(bad)) << bad;
  }
}

TEST(Protocol, ErrorCodeKeptAsIs) {
  DecodeResult r = decode(raw(6, {0x12, 0x34, 0, 0}).data(), 24);
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(static_cast<uint16_t>(std::get<Error>(r.msg.body).code), 0x1234);
}

std::vector<Message> sample_messages() {
  return {Message{1, full_hello(true)},      Message{2, full_hello(false)},
          Message{0, ClientSettings{1, 2, 3}}, Message{3, TokenRequest{44}},
          Message{3, TokenGrant{55}},          Message{4, TokenRelease{6, 7, 8, 9}},
          Message{5, Error{ErrorCode::kUnknownClient, "no such client ns/pod"}},
          Message{6, MemReserve{1 << 20, 64 << 20, false}}, Message{7, MemReturn{4096}},
          Message{8, MemQuery{}},              Message{0, MemState{4ULL << 30, 1 << 30, 0}}};
}

TEST(FrameBuffer, ByteByByteYieldsAllInOrder) {
  std::vector<Message> msgs = sample_messages();
  std::vector<uint8_t> stream;
  for (const Message& m : msgs) ASSERT_TRUE(encode(m, &stream));
  FrameBuffer fb;
  std::vector<Message> got;
  std::string err;
  for (uint8_t byte : stream) {
    fb.append(&byte, 1);
    Message m;
    DecodeStatus st;
    while ((st = fb.next(&m, &err)) == DecodeStatus::kOk) got.push_back(m);
    ASSERT_EQ(st, DecodeStatus::kNeedMore) << err;
    EXPECT_LE(fb.buffered(), kHeaderSize + kMaxPayload);
  }
  ASSERT_EQ(got.size(), msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) {
    EXPECT_EQ(got[i].request_id, msgs[i].request_id);
    EXPECT_EQ(got[i].body.index(), msgs[i].body.index());
  }
  EXPECT_EQ(std::get<Hello>(got[0].body).client, std::string(kMaxName, 'n'));
  EXPECT_EQ(std::get<TokenRelease>(got[5].body).end_us, 9u);
  EXPECT_EQ(std::get<Error>(got[6].body).message, "no such client ns/pod");
  EXPECT_EQ(std::get<MemState>(got[10].body).limit_bytes, 4ULL << 30);
  EXPECT_EQ(fb.buffered(), 0u);
}

TEST(FrameBuffer, WholeStreamAtOnceThenMalformed) {
  std::vector<uint8_t> stream;
  for (const Message& m : sample_messages()) ASSERT_TRUE(encode(m, &stream));
  std::vector<uint8_t> bad = raw(4, {}, 0xdeadbeef, kVersion, 8);
  stream.insert(stream.end(), bad.begin(), bad.end());
  FrameBuffer fb;
  fb.append(stream.data(), stream.size());
  Message m;
  std::string err;
  for (size_t i = 0; i < sample_messages().size(); ++i) {
    ASSERT_EQ(fb.next(&m, &err), DecodeStatus::kOk);
  }
  EXPECT_EQ(fb.next(&m, &err), DecodeStatus::kMalformed);
  EXPECT_EQ(err, "bad magic 0xdeadbeef");
}

TEST(FrameBuffer, StaysBoundedOverManyFrames) {
  std::vector<uint8_t> one = frame(Message{1, TokenRequest{2}});
  FrameBuffer fb;
  Message m;
  std::string err;
  // Feed a continuous stream in 83-byte chunks that straddle frame boundaries; the buffer must
  // drop consumed frames rather than grow with the total.
  size_t pos = 0, decoded = 0;
  for (int round = 0; round < 10000; ++round) {
    std::vector<uint8_t> chunk;
    for (int i = 0; i < 83; ++i, ++pos) chunk.push_back(one[pos % one.size()]);
    fb.append(chunk.data(), chunk.size());
    DecodeStatus st;
    while ((st = fb.next(&m, &err)) == DecodeStatus::kOk) ++decoded;
    ASSERT_EQ(st, DecodeStatus::kNeedMore) << err;
    ASSERT_LT(fb.buffered(), one.size());
  }
  EXPECT_EQ(decoded, pos / one.size());
}

TEST(FrameBuffer, LargeLegalLengthOnlyBuffersOneFrame) {
  std::vector<uint8_t> hdr = raw(6, {}, kMagic, kVersion, kMaxPayload);
  FrameBuffer fb;
  Message m;
  std::string err;
  fb.append(hdr.data(), hdr.size());
  std::vector<uint8_t> filler(kMaxPayload - 1, 'z');
  fb.append(filler.data(), filler.size());
  EXPECT_EQ(fb.next(&m, &err), DecodeStatus::kNeedMore);
  EXPECT_EQ(fb.buffered(), kHeaderSize + kMaxPayload - 1);
  uint8_t last = 'z';
  fb.append(&last, 1);
  // Error payload of 1024 bytes: code 0x7a7a, then a string length 0x7a7a = 31354 > kMaxName.
  EXPECT_EQ(fb.next(&m, &err), DecodeStatus::kMalformed);
  EXPECT_EQ(err, "string length 31354 exceeds 320");
}

TEST(Protocol, FuzzMutationsNeverCrash) {
  std::vector<std::vector<uint8_t>> seeds;
  for (const Message& m : sample_messages()) seeds.push_back(frame(m));
  std::mt19937 rng(12345);
  int counts[3] = {0, 0, 0};
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> b = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
        case 0: b[rng() % b.size()] = static_cast<uint8_t>(rng()); break;
        case 1: b.resize(rng() % (b.size() + 1)); break;
        case 2: b.insert(b.begin() + static_cast<std::ptrdiff_t>(rng() % (b.size() + 1)),
                         static_cast<uint8_t>(rng())); break;
        // Aim at the fields that carry lengths: payload_len and the first string length.
        case 3: if (b.size() > 23) b[16 + rng() % 8] = static_cast<uint8_t>(rng()); break;
      }
      if (b.empty()) b.push_back(0);
    }
    // Decode from an exact-size heap copy so ASan sees any read past the end.
    std::unique_ptr<uint8_t[]> exact(new uint8_t[b.size()]);
    std::copy(b.begin(), b.end(), exact.get());
    DecodeResult r = decode(exact.get(), b.size());
    counts[static_cast<int>(r.status)]++;
    if (r.status == DecodeStatus::kOk) {
      ASSERT_LE(r.consumed, b.size());
      // Whatever decodes must re-encode to the same bytes.
      std::vector<uint8_t> again;
      ASSERT_TRUE(encode(r.msg, &again));
      ASSERT_TRUE(std::equal(again.begin(), again.end(), b.begin()));
    } else if (r.status == DecodeStatus::kMalformed) {
      ASSERT_FALSE(r.error.empty());
    }
    FrameBuffer fb;
    fb.append(exact.get(), b.size());
    Message m;
    std::string err;
    while (fb.next(&m, &err) == DecodeStatus::kOk) {
    }
  }
  // The loop must have exercised all three outcomes.
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[2], 0);
}

}  // namespace
}  // namespace gem::proto
