// Full-vocabulary divergences on a CUDA device, forward and gradient (docs/divergence.md; the CPU
// kernel is native/kernels/divergence.{h,cc} and this matches it).
//
// logits (student z), target (zt): (N, V) row-major on the device, the same dtype (f32/bf16/f16);
// div: (N) f32; grad: (N, V) f32, all on the device.
//   p = softmax(z / tau),  q = softmax(zt / tau)
//   forward_kl  D = KL(q || p)         dD/dz = (p - q) / tau
//   reverse_kl  D = KL(p || q)         dD/dz = p (log p - log q - D) / tau
//   jsd (beta)  D = beta KL(q || m) + (1 - beta) KL(p || m),  m = beta q + (1 - beta) p
//                                      dD/dz = (1 - beta) p (log(p/m) - KL(p || m)) / tau
//   (beta = 0 is exactly forward_kl, beta = 1 exactly reverse_kl, as on the CPU)
// The gradient written is dL/dz = g_r dD/dz with g_r = grad_scale * (grad_rows ? grad_rows[r] : 1).
// A row is inactive when row_mask[r] == 0 or labels[r] == ignore_index (either may be null): it
// gives D = 0 and a zero gradient row.
// Edge cases as on the CPU: -inf logits give probability 0 and contribute exactly 0; q = 0 where
// p > 0 makes reverse_kl +inf (its gradient NaN); p = 0 where q > 0 makes forward_kl +inf; a row
// with no distribution (all -inf) or a NaN logit gives D = NaN.
//
// Plain C++ header: no CUDA type appears here (streams are `void*`, nullptr = legacy stream). Errors
// come back as rkcuda::Result (result.h): kBadArgument (which argument in `where`) or kCudaError.
// Nothing here indexes with caller data (labels are only compared), so there is no bad-row slot.
//
// Determinism: the work split depends only on (N, V) (divergence_row_splits), every reduction runs
// in a fixed order, so the same inputs give bit-identical outputs on every run on the same card.
#pragma once
#include <cstdint>

#include "logprobs.h"  // LogitsDType (kF32 / kBF16 / kF16)
#include "result.h"    // rkcuda::Result, error_name, format_error

namespace rkcuda {

// Same values as rk::DivergenceKind.
enum DivergenceKind : int { kForwardKL = 0, kReverseKL = 1, kJSD = 2 };

struct DivergenceArgs {
  const void* logits = nullptr;  // (N, V) student; element-aligned (16-byte alignment not required)
  const void* target = nullptr;  // (N, V) target / teacher, same dtype; must not overlap grad
  int dtype = kF32;              // LogitsDType, both tensors
  int64_t rows = 0;              // N
  int64_t vocab = 0;             // V (>= 1)
  int kind = kJSD;               // DivergenceKind
  double beta = 0.5;             // jsd only, in [0, 1]
  float temperature = 1.0f;      // divides both logit rows, > 0
  const uint8_t* row_mask = nullptr;  // (N) optional: 0 = inactive row
  const int32_t* labels = nullptr;    // (N) optional: labels[r] == ignore_index = inactive row
  int32_t ignore_index = -100;
  float* div = nullptr;               // (N), required
  // Gradient (optional): written when grad != nullptr. May be the f32 logits themselves (in place).
  float* grad = nullptr;              // (N, V) f32
  double grad_scale = 1.0;            // dL/dD = grad_scale * (grad_rows ? grad_rows[r] : 1)
  const float* grad_rows = nullptr;   // (N) optional, on the device
};

// Passes over each row pair: forward_kl / reverse_kl read it once (online statistics of both rows
// and a cross sum in one pass); jsd reads it twice (the mixture needs both normalisers); the
// gradient adds one more read of both rows and one write of grad. Asynchronous on the stream
// (stream-ordered scratch of O(N) bytes).
Result vocab_divergence(const DivergenceArgs& args, void* stream);

// How the kernels split a row over blocks for this shape (1 = one block per row). For tests/bench.
int divergence_row_splits(int64_t rows, int64_t vocab);

}  // namespace rkcuda
