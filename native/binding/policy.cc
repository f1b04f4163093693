// CPU entry points of policyLoss and klPenalty (sync and Promise forms), on the op protocol
// (slots.h); the decoding is shared with the CUDA addon (ops/policy.h).
#include "common.h"

#include <string>

#include "ops/policy.h"

namespace {

// A bad f32 mask weight, as the host facade would word it.
std::string MaskMessage(const rk::Status& st, const void* mask, rk::MaskKind kind) {
  if (st.ok()) return "";
  if (st.code == rk::Status::BadIndex && kind == rk::MaskKind::F32)
    return rkb::MaskWeightMessage(st.index, static_cast<const float*>(mask)[st.index]);
  if (st.code == rk::Status::BadShape) return "seqLen: expected a positive integer, received " + std::to_string(st.value);
  return rkb::StatusMessage(st, 0);
}

Napi::Value PolicyLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LP);
  const rkb::PolicyLossCall c = rkb::DecodePolicyLoss(a);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() {
    rk::PolicyLossMetrics m;
    rk::Status st = rk::policy_loss(c.in, c.p, c.grad, c.grad_entropy, &m);
    if (st.ok()) rkb::WritePolicyMetrics(m, s);
    return MaskMessage(st, c.mask, c.mask_kind);
  }, a.Done());
}

Napi::Value KlPenalty(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LK);
  const rkb::KlPenaltyCall c = rkb::DecodeKlPenalty(a);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() {
    double mean = 0;
    rk::Status st = rk::kl_penalty(c.logprobs, c.ref, c.n, c.mask, c.mask_kind, c.estimator, c.kl, c.grad, &mean);
    if (st.ok()) s[rkb::LK::scalar::mean] = mean;
    return MaskMessage(st, c.mask, c.mask_kind);
  }, a.Done());
}

Napi::Value RolloutCorrection(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LR);
  const rkb::RolloutCorrectionCall c = rkb::DecodeRolloutCorrection(a);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() {
    rk::Status st = rk::rollout_correction(c.a, c.p, s);
    return MaskMessage(st, c.a.mask, c.a.mask_kind);
  }, a.Done());
}

}  // namespace

RK_REGISTER_OPS(policy, RK_POLICY_OPS);
