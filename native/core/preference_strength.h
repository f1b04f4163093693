// preferenceStrengthLoss (Secrets of RLHF II, docs/papers/secrets-rlhf-2.md): per pair, the mean and
// std of the margins of M reward models, and the adaptive-margin Bradley-Terry loss of the trained
// reward model with label flipping and label smoothing. Per pair, shared by the CPU kernel
// (native/kernels/preference_strength.cc) and the CUDA one (cuda/preference_strength.cu).
//   d_m = ec[m, i] - er[m, i] (m < M, model-major (M, P)),  mu = mean_m d_m,  sd = sqrt(sum (d - mu)^2 / (M - corr))
//   s = -1 where flip and mu < 0 (the pair's label is flipped), else 1
//   z = s (r_c - r_r) - [adaptive] s mu,  L = (1 - e) softplus(-z) + e softplus(z)
//   dL/dr_c = s ((1 - e)(-s(-z)) + e s(z)) / P = -dL/dr_r
#pragma once
#include <cmath>
#include <cstdint>

#include "hd.h"
#include "preference.h"  // core::softplus, core::sigmoid

namespace rk {

struct StrengthParams {
  double label_smoothing = 0;  // e in [0, 0.5)
  double correction = 1;       // std divisor M - correction (1: Bessel, torch.std's default)
  bool adaptive_margin = true;
  bool flip = true;
};

struct StrengthInputs {
  const float* chosen = nullptr;            // (P) the trained reward model's scores
  const float* rejected = nullptr;          // (P)
  const float* ensemble_chosen = nullptr;   // (M, P)
  const float* ensemble_rejected = nullptr; // (M, P)
  int64_t P = 0, M = 0;
};

struct StrengthOutputs {
  float* losses = nullptr;  // (P) each
  float* grad_chosen = nullptr;
  float* grad_rejected = nullptr;
  float* mean = nullptr;
  float* std = nullptr;
};

namespace core {

struct StrengthPair {
  double loss;
  bool flipped;
};

// Pair i: writes its five outputs and returns its loss (not divided by P) and whether it was flipped.
RK_HD StrengthPair strength_pair(const StrengthInputs& in, const StrengthParams& p, int64_t i, const StrengthOutputs& out) {
  const int64_t P = in.P, M = in.M;
  double s = 0;
  for (int64_t m = 0; m < M; ++m)
    s += static_cast<double>(in.ensemble_chosen[m * P + i]) - static_cast<double>(in.ensemble_rejected[m * P + i]);
  const double mu = s / static_cast<double>(M);
  double q = 0;
  for (int64_t m = 0; m < M; ++m) {
    const double d = static_cast<double>(in.ensemble_chosen[m * P + i]) - static_cast<double>(in.ensemble_rejected[m * P + i]) - mu;
    q += d * d;
  }
  const double den = static_cast<double>(M) - p.correction;
  const double sd = den > 0 ? ::sqrt(q / den) : 0.0;
  const bool flipped = p.flip && mu < 0;
  const double sg = flipped ? -1.0 : 1.0;
  const double z = sg * (static_cast<double>(in.chosen[i]) - static_cast<double>(in.rejected[i])) - (p.adaptive_margin ? sg * mu : 0.0);
  const double e = p.label_smoothing;
  const double loss = (1.0 - e) * softplus(-z) + (e > 0 ? e * softplus(z) : 0.0);
  const double dz = -(1.0 - e) * sigmoid(-z) + e * sigmoid(z);
  const double g = sg * dz / static_cast<double>(P);
  out.losses[i] = static_cast<float>(loss);
  out.grad_chosen[i] = static_cast<float>(g);
  out.grad_rejected[i] = static_cast<float>(-g);
  out.mean[i] = static_cast<float>(mu);
  out.std[i] = static_cast<float>(sd);
  return StrengthPair{loss, flipped};
}

}  // namespace core
}  // namespace rk
