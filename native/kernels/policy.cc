// Policy-gradient losses and KL estimators: forward and backward side by side (shapes in policy.h).
//
// Per token, with d = logprobs - old_logprobs, r = exp(clamp(d, -20, 20)) and A the advantage:
//   ppo    L = max(-A min(r, delta), -A clip(r, 1 - eps_lo, 1 + eps_hi)), then for A < 0 and a dual
//          clip c: L = min(L, -c A).  dL/dl = -A r where the unclipped, uncapped branch is active,
//          else 0 (also 0 where |d| > 20).
//   gspo   the same with r replaced by s_i exp(l_t - sg l_t), log s_i = sum_t m d / sum_t m clamped
//          above at 10 (verl): dL/dl = -A s_i where the unclipped branch is active.
//   cispo  L = -sg(min(r, eps_hi)) A l,  dL/dl = -min(r, eps_hi) A.
//   sapo   L = -(4/tau) sigmoid(tau (r - 1)) A, tau = tau_pos (A > 0) or tau_neg,
//          dL/dl = -4 sigmoid (1 - sigmoid) r A.
//   gpg    L = -A l,  dL/dl = -A.
// Plus beta * KL(l - ref) and -entropy_coef * H. The loss is sum_t w_t L_t with w_t = m_t f_i, the
// row factor f_i set by the aggregation (policy.h). Two passes over fixed chunks of kPolicyChunk
// tokens: (1) mask sums (and GSPO's sum m d) per chunk, merged per row in order; (2) per-token loss
// and gradient, with per-chunk double partial sums merged in chunk, then row, order.
#include "policy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "threadpool.h"

namespace rk {
namespace {

using detail::kPolicyChunk;

inline double mask_value(const void* mask, MaskKind kind, int64_t i) {
  switch (kind) {
    case MaskKind::U8: return static_cast<const uint8_t*>(mask)[i] != 0 ? 1.0 : 0.0;
    case MaskKind::F32: return static_cast<const float*>(mask)[i];
    default: return 1.0;
  }
}

inline bool bad_weight(const void* mask, MaskKind kind, int64_t i) {
  if (kind != MaskKind::F32) return false;
  const float w = static_cast<const float*>(mask)[i];
  return !(w >= 0.0f) || !std::isfinite(w);
}

// sigmoid(x) and 1 - sigmoid(x), both with full relative precision.
inline void sigmoid_pair(double x, double* s, double* one_minus_s) {
  const double e = std::exp(-std::fabs(x));
  const double inv = 1.0 / (1.0 + e);
  if (x >= 0) {
    *s = inv;
    *one_minus_s = e * inv;
  } else {
    *s = e * inv;
    *one_minus_s = inv;
  }
}

// Per-chunk partial sums, all mask-weighted.
struct Part {
  double m = 0;       // sum m
  double md = 0;      // sum m d (GSPO sequence ratio)
  double mL = 0;      // sum m L
  double low = 0, high = 0, dual = 0;
  double approx = 0;  // sum m 0.5 d^2
  double kl = 0;      // sum m KL
  double ent = 0;     // sum m H
  int64_t bad = -1;   // first invalid mask weight in the chunk
};

}  // namespace

void kl_estimate(KlEstimator est, double d, double* value, double* grad) {
  switch (est) {
    case KlEstimator::K1:
      *value = d;
      *grad = 1.0;
      return;
    case KlEstimator::Abs:
      *value = std::fabs(d);
      *grad = d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0);
      return;
    case KlEstimator::K2:
      *value = 0.5 * d * d;
      *grad = d;
      return;
    case KlEstimator::K3:
    case KlEstimator::K3Plus: {
      // verl low_var_kl: x = clamp(ref - l, -20, 20), k3 = clamp(exp(x) - x - 1, -10, 10).
      const double x0 = -d;
      const bool xin = x0 >= -20.0 && x0 <= 20.0;
      const double x = xin ? x0 : (x0 < -20.0 ? -20.0 : (x0 > 20.0 ? 20.0 : x0));
      const double ex = std::exp(x);
      const double k = ex - x - 1.0;
      const bool kin = k >= -10.0 && k <= 10.0;
      *value = kin ? k : (k > 10.0 ? 10.0 : (k < -10.0 ? -10.0 : k));
      if (est == KlEstimator::K3Plus) *grad = d;  // straight-through: k2's gradient
      else *grad = (xin && kin) ? 1.0 - ex : 0.0;
      return;
    }
  }
  *value = 0;
  *grad = 0;
}

Status policy_loss(const PolicyLossInputs& in, const PolicyLossParams& p, float* grad_logprobs,
                   float* grad_entropy, PolicyLossMetrics* metrics) {
  const int64_t B = in.batch, T = in.seq_len;
  if (B < 0 || T <= 0) return Status{Status::BadShape, 0, T};
  PolicyLossMetrics out;
  if (B == 0) {
    if (metrics) *metrics = out;
    return Status{};
  }
  const int64_t nck = (T + kPolicyChunk - 1) / kPolicyChunk;
  const int64_t items = B * nck;
  const int64_t chunk_len = std::min(T, kPolicyChunk);
  const int64_t grain = std::max<int64_t>(1, kPolicyChunk / chunk_len);
  const bool gspo = p.variant == PolicyVariant::Gspo;
  std::vector<Part> parts(items);

  // Pass 1: mask sums (validating f32 weights), and GSPO's sum m d.
  parallel_for(items, grain, [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) {
      const int64_t r = it / nck, c = it % nck;
      const int64_t t0 = r * T + c * kPolicyChunk;
      const int64_t t1 = r * T + std::min(T, (c + 1) * kPolicyChunk);
      Part& q = parts[it];
      for (int64_t i = t0; i < t1; ++i) {
        if (bad_weight(in.mask, in.mask_kind, i)) {
          q.bad = i;
          break;
        }
        const double m = mask_value(in.mask, in.mask_kind, i);
        q.m += m;
        if (gspo && m > 0) q.md += m * (static_cast<double>(in.logprobs[i]) - in.old_logprobs[i]);
      }
    }
  });
  for (int64_t it = 0; it < items; ++it) {
    if (parts[it].bad >= 0) {
      Status st;
      st.code = Status::BadIndex;
      st.index = parts[it].bad;
      st.value = 0;
      return st;
    }
  }
  std::vector<double> row_m(B, 0.0), row_log_s(B, 0.0), row_f(B, 0.0);
  double total_m = 0;
  for (int64_t r = 0; r < B; ++r) {
    double m = 0, md = 0;
    for (int64_t c = 0; c < nck; ++c) {
      m += parts[r * nck + c].m;
      md += parts[r * nck + c].md;
    }
    row_m[r] = m;
    row_log_s[r] = m > 0 ? md / m : 0.0;
    total_m += m;
  }
  // Row factors f_i: w_t = m_t f_i. An all-masked row has f_i irrelevant (no token has m > 0).
  const bool has_norm = p.normalizer > 0;
  for (int64_t r = 0; r < B; ++r) {
    double f = 0;
    switch (p.aggregation) {
      case LossAggregation::TokenMean: {
        const double den = has_norm ? p.normalizer : total_m;
        f = den > 0 ? 1.0 / den : 0.0;
        break;
      }
      case LossAggregation::SeqMeanTokenMean: {
        const double den = has_norm ? p.normalizer : static_cast<double>(B);
        f = row_m[r] > 0 ? 1.0 / (row_m[r] * den) : 0.0;
        break;
      }
      case LossAggregation::SeqMeanTokenSum:
        f = 1.0 / (has_norm ? p.normalizer : static_cast<double>(B));
        break;
      case LossAggregation::SeqMeanTokenSumNorm:
        f = 1.0 / (has_norm ? p.normalizer : static_cast<double>(B) * static_cast<double>(T));
        break;
    }
    row_f[r] = f;
  }

  // Pass 2: per-token loss and gradient.
  const double lo = 1.0 - p.epsilon_low, hi = 1.0 + p.epsilon_high;
  const bool use_kl = in.ref_logprobs != nullptr;
  const bool use_ent = in.entropy != nullptr;
  parallel_for(items, grain, [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) {
      const int64_t r = it / nck, c = it % nck;
      const int64_t t0 = r * T + c * kPolicyChunk;
      const int64_t t1 = r * T + std::min(T, (c + 1) * kPolicyChunk);
      const double f = row_f[r];
      // GSPO: s_i = exp(min(log s_i, 10)), gradient passes while log s_i <= 10.
      const double ls = row_log_s[r];
      const bool s_pass = ls <= 10.0;
      const double s_val = std::exp(s_pass ? ls : 10.0);
      Part& q = parts[it];
      double mL = 0, low = 0, high = 0, dual = 0, approx = 0, klsum = 0, ent = 0;
      for (int64_t i = t0; i < t1; ++i) {
        const double m = mask_value(in.mask, in.mask_kind, i);
        if (!(m > 0)) {
          grad_logprobs[i] = 0.0f;
          if (grad_entropy) grad_entropy[i] = 0.0f;
          continue;
        }
        const double l = in.logprobs[i];
        const double d = l - static_cast<double>(in.old_logprobs[i]);
        const double A = in.advantages[in.advantages_per_token ? i : r];
        double L = 0, g = 0;
        // The ratio and its derivative w.r.t. l (0 where a clamp is active).
        double ratio, dratio;
        if (gspo) {
          ratio = s_val;
          dratio = s_pass ? s_val : 0.0;
        } else {
          const bool din = d >= -20.0 && d <= 20.0;
          ratio = std::exp(din ? d : (d < -20.0 ? -20.0 : (d > 20.0 ? 20.0 : d)));
          dratio = din ? ratio : 0.0;
        }
        switch (p.variant) {
          case PolicyVariant::Ppo:
          case PolicyVariant::Gspo: {
            const double rc = ratio < lo ? lo : (ratio > hi ? hi : ratio);
            const bool capped = p.delta > 0 && ratio > p.delta;
            const double ru = capped ? p.delta : ratio;
            const double L1 = -A * ru, L2 = -A * rc;
            if (L1 >= L2) {
              L = L1;
              g = capped ? 0.0 : -A * dratio;
            } else {
              L = L2;
              g = 0.0;
            }
            if (p.dual_clip > 0 && A < 0) {
              const double L3 = -A * p.dual_clip;
              if (L > L3) {
                L = L3;
                g = 0.0;
                dual += m;
              }
            }
            if (ratio < lo && A < 0) low += m;
            if (ratio > hi && A > 0) high += m;
            break;
          }
          case PolicyVariant::Cispo: {
            const double w = ratio < p.epsilon_high ? ratio : p.epsilon_high;
            L = -w * A * l;
            g = -w * A;
            if (ratio > p.epsilon_high && A > 0) high += m;
            break;
          }
          case PolicyVariant::Sapo: {
            const double tau = A > 0 ? p.sapo_tau_pos : p.sapo_tau_neg;
            double s, oms;
            sigmoid_pair(tau * (ratio - 1.0), &s, &oms);
            L = -(4.0 / tau) * s * A;
            g = -4.0 * s * oms * dratio * A;
            break;
          }
          case PolicyVariant::Gpg:
            L = -A * l;
            g = -A;
            break;
        }
        approx += m * 0.5 * d * d;
        if (use_kl) {
          double kv, kg;
          kl_estimate(p.kl, l - static_cast<double>(in.ref_logprobs[i]), &kv, &kg);
          L += p.beta * kv;
          g += p.beta * kg;
          klsum += m * kv;
        }
        if (use_ent) {
          const double h = in.entropy[i];
          L -= p.entropy_coef * h;
          ent += m * h;
        }
        mL += m * L;
        const double w = m * f;
        grad_logprobs[i] = static_cast<float>(w * g);
        if (grad_entropy) grad_entropy[i] = static_cast<float>(-p.entropy_coef * w);
      }
      q.mL = mL;
      q.low = low;
      q.high = high;
      q.dual = dual;
      q.approx = approx;
      q.kl = klsum;
      q.ent = ent;
    }
  });

  // Merge: chunks in order within a row, rows in order.
  double loss = 0, low = 0, high = 0, dual = 0, approx = 0, klsum = 0, ent = 0;
  for (int64_t r = 0; r < B; ++r) {
    double mL = 0;
    for (int64_t c = 0; c < nck; ++c) {
      const Part& q = parts[r * nck + c];
      mL += q.mL;
      low += q.low;
      high += q.high;
      dual += q.dual;
      approx += q.approx;
      klsum += q.kl;
      ent += q.ent;
    }
    if (row_m[r] > 0) loss += row_f[r] * mL;
  }
  out.loss = loss;
  out.token_count = total_m;
  if (total_m > 0) {
    out.clip_low_fraction = low / total_m;
    out.clip_high_fraction = high / total_m;
    out.clip_fraction = (low + high) / total_m;  // disjoint: A < 0 vs A > 0
    out.dual_clip_fraction = dual / total_m;
    out.approx_kl = approx / total_m;
    out.kl = klsum / total_m;
    out.entropy = ent / total_m;
  }
  if (metrics) *metrics = out;
  return Status{};
}

Status kl_penalty(const float* logprobs, const float* ref_logprobs, int64_t n, const void* mask,
                  MaskKind mask_kind, KlEstimator est, float* kl_out, float* grad_out,
                  double* mean_out) {
  if (n < 0) return Status{Status::BadShape, 0, n};
  const int64_t items = (n + kPolicyChunk - 1) / kPolicyChunk;
  std::vector<Part> parts(items);
  // Validate the weights before writing anything.
  if (mask_kind == MaskKind::F32) {
    parallel_for(items, 1, [&](int64_t b, int64_t e) {
      for (int64_t it = b; it < e; ++it) {
        const int64_t t1 = std::min(n, (it + 1) * kPolicyChunk);
        for (int64_t i = it * kPolicyChunk; i < t1; ++i) {
          if (bad_weight(mask, mask_kind, i)) {
            parts[it].bad = i;
            break;
          }
        }
      }
    });
    for (int64_t it = 0; it < items; ++it)
      if (parts[it].bad >= 0) return Status{Status::BadIndex, parts[it].bad, 0};
  }
  parallel_for(items, 1, [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) {
      const int64_t t1 = std::min(n, (it + 1) * kPolicyChunk);
      double sm = 0, skl = 0;
      for (int64_t i = it * kPolicyChunk; i < t1; ++i) {
        const double m = mask_value(mask, mask_kind, i);
        if (!(m > 0)) {
          if (kl_out) kl_out[i] = 0.0f;
          if (grad_out) grad_out[i] = 0.0f;
          continue;
        }
        double v, g;
        kl_estimate(est, static_cast<double>(logprobs[i]) - ref_logprobs[i], &v, &g);
        if (kl_out) kl_out[i] = static_cast<float>(v);
        if (grad_out) grad_out[i] = static_cast<float>(g);
        sm += m;
        skl += m * v;
      }
      parts[it].m = sm;
      parts[it].kl = skl;
    }
  });
  double sm = 0, skl = 0;
  for (int64_t it = 0; it < items; ++it) {
    sm += parts[it].m;
    skl += parts[it].kl;
  }
  if (mean_out) *mean_out = sm > 0 ? skl / sm : 0.0;
  return Status{};
}

}  // namespace rk
