// maskTruncatedCompletions on a CUDA device (docs/policy.md): the same formula as the CPU kernel
// (native/core/truncation.h), one thread per row. Plain C++ header; every array is a DEVICE pointer.
#pragma once
#include <cstdint>

#include "../native/core/truncation.h"
#include "result.h"

namespace rkcuda {

// ids, mask, out_mask: (rows, T); truncated: (rows). mask.data may be null. kBadArgument for a null
// array or a bad size.
Result mask_truncated_completions(const int32_t* ids, rk::TokenMask mask, int64_t rows, int64_t T, int64_t eos, int64_t pad,
                                  float* out_mask, float* truncated, void* stream);

}  // namespace rkcuda
