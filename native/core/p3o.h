// p3oLoss (Wu et al. 2023, "Pairwise Proximal Policy Optimization", arXiv 2310.00212;
// docs/papers/p3o.md): per pair of responses, the sequence-level ratios and the separate-clip or
// joint-clip pairwise PPO loss, with gradients wrt both responses' per-token log-probs. Per pair,
// shared by the CPU kernel (native/kernels/p3o.cc) and the CUDA one (cuda/p3o.cu).
//   S_i = sum_t m_i,t (l_i,t - l_old,i,t),  rho_i = exp(S_i)
//   separate: A_1 = (r_1 - r_2)/2 = -A_2,  L = sum_i -min(rho_i A_i, clip(rho_i, 1 -+ eps) A_i)
//   joint:    rho = rho_1 / rho_2 = exp(S_1 - S_2),  A = r_1 - r_2,  L = -min(rho A, clip(rho, 1 -+ eps) A)
//   the unclipped branch gives dL/dS = -rho A, the clipped one 0; dL/dl_i,t = dL/dS_i m_i,t / B
// The 'trlx' surrogate (the authors' code, thwu1/trlx accelerate_p3o_trainer.py p3o_loss; docs/papers/p3o.md):
//   L_i = sum_t m (l - l_ref),  O_i = sum_t m (l_old - l_ref),  q = r_1 - r_2 - beta (L_1 - L_2)  [/ std_B(q)]
//   w = clamp(exp((L_1 - O_1) + (L_2 - O_2)), 1/c, c)    (q and w detached)
//   joint: a = -q w (L_1 - L_2), b = -q w clamp(L_1 - L_2, O_1 - O_2 -+ eps), pair loss max(a, b)
//   token: W = -q w; per counted token max(W l, W clamp(l, l_old -+ eps)) (response 1) and with -W (response 2)
//   loss = sum / N with N = the counted tokens of both responses (token clip, or normalizeByTokens), else 2B
#pragma once
#include <cmath>
#include <cstdint>

#include "hd.h"

namespace rk {

struct P3oParams {
  int64_t T = 1;
  bool joint = false;
  double epsilon = 0.2;
  // the 'trlx' surrogate (joint is then unused: tokenwise selects the token clip)
  bool trlx = false;
  bool tokenwise = false;
  double beta = 0.05;        // kl_coef
  double weightClip = 10.0;  // cliprange_ratio c >= 1
  bool scaleByStd = false;   // scale_q
  bool normalizeByTokens = true;  // avg_tokenwise (joint clip only)
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
  const float* ref1 = nullptr;  // (B, T) each, the 'trlx' surrogate only
  const float* ref2 = nullptr;
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

// ---- the 'trlx' surrogate ------------------------------------------------------------------------

// Pair i's sums over its counted tokens: L_i (policy vs reference), O_i (old vs reference), the
// unscaled q and the count of counted tokens of both responses.
struct P3oTrlxStats {
  double L1, L2, O1, O2, q, count;
};

RK_HD P3oTrlxStats p3o_trlx_stats(const P3oInputs& in, const P3oParams& p, int64_t i) {
  const int64_t T = p.T, o = i * T;
  P3oTrlxStats s{0, 0, 0, 0, 0, 0};
  for (int64_t t = 0; t < T; ++t) {
    if (!in.mask1 || in.mask1[o + t]) {
      const double r = static_cast<double>(in.ref1[o + t]);
      s.L1 += static_cast<double>(in.logprobs1[o + t]) - r;
      s.O1 += static_cast<double>(in.old1[o + t]) - r;
      s.count += 1;
    }
    if (!in.mask2 || in.mask2[o + t]) {
      const double r = static_cast<double>(in.ref2[o + t]);
      s.L2 += static_cast<double>(in.logprobs2[o + t]) - r;
      s.O2 += static_cast<double>(in.old2[o + t]) - r;
      s.count += 1;
    }
  }
  s.q = static_cast<double>(in.rewards1[i]) - static_cast<double>(in.rewards2[i]) - p.beta * (s.L1 - s.L2);
  return s;
}

// The divisor of the summed pair losses: the counted tokens n (token clip, or normalizeByTokens), else 2B.
RK_HD double p3o_trlx_norm(const P3oParams& p, int64_t B, double n) {
  return (p.tokenwise || p.normalizeByTokens) ? n : 2.0 * static_cast<double>(B);
}

// The divisor of q: the unbiased std of the B values of q (mean and squared deviations summed by the
// caller in a fixed order), or 1 without scaleByStd.
RK_HD double p3o_trlx_qdiv(int64_t B, double sqdev) { return ::sqrt(sqdev / static_cast<double>(B - 1)); }

RK_HD double p3o_clamp(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

// Pair i: writes its gradient rows (already divided by N) and returns its summed loss (not divided by
// N) and its clipped count (0..1 joint, counted tokens token-wise). qdiv: q's divisor; N: the loss's.
RK_HD P3oPair p3o_trlx_pair(const P3oInputs& in, const P3oParams& p, int64_t i, const P3oTrlxStats& s, double qdiv, double N,
                            const P3oOutputs& out) {
  const int64_t T = p.T, o = i * T;
  const double q = s.q / qdiv;
  const double w = p3o_clamp(::exp((s.L1 - s.O1) + (s.L2 - s.O2)), 1.0 / p.weightClip, p.weightClip);
  const double W = -q * w;
  double loss = 0, clipped = 0;
  if (!p.tokenwise) {
    const double D = s.L1 - s.L2, od = s.O1 - s.O2;
    const double a = W * D, b = W * p3o_clamp(D, od - p.epsilon, od + p.epsilon);
    const bool c = b > a;
    loss = c ? b : a;
    clipped = c ? 1.0 : 0.0;
    const double g = c ? 0.0 : W / N;
    for (int64_t t = 0; t < T; ++t) {
      out.grad1[o + t] = (!in.mask1 || in.mask1[o + t]) ? static_cast<float>(g) : 0.0f;
      out.grad2[o + t] = (!in.mask2 || in.mask2[o + t]) ? static_cast<float>(-g) : 0.0f;
    }
    return P3oPair{loss, clipped};
  }
  const double g1 = W / N, g2 = -W / N;
  for (int64_t t = 0; t < T; ++t) {
    float o1 = 0.0f, o2 = 0.0f;
    if (!in.mask1 || in.mask1[o + t]) {
      const double x = static_cast<double>(in.logprobs1[o + t]), xo = static_cast<double>(in.old1[o + t]);
      const double a = W * x, b = W * p3o_clamp(x, xo - p.epsilon, xo + p.epsilon);
      const bool c = b > a;
      loss += c ? b : a;
      clipped += c ? 1.0 : 0.0;
      o1 = c ? 0.0f : static_cast<float>(g1);
    }
    if (!in.mask2 || in.mask2[o + t]) {
      const double x = static_cast<double>(in.logprobs2[o + t]), xo = static_cast<double>(in.old2[o + t]);
      const double a = -W * x, b = -W * p3o_clamp(x, xo - p.epsilon, xo + p.epsilon);
      const bool c = b > a;
      loss += c ? b : a;
      clipped += c ? 1.0 : 0.0;
      o2 = c ? 0.0f : static_cast<float>(g2);
    }
    out.grad1[o + t] = o1;
    out.grad2[o + t] = o2;
  }
  return P3oPair{loss, clipped};
}

// The scalars from the pair sums: the loss (sum / N; 0 when N = 0, every token masked) and the clipped
// share (of the B pairs for the joint clip, of the n counted tokens token-wise).
RK_HD void p3o_trlx_scalars(const P3oParams& p, int64_t B, double n, double loss, double clipped, double* scalars) {
  const double N = p3o_trlx_norm(p, B, n);
  scalars[0] = N > 0 ? loss / N : 0.0;
  scalars[1] = p.tokenwise ? (n > 0 ? clipped / n : 0.0) : clipped / static_cast<double>(B);
}

}  // namespace core
}  // namespace rk
