// N-API entry points of the preference losses (sync and Promise forms).
//   preferenceLoss(chosen, rejected, refChosen|null, refRejected|null, chosenLen|null,
//                  rejectedLen|null, margin|null, preferenceProb|null, params: Float64Array(10)
//                  [loss, beta, labelSmoothing, gamma, alpha, tau, margin, fDivergence, fAlpha,
//                  nllWeight], losses, chosenRewards, rejectedRewards, gradChosen, gradRejected,
//                  stats: Float64Array(3) [loss, rewardAccuracy, rewardMargin])
//   ktoLoss(logp, ref|null, desirable: Uint8Array, params: Float64Array(4) [beta, kl,
//           desirableWeight, undesirableWeight], losses, rewards, grad, stats: Float64Array(3)
//           [loss, desirableRewardMean, undesirableRewardMean])
//   tokenWeightedDpoLoss(batch, seqLen, chosen, rejected, refChosen, refRejected,
//                        chosenTokenRewards, rejectedTokenRewards, chosenMask, rejectedMask,
//                        beta, alpha, losses, chosenRewards, rejectedRewards, gradChosen,
//                        gradRejected, stats: Float64Array(3) [loss, rewardAccuracy, rewardMargin])
// The stats array receives the scalar results (written by the kernel, read by the facade).
#include "common.h"
#include <climits>
#include <cmath>
#include <string>

#include "kernel_params.h"
#include "preference.h"

namespace {

std::string Message(const rk::Status& st, const char* lengths_name) {
  switch (st.code) {
    case rk::Status::Ok: return "";
    case rk::Status::BadIndex:
      return std::string(lengths_name) + "[" + std::to_string(st.index) +
             "]: expected a length >= 1, received " + std::to_string(st.value);
    default: return "preference kernel: inconsistent arguments";
  }
}

rkb::Array F32(const Napi::CallbackInfo& info, size_t i, const char* name, size_t n) {
  rkb::Array a = rkb::GetArray(info, i, name, {napi_float32_array});
  rkb::RequireLength(info.Env(), a, n, name);
  return a;
}
rkb::Array OptF32(const Napi::CallbackInfo& info, size_t i, const char* name, size_t n) {
  rkb::Array a = rkb::GetOptionalArray(info, i, name, {napi_float32_array});
  if (a.data) rkb::RequireLength(info.Env(), a, n, name);
  return a;
}
rkb::Array F64(const Napi::CallbackInfo& info, size_t i, const char* name, size_t n) {
  rkb::Array a = rkb::GetArray(info, i, name, {napi_float64_array});
  rkb::RequireLength(info.Env(), a, n, name);
  return a;
}

Napi::Value Preference(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  rkb::Array chosen = rkb::GetArray(info, 0, "chosenLogps", {napi_float32_array});
  const size_t n = chosen.length;
  if (n < 1) throw Napi::RangeError::New(env, "chosenLogps: expected at least one pair, received 0");
  rkb::Array rejected = F32(info, 1, "rejectedLogps", n);
  rkb::Array refc = OptF32(info, 2, "refChosenLogps", n);
  rkb::Array refr = OptF32(info, 3, "refRejectedLogps", n);
  rkb::Array lw = rkb::GetOptionalArray(info, 4, "chosenLengths", {napi_int32_array});
  if (lw.data) rkb::RequireLength(env, lw, n, "chosenLengths");
  rkb::Array ll = rkb::GetOptionalArray(info, 5, "rejectedLengths", {napi_int32_array});
  if (ll.data) rkb::RequireLength(env, ll, n, "rejectedLengths");
  rkb::Array margin = OptF32(info, 6, "margin", n);
  rkb::Array prob = OptF32(info, 7, "preferenceProb", n);
  rkb::Array params = F64(info, 8, "params", 10);
  const double* q = static_cast<const double*>(params.data);
  const rk::PreferenceParams p = rkb::PreferenceParamsFrom(env, q);
  if (rk::preference_needs_lengths(p) && (!lw.data || !ll.data))
    throw Napi::TypeError::New(env, "chosenLengths: this loss needs chosenLengths and rejectedLengths");
  rkb::Array losses = F32(info, 9, "out.losses", n);
  rkb::Array rc = F32(info, 10, "out.chosenRewards", n);
  rkb::Array rr = F32(info, 11, "out.rejectedRewards", n);
  rkb::Array gc = F32(info, 12, "out.gradChosen", n);
  rkb::Array gr = F32(info, 13, "out.gradRejected", n);
  rkb::Array stats = F64(info, 14, "stats", 3);
  rk::PreferenceInputs in;
  in.pairs = static_cast<int64_t>(n);
  in.chosen = static_cast<const float*>(chosen.data);
  in.rejected = static_cast<const float*>(rejected.data);
  in.ref_chosen = static_cast<const float*>(refc.data);
  in.ref_rejected = static_cast<const float*>(refr.data);
  in.chosen_len = static_cast<const int32_t*>(lw.data);
  in.rejected_len = static_cast<const int32_t*>(ll.data);
  in.margin = static_cast<const float*>(margin.data);
  in.preference_prob = static_cast<const float*>(prob.data);
  auto fn = [=]() {
    rk::PreferenceOutputs out;
    out.losses = static_cast<float*>(losses.data);
    out.chosen_rewards = static_cast<float*>(rc.data);
    out.rejected_rewards = static_cast<float*>(rr.data);
    out.grad_chosen = static_cast<float*>(gc.data);
    out.grad_rejected = static_cast<float*>(gr.data);
    rk::Status st = rk::preference_loss(in, p, out);
    if (!st.ok()) {
      const bool chosen_bad = st.code == rk::Status::BadIndex && in.chosen_len[st.index] < 1;
      return Message(st, chosen_bad ? "chosenLengths" : "rejectedLengths");
    }
    double* s = static_cast<double*>(stats.data);
    s[0] = out.loss;
    s[1] = out.reward_accuracy;
    s[2] = out.reward_margin;
    return std::string();
  };
  return rkb::Run(info, async, fn);
}

Napi::Value Kto(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  rkb::Array logp = rkb::GetArray(info, 0, "policyLogps", {napi_float32_array});
  const size_t n = logp.length;
  if (n < 1) throw Napi::RangeError::New(env, "policyLogps: expected at least one example, received 0");
  rkb::Array ref = OptF32(info, 1, "refLogps", n);
  rkb::Array des = rkb::GetArray(info, 2, "desirable", {napi_uint8_array});
  rkb::RequireLength(env, des, n, "desirable");
  rkb::Array params = F64(info, 3, "params", 4);
  const double* q = static_cast<const double*>(params.data);
  rk::KtoParams p;
  p.beta = q[0];
  p.kl = q[1];
  p.desirable_weight = q[2];
  p.undesirable_weight = q[3];
  if (!(p.beta > 0)) throw Napi::RangeError::New(env, "beta: expected a positive number");
  rkb::Array losses = F32(info, 4, "out.losses", n);
  rkb::Array rewards = F32(info, 5, "out.rewards", n);
  rkb::Array grad = F32(info, 6, "out.grad", n);
  rkb::Array stats = F64(info, 7, "stats", 3);
  auto fn = [=]() {
    rk::KtoOutputs out;
    out.losses = static_cast<float*>(losses.data);
    out.rewards = static_cast<float*>(rewards.data);
    out.grad = static_cast<float*>(grad.data);
    rk::Status st = rk::kto_loss(static_cast<int64_t>(n), static_cast<const float*>(logp.data),
                                 static_cast<const float*>(ref.data),
                                 static_cast<const uint8_t*>(des.data), p, out);
    if (!st.ok()) return Message(st, "desirable");
    double* s = static_cast<double*>(stats.data);
    s[0] = out.loss;
    s[1] = out.desirable_reward_mean;
    s[2] = out.undesirable_reward_mean;
    return std::string();
  };
  return rkb::Run(info, async, fn);
}

Napi::Value Tgdpo(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  const int64_t batch = rkb::GetInteger(info, 0, "batch", 1, INT32_MAX);
  const int64_t seq = rkb::GetInteger(info, 1, "seqLen", 1, INT32_MAX);
  const size_t nt = static_cast<size_t>(batch) * static_cast<size_t>(seq);
  rkb::Array cw = F32(info, 2, "chosenLogps", nt);
  rkb::Array cl = F32(info, 3, "rejectedLogps", nt);
  rkb::Array rw = F32(info, 4, "refChosenLogps", nt);
  rkb::Array rl = F32(info, 5, "refRejectedLogps", nt);
  rkb::Array tw = F32(info, 6, "chosenTokenRewards", nt);
  rkb::Array tl = F32(info, 7, "rejectedTokenRewards", nt);
  rkb::Array mw = rkb::GetArray(info, 8, "chosenMask", {napi_uint8_array, napi_float32_array});
  rkb::RequireLength(env, mw, nt, "chosenMask");
  rkb::Array ml = rkb::GetArray(info, 9, "rejectedMask", {mw.type});
  rkb::RequireLength(env, ml, nt, "rejectedMask");
  const double beta = rkb::GetNumber(info, 10, "beta");
  const double alpha = rkb::GetNumber(info, 11, "alpha");
  if (!(beta > 0)) throw Napi::RangeError::New(env, "beta: expected a positive number");
  const size_t b = static_cast<size_t>(batch);
  rkb::Array losses = F32(info, 12, "out.losses", b);
  rkb::Array rc = F32(info, 13, "out.chosenRewards", b);
  rkb::Array rr = F32(info, 14, "out.rejectedRewards", b);
  rkb::Array gc = F32(info, 15, "out.gradChosen", nt);
  rkb::Array gr = F32(info, 16, "out.gradRejected", nt);
  rkb::Array stats = F64(info, 17, "stats", 3);
  rk::TgdpoInputs in;
  in.batch = batch;
  in.seq_len = seq;
  in.chosen = static_cast<const float*>(cw.data);
  in.rejected = static_cast<const float*>(cl.data);
  in.ref_chosen = static_cast<const float*>(rw.data);
  in.ref_rejected = static_cast<const float*>(rl.data);
  in.chosen_token_rewards = static_cast<const float*>(tw.data);
  in.rejected_token_rewards = static_cast<const float*>(tl.data);
  in.chosen_mask = mw.data;
  in.rejected_mask = ml.data;
  in.mask_is_f32 = mw.type == napi_float32_array;
  auto fn = [=]() {
    rk::TgdpoOutputs out;
    out.losses = static_cast<float*>(losses.data);
    out.chosen_rewards = static_cast<float*>(rc.data);
    out.rejected_rewards = static_cast<float*>(rr.data);
    out.grad_chosen = static_cast<float*>(gc.data);
    out.grad_rejected = static_cast<float*>(gr.data);
    rk::Status st = rk::token_weighted_dpo_loss(in, beta, alpha, out);
    if (!st.ok()) return Message(st, "batch");
    double* s = static_cast<double*>(stats.data);
    s[0] = out.loss;
    s[1] = out.reward_accuracy;
    s[2] = out.reward_margin;
    return std::string();
  };
  return rkb::Run(info, async, fn);
}

void InitPreference(Napi::Env env, Napi::Object exports) {
  exports.Set("preferenceLoss", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Preference(i, false); }));
  exports.Set("preferenceLossAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Preference(i, true); }));
  exports.Set("ktoLoss", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Kto(i, false); }));
  exports.Set("ktoLossAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Kto(i, true); }));
  exports.Set("tokenWeightedDpoLoss", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Tgdpo(i, false); }));
  exports.Set("tokenWeightedDpoLossAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Tgdpo(i, true); }));
}

}  // namespace

RK_REGISTER_BINDING(preference, InitPreference);
