// CPU entry points of preferenceStrengthLoss (sync and Promise forms), on the op protocol (slots.h);
// the decoding is shared with the CUDA addon (ops/preference_strength.h).
#include "common.h"

#include <string>

#include "ops/preference_strength.h"

namespace {

Napi::Value PreferenceStrengthLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LPS);
  const rkb::PreferenceStrengthCall c = rkb::DecodePreferenceStrengthLoss(a);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() -> std::string {
    rk::preference_strength_loss(c.in, c.params, c.out, s);
    return "";
  }, a.Done());
}

}  // namespace

RK_REGISTER_OPS(preference_strength, RK_PREFERENCE_STRENGTH_OPS);
