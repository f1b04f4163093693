// The advantage-estimator contract and per-group formulas, shared by the C++ kernels
// (native/kernels/advantages.cc) and the CUDA kernels (cuda/advantages.cu): the option codes, the
// group statistic and the write-back of a group's advantages (formulas in
// native/kernels/advantages.h). All in double, in the same order on both backends.
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
enum class AdvEstimator : int { Grpo = 0, Rloo = 1, ReinforcePPBaseline = 2, Opo = 3, PassK = 4, Bnpo = 5 };
constexpr int kAdvEstimatorCount = 6;
static_assert(static_cast<int>(AdvEstimator::Bnpo) == kAdvEstimatorCount - 1, "AdvEstimator codes");

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

namespace core {

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
                           const int32_t* lengths) {
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
  } else {  // one valid sample: verl's convention
    s.base = 0.0;
    s.scale = 1.0;
  }
  return s;
}

// Writes the advantages of one group's members: every estimator is A = (x - base) * mul for a valid
// x (0 for a missing one), except passk (only the best member: (max - second) * mul).
// denom_batch: batch std + eps (scale batch); w_bnpo: the group's bnpo weight.
template <class At, class Val>
RK_HD void group_write(AdvEstimator est, AdvScale scale, double eps, const GroupStat& s, double denom_batch,
                       double w_bnpo, int64_t b, int64_t e, const At& at, const Val& val, float* adv) {
  double base = s.base, mul = 1.0;
  if (est == AdvEstimator::Grpo || est == AdvEstimator::PassK)
    mul = 1.0 / (scale == AdvScale::Group ? s.scale + eps : scale == AdvScale::Batch ? denom_batch : 1.0);
  else if (est == AdvEstimator::Rloo && s.c >= 2)
    mul = static_cast<double>(s.c) / static_cast<double>(s.c - 1), base = s.mean;
  else if (est == AdvEstimator::Bnpo)
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

}  // namespace core
}  // namespace rk
