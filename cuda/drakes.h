// The DRAKES ops on a CUDA device (docs/papers/drakes.md; the CPU kernels are native/kernels/drakes.cc
// and these match them): gumbelSoftmax and its backward, and drakesKl. One block per row; the
// per-element formulas and the counter-based Gumbel noise are the shared core's
// (native/core/drakes.h), so the noise, and so the argmax index, are the CPU's bit for bit; the sums
// run per thread in order, then a fixed tree, so every run gives the same bits.
// Plain C++ header; every array is a DEVICE pointer; streams are `void*` (nullptr = legacy stream).
#pragma once
#include <cstdint>

#include "../native/core/drakes.h"  // the formulas and the Gumbel noise
#include "logprobs.h"  // LogitsDType (kF32 / kBF16 / kF16)
#include "result.h"

namespace rkcuda {

struct GumbelArgs {
  const void* logits = nullptr;  // (N, V)
  int dtype = kF32;
  int64_t rows = 0, vocab = 0;
  double temperature = 1.0;
  uint64_t seed = 0;
  bool hard = false;
  float* sample = nullptr;           // forward: (N, V)
  int32_t* index = nullptr;          // forward: (N)
  const float* grad_sample = nullptr;  // backward: (N, V)
  float* grad = nullptr;               // backward: (N, V)
};
Result gumbel_softmax_forward(const GumbelArgs& a, void* stream);
Result gumbel_softmax_backward(const GumbelArgs& a, void* stream);

struct DrakesKlArgs {
  const void* logits = nullptr;  // (N, V)
  const void* old = nullptr;     // (N, V), same dtype
  int dtype = kF32;
  int64_t rows = 0, vocab = 0;
  const uint8_t* mask = nullptr;  // (N) optional
  double move_chance = 1;
  const float* move_chance_rows = nullptr;  // (N) optional
  double grad_scale = 1;
  const float* grad_rows = nullptr;  // (N) optional
  float* kl = nullptr;               // (N)
  float* grad = nullptr;             // (N, V) optional
  float* grad_old = nullptr;         // (N, V) optional
};
Result drakes_kl(const DrakesKlArgs& a, void* stream);

}  // namespace rkcuda
