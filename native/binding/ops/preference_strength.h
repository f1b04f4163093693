// Decoding of preferenceStrengthLoss (lib/pairwise/), shared by the CPU addon
// (native/binding/preference_strength.cc) and the CUDA addon (native/cuda_binding/preference_strength.cc):
// slots and params by the names of layout.gen.h, every length rechecked.
#pragma once
#include <string>

#include "../../kernels/preference_strength.h"
#include "../slots.h"

#define RK_PREFERENCE_STRENGTH_OPS(X) X(preferenceStrengthLoss, PreferenceStrengthLoss)

namespace rkb {

namespace LPS = rkl::preferenceStrengthLoss;

struct PreferenceStrengthCall {
  rk::StrengthInputs in;
  rk::StrengthParams params;
  rk::StrengthOutputs out;
};

inline PreferenceStrengthCall DecodePreferenceStrengthLoss(const OpArgs& a) {
  PreferenceStrengthCall c;
  const Slot& ch = a.Need(LPS::slot::chosenRewards, {SlotType::F32});
  const int64_t P = static_cast<int64_t>(ch.length);
  if (P < 1) throw a.Range("chosenRewards: expected at least one pair, received length 0");
  const Slot& rj = a.Need(LPS::slot::rejectedRewards, {SlotType::F32}, P);
  const Slot& ec = a.Need(LPS::slot::ensembleChosen, {SlotType::F32});
  const int64_t n = static_cast<int64_t>(ec.length);
  if (n < P || n % P != 0)
    throw a.Range("ensembleChosen: expected a positive multiple of the pair count (" + std::to_string(P) + "), received length " +
                  std::to_string(n));
  const Slot& er = a.Need(LPS::slot::ensembleRejected, {SlotType::F32}, n);
  c.in.chosen = ch.as<const float>();
  c.in.rejected = rj.as<const float>();
  c.in.ensemble_chosen = ec.as<const float>();
  c.in.ensemble_rejected = er.as<const float>();
  c.in.P = P;
  c.in.M = n / P;
  c.params.label_smoothing = a.Param(LPS::param::labelSmoothing, "labelSmoothing", 0.0, 0.5);
  c.params.correction = a.Param(LPS::param::stdCorrection, "stdCorrection", 0.0, 1.0);
  c.params.adaptive_margin = a.Param(LPS::param::adaptiveMargin, "adaptiveMargin", 0.0, 1.0) != 0;
  c.params.flip = a.Param(LPS::param::flipNegative, "flipNegative", 0.0, 1.0) != 0;
  c.out.losses = a.Out(LPS::slot::losses, {SlotType::F32}, P).as<float>();
  c.out.grad_chosen = a.Out(LPS::slot::gradChosen, {SlotType::F32}, P).as<float>();
  c.out.grad_rejected = a.Out(LPS::slot::gradRejected, {SlotType::F32}, P).as<float>();
  c.out.mean = a.Out(LPS::slot::strengthMean, {SlotType::F32}, P).as<float>();
  c.out.std = a.Out(LPS::slot::strengthStd, {SlotType::F32}, P).as<float>();
  return c;
}

}  // namespace rkb
