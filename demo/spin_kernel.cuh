// The spin kernel of the GPU clients (demo/workload.cu, bench/latency_client.cu,
// tests/gpu/two_gpu_spin.cu): one launch occupies the GPU for `ns` nanoseconds of %globaltimer
// (PTX ISA, "Special registers: %globaltimer"), whatever the GPU's clock, so a kernel count is a
// measure of GPU time. `sink` is never written in practice; it keeps the loop from being optimised out.
#pragma once

__device__ __forceinline__ unsigned long long gtime() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void spin(unsigned long long ns, unsigned long long* sink) {
  unsigned long long t0 = gtime();
  unsigned long long n = 0;
  while (gtime() - t0 < ns) ++n;
  if (threadIdx.x == 0 && n == 0xFFFFFFFFFFFFFFFFull) *sink = n;  // keep the loop
}
