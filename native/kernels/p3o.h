// p3oLoss on the CPU (the formula: native/core/p3o.h).
#pragma once
#include "../core/p3o.h"

namespace rk {

// Writes both gradient rows of every pair; scalars[0] = the mean loss over pairs, scalars[1] = the
// clipped share (of the 2B ratios for the separate clip, of the B joint ratios for the joint clip).
// Pairs run in parallel blocks; their losses are summed in pair order afterwards (no thread count enters).
// With p.trlx (the authors' code's surrogate): scalars[1] is the clipped share of the B pairs (joint)
// or of the counted tokens (token-wise); q's std and the token count are summed in pair order too.
void p3o_loss(const P3oInputs& in, const P3oParams& p, const P3oOutputs& out, double* scalars);

}  // namespace rk
