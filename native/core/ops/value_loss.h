// valueLoss: PPO's clipped value-function loss, with its gradient with respect to the predicted
// values (verl compute_value_loss at 012be9d; TRL's PPO trainer). Shapes (B, T), mask (B, T).
//   v' = clip(v, v_old - c, v_old + c),  L_t = max((v - R)^2, (v' - R)^2)
//   loss = 0.5 * sum_t w_t L_t  (w from the aggregation: verl's agg_loss)
//   dloss/dv_t = w_t (v - R) where the unclipped square is the larger, 0 where the clipped one is,
//                half that at a tie with the clip active (torch.maximum splits a tie's gradient)
//   clipFraction = masked mean of [(v' - R)^2 > (v - R)^2]
#pragma once
#include "../seq_op.h"

namespace rk {

struct ValueLossOp {
  struct Params {
    double seqLen, aggregation, cliprangeValue, normalizer;
  };
  static constexpr int kInputs = 3;  // values (predicted), returns, oldValues
  static constexpr int kGrads = 1;   // d/dvalues
  static constexpr int kStats = 0;
  static constexpr int kMetrics = 1;  // clipFraction

  RK_HD static double factor(const Params& p, double row_mask, double total_mask, int64_t B, int64_t T) {
    return core::policy_row_factor(static_cast<LossAggregation>(static_cast<int>(p.aggregation)), p.normalizer, row_mask,
                                   total_mask, B, T);
  }
  RK_HD static void stat(const Params&, const double*, double, double*) {}
  RK_HD static double row(const Params&, double*, double, double) { return 0.0; }
  RK_HD static double token(const Params& p, const double* x, double m, double w, const double*, double, double,
                            double* grad, double* metric) {
    const double v = x[0], R = x[1], old = x[2], c = p.cliprangeValue;
    const double lo = old - c, hi = old + c;
    const double vc = v < lo ? lo : (v > hi ? hi : v);
    const double e1 = v - R, e2 = vc - R;
    const double l1 = e1 * e1, l2 = e2 * e2;
    const bool clipped = vc != v;
    metric[0] = l2 > l1 ? 1.0 : 0.0;
    grad[0] = l2 > l1 ? 0.0 : (l2 == l1 && clipped ? 0.5 * w * e1 : w * e1);
    return m != 0 ? 0.5 * w * (l2 > l1 ? l2 : l1) : 0.0;
  }
};

}  // namespace rk
