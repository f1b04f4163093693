// Token log-probs on a CUDA device, forward and backward (docs/logprobs.md; the CPU kernels are
// native/kernels/logprobs.{h,cc} and these match them).
//
// logits: (N, V) row-major on the device, f32 / bf16 / f16;  targets: (N) int32 on the device;
// every output (N) f32 or (N, V) f32 on the device.
//   z' = z / tau,  lse = log sum_j exp(z'_j),  logp = z'_y - lse,  H = lse - sum_j p_j z'_j
//   dL/dz_j = (1/tau) * ( g (1[j=y] - p_j) - h p_j (z'_j - lse + H) ),  g = dL/dlogp, h = dL/dH
// A row whose target equals ignore_index gives logp = H = lse = 0 and a zero gradient row.
//
// Plain C++ header: no CUDA type appears here, so the N-API layer and the native driver include it
// with any host compiler. Streams are passed as `void*` (a cudaStream_t; nullptr = legacy stream).
//
// Bad targets (not ignore_index and outside [0, V)) are never read out of bounds: the kernels check
// every target on the device, write NaN to that row's outputs (logp, lse, entropy, gradient row) and
// record the LOWEST such row in a device "bad-row slot" (an unsigned long long, ~0 when none).
//   - With args.bad_row == nullptr the call is synchronous about it: it allocates a slot on the
//     stream, launches, waits for the stream and returns kBadTarget (index = row, value = target)
//     when a target was bad. Simple, but it synchronises the stream on every call.
//   - With args.bad_row set (a slot the caller owns, reset with bad_row_reset), the call is fully
//     asynchronous; the caller checks later with bad_row_read (which synchronises), e.g. once per
//     step for several calls. When the targets live on the host, validating them there before
//     uploading (as the CPU kernel does) and passing a slot avoids every synchronisation.
//
// Determinism: the work split depends only on (N, V), every reduction runs in a fixed order, so the
// same inputs give bit-identical outputs from run to run on the same card.
#pragma once
#include <cstdint>

#include "../native/core/dtype.h"  // rk::DTypeCode: kF32 / kBF16 / kF16
#include "result.h"                 // rkcuda::Result, Code, error_name, format_error

namespace rkcuda {

// The dtype codes are native/core/dtype.h's (rk::DTypeCode; same values as rk::DType).
using LogitsDType = rk::DTypeCode;
using rk::kBF16;
using rk::kF16;
using rk::kF32;

struct LogprobsForwardArgs {
  const void* logits = nullptr;  // (N, V), element-aligned (16-byte alignment not required)
  int dtype = kF32;              // LogitsDType
  int64_t rows = 0;              // N
  int64_t vocab = 0;             // V (>= 1)
  const int32_t* targets = nullptr;  // (N)
  float temperature = 1.0f;
  int32_t ignore_index = -100;
  float* logp = nullptr;         // (N), required
  float* lse = nullptr;          // (N), required
  float* entropy = nullptr;      // (N), optional: computed in the same pass when given
  unsigned long long* bad_row = nullptr;  // optional device slot, see above
};

// One read of the logits. Writes logp, lse and (when given) entropy.
Result token_logprobs_forward(const LogprobsForwardArgs& args, void* stream);

struct LogprobsBackwardArgs {
  const void* logits = nullptr;
  int dtype = kF32;
  int64_t rows = 0;
  int64_t vocab = 0;
  const int32_t* targets = nullptr;
  float temperature = 1.0f;
  int32_t ignore_index = -100;
  const float* grad_logp = nullptr;     // (N), required: g
  const float* grad_entropy = nullptr;  // (N), optional: h (0 when absent)
  const float* lse = nullptr;           // (N), optional: from the forward, skips the stats pass
  const float* entropy = nullptr;       // (N), needed with lse when grad_entropy is given
  float* grad = nullptr;  // (N, V) f32, required; may alias f32 logits (in place)
  unsigned long long* bad_row = nullptr;
};

// dL/dlogits. With lse given (and entropy too when grad_entropy is given) one read of the logits
// and one write of grad; otherwise a statistics pass first (a second read), like the CPU kernel.
Result token_logprobs_backward(const LogprobsBackwardArgs& args, void* stream);

// Sets a bad-row slot to "none" (asynchronously, on the stream).
Result bad_row_reset(unsigned long long* slot, void* stream);
// Waits for the stream, reads the slot and, when a row was recorded, returns kBadTarget with that
// row and its target (read back from `targets`, a device pointer).
Result bad_row_read(const unsigned long long* slot, const int32_t* targets, void* stream);

// How the kernels split a row over blocks for this shape (1 = one block per row). For tests/bench.
int logprobs_row_splits(int64_t rows, int64_t vocab);

}  // namespace rkcuda
