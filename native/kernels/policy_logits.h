// policyLossFromLogits: token log-probs, a policy loss and the loss's gradient with respect to the
// logits in one call (docs/policy-from-logits.md).
//
// logits (N, V) with N = B T rows, f32 / bf16 / f16;  targets (N) int32;  the policy inputs as in
// policy.h (logprobs and entropy are this kernel's outputs).
//   logp_t, H_t: tokenLogprobs of row t;  loss, metrics, g_t = dL/dlogp_t, h_t = dL/dH_t: policyLoss
//   on them (H_t is policyLoss' entropy input when want_entropy);
//   dL/dz = tokenLogprobsBackward(g, h) written as f32 or bf16 (round to nearest even).
// A row whose target is ignore_index, or whose mask weight is 0, is not read: logp = H = 0 and a
// zero gradient row (policyLoss gives such a token no weight; an ignored target with a nonzero
// weight counts with logp = 0, as in the separate calls).
//
// Every variant but GSPO is one pass: a token's gradient depends on that token and on the row
// factors of the aggregation, which depend on the mask only (computed first). Each row's statistics
// are taken chunk by chunk (the log-prob kernel's chunks and merge: logp and H are tokenLogprobs'
// bit for bit), keeping each element's exp in cache; its gradient is then written from those while
// the next row is read: one read of the logits and one write of the gradient, one exp per element. GSPO's sequence ratio needs every log-prob of a sequence
// first, so it takes two passes (statistics of every row; policyLoss; gradient rows).
// Rows are split over threads; every sum is merged in a fixed order: results do not depend on the
// thread count.
#pragma once
#include <cstdint>

#include "logprobs.h"
#include "policy.h"
#include "types.h"

namespace rk {

struct PolicyFromLogitsArgs {
  LogitsView logits;                 // N = batch * seq_len rows
  const int32_t* targets = nullptr;  // (N)
  float temperature = 1;
  int32_t ignore_index = -100;
  PolicyLossInputs policy;  // old_logprobs, advantages, mask, ref_logprobs, token_weights, batch, seq_len
  bool want_entropy = false;   // compute H: an output, and policyLoss' entropy input (entropy_coef)
  DType grad_dtype = DType::F32;  // F32 or BF16
  void* grad = nullptr;  // (N, V) of grad_dtype; may be the logits themselves when the dtypes agree
  float* logprobs = nullptr;  // (N) out
  float* entropy = nullptr;   // (N) out when want_entropy
};

// Writes logprobs, entropy, grad and metrics. Status: BadTarget (a target outside [0, V) that is not
// ignore_index), BadIndex (a negative or non-finite f32 mask weight), BadShape.
Status policy_loss_from_logits(const PolicyFromLogitsArgs& a, const PolicyLossParams& p,
                               PolicyLossMetrics* metrics);

}  // namespace rk
