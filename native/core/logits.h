// Row finishes of the full-vocabulary ops, shared by the C++ kernels (native/kernels/logprobs.cc,
// divergence.cc) and the CUDA kernels (cuda/logprobs.cu, divergence.cu): from a row's merged
// statistics, in double, to its outputs and to the per-row coefficients of the gradient pass. The
// chunk / lane statistics and their merges stay with each backend (SIMD lanes, warps).
#pragma once
#include <cmath>

#include "hd.h"

namespace rk {
namespace core {

constexpr double kLn2d = 0.69314718055994530942;
constexpr double kLog2ed = 1.44269504088896340736;

// ---- token log-probs. A row's max m (raw logits), log S with S = sum_j exp((z_j - m) / tau), and
// T = sum_j 2^u_j u_j with u_j = (z_j - m) log2(e) / tau (log2 units) --------------------------------
// H = lse - sum p z' = log S - sum p (z' - m / tau), and sum p (z' - m / tau) = ln2 T / S <= 0.
RK_HD double lp_entropy(double log_s, double T, double S) { return log_s - kLn2d * T / S; }
RK_HD double lp_logp(double zy, double m, double inv_tau, double log_s) { return (zy - m) * inv_tau - log_s; }
RK_HD double lp_lse(double m, double inv_tau, double log_s) { return m * inv_tau + log_s; }

// The backward's row coefficients: per element u = (z - c) a - b (log2 p), grad = 2^u (k0 + k1 u),
// and grad_y += gy, with k0 = -(g + h H) / tau, k1 = -h ln2 / tau, gy = g / tau (g = dL/dlogp,
// h = dL/dentropy). c, b: the recomputed statistics (c = m, b = log2 S) or a given lse (c = tau lse, b = 0).
struct LpGradRow {
  float c, b, k0, k1, gy;
};
RK_HD LpGradRow lp_grad_row(double g, double h, double H, double c, double b, double inv_tau) {
  LpGradRow r;
  r.c = static_cast<float>(c);
  r.b = static_cast<float>(b);
  r.k0 = static_cast<float>(-(g + h * H) * inv_tau);
  r.k1 = static_cast<float>(-h * kLn2d * inv_tau);
  r.gy = static_cast<float>(g * inv_tau);
  return r;
}

// ---- vocabulary divergences; mode = rk::DivergenceKind (0 forward_kl, 1 reverse_kl, 2 jsd) -------
// A KL row from pass 1: C the merged cross sum (see divergence.cc / divergence.cu),
// Ss, St the student / target normalisers and dshift the difference of the shifts they were taken
// against (Mt - Ms forward, Ms - Mt reverse; 0 when both sums share one shift):
//   forward_kl  D = C / (tau St) - dshift / tau - ln St + ln Ss
//   reverse_kl  D = C / (tau Ss) - dshift / tau - ln Ss + ln St
// NaN when either row has no distribution; 0 for jsd (pass 2 writes it).
RK_HD double kl_row(int mode, double C, double dshift, double Ss, double St, double lnSs, double lnSt,
                    double inv_tau) {
  double D = 0.0;
  if (mode == 0) D = C * inv_tau / St - dshift * inv_tau - lnSt + lnSs;
  if (mode == 1) D = C * inv_tau / Ss - dshift * inv_tau - lnSs + lnSt;
  if (!(Ss > 0) || !(St > 0)) D = NAN;  // no distribution
  return D;
}

// Gradient coefficients of a row (g = dL/dD of the row): forward_kl k0 (p - q); reverse_kl
// p (k1 l + k0); jsd p (k1 log2(p/m) + k0) (see native/kernels/divergence.h).
struct DivCoef {
  float k0, k1;
};
RK_HD DivCoef kl_row_coef(int mode, double g, double D, double inv_tau) {
  DivCoef k;
  k.k0 = 0.0f;
  k.k1 = 0.0f;
  if (mode == 0) k.k0 = static_cast<float>(g * inv_tau);
  if (mode == 1) {
    k.k1 = static_cast<float>(g * kLn2d * inv_tau);
    k.k0 = static_cast<float>(-g * D * inv_tau);
  }
  return k;
}
// jsd from pass 2's sums J = sum beta q log2(q/m) + (1-beta) p log2(p/m) and K = sum p log2(p/m).
RK_HD DivCoef jsd_row_coef(double g, double beta, double K, double inv_tau) {
  const double gg = g * (1.0 - beta) * kLn2d * inv_tau;
  DivCoef k;
  k.k1 = static_cast<float>(gg);
  k.k0 = static_cast<float>(-gg * K);
  return k;
}
// The jsd value D = ln2 J, unless pass 1 found no distribution (d NaN).
RK_HD float jsd_row_div(float d, double J) { return d == d ? static_cast<float>(kLn2d * J) : d; }

}  // namespace core
}  // namespace rk
