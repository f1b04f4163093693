// p3oLoss on the CPU (the formula: native/core/p3o.h).
#pragma once
#include "../core/p3o.h"

namespace rk {

// Writes both gradient rows of every pair; scalars[0] = the mean loss over pairs, scalars[1] = the
// clipped share (of the 2B ratios for the separate clip, of the B joint ratios for the joint clip).
// Pairs run in parallel blocks; their losses are summed in pair order afterwards (no thread count enters).
void p3o_loss(const P3oInputs& in, const P3oParams& p, const P3oOutputs& out, double* scalars);

}  // namespace rk
