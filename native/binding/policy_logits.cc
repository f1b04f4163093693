// CPU entry point of policyLossFromLogits (sync and Promise forms), on the op protocol (slots.h).
#include "common.h"

#include "ops/policy_logits.h"

namespace {

Napi::Value PolicyLossFromLogits(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LPF);
  const rkb::PolicyLossFromLogitsCall c = rkb::DecodePolicyLossFromLogits(a, false);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() {
    rk::PolicyLossMetrics m;
    rk::Status st = rk::policy_loss_from_logits(c.a, c.p, &m);
    if (st.ok()) rkb::WritePolicyMetrics(m, s);
    if (st.code == rk::Status::BadIndex && c.a.policy.mask_kind == rk::MaskKind::F32)
      return rkb::MaskWeightMessage(st.index, static_cast<const float*>(c.a.policy.mask)[st.index]);
    return rkb::StatusMessage(st, c.a.logits.vocab);
  }, a.Done());
}

}  // namespace

RK_REGISTER_OPS(policy_logits, RK_POLICY_LOGITS_OPS);
