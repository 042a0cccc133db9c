// Interception check, driver API only (links libcuda, no runtime): loads its own kernel from an
// embedded fatbin with cuModuleLoadData, then launches it
//   K0 times with cuLaunchKernel, K1 times with cuLaunchKernelEx, and a one-node CUDA graph K2 times
// (the graph is built with cuGraphAddKernelNode, not captured, so building it launches nothing).
// Prints {"expected_launches": K0+K1+K2, "k0":..., "k1":..., "k2":...}.
//   intercept_drv [--k0 300] [--k1 400] [--k2 200]
#include <cuda.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

// The fatbin built from drv_kernel.cu (nvcc -fatbin), embedded at build time; FATBIN_PATH is its path.
#ifndef FATBIN_PATH
#error "build with -DFATBIN_PATH=\"/path/to/drv_kernel.fatbin\""
#endif
asm(".section .rodata\n.balign 16\n.globl drv_kernel_fatbin\ndrv_kernel_fatbin:\n.incbin \"" FATBIN_PATH
    "\"\n.byte 0\n.previous\n");
extern "C" const unsigned char drv_kernel_fatbin[];

#define CK(x)                                                                    \
  do {                                                                           \
    CUresult r_ = (x);                                                           \
    if (r_ != CUDA_SUCCESS) {                                                    \
      const char* s_ = nullptr;                                                  \
      cuGetErrorString(r_, &s_);                                                 \
      std::fprintf(stderr, "intercept_drv: %s: %d %s\n", #x, (int)r_, s_ ? s_ : ""); \
      std::exit(1);                                                              \
    }                                                                            \
  } while (0)

int main(int argc, char** argv) {
  int k0 = 300, k1 = 400, k2 = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--k0")) k0 = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--k1")) k1 = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--k2")) k2 = std::atoi(argv[i + 1]);
  }
  CK(cuInit(0));
  CUdevice dev;
  CK(cuDeviceGet(&dev, 0));
  CUcontext ctx;
  CK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CK(cuCtxSetCurrent(ctx));
  CUmodule mod;
  CK(cuModuleLoadData(&mod, drv_kernel_fatbin));
  CUfunction fn;
  CK(cuModuleGetFunction(&fn, mod, "bump"));
  CUstream s;
  CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CUdeviceptr counter;
  CK(cuMemAlloc(&counter, sizeof(int)));
  int zero = 0;
  CK(cuMemcpyHtoD(counter, &zero, sizeof(int)));
  void* params[] = {&counter};

  for (int i = 0; i < k0; ++i) CK(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, s, params, nullptr));

  CUlaunchConfig cfg;
  std::memset(&cfg, 0, sizeof(cfg));
  cfg.gridDimX = cfg.gridDimY = cfg.gridDimZ = 1;
  cfg.blockDimX = 32;
  cfg.blockDimY = cfg.blockDimZ = 1;
  cfg.hStream = s;
  for (int i = 0; i < k1; ++i) CK(cuLaunchKernelEx(&cfg, fn, params, nullptr));

  CUgraph g;
  CK(cuGraphCreate(&g, 0));
  CUDA_KERNEL_NODE_PARAMS kp;
  std::memset(&kp, 0, sizeof(kp));
  kp.func = fn;
  kp.gridDimX = kp.gridDimY = kp.gridDimZ = 1;
  kp.blockDimX = 32;
  kp.blockDimY = kp.blockDimZ = 1;
  kp.kernelParams = params;
  CUgraphNode node;
  CK(cuGraphAddKernelNode(&node, g, nullptr, 0, &kp));
  CUgraphExec ge;
  CK(cuGraphInstantiate(&ge, g, 0));
  for (int i = 0; i < k2; ++i) CK(cuGraphLaunch(ge, s));
  CK(cuStreamSynchronize(s));

  int got = 0;
  CK(cuMemcpyDtoH(&got, counter, sizeof(int)));
  std::printf("{\"program\": \"intercept_drv\", \"expected_launches\": %d, \"k0_cuLaunchKernel\": %d, "
              "\"k1_cuLaunchKernelEx\": %d, \"k2_cuGraphLaunch\": %d, \"kernels_ran\": %d}\n",
              k0 + k1 + k2, k0, k1, k2, got);
  CK(cuGraphExecDestroy(ge));
  CK(cuGraphDestroy(g));
  CK(cuMemFree(counter));
  CK(cuStreamDestroy(s));
  CK(cuModuleUnload(mod));
  CK(cuDevicePrimaryCtxRelease(dev));
  return got == k0 + k1 + k2 ? 0 : 1;
}
