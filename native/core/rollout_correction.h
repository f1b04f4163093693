// rolloutCorrection: off-policy / rollout correction between the trainer's recomputed log-probs and
// the rollout engine's (docs/policy.md#rolloutcorrection), written once for the CPU kernel
// (native/kernels/rollout_correction.cc) and the CUDA one (cuda/rollout_correction.cu):
//   - importance weights (TRL vllm_importance_sampling_mode: token/sequence x truncate/mask with
//     clip_min/clip_max; verl compute_rollout_correction_weights: token/sequence, truncated,
//     optionally batch-normalised to mean 1);
//   - TRL's off-policy sequence mask (DeepSeek-V3.2): keep a token if A >= 0 or the sequence's mean
//     of rollout - trainer log-probs is <= delta; multiplied into the weights;
//   - verl compute_rollout_rejection_mask: token_k{1,2,3}, seq_sum_k{1,2,3}, seq_mean_k{1,2,3},
//     seq_max_k{2,3} thresholds, all of which must pass; the kept mask m * keep;
//   - the metrics of verl compute_is_metrics, compute_offpolicy_metrics, the rejection fractions, and
//     TRL's importance_sampling_ratio / sampling_logp_difference.
// Per row, one function in token order (rc_row) writes the outputs and the row's partial sums; one
// function merges the rows in row order (rc_merge). All per-element math is in double. No gradient:
// both peers detach the weights and the masks.
#pragma once
#include <cmath>
#include <cstdint>

#include "hd.h"
#include "policy.h"  // MaskKind

namespace rk {

// TRL vllm_importance_sampling_mode names (in this order), plus 'none': no importance weights.
enum class RcMode : int { TokenTruncate = 0, TokenMask = 1, SequenceTruncate = 2, SequenceMask = 3, None = 4 };
constexpr int kRcModeCount = 5;

// verl rollout_rs options, in this order.
enum class RcCriterion : int {
  TokenK1 = 0, TokenK2, TokenK3, SeqSumK1, SeqSumK2, SeqSumK3, SeqMeanK1, SeqMeanK2, SeqMeanK3, SeqMaxK2, SeqMaxK3
};
constexpr int kRcCriterionCount = 11;

// The scalars, in this order (lib/policy/rollout-correction.ts RC_METRICS).
enum RcMetric : int {
  kRcIsMean = 0, kRcIsMax, kRcIsMin, kRcIsFractionHigh, kRcIsFractionLow, kRcIsStd, kRcIsEffSampleSize,
  kRcIsSeqMean, kRcIsSeqStd, kRcIsSeqMax, kRcIsSeqMin, kRcIsSeqMaxDeviation, kRcIsSeqFractionHigh,
  kRcIsSeqFractionLow, kRcIsBatchNormFactor, kRcIsRatioMin, kRcIsRatioMean, kRcIsRatioMax, kRcLogpDiffMean,
  kRcLogpDiffMax, kRcTrainingPpl, kRcTrainingLogPpl, kRcKl, kRcK3Kl, kRcRolloutPpl, kRcRolloutLogPpl,
  kRcLogPplDiff, kRcLogPplAbsDiff, kRcLogPplDiffMax, kRcLogPplDiffMin, kRcPplRatio, kRcChi2Token, kRcChi2Seq,
  kRcRsMaskedFraction, kRcRsSeqMaskedFraction, kRcOffPolicyMaskedFraction, kRcTokenCount,
  kRcMetricCount
};

struct RolloutCorrectionParams {
  RcMode mode = RcMode::TokenTruncate;
  double clip_min = 0;  // 0: no lower bound
  double clip_max = 2;  // 0: no upper bound
  bool batch_normalize = false;
  bool opsm = false;  // TRL off_policy_mask_threshold given
  double opsm_threshold = 0;
  bool rs_on[kRcCriterionCount] = {};
  double rs_lo[kRcCriterionCount] = {};  // k1 criteria: log of the lower ratio bound
  double rs_hi[kRcCriterionCount] = {};  // k1: log of the upper ratio bound; others: the upper bound
  // For the metrics (set by rc_metric_bounds): verl's thresholds, upper = clip_max (+inf when off),
  // lower = clip_min when given, else 1 / clip_max (verl), else 0; and their logs.
  double thr_hi = INFINITY, thr_lo = 0, log_thr_hi = INFINITY, log_thr_lo = -INFINITY;
};

// Fills the metric thresholds of p (on the host, so both backends use the same logs).
inline void rc_metric_bounds(RolloutCorrectionParams& p) {
  p.thr_hi = p.clip_max > 0 ? p.clip_max : INFINITY;
  p.thr_lo = p.clip_min > 0 ? p.clip_min : (p.clip_max > 0 ? 1.0 / p.clip_max : 0.0);
  p.log_thr_hi = std::log(p.thr_hi);
  p.log_thr_lo = p.thr_lo > 0 ? std::log(p.thr_lo) : -INFINITY;
}

// The arrays of one call (host or device pointers alike).
struct RcArgs {
  const float* trainer = nullptr;     // (B, T)
  const float* rollout = nullptr;     // (B, T)
  const float* advantages = nullptr;  // (B) or (B, T); null without the off-policy mask
  bool adv_per_token = false;
  const void* mask = nullptr;
  MaskKind mask_kind = MaskKind::None;
  float* weights = nullptr;   // (B, T), null with mode none and no off-policy mask
  float* mask_out = nullptr;  // (B, T)
  int64_t B = 0, T = 0;
};

// One row's partial sums (all over tokens with m > 0, weighted by m unless said).
struct RcRow {
  double msum, nvalid;   // sum m, count
  double S;              // sum m (trainer - rollout): the sequence log-ratio
  double mt, mq;         // masked means of trainer / rollout log-probs (verl masked_mean, + 1e-8)
  double wsum, hi, lo;   // IS metrics on the weights before truncation w0: sum m w0, m [w0 > hi], m [w0 < lo]
  double wmax, wmin;     // of w0 (-inf / +inf without a valid token)
  double c1, c2;         // sum m c, sum m c^2, c = clamp(w0, lo, hi)
  double sw;             // the row's masked mean of w0
  double rsum, rmax, rmin;  // TRL's ratio stats of the final token weights (token modes)
  double ws;             // the row's final sequence weight (sequence modes)
  double dsum, dmax;     // |trainer - rollout|
  double k3, chi;        // sum m (e^d - d - 1), sum m e^(2 clamp(d))
  double rej, rrow;      // sum m (1 - keep), 1 when a valid token is rejected
  double opsm;           // sum m (1 - off-policy keep)
  double bn;             // sum m w (the final importance weights, before the off-policy mask)
};

RK_HD double rc_mask_at(const void* mask, MaskKind kind, int64_t i) {
  switch (kind) {
    case MaskKind::U8: return static_cast<const uint8_t*>(mask)[i] != 0 ? 1.0 : 0.0;
    case MaskKind::F32: return static_cast<double>(static_cast<const float*>(mask)[i]);
    default: return 1.0;
  }
}

RK_HD double rc_clamp20(double x) { return x < -20.0 ? -20.0 : (x > 20.0 ? 20.0 : x); }  // NaN stays

// The truncated or masked weight of a ratio w0.
RK_HD double rc_bound(const RolloutCorrectionParams& p, bool truncate, double w0) {
  if (truncate) {
    double w = w0 < p.clip_min ? p.clip_min : w0;
    if (p.clip_max > 0 && w > p.clip_max) w = p.clip_max;
    return w;
  }
  const bool out = w0 < p.clip_min || (p.clip_max > 0 && w0 > p.clip_max);
  return out ? 0.0 : w0;
}

// Whether a criterion's value passes (k1 criteria: within [lo, hi], others: <= hi).
RK_HD bool rc_pass(const RolloutCorrectionParams& p, int c, double v) {
  const bool k1 = c == 0 || c == 3 || c == 6;
  return k1 ? (v >= p.rs_lo[c] && v <= p.rs_hi[c]) : v <= p.rs_hi[c];
}

// Row r: validates nothing (the caller checked the f32 mask); writes weights and mask_out of the row
// (weights divided by `norm`: 1, or the batch-normalisation factor on the second call, which writes
// the weights only) and, when o != null, the row's partial sums.
RK_HD void rc_row(const RcArgs& a, const RolloutCorrectionParams& p, int64_t r, double norm, RcRow* o) {
  const int64_t T = a.T;
  const int mode = static_cast<int>(p.mode);
  const bool is_on = mode < 4, seq = mode == 2 || mode == 3, truncate = mode == 0 || mode == 2;
  bool any_seq_rs = false;
  for (int c = 3; c < kRcCriterionCount; ++c) any_seq_rs = any_seq_rs || p.rs_on[c];
  // Pass 1: the row statistics.
  double msum = 0, nvalid = 0, S = 0, st = 0, sq = 0, sk[3] = {0, 0, 0}, mk2 = -INFINITY, mk3 = -INFINITY;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t i = r * T + t;
    const double m = rc_mask_at(a.mask, a.mask_kind, i);
    msum += m;
    if (!(m > 0)) continue;
    nvalid += 1;
    const double tl = a.trainer[i], ql = a.rollout[i];
    const double d = tl - ql, ds = rc_clamp20(d);
    S += m * d;
    st += m * tl;
    sq += m * ql;
    if (!any_seq_rs) continue;
    const double k2 = 0.5 * ds * ds, k3 = exp(ds) - 1.0 - ds;
    sk[0] += m * (0.0 - ds);
    sk[1] += m * k2;
    sk[2] += m * k3;
    mk2 = k2 > mk2 ? k2 : mk2;
    mk3 = k3 > mk3 ? k3 : mk3;
  }
  const double den = msum + 1e-8;
  const bool any = nvalid > 0;
  // Sequence criteria: one keep for the whole row.
  bool seq_keep = true;
  for (int c = 3; c < kRcCriterionCount; ++c) {
    if (!p.rs_on[c]) continue;
    double v;
    if (c < 6) v = sk[c - 3];
    else if (c < 9) v = sk[c - 6] / den;
    else v = any ? (c == 9 ? mk2 : mk3) : 0.0;
    seq_keep = seq_keep && rc_pass(p, c, v);
  }
  const double ws0 = exp(rc_clamp20(S));
  const double ws = is_on && seq ? rc_bound(p, truncate, ws0) : 0.0;
  const double opsm_kl = (0.0 - S) / (msum > 1.0 ? msum : 1.0);  // TRL: sum m (rollout - trainer) / max(sum m, 1)
  const bool opsm_low_kl = opsm_kl <= p.opsm_threshold;
  const float adv_row = a.advantages && !a.adv_per_token ? a.advantages[r] : 0.0f;

  RcRow q = {};
  q.wmax = -INFINITY;
  q.wmin = INFINITY;
  q.rmax = -INFINITY;
  q.rmin = INFINITY;
  q.dmax = -INFINITY;
  // Pass 2: the outputs.
  for (int64_t t = 0; t < T; ++t) {
    const int64_t i = r * T + t;
    const double m = rc_mask_at(a.mask, a.mask_kind, i);
    if (!(m > 0)) {
      if (a.weights) a.weights[i] = 0.0f;
      if (o) a.mask_out[i] = 0.0f;
      continue;
    }
    const double tl = a.trainer[i], ql = a.rollout[i];
    const double d = tl - ql, ds = rc_clamp20(d);
    const double ed = exp(ds);
    // rejection
    bool keep = seq_keep;
    if (p.rs_on[0]) keep = keep && rc_pass(p, 0, 0.0 - ds);
    if (p.rs_on[1]) keep = keep && rc_pass(p, 1, 0.5 * ds * ds);
    if (p.rs_on[2]) keep = keep && rc_pass(p, 2, ed - 1.0 - ds);
    // importance weight, then the off-policy mask
    const double w0 = seq ? ws0 : ed;
    const double w = is_on ? (seq ? ws : rc_bound(p, truncate, w0)) : 1.0;
    bool okeep = true;
    if (p.opsm) {
      const float A = a.adv_per_token ? a.advantages[i] : adv_row;
      okeep = A >= 0.0f || opsm_low_kl;
    }
    if (a.weights) a.weights[i] = static_cast<float>((okeep ? w : 0.0) / norm);
    if (!o) continue;
    a.mask_out[i] = keep ? static_cast<float>(m) : 0.0f;
    if (is_on) {
      q.wsum += m * w0;
      q.hi += w0 > p.thr_hi ? m : 0.0;
      q.lo += w0 < p.thr_lo ? m : 0.0;
      q.wmax = w0 > q.wmax ? w0 : q.wmax;
      q.wmin = w0 < q.wmin ? w0 : q.wmin;
      const double c = w0 < p.thr_lo ? p.thr_lo : (w0 > p.thr_hi ? p.thr_hi : w0);
      q.c1 += m * c;
      q.c2 += m * c * c;
      q.rsum += w;
      q.rmax = w > q.rmax ? w : q.rmax;
      q.rmin = w < q.rmin ? w : q.rmin;
      q.bn += m * w;
    }
    const double ad = d < 0 ? 0.0 - d : d;
    q.dsum += ad;
    q.dmax = ad > q.dmax ? ad : q.dmax;
    q.k3 += m * ((d == ds ? ed : exp(d)) - d - 1.0);
    q.chi += m * (ed * ed);
    q.rej += keep ? 0.0 : m;
    if (!keep) q.rrow = 1.0;
    q.opsm += okeep ? 0.0 : m;
  }
  if (!o) return;
  q.msum = msum;
  q.nvalid = nvalid;
  q.S = S;
  q.mt = st / den;
  q.mq = sq / den;
  q.sw = q.wsum / den;
  q.ws = ws;
  *o = q;
}

// The scalars (kRcMetricCount doubles) from the rows in row order. Returns the factor the weights
// are to be divided by (batch normalisation), or 1.
RK_HD double rc_merge(const RcRow* rows, int64_t B, const RolloutCorrectionParams& p, double* s) {
  for (int k = 0; k < kRcMetricCount; ++k) s[k] = 0;
  if (B <= 0) return 1.0;
  const int mode = static_cast<int>(p.mode);
  const bool is_on = mode < 4, seq = mode == 2 || mode == 3;
  const double Bd = static_cast<double>(B);
  double tm = 0, nv = 0, S = 0, wsum = 0, hi = 0, lo = 0, wmax = -INFINITY, wmin = INFINITY, c1 = 0, c2 = 0;
  double rsum = 0, rmax = -INFINITY, rmin = INFINITY, dsum = 0, dmax = -INFINITY, k3 = 0, chi = 0, rej = 0, rrow = 0;
  double opsm = 0, bn = 0, bns = 0, bnrows = 0;
  double swsum = 0, swmax = -INFINITY, swmin = INFINITY, swdev = 0, swhi = 0, swlo = 0;
  double Smax = -INFINITY, Smin = INFINITY, Shi = 0, Slo = 0;
  double wsmin = INFINITY, wsmax = -INFINITY, wssum = 0;
  double tppl = 0, tlog = 0, rppl = 0, rlog = 0, dl = 0, dla = 0, dlmax = -INFINITY, dlmin = INFINITY, pr = 0, chis = 0;
  for (int64_t r = 0; r < B; ++r) {
    const RcRow& q = rows[r];
    tm += q.msum;
    nv += q.nvalid;
    S += q.S;
    wsum += q.wsum;
    hi += q.hi;
    lo += q.lo;
    wmax = q.wmax > wmax ? q.wmax : wmax;
    wmin = q.wmin < wmin ? q.wmin : wmin;
    c1 += q.c1;
    c2 += q.c2;
    rsum += q.rsum;
    rmax = q.rmax > rmax ? q.rmax : rmax;
    rmin = q.rmin < rmin ? q.rmin : rmin;
    dsum += q.dsum;
    dmax = q.dmax > dmax ? q.dmax : dmax;
    k3 += q.k3;
    chi += q.chi;
    rej += q.rej;
    rrow += q.rrow;
    opsm += q.opsm;
    bn += q.bn;
    if (q.msum > 0) {
      bns += q.bn / (q.msum + 1e-8);
      bnrows += 1;
    }
    swsum += q.sw;
    swmax = q.sw > swmax ? q.sw : swmax;
    swmin = q.sw < swmin ? q.sw : swmin;
    const double dev = q.sw > 1.0 ? q.sw - 1.0 : 1.0 - q.sw;
    swdev = dev > swdev ? dev : swdev;
    swhi += q.sw > p.thr_hi ? 1.0 : 0.0;
    swlo += q.sw < p.thr_lo ? 1.0 : 0.0;
    Smax = q.S > Smax ? q.S : Smax;
    Smin = q.S < Smin ? q.S : Smin;
    Shi += q.S > p.log_thr_hi ? 1.0 : 0.0;
    Slo += q.S < p.log_thr_lo ? 1.0 : 0.0;
    wssum += q.ws;
    wsmax = q.ws > wsmax ? q.ws : wsmax;
    wsmin = q.ws < wsmin ? q.ws : wsmin;
    tppl += exp(0.0 - q.mt);
    tlog += 0.0 - q.mt;
    rppl += exp(0.0 - q.mq);
    rlog += 0.0 - q.mq;
    const double ld = q.mq - q.mt;
    dl += ld;
    dla += ld < 0 ? 0.0 - ld : ld;
    dlmax = ld > dlmax ? ld : dlmax;
    dlmin = ld < dlmin ? ld : dlmin;
    pr += exp(ld);
    const double s2 = rc_clamp20(q.S);
    chis += exp(2.0 * s2);
  }
  const double tden = tm + 1e-8;
  double factor = 1.0;
  if (is_on) {
    s[kRcIsMean] = wsum / tden;
    if (seq) {
      s[kRcIsMax] = exp(Smax < 20.0 ? Smax : 20.0);
      s[kRcIsMin] = exp(Smin);
      s[kRcIsFractionHigh] = Shi / Bd;
      s[kRcIsFractionLow] = Slo / Bd;
    } else {
      s[kRcIsMax] = nv > 0 ? wmax : 0.0;
      s[kRcIsMin] = nv > 0 ? wmin : 0.0;
      s[kRcIsFractionHigh] = hi / tden;
      s[kRcIsFractionLow] = lo / tden;
    }
    if (tm > 1.0) {
      const double mc = c1 / tden;
      const double var = c2 / tden - mc * mc;
      s[kRcIsStd] = sqrt(var > 0 ? var : 0.0);
    }
    const double me = c1 / tden + 1e-8;
    s[kRcIsEffSampleSize] = nv > 0 ? 1.0 / (c2 / (me * me) / tden) : 0.0;  // verl raises without a token
    const double swm = swsum / Bd;
    s[kRcIsSeqMean] = swm;
    if (B > 1) {
      double v = 0;
      for (int64_t r = 0; r < B; ++r) v += (rows[r].sw - swm) * (rows[r].sw - swm);
      s[kRcIsSeqStd] = sqrt(v / (Bd - 1.0));
    }
    s[kRcIsSeqMax] = swmax;
    s[kRcIsSeqMin] = swmin;
    s[kRcIsSeqMaxDeviation] = swdev;
    s[kRcIsSeqFractionHigh] = swhi / Bd;
    s[kRcIsSeqFractionLow] = swlo / Bd;
    if (p.batch_normalize) {
      const double mean = seq ? bns / (bnrows > 1e-8 ? bnrows : 1e-8) : bn / tden;
      factor = mean > 1e-8 ? mean : 1.0;
      s[kRcIsBatchNormFactor] = factor;
    }
    if (seq) {
      s[kRcIsRatioMin] = wsmin;
      s[kRcIsRatioMean] = wssum / Bd;
      s[kRcIsRatioMax] = wsmax;
    } else if (nv > 0) {
      s[kRcIsRatioMin] = rmin;
      s[kRcIsRatioMean] = rsum / nv;
      s[kRcIsRatioMax] = rmax;
    }
  }
  if (nv > 0) {
    s[kRcLogpDiffMean] = dsum / nv;
    s[kRcLogpDiffMax] = dmax;
  }
  s[kRcTrainingPpl] = tppl / Bd;
  s[kRcTrainingLogPpl] = tlog / Bd;
  s[kRcKl] = (0.0 - S) / tden;
  s[kRcK3Kl] = k3 / tden;
  s[kRcRolloutPpl] = rppl / Bd;
  s[kRcRolloutLogPpl] = rlog / Bd;
  s[kRcLogPplDiff] = dl / Bd;
  s[kRcLogPplAbsDiff] = dla / Bd;
  s[kRcLogPplDiffMax] = dlmax;
  s[kRcLogPplDiffMin] = dlmin;
  s[kRcPplRatio] = pr / Bd;
  s[kRcChi2Token] = chi / tden - 1.0;
  s[kRcChi2Seq] = chis / Bd - 1.0;
  s[kRcRsMaskedFraction] = rej / tden;
  s[kRcRsSeqMaskedFraction] = rrow / Bd;
  s[kRcOffPolicyMaskedFraction] = opsm / tden;
  s[kRcTokenCount] = tm;
  return factor;
}

}  // namespace rk
