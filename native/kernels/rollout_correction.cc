// rolloutCorrection on the CPU: see rollout_correction.h.
#include "rollout_correction.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "threadpool.h"

namespace rk {

Status rollout_correction(const RcArgs& a, const RolloutCorrectionParams& p, double* scalars) {
  const int64_t B = a.B, T = a.T;
  if (B < 0 || T <= 0) return Status{Status::BadShape, 0, T};
  for (int k = 0; k < kRcMetricCount; ++k) scalars[k] = 0;
  if (B == 0) return Status{};
  const int64_t grain = std::max<int64_t>(1, 4096 / T);
  if (a.mask_kind == MaskKind::F32) {
    std::vector<int64_t> bad(static_cast<size_t>(B), -1);
    parallel_for(B, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const float* w = static_cast<const float*>(a.mask) + r * T;
        for (int64_t t = 0; t < T; ++t)
          if (!(w[t] >= 0.0f) || !std::isfinite(w[t])) {
            bad[r] = r * T + t;
            break;
          }
      }
    });
    for (int64_t r = 0; r < B; ++r)
      if (bad[r] >= 0) return Status{Status::BadIndex, bad[r], 0};
  }
  std::vector<RcRow> rows(static_cast<size_t>(B));
  parallel_for(B, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) rc_row(a, p, r, 1.0, &rows[r]);
  });
  const double factor = rc_merge(rows.data(), B, p, scalars);
  if (factor != 1.0 && a.weights) {
    parallel_for(B, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) rc_row(a, p, r, factor, nullptr);
    });
  }
  return Status{};
}

}  // namespace rk
