// The DRAKES row loops (drakes.h DrakesKernels): the Gumbel noise of native/core/drakes.h, the scores
// and their max, the exponentials and the generalised-KL passes, on eight double lanes. Compiled once
// per ISA (drakes_avx512.cc, drakes_avx2.cc, drakes_scalar.cc) with -ffp-contract=off
// (CMakeLists.txt): every lane does the core's IEEE-rounded +, -, *, / in the core's order and the
// integer steps are exact, so the noise and exp_rn are the core's to the bit, and every level gives
// the same bits.
#include <cstdint>

#include "../core/drakes.h"
#include "../core/dtype.h"
#include "half.h"
#include "drakes.h"

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

namespace rk {
namespace RK_ISA_NS {
namespace {

// ---- eight double lanes -----------------------------------------------------------------------------
// D8 is eight doubles and U8 eight uint64: one 512-bit register, two 256-bit ones, or eight scalars.
// Every level runs the same operations on the same lanes (lane l takes the elements k = l mod 8 of a
// row; a row's last k mod 8 elements go through a partial load whose other lanes are neutral), and
// the lanes are combined in one fixed order, so the passes give the same bits on every level.

#if defined(RK_ISA_AVX512)

struct D8 {
  __m512d v;
};
struct U8 {
  __m512i v;
};
inline D8 dset(double x) { return {_mm512_set1_pd(x)}; }
inline U8 uset(uint64_t x) { return {_mm512_set1_epi64(static_cast<long long>(x))}; }
inline D8 dload(const double* p) { return {_mm512_loadu_pd(p)}; }
inline void dstore(double* p, D8 a) { _mm512_storeu_pd(p, a.v); }
inline void fstore(float* p, D8 a) { _mm256_storeu_ps(p, _mm512_cvtpd_ps(a.v)); }  // nearest, as static_cast
inline D8 fload(const float* p) { return {_mm512_cvtps_pd(_mm256_loadu_ps(p))}; }
inline D8 operator+(D8 a, D8 b) { return {_mm512_add_pd(a.v, b.v)}; }
inline D8 operator-(D8 a, D8 b) { return {_mm512_sub_pd(a.v, b.v)}; }
inline D8 operator*(D8 a, D8 b) { return {_mm512_mul_pd(a.v, b.v)}; }
inline U8 operator+(U8 a, U8 b) { return {_mm512_add_epi64(a.v, b.v)}; }
inline U8 operator-(U8 a, U8 b) { return {_mm512_sub_epi64(a.v, b.v)}; }
template <int S>
inline U8 ushr(U8 a) { return {_mm512_srli_epi64(a.v, S)}; }
template <int S>
inline U8 ushl(U8 a) { return {_mm512_slli_epi64(a.v, S)}; }
inline U8 bits(D8 a) { return {_mm512_castpd_si512(a.v)}; }
inline D8 from_bits(U8 a) { return {_mm512_castsi512_pd(a.v)}; }
using M8 = __mmask8;
inline M8 gt(D8 a, D8 b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_GT_OQ); }
inline M8 lt(D8 a, D8 b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_LT_OQ); }
inline M8 isnan(D8 a) { return _mm512_cmp_pd_mask(a.v, a.v, _CMP_UNORD_Q); }
inline M8 m_or(M8 a, M8 b) { return static_cast<M8>(a | b); }
inline bool any(M8 a) { return a != 0; }
inline D8 sel(M8 m, D8 a, D8 b) { return {_mm512_mask_blend_pd(m, b.v, a.v)}; }  // m ? a : b
inline D8 operator/(D8 a, D8 b) { return {_mm512_div_pd(a.v, b.v)}; }
inline U8 operator^(U8 a, U8 b) { return {_mm512_xor_si512(a.v, b.v)}; }
inline U8 operator&(U8 a, U8 b) { return {_mm512_and_si512(a.v, b.v)}; }
inline U8 operator|(U8 a, U8 b) { return {_mm512_or_si512(a.v, b.v)}; }
inline U8 operator*(U8 a, U8 b) { return {_mm512_mullo_epi64(a.v, b.v)}; }  // the low 64 bits, as uint64_t *
inline D8 u53_to_f64(U8 a) { return {_mm512_cvtepu64_pd(a.v)}; }            // an integer below 2^53, exactly
inline U8 lane_index() { return {_mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0)}; }
// 8 logits of dtype DT at p, as doubles (exact).
template <int DT>
inline D8 zload(const void* p, int64_t k) {
  if constexpr (DT == kF32) return fload(static_cast<const float*>(p) + k);
  else if constexpr (DT == kBF16) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + k)));
    return {_mm512_cvtps_pd(_mm256_castsi256_ps(_mm256_slli_epi32(w, 16)))};
  } else {
    return {_mm512_cvtps_pd(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + k))))};
  }
}

#elif defined(RK_ISA_AVX2)

struct D8 {
  __m256d a, b;
};
struct U8 {
  __m256i a, b;
};
inline D8 dset(double x) { return {_mm256_set1_pd(x), _mm256_set1_pd(x)}; }
inline U8 uset(uint64_t x) { return {_mm256_set1_epi64x(static_cast<long long>(x)), _mm256_set1_epi64x(static_cast<long long>(x))}; }
inline D8 dload(const double* p) { return {_mm256_loadu_pd(p), _mm256_loadu_pd(p + 4)}; }
inline void dstore(double* p, D8 x) {
  _mm256_storeu_pd(p, x.a);
  _mm256_storeu_pd(p + 4, x.b);
}
inline void fstore(float* p, D8 x) {
  _mm_storeu_ps(p, _mm256_cvtpd_ps(x.a));
  _mm_storeu_ps(p + 4, _mm256_cvtpd_ps(x.b));
}
inline D8 fload(const float* p) { return {_mm256_cvtps_pd(_mm_loadu_ps(p)), _mm256_cvtps_pd(_mm_loadu_ps(p + 4))}; }
inline D8 operator+(D8 x, D8 y) { return {_mm256_add_pd(x.a, y.a), _mm256_add_pd(x.b, y.b)}; }
inline D8 operator-(D8 x, D8 y) { return {_mm256_sub_pd(x.a, y.a), _mm256_sub_pd(x.b, y.b)}; }
inline D8 operator*(D8 x, D8 y) { return {_mm256_mul_pd(x.a, y.a), _mm256_mul_pd(x.b, y.b)}; }
inline U8 operator+(U8 x, U8 y) { return {_mm256_add_epi64(x.a, y.a), _mm256_add_epi64(x.b, y.b)}; }
inline U8 operator-(U8 x, U8 y) { return {_mm256_sub_epi64(x.a, y.a), _mm256_sub_epi64(x.b, y.b)}; }
template <int S>
inline U8 ushr(U8 x) { return {_mm256_srli_epi64(x.a, S), _mm256_srli_epi64(x.b, S)}; }
template <int S>
inline U8 ushl(U8 x) { return {_mm256_slli_epi64(x.a, S), _mm256_slli_epi64(x.b, S)}; }
inline U8 bits(D8 x) { return {_mm256_castpd_si256(x.a), _mm256_castpd_si256(x.b)}; }
inline D8 from_bits(U8 x) { return {_mm256_castsi256_pd(x.a), _mm256_castsi256_pd(x.b)}; }
struct M8 {
  __m256d a, b;
};
inline M8 gt(D8 x, D8 y) { return {_mm256_cmp_pd(x.a, y.a, _CMP_GT_OQ), _mm256_cmp_pd(x.b, y.b, _CMP_GT_OQ)}; }
inline M8 lt(D8 x, D8 y) { return {_mm256_cmp_pd(x.a, y.a, _CMP_LT_OQ), _mm256_cmp_pd(x.b, y.b, _CMP_LT_OQ)}; }
inline M8 isnan(D8 x) { return {_mm256_cmp_pd(x.a, x.a, _CMP_UNORD_Q), _mm256_cmp_pd(x.b, x.b, _CMP_UNORD_Q)}; }
inline M8 m_or(M8 x, M8 y) { return {_mm256_or_pd(x.a, y.a), _mm256_or_pd(x.b, y.b)}; }
inline bool any(M8 x) { return _mm256_movemask_pd(_mm256_or_pd(x.a, x.b)) != 0; }
inline D8 sel(M8 m, D8 x, D8 y) { return {_mm256_blendv_pd(y.a, x.a, m.a), _mm256_blendv_pd(y.b, x.b, m.b)}; }
inline D8 operator/(D8 x, D8 y) { return {_mm256_div_pd(x.a, y.a), _mm256_div_pd(x.b, y.b)}; }
inline U8 operator^(U8 x, U8 y) { return {_mm256_xor_si256(x.a, y.a), _mm256_xor_si256(x.b, y.b)}; }
inline U8 operator&(U8 x, U8 y) { return {_mm256_and_si256(x.a, y.a), _mm256_and_si256(x.b, y.b)}; }
inline U8 operator|(U8 x, U8 y) { return {_mm256_or_si256(x.a, y.a), _mm256_or_si256(x.b, y.b)}; }
// The low 64 bits of x y from 32-bit products: lo(x) lo(y) + ((hi(x) lo(y) + lo(x) hi(y)) << 32).
inline __m256i mul64(__m256i x, __m256i y) {
  const __m256i ll = _mm256_mul_epu32(x, y);
  const __m256i hl = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), y);
  const __m256i lh = _mm256_mul_epu32(x, _mm256_srli_epi64(y, 32));
  return _mm256_add_epi64(ll, _mm256_slli_epi64(_mm256_add_epi64(hl, lh), 32));
}
inline U8 operator*(U8 x, U8 y) { return {mul64(x.a, y.a), mul64(x.b, y.b)}; }
// An integer below 2^53 as a double, exactly: each 32-bit half through 2^52's mantissa (x | 2^52's
// bits is 2^52 + x for x < 2^52), then hi 2^32 + lo, whose exact value is representable.
inline __m256d u53_to_f64(__m256i x) {
  const __m256i k52 = _mm256_set1_epi64x(0x4330000000000000LL);
  const __m256d two52 = _mm256_set1_pd(0x1p52);
  const __m256d lo = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(x, _mm256_set1_epi64x(0xffffffffLL)), k52)), two52);
  const __m256d hi = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(x, 32), k52)), two52);
  return _mm256_add_pd(_mm256_mul_pd(hi, _mm256_set1_pd(0x1p32)), lo);
}
inline D8 u53_to_f64(U8 x) { return {u53_to_f64(x.a), u53_to_f64(x.b)}; }
inline U8 lane_index() { return {_mm256_set_epi64x(3, 2, 1, 0), _mm256_set_epi64x(7, 6, 5, 4)}; }
template <int DT>
inline __m256d zload4(const void* p, int64_t k) {
  if constexpr (DT == kF32) return _mm256_cvtps_pd(_mm_loadu_ps(static_cast<const float*>(p) + k));
  else {
    const __m128i h = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + k));
    if constexpr (DT == kBF16) return _mm256_cvtps_pd(_mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(h), 16)));
    else return _mm256_cvtps_pd(_mm_cvtph_ps(h));
  }
}
template <int DT>
inline D8 zload(const void* p, int64_t k) { return {zload4<DT>(p, k), zload4<DT>(p, k + 4)}; }

#else

struct D8 {
  double v[8];
};
struct U8 {
  uint64_t v[8];
};
template <class F>
inline D8 dmap(F f) {
  D8 r;
  for (int l = 0; l < 8; ++l) r.v[l] = f(l);
  return r;
}
template <class F>
inline U8 umap(F f) {
  U8 r;
  for (int l = 0; l < 8; ++l) r.v[l] = f(l);
  return r;
}
inline D8 dset(double x) { return dmap([&](int) { return x; }); }
inline U8 uset(uint64_t x) { return umap([&](int) { return x; }); }
inline D8 dload(const double* p) { return dmap([&](int l) { return p[l]; }); }
inline void dstore(double* p, D8 a) {
  for (int l = 0; l < 8; ++l) p[l] = a.v[l];
}
inline void fstore(float* p, D8 a) {
  for (int l = 0; l < 8; ++l) p[l] = static_cast<float>(a.v[l]);
}
inline D8 fload(const float* p) { return dmap([&](int l) { return static_cast<double>(p[l]); }); }
inline D8 operator+(D8 a, D8 b) { return dmap([&](int l) { return a.v[l] + b.v[l]; }); }
inline D8 operator-(D8 a, D8 b) { return dmap([&](int l) { return a.v[l] - b.v[l]; }); }
inline D8 operator*(D8 a, D8 b) { return dmap([&](int l) { return a.v[l] * b.v[l]; }); }
inline U8 operator+(U8 a, U8 b) { return umap([&](int l) { return a.v[l] + b.v[l]; }); }
inline U8 operator-(U8 a, U8 b) { return umap([&](int l) { return a.v[l] - b.v[l]; }); }
template <int S>
inline U8 ushr(U8 a) { return umap([&](int l) { return a.v[l] >> S; }); }
template <int S>
inline U8 ushl(U8 a) { return umap([&](int l) { return a.v[l] << S; }); }
inline U8 bits(D8 a) { return umap([&](int l) { return core::dbits(a.v[l]); }); }
inline D8 from_bits(U8 a) { return dmap([&](int l) { return core::dfrombits(a.v[l]); }); }
using M8 = unsigned;
inline M8 gt(D8 a, D8 b) {
  M8 m = 0;
  for (int l = 0; l < 8; ++l) m |= (a.v[l] > b.v[l] ? 1u : 0u) << l;
  return m;
}
inline M8 lt(D8 a, D8 b) { return gt(b, a); }
inline M8 isnan(D8 a) {
  M8 m = 0;
  for (int l = 0; l < 8; ++l) m |= (a.v[l] != a.v[l] ? 1u : 0u) << l;
  return m;
}
inline M8 m_or(M8 a, M8 b) { return a | b; }
inline bool any(M8 a) { return a != 0; }
inline D8 sel(M8 m, D8 a, D8 b) { return dmap([&](int l) { return (m >> l) & 1u ? a.v[l] : b.v[l]; }); }
inline D8 operator/(D8 a, D8 b) { return dmap([&](int l) { return a.v[l] / b.v[l]; }); }
inline U8 operator^(U8 a, U8 b) { return umap([&](int l) { return a.v[l] ^ b.v[l]; }); }
inline U8 operator&(U8 a, U8 b) { return umap([&](int l) { return a.v[l] & b.v[l]; }); }
inline U8 operator|(U8 a, U8 b) { return umap([&](int l) { return a.v[l] | b.v[l]; }); }
inline U8 operator*(U8 a, U8 b) { return umap([&](int l) { return a.v[l] * b.v[l]; }); }
inline D8 u53_to_f64(U8 a) { return dmap([&](int l) { return static_cast<double>(a.v[l]); }); }
inline U8 lane_index() { return umap([](int l) { return static_cast<uint64_t>(l); }); }
template <int DT>
inline D8 zload(const void* p, int64_t k) {
  return dmap([&](int l) -> double {
    if constexpr (DT == kF32) return static_cast<const float*>(p)[k + l];
    else if constexpr (DT == kBF16) return bf16_to_f32(static_cast<const uint16_t*>(p)[k + l]);
    else return f16_to_f32(static_cast<const uint16_t*>(p)[k + l]);
  });
}

#endif

// The last n < 8 elements from k: lanes [0, n) loaded, the others `fill`.
template <int DT>
inline D8 zload_part(const void* p, int64_t k, int64_t n, double fill) {
  double b[8];
  for (int l = 0; l < 8; ++l) {
    if (l >= n) b[l] = fill;
    else if constexpr (DT == kF32) b[l] = static_cast<const float*>(p)[k + l];
    else if constexpr (DT == kBF16) b[l] = bf16_to_f32(static_cast<const uint16_t*>(p)[k + l]);
    else b[l] = f16_to_f32(static_cast<const uint16_t*>(p)[k + l]);
  }
  return dload(b);
}

// ---- the Gumbel noise ----------------------------------------------------------------------------

// core::splitmix64 in every lane.
inline U8 splitmix8(U8 z) {
  z = (z ^ ushr<30>(z)) * uset(0xbf58476d1ce4e5b9ULL);
  z = (z ^ ushr<27>(z)) * uset(0x94d049bb133111ebULL);
  return z ^ ushr<31>(z);
}
inline D8 neg(D8 x) { return from_bits(bits(x) ^ uset(0x8000000000000000ULL)); }

// core::log_rn in every lane (x a positive normal double), with its constants as it writes them.
inline D8 log8(D8 x) {
  const U8 b = bits(x);
  D8 e = u53_to_f64(ushr<52>(b) & uset(0x7ff)) - dset(1023.0);  // the exponent, exactly
  D8 m = from_bits((b & uset(0x000fffffffffffffULL)) | uset(0x3ff0000000000000ULL));  // [1, 2)
  const M8 big = gt(m, dset(1.4142135623730951));
  m = sel(big, m * dset(0.5), m);
  e = sel(big, e + dset(1.0), e);
  const D8 s = (m - dset(1.0)) / (m + dset(1.0));
  const D8 s2 = s * s, s4 = s2 * s2, s8 = s4 * s4;
  const D8 a = (dset(1.0) + s2 * dset(1.0 / 3.0)) + s4 * (dset(1.0 / 5.0) + s2 * dset(1.0 / 7.0));
  const D8 c = (dset(1.0 / 9.0) + s2 * dset(1.0 / 11.0)) + s4 * (dset(1.0 / 13.0) + s2 * dset(1.0 / 15.0));
  const D8 p = a + s8 * c;
  const D8 lnm = (dset(2.0) * s) * p;
  return e * dset(6.93147180369123816490e-01) + (e * dset(1.90821492927058770002e-10) + lnm);
}

void gumbel_noise(uint64_t row_key, int64_t c0, int64_t n, double* g) {
  // gumbel_bits_at(key, col) = splitmix64(key + (col + 1) G): lane l of a step takes column c0 + k + l.
  const uint64_t G = core::kGolden64;
  U8 x = uset(row_key + (static_cast<uint64_t>(c0) + 1) * G) + lane_index() * uset(G);
  const U8 step = uset(8 * G);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const D8 u = (u53_to_f64(ushr<11>(splitmix8(x))) + dset(0.5)) * dset(0x1p-53);  // core::uniform_open
    dstore(g + k, neg(log8(neg(log8(u)))));
    x = x + step;
  }
  for (; k < n; ++k) g[k] = core::gumbel_noise_at(row_key, static_cast<uint64_t>(c0 + k));
}

// ---- the row passes ------------------------------------------------------------------------------

// core::exp_rn in every lane (the same operations; a NaN lane returns its input).
inline D8 exp8(D8 x) {
  const M8 nan = isnan(x);
  D8 c = sel(lt(x, dset(-1000.0)), dset(-1000.0), x);
  c = sel(gt(c, dset(1000.0)), dset(1000.0), c);
  const D8 t = c * dset(1.4426950408889634) + dset(core::kExpShifter);
  const U8 k = bits(t) - uset(core::kExpShifterBits);  // two's complement, |k| <= 1443 (not NaN)
  const D8 kd = t - dset(core::kExpShifter);
  const D8 r = (c - kd * dset(6.93147180369123816490e-01)) - kd * dset(1.90821492927058770002e-10);
  const D8 r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
  const double* C = core::kExpC;
  const D8 u1 = (dset(C[4]) + r * dset(C[5])) + r2 * (dset(C[6]) + r * dset(C[7]));
  const D8 u2 = (dset(C[8]) + r * dset(C[9])) + r2 * (dset(C[10]) + r * dset(C[11]));
  const D8 u3 = dset(C[12]) + r * dset(C[13]);
  const D8 w = r2 * (dset(C[2]) + r * dset(C[3])) + (r4 * u1 + r8 * (u2 + r4 * u3));
  const D8 p = dset(C[0]) + (r + w);
  const U8 k1 = ushr<1>(k + uset(2048)) - uset(1024);  // floor(k / 2)
  const U8 k2 = k - k1;
  const D8 s1 = from_bits(ushl<52>(k1 + uset(1023))), s2 = from_bits(ushl<52>(k2 + uset(1023)));
  return sel(nan, x, (p * s1) * s2);
}

// Lanes combined in one fixed order: ((0 + 1) + (2 + 3)) + ((4 + 5) + (6 + 7)).
inline double hsum8(D8 a) {
  double b[8];
  dstore(b, a);
  return ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}

constexpr double kInf = __builtin_inf();

// The last n < 8 doubles from p into lanes [0, n), the others `fill`; and the store of those lanes.
inline D8 dload_part(const double* p, int64_t n, double fill) {
  double b[8];
  for (int l = 0; l < 8; ++l) b[l] = l < n ? p[l] : fill;
  return dload(b);
}
inline void dstore_part(double* p, int64_t n, D8 a) {
  double b[8];
  dstore(b, a);
  for (int64_t l = 0; l < n; ++l) p[l] = b[l];
}
inline void fstore_part(float* p, int64_t n, D8 a) {
  float b[8];
  fstore(b, a);
  for (int64_t l = 0; l < n; ++l) p[l] = b[l];
}
inline D8 fload_part(const float* p, int64_t n, float fill) {
  float b[8];
  for (int l = 0; l < 8; ++l) b[l] = l < n ? p[l] : fill;
  return fload(b);
}

// Gumbel scores of one chunk: t[k] = (z_k + t[k]) / tau (t holds the noise), the chunk's max over
// its non-NaN scores (-inf if none) and the first index holding it (-1 if none), and whether a score
// is NaN.
template <int DT>
void score_t(const void* z, int64_t n, double inv_tau, double* t, double* mc, int64_t* arg, bool* bad) {
  D8 m = dset(-kInf), idx = dset(-1.0), at = u53_to_f64(lane_index());
  const D8 it = dset(inv_tau);
  M8 nan = isnan(dset(0.0));
  int64_t k = 0;
  auto take = [&](D8 sc) {
    nan = m_or(nan, isnan(sc));
    const M8 g = gt(sc, m);
    m = sel(g, sc, m);
    idx = sel(g, at, idx);
    at = at + dset(8.0);
  };
  for (; k + 8 <= n; k += 8) {
    const D8 sc = (zload<DT>(z, k) + dload(t + k)) * it;  // core::gumbel_score
    dstore(t + k, sc);
    take(sc);
  }
  if (k < n) {
    const D8 sc = (zload_part<DT>(z, k, n - k, -kInf) + dload_part(t + k, n - k, 0.0)) * it;
    dstore_part(t + k, n - k, sc);
    take(sc);
  }
  double mv[8], iv[8];
  dstore(mv, m);
  dstore(iv, idx);
  double best = -kInf;
  int64_t bi = -1;
  for (int l = 0; l < 8; ++l) {
    const int64_t i = static_cast<int64_t>(iv[l]);
    if (mv[l] > best || (mv[l] == best && best > -kInf && i < bi)) best = mv[l], bi = i;
  }
  *mc = best;
  *arg = bi;
  *bad = any(nan);
}

// e[k] = f32(e^(t[k] - mc)) (0 for a chunk whose max is -inf), with sc = sum e and, with g, dc = sum e g
// (doubles, over the f32 values).
void exp_chunk(const double* t, int64_t n, double mc, float* e, const float* g, double* sc, double* dc) {
  if (!(mc > -kInf)) {
    for (int64_t k = 0; k < n; ++k) e[k] = 0.0f;
    *sc = 0.0;
    *dc = 0.0;
    return;
  }
  const D8 vm = dset(mc);
  D8 S = dset(0.0), G = dset(0.0);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    fstore(e + k, exp8(dload(t + k) - vm));
    const D8 x = fload(e + k);  // the f32 value, as the sums take it
    S = S + x;
    if (g) G = G + x * fload(g + k);
  }
  if (k < n) {
    fstore_part(e + k, n - k, exp8(dload_part(t + k, n - k, -kInf) - vm));
    const D8 x = fload_part(e + k, n - k, 0.0f);
    S = S + x;
    if (g) G = G + x * fload_part(g + k, n - k, 0.0f);
  }
  *sc = hsum8(S);
  *dc = g ? hsum8(G) : 0.0;
}

// Both rows' statistics: out = {max z, sum ez, max zo, sum eo} with ez = exp_rn(z - max z) and
// eo = exp_rn(zo - max zo) stored per element (e^-inf = 0), and whether either row holds a NaN or
// +inf (then, or when a row is all -inf, nothing is stored and the sums are 0). Two passes: the
// maxima, then the exponentials, none of which waits on another.
template <int DT>
void stats2_t(const void* z, const void* zo, int64_t n, double* ez, double* eo, double* out, bool* bad) {
  const D8 big = dset(1.7976931348623157e308), ninf = dset(-kInf);
  D8 mz = ninf, mo = ninf;
  M8 b = isnan(dset(0.0));
  auto mx = [&](D8 x, D8 xo) {
    b = m_or(b, m_or(m_or(isnan(x), isnan(xo)), m_or(gt(x, big), gt(xo, big))));
    mz = sel(gt(x, mz), x, mz);
    mo = sel(gt(xo, mo), xo, mo);
  };
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) mx(zload<DT>(z, k), zload<DT>(zo, k));
  if (k < n) mx(zload_part<DT>(z, k, n - k, -kInf), zload_part<DT>(zo, k, n - k, -kInf));
  *bad = any(b);
  double mv[8], ov[8];
  dstore(mv, mz);
  dstore(ov, mo);
  double m = -kInf, mzo = -kInf;
  for (int l = 0; l < 8; ++l) {
    m = mv[l] > m ? mv[l] : m;
    mzo = ov[l] > mzo ? ov[l] : mzo;
  }
  out[0] = m, out[2] = mzo;
  out[1] = out[3] = 0.0;
  if (*bad || !(m > -kInf) || !(mzo > -kInf)) return;  // no distribution: the caller gives NaN
  const D8 vm = dset(m), vo = dset(mzo);
  D8 sz = dset(0.0), so = sz;
  for (k = 0; k + 8 <= n; k += 8) {
    const D8 e = exp8(zload<DT>(z, k) - vm), eo8 = exp8(zload<DT>(zo, k) - vo);
    if (ez) {
      dstore(ez + k, e);
      dstore(eo + k, eo8);
    }
    sz = sz + e;
    so = so + eo8;
  }
  if (k < n) {
    const D8 e = exp8(zload_part<DT>(z, k, n - k, -kInf) - vm), eo8 = exp8(zload_part<DT>(zo, k, n - k, -kInf) - vo);
    if (ez) {
      dstore_part(ez + k, n - k, e);
      dstore_part(eo + k, n - k, eo8);
    }
    sz = sz + e;
    so = so + eo8;
  }
  out[1] = hsum8(sz);
  out[3] = hsum8(so);
}

// A run of 8 (or the last len < 8) of a row's exponentials e^(z - m): stored by stats2_t, or (e null:
// rows too long to keep them) made again, the same operation on the same values, so the same bits.
template <int DT>
inline D8 row_exp(const double* e, const void* z, D8 vm, int64_t k, int64_t len) {
  if (e) return len == 8 ? dload(e + k) : dload_part(e + k, len, 0.0);
  return exp8((len == 8 ? zload<DT>(z, k) : zload_part<DT>(z, k, len, -kInf)) - vm);
}

// With p = ez / sz (as ez * (1 / sz)), lp = z - lse, lq = zo - lseo: K = sum_j core::gkl_term(p, lp, lq).
template <int DT>
double gkl_sum_t(const void* z, const void* zo, const double* ez, int64_t n, double lse, double lseo, double inv_sz,
                 double mz) {
  const D8 a = dset(lse), ao = dset(lseo), zero = dset(0.0), is = dset(inv_sz), vm = dset(mz);
  D8 K = zero;
  auto take = [&](int64_t k, int64_t len) {
    const bool full = len == 8;
    const D8 x = full ? zload<DT>(z, k) : zload_part<DT>(z, k, len, -kInf);
    const D8 xo = full ? zload<DT>(zo, k) : zload_part<DT>(zo, k, len, -kInf);
    const D8 lp = x - a, lq = xo - ao, p = row_exp<DT>(ez, z, vm, k, len) * is;
    K = K + sel(gt(p, zero), p * (lp - lq), zero);
  };
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) take(k, 8);
  if (k < n) take(k, n - k);
  return hsum8(K);
}

// g = core::gkl_grad_new(c, p, lp, lq, K), go = core::gkl_grad_old(c, p, q), p = ez / sz, q = eo / so
// (either output may be null).
template <int DT>
void gkl_grads_t(const void* z, const void* zo, const double* ez, const double* eo, int64_t n, double lse, double lseo,
                 double inv_sz, double inv_so, double mz, double mo, double K, double c, float* g, float* go) {
  const D8 a = dset(lse), ao = dset(lseo), zero = dset(0.0), vK = dset(K), vc = dset(c), is = dset(inv_sz),
           io = dset(inv_so), vmz = dset(mz), vmo = dset(mo);
  auto one = [&](int64_t k, int64_t len, D8& gn, D8& gd) {
    const bool full = len == 8;
    const D8 p = row_exp<DT>(ez, z, vmz, k, len) * is;
    if (g) {
      const D8 x = full ? zload<DT>(z, k) : zload_part<DT>(z, k, len, -kInf);
      const D8 xo = full ? zload<DT>(zo, k) : zload_part<DT>(zo, k, len, -kInf);
      gn = sel(gt(p, zero), (vc * p) * (((x - a) - (xo - ao)) - vK), zero);
    }
    if (go) gd = vc * (row_exp<DT>(eo, zo, vmo, k, len) * io - p);
  };
  int64_t k = 0;
  D8 gn = zero, gd = zero;
  for (; k + 8 <= n; k += 8) {
    one(k, 8, gn, gd);
    if (g) fstore(g + k, gn);
    if (go) fstore(go + k, gd);
  }
  if (k < n) {
    one(k, n - k, gn, gd);
    if (g) fstore_part(g + k, n - k, gn);
    if (go) fstore_part(go + k, n - k, gd);
  }
}

void exp_n(const double* x, int64_t n, double* y) {
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) dstore(y + k, exp8(dload(x + k)));
  if (k < n) dstore_part(y + k, n - k, exp8(dload_part(x + k, n - k, 0.0)));
}

template <template <int> class F, class... Args>
auto by_dtype(int dtype, Args... args) {
  switch (dtype) {
    case kBF16: return F<kBF16>::run(args...);
    case kF16: return F<kF16>::run(args...);
    default: return F<kF32>::run(args...);
  }
}
template <int DT>
struct Score {
  static void run(const void* z, int64_t n, double inv_tau, double* t, double* mc, int64_t* arg, bool* bad) {
    score_t<DT>(z, n, inv_tau, t, mc, arg, bad);
  }
};
template <int DT>
struct Stats2 {
  static void run(const void* z, const void* zo, int64_t n, double* ez, double* eo, double* out, bool* bad) {
    stats2_t<DT>(z, zo, n, ez, eo, out, bad);
  }
};
template <int DT>
struct GklSum {
  static double run(const void* z, const void* zo, const double* ez, int64_t n, double lse, double lseo, double inv_sz,
                    double mz) {
    return gkl_sum_t<DT>(z, zo, ez, n, lse, lseo, inv_sz, mz);
  }
};
template <int DT>
struct GklGrads {
  static void run(const void* z, const void* zo, const double* ez, const double* eo, int64_t n, double lse, double lseo,
                  double inv_sz, double inv_so, double mz, double mo, double K, double c, float* g, float* go) {
    gkl_grads_t<DT>(z, zo, ez, eo, n, lse, lseo, inv_sz, inv_so, mz, mo, K, c, g, go);
  }
};

void score(const void* z, int dtype, int64_t n, double inv_tau, double* t, double* mc, int64_t* arg, bool* bad) {
  by_dtype<Score>(dtype, z, n, inv_tau, t, mc, arg, bad);
}
void stats2(const void* z, const void* zo, int dtype, int64_t n, double* ez, double* eo, double* out, bool* bad) {
  by_dtype<Stats2>(dtype, z, zo, n, ez, eo, out, bad);
}
double gkl_sum(const void* z, const void* zo, const double* ez, int dtype, int64_t n, double lse, double lseo,
               double inv_sz, double mz) {
  return by_dtype<GklSum>(dtype, z, zo, ez, n, lse, lseo, inv_sz, mz);
}
void gkl_grads(const void* z, const void* zo, const double* ez, const double* eo, int dtype, int64_t n, double lse,
               double lseo, double inv_sz, double inv_so, double mz, double mo, double K, double c, float* g,
               float* go) {
  by_dtype<GklGrads>(dtype, z, zo, ez, eo, n, lse, lseo, inv_sz, inv_so, mz, mo, K, c, g, go);
}

}  // namespace
}  // namespace RK_ISA_NS

namespace detail {
#define RK_CAT2(a, b) a##b
#define RK_CAT(a, b) RK_CAT2(a, b)
const DrakesKernels& RK_CAT(drakes_kernels_, RK_ISA_NS)() {
  static const DrakesKernels k{&RK_ISA_NS::gumbel_noise, &RK_ISA_NS::score,   &RK_ISA_NS::exp_chunk,
                               &RK_ISA_NS::stats2,         &RK_ISA_NS::gkl_sum, &RK_ISA_NS::gkl_grads,
                               &RK_ISA_NS::exp_n};
  return k;
}
#undef RK_CAT
#undef RK_CAT2
}  // namespace detail
}  // namespace rk
