// Kernel of intercept_drv, compiled on its own into a fatbin (nvcc -fatbin) that the host program
// embeds and loads with cuModuleLoadData.
extern "C" __global__ void bump(int* p) {
  if (threadIdx.x == 0) atomicAdd(p, 1);
}
