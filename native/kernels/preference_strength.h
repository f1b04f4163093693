// preferenceStrengthLoss on the CPU (the formula: native/core/preference_strength.h).
#pragma once
#include "../core/preference_strength.h"

namespace rk {

// Writes every pair's outputs; scalars[0] = the mean loss, scalars[1] = the share of flipped pairs.
// Pairs are independent and their sums run in pair order on the calling thread (no thread count enters).
void preference_strength_loss(const StrengthInputs& in, const StrengthParams& p, const StrengthOutputs& out, double* scalars);

}  // namespace rk
