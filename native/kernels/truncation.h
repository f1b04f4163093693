// maskTruncatedCompletions on the CPU (the formula: native/core/truncation.h; docs/policy.md).
#pragma once
#include <cstdint>

#include "../core/truncation.h"

namespace rk {

// ids, mask, out_mask: (rows, T); truncated: (rows). mask.data may be null (every token counts).
void mask_truncated_completions(const int32_t* ids, TokenMask mask, int64_t rows, int64_t T, int64_t eos, int64_t pad,
                                float* out_mask, float* truncated);

}  // namespace rk
