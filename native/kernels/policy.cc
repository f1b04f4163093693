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

#include "cpu.h"
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

// e^x - x - 1 for |x| < 0.5 by its series to x^9 (truncation < 3e-9 relative).
inline double k3_series(double x) {
  double p = 1.0 / 362880.0;
  p = p * x + 1.0 / 40320.0;
  p = p * x + 1.0 / 5040.0;
  p = p * x + 1.0 / 720.0;
  p = p * x + 1.0 / 120.0;
  p = p * x + 1.0 / 24.0;
  p = p * x + 1.0 / 6.0;
  p = p * x + 0.5;
  return p * x * x;
}

}  // namespace

// One token's estimate and gradient from d = logprobs - ref and ex = exp(clamp(-d, -20, 20)),
// which callers may compute in f32: where |x| < 0.5 the k3 value and gradient come from the series
// instead, so ex's rounding never meets the cancellation of e^x - x - 1 (elsewhere k3 >= 0.106 and
// the f32 ex leaves k3 within 3e-6 relative).
inline void kl_eval(KlEstimator est, double d, double ex, double* value, double* grad) {
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
      double k, em1;  // e^x - x - 1 and e^x - 1
      if (std::fabs(x) < 0.5) {
        k = k3_series(x);
        em1 = k + x;
      } else {
        k = ex - x - 1.0;
        em1 = ex - 1.0;
      }
      const bool kin = k >= -10.0 && k <= 10.0;
      *value = kin ? k : (k > 10.0 ? 10.0 : (k < -10.0 ? -10.0 : k));
      if (est == KlEstimator::K3Plus) *grad = d;  // straight-through: k2's gradient
      else *grad = (xin && kin) ? -em1 : 0.0;
      return;
    }
  }
  *value = 0;
  *grad = 0;
}

namespace {

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


const detail::PolicyKernels& kernels() {
  switch (active_isa()) {
    case Isa::Avx512: return detail::policy_kernels_avx512();
    case Isa::Avx2: return detail::policy_kernels_avx2();
    default: return detail::policy_kernels_scalar();
  }
}

template <MaskKind MK>
inline double mask_t(const void* mask, int64_t i) {
  if constexpr (MK == MaskKind::U8) return static_cast<const uint8_t*>(mask)[i] != 0 ? 1.0 : 0.0;
  else if constexpr (MK == MaskKind::F32) return static_cast<const float*>(mask)[i];
  else return 1.0;
}

struct Pass2 {
  const PolicyLossInputs* in;
  const PolicyLossParams* p;
  float* grad;
  float* grad_entropy;
  const detail::PolicyKernels* k;
};

// One chunk [t0, t1) of row r: per-token loss and gradient (weight m f), partial sums into q.
template <PolicyVariant V, MaskKind MK>
void pass2_chunk(const Pass2& c, int64_t r, int64_t t0, int64_t t1, double f, double log_s, Part& q) {
  const PolicyLossInputs& in = *c.in;
  const PolicyLossParams& p = *c.p;
  constexpr bool kGspo = V == PolicyVariant::Gspo;
  constexpr bool kNeedRatio = V == PolicyVariant::Ppo || V == PolicyVariant::Cispo || V == PolicyVariant::Sapo;
  float rbuf[kNeedRatio ? kPolicyChunk : 1];
  if constexpr (kNeedRatio) c.k->exp_diff(in.logprobs + t0, in.old_logprobs + t0, t1 - t0, -20.0f, 20.0f, rbuf);
  // Everything the loop reads, in locals (stores through float* must not force reloads).
  const float* const lp = in.logprobs;
  const float* const old = in.old_logprobs;
  const float* const adv = in.advantages;
  const float* const ref = in.ref_logprobs;
  const float* const hent = in.entropy;
  const void* const mask = in.mask;
  float* const grad = c.grad;
  float* const gent = c.grad_entropy;
  const bool per_token = in.advantages_per_token;
  const double lo = 1.0 - p.epsilon_low, hi = 1.0 + p.epsilon_high, eps_hi = p.epsilon_high;
  const double delta = p.delta > 0 ? p.delta : HUGE_VAL;
  const double dual_c = p.dual_clip;
  const bool use_dual = dual_c > 0;
  const double beta = p.beta, ecoef = p.entropy_coef;
  const double tau_pos = p.sapo_tau_pos, tau_neg = p.sapo_tau_neg;
  const KlEstimator est = p.kl;
  const int64_t len = t1 - t0;
  // k3 / k3+: exp(clamp(ref - l, -20, 20)) for the chunk, in f32 (see kl_eval).
  const bool k3like = ref && (est == KlEstimator::K3 || est == KlEstimator::K3Plus);
  float kbuf[kPolicyChunk];
  if (k3like) c.k->exp_diff(ref + t0, lp + t0, len, -20.0f, 20.0f, kbuf);
  // SAPO: exp(-|tau (r - 1)|) for the chunk, in f32 (the sigmoid has no cancellation).
  constexpr bool kSapo = V == PolicyVariant::Sapo;
  float sbuf[kSapo ? kPolicyChunk : 1];
  if constexpr (kSapo) {
    for (int64_t j = 0; j < len; ++j) {
      const double A = per_token ? static_cast<double>(adv[t0 + j]) : static_cast<double>(adv[r]);
      const double tau = A > 0 ? tau_pos : tau_neg;
      sbuf[j] = static_cast<float>(-std::fabs(tau * (static_cast<double>(rbuf[j]) - 1.0)));
    }
    c.k->exp(sbuf, len, -200.0f, 0.0f, sbuf);
  }
  // GSPO: s_i = exp(min(log s_i, 10)), gradient passes while log s_i <= 10.
  const bool s_pass = log_s <= 10.0;
  const double s_val = kGspo ? std::exp(s_pass ? log_s : 10.0) : 0.0;
  const double row_adv = per_token ? 0.0 : adv[r];
  double mL = 0, low = 0, high = 0, dual = 0, approx = 0, klsum = 0, ent = 0;
  for (int64_t i = t0; i < t1; ++i) {
    const double m = mask_t<MK>(mask, i);
    if (!(m > 0)) {
      grad[i] = 0.0f;
      if (gent) gent[i] = 0.0f;
      continue;
    }
    const double l = lp[i];
    const double d = l - static_cast<double>(old[i]);
    const double A = per_token ? static_cast<double>(adv[i]) : row_adv;
    double L = 0, g = 0;
    // The ratio and its derivative w.r.t. l (0 where a clamp is active).
    double ratio = 0, dratio = 0;
    if constexpr (kGspo) {
      ratio = s_val;
      dratio = s_pass ? s_val : 0.0;
    } else if constexpr (kNeedRatio) {
      ratio = rbuf[i - t0];
      dratio = (d >= -20.0 && d <= 20.0) ? ratio : 0.0;
    }
    if constexpr (V == PolicyVariant::Ppo || V == PolicyVariant::Gspo) {
      // Branch-free (min/max/selects): the clip branches are data-dependent.
      const double rc = std::min(std::max(ratio, lo), hi);
      const bool capped = ratio > delta;
      const double L1 = -A * std::min(ratio, delta), L2 = -A * rc;
      const bool unclipped = L1 >= L2;
      L = std::max(L1, L2);
      g = (unclipped & !capped) ? -A * dratio : 0.0;
      if (use_dual) {
        const double L3 = -A * dual_c;
        const bool dc = (A < 0) & (L > L3);
        L = dc ? L3 : L;
        g = dc ? 0.0 : g;
        dual += dc ? m : 0.0;
      }
      low += m * static_cast<double>((ratio < lo) & (A < 0));
      high += m * static_cast<double>((ratio > hi) & (A > 0));
    } else if constexpr (V == PolicyVariant::Cispo) {
      const double w = ratio < eps_hi ? ratio : eps_hi;
      L = -w * A * l;
      g = -w * A;
      high += (ratio > eps_hi && A > 0) ? m : 0.0;
    } else if constexpr (V == PolicyVariant::Sapo) {
      const double tau = A > 0 ? tau_pos : tau_neg;
      const double e = sbuf[i - t0], inv = 1.0 / (1.0 + e);
      const bool pos = tau * (ratio - 1.0) >= 0;
      const double s = pos ? inv : e * inv, oms = pos ? e * inv : inv;
      L = -(4.0 / tau) * s * A;
      g = -4.0 * s * oms * dratio * A;
    } else {
      L = -A * l;
      g = -A;
    }
    approx += m * 0.5 * d * d;
    if (ref) {
      double kv, kg;
      kl_eval(est, l - static_cast<double>(ref[i]), k3like ? kbuf[i - t0] : 0.0, &kv, &kg);
      L += beta * kv;
      g += beta * kg;
      klsum += m * kv;
    }
    if (hent) {
      const double h = hent[i];
      L -= ecoef * h;
      ent += m * h;
    }
    mL += m * L;
    const double w = m * f;
    grad[i] = static_cast<float>(w * g);
    if (gent) gent[i] = static_cast<float>(-ecoef * w);
  }
  q.mL = mL;
  q.low = low;
  q.high = high;
  q.dual = dual;
  q.approx = approx;
  q.kl = klsum;
  q.ent = ent;
}

// Pass 1 over one chunk: the mask sum (validating f32 weights) and, for GSPO, sum m d.
template <MaskKind MK>
void pass1_chunk(const PolicyLossInputs& in, bool gspo, int64_t t0, int64_t t1, Part& q) {
  double m_sum = 0, md = 0;
  if constexpr (MK == MaskKind::F32) {
    const float* w = static_cast<const float*>(in.mask);
    for (int64_t i = t0; i < t1; ++i) {
      if (!(w[i] >= 0.0f) || !std::isfinite(w[i])) {
        q.bad = i;
        return;
      }
    }
  }
  if constexpr (MK == MaskKind::None) {
    m_sum = static_cast<double>(t1 - t0);
  } else if constexpr (MK == MaskKind::U8) {
    const uint8_t* u = static_cast<const uint8_t*>(in.mask);
    int64_t cnt = 0;
    for (int64_t i = t0; i < t1; ++i) cnt += u[i] != 0;
    m_sum = static_cast<double>(cnt);
  } else {
    const float* w = static_cast<const float*>(in.mask);
    for (int64_t i = t0; i < t1; ++i) m_sum += w[i];
  }
  if (gspo) {
    for (int64_t i = t0; i < t1; ++i) {
      const double m = mask_t<MK>(in.mask, i);
      if (m > 0) md += m * (static_cast<double>(in.logprobs[i]) - in.old_logprobs[i]);
    }
  }
  q.m = m_sum;
  q.md = md;
}

using Pass2Fn = void (*)(const Pass2&, int64_t, int64_t, int64_t, double, double, Part&);

template <PolicyVariant V>
Pass2Fn pass2_for_mask(MaskKind mk) {
  switch (mk) {
    case MaskKind::U8: return &pass2_chunk<V, MaskKind::U8>;
    case MaskKind::F32: return &pass2_chunk<V, MaskKind::F32>;
    default: return &pass2_chunk<V, MaskKind::None>;
  }
}

Pass2Fn pass2_fn(PolicyVariant v, MaskKind mk) {
  switch (v) {
    case PolicyVariant::Gspo: return pass2_for_mask<PolicyVariant::Gspo>(mk);
    case PolicyVariant::Cispo: return pass2_for_mask<PolicyVariant::Cispo>(mk);
    case PolicyVariant::Sapo: return pass2_for_mask<PolicyVariant::Sapo>(mk);
    case PolicyVariant::Gpg: return pass2_for_mask<PolicyVariant::Gpg>(mk);
    default: return pass2_for_mask<PolicyVariant::Ppo>(mk);
  }
}

}  // namespace

void kl_estimate(KlEstimator est, double d, double* value, double* grad) {
  const double x0 = -d;
  const double x = x0 < -20.0 ? -20.0 : (x0 > 20.0 ? 20.0 : x0);
  kl_eval(est, d, std::exp(x), value, grad);
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
  void (*p1)(const PolicyLossInputs&, bool, int64_t, int64_t, Part&) =
      in.mask_kind == MaskKind::U8    ? &pass1_chunk<MaskKind::U8>
      : in.mask_kind == MaskKind::F32 ? &pass1_chunk<MaskKind::F32>
                                      : &pass1_chunk<MaskKind::None>;
  parallel_for(items, grain, [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) {
      const int64_t r = it / nck, c = it % nck;
      const int64_t t0 = r * T + c * kPolicyChunk;
      const int64_t t1 = r * T + std::min(T, (c + 1) * kPolicyChunk);
      p1(in, gspo, t0, t1, parts[it]);
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
  Pass2 ctx{&in, &p, grad_logprobs, grad_entropy, &kernels()};
  const Pass2Fn fn = pass2_fn(p.variant, in.mask_kind);
  // Without KL or entropy terms, ppo / gspo / cispo / gpg take the vectorised chunk loop.
  const bool fast = p.variant != PolicyVariant::Sapo && in.ref_logprobs == nullptr &&
                    in.entropy == nullptr && grad_entropy == nullptr;
  parallel_for(items, grain, [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) {
      const int64_t r = it / nck, c = it % nck;
      const int64_t t0 = r * T + c * kPolicyChunk;
      const int64_t t1 = r * T + std::min(T, (c + 1) * kPolicyChunk);
      if (!fast) {
        fn(ctx, r, t0, t1, row_f[r], row_log_s[r], parts[it]);
        continue;
      }
      detail::FastChunk fc;
      fc.logprobs = in.logprobs + t0;
      fc.old_logprobs = in.old_logprobs + t0;
      fc.advantages = in.advantages_per_token ? in.advantages + t0 : nullptr;
      fc.adv_row = in.advantages_per_token ? 0.0f : in.advantages[r];
      fc.mask = in.mask_kind == MaskKind::None ? nullptr
                : in.mask_kind == MaskKind::U8
                    ? static_cast<const void*>(static_cast<const uint8_t*>(in.mask) + t0)
                    : static_cast<const void*>(static_cast<const float*>(in.mask) + t0);
      fc.mask_kind = static_cast<int>(in.mask_kind);
      fc.n = t1 - t0;
      fc.variant = static_cast<int>(p.variant);
      fc.lo = static_cast<float>(1.0 - p.epsilon_low);
      fc.hi = static_cast<float>(1.0 + p.epsilon_high);
      fc.eps_hi = static_cast<float>(p.epsilon_high);
      fc.delta = p.delta > 0 ? static_cast<float>(p.delta) : HUGE_VALF;
      fc.dual_clip = static_cast<float>(p.dual_clip);
      const double ls = row_log_s[r];
      const double sv = std::exp(ls <= 10.0 ? ls : 10.0);
      fc.gspo_ratio = static_cast<float>(sv);
      fc.gspo_dratio = ls <= 10.0 ? static_cast<float>(sv) : 0.0f;
      fc.weight = static_cast<float>(row_f[r]);
      fc.grad = grad_logprobs + t0;
      ctx.k->fast_chunk(&fc);
      Part& q = parts[it];
      q.mL = fc.sums[0];
      q.low = fc.sums[1];
      q.high = fc.sums[2];
      q.dual = fc.sums[3];
      q.approx = fc.sums[4];
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
  const detail::PolicyKernels& k = kernels();
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
      const int64_t t0 = it * kPolicyChunk;
      const bool k3like = est == KlEstimator::K3 || est == KlEstimator::K3Plus;
      float kbuf[kPolicyChunk];
      if (k3like) k.exp_diff(ref_logprobs + t0, logprobs + t0, t1 - t0, -20.0f, 20.0f, kbuf);
      for (int64_t i = t0; i < t1; ++i) {
        const double m = mask_value(mask, mask_kind, i);
        if (!(m > 0)) {
          if (kl_out) kl_out[i] = 0.0f;
          if (grad_out) grad_out[i] = 0.0f;
          continue;
        }
        double v, g;
        kl_eval(est, static_cast<double>(logprobs[i]) - ref_logprobs[i], k3like ? kbuf[i - t0] : 0.0, &v, &g);
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
