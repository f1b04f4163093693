// CPU entry points of preferenceLoss, ktoLoss, tokenWeightedDpoLoss and ldDpoLogps (sync and Promise forms), on
// the op protocol (slots.h); the decoding is shared with the CUDA addon (ops/preference.h).
#include "common.h"

#include <string>

#include "ops/preference.h"

namespace {

std::string Message(const rk::Status& st, const char* lengths_name) {
  switch (st.code) {
    case rk::Status::Ok: return "";
    case rk::Status::BadIndex:
      return std::string(lengths_name) + "[" + std::to_string(st.index) + "]: expected a length >= 1, received " +
             std::to_string(st.value);
    default: return "preference kernel: inconsistent arguments";
  }
}

Napi::Value PreferenceLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LPR);
  const rkb::PreferenceLossCall c = rkb::DecodePreferenceLoss(a);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() {
    rk::PreferenceOutputs out;
    out.losses = c.out.losses;
    out.chosen_rewards = c.out.chosen_rewards;
    out.rejected_rewards = c.out.rejected_rewards;
    out.grad_chosen = c.out.grad_chosen;
    out.grad_rejected = c.out.grad_rejected;
    rk::Status st = rk::preference_loss(c.in, c.p, out);
    if (!st.ok()) {
      const bool chosen_bad = st.code == rk::Status::BadIndex && c.in.chosen_len[st.index] < 1;
      return Message(st, chosen_bad ? "chosenLengths" : "rejectedLengths");
    }
    s[rkb::LPR::scalar::loss] = out.loss;
    s[rkb::LPR::scalar::rewardAccuracy] = out.reward_accuracy;
    s[rkb::LPR::scalar::rewardMargin] = out.reward_margin;
    return std::string();
  }, a.Done());
}

Napi::Value KtoLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LKT);
  const rkb::KtoLossCall c = rkb::DecodeKtoLoss(a);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() {
    rk::KtoOutputs out;
    out.losses = c.losses;
    out.rewards = c.rewards;
    out.grad = c.grad;
    rk::Status st = rk::kto_loss(c.n, c.logp, c.ref, c.desirable, c.p, out);
    if (!st.ok()) return Message(st, "desirable");
    s[rkb::LKT::scalar::loss] = out.loss;
    s[rkb::LKT::scalar::desirableRewardMean] = out.desirable_reward_mean;
    s[rkb::LKT::scalar::undesirableRewardMean] = out.undesirable_reward_mean;
    return std::string();
  }, a.Done());
}

Napi::Value TokenWeightedDpoLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LTW);
  const rkb::TokenWeightedDpoCall c = rkb::DecodeTokenWeightedDpoLoss(a);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() {
    rk::TgdpoOutputs out;
    out.losses = c.out.losses;
    out.chosen_rewards = c.out.chosen_rewards;
    out.rejected_rewards = c.out.rejected_rewards;
    out.grad_chosen = c.out.grad_chosen;
    out.grad_rejected = c.out.grad_rejected;
    rk::Status st = rk::token_weighted_dpo_loss(c.in, c.beta, c.alpha, out);
    if (!st.ok()) return Message(st, "batch");
    s[rkb::LTW::scalar::loss] = out.loss;
    s[rkb::LTW::scalar::rewardAccuracy] = out.reward_accuracy;
    s[rkb::LTW::scalar::rewardMargin] = out.reward_margin;
    return std::string();
  }, a.Done());
}

Napi::Value LdDpoLogps(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LLD);
  const rkb::LdDpoCall c = rkb::DecodeLdDpoLogps(a);
  return rkb::Run(info, async, [c]() {
    const rk::Status st = rk::ld_dpo_logps(c.in, c.alpha, c.out);
    return st.ok() ? std::string() : Message(st, "chosenTokenLogps");
  }, a.Done());
}

}  // namespace

RK_REGISTER_OPS(preference, RK_PREFERENCE_OPS);
