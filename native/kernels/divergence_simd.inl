// The hot loops of divergence.cc, compiled once per ISA (see simd.h). Included by
// divergence_avx512.cc, divergence_avx2.cc and divergence_scalar.cc.
//
// -inf logits (masked vocabulary) are legal: every product x * y where x is a probability is
// computed as keep_nonzero(x, x * y), so 0 * (+-inf) and 0 * NaN from -inf - -inf give 0, while a
// NaN probability (NaN or +inf logits) still propagates.
#include "divergence.h"
#include "simd.h"

namespace rk {
namespace RK_ISA_NS {
namespace {

// --- helpers this family needs beyond simd.h (kept local: simd.h is shared) -----------------
#if defined(RK_ISA_AVX512)
// x where e != 0 (NaN counts as nonzero), else 0
inline VF keep_nonzero(VF e, VF x) {
  return {_mm512_maskz_mov_ps(_mm512_cmp_ps_mask(e.v, _mm512_setzero_ps(), _CMP_NEQ_UQ), x.v)};
}
// a >= b ? x : y
inline VF sel_ge(VF a, VF b, VF x, VF y) {
  return {_mm512_mask_blend_ps(_mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ), y.v, x.v)};
}
// a / b via rcp14 and one Newton step (relative error ~1e-8; b here is in [1.25, 2.5])
inline VF vdiv(VF a, VF b) {
  __m512 r = _mm512_rcp14_ps(b.v);
  r = _mm512_mul_ps(r, _mm512_fnmadd_ps(b.v, r, _mm512_set1_ps(2.0f)));
  return {_mm512_mul_ps(a.v, r)};
}
// x = m 2^k with m in [0.75, 1.5) (getmant) and k = getexp(x) - getexp(m); x positive, normal
inline void frexp_red(VF x, VF* m, VF* k) {
  const __m512 mm = _mm512_getmant_ps(x.v, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_zero);
  *m = {mm};
  *k = {_mm512_sub_ps(_mm512_getexp_ps(x.v), _mm512_getexp_ps(mm))};
}
#elif defined(RK_ISA_AVX2)
inline VF keep_nonzero(VF e, VF x) {
  return {_mm256_and_ps(x.v, _mm256_cmp_ps(e.v, _mm256_setzero_ps(), _CMP_NEQ_UQ))};
}
inline VF sel_ge(VF a, VF b, VF x, VF y) {
  return {_mm256_blendv_ps(y.v, x.v, _mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ))};
}
inline VF vdiv(VF a, VF b) { return {_mm256_div_ps(a.v, b.v)}; }
inline void frexp12(VF x, VF* m, VF* k) {
  __m256i bits = _mm256_castps_si256(x.v);
  __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
  *k = {_mm256_cvtepi32_ps(e)};
  *m = {_mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x7fffff)),
                                            _mm256_set1_epi32(0x3f800000)))};
}
#else
inline VF keep_nonzero(VF e, VF x) { return {(e.v != 0.0f) ? x.v : 0.0f}; }
inline VF sel_ge(VF a, VF b, VF x, VF y) { return {(a.v >= b.v) ? x.v : y.v}; }
inline VF vdiv(VF a, VF b) { return {a.v / b.v}; }
inline void frexp12(VF x, VF* m, VF* k) {
  uint32_t bits;
  std::memcpy(&bits, &x.v, 4);
  k->v = static_cast<float>(static_cast<int32_t>(bits >> 23) - 127);
  bits = (bits & 0x7fffffu) | 0x3f800000u;
  std::memcpy(&m->v, &bits, 4);
}
#endif

#if !defined(RK_ISA_AVX512)
// x = m 2^k with m in [sqrt(1/2), sqrt(2)); x positive and normal
inline void frexp_red(VF x, VF* m, VF* k) {
  frexp12(x, m, k);
  const VF sqrt2 = set1(1.41421356f);
  *k = *k + sel_ge(*m, sqrt2, set1(1.0f), set1(0.0f));
  *m = sel_ge(*m, sqrt2, *m * set1(0.5f), *m);
}
#endif

// log2(1 - t) for t in (-1, 1), accurate relative to t (a log1p): 1 - t = m 2^k, m in
// [sqrt(1/2), sqrt(2)) (AVX-512: [0.75, 1.5)), ln m = 2 atanh(s) = 2 (s + s^3/3 + ... + s^9/9),
// s = (m - 1)/(m + 1), |s| <= 0.2 (truncation error < 4e-9). Where k = 0, s = -t / (2 - t)
// straight from t, so the rounding of 1 - t never enters.
inline VF log2_1m(VF t) {
  const VF one = set1(1.0f), two = set1(2.0f), zero = set1(0.0f);
  VF m, k;
  frexp_red(one - t, &m, &k);
  // k = 0: 1 - t is m itself; take s from t, so the rounding of 1 - t never enters
  const VF far = vmax(k, zero - k);  // 0 or >= 1
  const VF half = set1(0.5f);
  const VF s = vdiv(sel_ge(far, half, m - one, zero - t), sel_ge(far, half, m + one, two - t));
  const VF s2 = s * s;
  VF poly = fma(s2, set1(1.0f / 9.0f), set1(1.0f / 7.0f));
  poly = fma(poly, s2, set1(1.0f / 5.0f));
  poly = fma(poly, s2, set1(1.0f / 3.0f));
  poly = fma(poly, s2, one);
  // log2 m = (2 / ln 2) s poly
  return fma(s * poly, set1(2.0f * kLog2e), k);
}

// One element pair of the jsd terms: p, q and A = log2(p/m), B = log2(q/m), m = beta q + (1-beta) p.
// With l = log2 p - log2 q and lam = log2(beta / (1 - beta)):
//   l >= lam ((1-beta) p dominates m):  A = -log2(1 - beta (1 - 2^-l)),        B = A - l
//   l <  lam (beta q dominates m):      B = -log2(1 - (1-beta) (1 - 2^l)),     A = B + l
// The one computed directly is the one that can be near 0 (the other is then near -l), so
// neither loses precision to cancellation; 2^(-+l) <= (1-beta)/beta or beta/(1-beta) there, so
// nothing overflows. One exp2 and one log1p-style log2 per element.
// l is the difference of the two log2-probabilities, each taken relative to its row max, so
// large common offsets between the rows cost no precision.
struct JsdConsts {
  VF va, vcs, vbs, vct, vbt, vb, vb1, vlam, lo, zero, one;
  explicit JsdConsts(const detail::DivRow& r)
      : va(set1(r.a)), vcs(set1(r.cs)), vbs(set1(r.bs)), vct(set1(r.ct)), vbt(set1(r.bt)),
        vb(set1(r.beta)), vb1(set1(1.0f - r.beta)), vlam(set1(r.lam)), lo(set1(-150.0f)),
        zero(set1(0.0f)), one(set1(1.0f)) {}
};

// A and B of the comment above, and e = 2^-l (l >= lam) or 2^l (l < lam).
inline void jsd_AB(const JsdConsts& k, VF l, VF* A, VF* B, VF* e_out = nullptr) {
  const VF x = sel_ge(l, k.vlam, k.zero - l, l);
  const VF e = exp2v(vmax(k.lo, x));
  const VF c = sel_ge(l, k.vlam, k.vb, k.vb1);
  const VF L = k.zero - log2_1m(c * (k.one - e));
  *A = sel_ge(l, k.vlam, L, L + l);
  *B = sel_ge(l, k.vlam, L - l, L);
  if (e_out) *e_out = e;
}

constexpr int kU = 4;  // accumulators per sum

// --- chunk statistics (one read of both rows; the exp pass reruns over the chunk in L1) ----
template <int DT, int MODE>
void stats_t(const void* zs, const void* zt, int64_t n, float a, float* out) {
  VF s0 = set1(kNegInf), s1 = s0, t0 = s0, t1 = s0;
  int64_t i = 0;
  for (; i + 2 * kW <= n; i += 2 * kW) {
    s0 = vmax(s0, load_dt<DT>(zs, i));
    s1 = vmax(s1, load_dt<DT>(zs, i + kW));
    t0 = vmax(t0, load_dt<DT>(zt, i));
    t1 = vmax(t1, load_dt<DT>(zt, i + kW));
  }
  for (; i + kW <= n; i += kW) {
    s0 = vmax(s0, load_dt<DT>(zs, i));
    t0 = vmax(t0, load_dt<DT>(zt, i));
  }
  if (i < n) {
    s1 = vmax(s1, load_tail_dt<DT>(zs, i, n - i, kNegInf));
    t1 = vmax(t1, load_tail_dt<DT>(zt, i, n - i, kNegInf));
  }
  const float ms = hmax(vmax(s0, s1)), mt = hmax(vmax(t0, t1));
  // an all -inf chunk shifts by 0 so that its exps are exactly 0 rather than NaN
  const VF vms = set1(ms > kNegInf ? ms : 0.0f), vmt = set1(mt > kNegInf ? mt : 0.0f);
  const VF va = set1(a), lo = set1(-150.0f);
  // kU independent accumulators per sum: shorter dependency chains and a blocked (more
  // accurate) f32 sum, which matters most for the one-lane scalar build.
  VF ss[kU], st[kU], cr[kU];
  for (int u = 0; u < kU; ++u) ss[u] = st[u] = cr[u] = set1(0.0f);
  auto step = [&](VF x, VF y, int u) {
    const VF es = exp2v(vmax(lo, (x - vms) * va));
    const VF et = exp2v(vmax(lo, (y - vmt) * va));
    ss[u] = ss[u] + es;
    st[u] = st[u] + et;
    if constexpr (MODE == 0) cr[u] = cr[u] + keep_nonzero(et, et * ((y - vmt) - (x - vms)));
    if constexpr (MODE == 1) cr[u] = cr[u] + keep_nonzero(es, es * ((x - vms) - (y - vmt)));
  };
  i = 0;
  // While the exp pass works from L1, fetch what comes next in both rows (the next chunk, or the
  // next row: rows are contiguous) into L2, so the next max pass does not wait on DRAM.
  constexpr int64_t kEsz = dtype_size(DT), kStep = kU * kW * kEsz;
  const char* ps = static_cast<const char*>(zs) + n * kEsz;
  const char* pt = static_cast<const char*>(zt) + n * kEsz;
  for (; i + kU * kW <= n; i += kU * kW) {
    if constexpr (kStep >= 64) {
      for (int64_t b = 0; b < kStep; b += 64) {
        __builtin_prefetch(ps + i * kEsz + b, 0, RK_PREFETCH_LOCALITY);
        __builtin_prefetch(pt + i * kEsz + b, 0, RK_PREFETCH_LOCALITY);
      }
    } else if (((i * kEsz) & 63) == 0) {
      __builtin_prefetch(ps + i * kEsz, 0, RK_PREFETCH_LOCALITY);
      __builtin_prefetch(pt + i * kEsz, 0, RK_PREFETCH_LOCALITY);
    }
#pragma GCC unroll 4
    for (int u = 0; u < kU; ++u) step(load_dt<DT>(zs, i + u * kW), load_dt<DT>(zt, i + u * kW), u);
  }
  for (; i + kW <= n; i += kW) step(load_dt<DT>(zs, i), load_dt<DT>(zt, i), 0);
  if (i < n) step(load_tail_dt<DT>(zs, i, n - i, kNegInf), load_tail_dt<DT>(zt, i, n - i, kNegInf), 1);
  out[0] = ms;
  out[1] = mt;
  out[2] = hsum((ss[0] + ss[1]) + (ss[2] + ss[3]));
  out[3] = hsum((st[0] + st[1]) + (st[2] + st[3]));
  out[4] = MODE <= 1 ? hsum((cr[0] + cr[1]) + (cr[2] + cr[3])) : 0.0f;
}

template <int DT>
void jsd_t(const void* zs, const void* zt, int64_t n, const detail::DivRow& r, float* out) {
  const JsdConsts k(r);
  VF aj[kU], ak[kU];
  for (int u = 0; u < kU; ++u) aj[u] = ak[u] = k.zero;
  auto step = [&](VF x, VF y, int u) {
    const VF lp = fms(x - k.vcs, k.va, k.vbs), lq = fms(y - k.vct, k.va, k.vbt);
    const VF l = lp - lq;
    VF A, B, e;
    jsd_AB(k, l, &A, &B, &e);
    // The dominant side of the mixture directly, the other as its multiple e (<= max(beta,
    // 1-beta)/min(beta, 1-beta)): q = p 2^-l or p = q 2^l. When the direct one underflows, the
    // other is negligible too. Saves one exp2 per element.
    const VF d = exp2v(vmax(k.lo, sel_ge(l, k.vlam, lp, lq)));
    const VF o = keep_nonzero(d, d * e);  // 0 where d is 0 (e is NaN where both logits are -inf)
    const VF p = sel_ge(l, k.vlam, d, o), q = sel_ge(l, k.vlam, o, d);
    const VF pA = keep_nonzero(p, p * A);
    const VF qB = keep_nonzero(q, q * B);
    aj[u] = fma(k.vb, qB, fma(k.vb1, pA, aj[u]));
    ak[u] = ak[u] + pA;
  };
  int64_t i = 0;
  for (; i + kU * kW <= n; i += kU * kW) {
#pragma GCC unroll 4
    for (int u = 0; u < kU; ++u) step(load_dt<DT>(zs, i + u * kW), load_dt<DT>(zt, i + u * kW), u);
  }
  for (; i + kW <= n; i += kW) step(load_dt<DT>(zs, i), load_dt<DT>(zt, i), 0);
  if (i < n) step(load_tail_dt<DT>(zs, i, n - i, kNegInf), load_tail_dt<DT>(zt, i, n - i, kNegInf), 1);
  out[0] = hsum((aj[0] + aj[1]) + (aj[2] + aj[3]));
  out[1] = hsum((ak[0] + ak[1]) + (ak[2] + ak[3]));
}

template <int DT, int MODE, bool NT>
void grad_t(const void* zs, const void* zt, int64_t n, const detail::DivRow& r, float* out) {
  const JsdConsts k(r);
  const VF k0 = set1(r.k0), k1 = set1(r.k1);
  auto grad = [&](VF x, VF y) {
    const VF lp = fms(x - k.vcs, k.va, k.vbs), lq = fms(y - k.vct, k.va, k.vbt);
    const VF p = exp2v(vmax(k.lo, lp));
    if constexpr (MODE == 0) {
      return k0 * (p - exp2v(vmax(k.lo, lq)));
    } else if constexpr (MODE == 1) {
      return keep_nonzero(p, p * fma(k1, lp - lq, k0));
    } else {
      VF A, B;
      jsd_AB(k, lp - lq, &A, &B);
      return keep_nonzero(p, p * fma(k1, A, k0));
    }
  };
  // Head up to the first vector-aligned output element, then non-temporal stores (NT): the gradient
  // is written once and not read back here, so skipping the read-for-ownership saves memory traffic.
  // In place the lines were just read and are in cache: plain stores (!NT) hit them.
  const uintptr_t mis = reinterpret_cast<uintptr_t>(out) % (kW * sizeof(float));
  int64_t head = mis == 0 ? 0 : static_cast<int64_t>((kW * sizeof(float) - mis) / sizeof(float));
  if (mis % sizeof(float) != 0 || head > n) head = n;  // not float-aligned: no streaming at all
  for (int64_t i = 0; i < head; i += kW) {
    const int64_t m = head - i < kW ? head - i : kW;
    if (m == kW) store(out + i, grad(load_dt<DT>(zs, i), load_dt<DT>(zt, i)));
    else store_tail(out + i, m, grad(load_tail_dt<DT>(zs, i, m, kNegInf), load_tail_dt<DT>(zt, i, m, kNegInf)));
  }
  int64_t i = head;
  for (; i + kW <= n; i += kW) put<NT>(out + i, grad(load_dt<DT>(zs, i), load_dt<DT>(zt, i)));
  if (i < n) store_tail(out + i, n - i, grad(load_tail_dt<DT>(zs, i, n - i, kNegInf), load_tail_dt<DT>(zt, i, n - i, kNegInf)));
  stream_fence();
}

void stats(const void* zs, const void* zt, int dtype, int64_t n, float a, int mode, float* out) {
#define RK_DIV_STATS(DT)                                            \
  switch (mode) {                                                   \
    case 0: return stats_t<DT, 0>(zs, zt, n, a, out);               \
    case 1: return stats_t<DT, 1>(zs, zt, n, a, out);               \
    default: return stats_t<DT, 2>(zs, zt, n, a, out);              \
  }
  switch (dtype) {
    case kBF16: RK_DIV_STATS(kBF16)
    case kF16: RK_DIV_STATS(kF16)
    default: RK_DIV_STATS(kF32)
  }
#undef RK_DIV_STATS
}

void jsd(const void* zs, const void* zt, int dtype, int64_t n, const detail::DivRow& r,
         float* out) {
  switch (dtype) {
    case kBF16: return jsd_t<kBF16>(zs, zt, n, r, out);
    case kF16: return jsd_t<kF16>(zs, zt, n, r, out);
    default: return jsd_t<kF32>(zs, zt, n, r, out);
  }
}

void grad(const void* zs, const void* zt, int dtype, int64_t n, const detail::DivRow& r, int mode,
          float* out, bool nt) {
  with_nt(nt, [&](auto ntc) {
    constexpr bool NT = decltype(ntc)::value;
#define RK_DIV_GRAD(DT)                                             \
  switch (mode) {                                                   \
    case 0: return grad_t<DT, 0, NT>(zs, zt, n, r, out);            \
    case 1: return grad_t<DT, 1, NT>(zs, zt, n, r, out);            \
    default: return grad_t<DT, 2, NT>(zs, zt, n, r, out);           \
  }
    switch (dtype) {
      case kBF16: RK_DIV_GRAD(kBF16)
      case kF16: RK_DIV_GRAD(kF16)
      default: RK_DIV_GRAD(kF32)
    }
#undef RK_DIV_GRAD
  });
}

}  // namespace
}  // namespace RK_ISA_NS

namespace detail {
#define RK_CAT2(a, b) a##b
#define RK_CAT(a, b) RK_CAT2(a, b)
const DivergenceKernels& RK_CAT(divergence_kernels_, RK_ISA_NS)() {
  static const DivergenceKernels k{&RK_ISA_NS::stats, &RK_ISA_NS::jsd, &RK_ISA_NS::grad};
  return k;
}
#undef RK_CAT
#undef RK_CAT2
}  // namespace detail
}  // namespace rk
