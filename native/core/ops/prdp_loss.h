// prdpLoss: PRDP's reward-difference prediction loss with clipped per-step ratios (Deng et al. 2024,
// "PRDP: Proximal Reward Difference Prediction for Large-Scale Reward Finetuning of Diffusion
// Models", arXiv 2402.08714; docs/papers/prdp.md), with its gradients wrt both samples' per-step
// log-probs. logprobsA/B, oldLogprobsA/B: (B, T) pairs by denoising steps; rewardsA/B: (B).
//   c_i,t = clamp(l_i,t - l_old,i,t, log(1 - eps), log(1 + eps))
//   e = r_a - r_b - beta sum_t m_t (c_a,t - c_b,t),  L = (1/B) sum_pairs e^2
//   dL/dl_a,t = -(2/B) e beta m_t [c_a,t follows],  dL/dl_b,t = +(2/B) e beta m_t [c_b,t follows]
//   metric (masked mean): clipFraction [either ratio clamped]
#pragma once
#include <cmath>

#include "../seq_op.h"

namespace rk {

struct PrdpLossOp {
  struct Params {
    double seqLen, beta, epsilon;
  };
  static constexpr int kInputs = 6;  // logprobsA, logprobsB, oldLogprobsA, oldLogprobsB, rewardsA, rewardsB
  static constexpr int kGrads = 2;   // d/dlogprobsA, d/dlogprobsB
  // sum m (c_a - c_b); r_a - r_b; then the gradient coefficient; and the clamp bounds log(1 -+ eps)
  // computed once per row (slots 3, 4, with slot 5 set once they are), not twice per token
  static constexpr int kStats = 6;
  static constexpr int kMetrics = 1;  // clipFraction

  // clamp(d, lo, hi) with lo = log(1 - eps), hi = log(1 + eps), and whether d is inside (derivative 1, else 0).
  RK_HD static double clipped(double lo, double hi, double d, bool* inside) {
    *inside = d >= lo && d <= hi;
    return d < lo ? lo : (d > hi ? hi : d);
  }
  RK_HD static double factor(const Params&, double, double, int64_t B, int64_t) { return 1.0 / static_cast<double>(B); }
  // The row's clamp bounds, st[3] and st[4], on its first token (the stats start at 0 per row).
  RK_HD static void bounds(const Params& p, double* st) {
    if (st[5] == 0) st[3] = ::log1p(-p.epsilon), st[4] = ::log1p(p.epsilon), st[5] = 1;
  }
  RK_HD static void stat(const Params& p, const double* x, double m, double* st) {
    bool ia, ib;
    bounds(p, st);
    if (m != 0) st[0] += m * (clipped(st[3], st[4], x[0] - x[2], &ia) - clipped(st[3], st[4], x[1] - x[3], &ib));
    st[1] = x[4] - x[5];  // one value per pair
  }
  RK_HD static double row(const Params& p, double* st, double, double row_factor) {
    const double e = st[1] - p.beta * st[0];
    st[2] = -2.0 * row_factor * e * p.beta;  // dL/dc_a,t per unit mask (and minus it for c_b,t)
    return row_factor * e * e;
  }
  RK_HD static double token(const Params& p, const double* x, double m, double, const double* st, double, double,
                            double* grad, double* metric) {
    bool ia, ib;
    clipped(st[3], st[4], x[0] - x[2], &ia);
    clipped(st[3], st[4], x[1] - x[3], &ib);
    grad[0] = ia ? st[2] * m : 0.0;
    grad[1] = ib ? -st[2] * m : 0.0;
    metric[0] = (!ia || !ib) ? 1.0 : 0.0;
    return 0.0;
  }
};

}  // namespace rk
