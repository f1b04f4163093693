// prdpLoss: PRDP's proximal reward-difference prediction loss (Deng et al. 2024, "PRDP: Proximal
// Reward Difference Prediction for Large-Scale Reward Finetuning of Diffusion Models", CVPR 2024,
// arXiv 2402.08714v2: Eqs. 14, 16-18, 20-21 and the loss of Appendix G; docs/papers/prdp.md), with
// its gradients wrt both samples' per-step log-probs. logprobsA/B, oldLogprobsA/B: (B, T) pairs by
// denoising steps; rewardsA/B: (B).
//   d_i,t = l_i,t - l_old,i,t,   c_i,t = clamp(d_i,t, -eps, eps)          (Eq. 20, stepwise)
//   D = k sum_t m_t (d_a,t - d_b,t),   Dc = k sum_t m_t (c_a,t - c_b,t)  (Eq. 21; k = 1, or 1 / sum_t m_t
//                                                                          for stepReduction 'mean')
//   y = (r_a - r_b) / beta,   u = D - y,   v = Dc - y                     (Eqs. 14, 17)
//   L = (1/B) sum_pairs max(u^2, v^2)                                     (Eq. 18, PPO-style)
//   e = v where v^2 > u^2 (the clipped branch), else u
//   dL/dl_a,t = (2/B) e k m_t [unclipped branch or |d_a,t| <= eps],  dL/dl_b,t = the same with -e
//   metric (masked mean): clipFraction [either step outside [-eps, eps]]
// The reference model enters only through the constant sum_t (l_old - l_ref) of each sample, which the
// caller folds into the rewards (docs/papers/prdp.md).
#pragma once
#include <cmath>

#include "../seq_op.h"

namespace rk {

struct PrdpLossOp {
  struct Params {
    double seqLen, beta, epsilon, stepReduction;  // stepReduction: 0 sum (Eq. 21), 1 mean (Appendix G)
  };
  static constexpr int kInputs = 6;  // logprobsA, logprobsB, oldLogprobsA, oldLogprobsB, rewardsA, rewardsB
  static constexpr int kGrads = 2;   // d/dlogprobsA, d/dlogprobsB
  // D and Dc before k; y; then (row) the gradient coefficient 2 e k / B and the branch (1: clipped)
  static constexpr int kStats = 5;
  static constexpr int kMetrics = 1;  // clipFraction

  // clamp(d, -eps, eps), and whether d is inside (derivative 1, else 0).
  RK_HD static double clipped(double eps, double d, bool* inside) {
    *inside = d >= -eps && d <= eps;
    return d < -eps ? -eps : (d > eps ? eps : d);
  }
  RK_HD static double factor(const Params&, double, double, int64_t B, int64_t) { return 1.0 / static_cast<double>(B); }
  RK_HD static void stat(const Params& p, const double* x, double m, double* st) {
    if (m != 0) {
      bool ia, ib;
      const double da = x[0] - x[2], db = x[1] - x[3];
      st[0] += m * (da - db);
      st[1] += m * (clipped(p.epsilon, da, &ia) - clipped(p.epsilon, db, &ib));
    }
    st[2] = (x[4] - x[5]) / p.beta;  // one value per pair
  }
  RK_HD static double row(const Params& p, double* st, double mask_sum, double row_factor) {
    const double k = p.stepReduction == 0 ? 1.0 : (mask_sum > 0 ? 1.0 / mask_sum : 0.0);
    const double u = k * st[0] - st[2], v = k * st[1] - st[2];
    const bool clip = v * v > u * u;
    const double e = clip ? v : u;
    st[3] = 2.0 * row_factor * e * k;  // dL/dl_a,t per unit mask (and minus it for l_b,t)
    st[4] = clip ? 1.0 : 0.0;
    return row_factor * e * e;
  }
  RK_HD static double token(const Params& p, const double* x, double m, double, const double* st, double, double,
                            double* grad, double* metric) {
    bool ia, ib;
    clipped(p.epsilon, x[0] - x[2], &ia);
    clipped(p.epsilon, x[1] - x[3], &ib);
    const bool clip = st[4] != 0;
    grad[0] = clip && !ia ? 0.0 : st[3] * m;
    grad[1] = clip && !ib ? 0.0 : -st[3] * m;
    metric[0] = (!ia || !ib) ? 1.0 : 0.0;
    return 0.0;
  }
};

}  // namespace rk
