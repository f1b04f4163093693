// Device-side pieces shared by the row kernels (cuda/logprobs.cu, cuda/divergence.cu): the block
// shape, exp2 with the CPU kernels' flush-to-zero behaviour, and typed 16-byte loads of f32 / bf16 /
// f16 rows. Internal linkage: each .cu gets its own copy.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "../native/core/dtype.h"  // rk::kF32 / kBF16 / kF16
#include "../native/core/logits.h"  // the row finishes, shared with the C++ kernels
#include "logprobs.h"                 // rkcuda::kF32 ... (aliases)

namespace rkcuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;
using rk::core::kLn2d;  // native/core/logits.h
using rk::core::kLog2ed;

__device__ __forceinline__ float ex2(float x) {
#if defined(RK_CUDA_EMULATION)  // host emulation (cuda/emu): same flush-to-zero behaviour
  const float y = std::exp2(x);
  return std::fpclassify(y) == FP_SUBNORMAL ? 0.0f : y;
#else
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#endif
}
// 2^d for a rescale factor: exactly 1 when nothing moves.
__device__ __forceinline__ float ex2_scale(float d) { return d == 0.0f ? 1.0f : ex2(d); }

template <int DT>
struct Elem;
template <>
struct Elem<kF32> {
  static constexpr int kSize = 4, kVec = 4;
  static __device__ __forceinline__ float load(const char* p, int64_t i) {
    return reinterpret_cast<const float*>(p)[i];
  }
  static __device__ __forceinline__ void unpack(const uint4& v, float* f) {
    f[0] = __uint_as_float(v.x);
    f[1] = __uint_as_float(v.y);
    f[2] = __uint_as_float(v.z);
    f[3] = __uint_as_float(v.w);
  }
};
template <>
struct Elem<kBF16> {
  static constexpr int kSize = 2, kVec = 8;
  static __device__ __forceinline__ float load(const char* p, int64_t i) {
    return __uint_as_float(static_cast<unsigned>(reinterpret_cast<const unsigned short*>(p)[i]) << 16);
  }
  static __device__ __forceinline__ void pair(unsigned w, float* f) {
    f[0] = __uint_as_float(w << 16);
    f[1] = __uint_as_float(w & 0xffff0000u);
  }
  static __device__ __forceinline__ void unpack(const uint4& v, float* f) {
    pair(v.x, f);
    pair(v.y, f + 2);
    pair(v.z, f + 4);
    pair(v.w, f + 6);
  }
};
template <>
struct Elem<kF16> {
  static constexpr int kSize = 2, kVec = 8;
  static __device__ __forceinline__ float load(const char* p, int64_t i) {
    return __half2float(__ushort_as_half(reinterpret_cast<const unsigned short*>(p)[i]));
  }
  static __device__ __forceinline__ void pair(unsigned w, float* f) {
    __half2 h;
    static_assert(sizeof(h) == 4, "half2");
    memcpy(&h, &w, 4);
    const float2 x = __half22float2(h);
    f[0] = x.x;
    f[1] = x.y;
  }
  static __device__ __forceinline__ void unpack(const uint4& v, float* f) {
    pair(v.x, f);
    pair(v.y, f + 2);
    pair(v.z, f + 4);
    pair(v.w, f + 6);
  }
};

// Elements before the first 16-byte boundary at or after p (p element-aligned), at most n.
template <int ES>
__device__ __forceinline__ int64_t head_elems(const void* p, int64_t n) {
  const int64_t h = static_cast<int64_t>(((16u - (reinterpret_cast<uintptr_t>(p) & 15u)) & 15u) / ES);
  return h < n ? h : n;
}

}  // namespace
}  // namespace rkcuda
