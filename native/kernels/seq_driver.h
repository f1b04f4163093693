// The CPU driver of the sequence ops (native/core/seq_op.h): rows split over the thread pool, each
// row computed by the shared seq_op_row in token order, row results merged in row order in double, so
// the bits do not depend on the thread count. Temporaries are (B) only.
//   mask: (B, T) u8 / f32 weights (finite, >= 0) / none; inputs (B, T) or (B); gradients (B, T)
#pragma once
#include <cmath>
#include <vector>

#include "../core/seq_op.h"
#include "threadpool.h"
#include "types.h"

namespace rk {

// Runs Op over the batch; scalars gets seq_op_scalar_count<Op>() doubles: loss, the kMetrics masked
// means, the mask sum. A bad f32 mask weight is Status::BadIndex (index = the element).
template <typename Op>
Status run_seq_op(const SeqOpArgs<Op::kInputs, Op::kGrads>& a, const typename Op::Params& p, double* scalars) {
  const int64_t B = a.B, T = a.T;
  if (B < 0 || T <= 0) return Status{Status::BadShape, 0, T};
  constexpr int K = Op::kMetrics;
  for (int k = 0; k < seq_op_scalar_count<Op>(); ++k) scalars[k] = 0;
  if (B == 0) return Status{};
  const int64_t grain = std::max<int64_t>(1, 4096 / T);
  // Pass 0: the mask sum of every row, and the f32 weights checked.
  std::vector<double> rm(static_cast<size_t>(B));
  std::vector<int64_t> bad(static_cast<size_t>(B), -1);
  parallel_for(B, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      if (a.mask_kind == SeqMask::F32) {
        const float* w = static_cast<const float*>(a.mask) + r * T;
        for (int64_t t = 0; t < T; ++t)
          if (!(w[t] >= 0.0f) || !std::isfinite(w[t])) {
            bad[r] = r * T + t;
            break;
          }
      }
      rm[r] = seq_row_mask(a, r);
    }
  });
  double total = 0;
  for (int64_t r = 0; r < B; ++r) {
    if (bad[r] >= 0) return Status{Status::BadIndex, bad[r], 0};
    total += rm[r];
  }
  // Pass 1 and 2, per row.
  std::vector<double> loss(static_cast<size_t>(B)), met(static_cast<size_t>(B * (K > 0 ? K : 1)), 0.0);
  parallel_for(B, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      loss[r] = seq_op_row<Op>(a, p, r, rm[r], Op::factor(p, rm[r], total, B, T), &met[r * (K > 0 ? K : 1)]);
  });
  double l = 0, ms[K > 0 ? K : 1] = {};
  for (int64_t r = 0; r < B; ++r) {
    l += loss[r];
    for (int k = 0; k < K; ++k) ms[k] += met[r * K + k];
  }
  scalars[0] = l;
  for (int k = 0; k < K; ++k) scalars[1 + k] = total > 0 ? ms[k] / total : 0.0;
  scalars[1 + K] = total;
  return Status{};
}

}  // namespace rk
