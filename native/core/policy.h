// The policy-loss contract and per-token formulas, shared by the C++ kernels
// (native/kernels/policy.cc, policy_simd.inl) and the CUDA kernels (cuda/policy.cu): one definition
// of every option code, of the parameter and metrics structs, and of the per-token loss, gradient
// and KL estimate (formulas in native/kernels/policy.h and policy.cc).
//
// The per-token functions are f32 and take 2^t as a functor (the C++ kernels' exp2v, CUDA's exp2f),
// so each backend keeps its own exp; everything else is the same operation sequence on both. The
// hand-vectorised lanes of policy_simd.inl (AVX2 / AVX-512) compute the same sequence; rk_driver
// check (native/driver/core_check_policy.cc) holds them against these functions.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "fp.h"
#include "hd.h"

namespace rk {

// The codes are part of the contract with the TypeScript facade and the CUDA kernels.
enum class PolicyVariant : int { Ppo = 0, Gspo = 1, Cispo = 2, Sapo = 3, Gpg = 4 };
constexpr int kPolicyVariantCount = 5;
static_assert(static_cast<int>(PolicyVariant::Gpg) == kPolicyVariantCount - 1, "PolicyVariant codes");

enum class LossAggregation : int {
  TokenMean = 0,            // sum m L / sum m
  SeqMeanTokenMean = 1,     // mean_i (sum_t m L / sum_t m)
  SeqMeanTokenSum = 2,      // mean_i sum_t m L
  SeqMeanTokenSumNorm = 3,  // sum m L / (B T)   (Dr. GRPO)
};
constexpr int kLossAggregationCount = 4;
static_assert(static_cast<int>(LossAggregation::SeqMeanTokenSumNorm) == kLossAggregationCount - 1,
              "LossAggregation codes");

// k1 = d, abs = |d|, k2 = d^2/2, k3 = exp(-d) + d - 1 (verl clamps), k3+ = k3 value, k2 gradient.
enum class KlEstimator : int { K1 = 0, K2 = 1, K3 = 2, Abs = 3, K3Plus = 4 };
constexpr int kKlEstimatorCount = 5;
static_assert(static_cast<int>(KlEstimator::K3Plus) == kKlEstimatorCount - 1, "KlEstimator codes");

// The mask: none (all ones), bytes (nonzero = 1) or f32 weights (finite, >= 0).
enum class MaskKind : int { None = 0, U8 = 1, F32 = 2 };
constexpr int kMaskKindCount = 3;
static_assert(static_cast<int>(MaskKind::F32) == kMaskKindCount - 1, "MaskKind codes");

struct PolicyLossParams {
  PolicyVariant variant = PolicyVariant::Ppo;
  LossAggregation aggregation = LossAggregation::TokenMean;
  double epsilon_low = 0.2;
  double epsilon_high = 0.2;   // cispo: the cap of the (detached) ratio itself
  double dual_clip = 0;        // > 1 enables dual clip for A < 0; 0 = off
  double delta = 0;            // > 1 caps the unclipped ratio (TRL two-sided clip); 0 = off
  double normalizer = 0;       // > 0 replaces the aggregation's denominator; 0 = default
  double beta = 0;             // KL coefficient (used when ref_logprobs is given)
  KlEstimator kl = KlEstimator::K3;
  double entropy_coef = 0;     // used when entropy is given
  double sapo_tau_pos = 1.0;   // SAPO temperature for A > 0
  double sapo_tau_neg = 1.05;  // SAPO temperature for A <= 0
};

struct PolicyLossMetrics {
  double loss = 0;
  double clip_fraction = 0;       // low | high, over masked tokens (mask-weighted)
  double clip_low_fraction = 0;   // r < 1 - eps_low and A < 0
  double clip_high_fraction = 0;  // r > 1 + eps_high and A > 0 (cispo: r > eps_high and A > 0)
  double dual_clip_fraction = 0;  // dual clip active (verl pg_clipfrac_lower)
  double approx_kl = 0;           // mean 0.5 d^2
  double kl = 0;                  // mean KL_t (when ref_logprobs given)
  double entropy = 0;             // mean H_t (when entropy given)
  double token_count = 0;         // sum of the mask
};
// The CUDA kernel writes the metrics as this many doubles in this order on the device, and the
// caller copies them into a PolicyLossMetrics with one cudaMemcpy (cuda/policy.h).
constexpr int kPolicyMetricCount = 9;
static_assert(sizeof(PolicyLossMetrics) == kPolicyMetricCount * sizeof(double),
              "PolicyLossMetrics must be exactly kPolicyMetricCount doubles (cudaMemcpy'd from the device)");
static_assert(offsetof(PolicyLossMetrics, loss) == 0 * sizeof(double) &&
                  offsetof(PolicyLossMetrics, clip_fraction) == 1 * sizeof(double) &&
                  offsetof(PolicyLossMetrics, clip_low_fraction) == 2 * sizeof(double) &&
                  offsetof(PolicyLossMetrics, clip_high_fraction) == 3 * sizeof(double) &&
                  offsetof(PolicyLossMetrics, dual_clip_fraction) == 4 * sizeof(double) &&
                  offsetof(PolicyLossMetrics, approx_kl) == 5 * sizeof(double) &&
                  offsetof(PolicyLossMetrics, kl) == 6 * sizeof(double) &&
                  offsetof(PolicyLossMetrics, entropy) == 7 * sizeof(double) &&
                  offsetof(PolicyLossMetrics, token_count) == 8 * sizeof(double),
              "PolicyLossMetrics field order (the CUDA kernel's metric slots)");

namespace core {

constexpr float kLog2ef = 1.4426950408889634f;
constexpr float kFltMinNormal = 1.17549435e-38f;

// The f32 constants of one call, derived from PolicyLossParams the same way on both backends.
struct PolicyTokenParams {
  float lo, hi, eps_hi;  // 1 - eps_low, 1 + eps_high, eps_high
  float delta;           // +inf when off
  float dual_c;          // 0 when off
  bool dual_on;
  float tau_pos, tau_neg, four_pos, four_neg;  // SAPO: tau and 4 / tau
  float beta, ecoef;
};

RK_HD PolicyTokenParams policy_token_params(const PolicyLossParams& p) {
  PolicyTokenParams P;
  P.lo = static_cast<float>(1.0 - p.epsilon_low);
  P.hi = static_cast<float>(1.0 + p.epsilon_high);
  P.eps_hi = static_cast<float>(p.epsilon_high);
  P.delta = p.delta > 0 ? static_cast<float>(p.delta) : HUGE_VALF;
  P.dual_c = static_cast<float>(p.dual_clip);
  P.dual_on = P.dual_c > 0.0f;  // on the f32 value the kernels use (a tiny double rounding to 0 is off)
  P.tau_pos = static_cast<float>(p.sapo_tau_pos);
  P.tau_neg = static_cast<float>(p.sapo_tau_neg);
  P.four_pos = 4.0f / P.tau_pos;
  P.four_neg = 4.0f / P.tau_neg;
  P.beta = static_cast<float>(p.beta);
  P.ecoef = static_cast<float>(p.entropy_coef);
  return P;
}

// The row factor f_i of the aggregation (w_t = m_t f_i): row_m = sum_t m of the row, total_m = sum m
// over the batch. An all-masked row's factor is irrelevant (no token has m > 0).
RK_HD double policy_row_factor(LossAggregation agg, double normalizer, double row_m, double total_m,
                               int64_t B, int64_t T) {
  const bool has_norm = normalizer > 0;
  switch (agg) {
    case LossAggregation::TokenMean: {
      const double den = has_norm ? normalizer : total_m;
      return den > 0 ? 1.0 / den : 0.0;
    }
    case LossAggregation::SeqMeanTokenMean: {
      const double den = has_norm ? normalizer : static_cast<double>(B);
      return row_m > 0 ? 1.0 / (row_m * den) : 0.0;
    }
    case LossAggregation::SeqMeanTokenSum:
      return 1.0 / (has_norm ? normalizer : static_cast<double>(B));
    default:  // SeqMeanTokenSumNorm
      return 1.0 / (has_norm ? normalizer : static_cast<double>(B) * static_cast<double>(T));
  }
}

// GSPO's sequence ratio s_i = exp(min(log s_i, 10)) (NaN stays) and its derivative factor (0 where
// the cap at 10 is active), from log s_i = sum_t m d / sum_t m (0 for an all-masked row).
RK_HD void gspo_row_ratio(double log_s, float* ratio, float* dratio) {
  const double sv = log_s != log_s ? log_s : ::exp(log_s <= 10.0 ? log_s : 10.0);
  *ratio = static_cast<float>(sv);
  *dratio = log_s <= 10.0 ? static_cast<float>(sv) : 0.0f;
}

// The importance ratio r = 2^(clamp(d, -20, 20) log2 e) and dr/dl (= r, 0 where the clamp is active).
template <class Exp2>
RK_HD float policy_ratio(float d, const Exp2& exp2, float* dr) {
  const float r = exp2(max_x86(-20.0f, min_x86(20.0f, d)) * kLog2ef);  // operand order keeps NaN
  *dr = (d >= -20.0f && d <= 20.0f) ? r : 0.0f;
  return r;
}

// KL estimate and its gradient w.r.t. logprobs for d = logprobs - ref.
// k3: x = clamp(-d, -20, 20), k3 = clamp(e^x - x - 1, -10, 10), gradient 1 - e^x (0 where a clamp
// is active); for |x| < 0.5 e^x - x - 1 comes from its series (to x^9), so the f32 e^x never meets
// the cancellation; elsewhere k3 >= 0.106 and stays within 3e-6 relative. k3+: k2's gradient d.
template <class Exp2>
RK_HD void kl_estimate(KlEstimator est, float d, const Exp2& exp2, float* value, float* grad) {
  switch (est) {
    case KlEstimator::K1:
      *value = d;
      *grad = 1.0f;
      return;
    case KlEstimator::K2:
      *value = 0.5f * d * d;
      *grad = d;
      return;
    case KlEstimator::Abs:
      *value = max_x86(0.0f - d, d);  // keeps NaN
      *grad = d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f);
      return;
    default: {  // K3, K3Plus
      const float x0 = 0.0f - d;
      const bool xin = x0 >= -20.0f && x0 <= 20.0f;
      const float x = max_x86(-20.0f, min_x86(20.0f, x0));
      const float ex = exp2(x * kLog2ef);
      float p = 1.0f / 362880.0f;
      p = fma_f(p, x, 1.0f / 40320.0f);
      p = fma_f(p, x, 1.0f / 5040.0f);
      p = fma_f(p, x, 1.0f / 720.0f);
      p = fma_f(p, x, 1.0f / 120.0f);
      p = fma_f(p, x, 1.0f / 24.0f);
      p = fma_f(p, x, 1.0f / 6.0f);
      p = fma_f(p, x, 0.5f);
      const float ks = p * x * x;
      const bool small_x = max_x86(0.0f - x, x) < 0.5f;
      const float k = small_x ? ks : sub_rn(sub_rn(ex, x), 1.0f);
      const float em1 = small_x ? add_rn(ks, x) : sub_rn(ex, 1.0f);
      const bool kin = k >= -10.0f && k <= 10.0f;
      *value = max_x86(-10.0f, min_x86(10.0f, k));
      *grad = est == KlEstimator::K3Plus ? d : ((xin && kin) ? 0.0f - em1 : 0.0f);
      return;
    }
  }
}

// One token's loss L_t and dL_t/dl before the weight w_t, the KL estimate, and which clip rules fired.
struct PolicyToken {
  float loss, grad;
  float kl;                        // when has_ref, else 0
  bool clip_low, clip_high, dual;  // r < lo & A < 0;  r > hi (cispo: eps_hi) & A > 0;  dual clip
};

// The per-token loss and gradient of every variant (policy.cc), times the token weight u when has_w
// (policyLoss options.tokenWeights, e.g. rolloutCorrection's weights), plus beta KL(l - ref) and
// -entropy_coef h. l = logprobs_t, d = l - old_logprobs_t, A the advantage; gspo_r / gspo_dr: the
// row's gspo_row_ratio (GSPO only).
template <class Exp2>
RK_HD PolicyToken policy_token(PolicyVariant var, const PolicyTokenParams& P, float l, float d, float A,
                               float gspo_r, float gspo_dr, bool has_ref, float ref, KlEstimator kl,
                               bool has_ent, float h, const Exp2& exp2, bool has_w = false, float u = 1.0f) {
  PolicyToken o;
  o.kl = 0.0f;
  o.clip_low = o.clip_high = o.dual = false;
  const float negA = 0.0f - A;
  const bool aneg = A < 0.0f, apos = A > 0.0f;
  float r = 0.0f, dr = 0.0f;
  if (var == PolicyVariant::Gspo) {
    r = gspo_r;
    dr = gspo_dr;
  } else if (var != PolicyVariant::Gpg) {
    r = policy_ratio(d, exp2, &dr);
  }
  float L, g;
  if (var == PolicyVariant::Ppo || var == PolicyVariant::Gspo) {
    // L = max(-A min(r, delta), -A clip(r, lo, hi)); dual clip: L = min(L, -c A) for A < 0
    const float rc = min_x86(P.hi, max_x86(P.lo, r));
    const bool capped = r > P.delta;
    const float L1 = negA * min_x86(P.delta, r), L2 = negA * rc;
    const bool unclipped = L1 >= L2;
    L = max_x86(L2, L1);  // a NaN L1 stays
    g = (!capped && unclipped) ? negA * dr : 0.0f;
    if (P.dual_on) {
      const float L3 = negA * P.dual_c;
      o.dual = aneg && L > L3;
      L = o.dual ? L3 : L;
      g = o.dual ? 0.0f : g;
    }
    o.clip_low = r < P.lo && aneg;
    o.clip_high = r > P.hi && apos;
  } else if (var == PolicyVariant::Cispo) {
    // L = -sg(min(r, eps_hi)) A l
    const float w = r < P.eps_hi ? r : P.eps_hi;
    g = 0.0f - w * A;
    L = g * l;
    o.clip_high = r > P.eps_hi && apos;
  } else if (var == PolicyVariant::Sapo) {
    // L = -(4/tau) sigmoid(x) A, x = tau (r - 1); dL/dl = -4 sigmoid(x) (1 - sigmoid(x)) r A
    const float tau = apos ? P.tau_pos : P.tau_neg;
    const float x = tau * (r - 1.0f);
    float e = exp2(max_x86(-150.0f, (0.0f - max_x86(0.0f - x, x)) * kLog2ef));  // e^-|x|
    e = e < kFltMinNormal ? 0.0f : e;  // no subnormal e^-|x| (the C++ kernels run flush-to-zero)
    const float inv = 1.0f / (1.0f + e);
    const bool xpos = x >= 0.0f;
    const float sg = xpos ? inv : e * inv, oms = xpos ? e * inv : inv;
    L = negA * (apos ? P.four_pos : P.four_neg) * sg;
    g = -4.0f * sg * oms * dr * A;
  } else {  // gpg: L = -A l
    g = negA;
    L = negA * l;
  }
  if (has_w) {  // tokenWeights: the policy term only (TRL and verl weight neither KL nor entropy)
    L = L * u;
    g = g * u;
  }
  if (has_ref) {
    float kg;
    kl_estimate(kl, l - ref, exp2, &o.kl, &kg);
    L = fma_f(P.beta, o.kl, L);
    g = fma_f(P.beta, kg, g);
  }
  if (has_ent) L = sub_rn(L, P.ecoef * h);
  o.loss = L;
  o.grad = g;
  return o;
}

}  // namespace core
}  // namespace rk
