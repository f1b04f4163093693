// The hot loops of policy.cc (per-chunk loss, gradient and partial sums; elementwise KL), compiled
// once per ISA (see simd.h). Included by policy_avx512.cc, policy_avx2.cc and policy_scalar.cc.
#include "policy.h"
#include "simd.h"

namespace rk {
namespace RK_ISA_NS {
namespace {

#if defined(RK_ISA_AVX512) || defined(RK_ISA_AVX2)
// The hand-vectorised lanes: the operation sequence of rk::core::policy_token / kl_estimate
// (native/core/policy.h) in kW f32 lanes; rk_driver check holds them against those functions.

// ---- compare / select / widen helpers (not in simd.h) ----
#if defined(RK_ISA_AVX512)
using VM = __mmask16;
inline VM cmp_lt(VF a, VF b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ); }
inline VM cmp_le(VF a, VF b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_LE_OQ); }
inline VM cmp_gt(VF a, VF b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ); }
inline VM cmp_ge(VF a, VF b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ); }
inline VM m_and(VM a, VM b) { return static_cast<VM>(a & b); }
inline VM m_andnot(VM a, VM b) { return static_cast<VM>(~a & b); }  // !a & b
inline VF sel(VM m, VF a, VF b) { return {_mm512_mask_blend_ps(m, b.v, a.v)}; }  // m ? a : b
inline VF vdiv(VF a, VF b) { return {_mm512_div_ps(a.v, b.v)}; }
inline VF load_u8(const uint8_t* p) {
  __m512 x = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  return {_mm512_min_ps(x, _mm512_set1_ps(1.0f))};
}
struct VD {
  __m512d a, b;
};
inline VD vd_zero() { return {_mm512_setzero_pd(), _mm512_setzero_pd()}; }
inline void vd_add(VD& acc, VF x) {
  acc.a = _mm512_add_pd(acc.a, _mm512_cvtps_pd(_mm512_castps512_ps256(x.v)));
  acc.b = _mm512_add_pd(acc.b, _mm512_cvtps_pd(_mm512_extractf32x8_ps(x.v, 1)));
}
inline double vd_sum(const VD& acc) {
  alignas(64) double t[16];
  _mm512_store_pd(t, acc.a);
  _mm512_store_pd(t + 8, acc.b);
  double s = 0;
  for (int k = 0; k < 16; ++k) s += t[k];
  return s;
}
#elif defined(RK_ISA_AVX2)
struct VM {
  __m256 v;
};
inline VM cmp_lt(VF a, VF b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)}; }
inline VM cmp_le(VF a, VF b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LE_OQ)}; }
inline VM cmp_gt(VF a, VF b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ)}; }
inline VM cmp_ge(VF a, VF b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ)}; }
inline VM m_and(VM a, VM b) { return {_mm256_and_ps(a.v, b.v)}; }
inline VM m_andnot(VM a, VM b) { return {_mm256_andnot_ps(a.v, b.v)}; }
inline VF sel(VM m, VF a, VF b) { return {_mm256_blendv_ps(b.v, a.v, m.v)}; }
inline VF vdiv(VF a, VF b) { return {_mm256_div_ps(a.v, b.v)}; }
inline VF load_u8(const uint8_t* p) {
  __m256 x = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  return {_mm256_min_ps(x, _mm256_set1_ps(1.0f))};
}
struct VD {
  __m256d a, b;
};
inline VD vd_zero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }
inline void vd_add(VD& acc, VF x) {
  acc.a = _mm256_add_pd(acc.a, _mm256_cvtps_pd(_mm256_castps256_ps128(x.v)));
  acc.b = _mm256_add_pd(acc.b, _mm256_cvtps_pd(_mm256_extractf128_ps(x.v, 1)));
}
inline double vd_sum(const VD& acc) {
  alignas(32) double t[8];
  _mm256_store_pd(t, acc.a);
  _mm256_store_pd(t + 4, acc.b);
  double s = 0;
  for (int k = 0; k < 8; ++k) s += t[k];
  return s;
}
#endif

// The mask of kW tokens from element i (n_valid < kW for a tail: the rest read as 0).
inline VF load_mask(const void* mask, int kind, int64_t i, int64_t n_valid) {
  if (kind == 1) {  // U8
    const uint8_t* u = static_cast<const uint8_t*>(mask) + i;
    if (n_valid >= kW) return load_u8(u);
    uint8_t buf[kW < 16 ? 16 : kW] = {};
    for (int64_t k = 0; k < n_valid; ++k) buf[k] = u[k];
    return load_u8(buf);
  }
  if (kind == 2) {  // F32
    if (n_valid >= kW) return load(static_cast<const float*>(mask) + i);
    return load_tail_dt<kF32>(mask, i, n_valid, 0.0f);
  }
  if (n_valid >= kW) return set1(1.0f);
  float buf[kW];
  for (int k = 0; k < kW; ++k) buf[k] = k < n_valid ? 1.0f : 0.0f;
  return load(buf);
}

inline VF load_or_tail(const float* p, int64_t i, int64_t n_valid) {
  return n_valid >= kW ? load(p + i) : load_tail_dt<kF32>(p, i, n_valid, 0.0f);
}

// KL estimate and its gradient w.r.t. logprobs for d = logprobs - ref (KlEstimator codes).
// k3: x = clamp(-d, -20, 20), k3 = clamp(e^x - x - 1, -10, 10), gradient 1 - e^x (0 where a clamp
// is active); for |x| < 0.5 e^x - x - 1 comes from its series (to x^9), so the f32 e^x never meets
// the cancellation; elsewhere k3 >= 0.106 and stays within 3e-6 relative. k3+: k2's gradient d.
inline void kl_lanes(int est, VF d, VF* value, VF* grad) {
  const VF zero = set1(0.0f), one = set1(1.0f);
  switch (est) {
    case 0:  // k1
      *value = d;
      *grad = one;
      return;
    case 1:  // k2
      *value = set1(0.5f) * d * d;
      *grad = d;
      return;
    case 3:  // abs
      *value = vmax(zero - d, d);  // keeps NaN
      *grad = sel(cmp_gt(d, zero), one, sel(cmp_lt(d, zero), set1(-1.0f), zero));
      return;
    default: {  // 2: k3, 4: k3+
      const VF x0 = zero - d;
      const VF lo = set1(-20.0f), hi = set1(20.0f);
      const VM xin = m_and(cmp_ge(x0, lo), cmp_le(x0, hi));
      const VF x = vmax(lo, vmin(hi, x0));
      const VF ex = exp2v(x * set1(kLog2e));
      VF p = set1(1.0f / 362880.0f);
      p = fma(p, x, set1(1.0f / 40320.0f));
      p = fma(p, x, set1(1.0f / 5040.0f));
      p = fma(p, x, set1(1.0f / 720.0f));
      p = fma(p, x, set1(1.0f / 120.0f));
      p = fma(p, x, set1(1.0f / 24.0f));
      p = fma(p, x, set1(1.0f / 6.0f));
      p = fma(p, x, set1(0.5f));
      const VF ks = p * x * x;
      const VM small = cmp_lt(vmax(zero - x, x), set1(0.5f));
      const VF k = sel(small, ks, ex - x - one);
      const VF em1 = sel(small, ks + x, ex - one);
      const VM kin = m_and(cmp_ge(k, set1(-10.0f)), cmp_le(k, set1(10.0f)));
      *value = vmax(set1(-10.0f), vmin(set1(10.0f), k));
      *grad = est == 4 ? d : sel(m_and(xin, kin), zero - em1, zero);
      return;
    }
  }
}

// The loss of one chunk (see policy.h for the formulas).
template <int VAR>
void fast_chunk_t(detail::FastChunk* c) {
  constexpr int kPpo = 0, kGspo = 1, kCispo = 2, kSapo = 3;
  const int64_t n = c->n;
  const VF zero = set1(0.0f), one = set1(1.0f), half = set1(0.5f);
  const VF lo = set1(c->lo), hi = set1(c->hi), eps_hi = set1(c->eps_hi), delta = set1(c->delta),
           dual_c = set1(c->dual_clip), wf = set1(c->weight), l2e = set1(kLog2e),
           dmin = set1(-20.0f), dmax = set1(20.0f), adv_row = set1(c->adv_row),
           gr = set1(c->gspo_ratio), gdr = set1(c->gspo_dratio), beta = set1(c->beta),
           ecoef = set1(c->entropy_coef), tau_pos = set1(c->tau_pos), tau_neg = set1(c->tau_neg),
           four_pos = set1(4.0f / c->tau_pos), four_neg = set1(4.0f / c->tau_neg);
  const bool dual_on = c->dual_clip > 0;
  const float* ref = c->ref_logprobs;
  const float* hent = c->entropy;
  VD s_ml = vd_zero(), s_low = vd_zero(), s_high = vd_zero(), s_dual = vd_zero(),
     s_apx = vd_zero(), s_kl = vd_zero(), s_ent = vd_zero();
  for (int64_t i = 0; i < n; i += kW) {
    const int64_t nv = n - i;
    const VF m = load_mask(c->mask, c->mask_kind, i, nv);
    const VM valid = cmp_gt(m, zero);
    const VF l = load_or_tail(c->logprobs, i, nv);
    const VF d = l - load_or_tail(c->old_logprobs, i, nv);
    const VF A = c->advantages ? load_or_tail(c->advantages, i, nv) : adv_row;
    const VF negA = zero - A;
    const VM aneg = cmp_lt(A, zero), apos = cmp_gt(A, zero);
    // the ratio and its derivative w.r.t. l (0 where the [-20, 20] clamp is active)
    VF r = zero, dr = zero;
    if constexpr (VAR == kGspo) {
      r = gr;
      dr = gdr;
    } else if constexpr (VAR == kPpo || VAR == kCispo || VAR == kSapo) {
      r = exp2v(vmax(dmin, vmin(dmax, d)) * l2e);  // operand order keeps NaN
      dr = sel(m_and(cmp_ge(d, dmin), cmp_le(d, dmax)), r, zero);
    }
    VF L, g;
    if constexpr (VAR == kPpo || VAR == kGspo) {
      const VF rc = vmin(hi, vmax(lo, r));
      const VM capped = cmp_gt(r, delta);
      const VF L1 = negA * vmin(delta, r), L2 = negA * rc;
      const VM unclipped = cmp_ge(L1, L2);
      L = vmax(L2, L1);  // a NaN L1 stays
      g = sel(m_andnot(capped, unclipped), negA * dr, zero);
      if (dual_on) {
        const VF L3 = negA * dual_c;
        const VM dc = m_and(aneg, cmp_gt(L, L3));
        L = sel(dc, L3, L);
        g = sel(dc, zero, g);
        vd_add(s_dual, sel(m_and(dc, valid), m, zero));
      }
      vd_add(s_low, sel(m_and(m_and(cmp_lt(r, lo), aneg), valid), m, zero));
      vd_add(s_high, sel(m_and(m_and(cmp_gt(r, hi), apos), valid), m, zero));
    } else if constexpr (VAR == kCispo) {
      const VF w = sel(cmp_lt(r, eps_hi), r, eps_hi);
      g = zero - w * A;
      L = g * l;
      vd_add(s_high, sel(m_and(m_and(cmp_gt(r, eps_hi), apos), valid), m, zero));
    } else if constexpr (VAR == kSapo) {
      // L = -(4/tau) sigmoid(x) A, x = tau (r - 1); dL/dl = -4 sigmoid(x) (1 - sigmoid(x)) r A
      const VF tau = sel(apos, tau_pos, tau_neg);
      const VF x = tau * (r - one);
      const VF e = exp2v(vmax(set1(-150.0f), (zero - vmax(zero - x, x)) * l2e));  // e^-|x|
      const VF inv = vdiv(one, one + e);
      const VM xpos = cmp_ge(x, zero);
      const VF sg = sel(xpos, inv, e * inv), oms = sel(xpos, e * inv, inv);
      L = negA * sel(apos, four_pos, four_neg) * sg;
      g = set1(-4.0f) * sg * oms * dr * A;
    } else {  // gpg
      g = negA;
      L = negA * l;
    }
    if (c->token_weights) {  // the policy term only
      const VF u = load_or_tail(c->token_weights, i, nv);
      L = L * u;
      g = g * u;
    }
    if (ref) {
      VF kv, kg;
      kl_lanes(c->kl_estimator, l - load_or_tail(ref, i, nv), &kv, &kg);
      L = fma(beta, kv, L);
      g = fma(beta, kg, g);
      vd_add(s_kl, sel(valid, m * kv, zero));
    }
    const VF w = m * wf;
    if (hent) {
      const VF h = load_or_tail(hent, i, nv);
      L = L - ecoef * h;
      vd_add(s_ent, sel(valid, m * h, zero));
      if (c->grad_entropy) {
        const VF ge = sel(valid, zero - ecoef * w, zero);
        if (nv >= kW) store(c->grad_entropy + i, ge);
        else store_tail(c->grad_entropy + i, nv, ge);
      }
    }
    vd_add(s_ml, sel(valid, m * L, zero));
    vd_add(s_apx, sel(valid, m * half * d * d, zero));
    const VF out = sel(valid, w * g, zero);
    if (nv >= kW) store(c->grad + i, out);
    else store_tail(c->grad + i, nv, out);
  }
  c->sums[0] = vd_sum(s_ml);
  c->sums[1] = vd_sum(s_low);
  c->sums[2] = vd_sum(s_high);
  c->sums[3] = vd_sum(s_dual);
  c->sums[4] = vd_sum(s_apx);
  c->sums[5] = vd_sum(s_kl);
  c->sums[6] = vd_sum(s_ent);
}

void fast_chunk(detail::FastChunk* c) {
  switch (c->variant) {
    case 1: return fast_chunk_t<1>(c);
    case 2: return fast_chunk_t<2>(c);
    case 3: return fast_chunk_t<3>(c);
    case 4: return fast_chunk_t<4>(c);
    default: return fast_chunk_t<0>(c);
  }
}

void kl_chunk(const float* lp, const float* ref, const void* mask, int mask_kind, int64_t n, int est,
              float* kl_out, float* grad_out, double* sums) {
  const VF zero = set1(0.0f);
  VD s_m = vd_zero(), s_kl = vd_zero();
  for (int64_t i = 0; i < n; i += kW) {
    const int64_t nv = n - i;
    const VF m = load_mask(mask, mask_kind, i, nv);
    const VM valid = cmp_gt(m, zero);
    VF kv, kg;
    kl_lanes(est, load_or_tail(lp, i, nv) - load_or_tail(ref, i, nv), &kv, &kg);
    kv = sel(valid, kv, zero);
    kg = sel(valid, kg, zero);
    if (nv >= kW) {
      if (kl_out) store(kl_out + i, kv);
      if (grad_out) store(grad_out + i, kg);
    } else {
      if (kl_out) store_tail(kl_out + i, nv, kv);
      if (grad_out) store_tail(grad_out + i, nv, kg);
    }
    vd_add(s_m, m);
    vd_add(s_kl, sel(valid, m * kv, zero));
  }
  sums[0] = vd_sum(s_m);
  sums[1] = vd_sum(s_kl);
}


#else  // scalar baseline: one token at a time through the shared core functions

struct Exp2Scalar {
  float operator()(float t) const { return exp2v(VF{t}).v; }
};

inline float mask_at(const void* mask, int kind, int64_t i) {
  if (kind == 1) return static_cast<const uint8_t*>(mask)[i] != 0 ? 1.0f : 0.0f;
  if (kind == 2) return static_cast<const float*>(mask)[i];
  return 1.0f;
}

void fast_chunk(detail::FastChunk* c) {
  const PolicyVariant var = static_cast<PolicyVariant>(c->variant);
  core::PolicyTokenParams P;
  P.lo = c->lo;
  P.hi = c->hi;
  P.eps_hi = c->eps_hi;
  P.delta = c->delta;
  P.dual_c = c->dual_clip;
  P.dual_on = c->dual_clip > 0;
  P.tau_pos = c->tau_pos;
  P.tau_neg = c->tau_neg;
  P.four_pos = 4.0f / c->tau_pos;
  P.four_neg = 4.0f / c->tau_neg;
  P.beta = c->beta;
  P.ecoef = c->entropy_coef;
  const bool clips = var == PolicyVariant::Ppo || var == PolicyVariant::Gspo;
  const bool has_ref = c->ref_logprobs != nullptr, has_ent = c->entropy != nullptr;
  const KlEstimator kl = static_cast<KlEstimator>(c->kl_estimator);
  const Exp2Scalar ex2;
  double s_ml = 0, s_low = 0, s_high = 0, s_dual = 0, s_apx = 0, s_kl = 0, s_ent = 0;
  for (int64_t i = 0; i < c->n; ++i) {
    const float m = mask_at(c->mask, c->mask_kind, i);
    const bool valid = m > 0.0f;
    const float l = c->logprobs[i];
    const float d = l - c->old_logprobs[i];
    const float A = c->advantages ? c->advantages[i] : c->adv_row;
    const core::PolicyToken t =
        core::policy_token(var, P, l, d, A, c->gspo_ratio, c->gspo_dratio, has_ref,
                           has_ref ? c->ref_logprobs[i] : 0.0f, kl, has_ent, has_ent ? c->entropy[i] : 0.0f, ex2,
                           c->token_weights != nullptr, c->token_weights ? c->token_weights[i] : 1.0f);
    if (clips) {
      if (P.dual_on) s_dual += (t.dual && valid) ? static_cast<double>(m) : 0.0;
      s_low += (t.clip_low && valid) ? static_cast<double>(m) : 0.0;
    }
    if (clips || var == PolicyVariant::Cispo) s_high += (t.clip_high && valid) ? static_cast<double>(m) : 0.0;
    if (has_ref) s_kl += valid ? static_cast<double>(m * t.kl) : 0.0;
    const float w = m * c->weight;
    if (has_ent) {
      const float h = c->entropy[i];
      s_ent += valid ? static_cast<double>(m * h) : 0.0;
      if (c->grad_entropy) c->grad_entropy[i] = valid ? 0.0f - c->entropy_coef * w : 0.0f;
    }
    s_ml += valid ? static_cast<double>(m * t.loss) : 0.0;
    s_apx += valid ? static_cast<double>(m * 0.5f * d * d) : 0.0;
    c->grad[i] = valid ? w * t.grad : 0.0f;
  }
  c->sums[0] = s_ml;
  c->sums[1] = s_low;
  c->sums[2] = s_high;
  c->sums[3] = s_dual;
  c->sums[4] = s_apx;
  c->sums[5] = s_kl;
  c->sums[6] = s_ent;
}

void kl_chunk(const float* lp, const float* ref, const void* mask, int mask_kind, int64_t n, int est,
              float* kl_out, float* grad_out, double* sums) {
  const Exp2Scalar ex2;
  double s_m = 0, s_kl = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float m = mask_at(mask, mask_kind, i);
    const bool valid = m > 0.0f;
    float kv, kg;
    core::kl_estimate(static_cast<KlEstimator>(est), lp[i] - ref[i], ex2, &kv, &kg);
    kv = valid ? kv : 0.0f;
    kg = valid ? kg : 0.0f;
    if (kl_out) kl_out[i] = kv;
    if (grad_out) grad_out[i] = kg;
    s_m += static_cast<double>(m);
    s_kl += valid ? static_cast<double>(m * kv) : 0.0;
  }
  sums[0] = s_m;
  sums[1] = s_kl;
}
#endif

}  // namespace
}  // namespace RK_ISA_NS

namespace detail {
#define RK_CAT2(a, b) a##b
#define RK_CAT(a, b) RK_CAT2(a, b)
const PolicyKernels& RK_CAT(policy_kernels_, RK_ISA_NS)() {
  static const PolicyKernels k{&RK_ISA_NS::fast_chunk, &RK_ISA_NS::kl_chunk};
  return k;
}
#undef RK_CAT
#undef RK_CAT2
}  // namespace detail
}  // namespace rk
