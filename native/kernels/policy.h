// Policy-gradient losses and KL estimators, forward and backward (docs/policy.md).
//
// logprobs, old_logprobs, ref_logprobs, entropy, mask: (B, T) row-major;  advantages: (B) or (B, T).
//   d = logprobs - old_logprobs,  r = exp(clamp(d, -20, 20)),  L_t per variant (see policy.cc),
//   L_t = u_t L_t (token_weights u, when given), then L_t += beta * KL(logprobs_t - ref_t) - entropy_coef * H_t,
//   loss = sum_t w_t L_t with aggregation weights w_t (masked tokens have w_t = 0),
//   grad_logprobs_t = w_t * dL_t/dlogprobs_t,  grad_entropy_t = -entropy_coef * w_t.
// Every sum is accumulated in double over fixed chunks of kPolicyChunk tokens, merged in order, so
// the results do not depend on the thread count.
#pragma once
#include <cstdint>
#include <vector>

#include "../core/policy.h"  // the option codes, PolicyLossParams, PolicyLossMetrics
#include "types.h"

namespace rk {

struct PolicyLossInputs {
  const float* logprobs = nullptr;      // (B, T)
  const float* old_logprobs = nullptr;  // (B, T)
  const float* advantages = nullptr;    // (B) or (B, T)
  bool advantages_per_token = false;
  const void* mask = nullptr;  // (B, T) per mask_kind; may be null with MaskKind::None
  MaskKind mask_kind = MaskKind::None;
  const float* ref_logprobs = nullptr;  // (B, T) or null: no KL term
  const float* entropy = nullptr;       // (B, T) or null: no entropy term
  const float* token_weights = nullptr;  // (B, T) or null: multiplies the policy term of L_t (not KL, entropy)
  int64_t batch = 0;                    // B
  int64_t seq_len = 0;                  // T
};

// Writes grad_logprobs (B, T), grad_entropy (B, T) when non-null (needs inputs.entropy), metrics.
// Returns BadIndex with the flat index for a mask weight that is negative or not finite.
Status policy_loss(const PolicyLossInputs& in, const PolicyLossParams& p, float* grad_logprobs,
                   float* grad_entropy, PolicyLossMetrics* metrics);

// Elementwise KL estimate of d = logprobs - ref_logprobs (n elements) and its gradient w.r.t.
// logprobs. With a mask, masked-out elements give 0 and 0. kl_out / grad_out may be null.
// mean_out (optional): the mask-weighted mean of the estimate (0 when the mask sums to 0).
Status kl_penalty(const float* logprobs, const float* ref_logprobs, int64_t n, const void* mask,
                  MaskKind mask_kind, KlEstimator est, float* kl_out, float* grad_out,
                  double* mean_out);

namespace detail {
// Tokens per chunk: rows are cut into fixed chunks whose double partial sums merge in a fixed
// order, so any thread may take any chunk and results never depend on the thread count.
constexpr int64_t kPolicyChunk = 2048;

// The vectorised chunk loop of policy_loss: per-token loss and gradient in f32 lanes, partial sums
// in double lanes reduced in a fixed order.
struct FastChunk {
  const float* logprobs;      // chunk start
  const float* old_logprobs;  // chunk start
  const float* advantages;    // chunk start when per token, else null (use adv_row)
  float adv_row;
  const void* mask;  // chunk start, or null (all ones)
  int mask_kind;     // MaskKind
  int64_t n;
  int variant;  // PolicyVariant
  float lo, hi, eps_hi;
  float delta;      // +inf when off
  float dual_clip;  // 0 when off
  float gspo_ratio, gspo_dratio;
  float tau_pos, tau_neg;
  const float* ref_logprobs;  // chunk start or null: no KL term
  int kl_estimator;           // KlEstimator
  float beta;
  const float* entropy;  // chunk start or null: no entropy term
  float entropy_coef;
  const float* token_weights;  // chunk start or null: the policy term times u_t
  float weight;         // the row factor f
  float* grad;          // chunk start
  float* grad_entropy;  // chunk start or null
  // out: sum m L, low, high, dual, sum m 0.5 d^2, sum m KL, sum m H
  double sums[7];
};
using FastChunkFn = void (*)(FastChunk* c);
// KL over one chunk: kl_out / grad_out (either may be null) and sums = {sum m, sum m KL}.
using KlChunkFn = void (*)(const float* logprobs, const float* ref, const void* mask, int mask_kind,
                           int64_t n, int estimator, float* kl_out, float* grad_out, double* sums);
struct PolicyKernels {
  FastChunkFn fast_chunk;
  KlChunkFn kl_chunk;
};
const PolicyKernels& policy_kernels_avx512();
const PolicyKernels& policy_kernels_avx2();
const PolicyKernels& policy_kernels_scalar();
const PolicyKernels& policy_kernels_active();

// policy_loss's first pass: per-row mask sums m, GSPO's log s_i (from in.logprobs; GSPO only) and
// the aggregation's row factors f (w_t = m_t f_i), merged in a fixed order. BadIndex on a bad weight.
struct PolicyRows {
  std::vector<double> m, log_s, f;
  double total_m = 0;
};
Status policy_rows(const PolicyLossInputs& in, const PolicyLossParams& p, PolicyRows& rows);
// Token t's w_t dL_t/dl (and, when in.entropy is set, dL/dH) from its log-prob and entropy, through
// the same lanes as policy_loss, so the value is policy_loss's gradient bit for bit. GSPO needs the
// whole row first (rows.log_s) and is not per token.
void policy_token_gradient(const PolicyLossInputs& in, const PolicyLossParams& p, const PolicyRows& rows,
                           int64_t t, float logprob, float entropy, float* grad, float* grad_entropy);
}  // namespace detail

}  // namespace rk
