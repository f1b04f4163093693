// d3poLoss: D3PO, the stepwise clipped DPO over denoising steps (Yang et al. 2024, "Using Human
// Feedback to Fine-tune Diffusion Models without Any Reward Model", arXiv 2311.13231; code
// yk7333/d3po/scripts/train.py, docs/papers/d3po.md), with its gradients wrt both samples' per-step
// log-probs. Every array: (B, T) pairs by denoising steps; preference0/1 (B) or (B, T).
//   c_i,t = clamp(l_i,t - ref_i,t, log(1 - eps), log(1 + eps))   (= log clamp(exp(.), 1 - eps, 1 + eps))
//   x_t = beta (h0 c_0,t + h1 c_1,t),  L = sum_t m_t softplus(-x_t) / sum_(b,t) m   (a mean over steps and pairs)
//   dL/dl_i,t = -m_t s(-x_t) beta h_i [c_i,t follows d_i,t] / sum m
//   metrics (masked means): clipFraction [either ratio clamped], accuracy [x_t > 0]
#pragma once
#include <cmath>

#include "../preference.h"
#include "../seq_op.h"

namespace rk {

struct D3poLossOp {
  struct Params {
    double seqLen, beta, epsilon;
  };
  static constexpr int kInputs = 6;  // logprobs0, logprobs1, refLogprobs0, refLogprobs1, preference0, preference1
  static constexpr int kGrads = 2;   // d/dlogprobs0, d/dlogprobs1
  static constexpr int kStats = 0;
  static constexpr int kMetrics = 2;  // clipFraction, accuracy

  // clamp(d, lo, hi) with lo = log(1 - eps), hi = log(1 + eps), and whether d is inside (derivative 1, else 0).
  RK_HD static double clipped(double lo, double hi, double d, bool* inside) {
    *inside = d >= lo && d <= hi;
    return d < lo ? lo : (d > hi ? hi : d);
  }
  RK_HD static double factor(const Params&, double, double total_mask, int64_t, int64_t) {
    return total_mask > 0 ? 1.0 / total_mask : 0.0;
  }
  RK_HD static void stat(const Params&, const double*, double, double*) {}
  RK_HD static double row(const Params&, double*, double, double) { return 0.0; }
  RK_HD static double token(const Params& p, const double* x, double m, double w, const double*, double, double,
                            double* grad, double* metric) {
    bool in0, in1;
    const double lo = ::log1p(-p.epsilon), hi = ::log1p(p.epsilon);
    const double c0 = clipped(lo, hi, x[0] - x[2], &in0);
    const double c1 = clipped(lo, hi, x[1] - x[3], &in1);
    const double h0 = x[4], h1 = x[5];
    const double z = p.beta * (h0 * c0 + h1 * c1);
    const double g = -w * core::sigmoid(-z) * p.beta;  // dL/dz * beta, weighted
    grad[0] = in0 ? g * h0 : 0.0;
    grad[1] = in1 ? g * h1 : 0.0;
    metric[0] = (!in0 || !in1) ? 1.0 : 0.0;
    metric[1] = z > 0 ? 1.0 : 0.0;
    return m != 0 ? w * core::softplus(-z) : 0.0;
  }
};

}  // namespace rk
