// p3oLoss (Wu et al. 2023, "Pairwise Proximal Policy Optimization", arXiv 2310.00212;
// docs/papers/p3o.md): per pair of responses, the sequence-level ratios and the separate-clip or
// joint-clip pairwise PPO loss, with gradients wrt both responses' per-token log-probs. Per pair,
// shared by the CPU kernel (native/kernels/p3o.cc) and the CUDA one (cuda/p3o.cu).
//   S_i = sum_t m_i,t (l_i,t - l_old,i,t),  rho_i = exp(S_i)
//   separate: A_1 = (r_1 - r_2)/2 = -A_2,  L = sum_i -min(rho_i A_i, clip(rho_i, 1 -+ eps) A_i)
//   joint:    rho = rho_1 / rho_2 = exp(S_1 - S_2),  A = r_1 - r_2,  L = -min(rho A, clip(rho, 1 -+ eps) A)
//   the unclipped branch gives dL/dS = -rho A, the clipped one 0; dL/dl_i,t = dL/dS_i m_i,t / B
#pragma once
#include <cmath>
#include <cstdint>

#include "hd.h"

namespace rk {

struct P3oParams {
  int64_t T = 1;
  bool joint = false;
  double epsilon = 0.2;
};

struct P3oInputs {
  const float* logprobs1 = nullptr;  // (B, T) each
  const float* logprobs2 = nullptr;
  const float* old1 = nullptr;
  const float* old2 = nullptr;
  const float* rewards1 = nullptr;  // (B) each
  const float* rewards2 = nullptr;
  const uint8_t* mask1 = nullptr;  // (B, T) or null (every token counts)
  const uint8_t* mask2 = nullptr;
  int64_t B = 0;
};

struct P3oOutputs {
  float* grad1 = nullptr;  // (B, T) each
  float* grad2 = nullptr;
};

namespace core {

struct P3oPair {
  double loss;
  double clipped;  // clipped ratios in this pair (0..2 separate, 0..1 joint)
};

// -min(rho A, clip(rho) A) and its derivative wrt log rho; *clipped: the clipped branch is taken.
RK_HD double p3o_clip_term(double rho, double A, double eps, double* dlog, bool* clipped) {
  if (A == 0) {  // no signal: 0 (also where rho overflows, inf * 0)
    *dlog = 0;
    *clipped = false;
    return 0;
  }
  const double c = rho < 1.0 - eps ? 1.0 - eps : (rho > 1.0 + eps ? 1.0 + eps : rho);
  const double u = rho * A, v = c * A;
  *clipped = v < u;
  *dlog = *clipped ? 0.0 : -u;
  return *clipped ? -v : -u;
}

// Pair i: writes its gradient rows and returns its loss (not divided by B) and its clipped count.
RK_HD P3oPair p3o_pair(const P3oInputs& in, const P3oParams& p, int64_t i, const P3oOutputs& out) {
  const int64_t T = p.T, o = i * T;
  double s1 = 0, s2 = 0;
  for (int64_t t = 0; t < T; ++t) {
    if (!in.mask1 || in.mask1[o + t]) s1 += static_cast<double>(in.logprobs1[o + t]) - static_cast<double>(in.old1[o + t]);
    if (!in.mask2 || in.mask2[o + t]) s2 += static_cast<double>(in.logprobs2[o + t]) - static_cast<double>(in.old2[o + t]);
  }
  const double dr = static_cast<double>(in.rewards1[i]) - static_cast<double>(in.rewards2[i]);
  double loss, g1, g2, clipped;
  if (p.joint) {
    double d;
    bool c;
    loss = p3o_clip_term(::exp(s1 - s2), dr, p.epsilon, &d, &c);
    g1 = d;
    g2 = -d;
    clipped = c ? 1.0 : 0.0;
  } else {
    bool c1, c2;
    loss = p3o_clip_term(::exp(s1), 0.5 * dr, p.epsilon, &g1, &c1) + p3o_clip_term(::exp(s2), -0.5 * dr, p.epsilon, &g2, &c2);
    clipped = (c1 ? 1.0 : 0.0) + (c2 ? 1.0 : 0.0);
  }
  const double inv = 1.0 / static_cast<double>(in.B);
  g1 *= inv;
  g2 *= inv;
  for (int64_t t = 0; t < T; ++t) {
    out.grad1[o + t] = (!in.mask1 || in.mask1[o + t]) ? static_cast<float>(g1) : 0.0f;
    out.grad2[o + t] = (!in.mask2 || in.mask2[o + t]) ? static_cast<float>(g2) : 0.0f;
  }
  return P3oPair{loss, clipped};
}

}  // namespace core
}  // namespace rk
