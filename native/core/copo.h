// copoAdvantages (COPO, Han et al. 2025, arXiv 2508.04138; hijih/copo-code verl/trainer/ppo/core_algos.py
// compute_grpo_outcome_advantage_with_global, compute_score_global and the gates of
// compute_policy_loss_with_global at c15c75f; docs/papers/copo.md). The formulas, shared by the CPU
// kernel (native/kernels/copo.cc) and the CUDA one (cuda/copo.cu); every sum in double, in member order.
//   group q with members i (G of them, in sample order), answers a_i, rewards r_i:
//   H_q = -sum_c p_c log2 p_c over the histogram of the answers (bits), terms in first-occurrence order
//   R_q = mean_i r_i * (1 - lambda_G H_q),  lambda_G = (1 - 1/G) / log2 G  (0 for G = 1; factor 1 when
//         scaleByConsistency is off: the code's reward_coef_flg)
//   local (GRPO, verl): (r_i - mean_q) / (std_q + eps), unbiased std; a group of one: mean 0, std 1
//   global: (R_q - mean_Q R) / (std_Q R + eps) over the groups, unbiased std (0 with one group)
//   gate: s = sigmoid(k (H_q - b)) times [A_local != 0] or [r_i != 0] as the mode says
#pragma once
#include <cmath>
#include <cstdint>

#include "hd.h"

namespace rk {

// The code's global_flg values (and the two of its earlier commit 095afa5), in this order.
enum class CopoGate : int {
  OnlySoft = 0,        // w = s
  SoftWithForced = 1,  // w = s [A_local != 0]
  SoftWithZero = 2,    // w = s [r != 0]
  OnlyForced = 3,      // w = [A_local != 0]
  OnlyZero = 4,        // w = [r != 0]
  NoGlobal = 5,        // w = 1
  OnlyGlobal = 6,      // w = 0
};
constexpr int kCopoGateCount = 7;
static_assert(static_cast<int>(CopoGate::OnlyGlobal) == kCopoGateCount - 1, "CopoGate codes");

struct CopoArgs {
  const int32_t* answers = nullptr;  // (n)
  const float* rewards = nullptr;    // (n)
  const int32_t* order = nullptr;    // (n) sample indices grouped, each group in sample order; null: contiguous
  const int32_t* offsets = nullptr;  // (num_groups + 1) with order
  int64_t n = 0, num_groups = 0, group_size = 0;
  double eps = 1e-6, k = 20, b = 0.5;
  bool consistency = true, scale_std = true;
  CopoGate gate = CopoGate::OnlySoft;
};

namespace core {

RK_HD int64_t copo_begin(const CopoArgs& a, int64_t g) { return a.order ? a.offsets[g] : g * a.group_size; }
RK_HD int64_t copo_end(const CopoArgs& a, int64_t g) { return a.order ? a.offsets[g + 1] : (g + 1) * a.group_size; }
// The sample index at position j of the grouped order.
RK_HD int64_t copo_at(const CopoArgs& a, int64_t j) { return a.order ? a.order[j] : j; }

// Entropy in bits of the answers of members [b, e): each distinct answer's term at its first occurrence.
RK_HD double copo_entropy(const CopoArgs& a, int64_t b, int64_t e) {
  const double G = static_cast<double>(e - b);
  double h = 0;
  for (int64_t j = b; j < e; ++j) {
    const int32_t v = a.answers[copo_at(a, j)];
    bool first = true;
    for (int64_t q = b; q < j && first; ++q) first = a.answers[copo_at(a, q)] != v;
    if (!first) continue;
    int64_t c = 0;
    for (int64_t q = j; q < e; ++q) c += a.answers[copo_at(a, q)] == v ? 1 : 0;
    const double p = static_cast<double>(c) / G;
    h -= p * log2(p);
  }
  return h == 0 ? 0.0 : h;  // no -0
}

// lambda_G = (1 - 1/G) / log2 G, so that 1 - lambda H >= 1/G; 0 for a group of one.
RK_HD double copo_lambda(int64_t G) {
  if (G < 2) return 0.0;
  const double g = static_cast<double>(G);
  return (1.0 - 1.0 / g) / log2(g);
}

// Group g: writes its entropy and global reward (f32 outputs and the doubles *H, *R) and the local
// advantages of its members.
RK_HD void copo_group(const CopoArgs& a, int64_t g, float* entropy, float* global_reward, float* local_adv, double* H,
                      double* R) {
  const int64_t b = copo_begin(a, g), e = copo_end(a, g), G = e - b;
  double s = 0;
  for (int64_t j = b; j < e; ++j) s += static_cast<double>(a.rewards[copo_at(a, j)]);
  const double mean = G > 0 ? s / static_cast<double>(G) : 0.0;
  const double h = G > 0 ? copo_entropy(a, b, e) : 0.0;
  const double r = a.consistency ? mean * (1.0 - copo_lambda(G) * h) : mean;
  *H = h;
  *R = r;
  entropy[g] = static_cast<float>(h);
  global_reward[g] = static_cast<float>(r);
  double base = 0, sd = 1;  // a group of one: mean 0, std 1 (verl)
  if (G > 1) {
    double ss = 0;
    for (int64_t j = b; j < e; ++j) {
      const double d = static_cast<double>(a.rewards[copo_at(a, j)]) - mean;
      ss += d * d;
    }
    base = mean;
    sd = sqrt(ss / static_cast<double>(G - 1));
  }
  for (int64_t j = b; j < e; ++j) {
    const int64_t i = copo_at(a, j);
    const double d = static_cast<double>(a.rewards[i]) - base;
    local_adv[i] = static_cast<float>(a.scale_std ? d / (sd + a.eps) : d);
  }
}

// Mean and unbiased std of the num_groups global rewards R (std 0 with fewer than two groups), in order.
RK_HD void copo_batch_stats(const double* R, int64_t num_groups, double* mean, double* sd) {
  double s = 0;
  for (int64_t g = 0; g < num_groups; ++g) s += R[g];
  const double m = num_groups > 0 ? s / static_cast<double>(num_groups) : 0.0;
  double ss = 0;
  for (int64_t g = 0; g < num_groups; ++g) ss += (R[g] - m) * (R[g] - m);
  *mean = m;
  *sd = num_groups > 1 ? sqrt(ss / static_cast<double>(num_groups - 1)) : 0.0;
}

RK_HD double copo_soft_gate(const CopoArgs& a, double H) { return 1.0 / (1.0 + exp(-a.k * (H - a.b))); }

// Group g's global advantages and gates (after copo_group for every group and copo_batch_stats).
RK_HD void copo_group_out(const CopoArgs& a, int64_t g, double H, double R, double mean, double sd, const float* local_adv,
                          float* global_adv, float* gates) {
  const double d = R - mean;
  const float ag = static_cast<float>(a.scale_std ? d / (sd + a.eps) : d);
  const double s = copo_soft_gate(a, H);
  for (int64_t j = copo_begin(a, g), e = copo_end(a, g); j < e; ++j) {
    const int64_t i = copo_at(a, j);
    const bool forced = local_adv[i] != 0.0f, nonzero = a.rewards[i] != 0.0f;
    double w;
    switch (a.gate) {
      case CopoGate::SoftWithForced: w = forced ? s : 0.0; break;
      case CopoGate::SoftWithZero: w = nonzero ? s : 0.0; break;
      case CopoGate::OnlyForced: w = forced ? 1.0 : 0.0; break;
      case CopoGate::OnlyZero: w = nonzero ? 1.0 : 0.0; break;
      case CopoGate::NoGlobal: w = 1.0; break;
      case CopoGate::OnlyGlobal: w = 0.0; break;
      default: w = s; break;
    }
    global_adv[i] = ag;
    gates[i] = static_cast<float>(w);
  }
}

}  // namespace core
}  // namespace rk
