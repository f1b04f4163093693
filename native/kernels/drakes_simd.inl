// The Gumbel noise of native/core/drakes.h (gumbel_noise_at) for a run of columns, several columns
// per instruction. Compiled once per ISA (drakes_avx512.cc, drakes_avx2.cc, drakes_scalar.cc) with
// -ffp-contract=off (CMakeLists.txt): every lane does the core's IEEE-rounded +, -, *, / in the
// core's order, and the integer steps are exact, so each value is the core's to the bit.
#include <cstdint>

#include "../core/drakes.h"
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

using core::kGolden64;
constexpr uint64_t kMix1 = 0xbf58476d1ce4e5b9ULL, kMix2 = 0x94d049bb133111ebULL;
constexpr double kSqrt2 = 1.4142135623730951;
// core::log_rn's constants, as it writes them.
constexpr double kC3 = 1.0 / 3.0, kC5 = 1.0 / 5.0, kC7 = 1.0 / 7.0, kC9 = 1.0 / 9.0, kC11 = 1.0 / 11.0,
                 kC13 = 1.0 / 13.0, kC15 = 1.0 / 15.0;
constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;

#if defined(RK_ISA_AVX512)

constexpr int kLanes = 8;
using VU = __m512i;
using VD = __m512d;
inline VU u64(uint64_t x) { return _mm512_set1_epi64(static_cast<long long>(x)); }
inline VD f64(double x) { return _mm512_set1_pd(x); }
inline VU lane_index() { return _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0); }
inline VU add64(VU a, VU b) { return _mm512_add_epi64(a, b); }
inline VU mul64(VU a, VU b) { return _mm512_mullo_epi64(a, b); }  // the low 64 bits, as uint64_t *
inline VU xor64(VU a, VU b) { return _mm512_xor_si512(a, b); }
inline VU and64(VU a, VU b) { return _mm512_and_si512(a, b); }
inline VU or64(VU a, VU b) { return _mm512_or_si512(a, b); }
template <int S>
inline VU shr64(VU a) { return _mm512_srli_epi64(a, S); }
inline VD add(VD a, VD b) { return _mm512_add_pd(a, b); }
inline VD sub(VD a, VD b) { return _mm512_sub_pd(a, b); }
inline VD mul(VD a, VD b) { return _mm512_mul_pd(a, b); }
inline VD div(VD a, VD b) { return _mm512_div_pd(a, b); }
inline VD as_f64(VU a) { return _mm512_castsi512_pd(a); }
inline VU as_u64(VD a) { return _mm512_castpd_si512(a); }
// An integer below 2^53 as a double (exact).
inline VD u53_to_f64(VU a) { return _mm512_cvtepu64_pd(a); }
// a > b (ordered) ? x : y
inline VD select_gt(VD a, VD b, VD x, VD y) { return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(a, b, _CMP_GT_OQ), y, x); }
inline void store(double* p, VD a) { _mm512_storeu_pd(p, a); }

#elif defined(RK_ISA_AVX2)

constexpr int kLanes = 4;
using VU = __m256i;
using VD = __m256d;
inline VU u64(uint64_t x) { return _mm256_set1_epi64x(static_cast<long long>(x)); }
inline VD f64(double x) { return _mm256_set1_pd(x); }
inline VU lane_index() { return _mm256_set_epi64x(3, 2, 1, 0); }
inline VU add64(VU a, VU b) { return _mm256_add_epi64(a, b); }
// The low 64 bits of a * b from 32-bit products: lo(a) lo(b) + ((hi(a) lo(b) + lo(a) hi(b)) << 32).
inline VU mul64(VU a, VU b) {
  const VU ll = _mm256_mul_epu32(a, b);
  const VU hl = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), b);
  const VU lh = _mm256_mul_epu32(a, _mm256_srli_epi64(b, 32));
  return _mm256_add_epi64(ll, _mm256_slli_epi64(_mm256_add_epi64(hl, lh), 32));
}
inline VU xor64(VU a, VU b) { return _mm256_xor_si256(a, b); }
inline VU and64(VU a, VU b) { return _mm256_and_si256(a, b); }
inline VU or64(VU a, VU b) { return _mm256_or_si256(a, b); }
template <int S>
inline VU shr64(VU a) { return _mm256_srli_epi64(a, S); }
inline VD add(VD a, VD b) { return _mm256_add_pd(a, b); }
inline VD sub(VD a, VD b) { return _mm256_sub_pd(a, b); }
inline VD mul(VD a, VD b) { return _mm256_mul_pd(a, b); }
inline VD div(VD a, VD b) { return _mm256_div_pd(a, b); }
inline VD as_f64(VU a) { return _mm256_castsi256_pd(a); }
inline VU as_u64(VD a) { return _mm256_castpd_si256(a); }
// An integer below 2^53 as a double, exactly: each 32-bit half through 2^52's mantissa (x | 2^52's
// bits is 2^52 + x for x < 2^52), then hi 2^32 + lo, whose exact value is representable.
inline VD u53_to_f64(VU a) {
  const VU k52 = u64(0x4330000000000000ULL);
  const VD two52 = f64(0x1p52);
  const VD lo = _mm256_sub_pd(as_f64(or64(and64(a, u64(0xffffffffULL)), k52)), two52);
  const VD hi = _mm256_sub_pd(as_f64(or64(shr64<32>(a), k52)), two52);
  return _mm256_add_pd(_mm256_mul_pd(hi, f64(0x1p32)), lo);
}
inline VD select_gt(VD a, VD b, VD x, VD y) { return _mm256_blendv_pd(y, x, _mm256_cmp_pd(a, b, _CMP_GT_OQ)); }
inline void store(double* p, VD a) { _mm256_storeu_pd(p, a); }

#endif

#if defined(RK_ISA_AVX512) || defined(RK_ISA_AVX2)

// core::splitmix64 per lane.
inline VU splitmix(VU z) {
  z = mul64(xor64(z, shr64<30>(z)), u64(kMix1));
  z = mul64(xor64(z, shr64<27>(z)), u64(kMix2));
  return xor64(z, shr64<31>(z));
}

// core::log_rn per lane (x a positive normal double).
inline VD log_rn(VD x) {
  const VU b = as_u64(x);
  // The biased exponent (0 ... 2047) as a double, exactly (see u53_to_f64).
  VD e = u53_to_f64(and64(shr64<52>(b), u64(0x7ff)));
  e = sub(e, f64(1023.0));
  VD m = as_f64(or64(and64(b, u64(0x000fffffffffffffULL)), u64(0x3ff0000000000000ULL)));  // [1, 2)
  const VD big = m;
  m = select_gt(big, f64(kSqrt2), mul(m, f64(0.5)), m);
  e = select_gt(big, f64(kSqrt2), add(e, f64(1.0)), e);
  const VD s = div(sub(m, f64(1.0)), add(m, f64(1.0)));
  const VD s2 = mul(s, s), s4 = mul(s2, s2), s8 = mul(s4, s4);
  const VD a = add(add(f64(1.0), mul(s2, f64(kC3))), mul(s4, add(f64(kC5), mul(s2, f64(kC7)))));
  const VD c = add(add(f64(kC9), mul(s2, f64(kC11))), mul(s4, add(f64(kC13), mul(s2, f64(kC15)))));
  const VD p = add(a, mul(s8, c));
  const VD lnm = mul(mul(f64(2.0), s), p);
  return add(mul(e, f64(kLn2Hi)), add(mul(e, f64(kLn2Lo)), lnm));
}

inline VD neg(VD x) { return as_f64(xor64(as_u64(x), u64(0x8000000000000000ULL))); }

void gumbel_noise(uint64_t row_key, int64_t c0, int64_t n, double* g) {
  // gumbel_bits_at(key, col) = splitmix64(key + (col + 1) G): lane l of a step starts at col c0 + l.
  VU x = add64(u64(row_key + (static_cast<uint64_t>(c0) + 1) * kGolden64), mul64(lane_index(), u64(kGolden64)));
  const VU step = u64(static_cast<uint64_t>(kLanes) * kGolden64);
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes) {
    const VU bits = splitmix(x);
    const VD u = mul(add(u53_to_f64(shr64<11>(bits)), f64(0.5)), f64(0x1p-53));  // core::uniform_open
    store(g + k, neg(log_rn(neg(log_rn(u)))));
    x = add64(x, step);
  }
  for (; k < n; ++k) g[k] = core::gumbel_noise_at(row_key, static_cast<uint64_t>(c0 + k));
}

#else

void gumbel_noise(uint64_t row_key, int64_t c0, int64_t n, double* g) {
  for (int64_t k = 0; k < n; ++k) g[k] = core::gumbel_noise_at(row_key, static_cast<uint64_t>(c0 + k));
}

#endif

}  // namespace
}  // namespace RK_ISA_NS

namespace detail {
#define RK_CAT2(a, b) a##b
#define RK_CAT(a, b) RK_CAT2(a, b)
GumbelNoiseFn RK_CAT(gumbel_noise_, RK_ISA_NS)() { return &RK_ISA_NS::gumbel_noise; }
#undef RK_CAT
#undef RK_CAT2
}  // namespace detail
}  // namespace rk
