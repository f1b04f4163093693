// Decoding of policyLoss and klPenalty (lib/policy/), shared by the CPU addon (native/binding/policy.cc)
// and the CUDA addon (native/cuda_binding/policy.cc): slots, params and scalars by the names of
// layout.gen.h, every length rechecked.
#pragma once
#include <climits>
#include <cmath>
#include <string>

#include "../../kernels/policy.h"
#include "../../kernels/rollout_correction.h"
#include "../slots.h"

// The family's ops, X(jsName, EntryPoint): both addons define these entry points and register them
// with RK_REGISTER_OPS (native/binding/common.h).
#define RK_POLICY_OPS(X) \
  X(policyLoss, PolicyLoss) \
  X(klPenalty, KlPenalty) \
  X(rolloutCorrection, RolloutCorrection)

namespace rkb {

namespace LP = rkl::policyLoss;
namespace LK = rkl::klPenalty;
namespace LR = rkl::rolloutCorrection;
static_assert(LR::mode_code::kCount == rk::kRcModeCount, "rolloutCorrection modes: lib/policy/rollout-correction.ts and native/core/rollout_correction.h disagree");
static_assert(int{LR::scalar::kCount} == int{rk::kRcMetricCount} && int{LR::scalar::tokenCount} == int{rk::kRcTokenCount} &&
                  int{LR::scalar::isBatchNormFactor} == int{rk::kRcIsBatchNormFactor} && int{LR::scalar::chi2Seq} == int{rk::kRcChi2Seq},
              "rolloutCorrection scalars: RC_METRICS and rk::RcMetric disagree");
static_assert(LR::param::seq_max_k3_upper - LR::param::token_k1_lower + 1 == 2 * rk::kRcCriterionCount,
              "rolloutCorrection: one lower and one upper bound per rejection criterion");
static_assert(LP::variant_code::kCount == 5 && LP::aggregation_code::kCount == 4 && LP::klEstimator_code::kCount == 5,
              "policyLoss enums: lib/policy/enums.ts and native/core/policy.h disagree");
static_assert(LP::scalar::kCount == 9, "policyLoss scalars: rk::PolicyLossMetrics has 9 doubles");

inline rk::MaskKind MaskKindOf(const Slot& m) {
  return !m.present ? rk::MaskKind::None : m.type == SlotType::U8 ? rk::MaskKind::U8 : rk::MaskKind::F32;
}

// Where an op keeps policyLoss' scalar options (layout.gen.h names): policyLoss and policyLossFromLogits.
struct PolicyParamLayout {
  int variant, aggregation, epsilonLow, epsilonHigh, dualClip, delta, normalizer, beta, klEstimator, entropyCoef,
      sapoTemperaturePos, sapoTemperatureNeg;
};
#define RK_POLICY_PARAM_LAYOUT(L)                                                                          \
  PolicyParamLayout {                                                                                      \
    L::param::variant, L::param::aggregation, L::param::epsilonLow, L::param::epsilonHigh, L::param::dualClip, \
        L::param::delta, L::param::normalizer, L::param::beta, L::param::klEstimator, L::param::entropyCoef,   \
        L::param::sapoTemperaturePos, L::param::sapoTemperatureNeg                                         \
  }
inline constexpr PolicyParamLayout kPolicyLossParams = RK_POLICY_PARAM_LAYOUT(LP);

inline void DecodePolicyParams(const OpArgs& a, const PolicyParamLayout& l, rk::PolicyLossParams& p) {
  p.variant = static_cast<rk::PolicyVariant>(a.Enum(l.variant, "variant", LP::variant_code::kCount));
  p.aggregation = static_cast<rk::LossAggregation>(a.Enum(l.aggregation, "aggregation", LP::aggregation_code::kCount));
  p.epsilon_low = a.Param(l.epsilonLow, "epsilonLow", 0, 1);
  p.epsilon_high = a.Param(l.epsilonHigh, "epsilonHigh", 0, 1e30);
  p.dual_clip = a.Param(l.dualClip, "dualClip", 0, 1e30);
  p.delta = a.Param(l.delta, "delta", 0, 1e30);
  p.normalizer = a.Param(l.normalizer, "normalizer", 0, 1e300);
  p.beta = a.Param(l.beta, "beta", -1e300, 1e300);
  p.kl = static_cast<rk::KlEstimator>(a.Enum(l.klEstimator, "klEstimator", LP::klEstimator_code::kCount));
  p.entropy_coef = a.Param(l.entropyCoef, "entropyCoef", -1e300, 1e300);
  p.sapo_tau_pos = a.Param(l.sapoTemperaturePos, "sapoTemperaturePos", 1e-300, 1e300);
  p.sapo_tau_neg = a.Param(l.sapoTemperatureNeg, "sapoTemperatureNeg", 1e-300, 1e300);
  if (p.dual_clip != 0 && !(p.dual_clip > 1)) throw a.Range("params.dualClip: expected 0 (off) or a value > 1");
  if (p.delta != 0 && !(p.delta > 1)) throw a.Range("params.delta: expected 0 (off) or a value > 1");
}

struct PolicyLossCall {
  rk::PolicyLossInputs in;
  rk::PolicyLossParams p;
  float* grad = nullptr;
  float* grad_entropy = nullptr;
  const void* mask = nullptr;
  rk::MaskKind mask_kind = rk::MaskKind::None;
};

inline PolicyLossCall DecodePolicyLoss(const OpArgs& a) {
  PolicyLossCall c;
  const Slot& lp = a.Need(LP::slot::logprobs, {SlotType::F32});
  const size_t n = lp.length;
  a.Need(LP::slot::oldLogprobs, {SlotType::F32}, n);
  const double Td = a.Param(LP::param::seqLen, "seqLen", 1, INT32_MAX);
  if (std::floor(Td) != Td) throw a.Range("seqLen: expected an integer");
  const int64_t T = static_cast<int64_t>(Td);
  if (n % static_cast<size_t>(T) != 0)
    throw a.Range("seqLen: expected a divisor of the length of logprobs (" + std::to_string(n) + "), received " +
                  std::to_string(T));
  const int64_t B = static_cast<int64_t>(n) / T;
  const Slot& adv = a.Need(LP::slot::advantages, {SlotType::F32});
  if (adv.length != static_cast<size_t>(B) && adv.length != n)
    throw a.Range("advantages: expected length " + std::to_string(B) + " or " + std::to_string(n) + ", received " +
                  std::to_string(adv.length));
  const Slot& mask = a.Maybe(LP::slot::mask, {SlotType::U8, SlotType::F32}, n);
  const Slot& ref = a.Maybe(LP::slot::refLogprobs, {SlotType::F32}, n);
  const Slot& ent = a.Maybe(LP::slot::entropy, {SlotType::F32}, n);
  const Slot& tw = a.Maybe(LP::slot::tokenWeights, {SlotType::F32}, n);
  const Slot& grad = a.Out(LP::slot::gradLogprobs, {SlotType::F32}, n);
  const Slot& gent = a.MaybeOut(LP::slot::gradEntropy, {SlotType::F32}, n);
  if (gent.present && !ent.present) throw Napi::TypeError::New(a.env, "out.gradEntropy: given without entropy");

  DecodePolicyParams(a, kPolicyLossParams, c.p);

  rk::PolicyLossInputs& in = c.in;
  in.logprobs = lp.as<const float>();
  in.old_logprobs = a[LP::slot::oldLogprobs].as<const float>();
  in.advantages = adv.as<const float>();
  // With T == 1 both shapes coincide and mean the same thing.
  in.advantages_per_token = adv.length == n && adv.length != static_cast<size_t>(B);
  in.mask = mask.data;
  in.mask_kind = MaskKindOf(mask);
  in.ref_logprobs = ref.present ? ref.as<const float>() : nullptr;
  in.entropy = ent.present ? ent.as<const float>() : nullptr;
  in.token_weights = tw.present ? tw.as<const float>() : nullptr;
  in.batch = B;
  in.seq_len = T;
  c.grad = grad.as<float>();
  c.grad_entropy = gent.present ? gent.as<float>() : nullptr;
  c.mask = mask.data;
  c.mask_kind = in.mask_kind;
  return c;
}

// rk::PolicyLossMetrics -> the scalars in layout order.
inline void WritePolicyMetrics(const rk::PolicyLossMetrics& m, double* s) {
  s[LP::scalar::loss] = m.loss;
  s[LP::scalar::clipFraction] = m.clip_fraction;
  s[LP::scalar::clipLowFraction] = m.clip_low_fraction;
  s[LP::scalar::clipHighFraction] = m.clip_high_fraction;
  s[LP::scalar::dualClipFraction] = m.dual_clip_fraction;
  s[LP::scalar::approxKl] = m.approx_kl;
  s[LP::scalar::kl] = m.kl;
  s[LP::scalar::entropy] = m.entropy;
  s[LP::scalar::tokenCount] = m.token_count;
}

struct KlPenaltyCall {
  const float* logprobs = nullptr;
  const float* ref = nullptr;
  int64_t n = 0;
  const void* mask = nullptr;
  rk::MaskKind mask_kind = rk::MaskKind::None;
  rk::KlEstimator estimator = rk::KlEstimator::K3;
  float* kl = nullptr;
  float* grad = nullptr;
};

inline KlPenaltyCall DecodeKlPenalty(const OpArgs& a) {
  KlPenaltyCall c;
  const Slot& lp = a.Need(LK::slot::logprobs, {SlotType::F32});
  const size_t n = lp.length;
  const Slot& ref = a.Need(LK::slot::refLogprobs, {SlotType::F32}, n);
  const Slot& mask = a.Maybe(LK::slot::mask, {SlotType::U8, SlotType::F32}, n);
  const Slot& kl = a.MaybeOut(LK::slot::kl, {SlotType::F32}, n);
  const Slot& grad = a.MaybeOut(LK::slot::grad, {SlotType::F32}, n);
  c.logprobs = lp.as<const float>();
  c.ref = ref.as<const float>();
  c.n = static_cast<int64_t>(n);
  c.mask = mask.data;
  c.mask_kind = MaskKindOf(mask);
  c.estimator = static_cast<rk::KlEstimator>(a.Enum(LK::param::estimator, "estimator", LK::estimator_code::kCount));
  c.kl = kl.present ? kl.as<float>() : nullptr;
  c.grad = grad.present ? grad.as<float>() : nullptr;
  return c;
}

struct RolloutCorrectionCall {
  rk::RcArgs a;
  rk::RolloutCorrectionParams p;
};

inline RolloutCorrectionCall DecodeRolloutCorrection(const OpArgs& a) {
  RolloutCorrectionCall c;
  const Slot& tr = a.Need(LR::slot::trainerLogprobs, {SlotType::F32});
  const size_t n = tr.length;
  a.Need(LR::slot::rolloutLogprobs, {SlotType::F32}, n);
  const double Td = a.Param(LR::param::seqLen, "seqLen", 1, INT32_MAX);
  if (std::floor(Td) != Td) throw a.Range("seqLen: expected an integer");
  const int64_t T = static_cast<int64_t>(Td);
  if (n % static_cast<size_t>(T) != 0)
    throw a.Range("seqLen: expected a divisor of the length of trainerLogprobs (" + std::to_string(n) + "), received " +
                  std::to_string(T));
  const int64_t B = static_cast<int64_t>(n) / T;
  const Slot& adv = a.Maybe(LR::slot::advantages, {SlotType::F32});
  if (adv.present && adv.length != static_cast<size_t>(B) && adv.length != n)
    throw a.Range("advantages: expected length " + std::to_string(B) + " or " + std::to_string(n) + ", received " +
                  std::to_string(adv.length));
  const Slot& mask = a.Maybe(LR::slot::mask, {SlotType::U8, SlotType::F32}, n);
  const Slot& w = a.MaybeOut(LR::slot::weights, {SlotType::F32}, n);
  const Slot& km = a.Out(LR::slot::keptMask, {SlotType::F32}, n);

  rk::RolloutCorrectionParams& p = c.p;
  p.mode = static_cast<rk::RcMode>(a.Enum(LR::param::mode, "mode", LR::mode_code::kCount));
  p.clip_max = a.Param(LR::param::clipMax, "clipMax", 0, 1e300);
  p.clip_min = a.Param(LR::param::clipMin, "clipMin", 0, 1e300);
  if (p.clip_max > 0 && p.clip_min > p.clip_max) throw a.Range("params.clipMin: expected a value <= clipMax");
  p.batch_normalize = a.Param(LR::param::batchNormalize, "batchNormalize", 0, 1) != 0;
  const double thr = a.params[LR::param::offPolicyMaskThreshold];
  p.opsm = !std::isnan(thr);
  if (p.opsm && !std::isfinite(thr)) throw a.Range("params.offPolicyMaskThreshold: expected a finite number or NaN (off)");
  p.opsm_threshold = p.opsm ? thr : 0.0;
  if (p.opsm && !adv.present) throw Napi::TypeError::New(a.env, "advantages: required with offPolicyMaskThreshold");
  for (int k = 0; k < rk::kRcCriterionCount; ++k) {
    const double lo = a.params[LR::param::token_k1_lower + 2 * k], hi = a.params[LR::param::token_k1_lower + 2 * k + 1];
    if (std::isnan(hi)) continue;
    const bool k1 = k == 0 || k == 3 || k == 6;
    if (!(hi > 0 && hi < INFINITY) || (k1 && !(lo > 0 && lo < INFINITY)))
      throw a.Range(std::string("params.") + LR::kParamNames[LR::param::token_k1_lower + 2 * k + 1] +
                    ": expected finite bounds > 0");
    p.rs_on[k] = true;
    // k1 criteria compare -log(ratio) with the log bounds (verl), the others the value with the bound.
    p.rs_lo[k] = k1 ? std::log(lo) : 0.0;
    p.rs_hi[k] = k1 ? std::log(hi) : hi;
  }
  rk::rc_metric_bounds(p);
  const bool has_w = p.mode != rk::RcMode::None || p.opsm;
  if (has_w && !w.present) throw Napi::TypeError::New(a.env, "out.weights: required unless mode is none without offPolicyMaskThreshold");
  if (!has_w && w.present) throw Napi::TypeError::New(a.env, "out.weights: given with mode none and no offPolicyMaskThreshold");

  rk::RcArgs& r = c.a;
  r.trainer = tr.as<const float>();
  r.rollout = a[LR::slot::rolloutLogprobs].as<const float>();
  r.advantages = adv.present ? adv.as<const float>() : nullptr;
  r.adv_per_token = adv.present && adv.length == n && adv.length != static_cast<size_t>(B);
  r.mask = mask.data;
  r.mask_kind = MaskKindOf(mask);
  r.weights = w.present ? w.as<float>() : nullptr;
  r.mask_out = km.as<float>();
  r.B = B;
  r.T = T;
  return c;
}

}  // namespace rkb
