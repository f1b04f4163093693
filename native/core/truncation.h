// maskTruncatedCompletions (TRL GRPOConfig.mask_truncated_completions, docs/policy.md): a completion
// is truncated when its last token is neither EOS nor the pad token; its tokens then leave the loss.
// Per row, shared by the CPU kernel (native/kernels/truncation.cc) and the CUDA one (cuda/truncation.cu).
#pragma once
#include <cstdint>

#include "advantages.h"  // TokenMask
#include "hd.h"

namespace rk {
namespace core {

// Row r of (rows, T) completion ids: its last token is the last one with mask != 0 (every token
// counts when mask.data is null); a row with no token is not truncated. pad < 0: no pad token.
RK_HD bool completion_truncated(const int32_t* ids, const TokenMask& mask, int64_t r, int64_t T, int64_t eos, int64_t pad) {
  int64_t last = -1;
  for (int64_t t = T - 1; t >= 0; --t) {
    if (!mask.data || mask_on(mask, r * T + t)) {
      last = t;
      break;
    }
  }
  if (last < 0) return false;
  const int64_t id = ids[r * T + last];
  return id != eos && !(pad >= 0 && id == pad);
}

// Writes row r of the new mask (the old weight, 1 without a mask; 0 in a truncated row) and its flag.
RK_HD void truncation_row(const int32_t* ids, const TokenMask& mask, int64_t r, int64_t T, int64_t eos, int64_t pad,
                          float* out_mask, float* truncated) {
  const bool cut = completion_truncated(ids, mask, r, T, eos, pad);
  truncated[r] = cut ? 1.0f : 0.0f;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t i = r * T + t;
    out_mask[i] = cut ? 0.0f : (mask.data ? static_cast<float>(mask_weight(mask, i)) : 1.0f);
  }
}

}  // namespace core
}  // namespace rk
