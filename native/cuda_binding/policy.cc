// CUDA entry points of policyLoss and klPenalty (cuda/policy.h), sync and Promise forms, on the op
// protocol (native/binding/slots.h) with the decoding shared with the CPU addon (ops/policy.h).
// Scalar results are downloaded into the host Float64Array before the call returns / the Promise
// settles. Everything runs on the legacy default stream. A bad f32 mask weight (negative or not
// finite) is found on the device; the call waits for the stream and throws the host path's text.
#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "cuda_common.h"
#include "ops/policy.h"
#include "policy.h"
#include "rollout_correction.h"

namespace {

Napi::Value PolicyLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LP);
  const rkb::PolicyLossCall c = rkb::DecodePolicyLoss(oa);
  rkcuda::PolicyLossArgs a;
  a.in = c.in;
  a.params = c.p;
  a.grad_logprobs = c.grad;
  a.grad_entropy = c.grad_entropy;
  double* mo = oa.scalars;
  return rkcb::RunDevice(
      info, async,
      [a, mo]() {
        double m[rkb::LP::scalar::kCount];
        rkcuda::Result r = rkcb::KernelWithScalars(a, &rkcuda::PolicyLossArgs::metrics, rkb::LP::scalar::kCount, m, rkcuda::policy_loss);
        // The device writes rk::PolicyLossMetrics' order, which is the layout's (a static_assert in ops/policy.h).
        if (r.ok()) for (int i = 0; i < rkb::LP::scalar::kCount; ++i) mo[i] = m[i];
        return r;
      },
      rkcb::BadMaskWeightText(c.mask_kind == rk::MaskKind::F32 ? c.mask : nullptr));
}

Napi::Value KlPenalty(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LK);
  const rkb::KlPenaltyCall c = rkb::DecodeKlPenalty(oa);
  rkcuda::KlPenaltyArgs a;
  a.logprobs = c.logprobs;
  a.ref_logprobs = c.ref;
  a.n = c.n;
  a.mask = c.mask;
  a.mask_kind = c.mask_kind;
  a.estimator = c.estimator;
  a.kl = c.kl;
  a.grad = c.grad;
  double* mo = oa.scalars;
  return rkcb::RunDevice(
      info, async,
      [a, mo]() {
        return rkcb::KernelWithScalars(a, &rkcuda::KlPenaltyArgs::mean, 1, mo, rkcuda::kl_penalty);
      },
      rkcb::BadMaskWeightText(c.mask_kind == rk::MaskKind::F32 ? c.mask : nullptr));
}

Napi::Value RolloutCorrection(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LR);
  const rkb::RolloutCorrectionCall c = rkb::DecodeRolloutCorrection(oa);
  double* mo = oa.scalars;
  return rkcb::RunDevice(
      info, async, [c, mo]() { return rkcuda::rollout_correction(c.a, c.p, mo, nullptr); },
      rkcb::BadMaskWeightText(c.a.mask_kind == rk::MaskKind::F32 ? c.a.mask : nullptr));
}

}  // namespace

RK_REGISTER_OPS(cuda_policy, RK_POLICY_OPS);
