// verl clip_cov / kl_cov and TRL's high-entropy mask on the CPU (selection.h).
#include "selection.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "../core/selection.h"

namespace rk {

namespace {

double mask_at(const void* mask, MaskKind kind, int64_t i) {
  switch (kind) {
    case MaskKind::U8: return static_cast<const uint8_t*>(mask)[i] != 0 ? 1.0 : 0.0;
    case MaskKind::F32: return static_cast<double>(static_cast<const float*>(mask)[i]);
    default: return 1.0;
  }
}

Status check_weights(const void* mask, MaskKind kind, int64_t n) {
  if (kind != MaskKind::F32) return Status{};
  const float* w = static_cast<const float*>(mask);
  for (int64_t i = 0; i < n; ++i)
    if (!(w[i] >= 0.0f) || !std::isfinite(w[i])) return Status{Status::BadIndex, i, 0};
  return Status{};
}

}  // namespace

Status cov_policy_loss(const CovPolicyLossArgs& a, float* grad, uint8_t* selected, CovPolicyLossResult* out) {
  const int64_t B = a.B, T = a.T, n = B * T;
  Status st = check_weights(a.mask, a.mask_kind, n);
  if (!st.ok()) return st;
  auto A = [&](int64_t i) { return static_cast<double>(a.advantages[a.advantages_per_token ? i : i / T]); };
  std::vector<double> row_m(static_cast<size_t>(B), 0.0);
  double total = 0, sum_a = 0, sum_l = 0, valid = 0, vsum_a = 0, vsum_l = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double m = mask_at(a.mask, a.mask_kind, i);
    row_m[static_cast<size_t>(i / T)] += m;
    sum_a += m * A(i);
    sum_l += m * static_cast<double>(a.logprobs[i]);
    if (m > 0) {
      valid += 1;
      vsum_a += A(i);
      vsum_l += a.logprobs[i];
    }
  }
  for (int64_t r = 0; r < B; ++r) total += row_m[static_cast<size_t>(r)];
  std::fill(selected, selected + n, uint8_t{0});

  // The selection step.
  std::vector<std::pair<uint64_t, int64_t>> keyed;  // clip_cov: (key, index)
  std::vector<std::pair<double, int64_t>> covs;     // kl_cov: (cov, index)
  int64_t k = 0;
  if (a.mode == CovMode::ClipCov) {
    // verl masked_mean: sum m x / (sum m + 1e-8)
    const double mean_a = sum_a / (total + 1e-8), mean_l = sum_l / (total + 1e-8);
    for (int64_t i = 0; i < n; ++i) {
      if (!(mask_at(a.mask, a.mask_kind, i) > 0)) continue;
      const double d = static_cast<double>(a.logprobs[i]) - a.old_logprobs[i];
      double g;
      bool clipped;
      core::clip_cov_token(d, A(i), a.eps_low, a.eps_high, &g, &clipped);
      if (clipped) continue;
      const double cov = (A(i) - mean_a) * (static_cast<double>(a.logprobs[i]) - mean_l);
      if (cov < a.cov_ub && cov > a.cov_lb) keyed.emplace_back(core::selection_key(a.seed, i), i);
    }
    const double clip_num = std::floor(a.ratio * total);
    k = std::min<int64_t>(std::max<int64_t>(static_cast<int64_t>(clip_num), 1), static_cast<int64_t>(keyed.size()));
    std::nth_element(keyed.begin(), keyed.begin() + k, keyed.end());
    for (int64_t j = 0; j < k; ++j) selected[keyed[static_cast<size_t>(j)].second] = 1;
    out->candidates = static_cast<double>(keyed.size());
  } else if (valid > 0) {
    const double mean_a = vsum_a / valid, mean_l = vsum_l / valid;
    for (int64_t i = 0; i < n; ++i) {
      if (!(mask_at(a.mask, a.mask_kind, i) > 0)) continue;
      covs.emplace_back((A(i) - mean_a) * (static_cast<double>(a.logprobs[i]) - mean_l), i);
    }
    // torch.topk(largest): NaN counts as the largest; ties go to the smaller index.
    auto before = [](const std::pair<double, int64_t>& x, const std::pair<double, int64_t>& y) {
      const bool xn = std::isnan(x.first), yn = std::isnan(y.first);
      if (xn != yn) return xn;
      if (!xn && x.first != y.first) return x.first > y.first;
      return x.second < y.second;
    };
    k = std::min<int64_t>(std::max<int64_t>(static_cast<int64_t>(std::floor(valid * a.ratio)), 1), static_cast<int64_t>(covs.size()));
    std::nth_element(covs.begin(), covs.begin() + k, covs.end(), before);
    for (int64_t j = 0; j < k; ++j) selected[covs[static_cast<size_t>(j)].second] = 1;
    out->candidates = valid;
  }

  // The loss, rows in order, tokens in order.
  double loss = 0, sel = 0, kl = 0;
  for (int64_t r = 0; r < B; ++r) {
    const double f = core::policy_row_factor(a.aggregation, a.normalizer, row_m[static_cast<size_t>(r)], total, B, T);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = r * T + t;
      const double m = mask_at(a.mask, a.mask_kind, i);
      if (m == 0) {
        grad[i] = 0.0f;
        continue;
      }
      const double w = m * f, d = static_cast<double>(a.logprobs[i]) - a.old_logprobs[i];
      const bool s = selected[i] != 0;
      double l, g;
      if (a.mode == CovMode::ClipCov) {
        bool clipped;
        l = core::clip_cov_token(d, A(i), a.eps_low, a.eps_high, &g, &clipped);
        if (s) l = 0, g = 0;
        kl += m * -d;
      } else {
        l = core::kl_cov_token(d, A(i), s, a.kl_coef, &g);
        kl += m * (d < 0 ? -d : d);
      }
      loss += w * l;
      grad[i] = static_cast<float>(w * g);
      sel += s ? m : 0.0;
    }
  }
  out->loss = loss;
  out->clip_fraction = total > 0 ? sel / total : 0;
  out->ppo_kl = total > 0 ? kl / total : 0;
  out->selected = static_cast<double>(k);
  out->token_count = total;
  return Status{};
}

Status high_entropy_mask(const float* entropy, int64_t n, const void* mask, MaskKind mask_kind, double top_quantile,
                         uint8_t* out, double* threshold, double* count) {
  Status st = check_weights(mask, mask_kind, n);
  if (!st.ok()) return st;
  std::vector<float> vals;
  bool has_nan = false;
  for (int64_t i = 0; i < n; ++i) {
    if (mask_at(mask, mask_kind, i) == 0) continue;
    if (std::isnan(entropy[i])) has_nan = true;
    vals.push_back(entropy[i]);
  }
  std::fill(out, out + n, uint8_t{0});
  *count = 0;
  if (vals.empty() || has_nan) {
    *threshold = NAN;
    return Status{};
  }
  const float q = static_cast<float>(1.0 - top_quantile);  // TRL passes 1 - top_entropy_quantile
  // The two order statistics the interpolation reads (no full sort): sorted[lo] and sorted[lo + 1].
  const int64_t m = static_cast<int64_t>(vals.size());
  const float rank = q * static_cast<float>(m - 1);
  int64_t lo = static_cast<int64_t>(std::floor(rank));
  lo = lo < 0 ? 0 : (lo > m - 1 ? m - 1 : lo);
  std::nth_element(vals.begin(), vals.begin() + lo, vals.end());
  float two[2] = {vals[static_cast<size_t>(lo)], vals[static_cast<size_t>(lo)]};
  if (lo + 1 < m) two[1] = *std::min_element(vals.begin() + lo + 1, vals.end());
  // quantile_linear_f32 on the two values at the same rank (shifted by lo)
  const float thr = core::quantile_linear_f32_at(two, lo, m, q);
  double c = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (mask_at(mask, mask_kind, i) != 0 && entropy[i] >= thr) {
      out[i] = 1;
      c += 1;
    }
  }
  *threshold = thr;
  *count = c;
  return Status{};
}

}  // namespace rk
