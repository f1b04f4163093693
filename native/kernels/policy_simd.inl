// The hot loop of policy.cc that vectorises, compiled once per ISA (see simd.h). Included by
// policy_avx512.cc, policy_avx2.cc and policy_scalar.cc.
#include "policy.h"
#include "simd.h"

namespace rk {
namespace RK_ISA_NS {
namespace {

// out[i] = exp(clamp(a[i] - b[i], lo, hi)) in f32 (~2e-7 relative); a NaN difference stays NaN.
void exp_diff(const float* a, const float* b, int64_t n, float lo, float hi, float* out) {
  const VF vlo = set1(lo), vhi = set1(hi), l2e = set1(kLog2e);
  int64_t i = 0;
  for (; i + kW <= n; i += kW) {
    VF d = load(a + i) - load(b + i);
    d = vmax(vlo, vmin(vhi, d));  // operand order keeps a NaN d
    store(out + i, exp2v(d * l2e));
  }
  if (i < n) {
    VF d = load_tail_dt<kF32>(a, i, n - i, 0.0f) - load_tail_dt<kF32>(b, i, n - i, 0.0f);
    d = vmax(vlo, vmin(vhi, d));
    store_tail(out + i, n - i, exp2v(d * l2e));
  }
}

// out[i] = exp(clamp(x[i], lo, hi)) in f32.
void exp_clamped(const float* x, int64_t n, float lo, float hi, float* out) {
  const VF vlo = set1(lo), vhi = set1(hi), l2e = set1(kLog2e);
  int64_t i = 0;
  for (; i + kW <= n; i += kW) store(out + i, exp2v(vmax(vlo, vmin(vhi, load(x + i))) * l2e));
  if (i < n) {
    VF v = load_tail_dt<kF32>(x, i, n - i, 0.0f);
    store_tail(out + i, n - i, exp2v(vmax(vlo, vmin(vhi, v)) * l2e));
  }
}

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
#else
using VM = bool;
inline VM cmp_lt(VF a, VF b) { return a.v < b.v; }
inline VM cmp_le(VF a, VF b) { return a.v <= b.v; }
inline VM cmp_gt(VF a, VF b) { return a.v > b.v; }
inline VM cmp_ge(VF a, VF b) { return a.v >= b.v; }
inline VM m_and(VM a, VM b) { return a && b; }
inline VM m_andnot(VM a, VM b) { return !a && b; }
inline VF sel(VM m, VF a, VF b) { return m ? a : b; }
inline VF load_u8(const uint8_t* p) { return {*p != 0 ? 1.0f : 0.0f}; }
struct VD {
  double a;
};
inline VD vd_zero() { return {0.0}; }
inline void vd_add(VD& acc, VF x) { acc.a += static_cast<double>(x.v); }
inline double vd_sum(const VD& acc) { return acc.a; }
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

template <int VAR, bool DUAL>
void fast_chunk_t(detail::FastChunk* c) {
  constexpr int kPpo = 0, kGspo = 1, kCispo = 2;
  const int64_t n = c->n;
  const VF zero = set1(0.0f), one = set1(1.0f), half = set1(0.5f);
  const VF lo = set1(c->lo), hi = set1(c->hi), eps_hi = set1(c->eps_hi), delta = set1(c->delta),
           dual_c = set1(c->dual_clip), wf = set1(c->weight), l2e = set1(kLog2e),
           dmin = set1(-20.0f), dmax = set1(20.0f), adv_row = set1(c->adv_row),
           gr = set1(c->gspo_ratio), gdr = set1(c->gspo_dratio);
  VD s_ml = vd_zero(), s_low = vd_zero(), s_high = vd_zero(), s_dual = vd_zero(), s_apx = vd_zero();
  for (int64_t i = 0; i < n; i += kW) {
    const int64_t nv = n - i;
    const VF m = load_mask(c->mask, c->mask_kind, i, nv);
    const VM valid = cmp_gt(m, zero);
    const VF l = load_or_tail(c->logprobs, i, nv);
    const VF d = l - load_or_tail(c->old_logprobs, i, nv);
    const VF A = c->advantages ? load_or_tail(c->advantages, i, nv) : adv_row;
    const VF negA = zero - A;
    const VM aneg = cmp_lt(A, zero), apos = cmp_gt(A, zero);
    VF L, g;
    if constexpr (VAR == kPpo || VAR == kGspo) {
      VF r, dr;
      if constexpr (VAR == kGspo) {
        r = gr;
        dr = gdr;
      } else {
        r = exp2v(vmax(dmin, vmin(dmax, d)) * l2e);  // operand order keeps NaN
        dr = sel(m_and(cmp_ge(d, dmin), cmp_le(d, dmax)), r, zero);
      }
      const VF rc = vmin(hi, vmax(lo, r));
      const VM capped = cmp_gt(r, delta);
      const VF L1 = negA * vmin(delta, r), L2 = negA * rc;
      const VM unclipped = cmp_ge(L1, L2);
      L = vmax(L2, L1);  // a NaN L1 stays
      g = sel(m_andnot(capped, unclipped), negA * dr, zero);
      if constexpr (DUAL) {
        const VF L3 = negA * dual_c;
        const VM dc = m_and(aneg, cmp_gt(L, L3));
        L = sel(dc, L3, L);
        g = sel(dc, zero, g);
        vd_add(s_dual, sel(m_and(dc, valid), m, zero));
      }
      vd_add(s_low, sel(m_and(m_and(cmp_lt(r, lo), aneg), valid), m, zero));
      vd_add(s_high, sel(m_and(m_and(cmp_gt(r, hi), apos), valid), m, zero));
    } else if constexpr (VAR == kCispo) {
      const VF r = exp2v(vmax(dmin, vmin(dmax, d)) * l2e);
      const VF w = sel(cmp_lt(r, eps_hi), r, eps_hi);
      g = zero - w * A;
      L = g * l;
      vd_add(s_high, sel(m_and(m_and(cmp_gt(r, eps_hi), apos), valid), m, zero));
    } else {  // gpg
      g = negA;
      L = negA * l;
    }
    vd_add(s_ml, sel(valid, m * L, zero));
    vd_add(s_apx, sel(valid, m * half * d * d, zero));
    const VF out = sel(valid, (m * wf) * g, zero);
    if (nv >= kW) store(c->grad + i, out);
    else store_tail(c->grad + i, nv, out);
  }
  (void)one;
  c->sums[0] = vd_sum(s_ml);
  c->sums[1] = vd_sum(s_low);
  c->sums[2] = vd_sum(s_high);
  c->sums[3] = vd_sum(s_dual);
  c->sums[4] = vd_sum(s_apx);
}

void fast_chunk(detail::FastChunk* c) {
  const bool dual = c->dual_clip > 0;
  switch (c->variant) {
    case 1: return dual ? fast_chunk_t<1, true>(c) : fast_chunk_t<1, false>(c);
    case 2: return fast_chunk_t<2, false>(c);
    case 4: return fast_chunk_t<4, false>(c);
    default: return dual ? fast_chunk_t<0, true>(c) : fast_chunk_t<0, false>(c);
  }
}

}  // namespace
}  // namespace RK_ISA_NS

namespace detail {
#define RK_CAT2(a, b) a##b
#define RK_CAT(a, b) RK_CAT2(a, b)
const PolicyKernels& RK_CAT(policy_kernels_, RK_ISA_NS)() {
  static const PolicyKernels k{&RK_ISA_NS::exp_diff, &RK_ISA_NS::exp_clamped, &RK_ISA_NS::fast_chunk};
  return k;
}
#undef RK_CAT
#undef RK_CAT2
}  // namespace detail
}  // namespace rk
