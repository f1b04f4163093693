// Token-level advantage estimators of verl's core_algos.py (reinforce_plus_plus, remax,
// optimal_token_baseline and its multi-turn variant) and the KL penalty in the token reward
// (verl apply_kl_penalty / compute_rewards), written once for the C++ kernels
// (native/kernels/advantages.cc) and the CUDA kernels (cuda/advantages.cu). Formulas in
// docs/advantages.md. All in double, one row (or one group's members) in index order.
//
// Every array is padded (B, T) row-major; the mask is an rk::TokenMask whose data may be null
// (every token counts, weight 1).
#pragma once
#include <cmath>
#include <cstdint>

#include "advantages.h"

namespace rk {

// The codes are part of the contract with the TypeScript facade (lib/advantages/token-advantages.ts).
enum class TokenEstimator : int { ReinforcePP = 0, Remax = 1, Otb = 2, TirOtb = 3 };
constexpr int kTokenEstimatorCount = 4;
static_assert(static_cast<int>(TokenEstimator::TirOtb) == kTokenEstimatorCount - 1, "TokenEstimator codes");

// klRewards' estimators: the same names and codes as policyLoss' KlEstimator (native/core/policy.h).
enum class KlRewardEstimator : int { K1 = 0, K2 = 1, K3 = 2, Abs = 3, K3Plus = 4 };
constexpr int kKlRewardEstimatorCount = 5;

namespace core {

constexpr double kKlMeanEps = 1e-8;  // verl masked_mean's denominator guard

// reinforce_plus_plus' whitened advantage of one token: masked_whiten's value times the weight.
RK_HD float rpp_token_out(float x, double w, const WhitenStats& s) {
  return w == 0 ? 0.0f : static_cast<float>(((static_cast<double>(x) - s.mean) * s.inv + s.add) * w);
}

// A token's mask weight, 1 when there is no mask.
RK_HD double tok_w(const TokenMask& m, int64_t i) { return m.data ? mask_weight(m, i) : 1.0; }

// REINFORCE++ (verl compute_reinforce_plus_plus_outcome_advantage) returns of row b, backwards:
// G = r_t + gamma G; ret_t = G; then G *= w_t (the reset after a masked token: the recursion does not
// cross it). The advantages are then masked_whiten(ret, mask) * w (the kernels' whitening pass).
RK_HD void rpp_returns_row(const float* rewards, const TokenMask& mask, int64_t b, int64_t cols, double gamma,
                           float* ret) {
  double g = 0;
  for (int64_t t = cols - 1; t >= 0; --t) {
    const int64_t i = b * cols + t;
    g = rewards[i] + gamma * g;
    ret[i] = static_cast<float>(g);
    g *= tok_w(mask, i);
  }
}

// The reward-to-go of row b, sum_{s >= t} r_s w_s (verl: (r * mask).flip.cumsum.flip), into ret
// (f32, may be null) and retd (double, may be null).
RK_HD void suffix_returns_row(const float* rewards, const TokenMask& mask, int64_t b, int64_t cols, float* ret,
                              double* retd) {
  double g = 0;
  for (int64_t t = cols - 1; t >= 0; --t) {
    const int64_t i = b * cols + t;
    g += static_cast<double>(rewards[i]) * tok_w(mask, i);
    if (ret) ret[i] = static_cast<float>(g);
    if (retd) retd[t] = g;
  }
}

// ReMax (verl compute_remax_outcome_advantage) row b: returns as suffix_returns_row, advantage
// ret_t - baseline_b w_t.
RK_HD void remax_row(const float* rewards, const TokenMask& mask, const float* baselines, int64_t b, int64_t cols,
                     float* adv, float* ret) {
  const double base = baselines[b];
  double g = 0;
  for (int64_t t = cols - 1; t >= 0; --t) {
    const int64_t i = b * cols + t;
    const double w = tok_w(mask, i);
    g += static_cast<double>(rewards[i]) * w;
    ret[i] = static_cast<float>(g);
    adv[i] = static_cast<float>(g - base * w);
  }
}

// Optimal token baseline (verl compute_optimal_token_baseline_advantage and its multi-turn variant):
// the per-token path-variance proxy w_t = (1 - 2 exp(logprob_t) + sum_pi_squared_t) * rho_t^2
// (rho = rollout IS weight, 1 when absent), cumulated over the row with the mask: W_t = sum_{j<=t} w_j m_j.
struct OtbInputs {
  const float* rewards;
  TokenMask mask;
  const float* logprobs;
  const float* sum_pi_sq;
  const float* is_weights;  // may be null
  int64_t cols;
  bool tir;  // multi-turn: the baseline runs over the k-th response token, not over the column
};

RK_HD double otb_token_w(const OtbInputs& in, int64_t i) {
  double w = 1.0 - 2.0 * ::exp(static_cast<double>(in.logprobs[i])) + static_cast<double>(in.sum_pi_sq[i]);
  if (in.is_weights) {
    const double rho = in.is_weights[i];
    w *= rho * rho;
  }
  return w;
}

// A row's response length: its tokens with a nonzero weight.
RK_HD int64_t otb_length(const TokenMask& m, int64_t b, int64_t cols) {
  int64_t L = 0;
  for (int64_t t = 0; t < cols; ++t) L += tok_w(m, b * cols + t) != 0.0;
  return L;
}

// Adds member row b to a group's sums num[s] += G_s W_s f_s and den[s] += W_s f_s over its slots s:
// the columns (f = the mask weight) or, for tir, the k-th response token (f = 1, W and G those of the
// token). retd: cols doubles of scratch.
RK_HD void otb_accumulate(const OtbInputs& in, int64_t b, double* retd, double* num, double* den) {
  suffix_returns_row(in.rewards, in.mask, b, in.cols, nullptr, retd);
  double W = 0;
  int64_t k = 0;
  for (int64_t t = 0; t < in.cols; ++t) {
    const int64_t i = b * in.cols + t;
    const double m = tok_w(in.mask, i);
    if (m == 0.0) continue;  // adds 0 (verl multiplies by the mask)
    W += otb_token_w(in, i) * m;
    const int64_t s = in.tir ? k++ : t;
    const double f = in.tir ? 1.0 : m;
    num[s] += retd[t] * W * f;
    den[s] += W * f;
  }
}

// The group's zero tail: when exactly one member has the largest length and it is longer than the
// second largest, that member's baseline is 0 from slot `second` on. Returns the member's row (or -1)
// and writes `second`. lengths[k] of member k (k in [0, N)), rows[k] its row.
RK_HD int64_t otb_zero_tail(int64_t N, const int64_t* lengths, const int64_t* rows, int64_t* second) {
  int64_t mx = -1, sec = -1, at = -1, count = 0;
  for (int64_t k = 0; k < N; ++k) {
    const int64_t L = lengths[k];
    if (L > mx) {
      sec = mx;
      mx = L;
      at = rows[k];
      count = 1;
    } else {
      if (L == mx) ++count;
      if (L > sec) sec = L;
    }
  }
  if (count == 1 && mx > sec) {
    *second = sec;
    return at;
  }
  // ties at the top: sorted[-2] == max, nothing zeroed
  *second = -1;
  return -1;
}

// Writes member row b: returns (the reward-to-go, every column) and advantages (G_t - B_s) w_t at
// response tokens, 0 elsewhere; base[s] the group's baseline per slot (null: 0, a group of one),
// zero_from: slots >= zero_from get baseline 0 (the zero tail; cols or more for none).
RK_HD void otb_write(const OtbInputs& in, int64_t b, const double* base, int64_t zero_from, float* adv, float* ret) {
  double g = 0;
  // the k of column t (tir): the number of response tokens before it
  int64_t k = 0;
  if (in.tir)
    for (int64_t t = 0; t < in.cols; ++t) k += tok_w(in.mask, b * in.cols + t) != 0.0;
  for (int64_t t = in.cols - 1; t >= 0; --t) {
    const int64_t i = b * in.cols + t;
    const double m = tok_w(in.mask, i);
    g += static_cast<double>(in.rewards[i]) * m;
    ret[i] = static_cast<float>(g);
    if (m == 0.0) {
      adv[i] = 0.0f;
      continue;
    }
    const int64_t s = in.tir ? --k : t;
    const double bs = (base && s < zero_from) ? base[s] : 0.0;
    adv[i] = static_cast<float>((g - bs) * m);
  }
}

// A group's members [b, e) through at: writes lens[k], rows[k] of the N members it returns (tir
// leaves out empty rows, as verl does) and writes out the rows without a baseline: the empty rows
// (tir) and the only member of a group of one. N >= 2: the caller runs the baseline.
template <class At>
RK_HD int64_t otb_members(const OtbInputs& in, int64_t b, int64_t e, const At& at, int64_t* lens, int64_t* rows,
                          float* adv, float* ret) {
  int64_t N = 0;
  for (int64_t k = b; k < e; ++k) {
    const int64_t r = at(k);
    const int64_t L = otb_length(in.mask, r, in.cols);
    if (in.tir && L == 0) {
      otb_write(in, r, nullptr, 0, adv, ret);
      continue;
    }
    rows[N] = r;
    lens[N] = L;
    ++N;
  }
  if (N == 1) otb_write(in, rows[0], nullptr, 0, adv, ret);
  return N;
}

// The baseline per slot, in place: num[s] <- num[s] / (den[s] + eps).
RK_HD void otb_baseline(double* num, const double* den, int64_t cols, double eps) {
  for (int64_t s = 0; s < cols; ++s) num[s] = num[s] / (den[s] + eps);
}

// optimal_token_baseline over one group: members [b, e) through at (rows in index order). Scratch:
// retd, num, den of cols doubles; lens, rows of e - b entries.
template <class At>
RK_HD void otb_group(const OtbInputs& in, double eps, bool zero_tail, int64_t b, int64_t e, const At& at,
                     double* retd, double* num, double* den, int64_t* lens, int64_t* rows, float* adv, float* ret) {
  const int64_t N = otb_members(in, b, e, at, lens, rows, adv, ret);
  if (N < 2) return;
  for (int64_t s = 0; s < in.cols; ++s) num[s] = den[s] = 0.0;
  for (int64_t k = 0; k < N; ++k) otb_accumulate(in, rows[k], retd, num, den);
  otb_baseline(num, den, in.cols, eps);
  int64_t second = in.cols;
  const int64_t tail = zero_tail ? otb_zero_tail(N, lens, rows, &second) : -1;
  for (int64_t k = 0; k < N; ++k) otb_write(in, rows[k], num, rows[k] == tail ? second : in.cols, adv, ret);
}

// The KL penalty estimate of one token, in double from d = logprob - ref (verl kl_penalty_forward):
// k1 d, abs |d|, k2 d^2 / 2, k3 (and k3+, whose value is k3's) clamp(e^x - x - 1, -10, 10) with
// x = clamp(-d, -20, 20).
RK_HD double kl_reward_estimate(KlRewardEstimator est, double d) {
  switch (est) {
    case KlRewardEstimator::K1:
      return d;
    case KlRewardEstimator::K2:
      return 0.5 * d * d;
    case KlRewardEstimator::Abs:
      return d < 0 ? -d : d;
    default: {
      double x = -d;
      x = x < -20.0 ? -20.0 : (x > 20.0 ? 20.0 : x);
      const double k = ::exp(x) - x - 1.0;
      return k < -10.0 ? -10.0 : (k > 10.0 ? 10.0 : k);
    }
  }
}

// Row b of klRewards: kld_t = estimate_t w_t, rewards_t = scores_t - beta kld_t; returns the row's
// masked mean sum_t kld_t w_t / (sum_t w_t + 1e-8) (verl masked_mean of the masked kld).
RK_HD double kl_rewards_row(const float* scores, const float* logprobs, const float* ref, const TokenMask& mask,
                            int64_t b, int64_t cols, KlRewardEstimator est, double beta, float* rewards) {
  double s = 0, sw = 0;
  for (int64_t t = 0; t < cols; ++t) {
    const int64_t i = b * cols + t;
    const double w = tok_w(mask, i);
    const double d = static_cast<double>(logprobs[i]) - static_cast<double>(ref[i]);
    const double kld = w == 0.0 ? 0.0 : kl_reward_estimate(est, d) * w;
    rewards[i] = static_cast<float>(static_cast<double>(scores[i]) - beta * kld);
    s += kld * w;
    sw += w;
  }
  return s / (sw + kKlMeanEps);
}

// The batch mean of the rows' KL means, in row order (0 for no rows; verl torch.mean).
RK_HD double kl_rows_mean(const double* row_kl, int64_t rows) {
  double s = 0;
  for (int64_t b = 0; b < rows; ++b) s += row_kl[b];
  return rows > 0 ? s / static_cast<double>(rows) : 0.0;
}

}  // namespace core
}  // namespace rk
