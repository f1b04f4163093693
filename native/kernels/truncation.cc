// maskTruncatedCompletions on the CPU: one pass per row (truncation.h). Each row is independent, so
// the result cannot depend on a thread count; the rows run in order on the calling thread.
#include "truncation.h"

namespace rk {

void mask_truncated_completions(const int32_t* ids, TokenMask mask, int64_t rows, int64_t T, int64_t eos, int64_t pad,
                                float* out_mask, float* truncated) {
  for (int64_t r = 0; r < rows; ++r) core::truncation_row(ids, mask, r, T, eos, pad, out_mask, truncated);
}

}  // namespace rk
