// The advantage-estimator contract and per-element / per-group / per-row formulas, shared by the
// C++ kernels (native/kernels/advantages.cc) and the CUDA kernels (cuda/advantages.cu): the option
// codes, the token mask, a sample's combined reward, the group statistic and the write-back of a
// group's advantages, the GDPO group step, the batch statistics' finishes (batch std, BNPO's Beta
// weights, the REINFORCE++ whitening), the ensemble of one row, the GAE / discounted-return
// recursion of one row and masked_whiten's statistics (formulas in native/kernels/advantages.h).
// All in double, in the same order on both backends; the backends keep only their loops,
// parallelism and reductions (fixed-order sums).
//
// Members of a group are reached through two functors: at(k) gives the sample index of member k
// (k in [b, e): the C++ kernels walk their Groups, the CUDA kernels a permutation range), val(i)
// the sample's value as a double (NaN = missing).
#pragma once
#include <cmath>
#include <cstdint>

#include "hd.h"

namespace rk {

// The codes are part of the contract with the TypeScript facade and the CUDA kernels.
enum class AdvEstimator : int { Grpo = 0, Rloo = 1, ReinforcePPBaseline = 2, Opo = 3, PassK = 4, Bnpo = 5, Gpg = 6 };
constexpr int kAdvEstimatorCount = 7;
static_assert(static_cast<int>(AdvEstimator::Gpg) == kAdvEstimatorCount - 1, "AdvEstimator codes");

enum class AdvScale : int { Group = 0, Batch = 1, None = 2 };
constexpr int kAdvScaleCount = 3;
static_assert(static_cast<int>(AdvScale::None) == kAdvScaleCount - 1, "AdvScale codes");

enum class MultiReward : int { SumThenNormalize = 0, NormalizeThenSum = 1 };
constexpr int kMultiRewardCount = 2;
static_assert(static_cast<int>(MultiReward::NormalizeThenSum) == kMultiRewardCount - 1, "MultiReward codes");

// mean: mean_m r;  min: min_m r;  uwo: mean_m r - lambda * var_m r (population variance)
enum class EnsembleMethod : int { Mean = 0, Min = 1, Uwo = 2 };
constexpr int kEnsembleMethodCount = 3;
static_assert(static_cast<int>(EnsembleMethod::Uwo) == kEnsembleMethodCount - 1, "EnsembleMethod codes");

// Token level, padded (B, T) row-major; mask (B, T) as u8 (nonzero = response token) or f32 weights.
struct TokenMask {
  const void* data = nullptr;
  bool is_f32 = false;
};

namespace core {

constexpr double kWhitenEps = 1e-8;     // verl masked_whiten (REINFORCE++ baseline)
constexpr double kBnpoMaxWeight = 1e6;  // BNPO clamp of 1 / BetaPDF

RK_HD bool mask_on(const TokenMask& m, int64_t i) {
  return m.is_f32 ? static_cast<const float*>(m.data)[i] != 0.0f : static_cast<const uint8_t*>(m.data)[i] != 0;
}
RK_HD double mask_weight(const TokenMask& m, int64_t i) {
  return m.is_f32 ? static_cast<double>(static_cast<const float*>(m.data)[i])
                  : (static_cast<const uint8_t*>(m.data)[i] != 0 ? 1.0 : 0.0);
}

// A sample's value from its K rewards (row): the weighted sum of the present ones (NaN = missing;
// all missing -> NaN), then bnpo's scaling to [0, 1] by (x - lo) / span.
RK_HD double sample_value(const float* row, int64_t K, const double* wts, bool bnpo, double lo, double span) {
  double s = 0;
  bool any = false;
  for (int64_t k = 0; k < K; ++k) {
    const double v = row[k];
    if (v != v) continue;
    s += (wts ? wts[k] : 1.0) * v;
    any = true;
  }
  double x = any ? s : NAN;
  if (bnpo) x = (x - lo) / span;
  return x;
}

// Estimators whose advantages need only their own group's statistics (one fused pass per group).
RK_HD bool group_local(AdvEstimator est, AdvScale scale) {
  return (est == AdvEstimator::Grpo || est == AdvEstimator::PassK) ? scale != AdvScale::Batch
                                                                   : (est == AdvEstimator::Rloo || est == AdvEstimator::Opo);
}

// Mean of c valid values summing to s (NaN when none) and their unbiased std from the sum of
// squared deviations ss (0 with fewer than 2).
RK_HD double valid_mean(double c, double s) { return c > 0 ? s / c : NAN; }
RK_HD double unbiased_sd(double c, double ss) { return c < 2 ? 0.0 : ::sqrt(ss / (c - 1)); }
// A valid value's squared deviation from m (0 for a missing one): the summand of ss.
RK_HD double sq_dev(double x, double m) { return x != x ? 0.0 : (x - m) * (x - m); }
// (x - m) / denom, 0 for a missing x.
RK_HD float zscore(double x, double m, double denom) { return x != x ? 0.0f : static_cast<float>((x - m) / denom); }

// GPG's batch factor alpha / f_norm, alpha = n / max(1, m) with m the samples whose valid value is
// nonzero (verl: bsz / count_nonzero(scores).clamp(min=1)).
RK_HD double gpg_mul(double n, double m, double f_norm) { return n / (m < 1 ? 1.0 : m) / f_norm; }
// A sample's contribution to m.
RK_HD double gpg_nonzero(double x) { return (x == x && x != 0.0) ? 1.0 : 0.0; }

// Weighted summands (a zero weight contributes exactly 0, whatever x): w x and w d^2.
RK_HD double w_term(double w, double x) { return w == 0 ? 0.0 : w * x; }
RK_HD double w_sq(double w, double d) { return w == 0 ? 0.0 : w * d * d; }

// Per-group statistics of the values x_i (NaN = missing).
struct GroupStat {
  int64_t c;      // valid samples
  double mean;    // actual mean of the valid values (NaN when c == 0)
  double ss;      // sum of squared deviations from mean
  double sd;      // unbiased std (c >= 2), else NaN
  bool equal;     // c >= 2 and all valid values equal
  int64_t best;   // first index of the max (passk), -1 if none
  double mx, second;
  double base;    // the baseline the estimator subtracts
  double scale;   // the std reported (1 for a group of one)
};

// Sums over a group run in four interleaved accumulators (member j adds to j % 4), combined as
// (a0 + a1) + (a2 + a3): short dependency chains, and the order the TS small-call path and the
// AVX2 path of advantages.cc mirror. min / max as std::min / std::max (the first operand on ties).
template <class At, class Val>
RK_HD GroupStat group_stat(int64_t b, int64_t e, const At& at, const Val& val, bool want_second,
                           const int32_t* lengths, bool solo_self = false) {
  const double kInf = HUGE_VAL, kNaN = NAN;
  GroupStat s;
  s.c = 0;
  s.mean = kNaN;
  s.ss = 0;
  s.sd = kNaN;
  s.equal = false;
  s.best = -1;
  s.mx = -kInf;
  s.second = -kInf;
  s.base = kNaN;
  s.scale = kNaN;
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  double mn0 = kInf, mn1 = kInf, mx0 = -kInf, mx1 = -kInf;
  int64_t c = 0;
  auto acc = [&](int64_t k, double& a, double& mn, double& mx) {
    const double x = val(at(k));
    const bool ok = x == x;
    c += ok;
    a += ok ? x : 0.0;
    const double xl = ok ? x : kInf, xh = ok ? x : -kInf;
    mn = xl < mn ? xl : mn;  // std::min(mn, xl)
    mx = mx < xh ? xh : mx;  // std::max(mx, xh)
  };
  int64_t k = b;
  for (; k + 4 <= e; k += 4) {
    acc(k, a0, mn0, mx0);
    acc(k + 1, a1, mn1, mx1);
    acc(k + 2, a2, mn0, mx0);
    acc(k + 3, a3, mn1, mx1);
  }
  if (k < e) acc(k, a0, mn0, mx0);
  if (k + 1 < e) acc(k + 1, a1, mn1, mx1);
  if (k + 2 < e) acc(k + 2, a2, mn0, mx0);
  s.c = c;
  if (c == 0) return s;
  const double sum = (a0 + a1) + (a2 + a3);
  const double mn = mn1 < mn0 ? mn1 : mn0, mx = mx0 < mx1 ? mx1 : mx0;
  s.mx = mx;
  if (mn == mx) {
    s.mean = mn;
  } else {
    s.mean = sum / static_cast<double>(c);
    const double m = s.mean;
    double q0 = 0, q1 = 0, q2 = 0, q3 = 0;
    auto sq = [&](int64_t j, double& q) {
      const double x = val(at(j));
      const double d = x - m;
      q += x == x ? d * d : 0.0;
    };
    int64_t j = b;
    for (; j + 4 <= e; j += 4) {
      sq(j, q0);
      sq(j + 1, q1);
      sq(j + 2, q2);
      sq(j + 3, q3);
    }
    if (j < e) sq(j, q0);
    if (j + 1 < e) sq(j + 1, q1);
    if (j + 2 < e) sq(j + 2, q2);
    s.ss = (q0 + q1) + (q2 + q3);
  }
  double sum_len = 0, sum_len_x = 0;
  if (lengths) {
    for (int64_t j = b; j < e; ++j) {
      const int64_t i = at(j);
      const double x = val(i);
      if (x != x) continue;
      sum_len += lengths[i];
      sum_len_x += lengths[i] * x;
    }
  }
  if (s.c >= 2) {
    s.equal = mn == mx;
    s.sd = s.equal ? 0.0 : ::sqrt(s.ss / static_cast<double>(s.c - 1));
    if (lengths && !s.equal && sum_len > 0) s.base = sum_len_x / sum_len;
    else s.base = s.mean;
    s.scale = s.sd;
    if (want_second) {  // the first index holding the max, then the max of the others
      for (int64_t q = b; q < e && s.best < 0; ++q)
        if (val(at(q)) == mx) s.best = at(q);
      for (int64_t q = b; q < e; ++q) {
        const int64_t i = at(q);
        const double x = val(i);
        if (i == s.best || x != x) continue;
        if (x > s.second) s.second = x;
      }
    }
  } else {  // one valid sample: verl's convention (baseline 0), or TRL's (solo_self: its own value, A = 0)
    s.base = solo_self ? s.mean : 0.0;
    s.scale = 1.0;
  }
  return s;
}

// Writes the advantages of one group's members: every estimator is A = (x - base) * mul for a valid
// x (0 for a missing one), except passk (only the best member: (max - second) * mul).
// denom_batch: batch std + eps (scale batch); w_bnpo: the group's bnpo weight, or gpg's alpha / f_norm.
template <class At, class Val>
RK_HD void group_write(AdvEstimator est, AdvScale scale, double eps, const GroupStat& s, double denom_batch,
                       double w_bnpo, int64_t b, int64_t e, const At& at, const Val& val, float* adv) {
  double base = s.base, mul = 1.0;
  if (est == AdvEstimator::Grpo || est == AdvEstimator::PassK)
    mul = 1.0 / (scale == AdvScale::Group ? s.scale + eps : scale == AdvScale::Batch ? denom_batch : 1.0);
  else if (est == AdvEstimator::Rloo && s.c >= 2)
    mul = static_cast<double>(s.c) / static_cast<double>(s.c - 1), base = s.mean;
  else if (est == AdvEstimator::Bnpo || est == AdvEstimator::Gpg)
    mul = w_bnpo;
  if (est == AdvEstimator::PassK) {
    for (int64_t k = b; k < e; ++k) {
      const int64_t i = at(k);
      adv[i] = (s.c >= 2 && i == s.best) ? static_cast<float>((s.mx - s.second) * mul) : 0.0f;
    }
    return;
  }
  for (int64_t k = b; k < e; ++k) {
    const int64_t i = at(k);
    const double x = val(i);
    adv[i] = x != x ? 0.0f : static_cast<float>((x - base) * mul);
  }
}

// BNPO: Beta(alpha, beta) by moments over the np groups with a valid sample, whose means have mean
// pbar and sum of squared deviations pss; alpha = beta = 1 with fewer than 2 such groups or no spread
// (the reference divides by a zero variance there).
RK_HD void bnpo_shape(double np, double pbar, double pss, double* alpha, double* beta) {
  *alpha = 1.0;
  *beta = 1.0;
  if (np < 2) return;
  const double pvar = pss / (np - 1);
  if (pvar > 0) {
    const double c = pbar * (1.0 - pbar) / pvar - 1.0;
    const double a = 1.0 + c * pbar / 3.0, b = 1.0 + c * (1.0 - pbar) / 3.0;
    *alpha = 1.0 < a ? a : 1.0;  // std::max(1.0, a)
    *beta = 1.0 < b ? b : 1.0;
  }
}
// x log y with 0 log y = 0.
RK_HD double xlogy(double x, double y) { return x == 0 ? 0.0 : x * ::log(y); }
// A group's BNPO weight min(1 / BetaPDF(p; alpha, beta), 1e6); lbeta = log B(alpha, beta).
RK_HD double bnpo_weight(double p, double alpha, double beta, double lbeta) {
  const double pdf = ::exp(xlogy(alpha - 1.0, p) + xlogy(beta - 1.0, 1.0 - p) - lbeta);
  const double inv = 1.0 / pdf;
  return kBnpoMaxWeight < inv ? kBnpoMaxWeight : inv;  // std::min(inv, kBnpoMaxWeight)
}

// REINFORCE++ baseline whitening of y = x - base over the valid samples, weighted by lengths when
// given (verl: by tokens): a sample's weight, the weighted mean of y (0 when W = 0), the inverse std
// (unbiased; population when W <= 1) and the advantage (0 for a missing sample).
RK_HD double rpp_weight(double x, const int32_t* lengths, int64_t i) {
  return x != x ? 0.0 : (lengths ? static_cast<double>(lengths[i]) : 1.0);
}
RK_HD double rpp_mean(double W, double swy) { return W > 0 ? swy / W : 0.0; }
RK_HD double rpp_inv_std(double W, double ss) {
  const double var = W > 1 ? ss / (W - 1) : W > 0 ? ss / W : 0.0;
  return 1.0 / ::sqrt(var + kWhitenEps);
}
RK_HD float rpp_out(double x, double y, double my, double inv) {
  return x != x ? 0.0f : static_cast<float>((y - my) * inv);
}

// GDPO (normalize_then_sum), one group (members [b, e) through at): z-scores every reward k (column
// k of the (n, K) rewards) within the group (nanmean / unbiased nanstd; 0 without spread) and adds
// w_k z to comb[i], which starts NaN and stays NaN while no reward of the sample is present. Writes
// the group's K means and stds (gmean / gstd point at the group's K entries); returns the zero-std
// flag (no reward with spread and >= 2 valid samples).
template <class At>
RK_HD bool gdpo_group(int64_t b, int64_t e, const At& at, const float* r, int64_t K, const double* wts, double eps,
                      double* comb, float* gmean, float* gstd) {
  for (int64_t j = b; j < e; ++j) comb[at(j)] = NAN;
  bool flat = true;
  for (int64_t k = 0; k < K; ++k) {
    auto val = [r, K, k](int64_t i) { return static_cast<double>(r[i * K + k]); };
    const GroupStat s = group_stat(b, e, at, val, false, nullptr);
    gmean[k] = static_cast<float>(s.mean);
    gstd[k] = static_cast<float>(s.c >= 2 ? s.sd : s.c == 1 ? 0.0 : NAN);
    const bool spread = s.c >= 2 && !s.equal;
    if (spread) flat = false;
    const double wk = wts ? wts[k] : 1.0;
    for (int64_t j = b; j < e; ++j) {
      const int64_t i = at(j);
      const double x = val(i);
      if (x != x) continue;
      const double z = spread ? (x - s.mean) / (s.sd + eps) : 0.0;
      comb[i] = (comb[i] != comb[i] ? 0.0 : comb[i]) + wk * z;
    }
  }
  int64_t valid = 0;
  for (int64_t j = b; j < e; ++j) valid += comb[at(j)] == comb[at(j)];
  return flat && valid >= 2;
}

// Reward-model ensemble of one row of m rewards (NaN left out; none present -> NaN).
RK_HD double ensemble_row(const float* row, int64_t m, EnsembleMethod method, double lambda) {
  int64_t c = 0;
  double s = 0, mn = HUGE_VAL;
  for (int64_t j = 0; j < m; ++j) {
    const double x = row[j];
    if (x != x) continue;
    ++c;
    s += x;
    mn = x < mn ? x : mn;  // std::min(mn, x)
  }
  if (c == 0) return NAN;
  const double mean = s / static_cast<double>(c);
  if (method == EnsembleMethod::Mean) return mean;
  if (method == EnsembleMethod::Min) return mn;
  double ss = 0;
  for (int64_t j = 0; j < m; ++j) {
    const double x = row[j];
    if (x == x) ss += (x - mean) * (x - mean);
  }
  return mean - lambda * ss / static_cast<double>(c);
}

// GAE over row b of a (rows, cols) batch, backwards over the response tokens (verl's masking: a
// masked token neither ends nor feeds the recursion and gets A = returns = 0); gl = gamma lambda.
RK_HD void gae_row(const float* values, const float* rewards, const TokenMask& mask, int64_t b, int64_t cols,
                   double gamma, double gl, float* adv, float* ret) {
  double next_v = 0, last = 0;
  for (int64_t t = cols - 1; t >= 0; --t) {
    const int64_t i = b * cols + t;
    if (!mask_on(mask, i)) {
      adv[i] = 0.0f;
      ret[i] = 0.0f;
      continue;
    }
    const double v = values[i];
    const double delta = rewards[i] + gamma * next_v - v;
    last = delta + gl * last;
    next_v = v;
    adv[i] = static_cast<float>(last);
    ret[i] = static_cast<float>(last + v);
  }
}

// Discounted returns G_t = r_t + gamma G_next over the response tokens of row b; masked -> 0.
RK_HD void discounted_row(const float* rewards, const TokenMask& mask, int64_t b, int64_t cols, double gamma,
                          float* out) {
  double g = 0;
  for (int64_t t = cols - 1; t >= 0; --t) {
    const int64_t i = b * cols + t;
    if (!mask_on(mask, i)) {
      out[i] = 0.0f;
      continue;
    }
    g = rewards[i] + gamma * g;
    out[i] = static_cast<float>(g);
  }
}

// masked_whiten from the weight sum W > 0, the weighted mean and the weighted sum of squared
// deviations ss: var = ss / W (times W / (W - 1) when unbiased and W > 1), and the output of one
// element (x - mean) / sqrt(var + eps) (+ mean when !shift_mean), 0 where the weight is 0.
struct WhitenStats {
  double mean, inv, add;
};
RK_HD WhitenStats whiten_stats(double W, double mean, double ss, bool shift_mean, bool unbiased, double eps) {
  double var = ss / W;
  if (unbiased && W > 1) var *= W / (W - 1);
  WhitenStats s;
  s.mean = mean;
  s.inv = 1.0 / ::sqrt(var + eps);
  s.add = shift_mean ? 0.0 : mean;
  return s;
}
RK_HD float whiten_value(double x, double w, const WhitenStats& s) {
  return w == 0 ? 0.0f : static_cast<float>((x - s.mean) * s.inv + s.add);
}

}  // namespace core
}  // namespace rk
