// CPU entry points of clipCovPolicyLoss, klCovPolicyLoss and highEntropyMask (sync and Promise forms),
// on the op protocol (slots.h). CPU only: ops/selection.h.
#include "common.h"

#include <string>

#include "ops/selection.h"

namespace {

std::string Message(const rk::Status& st, const void* mask, rk::MaskKind kind) {
  if (st.ok()) return "";
  if (st.code == rk::Status::BadIndex && kind == rk::MaskKind::F32)
    return rkb::MaskWeightMessage(st.index, static_cast<const float*>(mask)[st.index]);
  return rkb::StatusMessage(st, 0);
}

Napi::Value Cov(const Napi::CallbackInfo& info, bool async, const rkb::CovPolicyLossCall& c, rkb::OpArgs& a) {
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() {
    rk::CovPolicyLossResult r;
    rk::Status st = rk::cov_policy_loss(c.a, c.grad, c.selected, &r);
    if (st.ok()) {
      s[rkb::LCC::scalar::loss] = r.loss;
      s[rkb::LCC::scalar::fraction] = r.clip_fraction;
      s[rkb::LCC::scalar::ppoKl] = r.ppo_kl;
      s[rkb::LCC::scalar::selectedCount] = r.selected;
      s[rkb::LCC::scalar::candidateCount] = r.candidates;
      s[rkb::LCC::scalar::tokenCount] = r.token_count;
    }
    return Message(st, c.a.mask, c.a.mask_kind);
  }, a.Done());
}
static_assert(rkb::LCC::scalar::loss == rkb::LKC::scalar::loss && rkb::LCC::scalar::fraction == rkb::LKC::scalar::fraction &&
                  rkb::LCC::scalar::tokenCount == rkb::LKC::scalar::tokenCount,
              "the two cov losses share their scalar layout");

Napi::Value ClipCovPolicyLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LCC);
  const rkb::CovPolicyLossCall c = rkb::DecodeClipCovPolicyLoss(a);
  return Cov(info, async, c, a);
}

Napi::Value KlCovPolicyLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LKC);
  const rkb::CovPolicyLossCall c = rkb::DecodeKlCovPolicyLoss(a);
  return Cov(info, async, c, a);
}

Napi::Value HighEntropyMask(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LHE);
  const rkb::HighEntropyMaskCall c = rkb::DecodeHighEntropyMask(a);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() {
    double thr = 0, count = 0;
    rk::Status st = rk::high_entropy_mask(c.entropy, c.n, c.mask, c.mask_kind, c.top_quantile, c.out, &thr, &count);
    if (st.ok()) {
      s[rkb::LHE::scalar::threshold] = thr;
      s[rkb::LHE::scalar::count] = count;
    }
    return Message(st, c.mask, c.mask_kind);
  }, a.Done());
}

}  // namespace

RK_REGISTER_OPS(selection, RK_SELECTION_OPS);
