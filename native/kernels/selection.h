// Batch-wide selections and the losses they switch (docs/policy.md): verl's clip_cov and kl_cov policy
// losses, and TRL's high-entropy token mask. The formulas: native/core/selection.h. Each is one global
// order statistic (a top-k by covariance, a random k-subset by counter-based keys, a quantile), so they
// run single-threaded over the batch in index order: the results do not depend on the thread count.
#pragma once
#include <cstdint>

#include "../core/policy.h"  // MaskKind, LossAggregation, core::policy_row_factor
#include "types.h"

namespace rk {

enum class CovMode : int { ClipCov = 0, KlCov = 1 };

struct CovPolicyLossArgs {
  const float* logprobs = nullptr;      // (B, T)
  const float* old_logprobs = nullptr;  // (B, T)
  const float* advantages = nullptr;    // (B) or (B, T)
  bool advantages_per_token = false;
  const void* mask = nullptr;  // (B, T) per mask_kind
  MaskKind mask_kind = MaskKind::None;
  int64_t B = 0, T = 0;
  CovMode mode = CovMode::ClipCov;
  double eps_low = 0.2, eps_high = 0.2;  // clip_cov: the ratio clip
  double ratio = 2e-4;                   // clip_cov_ratio / kl_cov_ratio
  double cov_lb = 1.0, cov_ub = 5.0;     // clip_cov: the covariance window
  double kl_coef = 1.0;                  // kl_cov: ppo_kl_coef
  uint64_t seed = 0;                     // clip_cov: the key seed (core::selection_key)
  LossAggregation aggregation = LossAggregation::TokenMean;
  double normalizer = 0;
};

struct CovPolicyLossResult {
  double loss = 0, clip_fraction = 0, ppo_kl = 0, selected = 0, candidates = 0, token_count = 0;
};

// Writes grad (B, T) and selected (B, T) (1 where the token's loss was switched). A bad f32 mask
// weight is Status::BadIndex.
Status cov_policy_loss(const CovPolicyLossArgs& a, float* grad, uint8_t* selected, CovPolicyLossResult* out);

// TRL get_high_entropy_mask: out[i] = 1 where mask[i] != 0 and entropy[i] >= the (1 - top_quantile)
// quantile of the entropies of the tokens with mask != 0 (torch.quantile, linear, in f32). No token:
// all 0, threshold NaN. A NaN entropy among them: threshold NaN, all 0 (torch.quantile propagates it).
Status high_entropy_mask(const float* entropy, int64_t n, const void* mask, MaskKind mask_kind, double top_quantile,
                         uint8_t* out, double* threshold, double* count);

}  // namespace rk
