// Advantage estimators (docs/advantages.md): group-normalised outcome advantages, reward-model
// ensembles, and token-level returns. Small-data kernels: every statistic is accumulated in double
// in index order, so results never depend on the thread count.
//
// Group estimators. rewards: (n, K) row-major f32; groups are contiguous runs of group_size rows
// or given by group_ids (n) int32 in [0, num_groups). A NaN reward is missing (see
// docs/advantages.md): it is left out of every statistic and its sample's advantage is 0.
//   grpo:   A = (r - mean_g) / (std_g + eps)   (scale group; batch: batch std; none: no division)
//   rloo:   A_i = r_i - sum_{j != i} r_j / (c - 1) = c / (c - 1) (r_i - mean_g)
//   reinforce_pp_baseline: y = r - mean_g; A = (y - mean(y)) / sqrt(var(y) + 1e-8), var unbiased,
//           weighted by lengths when given (verl masked_whiten over tokens)
//   opo:    A = r - sum_i len_i r_i / sum_i len_i
//   passk:  best of group (first on ties): (r_max - r_second) / (std_g + eps); others 0
//   bnpo:   s = (r - lo) / (hi - lo), p_g = mean_g(s); alpha, beta by moments over the groups' p;
//           A = min(1 / BetaPDF(p_g; alpha, beta), 1e6) (s - p_g)
//   gpg:    A = alpha (r - mean_g) / f_norm, alpha = n / max(1, #{valid r != 0})
// A group with one valid sample has mean 0 and std 1 (verl; solo_self: mean = its value, TRL); one
// with none has mean = std = NaN.
// multi = normalize_then_sum (GDPO): z-score every reward k within its group (nanmean/nanstd,
// unbiased), weighted sum, z-score over the batch with eps; group_mean/std are then (G, K).
#pragma once
#include <cstdint>

#include "../core/advantages.h"  // the option codes, TokenMask and the formulas of both backends
#include "../core/token_advantages.h"  // tokenAdvantages and klRewards (verl core_algos)
#include "../core/reward_mix.h"  // gatedRewards, discountedCumsum, lagrangianMix
#include "types.h"

namespace rk {

struct GroupAdvantagesArgs {
  const float* rewards = nullptr;  // (n, K)
  int64_t n = 0;
  int64_t num_rewards = 1;               // K
  const double* reward_weights = nullptr;  // (K) or null for ones
  int64_t group_size = 0;                // > 0: contiguous groups; 0: group_ids
  const int32_t* group_ids = nullptr;    // (n) in [0, num_groups)
  int64_t num_groups = 0;
  AdvEstimator estimator = AdvEstimator::Grpo;
  AdvScale scale = AdvScale::Group;
  MultiReward multi = MultiReward::SumThenNormalize;
  double eps = 1e-4;
  const int32_t* lengths = nullptr;  // (n) >= 0: opo (required), reinforce_pp_baseline (optional)
  double reward_min = 0.0, reward_max = 1.0;  // bnpo affine scaling
  double f_norm = 1.0;     // gpg: A = alpha (r - mean_g) / f_norm
  bool solo_self = false;  // a group with one valid sample: baseline its own value (TRL, A = 0), not 0 (verl)
};

// Extra status codes of this family (beyond rk::Status::Code).
constexpr int kAdvStatusBnpoRange = 100;  // a bnpo group mean outside [0, 1]: index = group

// Writes advantages (n), group_mean and group_std (num_groups, or num_groups * K for
// normalize_then_sum) and *zero_std_groups (groups with >= 2 valid samples, all equal).
Status group_advantages(const GroupAdvantagesArgs& a, float* advantages, float* group_mean,
                        float* group_std, int64_t* zero_std_groups);

// Reward-model ensembles. rewards: (n, M) row-major. NaN entries are left out; a row of NaN gives NaN.
//   mean: mean_m r;  min: min_m r;  uwo: mean_m r - lambda * var_m r (population variance)
void ensemble_rewards(const float* rewards, int64_t n, int64_t m, EnsembleMethod method, double lambda,
                      float* out);

// Token level, padded (B, T) row-major; mask (B, T): rk::TokenMask (native/core/advantages.h), u8
// (nonzero = response token) or f32 weights.

// GAE with verl's masking (masked tokens are skipped: they neither end nor feed the recursion):
//   delta_t = r_t + gamma V_next - V_t,  A_t = delta_t + gamma lambda A_next,  returns = A + V
// over response tokens, V_next / A_next those of the next response token (0 after the last).
// Masked positions get A = returns = 0.
void gae(const float* values, const float* rewards, TokenMask mask, int64_t rows, int64_t cols,
         double gamma, double lambda, float* advantages, float* returns);

// G_t = r_t + gamma G_next over response tokens (= gae with V = 0, lambda = 1); masked -> 0.
void discounted_returns(const float* rewards, TokenMask mask, int64_t rows, int64_t cols, double gamma,
                        float* out);

// verl masked_whiten over all n elements with mask weights w: mean = S(w x) / S(w),
// var = S(w (x - mean)^2) / (S(w) - 1) (unbiased; population when S(w) <= 1),
// out = (x - mean) / sqrt(var + eps) (+ mean when !shift_mean); masked (w = 0) positions get 0.
// A weight that is negative or not finite gives BadIndex (index, nothing written).
Status masked_whiten(const float* values, TokenMask mask, int64_t n, bool shift_mean, bool unbiased,
                   double eps, float* out);

// tokenAdvantages (verl's token-level estimators; native/core/token_advantages.h). rewards, mask
// (data may be null: every token counts), advantages, returns: (rows, cols). remax: baselines (rows).
// otb / tir_otb: logprobs, sum_pi_sq (rows, cols), is_weights (rows, cols) or null, groups as
// group_size > 0 or group_ids (rows) in [0, num_groups). A bad f32 mask weight gives BadIndex
// (reinforce_plus_plus whitens with it).
struct TokenAdvantagesArgs {
  TokenEstimator estimator = TokenEstimator::ReinforcePP;
  const float* rewards = nullptr;
  TokenMask mask;
  int64_t rows = 0, cols = 1;
  double gamma = 1.0;
  const float* baselines = nullptr;
  const float* logprobs = nullptr;
  const float* sum_pi_sq = nullptr;
  const float* is_weights = nullptr;
  int64_t group_size = 0;
  const int32_t* group_ids = nullptr;
  int64_t num_groups = 0;
  bool zero_tail = false;
  double eps = 1e-8;
};
Status token_advantages(const TokenAdvantagesArgs& a, float* advantages, float* returns);

// klRewards: rewards = scores - beta * kl_t w_t per token, *kl_mean = the mean over rows of each row's
// masked mean of the masked kl (verl apply_kl_penalty's current_kl; 0 for no rows).
// A bad f32 mask weight gives BadIndex (nothing written).
Status kl_rewards(const float* scores, const float* logprobs, const float* ref, TokenMask mask, int64_t rows,
                  int64_t cols, KlRewardEstimator est, double beta, float* rewards, double* kl_mean);

// Reward mixing (native/core/reward_mix.h): G-RA gated accumulation per row (high: rows, low and
// mask: rows x cols, out: rows), the masked discounted cumulative sum (reverse, or its adjoint),
// and the Lagrangian mix of K advantages (adv: K x n, kl and out: n, xi: K; grad_mixed (n) and
// grad_xi (K) both null or both given).
void gated_rewards(const float* high, const float* low, TokenMask mask, int64_t rows, int64_t cols, double threshold,
                   float* out);
void discounted_cumsum(const float* x, TokenMask mask, int64_t rows, int64_t cols, double gamma, bool adjoint,
                       float* out);
void lagrangian_mix(const float* adv, const float* kl, const float* xi, const float* grad_mixed, int64_t k, int64_t n,
                    float* out, float* grad_xi);

}  // namespace rk
