// DRAKES (reward fine-tuning of discrete diffusion models, docs/papers/drakes.md): the formulas
// shared by the C++ kernels (native/kernels/drakes.cc) and the CUDA kernels (cuda/drakes.cu).
//
// The Gumbel noise is a pure function of (seed, row, column): a counter-based generator (SplitMix64's
// finaliser applied to the key) and a logarithm written here with IEEE-rounded +, -, *, / only (no
// libm, no fused multiply-add on either backend), so both backends and every thread count draw the
// same noise to the bit. tests/reference/drakes.ts reproduces it in TypeScript (BigInt + doubles).
#pragma once
#include <cstdint>
#include <cmath>
#include <cstring>

#include "hd.h"

namespace rk {
namespace core {

// ---- rounded double arithmetic that nvcc never contracts (the host TUs that call these are built
// with -ffp-contract=off, so g++ contracts nothing there either, with -mfma or without) ------------
RK_HD double dmul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
RK_HD double dadd(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
RK_HD double dsub(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
RK_HD double ddiv(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
RK_HD uint64_t dbits(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(x));
#else
  uint64_t u;
  std::memcpy(&u, &x, 8);
  return u;
#endif
}
RK_HD double dfrombits(uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double x;
  std::memcpy(&x, &u, 8);
  return x;
#endif
}

// SplitMix64's output function (Steele, Lea, Flood 2014).
RK_HD uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
constexpr uint64_t kGolden64 = 0x9e3779b97f4a7c15ULL;

// 64 random bits for element (row, col) of a draw keyed by seed: a per-row key, then the column.
RK_HD uint64_t gumbel_row_key(uint64_t seed, uint64_t row) { return splitmix64(splitmix64(seed + kGolden64) + (row + 1) * kGolden64); }
RK_HD uint64_t gumbel_bits_at(uint64_t row_key, uint64_t col) { return splitmix64(row_key + (col + 1) * kGolden64); }
RK_HD uint64_t gumbel_bits(uint64_t seed, uint64_t row, uint64_t col) { return gumbel_bits_at(gumbel_row_key(seed, row), col); }
// A uniform in (0, 1) from the top 53 bits: (k + 1/2) 2^-53, never 0 or 1.
RK_HD double uniform_open(uint64_t bits) { return (static_cast<double>(bits >> 11) + 0.5) * 0x1p-53; }

// ln x for a positive normal double, from + - * / only: x = m 2^e with m in [sqrt(1/2), sqrt(2)),
// ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.1716, by its series to s^15 evaluated in
// Estrin's order (relative error < 4e-14: the noise feeds an f32 sample).
RK_HD double log_rn(double x) {
  const uint64_t b = dbits(x);
  int e = static_cast<int>((b >> 52) & 0x7ff) - 1023;
  double m = dfrombits((b & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);  // [1, 2)
  if (m > 1.4142135623730951) {
    m = m * 0.5;  // exact
    e += 1;
  }
  const double s = ddiv(dsub(m, 1.0), dadd(m, 1.0));
  const double s2 = dmul(s, s), s4 = dmul(s2, s2), s8 = dmul(s4, s4);
  const double a = dadd(dadd(1.0, dmul(s2, 1.0 / 3.0)), dmul(s4, dadd(1.0 / 5.0, dmul(s2, 1.0 / 7.0))));
  const double c = dadd(dadd(1.0 / 9.0, dmul(s2, 1.0 / 11.0)), dmul(s4, dadd(1.0 / 13.0, dmul(s2, 1.0 / 15.0))));
  const double p = dadd(a, dmul(s8, c));
  const double lnm = dmul(dmul(2.0, s), p);
  const double de = static_cast<double>(e);
  // ln 2 split so that e * kLn2Hi is exact for |e| < 2^11
  const double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;
  return dadd(dmul(de, kLn2Hi), dadd(dmul(de, kLn2Lo), lnm));
}

// e^x from + - * / and bit operations only, like log_rn (no libm, no fused multiply-add), so that
// the CPU (every SIMD lane: native/kernels/drakes_simd.inl) and CUDA give the same bits. x = k ln 2 + r
// with k = round(x log2 e) (the 1.5 2^52 shifter, ties to even), r = (x - k ln2hi) - k ln2lo (k ln2hi
// and the subtraction exact, |r| <= 0.3466), e^r by its Taylor series to r^13 in Estrin's order (the
// truncation below 5e-18 relative; 1 + (r + the rest), so the rounding errors of the small terms
// stay small), then 2^k as 2^k1 2^k2 with k1 = floor(k / 2): the first product
// is exact and the second rounds once, also into the subnormals or to infinity. x is first clamped
// to [-1000, 1000], where e^x is already 0 or +inf. NaN gives NaN. Within 0.94 ulp of e^x, 0.26 ulp on
// average (rk_driver check measures it against long double over 400k points).
constexpr double kExpShifter = 6755399441055744.0;  // 1.5 2^52
constexpr uint64_t kExpShifterBits = 0x4338000000000000ULL;
constexpr double kExpC[14] = {1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
                              1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800};
RK_HD double exp_rn(double x) {
  if (x != x) return x;
  x = x < -1000.0 ? -1000.0 : (x > 1000.0 ? 1000.0 : x);
  const double t = dadd(dmul(x, 1.4426950408889634), kExpShifter);
  const int64_t k = static_cast<int64_t>(dbits(t) - kExpShifterBits);  // round(x log2 e), |k| <= 1443
  const double kd = dsub(t, kExpShifter);
  const double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;
  const double r = dsub(dsub(x, dmul(kd, kLn2Hi)), dmul(kd, kLn2Lo));
  const double r2 = dmul(r, r), r4 = dmul(r2, r2), r8 = dmul(r4, r4);
  const double u1 = dadd(dadd(kExpC[4], dmul(r, kExpC[5])), dmul(r2, dadd(kExpC[6], dmul(r, kExpC[7]))));
  const double u2 = dadd(dadd(kExpC[8], dmul(r, kExpC[9])), dmul(r2, dadd(kExpC[10], dmul(r, kExpC[11]))));
  const double u3 = dadd(kExpC[12], dmul(r, kExpC[13]));
  // the terms from r^2 on, smallest first; then r; then 1
  const double w = dadd(dmul(r2, dadd(kExpC[2], dmul(r, kExpC[3]))), dadd(dmul(r4, u1), dmul(r8, dadd(u2, dmul(r4, u3)))));
  const double p = dadd(kExpC[0], dadd(r, w));
  const int64_t k1 = static_cast<int64_t>((static_cast<uint64_t>(k + 2048) >> 1)) - 1024;  // floor(k / 2)
  const int64_t k2 = k - k1;
  const double s1 = dfrombits(static_cast<uint64_t>(k1 + 1023) << 52), s2 = dfrombits(static_cast<uint64_t>(k2 + 1023) << 52);
  return dmul(dmul(p, s1), s2);
}

// The standard Gumbel noise of element (row, col): g = -ln(-ln u), u uniform in (0, 1).
RK_HD double gumbel_noise_at(uint64_t row_key, uint64_t col) {
  const double u = uniform_open(gumbel_bits_at(row_key, col));
  return -log_rn(-log_rn(u));
}
RK_HD double gumbel_noise(uint64_t seed, uint64_t row, uint64_t col) { return gumbel_noise_at(gumbel_row_key(seed, row), col); }

// The perturbed, tempered logit t = (z + g) / tau (inv_tau = 1 / tau), in double.
RK_HD double gumbel_score(double z, double g, double inv_tau) { return dmul(dadd(z, g), inv_tau); }


// ---- the DRAKES generalised-KL rate integrand ---------------------------------------------------
// Per element, with p = softmax(z) and p_old = softmax(z_old) over the same V entries (log space
// lp = z - lse(z), lq = z_old - lse(z_old)):   f_j = p_j (lp_j - lq_j) - p_j + p_old_j.
// sum_j (-p_j + p_old_j) = 0 for two distributions, so a row's value is K / move_chance with
// K = sum_j p_j (lp_j - lq_j) = KL(p || p_old). With c = dL/d(row value) / move_chance:
//   d/dz_j     = c p_j (lp_j - lq_j - K)
//   d/dzold_j  = c (p_old_j - p_j)
// p_j = 0 contributes 0 (0 log 0 = 0), whatever lq_j.
RK_HD double gkl_term(double p, double lp, double lq) { return p > 0 ? p * (lp - lq) : 0.0; }
RK_HD double gkl_grad_new(double c, double p, double lp, double lq, double K) { return p > 0 ? c * p * (lp - lq - K) : 0.0; }
RK_HD double gkl_grad_old(double c, double p, double q) { return c * (q - p); }
// Online log-sum-exp step: the running max m and sum s (relative to m) take element x.
RK_HD void lse_step(double x, double* m, double* s) {
  if (!(x > -HUGE_VAL)) return;  // -inf adds nothing (NaN is caught by the caller)
  if (x > *m) {
    *s = dadd(dmul(*s, exp_rn(dsub(*m, x))), 1.0);
    *m = x;
  } else {
    *s = dadd(*s, exp_rn(dsub(x, *m)));
  }
}

}  // namespace core
}  // namespace rk
