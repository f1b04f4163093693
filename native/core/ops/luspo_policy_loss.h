// luspoPolicyLoss: LUSPO, length-unbiased sequence policy optimisation (TRL GRPOTrainer loss_type
// "luspo" with importance_sampling_level "sequence", at f2cd577; arXiv 2602.05261), with its gradient
// with respect to the log-probs. logprobs, oldLogprobs, mask: (B, T); advantages (B) or (B, T).
//   log s_i = sum_t m d / max(sum_t m, 1),  d = l - l_old,  s_i = exp(log s_i)
//   s1 = min(s_i, delta) (delta > 1; 0: off),  c = clamp(s_i, 1 - epsLow, 1 + epsHigh)
//   L_it = -min(s1 A_it, c A_it)
//   loss = (1/(B T)) sum_i sum_t L_it * sum_t m_it      (TRL: (per_token_loss * mask.sum(1)).mean(),
//          the mean over every (i, t), padded ones included; (1/B) sum_i L_i |m_i| for one A per row)
//   dloss/dl_t = dloss/ds_i * s_i * m_t / max(sum_t m, 1); torch.min splits a tie's gradient in half
//   metrics (masked means): clipFractionLow [s < 1 - epsLow and A < 0], clipFractionHigh [s > 1 + epsHigh
//   and A > 0], ppoKl = -d
#pragma once
#include <cmath>

#include "../seq_op.h"

namespace rk {

struct LuspoPolicyLossOp {
  struct Params {
    double seqLen, epsilonLow, epsilonHigh, delta;
  };
  static constexpr int kInputs = 3;  // logprobs, oldLogprobs, advantages
  static constexpr int kGrads = 1;   // d/dlogprobs
  // sum m d, sum_t A [A > 0], sum_t A [A < 0]; row() leaves dloss/dlog s / max(sum m, 1) and s
  static constexpr int kStats = 5;
  static constexpr int kMetrics = 3;  // clipFractionLow, clipFractionHigh, ppoKl

  RK_HD static double factor(const Params&, double, double, int64_t B, int64_t T) {
    return 1.0 / (static_cast<double>(B) * static_cast<double>(T));
  }
  RK_HD static void stat(const Params&, const double* x, double m, double* st) {
    st[0] += m * (x[0] - x[1]);
    if (x[2] > 0) st[1] += x[2];
    if (x[2] < 0) st[2] += x[2];
  }
  RK_HD static double row(const Params& p, double* st, double mask_sum, double row_factor) {
    const double den = mask_sum > 1.0 ? mask_sum : 1.0;
    const double s = exp(st[0] / den);
    const bool capped = p.delta > 0 && s > p.delta;
    const double s1 = capped ? p.delta : s;
    const double lo = 1.0 - p.epsilonLow, hi = 1.0 + p.epsilonHigh;
    const double c = s < lo ? lo : (s > hi ? hi : s);
    const double ds1 = capped ? 0.0 : 1.0, dc = (s >= lo && s <= hi) ? 1.0 : 0.0;
    // A > 0: min(s1, c) A; A < 0: max(s1, c) A (the min of the products)
    const double vmin = s1 < c ? s1 : c, vmax = s1 > c ? s1 : c;
    const double gmin = s1 < c ? ds1 : (s1 > c ? dc : 0.5 * (ds1 + dc));
    const double gmax = s1 > c ? ds1 : (s1 < c ? dc : 0.5 * (ds1 + dc));
    const double scale = -row_factor * mask_sum;
    st[3] = scale * (gmin * st[1] + gmax * st[2]) * s / den;
    st[4] = s;
    return mask_sum != 0 ? scale * (vmin * st[1] + vmax * st[2]) : 0.0;
  }
  RK_HD static double token(const Params& p, const double* x, double m, double, const double* st, double, double,
                            double* grad, double* metric) {
    const double s = st[4], A = x[2];
    grad[0] = st[3] * m;
    metric[0] = s < 1.0 - p.epsilonLow && A < 0 ? 1.0 : 0.0;
    metric[1] = s > 1.0 + p.epsilonHigh && A > 0 ? 1.0 : 0.0;
    metric[2] = x[1] - x[0];
    return 0.0;
  }
};

}  // namespace rk
