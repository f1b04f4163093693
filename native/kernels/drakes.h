// DRAKES kernels on the CPU (docs/papers/drakes.md): the Gumbel-softmax sample with its
// straight-through hard form, and its backward, which regenerates the noise from the seed. The
// per-element formulas are native/core/drakes.h, shared with cuda/drakes.cu.
#pragma once
#include <cstdint>

#include "logprobs.h"  // rk::LogitsView
#include "types.h"

namespace rk {

struct GumbelParams {
  double temperature = 1.0;
  uint64_t seed = 0;
  bool hard = false;  // forward: write the one-hot of the argmax instead of the soft sample
};

// sample (N, V): softmax((z + g) / tau), or the one-hot of its argmax when hard; index (N): the
// argmax (first on ties). A row with a NaN or +inf score, or with every score -inf, gets NaN and -1.
Status gumbel_softmax_forward(const LogitsView& logits, const GumbelParams& p, float* sample, int32_t* index);

// grad (N, V) = dL/dz = y (gs - sum_k y_k gs_k) / tau with y the soft sample of the same seed (the
// straight-through estimator passes dL/d(hard sample) to the soft one unchanged). NaN rows as above.
Status gumbel_softmax_backward(const LogitsView& logits, const GumbelParams& p, const float* grad_sample, float* grad);

}  // namespace rk
