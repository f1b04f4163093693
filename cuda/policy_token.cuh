// The per-token part of policyLoss on CUDA, shared by cuda/policy.cu (policyLoss' pass 2) and
// cuda/policy_logits.cu (policyLossFromLogits' fused row kernel), so both give a token the same
// gradient bits: the mask weight of a token, the token's loss terms (rk::core::policy_token with
// exp2f as 2^t) and its gradients w_t dL_t/dlogp_t and dL_t/dH_t = -entropy_coef w_t, w_t = m_t f_i
// (f_i the row factor of the aggregation). Device code only; inline functions.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "../native/core/policy.h"

namespace rkcuda {
namespace pol {

// mask kind (rk::MaskKind): 0 none (all ones), 1 u8, 2 f32 weights.
__device__ __forceinline__ float mask_at(const void* mask, int kind, int64_t i) {
  if (kind == 1) return static_cast<const uint8_t*>(mask)[i] != 0 ? 1.0f : 0.0f;
  if (kind == 2) return static_cast<const float*>(mask)[i];
  return 1.0f;
}
__device__ __forceinline__ bool bad_weight(float w) { return !(w >= 0.0f) || !(w < INFINITY); }

// 2^t for the core functions.
struct Exp2Dev {
  __device__ __forceinline__ float operator()(float t) const { return exp2f(t); }
};

// The options of the per-token pass.
struct TokenParams {
  rk::PolicyVariant variant;
  rk::KlEstimator kl;
  int mask_kind;
  bool per_token, has_ref, has_ent, has_w;
  rk::core::PolicyTokenParams tok;
};

// The loss terms of token i (flat index) of log-prob l, log-ratio d = l - old_i, entropy h (when
// has_ent); adv_row: the row's advantage when advantages are per sequence; gr, gdr: the row's
// gspo_row_ratio.
__device__ __forceinline__ rk::core::PolicyToken token_terms(const TokenParams& P, const float* adv,
                                                            const float* ref, const float* tw, int64_t i,
                                                            float l, float d, float h, float adv_row,
                                                            float gr, float gdr) {
  const float A = P.per_token ? adv[i] : adv_row;
  return rk::core::policy_token(P.variant, P.tok, l, d, A, gr, gdr, P.has_ref, P.has_ref ? ref[i] : 0.0f, P.kl,
                                P.has_ent, P.has_ent ? h : 0.0f, Exp2Dev{}, P.has_w, P.has_w ? tw[i] : 1.0f);
}

// The token's gradients: dL/dlogp = w grad, dL/dH = -entropy_coef w (w = m wf; 0 where m <= 0).
__device__ __forceinline__ float token_grad(float m, float wf, const rk::core::PolicyToken& t) {
  return m > 0.0f ? (m * wf) * t.grad : 0.0f;
}
__device__ __forceinline__ float token_grad_entropy(const TokenParams& P, float m, float wf) {
  return m > 0.0f ? 0.0f - P.tok.ecoef * (m * wf) : 0.0f;
}

}  // namespace pol
}  // namespace rkcuda
