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
// tokens: (1) mask sums (and GSPO's sum m d) per chunk in double, merged per row in order; (2) the
// per-token loss and gradient in f32 SIMD lanes (policy_simd.inl), with per-chunk partial sums in
// double lanes, merged in chunk, then row, order.
#include "policy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu.h"
#include "threadpool.h"

namespace rk {
namespace {

using detail::kPolicyChunk;

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

// The first negative or non-finite weight of an f32 mask of n elements, or -1.
int64_t first_bad_weight(const float* w, int64_t n) {
  const int64_t items = (n + kPolicyChunk - 1) / kPolicyChunk;
  std::vector<int64_t> bad(items, -1);
  parallel_for(items, 1, [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) {
      const int64_t t1 = std::min(n, (it + 1) * kPolicyChunk);
      for (int64_t i = it * kPolicyChunk; i < t1; ++i) {
        if (!(w[i] >= 0.0f) || !std::isfinite(w[i])) {
          bad[it] = i;
          break;
        }
      }
    }
  });
  for (int64_t it = 0; it < items; ++it)
    if (bad[it] >= 0) return bad[it];
  return -1;
}

// The fast-chunk arguments of tokens [t0, t0 + n) of row r, but for the log-probs, the entropy and
// the gradients: the whole-batch pass points those into the batch, policyLossFromLogits' single
// token at its own values.
detail::FastChunk fast_chunk_of(const PolicyLossInputs& in, const PolicyLossParams& p, const core::PolicyTokenParams& P,
                                const detail::PolicyRows& rows, int64_t r, int64_t t0, int64_t n) {
  detail::FastChunk fc;
  fc.old_logprobs = in.old_logprobs + t0;
  fc.advantages = in.advantages_per_token ? in.advantages + t0 : nullptr;
  fc.adv_row = in.advantages_per_token ? 0.0f : in.advantages[r];
  fc.mask = in.mask_kind == MaskKind::None ? nullptr
            : in.mask_kind == MaskKind::U8
                ? static_cast<const void*>(static_cast<const uint8_t*>(in.mask) + t0)
                : static_cast<const void*>(static_cast<const float*>(in.mask) + t0);
  fc.mask_kind = static_cast<int>(in.mask_kind);
  fc.n = n;
  fc.variant = static_cast<int>(p.variant);
  fc.lo = P.lo;
  fc.hi = P.hi;
  fc.eps_hi = P.eps_hi;
  fc.delta = P.delta;
  fc.dual_clip = P.dual_c;
  core::gspo_row_ratio(rows.log_s[r], &fc.gspo_ratio, &fc.gspo_dratio);
  fc.tau_pos = P.tau_pos;
  fc.tau_neg = P.tau_neg;
  fc.ref_logprobs = in.ref_logprobs ? in.ref_logprobs + t0 : nullptr;
  fc.kl_estimator = static_cast<int>(p.kl);
  fc.beta = P.beta;
  fc.entropy_coef = P.ecoef;
  fc.token_weights = in.token_weights ? in.token_weights + t0 : nullptr;
  fc.weight = static_cast<float>(rows.f[r]);
  return fc;
}

}  // namespace

namespace detail {

Status policy_rows(const PolicyLossInputs& in, const PolicyLossParams& p, PolicyRows& rows) {
  const int64_t B = in.batch, T = in.seq_len;
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
  rows.m.assign(B, 0.0);
  rows.log_s.assign(B, 0.0);
  rows.f.assign(B, 0.0);
  rows.total_m = 0;
  for (int64_t r = 0; r < B; ++r) {
    double m = 0, md = 0;
    for (int64_t c = 0; c < nck; ++c) {
      m += parts[r * nck + c].m;
      md += parts[r * nck + c].md;
    }
    rows.m[r] = m;
    rows.log_s[r] = m > 0 ? md / m : 0.0;
    rows.total_m += m;
  }
  // Row factors f_i: w_t = m_t f_i.
  for (int64_t r = 0; r < B; ++r)
    rows.f[r] = core::policy_row_factor(p.aggregation, p.normalizer, rows.m[r], rows.total_m, B, T);
  return Status{};
}

void policy_token_gradient(const PolicyLossInputs& in, const PolicyLossParams& p, const PolicyRows& rows,
                           int64_t t, float logprob, float entropy, float* grad, float* grad_entropy) {
  const int64_t T = in.seq_len, r = t / T;
  detail::FastChunk fc = fast_chunk_of(in, p, core::policy_token_params(p), rows, r, t, 1);
  fc.logprobs = &logprob;
  fc.entropy = in.entropy ? &entropy : nullptr;
  float ge = 0.0f;
  fc.grad = grad;
  fc.grad_entropy = in.entropy ? &ge : nullptr;
  policy_kernels_active().fast_chunk(&fc);
  *grad_entropy = ge;
}

const PolicyKernels& policy_kernels_active() { return kernels(); }

}  // namespace detail

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
  detail::PolicyRows rows;
  Status st = detail::policy_rows(in, p, rows);
  if (!st.ok()) return st;
  const std::vector<double>& row_m = rows.m;
  const std::vector<double>& row_f = rows.f;
  const double total_m = rows.total_m;
  std::vector<Part> parts(items);

  // Pass 2: per-token loss and gradient.
  const detail::PolicyKernels& k = kernels();
  const core::PolicyTokenParams P = core::policy_token_params(p);
  parallel_for(items, grain, [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) {
      const int64_t r = it / nck, c = it % nck;
      const int64_t t0 = r * T + c * kPolicyChunk;
      const int64_t t1 = r * T + std::min(T, (c + 1) * kPolicyChunk);
      detail::FastChunk fc = fast_chunk_of(in, p, P, rows, r, t0, t1 - t0);
      fc.logprobs = in.logprobs + t0;
      fc.entropy = in.entropy ? in.entropy + t0 : nullptr;
      fc.grad = grad_logprobs + t0;
      fc.grad_entropy = grad_entropy ? grad_entropy + t0 : nullptr;
      k.fast_chunk(&fc);
      Part& q = parts[it];
      q.mL = fc.sums[0];
      q.low = fc.sums[1];
      q.high = fc.sums[2];
      q.dual = fc.sums[3];
      q.approx = fc.sums[4];
      q.kl = fc.sums[5];
      q.ent = fc.sums[6];
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
  // Validate the weights before writing anything.
  if (mask_kind == MaskKind::F32) {
    const int64_t bad = first_bad_weight(static_cast<const float*>(mask), n);
    if (bad >= 0) return Status{Status::BadIndex, bad, 0};
  }
  const int64_t items = (n + kPolicyChunk - 1) / kPolicyChunk;
  std::vector<Part> parts(items);
  const detail::PolicyKernels& k = kernels();
  parallel_for(items, 1, [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) {
      const int64_t t0 = it * kPolicyChunk, len = std::min(n, t0 + kPolicyChunk) - t0;
      const void* mk = mask_kind == MaskKind::U8
                           ? static_cast<const void*>(static_cast<const uint8_t*>(mask) + t0)
                       : mask_kind == MaskKind::F32
                           ? static_cast<const void*>(static_cast<const float*>(mask) + t0)
                           : nullptr;
      double sums[2];
      k.kl_chunk(logprobs + t0, ref_logprobs + t0, mk, static_cast<int>(mask_kind), len,
                 static_cast<int>(est), kl_out ? kl_out + t0 : nullptr,
                 grad_out ? grad_out + t0 : nullptr, sums);
      parts[it].m = sums[0];
      parts[it].kl = sums[1];
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
