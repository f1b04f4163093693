// The hot loop of preference.cc, compiled once per ISA (see simd.h): the smoothed-logistic pair
// losses (sigmoid/DPO, simpo, cpo, bt) in double-precision vectors. Included by
// preference_avx512.cc, preference_avx2.cc and preference_scalar.cc.
//
// Per pair, with cw = (w - rw) sw, cl = (l - rl) sl (sw, sl = 1/length or 1):
//   x = k (cw - cl) - m,  L = (1-e) softplus(-x) + e softplus(x) + nll (-w / Lw)
//   dL/dw = k sw dx - nll / Lw,  dL/dl = -k sl dx,  dx = -(1-e) s(-x) + e s(x)
// exp and log1p are evaluated here (not by libm) to about 2e-16 relative:
//   e^y, y in [-708, 0]: y = j ln2 + r, |r| <= ln2/2, degree-12 Taylor in r, times 2^j;
//   log1p(t), t in [0, 1]: 2 atanh(s) with s = t/(2+t) (t <= sqrt2-1) or ln2 + 2 atanh((t-1)/(t+3)),
//   |s| <= 0.1716, degree-10 series in s^2.
#include <cmath>

#include "preference.h"
#include "simd.h"

namespace rk {
namespace RK_ISA_NS {
namespace {

#if defined(RK_ISA_AVX512)
constexpr int kD = 8;
struct VD {
  __m512d v;
};
inline VD dset(double x) { return {_mm512_set1_pd(x)}; }
inline VD dload_f32(const float* p) { return {_mm512_cvtps_pd(_mm256_loadu_ps(p))}; }
inline VD dload_i32(const int32_t* p) {
  return {_mm512_cvtepi32_pd(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
}
inline void dstore_f32(float* p, VD a) { _mm256_storeu_ps(p, _mm512_cvtpd_ps(a.v)); }
inline VD operator+(VD a, VD b) { return {_mm512_add_pd(a.v, b.v)}; }
inline VD operator-(VD a, VD b) { return {_mm512_sub_pd(a.v, b.v)}; }
inline VD operator*(VD a, VD b) { return {_mm512_mul_pd(a.v, b.v)}; }
inline VD operator/(VD a, VD b) { return {_mm512_div_pd(a.v, b.v)}; }
inline VD dfma(VD a, VD b, VD c) { return {_mm512_fmadd_pd(a.v, b.v, c.v)}; }
inline VD dmax(VD a, VD b) { return {_mm512_max_pd(a.v, b.v)}; }
inline VD dabs(VD a) { return {_mm512_abs_pd(a.v)}; }
inline VD dround(VD a) { return {_mm512_roundscale_pd(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline VD dscale2(VD p, VD j) { return {_mm512_scalef_pd(p.v, j.v)}; }  // p * 2^j
using MD = __mmask8;
inline MD dge(VD a, VD b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_GE_OQ); }
inline MD dgt(VD a, VD b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_GT_OQ); }
inline MD disnan(VD a) { return _mm512_cmp_pd_mask(a.v, a.v, _CMP_UNORD_Q); }
inline VD dselect(MD m, VD a, VD b) { return {_mm512_mask_blend_pd(m, b.v, a.v)}; }  // m ? a : b
inline double dhsum(VD a) {
  alignas(64) double t[8];
  _mm512_store_pd(t, a.v);
  return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}
#elif defined(RK_ISA_AVX2)
constexpr int kD = 4;
struct VD {
  __m256d v;
};
inline VD dset(double x) { return {_mm256_set1_pd(x)}; }
inline VD dload_f32(const float* p) { return {_mm256_cvtps_pd(_mm_loadu_ps(p))}; }
inline VD dload_i32(const int32_t* p) {
  return {_mm256_cvtepi32_pd(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))};
}
inline void dstore_f32(float* p, VD a) { _mm_storeu_ps(p, _mm256_cvtpd_ps(a.v)); }
inline VD operator+(VD a, VD b) { return {_mm256_add_pd(a.v, b.v)}; }
inline VD operator-(VD a, VD b) { return {_mm256_sub_pd(a.v, b.v)}; }
inline VD operator*(VD a, VD b) { return {_mm256_mul_pd(a.v, b.v)}; }
inline VD operator/(VD a, VD b) { return {_mm256_div_pd(a.v, b.v)}; }
inline VD dfma(VD a, VD b, VD c) { return {_mm256_fmadd_pd(a.v, b.v, c.v)}; }
inline VD dmax(VD a, VD b) { return {_mm256_max_pd(a.v, b.v)}; }
inline VD dabs(VD a) { return {_mm256_andnot_pd(_mm256_set1_pd(-0.0), a.v)}; }
inline VD dround(VD a) { return {_mm256_round_pd(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
// p * 2^j for integral j in [-1022, 0]: build 2^j from its exponent bits.
inline VD dscale2(VD p, VD j) {
  const __m256i j64 = _mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(j.v));
  const __m256i bits = _mm256_slli_epi64(_mm256_add_epi64(j64, _mm256_set1_epi64x(1023)), 52);
  return {_mm256_mul_pd(p.v, _mm256_castsi256_pd(bits))};
}
using MD = __m256d;
inline MD dge(VD a, VD b) { return _mm256_cmp_pd(a.v, b.v, _CMP_GE_OQ); }
inline MD dgt(VD a, VD b) { return _mm256_cmp_pd(a.v, b.v, _CMP_GT_OQ); }
inline MD disnan(VD a) { return _mm256_cmp_pd(a.v, a.v, _CMP_UNORD_Q); }
inline VD dselect(MD m, VD a, VD b) { return {_mm256_blendv_pd(b.v, a.v, m)}; }
inline double dhsum(VD a) {
  alignas(32) double t[4];
  _mm256_store_pd(t, a.v);
  return (t[0] + t[1]) + (t[2] + t[3]);
}
#else
constexpr int kD = 1;
struct VD {
  double v;
};
inline VD dset(double x) { return {x}; }
inline VD dload_f32(const float* p) { return {static_cast<double>(*p)}; }
inline VD dload_i32(const int32_t* p) { return {static_cast<double>(*p)}; }
inline void dstore_f32(float* p, VD a) { *p = static_cast<float>(a.v); }
inline VD operator+(VD a, VD b) { return {a.v + b.v}; }
inline VD operator-(VD a, VD b) { return {a.v - b.v}; }
inline VD operator*(VD a, VD b) { return {a.v * b.v}; }
inline VD operator/(VD a, VD b) { return {a.v / b.v}; }
inline VD dfma(VD a, VD b, VD c) { return {a.v * b.v + c.v}; }  // no FMA in the baseline ISA
// like the SIMD max: the second operand when either is NaN
inline VD dmax(VD a, VD b) { return {a.v > b.v ? a.v : b.v}; }
inline VD dabs(VD a) { return {std::fabs(a.v)}; }
inline VD dround(VD a) { return {std::nearbyint(a.v)}; }
inline VD dscale2(VD p, VD j) { return {std::ldexp(p.v, static_cast<int>(j.v))}; }
using MD = bool;
inline MD dge(VD a, VD b) { return a.v >= b.v; }
inline MD dgt(VD a, VD b) { return a.v > b.v; }
inline MD disnan(VD a) { return a.v != a.v; }
inline VD dselect(MD m, VD a, VD b) { return m ? a : b; }
inline double dhsum(VD a) { return a.v; }
#endif

constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;
constexpr double kLog2eD = 1.44269504088896338700e+00;

// e^y for y <= 0 (y < -708 is taken as -708: e^-708 ~ 3e-308, zero under FTZ).
inline VD dexp_neg(VD y) {
  y = dmax(y, dset(-708.0));  // also maps NaN to -708 (x86 max returns the 2nd operand)
  const VD j = dround(y * dset(kLog2eD));
  const VD r = dfma(j, dset(-kLn2Lo), dfma(j, dset(-kLn2Hi), y));
  // Taylor e^r to degree 12 (|r| <= 0.3466: truncation < 2e-16 relative)
  VD p = dset(1.0 / 479001600.0);
  p = dfma(p, r, dset(1.0 / 39916800.0));
  p = dfma(p, r, dset(1.0 / 3628800.0));
  p = dfma(p, r, dset(1.0 / 362880.0));
  p = dfma(p, r, dset(1.0 / 40320.0));
  p = dfma(p, r, dset(1.0 / 5040.0));
  p = dfma(p, r, dset(1.0 / 720.0));
  p = dfma(p, r, dset(1.0 / 120.0));
  p = dfma(p, r, dset(1.0 / 24.0));
  p = dfma(p, r, dset(1.0 / 6.0));
  p = dfma(p, r, dset(0.5));
  p = dfma(p, r, dset(1.0));
  p = dfma(p, r, dset(1.0));
  return dscale2(p, j);
}

// log1p(t) for t in [0, 1].
inline VD dlog1p_unit(VD t) {
  const MD big = dgt(t, dset(0.41421356237309503));
  const VD num = dselect(big, t - dset(1.0), t);
  const VD den = dselect(big, t + dset(3.0), t + dset(2.0));
  const VD s = num / den;
  const VD z = s * s;
  // 2 atanh(s) = 2 s sum_j z^j / (2j + 1), j = 0..10
  VD q = dset(1.0 / 21.0);
  q = dfma(q, z, dset(1.0 / 19.0));
  q = dfma(q, z, dset(1.0 / 17.0));
  q = dfma(q, z, dset(1.0 / 15.0));
  q = dfma(q, z, dset(1.0 / 13.0));
  q = dfma(q, z, dset(1.0 / 11.0));
  q = dfma(q, z, dset(1.0 / 9.0));
  q = dfma(q, z, dset(1.0 / 7.0));
  q = dfma(q, z, dset(1.0 / 5.0));
  q = dfma(q, z, dset(1.0 / 3.0));
  q = dfma(q, z, dset(1.0));
  const VD v = (s + s) * q;
  return dselect(big, v + dset(0.69314718055994530942), v);
}

// The pair block [i0, i1); sums of loss, accuracy and margin returned through out-params in a
// fixed order (lanes, then a fixed horizontal tree, then the scalar tail).
void logistic_pairs(const detail::LogisticPairsArgs& a, int64_t i0, int64_t i1, double* s_loss,
                    double* s_acc, double* s_margin) {
  const VD k = dset(a.k), kr = dset(a.kr), m = dset(a.m), e = dset(a.e), one_e = dset(1 - a.e);
  const VD nll = dset(a.nll), inv_n = dset(a.inv_n), zero = dset(0.0), one = dset(1.0);
  VD acc_l = zero, acc_a = zero, acc_m = zero;
  int64_t i = i0;
  auto body = [&](int64_t j, VD& out_l, VD& out_a, VD& out_m, auto load_f, auto load_i, auto store) {
    const VD w = load_f(a.w, j), l = load_f(a.l, j);
    const VD rw = a.rw ? load_f(a.rw, j) : zero, rl = a.rl ? load_f(a.rl, j) : zero;
    const VD inv_lw = a.lw ? one / load_i(a.lw, j) : one;
    const VD inv_ll = a.ll ? one / load_i(a.ll, j) : one;
    const VD sw = a.avg ? inv_lw : one, sl = a.avg ? inv_ll : one;
    const VD cw = (w - rw) * sw, cl = (l - rl) * sl;
    const VD mm = a.marr ? load_f(a.marr, j) : m;
    const VD x = k * (cw - cl) - mm;
    const VD t = dexp_neg(zero - dabs(x));
    const VD lp = dlog1p_unit(t);
    const VD inv = one / (one + t);
    const MD pos = dge(x, zero);
    const VD s_pos = dselect(pos, inv, t * inv), s_neg = dselect(pos, t * inv, inv);
    const VD sp_pos = dmax(x, zero) + lp, sp_neg = dmax(zero - x, zero) + lp;
    VD loss, dx;
    if (a.e == 0) {  // no 0 * inf = NaN from the unused term when x = +inf
      loss = sp_neg;
      dx = zero - s_neg;
    } else {
      loss = one_e * sp_neg + e * sp_pos;
      dx = e * s_pos - one_e * s_neg;
    }
    VD gw = k * sw * dx;
    VD gl = zero - k * sl * dx;
    if (a.nll != 0) {
      loss = loss - nll * w * inv_lw;
      gw = gw - nll * inv_lw;
    }
    // A NaN x (a NaN input) gives NaN loss and gradients, as the scalar path does (max/min
    // above would otherwise turn it into a finite number).
    const MD bad = disnan(x);
    loss = dselect(bad, x, loss);
    gw = dselect(bad, x, gw);
    gl = dselect(bad, x, gl);
    const VD rc = kr * cw, rr = kr * cl;
    store(a.losses, j, loss);
    store(a.rc, j, rc);
    store(a.rr, j, rr);
    store(a.gc, j, gw * inv_n);
    store(a.gr, j, gl * inv_n);
    out_l = out_l + loss;
    out_a = out_a + dselect(dgt(rc, rr), one, zero);
    out_m = out_m + (rc - rr);
  };
  auto vload_f = [](const float* p, int64_t j) { return dload_f32(p + j); };
  auto vload_i = [](const int32_t* p, int64_t j) { return dload_i32(p + j); };
  auto vstore = [](float* p, int64_t j, VD v) { dstore_f32(p + j, v); };
  for (; i + kD <= i1; i += kD) body(i, acc_l, acc_a, acc_m, vload_f, vload_i, vstore);
  double tl = dhsum(acc_l), ta = dhsum(acc_a), tm = dhsum(acc_m);
  // scalar tail: one lane at a time through the same formulas (lane 0 of a broadcast)
  auto sload_f = [](const float* p, int64_t j) { return dset(static_cast<double>(p[j])); };
  auto sload_i = [](const int32_t* p, int64_t j) { return dset(static_cast<double>(p[j])); };
  auto sstore = [](float* p, int64_t j, VD v) {
    float tmp[kD];
    dstore_f32(tmp, v);
    p[j] = tmp[0];
  };
  for (; i < i1; ++i) {
    VD l1 = zero, a1 = zero, m1 = zero;
    body(i, l1, a1, m1, sload_f, sload_i, sstore);
    tl += dhsum(l1) / kD;  // every lane holds the same value: take one lane's worth
    ta += dhsum(a1) / kD;
    tm += dhsum(m1) / kD;
  }
  *s_loss = tl;
  *s_acc = ta;
  *s_margin = tm;
}

}  // namespace
}  // namespace RK_ISA_NS

namespace detail {
#define RK_CAT2(a, b) a##b
#define RK_CAT(a, b) RK_CAT2(a, b)
LogisticPairsFn RK_CAT(preference_logistic_pairs_, RK_ISA_NS)() { return &RK_ISA_NS::logistic_pairs; }
#undef RK_CAT
#undef RK_CAT2
}  // namespace detail
}  // namespace rk
