#include "bench_util.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace rkcuda {
namespace {

__device__ __forceinline__ uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__global__ void fill_kernel(void* p, int dtype, int64_t n, uint64_t seed, float mean, float sd) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t h = mix64(seed ^ mix64(static_cast<uint64_t>(i)));
    float acc = 0.0f;
    for (int k = 0; k < 4; ++k) acc += static_cast<float>((h >> (16 * k)) & 0xffff) * (1.0f / 65536.0f);
    const float x = mean + sd * (acc - 2.0f) * 1.7320508f;  // variance of the sum of 4 U(0,1) is 1/3
    if (dtype == kF32) {
      static_cast<float*>(p)[i] = x;
    } else {
      unsigned short bits;
      if (dtype == kBF16) {
        const unsigned u = __float_as_uint(x);
        bits = static_cast<unsigned short>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
      } else {
        bits = __half_as_ushort(__float2half_rn(x));
      }
      static_cast<unsigned short*>(p)[i] = bits;
    }
  }
}

__global__ void targets_kernel(int32_t* p, int64_t n, int64_t vocab, uint64_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = static_cast<int32_t>(mix64(seed ^ mix64(static_cast<uint64_t>(i) + 77)) % static_cast<uint64_t>(vocab));
}

__global__ void read_kernel(const uint4* __restrict__ p, int64_t nvec, unsigned* sink) {
  unsigned x = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  for (; i + 3 * stride < nvec; i += 4 * stride) {
    const uint4 a = __ldcs(p + i), b = __ldcs(p + i + stride), c = __ldcs(p + i + 2 * stride),
                d = __ldcs(p + i + 3 * stride);
    x ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < nvec; i += stride) {
    const uint4 a = __ldcs(p + i);
    x ^= a.x ^ a.y ^ a.z ^ a.w;
  }
  if (x == 0x9e3779b9u) *sink = x;  // practically never: keeps the loads alive
}

Result launch_status(const char* where) {
  const cudaError_t e = cudaGetLastError();
  Result r;
  if (e != cudaSuccess) {
    r.code = kCudaError;
    r.cuda_error = static_cast<int>(e);
    r.where = where;
  }
  return r;
}

unsigned grid_for(int64_t n, int threads) {
  int64_t g = (n + threads - 1) / threads;
  if (g > 65536) g = 65536;
  if (g < 1) g = 1;
  return static_cast<unsigned>(g);
}

}  // namespace

Result fill_random(void* p, int dtype, int64_t n, uint64_t seed, float mean, float stddev, void* stream) {
  if (n <= 0) return Result{};
  fill_kernel<<<grid_for(n, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(p, dtype, n, seed, mean, stddev);
  return launch_status("fill_kernel launch");
}

Result fill_targets(int32_t* p, int64_t n, int64_t vocab, uint64_t seed, void* stream) {
  if (n <= 0) return Result{};
  targets_kernel<<<grid_for(n, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(p, n, vocab, seed);
  return launch_status("targets_kernel launch");
}

Result read_pass(const void* p, int64_t bytes, unsigned* sink, void* stream) {
  const int64_t nvec = bytes / 16;
  int dev = 0, sms = 132;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  read_kernel<<<static_cast<unsigned>(sms * 8), 256, 0, static_cast<cudaStream_t>(stream)>>>(
      static_cast<const uint4*>(p), nvec, sink);
  return launch_status("read_kernel launch");
}

}  // namespace rkcuda
