// geoMeanPolicyLoss: GMPO, the geometric-mean policy objective (Zhao et al. 2025, arXiv 2507.20673;
// verl compute_policy_loss_geo_mean at 012be9d), with its gradient with respect to the log-probs.
// logprobs, oldLogprobs, mask: (B, T); advantages (B) or (B, T).
//   d_t = l_t - l_old,t,  s_t = sign(A_t),  c_t = s_t min(s_t d_t, s_t clamp(d_t, -epsLow, epsHigh))
//   S_i = sum_t m c / (sum_t m + 1e-8),  A_i = sum_t m A / (sum_t m + 1e-8)
//   loss = (1/B) sum_i -A_i exp(S_i)         (a mean over sequences, as verl: no aggregation mode)
//   dloss/dl_t = -(1/B) A_i exp(S_i) m_t [c_t follows d_t] / (sum_t m + 1e-8)
//   metrics (masked means): clipFraction [d != clamp(d)] and A > 0, clipFractionLower the same with
//   A < 0, ppoKl = -d
#pragma once
#include <cmath>

#include "../seq_op.h"

namespace rk {

struct GeoMeanPolicyLossOp {
  struct Params {
    double seqLen, epsilonLow, epsilonHigh;
  };
  static constexpr int kInputs = 3;  // logprobs, oldLogprobs, advantages
  static constexpr int kGrads = 1;   // d/dlogprobs
  static constexpr int kStats = 3;   // sum m c, sum m A; then row() leaves the gradient coefficient
  static constexpr int kMetrics = 3;  // clipFraction, clipFractionLower, ppoKl

  // c_t and whether it follows d_t (its derivative: 1, else 0).
  RK_HD static double clipped(const Params& p, double d, double A, bool* follows) {
    const double s = A > 0 ? 1.0 : (A < 0 ? -1.0 : 0.0);
    const double dc = d < -p.epsilonLow ? -p.epsilonLow : (d > p.epsilonHigh ? p.epsilonHigh : d);
    const double a = s * d, b = s * dc;
    *follows = s != 0 && (a <= b);  // a < b: d; a == b: d is inside the clamp (or s = 0)
    return s * (a < b ? a : b);
  }
  RK_HD static double factor(const Params&, double, double, int64_t B, int64_t) { return 1.0 / static_cast<double>(B); }
  RK_HD static void stat(const Params& p, const double* x, double m, double* st) {
    bool f;
    st[0] += m * clipped(p, x[0] - x[1], x[2], &f);
    st[1] += m * x[2];
  }
  RK_HD static double row(const Params&, double* st, double mask_sum, double row_factor) {
    const double den = mask_sum + 1e-8;
    const double ratio = exp(st[0] / den);
    const double adv = st[1] / den;
    st[2] = -adv * ratio * row_factor / den;  // dloss/dc_t per unit mask
    return -adv * ratio * row_factor;
  }
  RK_HD static double token(const Params& p, const double* x, double m, double, const double* st, double, double,
                            double* grad, double* metric) {
    const double d = x[0] - x[1], A = x[2];
    bool follows;
    clipped(p, d, A, &follows);
    grad[0] = follows ? st[2] * m : 0.0;
    const bool clip = d < -p.epsilonLow || d > p.epsilonHigh;
    metric[0] = clip && A > 0 ? 1.0 : 0.0;
    metric[1] = clip && A < 0 ? 1.0 : 0.0;
    metric[2] = -d;
    return 0.0;
  }
};

}  // namespace rk
