// CUDA entry point of preferenceStrengthLoss (cuda/preference_strength.h), sync and Promise forms, on the
// op protocol (native/binding/slots.h) with the decoding shared with the CPU addon (ops/preference_strength.h).
#include "preference_strength.h"
#include "cuda_common.h"
#include "ops/preference_strength.h"

namespace {

Napi::Value PreferenceStrengthLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LPS);
  const rkb::PreferenceStrengthCall c = rkb::DecodePreferenceStrengthLoss(oa);
  rkcuda::StrengthArgs a;
  a.in = c.in;
  a.params = c.params;
  a.out = c.out;
  double* so = oa.scalars;
  return rkcb::RunDevice(
      info, async,
      [a, so]() {
        return rkcb::KernelWithScalars(a, &rkcuda::StrengthArgs::scalars, rkb::LPS::scalar::kCount, so, rkcuda::preference_strength_loss);
      },
      nullptr);
}

}  // namespace

RK_REGISTER_OPS(cuda_preference_strength, RK_PREFERENCE_STRENGTH_OPS);
