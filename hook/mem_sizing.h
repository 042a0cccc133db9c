// The sizing rules of the memory wrappers (docs/memory.md, "What is counted"): how many bytes of
// GPU memory an allocation call takes, as the driver really takes them (measured on an H200 with
// driver 580: cuMemGetInfo's free drops by exactly these amounts). The wrappers (mem_hooks.cpp,
// mem_pools.cpp) charge the ledger these sizes; each rule has its one home here.
// Pure: no driver calls, no state. Every result is clamped to kMaxBytes (MemLedger::kMaxBytes,
// 2^50) and every product saturates, so no argument from a program can wrap a size.
#pragma once

#include <cstddef>
#include <cstdint>

#include "driver_api.h"

namespace gem::hook {

/// A stream-ordered pool grows in 32 MiB steps (1 MiB -> 32 MiB reserved, 40 MiB -> 64 MiB,
/// 300 MiB -> 320 MiB).
constexpr uint64_t kPoolStep = uint64_t{32} << 20;
/// Arrays take whole 2 MiB pages (1000x1000 float4 took 16 MiB).
constexpr uint64_t kArrayPage = uint64_t{2} << 20;
/// cuMemCreate handles and graph memory nodes are counted in whole 2 MiB pages (the driver's
/// allocation granularity for device memory).
constexpr uint64_t kHandlePage = uint64_t{2} << 20;
/// cuMemAllocPitch_v2 pads rows to 512 bytes (a pitch of 1024 for 1000).
constexpr uint64_t kPitchAlign = 512;

/// Rounds `bytes` up to a multiple of `unit` (0: no rounding), saturating at kMaxBytes.
uint64_t round_up_bytes(uint64_t bytes, uint64_t unit);

/// Bytes the driver really takes for a cuMemAlloc_v2/cuMemAllocPitch_v2/cuMemAllocManaged of
/// `bytes`: rounded up to 2 MiB from 2 MiB on, to 8 KiB below.
uint64_t driver_alloc_bytes(uint64_t bytes);

/// The pitch of a pitched allocation `width` bytes wide: the width in whole kPitchAlign rows.
uint64_t pitch_of(uint64_t width);
/// Bytes a pitched allocation of `height` rows (0 counts as 1) of `pitch` bytes takes, before
/// driver_alloc_bytes(); saturating.
uint64_t pitched_bytes(uint64_t pitch, uint64_t height);

/// Bytes of one element of an array format (CU_AD_FORMAT_*); formats not listed (block-compressed
/// and others) count as the widest element, 16 bytes, never less.
uint64_t format_bytes(CUarray_format f);
/// Bytes of a w x h x d array of `channels` (0 counts as 1) elements of format `f` (0 extents
/// count as 1), in whole kArrayPage pages; saturating.
uint64_t array_bytes(size_t w, size_t h, size_t d, unsigned channels, CUarray_format f);
/// Bytes of a mipmapped array: the sum over `levels` (0 counts as 1, at most 32) of its levels,
/// each array_bytes() of the previous halved (never below 1; a 0 height or depth stays 0; a layered
/// array, CUDA_ARRAY3D_LAYERED, keeps its depth).
uint64_t mipmap_bytes(const CUDA_ARRAY3D_DESCRIPTOR& a, unsigned levels);

/// cuMemCreate of `size` bytes of device memory, and a graph memory node of `size` bytes: in
/// whole kHandlePage pages.
uint64_t handle_bytes(uint64_t size);

/// The growth a stream-ordered allocation of `bytes` may cause in a pool that reserves `reserved`
/// and uses `used` bytes (CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT / _USED_MEM_CURRENT): 0 when the
/// pool's idle part covers it, else the request in whole kPoolStep steps.
uint64_t pool_growth(uint64_t bytes, uint64_t reserved, uint64_t used);
/// The same while another stream captures (the pool is not read): the request in whole steps.
uint64_t pool_growth_unread(uint64_t bytes);

}  // namespace gem::hook
