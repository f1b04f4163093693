// p3oLoss on a CUDA device (docs/papers/p3o.md): the same formula as the CPU kernel
// (native/core/p3o.h). Plain C++ header; every array is a DEVICE pointer.
#pragma once
#include "../native/core/p3o.h"
#include "result.h"

namespace rkcuda {

struct P3oArgs {
  rk::P3oInputs in;  // device pointers; B >= 1, masks may be null
  rk::P3oParams params;
  rk::P3oOutputs out;
  double* scalars = nullptr;  // device, 2 doubles: mean loss, clipped share
};

// One block: each thread takes a contiguous run of pairs, then a fixed tree (no atomics).
Result p3o_loss(const P3oArgs& args, void* stream);

}  // namespace rkcuda
