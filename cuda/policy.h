// Policy-gradient losses and KL estimators on a CUDA device, forward and backward (docs/policy.md).
// They compute exactly what the CPU kernels native/kernels/policy.{h,cc} compute, with
// the same option structs (rk::PolicyLossInputs / rk::PolicyLossParams): every variant (ppo, gspo,
// cispo, sapo, gpg), clip options, dual clip, delta, the four aggregations and the normalizer,
// optional reference log-probs with every KL estimator, optional entropy with entropy_coef.
//
//   d = logprobs - old_logprobs,  r = exp(clamp(d, -20, 20)),  L_t per variant (policy.cc),
//   L_t += beta * KL(logprobs_t - ref_t) - entropy_coef * H_t,  loss = sum_t w_t L_t,
//   grad_logprobs_t = w_t dL_t/dlogprobs_t,  grad_entropy_t = -entropy_coef w_t.
//
// Plain C++ header (no CUDA types; streams are void*, a cudaStream_t, nullptr = legacy stream).
// Every pointer in the inputs and outputs is a DEVICE pointer. The per-token arithmetic is f32 as
// on the CPU; every sum is in double over fixed chunks, merged in a fixed order (deterministic).
//
// Errors: rkcuda::Result (cuda/logprobs.h). kBadArgument names a null pointer or a bad size;
// kCudaError carries the CUDA error. An f32 mask weight that is negative or not finite is a bad
// element (kBadTarget, where = "mask", index = the lowest such flat index, value = 0): it is found on
// the device, the call's outputs (gradients, metrics / kl, grad, mean) become NaN and the index
// goes into the bad slot. With bad_index == nullptr the call allocates a slot, waits for the stream
// and returns kBadTarget; with a caller-owned slot (reset by rkcuda::bad_row_reset, read by
// rkcuda::bad_row_read) it stays asynchronous. Without an f32 mask no synchronisation happens.
#pragma once
#include <cstdint>

#include "../native/kernels/policy.h"
#include "logprobs.h"

namespace rkcuda {

// The metrics on the device: 9 doubles in the order of rk::PolicyLossMetrics (loss, clip_fraction,
// clip_low_fraction, clip_high_fraction, dual_clip_fraction, approx_kl, kl, entropy, token_count),
// so a cudaMemcpy of 9 doubles into an rk::PolicyLossMetrics gives the CPU kernel's struct
// (static_asserts in native/core/policy.h).
constexpr int kPolicyMetricCount = rk::kPolicyMetricCount;

struct PolicyLossArgs {
  rk::PolicyLossInputs in;      // device pointers; batch B >= 0, seq_len T >= 1
  rk::PolicyLossParams params;
  float* grad_logprobs = nullptr;  // (B, T), required
  float* grad_entropy = nullptr;   // (B, T), optional (needs in.entropy)
  double* metrics = nullptr;       // kPolicyMetricCount doubles, required
  unsigned long long* bad_index = nullptr;  // optional slot, see above
};
Result policy_loss(const PolicyLossArgs& args, void* stream);

// policyLoss' first passes alone (for cuda/policy_logits.cu, which needs the aggregation before the
// log-probs exist): per row i the factor f_i of the aggregation (row_f) and GSPO's masked mean
// log-ratio (row_log_s, 0 unless GSPO; GSPO reads in.logprobs), both (B) doubles on the device, the
// same bits policy_loss uses. An f32 mask's bad weights go into bad_index (required then, a slot
// reset by bad_row_reset). Asynchronous; B >= 1.
Result policy_row_factors(const rk::PolicyLossInputs& in, const rk::PolicyLossParams& p, double* row_log_s,
                          double* row_f, unsigned long long* bad_index, void* stream);

struct KlPenaltyArgs {
  const float* logprobs = nullptr;      // (n)
  const float* ref_logprobs = nullptr;  // (n)
  int64_t n = 0;
  const void* mask = nullptr;  // per mask_kind, may be null with MaskKind::None
  rk::MaskKind mask_kind = rk::MaskKind::None;
  rk::KlEstimator estimator = rk::KlEstimator::K3;
  float* kl = nullptr;      // (n), optional
  float* grad = nullptr;    // (n), optional
  double* mean = nullptr;   // 1 double, optional: mask-weighted mean of the estimate
  unsigned long long* bad_index = nullptr;
};
Result kl_penalty(const KlPenaltyArgs& args, void* stream);

}  // namespace rkcuda
