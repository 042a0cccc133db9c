// CUDA arrays and mipmapped arrays. An array holds element bytes x width x height x depth
// (0 counting as 1; block-compressed formats by 4x4 blocks) rounded up to 2 MiB; a mipmapped array
// holds the sum over its levels (each dimension halved per level, at least 1; layers are not
// halved), rounded up once. Counted on the current context's device from creation to destroy
// (or the context's end), except with CUDA_ARRAY3D_DEFERRED_MAPPING or _SPARSE: those get memory
// only when mapped (cuMemMapArrayAsync, not emulated). cu*GetMemoryRequirements report the same
// size, and like the real driver only for arrays created with CUDA_ARRAY3D_DEFERRED_MAPPING.
// YUV and other multi-planar formats are not supported by the stand-in (CUDA_ERROR_NOT_SUPPORTED).
// Creation is "potentially unsafe" during stream capture (capture_rules.h).
#include "capture_rules.h"
#include "fake_driver.h"
#include "mem_model.h"

using fakecuda::Driver;
using fakecuda::HandleKind;
using fakecuda::kGranularity;
using fakecuda::Memory;

struct CUarray_st {
  int device;
  uint64_t bytes;  // rounded size, counted or not
  unsigned int flags;
};
struct CUmipmappedArray_st {
  int device;
  uint64_t bytes;
  unsigned int flags;
};

namespace {

// Bytes of a w x h x d level (each >= 1) of `format` with `channels`; 0 if the format is unknown.
// Sets *supported false for formats the stand-in does not size.
unsigned __int128 level_bytes(CUarray_format f, unsigned channels, uint64_t w, uint64_t h, uint64_t d,
                              bool* supported) {
  *supported = true;
  unsigned __int128 texels = static_cast<unsigned __int128>(w) * h * d;
  switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8: case CU_AD_FORMAT_SIGNED_INT8: return texels * channels;
    case CU_AD_FORMAT_UNSIGNED_INT16: case CU_AD_FORMAT_SIGNED_INT16: case CU_AD_FORMAT_HALF: return texels * 2 * channels;
    case CU_AD_FORMAT_UNSIGNED_INT32: case CU_AD_FORMAT_SIGNED_INT32: case CU_AD_FORMAT_FLOAT: return texels * 4 * channels;
    case CU_AD_FORMAT_UNORM_INT8X1: case CU_AD_FORMAT_SNORM_INT8X1: return texels;
    case CU_AD_FORMAT_UNORM_INT8X2: case CU_AD_FORMAT_SNORM_INT8X2: case CU_AD_FORMAT_UNORM_INT16X1:
    case CU_AD_FORMAT_SNORM_INT16X1: return texels * 2;
    case CU_AD_FORMAT_UNORM_INT8X4: case CU_AD_FORMAT_SNORM_INT8X4: case CU_AD_FORMAT_UNORM_INT16X2:
    case CU_AD_FORMAT_SNORM_INT16X2: case CU_AD_FORMAT_UNORM_INT_101010_2: return texels * 4;
    case CU_AD_FORMAT_UNORM_INT16X4: case CU_AD_FORMAT_SNORM_INT16X4: return texels * 8;
    case CU_AD_FORMAT_BC1_UNORM: case CU_AD_FORMAT_BC1_UNORM_SRGB: case CU_AD_FORMAT_BC4_UNORM:
    case CU_AD_FORMAT_BC4_SNORM:
      return static_cast<unsigned __int128>((w + 3) / 4) * ((h + 3) / 4) * d * 8;
    case CU_AD_FORMAT_BC2_UNORM: case CU_AD_FORMAT_BC2_UNORM_SRGB: case CU_AD_FORMAT_BC3_UNORM:
    case CU_AD_FORMAT_BC3_UNORM_SRGB: case CU_AD_FORMAT_BC5_UNORM: case CU_AD_FORMAT_BC5_SNORM:
    case CU_AD_FORMAT_BC6H_UF16: case CU_AD_FORMAT_BC6H_SF16: case CU_AD_FORMAT_BC7_UNORM:
    case CU_AD_FORMAT_BC7_UNORM_SRGB:
      return static_cast<unsigned __int128>((w + 3) / 4) * ((h + 3) / 4) * d * 16;
    default:
      *supported = false;
      return 0;
  }
}

uint64_t dim(uint64_t v) { return v == 0 ? 1 : v; }
uint64_t halve(uint64_t v, unsigned level) { return v == 0 ? 0 : ((v >> level) == 0 ? 1 : v >> level); }

// Rounded size of `levels` levels of desc (1 for a plain array) into *bytes.
CUresult array_size(const CUDA_ARRAY3D_DESCRIPTOR& desc, unsigned levels, uint64_t* bytes) {
  if (desc.Width == 0 || levels == 0) return CUDA_ERROR_INVALID_VALUE;
  if (desc.NumChannels != 1 && desc.NumChannels != 2 && desc.NumChannels != 4) return CUDA_ERROR_INVALID_VALUE;
  const bool layered = (desc.Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP)) != 0;
  uint64_t largest = desc.Width > desc.Height ? desc.Width : desc.Height;
  if (!layered && desc.Depth > largest) largest = desc.Depth;
  if (levels > 1 && (levels > 64 || (largest >> (levels - 1)) == 0)) return CUDA_ERROR_INVALID_VALUE;
  unsigned __int128 sum = 0;
  for (unsigned l = 0; l < levels; ++l) {
    bool supported = true;
    uint64_t d = layered ? desc.Depth : halve(desc.Depth, l);
    sum += level_bytes(desc.Format, desc.NumChannels, dim(halve(desc.Width, l)), dim(halve(desc.Height, l)), dim(d),
                       &supported);
    if (!supported) return CUDA_ERROR_NOT_SUPPORTED;
  }
  if (sum > Memory::get().total()) return CUDA_ERROR_OUT_OF_MEMORY;
  *bytes = fakecuda::round_up(static_cast<uint64_t>(sum), kGranularity);
  return CUDA_SUCCESS;
}

bool unbacked(unsigned int flags) { return (flags & (CUDA_ARRAY3D_DEFERRED_MAPPING | CUDA_ARRAY3D_SPARSE)) != 0; }

template <typename H>
CUresult create(H** out, const CUDA_ARRAY3D_DESCRIPTOR* desc, unsigned levels, HandleKind kind) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (out == nullptr || desc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUcontext c = fakecuda::current_ctx();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  if (CUresult r = fakecuda::capture_check_unsafe("cuArrayCreate")) return r;
  uint64_t bytes = 0;
  if (CUresult r = array_size(*desc, levels, &bytes)) return r;
  auto* h = new H{c->device, bytes, desc->Flags};
  if (CUresult r = Memory::get().add_array(h, c->device, c, unbacked(desc->Flags) ? 0 : bytes)) {
    delete h;
    return r;
  }
  Driver::get().add_handle(h, kind);
  *out = h;
  return CUDA_SUCCESS;
}

CUresult destroy(const void* h, HandleKind kind) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (!Driver::get().remove_handle(h, kind)) return CUDA_ERROR_INVALID_HANDLE;
  Memory::get().remove_array(h);
  return CUDA_SUCCESS;
}

template <typename H>
CUresult requirements(CUDA_ARRAY_MEMORY_REQUIREMENTS* req, H* h, HandleKind kind, CUdevice dev) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (req == nullptr || !Driver::get().valid_handle(h, kind)) return CUDA_ERROR_INVALID_VALUE;
  if (!Driver::get().valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  if ((h->flags & CUDA_ARRAY3D_DEFERRED_MAPPING) == 0) return CUDA_ERROR_INVALID_VALUE;
  *req = CUDA_ARRAY_MEMORY_REQUIREMENTS{};
  req->size = h->bytes;
  req->alignment = kGranularity;
  return CUDA_SUCCESS;
}

CUDA_ARRAY3D_DESCRIPTOR from_2d(size_t w, size_t h, CUarray_format f, unsigned channels) {
  CUDA_ARRAY3D_DESCRIPTOR d{};
  d.Width = w;
  d.Height = h;
  d.Format = f;
  d.NumChannels = channels;
  return d;
}

}  // namespace

FAKE_API CUresult CUDAAPI cuArrayCreate_v2(CUarray* pHandle, const CUDA_ARRAY_DESCRIPTOR* pAllocateArray) {
  if (pAllocateArray == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUDA_ARRAY3D_DESCRIPTOR d = from_2d(pAllocateArray->Width, pAllocateArray->Height, pAllocateArray->Format,
                                      pAllocateArray->NumChannels);
  return create(pHandle, &d, 1, HandleKind::kArray);
}

FAKE_API CUresult CUDAAPI cuArray3DCreate_v2(CUarray* pHandle, const CUDA_ARRAY3D_DESCRIPTOR* pAllocateArray) {
  return create(pHandle, pAllocateArray, 1, HandleKind::kArray);
}

// Legacy forms with 32-bit dimensions (cudaVersion < 3020).
FAKE_API CUresult CUDAAPI cuArrayCreate(CUarray* pHandle, const CUDA_ARRAY_DESCRIPTOR_v1* pAllocateArray) {
  if (pAllocateArray == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUDA_ARRAY3D_DESCRIPTOR d = from_2d(pAllocateArray->Width, pAllocateArray->Height, pAllocateArray->Format,
                                      pAllocateArray->NumChannels);
  return create(pHandle, &d, 1, HandleKind::kArray);
}

FAKE_API CUresult CUDAAPI cuArray3DCreate(CUarray* pHandle, const CUDA_ARRAY3D_DESCRIPTOR_v1* pAllocateArray) {
  if (pAllocateArray == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUDA_ARRAY3D_DESCRIPTOR d = from_2d(pAllocateArray->Width, pAllocateArray->Height, pAllocateArray->Format,
                                      pAllocateArray->NumChannels);
  d.Depth = pAllocateArray->Depth;
  d.Flags = pAllocateArray->Flags;
  return create(pHandle, &d, 1, HandleKind::kArray);
}

FAKE_API CUresult CUDAAPI cuMipmappedArrayCreate(CUmipmappedArray* pHandle,
                                                 const CUDA_ARRAY3D_DESCRIPTOR* pMipmappedArrayDesc,
                                                 unsigned int numMipmapLevels) {
  return create(pHandle, pMipmappedArrayDesc, numMipmapLevels, HandleKind::kMipmappedArray);
}

FAKE_API CUresult CUDAAPI cuArrayDestroy(CUarray hArray) { return destroy(hArray, HandleKind::kArray); }

FAKE_API CUresult CUDAAPI cuMipmappedArrayDestroy(CUmipmappedArray hMipmappedArray) {
  return destroy(hMipmappedArray, HandleKind::kMipmappedArray);
}

FAKE_API CUresult CUDAAPI cuArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS* memoryRequirements,
                                                       CUarray array, CUdevice device) {
  return requirements(memoryRequirements, array, HandleKind::kArray, device);
}

FAKE_API CUresult CUDAAPI cuMipmappedArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS* memoryRequirements,
                                                                CUmipmappedArray mipmap, CUdevice device) {
  return requirements(memoryRequirements, mipmap, HandleKind::kMipmappedArray, device);
}

FAKE_ALIAS(cuArrayCreate_v2)
FAKE_ALIAS(cuArray3DCreate_v2)
FAKE_ALIAS(cuArrayCreate)
FAKE_ALIAS(cuArray3DCreate)
FAKE_ALIAS(cuMipmappedArrayCreate)
FAKE_ALIAS(cuArrayDestroy)
FAKE_ALIAS(cuMipmappedArrayDestroy)
FAKE_ALIAS(cuArrayGetMemoryRequirements)
FAKE_ALIAS(cuMipmappedArrayGetMemoryRequirements)
