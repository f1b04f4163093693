// copoPolicyLoss: COPO's blended clipped loss (Han et al. 2025, arXiv 2508.04138; hijih/copo-code
// verl/trainer/ppo/core_algos.py compute_policy_loss_with_global at c15c75f), with its gradient with
// respect to the log-probs. logprobs, oldLogprobs, mask: (B, T); localAdvantages, globalAdvantages and
// gates (B) or (B, T). Per token, with r = exp(l - l_old):
//   P(A) = max(-A r, -A clip(r, 1 - epsLow, 1 + epsHigh)), and for A < 0 min(P(A), -c A) (dual clip c)
//   L_t = w P(A_local) + (1 - w) P(A_global)        (w the gate, copoAdvantages)
//   loss = sum_t w_t L_t                            (w_t from the aggregation: verl's agg_loss)
//   dloss/dl_t = w_t r [w (-A_local) [P(A_local) follows r] + (1 - w) (-A_global) [P(A_global) follows r]]
//   metrics (masked means): clipFraction [-A clip(r) > -A r] and clipFractionLower [dual clip fired,
//   A < 0] for the local advantages, the same two for the global ones, ppoKl = l_old - l
#pragma once
#include <cmath>

#include "../seq_op.h"

namespace rk {

struct CopoPolicyLossOp {
  struct Params {
    double seqLen, epsilonLow, epsilonHigh, dualClip, aggregation, normalizer;
  };
  static constexpr int kInputs = 5;  // logprobs, oldLogprobs, localAdvantages, globalAdvantages, gates
  static constexpr int kGrads = 1;   // d/dlogprobs
  static constexpr int kStats = 0;
  static constexpr int kMetrics = 5;  // clipFraction, clipFractionLower, globalClipFraction, globalClipFractionLower, ppoKl

  // verl's dual-clip PPO term of one advantage: its value, dP/dr in *dp, whether the clip and the
  // dual clip fired.
  RK_HD static double clipped(const Params& p, double r, double A, double* dp, bool* clip, bool* dual) {
    const double lo = 1.0 - p.epsilonLow, hi = 1.0 + p.epsilonHigh;
    const double rc = r < lo ? lo : (r > hi ? hi : r);
    const double L1 = -A * r, L2 = -A * rc;
    *clip = L2 > L1;
    double L = *clip ? L2 : L1;
    *dp = *clip ? 0.0 : -A;
    *dual = false;
    if (A < 0) {
      const double L3 = -A * p.dualClip;
      if (L > L3) {
        *dual = true;
        L = L3;
        *dp = 0.0;
      }
    }
    return L;
  }
  RK_HD static double factor(const Params& p, double row_mask, double total_mask, int64_t B, int64_t T) {
    return core::policy_row_factor(static_cast<LossAggregation>(static_cast<int>(p.aggregation)), p.normalizer, row_mask,
                                   total_mask, B, T);
  }
  RK_HD static void stat(const Params&, const double*, double, double*) {}
  RK_HD static double row(const Params&, double*, double, double) { return 0.0; }
  RK_HD static double token(const Params& p, const double* x, double m, double w, const double*, double, double,
                            double* grad, double* metric) {
    const double d = x[0] - x[1], gate = x[4];
    const double r = exp(d);
    double dl, dg;
    bool cl, dul, cg, dug;
    const double Ll = clipped(p, r, x[2], &dl, &cl, &dul);
    const double Lg = clipped(p, r, x[3], &dg, &cg, &dug);
    grad[0] = w * r * (gate * dl + (1.0 - gate) * dg);
    metric[0] = cl ? 1.0 : 0.0;
    metric[1] = dul ? 1.0 : 0.0;
    metric[2] = cg ? 1.0 : 0.0;
    metric[3] = dug ? 1.0 : 0.0;
    metric[4] = -d;
    return m != 0 ? w * (gate * Ll + (1.0 - gate) * Lg) : 0.0;
  }
};

}  // namespace rk
