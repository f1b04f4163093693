// CUDA entry points of preferenceLoss, ktoLoss, tokenWeightedDpoLoss and ldDpoLogps (cuda/preference.h), sync and
// Promise forms, on the op protocol (native/binding/slots.h) with the decoding shared with the CPU
// addon (ops/preference.h). The scalar results are downloaded into the host Float64Array before the
// call returns / the Promise settles. Everything runs on the legacy default stream. Lengths < 1
// where the loss uses them are found on the device; the call waits for the stream and throws the
// host path's RangeError text.
#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "cuda_common.h"
#include "ops/preference.h"
#include "preference.h"

namespace {

// No bad elements in these calls: a kBadTarget cannot happen; named generically just in case.
rkcb::BadTargetText NoBadTarget(const char* what) {
  return [what](int64_t i, int64_t v) {
    return std::string(what) + "[" + std::to_string(i) + "]: bad value " + std::to_string(v);
  };
}

Napi::Value PreferenceLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LPR);
  const rkb::PreferenceLossCall c = rkb::DecodePreferenceLoss(oa);
  rkcuda::PreferenceLossArgs a;
  a.in = c.in;
  // Lengths the loss does not use are not passed (never read on the device).
  if (!c.needs_lengths) a.in.chosen_len = a.in.rejected_len = nullptr;
  a.params = c.p;
  a.losses = c.out.losses;
  a.chosen_rewards = c.out.chosen_rewards;
  a.rejected_rewards = c.out.rejected_rewards;
  a.grad_chosen = c.out.grad_chosen;
  a.grad_rejected = c.out.grad_rejected;
  double* so = oa.scalars;
  // Which lengths array was bad: set by the call (worker thread), read when the error is built.
  auto which = std::make_shared<std::string>("chosen_len");
  return rkcb::RunDevice(
      info, async,
      [a, so, which]() {
        rkcuda::Result r = rkcb::KernelWithScalars(a, &rkcuda::PreferenceLossArgs::scalars, rkb::LPR::scalar::kCount, so, rkcuda::preference_loss);
        if (r.code == rkcuda::kBadTarget) *which = r.where;
        return r;
      },
      [which](int64_t pair, int64_t len) {
        const char* name = *which == "rejected_len" ? "options.rejectedLengths" : "options.chosenLengths";
        return std::string(name) + "[" + std::to_string(pair) + "]: expected a length >= 1, received " + std::to_string(len);
      });
}

Napi::Value KtoLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LKT);
  const rkb::KtoLossCall c = rkb::DecodeKtoLoss(oa);
  rkcuda::KtoLossArgs a;
  a.n = c.n;
  a.logp = c.logp;
  a.ref = c.ref;
  a.desirable = c.desirable;
  a.params = c.p;
  a.losses = c.losses;
  a.rewards = c.rewards;
  a.grad = c.grad;
  double* so = oa.scalars;
  return rkcb::RunDevice(
      info, async,
      [a, so]() {
        return rkcb::KernelWithScalars(a, &rkcuda::KtoLossArgs::scalars, rkb::LKT::scalar::kCount, so, rkcuda::kto_loss);
      },
      NoBadTarget("desirable"));
}

Napi::Value TokenWeightedDpoLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LTW);
  const rkb::TokenWeightedDpoCall c = rkb::DecodeTokenWeightedDpoLoss(oa);
  rkcuda::TgdpoArgs a;
  a.in = c.in;
  a.beta = c.beta;
  a.alpha = c.alpha;
  a.losses = c.out.losses;
  a.chosen_rewards = c.out.chosen_rewards;
  a.rejected_rewards = c.out.rejected_rewards;
  a.grad_chosen = c.out.grad_chosen;
  a.grad_rejected = c.out.grad_rejected;
  double* so = oa.scalars;
  return rkcb::RunDevice(
      info, async,
      [a, so]() {
        return rkcb::KernelWithScalars(a, &rkcuda::TgdpoArgs::scalars, rkb::LTW::scalar::kCount, so, rkcuda::token_weighted_dpo_loss);
      },
      NoBadTarget("chosenMask"));
}

Napi::Value LdDpoLogps(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LLD);
  const rkb::LdDpoCall c = rkb::DecodeLdDpoLogps(oa);
  rkcuda::LdDpoArgs a;
  a.in = c.in;
  a.alpha = c.alpha;
  a.out = c.out;
  return rkcb::RunDevice(info, async, [a]() { return rkcuda::ld_dpo_logps(a, nullptr); }, NoBadTarget("chosenMask"));
}

}  // namespace

RK_REGISTER_OPS(cuda_preference, RK_PREFERENCE_OPS);
