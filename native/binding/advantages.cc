// CPU entry points of groupAdvantages, ensembleRewards, gae, discountedReturns, maskedWhiten, tokenAdvantages and klRewards
// (sync and Promise forms), on the op protocol (slots.h); the decoding is shared with the CUDA addon
// (ops/advantages.h). groupAdvantages writes zeroStdGroups into its scalars; gae with whiten runs
// the whitening in the same call.
#include "common.h"

#include <string>

#include "ops/advantages.h"

namespace {

std::string AdvMessage(const rk::Status& st, const rk::GroupAdvantagesArgs& a) {
  if (st.ok()) return "";
  if (static_cast<int>(st.code) == rk::kAdvStatusBnpoRange)
    return "rewards: bnpo expects every group mean of (r - rewardMin) / (rewardMax - rewardMin) in [0, 1], "
           "group " + std::to_string(st.index) + " is outside (set rewardMin / rewardMax)";
  if (st.code == rk::Status::BadShape)
    return "groupSize: expected a divisor of the number of samples (" + std::to_string(a.n) + "), received " +
           std::to_string(st.value);
  if (st.code == rk::Status::BadIndex)
    return (a.group_ids ? "groupIds[" : "lengths[") + std::to_string(st.index) + "]: value " +
           std::to_string(st.value) + " is out of range";
  return "groupAdvantages failed";
}

// masked_whiten's only failure: a bad f32 mask weight.
std::string MaskMessage(const rk::Status& st, const rk::TokenMask& m) {
  return st.ok() ? std::string() : rkb::MaskWeightMessage(st.index, static_cast<const float*>(m.data)[st.index]);
}

Napi::Value GroupAdvantages(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LGA);
  const rkb::GroupAdvantagesCall c = rkb::DecodeGroupAdvantages(a, false);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() {
    int64_t zero = 0;
    rk::Status st = rk::group_advantages(c.a, c.advantages, c.group_mean, c.group_std, &zero);
    s[rkb::LGA::scalar::zeroStdGroups] = static_cast<double>(zero);
    return AdvMessage(st, c.a);
  }, a.Done());
}

Napi::Value EnsembleRewards(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LER);
  const rkb::EnsembleRewardsCall c = rkb::DecodeEnsembleRewards(a);
  return rkb::Run(info, async, [c]() {
    rk::ensemble_rewards(c.rewards, c.n, c.m, c.method, c.lambda, c.out);
    return std::string();
  }, a.Done());
}

Napi::Value Gae(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LGAE);
  const rkb::GaeCall c = rkb::DecodeGae(a);
  return rkb::Run(info, async, [c]() {
    rk::gae(c.values, c.rewards, c.mask, c.rows, c.cols, c.gamma, c.lambda, c.advantages, c.returns);
    if (!c.whiten) return std::string();
    return MaskMessage(rk::masked_whiten(c.advantages, c.mask, c.n, true, true, 1e-8, c.advantages), c.mask);
  }, a.Done());
}

Napi::Value DiscountedReturns(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LDR);
  const rkb::DiscountedReturnsCall c = rkb::DecodeDiscountedReturns(a);
  return rkb::Run(info, async, [c]() {
    rk::discounted_returns(c.rewards, c.mask, c.rows, c.cols, c.gamma, c.out);
    return std::string();
  }, a.Done());
}

Napi::Value MaskedWhiten(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LMW);
  const rkb::MaskedWhitenCall c = rkb::DecodeMaskedWhiten(a);
  return rkb::Run(info, async, [c]() {
    return MaskMessage(rk::masked_whiten(c.values, c.mask, c.n, c.shift_mean, c.unbiased, c.eps, c.out), c.mask);
  }, a.Done());
}

Napi::Value TokenAdvantages(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LTA);
  const rkb::TokenAdvantagesCall c = rkb::DecodeTokenAdvantages(a);
  return rkb::Run(info, async, [c]() {
    const rk::Status st = rk::token_advantages(c.a, c.advantages, c.returns);
    if (st.ok()) return std::string();
    if (c.a.mask.is_f32 && c.a.mask.data && st.code == rk::Status::BadIndex) return MaskMessage(st, c.a.mask);
    return std::string("groupIds[") + std::to_string(st.index) + "]: value " + std::to_string(st.value) + " is out of range";
  }, a.Done());
}

Napi::Value KlRewards(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LKR);
  const rkb::KlRewardsCall c = rkb::DecodeKlRewards(a);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() {
    double mean = 0;
    const rk::Status st = rk::kl_rewards(c.scores, c.logprobs, c.ref, c.mask, c.rows, c.cols, c.estimator, c.beta,
                                         c.rewards, &mean);
    s[rkb::LKR::scalar::klMean] = mean;
    return MaskMessage(st, c.mask);
  }, a.Done());
}

Napi::Value GatedRewards(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LGR);
  const rkb::GatedRewardsCall c = rkb::DecodeGatedRewards(a);
  return rkb::Run(info, async, [c]() {
    rk::gated_rewards(c.high, c.low, c.mask, c.rows, c.cols, c.threshold, c.out);
    return std::string();
  }, a.Done());
}

Napi::Value DiscountedCumsum(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LDC);
  const rkb::DiscountedCumsumCall c = rkb::DecodeDiscountedCumsum(a);
  return rkb::Run(info, async, [c]() {
    rk::discounted_cumsum(c.values, c.mask, c.rows, c.cols, c.gamma, c.adjoint, c.out);
    return std::string();
  }, a.Done());
}

Napi::Value LagrangianMix(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LLM);
  const rkb::LagrangianMixCall c = rkb::DecodeLagrangianMix(a);
  return rkb::Run(info, async, [c]() {
    rk::lagrangian_mix(c.adv, c.kl, c.xi, c.grad_mixed, c.k, c.n, c.mixed, c.grad_xi);
    return std::string();
  }, a.Done());
}

}  // namespace

RK_REGISTER_OPS(advantages, RK_ADVANTAGES_OPS);
