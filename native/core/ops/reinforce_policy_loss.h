// reinforcePolicyLoss: verl's REINFORCE policy-gradient loss (compute_policy_loss_reinforce at
// b178a3c, reached through the "bypass_mode" policy loss with rollout_correction.loss_type
// "reinforce"), with its gradient with respect to the log-probs. Shapes (B, T); advantages (B) or (B, T).
//   L_t = -A_t l_t                       (no ratio, no clipping)
//   loss = sum_t w_t L_t                 (w from the aggregation: verl's agg_loss, default seq-mean-token-sum)
//   dloss/dl_t = -w_t A_t
//   ppoKl = masked mean of rolloutLogprobs - logprobs (verl actor/ppo_kl)
#pragma once
#include "../seq_op.h"

namespace rk {

struct ReinforcePolicyLossOp {
  struct Params {
    double seqLen, aggregation, normalizer;
  };
  static constexpr int kInputs = 3;  // logprobs, rolloutLogprobs, advantages
  static constexpr int kGrads = 1;   // d/dlogprobs
  static constexpr int kStats = 0;
  static constexpr int kMetrics = 1;  // ppoKl

  RK_HD static double factor(const Params& p, double row_mask, double total_mask, int64_t B, int64_t T) {
    return core::policy_row_factor(static_cast<LossAggregation>(static_cast<int>(p.aggregation)), p.normalizer, row_mask,
                                   total_mask, B, T);
  }
  RK_HD static void stat(const Params&, const double*, double, double*) {}
  RK_HD static double row(const Params&, double*, double, double) { return 0.0; }
  RK_HD static double token(const Params&, const double* x, double m, double w, const double*, double, double,
                            double* grad, double* metric) {
    const double lp = x[0], rollout = x[1], A = x[2];
    grad[0] = -w * A;
    metric[0] = rollout - lp;
    return m != 0 ? -w * A * lp : 0.0;
  }
};

}  // namespace rk
