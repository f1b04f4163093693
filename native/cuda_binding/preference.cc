// CUDA entry points of the preference losses (cuda/preference.h), sync and Promise forms. Every
// device array is a (pointer: bigint, length) pair of arguments; the scalar results come back in a
// host Float64Array(3) (downloaded before the call returns / the Promise settles):
//   preferenceLoss(chosen, n, rejected, n, refChosen|null, n, refRejected|null, n,
//                  chosenLen|null, n, rejectedLen|null, n, margin|null, n, preferenceProb|null, n,
//                  params: Float64Array(10) (as native/binding/preference.cc), losses, n,
//                  chosenRewards, n, rejectedRewards, n, gradChosen, n, gradRejected, n,
//                  stats: Float64Array(3) [loss, rewardAccuracy, rewardMargin])
//   ktoLoss(logp, n, ref|null, n, desirable (u8), n, params: Float64Array(4), losses, n, rewards, n,
//           grad, n, stats: Float64Array(3) [loss, desirableRewardMean, undesirableRewardMean])
//   tokenWeightedDpoLoss(batch, seqLen, chosen, nt, rejected, nt, refChosen, nt, refRejected, nt,
//                        chosenTokenRewards, nt, rejectedTokenRewards, nt, chosenMask, nt,
//                        rejectedMask, nt, maskIsF32, beta, alpha, losses, B, chosenRewards, B,
//                        rejectedRewards, B, gradChosen, nt, gradRejected, nt, stats: Float64Array(3))
// Everything runs on the legacy default stream. Lengths < 1 where the loss uses them are found on
// the device; the call waits for the stream and throws the host path's RangeError text.
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "cuda_common.h"
#include "kernel_params.h"
#include "preference.h"

namespace {

rkcb::DevArray Dev(const Napi::CallbackInfo& info, size_t i, const char* name, size_t n) {
  rkcb::DevArray a = rkcb::GetDevice(info, i, name);
  rkcb::RequireDeviceLength(info.Env(), a, n, name);
  return a;
}
rkcb::DevArray OptDev(const Napi::CallbackInfo& info, size_t i, const char* name, size_t n) {
  rkcb::DevArray a = rkcb::GetOptionalDevice(info, i, name);
  if (!(info[i].IsNull() || info[i].IsUndefined())) rkcb::RequireDeviceLength(info.Env(), a, n, name);
  return a;
}
rkb::Array F64(const Napi::CallbackInfo& info, size_t i, const char* name, size_t n) {
  rkb::Array a = rkb::GetArray(info, i, name, {napi_float64_array});
  rkb::RequireLength(info.Env(), a, n, name);
  return a;
}
const float* F(const rkcb::DevArray& a) { return static_cast<const float*>(a.ptr); }
float* Out(const rkcb::DevArray& a) { return static_cast<float*>(a.ptr); }

// No bad elements in these calls: a kBadTarget cannot happen; named generically just in case.
rkcb::BadTargetText NoBadTarget(const char* what) {
  return [what](int64_t i, int64_t v) {
    return std::string(what) + "[" + std::to_string(i) + "]: bad value " + std::to_string(v);
  };
}

Napi::Value Preference(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  rkcb::DevArray chosen = rkcb::GetDevice(info, 0, "chosenLogps");
  const size_t n = chosen.length;
  if (n < 1) throw Napi::RangeError::New(env, "chosenLogps: expected at least one pair, received 0");
  rkcb::DevArray rejected = Dev(info, 2, "rejectedLogps", n);
  rkcb::DevArray refc = OptDev(info, 4, "refChosenLogps", n);
  rkcb::DevArray refr = OptDev(info, 6, "refRejectedLogps", n);
  if ((refc.ptr == nullptr) != (refr.ptr == nullptr))
    throw Napi::TypeError::New(env, "refChosenLogps: expected both reference arrays or neither");
  rkcb::DevArray lw = OptDev(info, 8, "chosenLengths", n);
  rkcb::DevArray ll = OptDev(info, 10, "rejectedLengths", n);
  rkcb::DevArray margin = OptDev(info, 12, "margin", n);
  rkcb::DevArray prob = OptDev(info, 14, "preferenceProb", n);
  rkb::Array params = F64(info, 16, "params", 10);
  const double* q = static_cast<const double*>(params.data);
  const rk::PreferenceParams p = rkb::PreferenceParamsFrom(env, q);
  const bool needs_lengths = rk::preference_needs_lengths(p);
  if (needs_lengths && (!lw.ptr || !ll.ptr))
    throw Napi::TypeError::New(env, "chosenLengths: this loss needs chosenLengths and rejectedLengths");
  rkcb::DevArray losses = Dev(info, 17, "out.losses", n);
  rkcb::DevArray rc = Dev(info, 19, "out.chosenRewards", n);
  rkcb::DevArray rr = Dev(info, 21, "out.rejectedRewards", n);
  rkcb::DevArray gc = Dev(info, 23, "out.gradChosen", n);
  rkcb::DevArray gr = Dev(info, 25, "out.gradRejected", n);
  rkb::Array stats = F64(info, 27, "stats", 3);

  rkcuda::PreferenceLossArgs a;
  a.in.pairs = static_cast<int64_t>(n);
  a.in.chosen = F(chosen);
  a.in.rejected = F(rejected);
  a.in.ref_chosen = F(refc);
  a.in.ref_rejected = F(refr);
  // Lengths the loss does not use are not passed (never read on the device).
  a.in.chosen_len = needs_lengths ? static_cast<const int32_t*>(lw.ptr) : nullptr;
  a.in.rejected_len = needs_lengths ? static_cast<const int32_t*>(ll.ptr) : nullptr;
  a.in.margin = F(margin);
  a.in.preference_prob = F(prob);
  a.params = p;
  a.losses = Out(losses);
  a.chosen_rewards = Out(rc);
  a.rejected_rewards = Out(rr);
  a.grad_chosen = Out(gc);
  a.grad_rejected = Out(gr);
  double* so = static_cast<double*>(stats.data);
  // Which lengths array was bad: set by the call (worker thread), read when the error is built.
  auto which = std::make_shared<std::string>("chosen_len");
  return rkcb::RunDevice(
      info, async,
      [a, so, which]() {
        rkcuda::Result r = rkcb::WithScalars(3, so, [&a](double* d) {
          rkcuda::PreferenceLossArgs b = a;
          b.scalars = d;
          return rkcuda::preference_loss(b, nullptr);
        });
        if (r.code == rkcuda::kBadTarget) *which = r.where;
        return r;
      },
      [which](int64_t pair, int64_t len) {
        const char* name = *which == "rejected_len" ? "options.rejectedLengths" : "options.chosenLengths";
        return std::string(name) + "[" + std::to_string(pair) + "]: expected a length >= 1, received " + std::to_string(len);
      });
}

Napi::Value Kto(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  rkcb::DevArray logp = rkcb::GetDevice(info, 0, "policyLogps");
  const size_t n = logp.length;
  if (n < 1) throw Napi::RangeError::New(env, "policyLogps: expected at least one example, received 0");
  rkcb::DevArray ref = OptDev(info, 2, "refLogps", n);
  rkcb::DevArray des = Dev(info, 4, "desirable", n);
  rkb::Array params = F64(info, 6, "params", 4);
  const double* q = static_cast<const double*>(params.data);
  rk::KtoParams p;
  p.beta = q[0];
  p.kl = q[1];
  p.desirable_weight = q[2];
  p.undesirable_weight = q[3];
  if (!(p.beta > 0)) throw Napi::RangeError::New(env, "beta: expected a positive number");
  rkcb::DevArray losses = Dev(info, 7, "out.losses", n);
  rkcb::DevArray rewards = Dev(info, 9, "out.rewards", n);
  rkcb::DevArray grad = Dev(info, 11, "out.grad", n);
  rkb::Array stats = F64(info, 13, "stats", 3);
  rkcuda::KtoLossArgs a;
  a.n = static_cast<int64_t>(n);
  a.logp = F(logp);
  a.ref = F(ref);
  a.desirable = static_cast<const uint8_t*>(des.ptr);
  a.params = p;
  a.losses = Out(losses);
  a.rewards = Out(rewards);
  a.grad = Out(grad);
  double* so = static_cast<double*>(stats.data);
  return rkcb::RunDevice(
      info, async,
      [a, so]() {
        return rkcb::WithScalars(3, so, [&a](double* d) {
          rkcuda::KtoLossArgs b = a;
          b.scalars = d;
          return rkcuda::kto_loss(b, nullptr);
        });
      },
      NoBadTarget("desirable"));
}

Napi::Value Tgdpo(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  const int64_t batch = rkb::GetInteger(info, 0, "batch", 1, INT32_MAX);
  const int64_t seq = rkb::GetInteger(info, 1, "seqLen", 1, INT32_MAX);
  const size_t nt = static_cast<size_t>(batch) * static_cast<size_t>(seq);
  rkcb::DevArray cw = Dev(info, 2, "chosenLogps", nt);
  rkcb::DevArray cl = Dev(info, 4, "rejectedLogps", nt);
  rkcb::DevArray rw = Dev(info, 6, "refChosenLogps", nt);
  rkcb::DevArray rl = Dev(info, 8, "refRejectedLogps", nt);
  rkcb::DevArray tw = Dev(info, 10, "chosenTokenRewards", nt);
  rkcb::DevArray tl = Dev(info, 12, "rejectedTokenRewards", nt);
  rkcb::DevArray mw = Dev(info, 14, "chosenMask", nt);
  rkcb::DevArray ml = Dev(info, 16, "rejectedMask", nt);
  const bool mask_f32 = info[18].IsBoolean() && info[18].As<Napi::Boolean>().Value();
  const double beta = rkb::GetNumber(info, 19, "beta");
  const double alpha = rkb::GetNumber(info, 20, "alpha");
  if (!(beta > 0)) throw Napi::RangeError::New(env, "beta: expected a positive number");
  if (!std::isfinite(alpha)) throw Napi::RangeError::New(env, "alpha: expected a finite number");
  const size_t b = static_cast<size_t>(batch);
  rkcb::DevArray losses = Dev(info, 21, "out.losses", b);
  rkcb::DevArray rc = Dev(info, 23, "out.chosenRewards", b);
  rkcb::DevArray rr = Dev(info, 25, "out.rejectedRewards", b);
  rkcb::DevArray gc = Dev(info, 27, "out.gradChosen", nt);
  rkcb::DevArray gr = Dev(info, 29, "out.gradRejected", nt);
  rkb::Array stats = F64(info, 31, "stats", 3);
  rkcuda::TgdpoArgs a;
  a.in.batch = batch;
  a.in.seq_len = seq;
  a.in.chosen = F(cw);
  a.in.rejected = F(cl);
  a.in.ref_chosen = F(rw);
  a.in.ref_rejected = F(rl);
  a.in.chosen_token_rewards = F(tw);
  a.in.rejected_token_rewards = F(tl);
  a.in.chosen_mask = mw.ptr;
  a.in.rejected_mask = ml.ptr;
  a.in.mask_is_f32 = mask_f32;
  a.beta = beta;
  a.alpha = alpha;
  a.losses = Out(losses);
  a.chosen_rewards = Out(rc);
  a.rejected_rewards = Out(rr);
  a.grad_chosen = Out(gc);
  a.grad_rejected = Out(gr);
  double* so = static_cast<double*>(stats.data);
  return rkcb::RunDevice(
      info, async,
      [a, so]() {
        return rkcb::WithScalars(3, so, [&a](double* d) {
          rkcuda::TgdpoArgs c = a;
          c.scalars = d;
          return rkcuda::token_weighted_dpo_loss(c, nullptr);
        });
      },
      NoBadTarget("chosenMask"));
}

void InitCudaPreference(Napi::Env env, Napi::Object exports) {
  exports.Set("preferenceLoss", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Preference(i, false); }));
  exports.Set("preferenceLossAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Preference(i, true); }));
  exports.Set("ktoLoss", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Kto(i, false); }));
  exports.Set("ktoLossAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Kto(i, true); }));
  exports.Set("tokenWeightedDpoLoss", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Tgdpo(i, false); }));
  exports.Set("tokenWeightedDpoLossAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Tgdpo(i, true); }));
}

}  // namespace

RK_REGISTER_BINDING(cuda_preference, InitCudaPreference);
