// vespoPolicyLoss: VESPO, variational sequence-level soft policy optimisation (TRL GRPOTrainer
// loss_type "vespo", get_gamma_weights, at f2cd577; arXiv 2602.10693), with its gradient with respect
// to the log-probs. logprobs, oldLogprobs, mask: (B, T); advantages (B) or (B, T).
//   log w_i = clamp(sum_t m clamp(l - l_old, -20, 20), ln 1e-8, 20),  w_i = exp(log w_i)
//   (k, lambda) = (kPos, lambdaPos) where A >= 0, else (kNeg, lambdaNeg); lambda = max(lambda, 1e-4)
//   phi = exp(lambda + k log w - lambda w)  (phi(1) = 1; NaN and +-inf become 0), a constant
//   (detached: it only scales the gradient)
//   L_t = -phi A_t l_t,  loss = sum_t w_t L_t (w from the aggregation, default token-mean: TRL divides
//   by the batch's token count)
//   dloss/dl_t = -w_t phi A_t
//   metrics (masked means): phi, ppoKl = l_old - l
#pragma once
#include <cmath>

#include "../seq_op.h"

namespace rk {

struct VespoPolicyLossOp {
  struct Params {
    double seqLen, kPos, lambdaPos, kNeg, lambdaNeg, aggregation, normalizer;
  };
  static constexpr int kInputs = 3;  // logprobs, oldLogprobs, advantages
  static constexpr int kGrads = 1;   // d/dlogprobs
  static constexpr int kStats = 3;   // sum m clamp(d); row() leaves log w, w
  static constexpr int kMetrics = 2;  // phi, ppoKl

  RK_HD static double factor(const Params& p, double row_mask, double total_mask, int64_t B, int64_t T) {
    return core::policy_row_factor(static_cast<LossAggregation>(static_cast<int>(p.aggregation)), p.normalizer, row_mask,
                                   total_mask, B, T);
  }
  RK_HD static void stat(const Params&, const double* x, double m, double* st) {
    const double d = x[0] - x[1];
    st[0] += m * (d < -20.0 ? -20.0 : (d > 20.0 ? 20.0 : d));
  }
  RK_HD static double row(const Params&, double* st, double, double) {
    const double lo = -18.420680743952367;  // ln 1e-8
    const double lw = st[0] < lo ? lo : (st[0] > 20.0 ? 20.0 : st[0]);
    st[1] = lw;
    st[2] = exp(lw);
    return 0.0;
  }
  // phi of the row for an advantage A.
  RK_HD static double phi(const Params& p, const double* st, double A) {
    const bool pos = A >= 0;
    const double k = pos ? p.kPos : p.kNeg;
    double lam = pos ? p.lambdaPos : p.lambdaNeg;
    lam = lam < 1e-4 ? 1e-4 : lam;
    const double f = exp(lam + k * st[1] - lam * st[2]);
    return f == f && f - f == 0 ? f : 0.0;
  }
  RK_HD static double token(const Params& p, const double* x, double m, double w, const double* st, double, double,
                            double* grad, double* metric) {
    const double lp = x[0], A = x[2];
    const double f = phi(p, st, A);
    grad[0] = -w * f * A;
    metric[0] = f;
    metric[1] = x[1] - lp;
    return m != 0 ? -w * f * A * lp : 0.0;
  }
};

}  // namespace rk
