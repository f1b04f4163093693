// CUDA entry point of policyLossFromLogits (cuda/policy_logits.h), sync and Promise forms, on the op
// protocol (native/binding/slots.h) with the decoding shared with the CPU addon
// (ops/policy_logits.h, device = true). Runs on the legacy default stream; bad targets and bad f32
// mask weights are found on the device (the call waits for the stream) and become the host path's
// RangeError texts. The metrics are downloaded into the host Float64Array before the call returns.
#include <climits>
#include <string>

#include "cuda_common.h"
#include "ops/policy_logits.h"
#include "policy_logits.h"

namespace {

// A bad mask weight travels as kBadTarget with this value (a bad target's value is an int32).
constexpr int64_t kMaskValue = INT64_MIN;

Napi::Value PolicyLossFromLogits(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LPF);
  const rkb::PolicyLossFromLogitsCall c = rkb::DecodePolicyLossFromLogits(oa, true);
  double* mo = oa.scalars;
  const int64_t vocab = c.a.logits.vocab;
  const int32_t ignore = c.a.ignore_index;
  const rkcb::BadTargetText mask_text =
      rkcb::BadMaskWeightText(c.a.policy.mask_kind == rk::MaskKind::F32 ? c.a.policy.mask : nullptr);
  return rkcb::RunDevice(
      info, async,
      [c, mo]() {
        double m[rkb::LPF::scalar::kCount];
        rkcuda::Result r = rkcb::WithScalars(rkb::LPF::scalar::kCount, m, [&c](double* d) {
          return rkcuda::policy_loss_from_logits(c.a, c.p, d, nullptr);
        });
        // The device writes rk::PolicyLossMetrics' order, which is the layout's (ops/policy.h, ops/policy_logits.h).
        if (r.ok()) for (int i = 0; i < rkb::LPF::scalar::kCount; ++i) mo[i] = m[i];
        if (r.code == rkcuda::kBadTarget && std::string(r.where) == "mask") r.value = kMaskValue;
        return r;
      },
      [vocab, ignore, mask_text](int64_t index, int64_t value) {
        if (value == kMaskValue) return mask_text(index, 0);
        return "targets[" + std::to_string(index) + "]: expected an id in [0, " + std::to_string(vocab) +
               ") or ignoreIndex (" + std::to_string(ignore) + "), received " + std::to_string(value);
      });
}

}  // namespace

RK_REGISTER_OPS(cuda_policy_logits, RK_POLICY_LOGITS_OPS);
