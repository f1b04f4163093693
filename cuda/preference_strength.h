// preferenceStrengthLoss on a CUDA device (docs/papers/secrets-rlhf-2.md): the same formula as the
// CPU kernel (native/core/preference_strength.h). Plain C++ header; every array is a DEVICE pointer.
#pragma once
#include "../native/core/preference_strength.h"
#include "result.h"

namespace rkcuda {

struct StrengthArgs {
  rk::StrengthInputs in;  // device pointers; P >= 1, M >= 1
  rk::StrengthParams params;
  rk::StrengthOutputs out;
  double* scalars = nullptr;  // device, 2 doubles: mean loss, flipped share
};

// One block: each thread takes a contiguous run of pairs, then a fixed tree (no atomics).
Result preference_strength_loss(const StrengthArgs& args, void* stream);

}  // namespace rkcuda
