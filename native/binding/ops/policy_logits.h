// Decoding of policyLossFromLogits (lib/policy/policy-loss-from-logits.ts), for the CPU addon
// (native/binding/policy_logits.cc): slots, params and scalars by the names of layout.gen.h, every
// length rechecked.
#pragma once
#include <climits>
#include <string>

#include "../../kernels/policy_logits.h"
#include "../slots.h"
#include "logits.h"
#include "policy.h"

#define RK_POLICY_LOGITS_OPS(X) X(policyLossFromLogits, PolicyLossFromLogits)

namespace rkb {

namespace LPF = rkl::policyLossFromLogits;
RK_ASSERT_LOGITS_DTYPES(LPF);
static_assert(int{LPF::variant_code::kCount} == int{LP::variant_code::kCount} &&
                  int{LPF::aggregation_code::kCount} == int{LP::aggregation_code::kCount} &&
                  int{LPF::klEstimator_code::kCount} == int{LP::klEstimator_code::kCount} &&
                  int{LPF::scalar::kCount} == int{LP::scalar::kCount},
              "policyLossFromLogits: its policy options and metrics are policyLoss'");
static_assert(LPF::gradDtype_code::f32 == static_cast<int>(rk::DType::F32) && LPF::gradDtype_code::bf16 == static_cast<int>(rk::DType::BF16),
              "policyLossFromLogits gradDtype codes are rk::DType's");
inline constexpr PolicyParamLayout kPolicyFromLogitsParams = RK_POLICY_PARAM_LAYOUT(LPF);

struct PolicyLossFromLogitsCall {
  rk::PolicyFromLogitsArgs a;
  rk::PolicyLossParams p;
};

inline PolicyLossFromLogitsCall DecodePolicyLossFromLogits(const OpArgs& a, bool device) {
  PolicyLossFromLogitsCall c;
  rk::PolicyFromLogitsArgs& f = c.a;
  f.logits = DecodeLogits(a, LogitsLayout{LPF::slot::logits, LPF::param::vocab, LPF::param::dtype}, device);
  const int64_t n = f.logits.rows;
  f.targets = a.Need(LPF::slot::targets, {SlotType::I32}, n).as<const int32_t>();
  f.temperature = static_cast<float>(TemperatureParam(a, LPF::param::temperature, true));
  f.ignore_index = static_cast<int32_t>(IntParam(a, LPF::param::ignoreIndex, "ignoreIndex", INT32_MIN, INT32_MAX));
  const int64_t T = IntParam(a, LPF::param::seqLen, "seqLen", 1, INT32_MAX);
  if (n % T != 0)
    throw a.Range("seqLen: expected a divisor of the number of logits rows (" + std::to_string(n) + "), received " + std::to_string(T));
  const int64_t B = n / T;
  const Slot& adv = a.Need(LPF::slot::advantages, {SlotType::F32});
  if (adv.length != static_cast<size_t>(B) && adv.length != static_cast<size_t>(n))
    throw a.Range("advantages: expected length " + std::to_string(B) + " or " + std::to_string(n) + ", received " +
                  std::to_string(adv.length));
  const Slot& mask = a.Maybe(LPF::slot::mask, {SlotType::U8, SlotType::F32}, n);
  const Slot& ref = a.Maybe(LPF::slot::refLogprobs, {SlotType::F32}, n);
  const Slot& tw = a.Maybe(LPF::slot::tokenWeights, {SlotType::F32}, n);
  rk::PolicyLossInputs& in = f.policy;
  in.old_logprobs = a.Need(LPF::slot::oldLogprobs, {SlotType::F32}, n).as<const float>();
  in.advantages = adv.as<const float>();
  in.advantages_per_token = adv.length == static_cast<size_t>(n) && adv.length != static_cast<size_t>(B);
  in.mask = mask.data;
  in.mask_kind = MaskKindOf(mask);
  in.ref_logprobs = ref.present ? ref.as<const float>() : nullptr;
  in.token_weights = tw.present ? tw.as<const float>() : nullptr;
  in.batch = B;
  in.seq_len = T;
  DecodePolicyParams(a, kPolicyFromLogitsParams, c.p);
  f.want_entropy = a.Param(LPF::param::wantEntropy, "wantEntropy", 0, 1) != 0;
  f.grad_dtype = static_cast<rk::DType>(a.Enum(LPF::param::gradDtype, "gradDtype", LPF::gradDtype_code::kCount));
  f.logprobs = a.Out(LPF::slot::logprobs, {SlotType::F32}, n).as<float>();
  const Slot& ent = a.MaybeOut(LPF::slot::entropy, {SlotType::F32}, n);
  if (f.want_entropy != ent.present) throw Napi::TypeError::New(a.env, "entropy: an output exactly when wantEntropy is set");
  f.entropy = ent.present ? ent.as<float>() : nullptr;
  const bool bf16 = f.grad_dtype == rk::DType::BF16;
  const Slot& logits = a[LPF::slot::logits];
  const Slot& grad = a.Out(LPF::slot::gradLogits, {bf16 ? SlotType::U16 : SlotType::F32}, static_cast<int64_t>(logits.length));
  if (logits.length > 0 && grad.data == logits.data && f.logits.dtype != f.grad_dtype)
    throw Napi::TypeError::New(a.env, "gradLogits: an in-place gradient needs logits of the gradient's dtype");
  if (grad.data != logits.data && BytesOverlap(grad.data, grad.length * (bf16 ? 2 : 4), logits.data, LogitsBytes(f.logits)))
    throw a.Range("gradLogits: overlaps logits without being the same memory");
  f.grad = grad.data;
  return c;
}

}  // namespace rkb
