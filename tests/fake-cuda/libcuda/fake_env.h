// The stand-ins' environment, read the same way by libcuda.so.1 and libnvidia-ml.so.1 so both show
// the same devices: FAKE_CUDA_DEVICES (count, default 1, 0..64) and FAKE_CUDA_MEM_BYTES (each
// device's memory, default 16 GiB). Header-only: each library has its own copy.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace fakecuda {

constexpr uint64_t kDefaultMemBytes = 16ull << 30;

// Parses a byte count: digits with an optional binary suffix K, M, G or T (also KiB, MB, ...).
// False if malformed, 0 or too large.
inline bool parse_bytes(const char* s, uint64_t* out) {
  if (s == nullptr || *s < '0' || *s > '9') return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0) return false;
  int shift = 0;
  switch (*end) {
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    case 't': case 'T': shift = 40; break;
    default: break;
  }
  if (shift != 0) {
    ++end;
    if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0) end += strlen(end);
  }
  if (*end != '\0' || v == 0 || v > (~0ull >> shift)) return false;
  *out = static_cast<uint64_t>(v) << shift;
  return true;
}

// FAKE_CUDA_DEVICES, or 1 when unset or malformed.
inline int env_device_count() {
  int count = 1;
  if (const char* e = getenv("FAKE_CUDA_DEVICES")) {
    char* end = nullptr;
    long v = strtol(e, &end, 10);
    if (end != e && *end == '\0' && v >= 0 && v <= 64) count = static_cast<int>(v);
  }
  return count;
}

// FAKE_CUDA_MEM_BYTES, or kDefaultMemBytes when unset or malformed.
inline uint64_t env_mem_bytes() {
  uint64_t v = 0;
  return parse_bytes(getenv("FAKE_CUDA_MEM_BYTES"), &v) ? v : kDefaultMemBytes;
}

// The 16 UUID bytes of device d: fa 4e 00 .. 00 (d >> 8) (d & 0xff).
inline void device_uuid_bytes(int d, unsigned char out[16]) {
  memset(out, 0, 16);
  out[0] = 0xfa;
  out[1] = 0x4e;
  out[14] = static_cast<unsigned char>((d >> 8) & 0xff);
  out[15] = static_cast<unsigned char>(d & 0xff);
}

}  // namespace fakecuda
