#include "mem_sizing.h"

#include <algorithm>

#include "mem_ledger.h"

namespace gem::hook {

namespace {

constexpr uint64_t kMax = MemLedger::kMaxBytes;
constexpr uint64_t kMiB = uint64_t{1} << 20;

uint64_t clamp(uint64_t v) { return std::min(v, kMax); }
uint64_t mul(uint64_t a, uint64_t b) { return b != 0 && a > kMax / b ? kMax : clamp(a * b); }

}  // namespace

uint64_t round_up_bytes(uint64_t bytes, uint64_t unit) {
  bytes = clamp(bytes);
  if (unit == 0) return bytes;
  return clamp((bytes + unit - 1) / unit * unit);
}

uint64_t driver_alloc_bytes(uint64_t bytes) {
  return bytes >= 2 * kMiB ? round_up_bytes(bytes, 2 * kMiB) : round_up_bytes(bytes, 8 << 10);
}

uint64_t pitch_of(uint64_t width) { return round_up_bytes(width, kPitchAlign); }

uint64_t pitched_bytes(uint64_t pitch, uint64_t height) {
  const uint64_t rows = std::max<uint64_t>(height, 1);
  return pitch > kMax / rows ? kMax : pitch * rows;
}

uint64_t format_bytes(CUarray_format f) {
  switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8:
      return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
      return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT:
      return 4;
    default:
      return 16;
  }
}

uint64_t array_bytes(size_t w, size_t h, size_t d, unsigned channels, CUarray_format f) {
  uint64_t b = format_bytes(f) * std::max(1u, channels);
  for (uint64_t e : {uint64_t{w}, uint64_t{h}, uint64_t{d}}) b = mul(b, std::max<uint64_t>(e, 1));
  return round_up_bytes(b, kArrayPage);
}

uint64_t mipmap_bytes(const CUDA_ARRAY3D_DESCRIPTOR& a, unsigned levels) {
  uint64_t total = 0;
  size_t w = a.Width, h = a.Height, d = a.Depth;
  const bool layered = (a.Flags & CUDA_ARRAY3D_LAYERED) != 0;
  for (unsigned i = 0; i < std::max(1u, levels) && i < 32; ++i) {
    total = std::min(kMax, total + array_bytes(w, h, d, a.NumChannels, a.Format));
    w = std::max<size_t>(1, w / 2);
    h = h == 0 ? 0 : std::max<size_t>(1, h / 2);
    if (!layered) d = d == 0 ? 0 : std::max<size_t>(1, d / 2);
  }
  return total;
}

uint64_t handle_bytes(uint64_t size) { return round_up_bytes(size, kHandlePage); }

uint64_t pool_growth(uint64_t bytes, uint64_t reserved, uint64_t used) {
  const uint64_t idle = reserved > used ? reserved - used : 0;
  return idle >= bytes ? 0 : pool_growth_unread(bytes);
}

uint64_t pool_growth_unread(uint64_t bytes) { return round_up_bytes(bytes, kPoolStep); }

}  // namespace gem::hook
