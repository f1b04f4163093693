// Preference losses, forward and backward (docs/preference.md).
//
// preference_loss: chosen, rejected (P) f32 sequence log-prob sums (rewards for 'bt');
//   optional ref_chosen, ref_rejected (P) (absent = 0: reference-free); optional chosen_len,
//   rejected_len (P) int32 >= 1 for the length-averaged losses and the NLL terms.
//   c = chosen - refChosen, rho = rejected - refRejected (divided by the lengths for 'ipo'),
//   x = beta (f(c) - f(rho)) with f the f-divergence map (identity for reverse KL), then one of
//   sixteen per-pair losses L_i(c, rho), or the batch losses aot, aot_unpaired, sft, or a weighted
//   list of them (PreferenceParams::mixed; core::pair_general); loss = mean_i L_i. Writes losses (P), rewards (P) and
//   gradients dloss/dchosen, dloss/drejected (P) of the MEAN loss; all arithmetic in double.
// kto_loss: logp, ref (N), desirable (N) u8; r = logp - ref, x = beta (r - z0),
//   L = w_d (1 - s(x)) (desirable) or w_u s(x) (undesirable); loss = mean_i L_i.
// token_weighted_dpo_loss (TGDPO): per-token (B, T) policy/reference log-probs, token rewards
//   and masks of chosen and rejected; z = sum_t m beta (1 + a beta rw_t) d_w,t -
//   sum_t m beta (1 - a beta rl_t) d_l,t, L = -log s(z); loss = mean_b L_b.
// Results are identical for every thread count: items are summed in fixed blocks of
// kPreferenceBlock, and the block partials are added in order.
#pragma once
#include <cstdint>

#include "../core/preference.h"  // native/core: PrefLoss, FDivergence, the parameter and input structs
#include "types.h"

namespace rk {

constexpr int64_t kPreferenceBlock = 4096;

struct PreferenceOutputs {
  float* losses = nullptr;            // (P)
  float* chosen_rewards = nullptr;    // (P)
  float* rejected_rewards = nullptr;  // (P)
  float* grad_chosen = nullptr;       // (P)
  float* grad_rejected = nullptr;     // (P)
  double loss = 0;                    // mean of losses
  double reward_accuracy = 0;         // share with chosen reward > rejected reward
  double reward_margin = 0;           // mean of chosen - rejected reward
};

// Which losses divide by the lengths (so chosen_len/rejected_len must be given): rk::needs_lengths.
inline bool preference_needs_lengths(const PreferenceParams& p) { return needs_lengths(p); }

// Status BadIndex (index = pair, value = length) for a length < 1 where lengths are used;
// BadShape when a needed array is null.
Status preference_loss(const PreferenceInputs& in, const PreferenceParams& p, PreferenceOutputs& out);

struct KtoOutputs {
  float* losses = nullptr;   // (N)
  float* rewards = nullptr;  // (N): beta (logp - ref)
  float* grad = nullptr;     // (N): dloss/dlogp of the mean loss
  double loss = 0;
  double desirable_reward_mean = 0;    // NaN when there is no desirable example
  double undesirable_reward_mean = 0;  // NaN when there is no undesirable example
};
// logp, ref (N) f32 (ref may be null: 0); desirable (N) u8 (nonzero = desirable).
Status kto_loss(int64_t n, const float* logp, const float* ref, const uint8_t* desirable,
                const KtoParams& p, KtoOutputs& out);

struct TgdpoOutputs {
  float* losses = nullptr;            // (B)
  float* chosen_rewards = nullptr;    // (B): sum_t m beta (1 + a beta rw_t) d_w,t
  float* rejected_rewards = nullptr;  // (B): sum_t m beta (1 - a beta rl_t) d_l,t
  float* grad_chosen = nullptr;       // (B, T): dloss/dchosen of the mean loss
  float* grad_rejected = nullptr;     // (B, T)
  double loss = 0;
  double reward_accuracy = 0;
  double reward_margin = 0;
};
Status token_weighted_dpo_loss(const TgdpoInputs& in, double beta, double alpha, TgdpoOutputs& out);

// LD-DPO sequence log-probs (core::ld_pair per pair; rows in blocks, any thread count gives the
// same bits). BadShape when a needed pointer is null or the sizes are < 1.
Status ld_dpo_logps(const LdInputs& in, double alpha, const LdOutputs& out);

namespace detail {
// The vectorised smoothed-logistic pair losses (sigmoid/DPO with reverse KL, simpo, cpo, bt
// without soft labels), one build per ISA (preference_simd.inl):
//   cw = (w - rw) sw, cl = (l - rl) sl (sw = 1/lw when avg, else 1), x = k (cw - cl) - m,
//   L = (1-e) softplus(-x) + e softplus(x) - nll w / lw, rewards kr cw, kr cl.
struct LogisticPairsArgs {
  const float* w;
  const float* l;
  const float* rw;  // may be null
  const float* rl;
  const int32_t* lw;  // may be null when neither avg nor nll needs it
  const int32_t* ll;
  const float* marr;  // per-pair m, or null: m
  bool avg;
  double k, kr, m, e, nll, inv_n;
  float* losses;
  float* rc;
  float* rr;
  float* gc;
  float* gr;
};
using LogisticPairsFn = void (*)(const LogisticPairsArgs& a, int64_t i0, int64_t i1,
                                 double* s_loss, double* s_acc, double* s_margin);
LogisticPairsFn preference_logistic_pairs_avx512();
LogisticPairsFn preference_logistic_pairs_avx2();
LogisticPairsFn preference_logistic_pairs_scalar();
}  // namespace detail

}  // namespace rk
