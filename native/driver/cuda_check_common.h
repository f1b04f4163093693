// Shared by the CUDA parity checks (cuda_check*.cc): the fatal CUDA-call check, the fatal
// rkcuda::Result check, counter-based random numbers (reproducible, cheap to generate in
// parallel) and half-precision encoders. Only compiled with RK_WITH_CUDA.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../../cuda/logprobs.h"
#include "../../cuda/result.h"  // rkcuda::Result, format_error
#include "../kernels/threadpool.h"

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
namespace rng {

inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
// Uniform in [0, 1) for element i of stream `seed`.
inline double unif(uint64_t seed, uint64_t i) {
  return (mix64(seed ^ mix64(i)) >> 11) * (1.0 / 9007199254740992.0);
}
// Approximately normal(0, 1): the sum of four uniforms, rescaled.
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

// A device buffer of n T's; poison() fills it with all-ones bytes (NaN as f32) so a kernel that
// skips an element cannot pass on a zero.
template <class T>
struct DBuf {
  T* p = nullptr;
  size_t n = 0;
  explicit DBuf(size_t count) : n(count) {
    if (n) CK(cudaMalloc(&p, n * sizeof(T)));
  }
  ~DBuf() {
    if (p) cudaFree(p);
  }
  DBuf(const DBuf&) = delete;
  DBuf& operator=(const DBuf&) = delete;
  void poison() { CK(cudaMemset(p, 0xff, n * sizeof(T))); }  // all-ones: NaN as f32
  void up(const T* h) { CK(cudaMemcpy(p, h, n * sizeof(T), cudaMemcpyHostToDevice)); }
  void down(T* h) const { CK(cudaMemcpy(h, p, n * sizeof(T), cudaMemcpyDeviceToHost)); }
};

inline const char* dtype_name(int dt) { return dt == rkcuda::kBF16 ? "bf16" : dt == rkcuda::kF16 ? "f16" : "f32"; }

// Max over rows of |got - ref| / max(|ref|, floor), NaN/inf must match exactly. The absolute floor
// is atol_abs + atol_rel * (max finite |ref| of that row), divided by rtol.
struct Err {
  double worst = 0;
  bool ok = true;
};
inline Err compare(const float* got, const float* ref, int64_t rows, int64_t row, double rtol,
            double atol_abs, double atol_rel) {
  std::vector<double> worst(rows, 0.0);
  std::vector<char> bad(rows, 0);
  rk::parallel_for(rows, 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* g = got + r * row;
      const float* f = ref + r * row;
      double scale = 0;
      if (atol_rel > 0)
        for (int64_t j = 0; j < row; ++j)
          if (std::isfinite(f[j])) scale = std::max(scale, std::fabs(static_cast<double>(f[j])));
      const double floor = (atol_abs + atol_rel * scale) / rtol;
      double w = 0;
      for (int64_t j = 0; j < row; ++j) {
        const double x = g[j], y = f[j];
        if (std::isnan(y) || std::isinf(y)) {
          if (!(std::isnan(y) ? std::isnan(x) : x == y)) bad[r] = 1;
          continue;
        }
        if (!std::isfinite(x)) {
          bad[r] = 1;
          continue;
        }
        w = std::max(w, std::fabs(x - y) / std::max(std::fabs(y), std::max(floor, 1e-300)));
      }
      worst[r] = w;
    }
  });
  Err e;
  for (int64_t r = 0; r < rows; ++r) {
    e.worst = std::max(e.worst, worst[r]);
    if (bad[r]) e.ok = false;
  }
  if (!e.ok) e.worst = std::numeric_limits<double>::infinity();
  e.ok = e.ok && e.worst <= rtol;
  return e;
}
inline Err worse(Err a, const Err& b) {
  a.worst = std::max(a.worst, b.worst);
  a.ok = a.ok && b.ok;
  return a;
}

}  // namespace rkdriver
