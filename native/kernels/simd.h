// Width-generic SIMD vocabulary for the hot loops of every kernel family.
//
// A family writes its row loops once, in a <family>_simd.inl file, against the names below, and
// compiles that file three times: <family>_avx512.cc (#define RK_ISA_AVX512), <family>_avx2.cc
// (#define RK_ISA_AVX2) and <family>_scalar.cc (neither). Everything here has internal linkage, so
// code built with AVX-512 flags can never be picked by the linker for a baseline caller.
//
//   VF          one vector of kW floats
//   load(p)     kW floats;  load_bf16/load_f16(p): kW halves widened to f32
//   load_tail   the first n (< kW) elements, the rest filled with `fill`
//   stream(p)   non-temporal store of a full vector to a kW*4-byte aligned p; stream_fence() after
//   exp2v(t)    2^t, ~2e-7 relative; callers clamp t to >= -150 (then 2^t is exactly 0 below
//               2^-126 under FTZ, which parallel_for sets). vmax(lo, x) keeps a NaN x.
//   exp2v_sum(t)  2^t for the terms of a softmax sum (t <= 0): the same relative error, and
//               2^-inf = 0 without a clamp. AVX2: exp2v's bits, one instruction fewer. AVX-512:
//               two fewer, but for -1 < t < 0 it rounds 1 + t, an error of up to 2^-25 absolute,
//               where exp2v is nearly exact: not for ratios or differences near 1
//   load_bf16_split(p, a, b)  2 kW bf16 as two vectors in an order of their own (reductions)
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../core/dtype.h"  // rk::kF32 / kBF16 / kF16, the dtype codes used as template arguments below
#include "half.h"

#if defined(RK_ISA_AVX512) || defined(RK_ISA_AVX2)
#include <immintrin.h>
#endif

#if defined(RK_ISA_AVX512)
#define RK_ISA_NS avx512
#elif defined(RK_ISA_AVX2)
#define RK_ISA_NS avx2
#else
#define RK_ISA_NS scalar
#endif

#ifndef RK_PREFETCH_LOCALITY
#define RK_PREFETCH_LOCALITY 2
#endif

namespace rk {
namespace RK_ISA_NS {
namespace {

// 2^f on [-0.5, 0.5]: degree-5 relative minimax fit (max error 1.8e-7 evaluated in f32).
constexpr float kP1 = 0.6931470036506653f, kP2 = 0.24022242426872253f,
                kP3 = 0.05550733581185341f, kP4 = 0.009671499952673912f,
                kP5 = 0.0013264671433717012f;
// 2^f on [0, 1] (AVX-512 exp2v_sum): degree-5 relative minimax fit with p(0) = 1 and p(1) = 2
// exactly (max error 9.2e-8; 1.8e-7 evaluated in f32, as the fit above). Exact at both ends, its error
// is continuous where t crosses an integer, so nearly equal t keep nearly equal errors.
constexpr float kQ1 = 0.6931517124176025f, kQ2 = 0.240159273147583f, kQ3 = 0.05581867694854736f,
                kQ4 = 0.008990994654595852f, kQ5 = 0.001879318617284298f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kNegInf = -__builtin_inff();

#if defined(RK_ISA_AVX512)

constexpr int kW = 16;
struct VF {
  __m512 v;
};
inline VF set1(float x) { return {_mm512_set1_ps(x)}; }
inline VF load(const float* p) { return {_mm512_loadu_ps(p)}; }
inline VF load_bf16(const uint16_t* p) {
  __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))};
}
// 2 kW bf16 at p: the even-indexed elements in a, the odd ones in b (each 32-bit lane holds an
// (even, odd) pair: a shift and a mask widen both without a shuffle). Not in element order: for
// reductions that do not depend on it (max).
inline void load_bf16_split(const uint16_t* p, VF& a, VF& b) {
  const __m512i w = _mm512_loadu_si512(p);
  a = {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))};
  b = {_mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32(static_cast<int>(0xffff0000u))))};
}
inline VF load_f16(const uint16_t* p) {
  return {_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
}
inline void store(float* p, VF a) { _mm512_storeu_ps(p, a.v); }
// Non-temporal store (p 64-byte aligned): no read-for-ownership of the destination line.
inline void stream(float* p, VF a) { _mm512_stream_ps(p, a.v); }
inline void stream_fence() { _mm_sfence(); }
// kW floats as bf16 (half.h f32_to_bf16 in every lane: nearest even, NaN -> quiet NaN).
inline __m256i to_bf16(VF a) {
#if defined(RK_BF16_NATIVE)  // AVX512_BF16 (a separate translation unit, picked at run time): the same rounding
  return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(a.v));
#else
  // maskz forms: GCC 12's plain _mm512_srli_epi32 / _mm512_cvtepi32_epi16 warn (an undefined pass-through)
  const __mmask16 all = 0xffff;
  const __m512i u = _mm512_castps_si512(a.v);
  const __m512i hi = _mm512_maskz_srli_epi32(all, u, 16);
  const __m512i r = _mm512_maskz_srli_epi32(
      all, _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), _mm512_and_si512(hi, _mm512_set1_epi32(1))), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q);
  const __m512i q = _mm512_or_si512(hi, _mm512_set1_epi32(0x40));
  return _mm512_maskz_cvtepi32_epi16(all, _mm512_mask_blend_epi32(nan, r, q));
#endif
}
inline void store_bf16(uint16_t* p, VF a) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), to_bf16(a)); }
inline void stream_bf16(uint16_t* p, VF a) { _mm256_stream_si256(reinterpret_cast<__m256i*>(p), to_bf16(a)); }
inline VF operator+(VF a, VF b) { return {_mm512_add_ps(a.v, b.v)}; }
inline VF operator-(VF a, VF b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline VF operator*(VF a, VF b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline VF fma(VF a, VF b, VF c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }   // a*b + c
inline VF fms(VF a, VF b, VF c) { return {_mm512_fmsub_ps(a.v, b.v, c.v)}; }   // a*b - c
inline VF vmax(VF a, VF b) { return {_mm512_max_ps(a.v, b.v)}; }
inline VF vmin(VF a, VF b) { return {_mm512_min_ps(a.v, b.v)}; }
inline float hsum(VF a) { return _mm512_reduce_add_ps(a.v); }
inline float hmax(VF a) { return _mm512_reduce_max_ps(a.v); }
// 1 + f (c1 + f (c2 + f (c3 + f (c4 + f c5)))) in FMAs (Horner): 2^f for either fit above.
inline __m512 pow2_poly(__m512 f, float c1, float c2, float c3, float c4, float c5) {
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(c5), f, _mm512_set1_ps(c4));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c3));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c2));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c1));
  return _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
}
inline VF exp2v(VF t) {
  __m512 n = _mm512_roundscale_ps(t.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 f = _mm512_sub_ps(t.v, n);
  return {_mm512_scalef_ps(pow2_poly(f, kP1, kP2, kP3, kP4, kP5), n)};
}
// 2^t = 2^f 2^floor(t), f = t - floor(t) in [0, 1): one VREDUCEPS for f, the polynomial, and
// VSCALEFPS, which multiplies by 2 to the floor of its second operand (t itself). Two instructions
// fewer than exp2v's rounding, subtraction and its callers' clamp: t = -inf gives f = 0, 2^-inf = 0.
inline VF exp2v_sum(VF t) {
  __m512 f = _mm512_reduce_ps(t.v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  return {_mm512_scalef_ps(pow2_poly(f, kQ1, kQ2, kQ3, kQ4, kQ5), t.v)};
}

#elif defined(RK_ISA_AVX2)

constexpr int kW = 8;
struct VF {
  __m256 v;
};
inline VF set1(float x) { return {_mm256_set1_ps(x)}; }
inline VF load(const float* p) { return {_mm256_loadu_ps(p)}; }
inline VF load_bf16(const uint16_t* p) {
  __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return {_mm256_castsi256_ps(_mm256_slli_epi32(w, 16))};
}
inline void load_bf16_split(const uint16_t* p, VF& a, VF& b) {  // as the AVX-512 form
  const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  a = {_mm256_castsi256_ps(_mm256_slli_epi32(w, 16))};
  b = {_mm256_castsi256_ps(_mm256_and_si256(w, _mm256_set1_epi32(static_cast<int>(0xffff0000u))))};
}
inline VF load_f16(const uint16_t* p) {
  return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))};
}
inline void store(float* p, VF a) { _mm256_storeu_ps(p, a.v); }
inline void stream(float* p, VF a) { _mm256_stream_ps(p, a.v); }  // p 32-byte aligned
inline void stream_fence() { _mm_sfence(); }
// kW floats as bf16 (half.h f32_to_bf16 in every lane: nearest even, NaN -> quiet NaN).
inline __m128i to_bf16(VF a) {
  const __m256i u = _mm256_castps_si256(a.v);
  const __m256i r = _mm256_srli_epi32(
      _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)),
                       _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1))), 16);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q));
  const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  const __m256i w = _mm256_blendv_epi8(r, q, nan);  // 0 .. 0xffff per lane
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(w, w), 0x08);
  return _mm256_castsi256_si128(packed);
}
inline void store_bf16(uint16_t* p, VF a) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), to_bf16(a)); }
inline void stream_bf16(uint16_t* p, VF a) { _mm_stream_si128(reinterpret_cast<__m128i*>(p), to_bf16(a)); }
inline VF operator+(VF a, VF b) { return {_mm256_add_ps(a.v, b.v)}; }
inline VF operator-(VF a, VF b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline VF operator*(VF a, VF b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline VF fma(VF a, VF b, VF c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline VF fms(VF a, VF b, VF c) { return {_mm256_fmsub_ps(a.v, b.v, c.v)}; }
inline VF vmax(VF a, VF b) { return {_mm256_max_ps(a.v, b.v)}; }
inline VF vmin(VF a, VF b) { return {_mm256_min_ps(a.v, b.v)}; }
inline float hsum(VF a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hmax(VF a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
// 2^x for x in [-127, 127] (NaN stays NaN): 2^n from the exponent bits; n = -127 gives the bit
// pattern of +0, so 2^x is exactly 0 there.
inline VF exp2_in_range(__m256 x) {
  __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(kP5), f, _mm256_set1_ps(kP4));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kP3));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kP2));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kP1));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return {_mm256_mul_ps(p, _mm256_castsi256_ps(e))};
}
inline VF exp2v(VF t) {
  // operand order keeps NaN: min/max return their second operand when either is NaN
  return exp2_in_range(_mm256_max_ps(_mm256_set1_ps(-127.0f), _mm256_min_ps(_mm256_set1_ps(127.0f), t.v)));
}
// Without exp2v's upper clamp (a softmax term's t is <= 0): the same bits for every t <= 127.
inline VF exp2v_sum(VF t) { return exp2_in_range(_mm256_max_ps(_mm256_set1_ps(-127.0f), t.v)); }

#else  // scalar baseline: the same arithmetic one lane at a time

constexpr int kW = 1;
struct VF {
  float v;
};
inline VF set1(float x) { return {x}; }
inline VF load(const float* p) { return {*p}; }
inline VF load_bf16(const uint16_t* p) { return {bf16_to_f32(*p)}; }
inline void load_bf16_split(const uint16_t* p, VF& a, VF& b) {
  a = load_bf16(p);
  b = load_bf16(p + 1);
}
inline VF load_f16(const uint16_t* p) { return {f16_to_f32(*p)}; }
inline void store(float* p, VF a) { *p = a.v; }
inline void stream(float* p, VF a) { *p = a.v; }
inline void stream_fence() {}
inline void store_bf16(uint16_t* p, VF a) { *p = f32_to_bf16(a.v); }
inline void stream_bf16(uint16_t* p, VF a) { *p = f32_to_bf16(a.v); }
inline VF operator+(VF a, VF b) { return {a.v + b.v}; }
inline VF operator-(VF a, VF b) { return {a.v - b.v}; }
inline VF operator*(VF a, VF b) { return {a.v * b.v}; }
inline VF fma(VF a, VF b, VF c) { return {__builtin_fmaf(a.v, b.v, c.v)}; }
inline VF fms(VF a, VF b, VF c) { return {__builtin_fmaf(a.v, b.v, -c.v)}; }
// max/min that, like the SIMD instructions, return the second operand when either is NaN
inline VF vmax(VF a, VF b) { return {a.v > b.v ? a.v : b.v}; }
inline VF vmin(VF a, VF b) { return {a.v < b.v ? a.v : b.v}; }
inline float hsum(VF a) { return a.v; }
inline float hmax(VF a) { return a.v; }
inline VF exp2v(VF t) {
  float x = t.v > 127.0f ? 127.0f : (t.v < -127.0f ? -127.0f : t.v);
  if (x != x) return {x};
  float n = __builtin_nearbyintf(x);
  float f = x - n;
  float p = __builtin_fmaf(kP5, f, kP4);
  p = __builtin_fmaf(p, f, kP3);
  p = __builtin_fmaf(p, f, kP2);
  p = __builtin_fmaf(p, f, kP1);
  p = __builtin_fmaf(p, f, 1.0f);
  uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float s;
  std::memcpy(&s, &bits, 4);
  return {p * s};
}
inline VF exp2v_sum(VF t) { return exp2v(t); }  // exp2v clamps t >= -127 itself: 2^-inf = 0

#endif

// Loads kW logits of dtype DT starting at element i of `base`.
template <int DT>
inline VF load_dt(const void* base, int64_t i) {
  if constexpr (DT == kF32) return load(static_cast<const float*>(base) + i);
  else if constexpr (DT == kBF16) return load_bf16(static_cast<const uint16_t*>(base) + i);
  else return load_f16(static_cast<const uint16_t*>(base) + i);
}

// Loads n < kW elements (converted to f32) and fills the rest of the vector with `fill`. AVX-512:
// masked loads (the lanes past n are not read, so never fault), the same values as element by element.
template <int DT>
inline VF load_tail_dt(const void* base, int64_t i, int64_t n, float fill) {
#if defined(RK_ISA_AVX512)
  const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
  if constexpr (DT == kF32) {
    return {_mm512_mask_loadu_ps(_mm512_set1_ps(fill), m, static_cast<const float*>(base) + i)};
  } else {
    const __m256i w = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + i);
    const __m512 x = DT == kBF16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(w), 16))
                                 : _mm512_cvtph_ps(w);
    return {_mm512_mask_blend_ps(m, _mm512_set1_ps(fill), x)};
  }
#else
  float buf[kW];
  for (int k = 0; k < kW; ++k) buf[k] = fill;
  for (int64_t k = 0; k < n; ++k) {
    if constexpr (DT == kF32) buf[k] = static_cast<const float*>(base)[i + k];
    else if constexpr (DT == kBF16) buf[k] = bf16_to_f32(static_cast<const uint16_t*>(base)[i + k]);
    else buf[k] = f16_to_f32(static_cast<const uint16_t*>(base)[i + k]);
  }
  return load(buf);
#endif
}

// Hints the cache to fetch element i of a DT array into L2 (never faults, even past the end).
// L2 (locality 2, prefetcht1) measured best for the log-prob exp pass: ~32 ms vs ~36 ms at
// N=1024 V=151936 f32 on 2 Sapphire Rapids cores; prefetching into L1 evicted the working chunk.
template <int DT>
inline void prefetch_dt(const void* base, int64_t i) {
  __builtin_prefetch(static_cast<const char*>(base) + i * dtype_size(DT), 0, RK_PREFETCH_LOCALITY);
}

// Stores the first n < kW lanes of `a` (AVX-512: one masked store).
inline void store_tail(float* p, int64_t n, VF a) {
#if defined(RK_ISA_AVX512)
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), a.v);
#else
  float buf[kW];
  store(buf, a);
  for (int64_t k = 0; k < n; ++k) p[k] = buf[k];
#endif
}
inline void store_tail(uint16_t* p, int64_t n, VF a) {
#if defined(RK_ISA_AVX512)
  _mm256_mask_storeu_epi16(p, static_cast<__mmask16>((1u << n) - 1u), to_bf16(a));
#else
  uint16_t buf[kW];
  store_bf16(buf, a);
  for (int64_t k = 0; k < n; ++k) p[k] = buf[k];
#endif
}
// A full vector of outputs: f32, or bf16 (a uint16_t pointer); plain and non-temporal.
inline void store(uint16_t* p, VF a) { store_bf16(p, a); }
inline void stream(uint16_t* p, VF a) { stream_bf16(p, a); }
// Non-temporal (NT) or plain: the kernels write an output with streaming stores unless its lines
// are already in cache (an output written over the input just read).
template <bool NT, class OUT>
inline void put(OUT* p, VF a) {
  if constexpr (NT) stream(p, a);
  else store(p, a);
}
// The kernels' run-time nt flag as their NT template argument: calls f(std::bool_constant<nt>{}),
// whose decltype(...)::value is a constant.
template <class F>
inline void with_nt(bool nt, F&& f) {
  if (nt) f(std::true_type{});
  else f(std::false_type{});
}
// Two vectors (2 kW elements) at p (2 kW * sizeof element aligned for NT): with AVX512_BF16 one
// conversion of both (the same rounding) and one 64-byte store.
template <bool NT>
inline void put2(float* p, VF a, VF b) {
  put<NT>(p, a);
  put<NT>(p + kW, b);
}
template <bool NT>
inline void put2(uint16_t* p, VF a, VF b) {
#if defined(RK_ISA_AVX512) && defined(RK_BF16_NATIVE)
  const __m512i w = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b.v, a.v));
  if constexpr (NT) _mm512_stream_si512(reinterpret_cast<__m512i*>(p), w);
  else _mm512_storeu_si512(p, w);
#else
  put<NT>(p, a);
  put<NT>(p + kW, b);
#endif
}

}  // namespace
}  // namespace RK_ISA_NS
}  // namespace rk
