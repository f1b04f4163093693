// Batch-wide token selections and the per-token losses they switch (docs/policy.md#clipcovpolicyloss,
// #klcovpolicyloss, #highentropymask): the formulas every backend shares. The selections themselves
// (a global top-k, a global quantile) are order statistics over the whole batch and run on the CPU
// (native/kernels/selection.cc).
#pragma once
#include <cmath>
#include <cstdint>

#include "hd.h"

namespace rk {
namespace core {

// clipCovPolicyLoss's random choice among the candidate tokens, counter-based: token i's key is
// SplitMix64's output for the counter seed + (i + 1) * 0x9E3779B97F4A7C15 (the golden-ratio
// increment), and the k candidates with the smallest keys (then the smaller index) are chosen: a
// uniformly random k-subset that depends on the seed and the token indices only.
RK_HD uint64_t selection_key(uint64_t seed, int64_t i) {
  uint64_t z = seed + (static_cast<uint64_t>(i) + 1u) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// verl clip_cov's token loss max(-A r, -A clamp(r, 1 - lo, 1 + hi)), r = exp(d) (no clamp on d), and
// its derivative in d (torch.maximum splits a tie's gradient in half). `clipped`: the clipped term is
// the larger (verl clip_by_origin).
RK_HD double clip_cov_token(double d, double A, double eps_low, double eps_high, double* dloss, bool* clipped) {
  const double r = exp(d);
  const double lo = 1.0 - eps_low, hi = 1.0 + eps_high;
  const double rc = r < lo ? lo : (r > hi ? hi : r);
  const double l1 = -A * r, l2 = -A * rc;
  const double g1 = -A * r, g2 = (r >= lo && r <= hi) ? -A * r : 0.0;
  *clipped = l2 > l1;
  *dloss = l1 > l2 ? g1 : (l2 > l1 ? g2 : 0.5 * (g1 + g2));
  return l1 > l2 ? l1 : l2;
}

// verl kl_cov's token loss: -A r, plus coef |d| where the token is selected; and its derivative in d
// (|d|'s derivative at 0 is 0, as torch's).
RK_HD double kl_cov_token(double d, double A, bool selected, double coef, double* dloss) {
  const double r = exp(d);
  double l = -A * r, g = -A * r;
  if (selected) {
    l += coef * (d < 0 ? -d : d);
    g += coef * (d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0));
  }
  *dloss = g;
  return l;
}

// torch.quantile's linear interpolation on n sorted f32 values at q, in f32 as torch computes it for
// f32 input: rank = q (n - 1), then torch.lerp(sorted[floor(rank)], sorted[ceil(rank)], rank - floor(rank)).
// `two` holds sorted[lo] and sorted[lo + 1] (the latter unused at the top), lo = floor(rank).
RK_HD float quantile_linear_f32_at(const float* two, int64_t lo, int64_t n, float q) {
  const float rank = q * static_cast<float>(n - 1);
  const float w = rank - floorf(rank);
  const bool up = w > 0 && lo + 1 < n;  // torch: ceil(rank)
  const float a = two[0], b = up ? two[1] : two[0];
  const float diff = b - a;
  if (w < 0.5f) {
    const float t = w * diff;
    return a + t;
  }
  const float t = diff * (1.0f - w);
  return b - t;
}

}  // namespace core
}  // namespace rk
