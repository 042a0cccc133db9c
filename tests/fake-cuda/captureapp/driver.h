// The driver entry points fake-capture-app uses, reached the way the CUDA runtime reaches them.
#pragma once

#include <cuda.h>  // no __CUDA_API_VERSION_INTERNAL: names map to the CUDA 13 variants

namespace capapp {

/// Function pointers from cuGetProcAddress at CUDA_VERSION, typed as cuda.h's current variants
/// (StreamBeginCapture is cuStreamBeginCapture_v2, with a mode).
struct CaptureApi {
#define CAPAPP_FN(name) decltype(&::cu##name) name = nullptr;
#include "driver_fns.def"
#undef CAPAPP_FN
};

/// dlopen("libcuda.so.1"), dlsym "cuGetProcAddress_v2", ask it for "cuGetProcAddress" and use that
/// for every other look-up, as the CUDA runtime does. Exits 1 with a message on failure.
CaptureApi load_driver();

/// Returns unless r is CUDA_SUCCESS; otherwise prints "fake-capture-app: <fn> failed: <error name>
/// (<code>)" to stderr and exits 1 at once (other threads may be inside the driver). Thread-safe.
void check(const CaptureApi& api, CUresult r, const char* fn);

/// "CUDA_ERROR_..." through cuGetErrorName; "CUresult <n>" if unknown. Thread-safe.
const char* error_name(const CaptureApi& api, CUresult r);

}  // namespace capapp
