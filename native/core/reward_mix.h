// Reward mixing formulas shared by the C++ kernels (native/kernels/advantages.cc) and the CUDA
// kernels (cuda/advantages.cu); docs/papers/g-ra.md, docs/papers/constrained-rlhf.md.
//
//   gatedRewards      R_b = r_high,b + 1[r_high,b >= delta] sum_t m_bt r_low,bt         (G-RA)
//   discountedCumsum  G_t = sum_{s >= t} gamma^(s-t) m_s x_s at every position t      (reverse)
//                     y_s = m_s sum_{t <= s} gamma^(s-t) x_t   (adjoint: the VJP of the reverse sum)
//   lagrangianMix     A_mix = (K - sum_i l_i) A_KL + sum_i l_i A_i,  l_i = sigmoid(xi_i)
//                     dL/dxi_i = sigmoid'(xi_i) sum_n g_n (A_i,n - A_KL,n)
// All sums run in double, in index order (one row or one fixed chunk at a time), on both backends.
#pragma once
#include <cmath>
#include <cstdint>

#include "advantages.h"  // TokenMask, mask_on
#include "hd.h"

namespace rk {
namespace core {

// G-RA for row b: the high-level reward plus, when it reaches the threshold, the sum of the row's
// unmasked low-level rewards. A NaN high reward fails the gate and stays NaN.
RK_HD double gated_row(const float* high, const float* low, const TokenMask& mask, int64_t b, int64_t cols,
                       double threshold) {
  const double h = high[b];
  if (!(h >= threshold)) return h;
  double s = 0;
  for (int64_t t = 0; t < cols; ++t) {
    const int64_t i = b * cols + t;
    if (mask_on(mask, i)) s += low[i];
  }
  return h + s;
}

// The discounted cumulative sum of row b, positional discount (a masked position contributes 0
// but the discount still runs over it). adjoint = false: reverse sum, masked input, every position
// written. adjoint = true: forward sum of the unmasked input, masked output (0 where masked).
RK_HD void discounted_cumsum_row(const float* x, const TokenMask& mask, int64_t b, int64_t cols, double gamma,
                                 bool adjoint, float* out) {
  double g = 0;
  if (!adjoint) {
    for (int64_t t = cols - 1; t >= 0; --t) {
      const int64_t i = b * cols + t;
      g = gamma * g;
      if (mask_on(mask, i)) g += x[i];
      out[i] = static_cast<float>(g);
    }
  } else {
    for (int64_t t = 0; t < cols; ++t) {
      const int64_t i = b * cols + t;
      g = gamma * g + x[i];
      out[i] = mask_on(mask, i) ? static_cast<float>(g) : 0.0f;
    }
  }
}

RK_HD double mix_sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + ::exp(-x)) : ::exp(x) / (1.0 + ::exp(x)); }
// sigmoid'(x) = s (1 - s), with 1 - s = mix_sigmoid(-x) (no cancellation for large x).
RK_HD double mix_sigmoid_grad(double x) { return mix_sigmoid(x) * mix_sigmoid(-x); }

// The KL advantage's weight K - sum_i mix_sigmoid(xi_i), summed in index order.
RK_HD double lagrangian_kl_weight(const float* xi, int64_t k) {
  double s = 0;
  for (int64_t i = 0; i < k; ++i) s += mix_sigmoid(xi[i]);
  return static_cast<double>(k) - s;
}

// A_mix at element n of N: adv is (K, N) row-major, wkl the KL weight; lambda the K sigmoids of xi
// computed once (CPU), or null to compute them here (CUDA): the same values either way.
RK_HD double lagrangian_mix_value(const float* adv, const float* kl, const float* xi, const double* lambda, int64_t k,
                                  int64_t n, int64_t N, double wkl) {
  double a = wkl * kl[n];
  for (int64_t i = 0; i < k; ++i) a += (lambda ? lambda[i] : mix_sigmoid(xi[i])) * adv[i * N + n];
  return a;
}

// One term of dL/dxi_i (before the factor sigmoid'(xi_i)): g_n (A_i,n - A_KL,n).
RK_HD double lagrangian_xi_term(const float* adv_i, const float* kl, const float* g, int64_t n) {
  return static_cast<double>(g[n]) * (static_cast<double>(adv_i[n]) - static_cast<double>(kl[n]));
}

}  // namespace core
}  // namespace rk
