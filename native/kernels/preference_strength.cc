// preferenceStrengthLoss on the CPU: one pass over the pairs in order (preference_strength.h).
#include "preference_strength.h"

namespace rk {

void preference_strength_loss(const StrengthInputs& in, const StrengthParams& p, const StrengthOutputs& out, double* scalars) {
  double loss = 0, flips = 0;
  for (int64_t i = 0; i < in.P; ++i) {
    const core::StrengthPair r = core::strength_pair(in, p, i, out);
    loss += r.loss;
    flips += r.flipped ? 1.0 : 0.0;
  }
  const double inv = in.P > 0 ? 1.0 / static_cast<double>(in.P) : 0.0;
  scalars[0] = loss * inv;
  scalars[1] = flips * inv;
}

}  // namespace rk
