// Shared by rk_driver's CUDA subcommands (parity.cc: cuda-check, cuda_bench.cc: cuda-bench): the
// fatal CUDA-call check, the fatal rkcuda::Result check, the device probe, counter-based random
// numbers (reproducible, cheap to generate in parallel), half-precision encoders and device buffers
// that start poisoned with NaN. Only compiled with RK_WITH_CUDA; plain C++ on the CUDA runtime API.
#pragma once
#if defined(RK_WITH_CUDA)
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../../cuda/result.h"  // rkcuda::Result, format_error

// Exits the driver with the CUDA error name when a CUDA call fails.
#define CK(call)                                                                               \
  do {                                                                                         \
    const cudaError_t ck_e_ = (call);                                                          \
    if (ck_e_ != cudaSuccess) {                                                                \
      std::fprintf(stderr, "CUDA error at %s:%d: %s: %s (%s)\n", __FILE__, __LINE__, #call,    \
                   cudaGetErrorName(ck_e_), cudaGetErrorString(ck_e_));                        \
      std::exit(1);                                                                            \
    }                                                                                          \
  } while (0)

namespace rkdriver {

// Exits the driver when a kernel call that must succeed did not.
inline void die_on(const rkcuda::Result& r, const char* what) {
  if (r.ok()) return;
  char msg[512];
  std::fprintf(stderr, "%s failed: %s\n", what, rkcuda::format_error(r, msg, sizeof msg));
  std::exit(1);
}

// The number of CUDA devices; 0 (after the "no CUDA device" line scripts/gpu-check.sh and .ci/run
// look for) when there is none.
inline int device_or_explain() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    std::printf("no CUDA device (%s): nothing to check on this machine; the CUDA kernels are "
                "checked by scripts/gpu-check.sh on a GPU machine\n",
                e != cudaSuccess ? cudaGetErrorName(e) : "0 devices");
    cudaGetLastError();
    return 0;
  }
  cudaDeviceProp p;
  CK(cudaGetDeviceProperties(&p, 0));
  std::printf("device 0: %s, %d SMs, %.1f GiB, compute %d.%d\n", p.name, p.multiProcessorCount,
              p.totalGlobalMem / 1073741824.0, p.major, p.minor);
  return n;
}

namespace rng {
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
// Uniform in [0, 1) for element i of stream `seed`.
inline double unif(uint64_t seed, uint64_t i) { return (mix64(seed ^ mix64(i)) >> 11) * (1.0 / 9007199254740992.0); }
// Approximately normal(0, 1): the sum of four uniforms, rescaled (|x| < 3.47).
inline float normal(uint64_t seed, uint64_t i) {
  const uint64_t h = mix64(seed * 31 + mix64(i ^ 0x5555));
  float acc = 0.0f;
  for (int k = 0; k < 4; ++k) acc += static_cast<float>((h >> (16 * k)) & 0xffff) * (1.0f / 65536.0f);
  return (acc - 2.0f) * 1.7320508f;
}
// f32 -> bf16 bits, round to nearest even (NaN stays NaN).
inline uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
// f32 -> f16 bits, round to nearest even.
inline uint16_t to_f16(float f) {
  __half_raw r = __half(__float2half_rn(f));
  return r.x;
}
}  // namespace rng

// A device buffer of n T's, poisoned at construction (all-ones bytes: NaN as f32 and f64), so a
// kernel that skips an element cannot pass on a stale value.
template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  Dev() = default;
  explicit Dev(size_t count) : n(count) {
    if (n) CK(cudaMalloc(&p, n * sizeof(T)));
    poison();
  }
  explicit Dev(const std::vector<T>& h) : Dev(h.size()) { up(h.data()); }
  ~Dev() {
    if (p) cudaFree(p);
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  void poison() {
    if (n) CK(cudaMemset(p, 0xff, n * sizeof(T)));
  }
  void up(const T* h) {
    if (n) CK(cudaMemcpy(p, h, n * sizeof(T), cudaMemcpyHostToDevice));
  }
  void up(const std::vector<T>& h) { up(h.data()); }
  void down(T* h) const {
    if (n) CK(cudaMemcpy(h, p, n * sizeof(T), cudaMemcpyDeviceToHost));
  }
  std::vector<T> down() const {
    std::vector<T> h(n);
    if (n) CK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

}  // namespace rkdriver
#endif  // RK_WITH_CUDA
