// The hot loops of logprobs.cc, compiled once per ISA (see simd.h). Included by
// logprobs_avx512.cc, logprobs_avx2.cc and logprobs_scalar.cc.
#include "logprobs.h"
#include "simd.h"

namespace rk {
namespace RK_ISA_NS {
namespace {

// Chunk statistics: a max pass (the only read from memory), then an exp pass over the same chunk,
// now in L1. t is accumulated only when wanted (entropy).
// With E (policyLossFromLogits' one-pass gradient): also stores each element's 2^u in e[0, n), the
// same values the sums add (0 for an all -inf chunk, NaN for a NaN chunk).
// A rider does other work over the same element range in the exp loop (policyLossFromLogits: the
// previous row's gradient chunk, so its streaming stores drain while these exps are computed).
// start(): before the loop; full2(i): in the two-vector loop, for the 2 kW elements at i, before
// this iteration's e are stored; finish(): after that loop, before the last (under two vectors) are
// stored; all(): the whole range at once, for a chunk without exps, before its e are stored. The
// rider may read the e this loop overwrites (one row buffer): it reads each before the loop stores it.
struct NoRider {
  void start() {}
  void full2(int64_t) {}
  void finish() {}
  void all() {}
};

template <int DT, bool WANT_T, bool E = false, class Rider = NoRider>
void chunk_stats_t(const void* p, int64_t n, float a, float* om, float* os, float* ot, float* e = nullptr,
                   Rider rider = Rider{}) {
  // The forward alone (nothing stored) on 512-bit f32 vectors: software prefetches spread over both
  // passes, fewer of them, and the hardware prefetcher fetches the lines between. The exp pass asks
  // for every other line of the next chunk, the max pass for every fourth of the chunk after it.
  // With a prefetch of every line in the exp pass only (as everywhere else), this loop read 25-30%
  // slower from memory than its 256-bit form; spread, it reads as fast. bf16 logits and the
  // policyLossFromLogits loop (which stores its exps and writes a gradient) read fastest as they are.
  constexpr bool kSpread = DT == kF32 && !E && kW * sizeof(float) == 64;
  VF m0 = set1(kNegInf), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 0;
  for (; i + 4 * kW <= n; i += 4 * kW) {
    if constexpr (kSpread) prefetch_dt<DT>(p, 2 * n + i);
    if constexpr (DT == kBF16) {  // the max does not depend on which lane holds which element
      VF x0, x1, x2, x3;
      load_bf16_split(static_cast<const uint16_t*>(p) + i, x0, x1);
      load_bf16_split(static_cast<const uint16_t*>(p) + i + 2 * kW, x2, x3);
      m0 = vmax(m0, x0);
      m1 = vmax(m1, x1);
      m2 = vmax(m2, x2);
      m3 = vmax(m3, x3);
    } else {
      m0 = vmax(m0, load_dt<DT>(p, i));
      m1 = vmax(m1, load_dt<DT>(p, i + kW));
      m2 = vmax(m2, load_dt<DT>(p, i + 2 * kW));
      m3 = vmax(m3, load_dt<DT>(p, i + 3 * kW));
    }
  }
  for (; i + kW <= n; i += kW) m0 = vmax(m0, load_dt<DT>(p, i));
  if (i < n) m1 = vmax(m1, load_tail_dt<DT>(p, i, n - i, kNegInf));
  const float m = hmax(vmax(vmax(m0, m1), vmax(m2, m3)));
  *om = m;
  if (!(m > kNegInf)) {  // all -inf (or NaN): the chunk adds nothing (or NaN) to the row
    *os = (m == m) ? 0.0f : m;
    *ot = 0.0f;
    rider.all();  // first: the rider may read the e being overwritten here
    if constexpr (E) {
      for (int64_t j = 0; j < n; ++j) e[j] = *os;
    }
    return;
  }
  const VF vm = set1(m), va = set1(a), lo = set1(-150.0f);
  // u >= -150 where t reuses it (exp2v_sum gives 2^-inf = 0, but 0 * -inf is NaN), and in
  // policyLossFromLogits' loop (E) on f32 and f16 logits: f32 ran 5-10% slower from DRAM into an out
  // buffer without it. On bf16 logits, whose loop is bound by its arithmetic rather than by memory,
  // it ran 3.5% faster without in place (1024 x 151936: a mean 27.9 against 28.9 ms over 7 alternated
  // rounds; into an out buffer no change beyond the noise).
  // The bits are the same either way.
  constexpr bool kClamp = WANT_T || (E && DT != kBF16);
  VF s0 = set1(0.0f), s1 = s0, t0 = s0, t1 = s0;
  rider.start();
  i = 0;
  // While the exp pass works from L1, fetch the memory that comes next (the rest of the row or the
  // next row: rows are contiguous), so the next chunk's max pass does not wait on DRAM.
  for (; i + 2 * kW <= n; i += 2 * kW) {
    if constexpr (kSpread) {
      prefetch_dt<DT>(p, n + i);
    } else if constexpr (kW * dtype_size(DT) >= 64) {
      prefetch_dt<DT>(p, n + i);
      prefetch_dt<DT>(p, n + i + kW);
    } else if (((i * dtype_size(DT)) & 63) == 0) {
      prefetch_dt<DT>(p, n + i);
    }
    VF u0 = (load_dt<DT>(p, i) - vm) * va;
    VF u1 = (load_dt<DT>(p, i + kW) - vm) * va;
    if constexpr (kClamp) {
      u0 = vmax(lo, u0);
      u1 = vmax(lo, u1);
    }
    VF e0 = exp2v_sum(u0), e1 = exp2v_sum(u1);
    rider.full2(i);
    if constexpr (E) {
      store(e + i, e0);
      store(e + i + kW, e1);
    }
    s0 = s0 + e0;
    s1 = s1 + e1;
    if constexpr (WANT_T) {
      t0 = fma(e0, u0, t0);
      t1 = fma(e1, u1, t1);
    }
  }
  rider.finish();
  for (; i < n; i += kW) {
    VF x = (i + kW <= n) ? load_dt<DT>(p, i) : load_tail_dt<DT>(p, i, n - i, kNegInf);
    VF u = (x - vm) * va;
    if constexpr (kClamp) u = vmax(lo, u);
    VF ex = exp2v_sum(u);
    if constexpr (E) {
      if (i + kW <= n) store(e + i, ex);
      else store_tail(e + i, n - i, ex);
    }
    s0 = s0 + ex;
    if constexpr (WANT_T) t0 = fma(ex, u, t0);
  }
  *os = hsum(s0 + s1);
  *ot = WANT_T ? hsum(t0 + t1) : 0.0f;
}

// OUT: float (f32 gradient) or uint16_t (bf16 gradient). NT: streaming stores (see LogprobsKernels).
template <int DT, class OUT, bool NT>
void chunk_grad_t(const void* p, int64_t n, float c, float a, float b, float k0, float k1,
                  OUT* out) {
  const VF vc = set1(c), va = set1(a), vb = set1(b), lo = set1(-150.0f), vk0 = set1(k0),
           vk1 = set1(k1);
  auto grad = [&](VF x) {
    VF u = vmax(lo, fms(x - vc, va, vb));
    return exp2v_sum(u) * fma(vk1, u, vk0);
  };
  // Head: up to the first vector-aligned output element, so the body can use non-temporal stores
  // (the gradient is written once and not read back here: skipping the read-for-ownership saves
  // a third of the memory traffic). Kept for plain stores (in place) too, unlike GradRider: without
  // it this f32 backward in place ran 44.2-49.5 against 37.5-43.3 ms (stores split across lines).
  const uintptr_t mis = reinterpret_cast<uintptr_t>(out) % (kW * sizeof(OUT));
  int64_t head = mis == 0 ? 0 : static_cast<int64_t>((kW * sizeof(OUT) - mis) / sizeof(OUT));
  if (mis % sizeof(OUT) != 0 || head > n) head = n;  // not element-aligned: no streaming at all
  if (head > 0) {
    for (int64_t i = 0; i < head; i += kW) {
      const int64_t m = head - i < kW ? head - i : kW;
      VF g = grad(m == kW ? load_dt<DT>(p, i) : load_tail_dt<DT>(p, i, m, kNegInf));
      if (m == kW) store(out + i, g);
      else store_tail(out + i, m, g);
    }
  }
  int64_t i = head;
  for (; i + kW <= n; i += kW) put<NT>(out + i, grad(load_dt<DT>(p, i)));
  if (i < n) store_tail(out + i, n - i, grad(load_tail_dt<DT>(p, i, n - i, kNegInf)));
  stream_fence();
}

// The gradient from a chunk's stored 2^u (chunk_stats_t with E): out = e (A + B u), u recomputed as
// the statistics pass computed it, max((z - m) a, -150); B = 0 (no entropy term): out = e A. As a
// rider it runs inside another chunk's exp loop; all() runs it alone. Its streaming stores need
// addresses aligned to a pair of vectors (2 kW elements), so it works h < 2 kW elements ahead of the
// loop's index (out + h aligned; with plain stores h = 0):
// start() writes the first h with plain stores; full2(i) streams elements [i + h, i + h + 2 kW), and
// once a whole pair no longer fits, everything left with plain stores; finish() writes whatever is
// left at the end.
template <int DT, class OUT, bool WITH_U, bool NT>
struct GradRider {
  const void* p;  // the gradient row's chunk of logits (for u)
  const float* e;
  OUT* out;
  VF vm, va, lo, vA, vB;
  int64_t n;
  int64_t h = 0;    // elements before the first pair-aligned one (n: none is streamed)
  int64_t end = 0;  // elements [h, end) written by full2()
  GradRider(const void* p_, const float* e_, OUT* out_, float m, float a, float A, float B, int64_t n_)
      : p(p_), e(e_), out(out_), vm(set1(m)), va(set1(a)), lo(set1(-150.0f)), vA(set1(A)), vB(set1(B)), n(n_) {
    // Plain stores (an output in cache) need no alignment: no head, every pair at the loop's index.
    // (In place on bf16 logits not 64-byte aligned, the head and tail written element by element
    // took 5% of the call's samples under perf.)
    const uintptr_t mis = NT ? reinterpret_cast<uintptr_t>(out) % (2 * kW * sizeof(OUT)) : 0;
    h = mis == 0 ? 0 : static_cast<int64_t>((2 * kW * sizeof(OUT) - mis) / sizeof(OUT));
    if (mis % sizeof(OUT) != 0 || h > n) h = n;
    end = h;
  }
  VF value(int64_t i, int64_t len) const {
    const VF ev = len == kW ? load(e + i) : load_tail_dt<kF32>(e, i, len, 0.0f);
    if constexpr (WITH_U) {
      const VF x = len == kW ? load_dt<DT>(p, i) : load_tail_dt<DT>(p, i, len, kNegInf);
      return ev * fma(vB, vmax(lo, (x - vm) * va), vA);
    } else {
      return ev * vA;
    }
  }
  void plain(int64_t from, int64_t to) {
    for (int64_t i = from; i < to; i += kW) {
      const int64_t len = to - i < kW ? to - i : kW;
      if (len == kW) store(out + i, value(i, kW));
      else store_tail(out + i, len, value(i, len));
    }
  }
  // Elements [i + h, i + h + 2 kW): one conversion and one aligned (streaming) store of both vectors
  // where the ISA has them (simd.h put2). Past the last whole aligned pair, the rest at once: the
  // loop stores this iteration's e after its rider, so whatever is read here is read before it is
  // overwritten (e may be the buffer the loop writes: policyLossFromLogits keeps one row buffer).
  void full2(int64_t i) {
    const int64_t j = i + h;
    if (j + 2 * kW <= n) {
      put2<NT>(out + j, value(j, kW), value(j + kW, kW));
      end = j + 2 * kW;
    } else if (end < n) {
      plain(end, n);
      end = n;
    }
  }
  void start() { plain(0, h); }
  void finish() { plain(end, n); }
  void all() {
    start();
    for (int64_t i = 0; i + 2 * kW <= n; i += 2 * kW) full2(i);
    finish();
  }
};

template <int DT, class OUT, bool WITH_U, bool NT>
void stats_grad_t(const void* p, int64_t n, float a, float* m, float* s, float* t, float* e, const void* gp,
                  float gm, const float* ge, float A, float B, OUT* out) {
  GradRider<DT, OUT, WITH_U, NT> r(gp, ge, out, gm, a, A, B, n);
  float dummy;
  if (t) chunk_stats_t<DT, true, true>(p, n, a, m, s, t, e, r);
  else chunk_stats_t<DT, false, true>(p, n, a, m, s, &dummy, e, r);
  stream_fence();
}

template <int DT, class OUT, bool NT>
void stats_grad_dt(const void* p, int64_t n, float a, float* m, float* s, float* t, float* e, const void* gp,
                   float gm, const float* ge, float A, float B, OUT* out) {
  if (B != 0.0f) stats_grad_t<DT, OUT, true, NT>(p, n, a, m, s, t, e, gp, gm, ge, A, B, out);
  else stats_grad_t<DT, OUT, false, NT>(p, n, a, m, s, t, e, gp, gm, ge, A, B, out);
}

template <class OUT>
void stats_grad(const void* p, int dtype, int64_t n, float a, float* m, float* s, float* t, float* e,
                const void* gp, float gm, const float* ge, float A, float B, OUT* out, bool nt) {
  with_nt(nt, [&](auto ntc) {
    constexpr bool NT = decltype(ntc)::value;
    switch (dtype) {
      case kBF16: return stats_grad_dt<kBF16, OUT, NT>(p, n, a, m, s, t, e, gp, gm, ge, A, B, out);
      case kF16: return stats_grad_dt<kF16, OUT, NT>(p, n, a, m, s, t, e, gp, gm, ge, A, B, out);
      default: return stats_grad_dt<kF32, OUT, NT>(p, n, a, m, s, t, e, gp, gm, ge, A, B, out);
    }
  });
}

void chunk_stats_e(const void* p, int dtype, int64_t n, float a, float* m, float* s, float* t, float* e) {
  float dummy;
  const bool want_t = t != nullptr;
  if (!t) t = &dummy;
  switch (dtype) {
    case kBF16:
      return want_t ? chunk_stats_t<kBF16, true, true>(p, n, a, m, s, t, e)
                    : chunk_stats_t<kBF16, false, true>(p, n, a, m, s, t, e);
    case kF16:
      return want_t ? chunk_stats_t<kF16, true, true>(p, n, a, m, s, t, e)
                    : chunk_stats_t<kF16, false, true>(p, n, a, m, s, t, e);
    default:
      return want_t ? chunk_stats_t<kF32, true, true>(p, n, a, m, s, t, e)
                    : chunk_stats_t<kF32, false, true>(p, n, a, m, s, t, e);
  }
}

template <int DT, class OUT, bool NT>
void chunk_grad_e_dt(const void* p, int64_t n, float m, float a, const float* e, float A, float B, OUT* out) {
  if (B != 0.0f) GradRider<DT, OUT, true, NT>(p, e, out, m, a, A, B, n).all();
  else GradRider<DT, OUT, false, NT>(p, e, out, m, a, A, B, n).all();
  stream_fence();
}

template <class OUT>
void chunk_grad_e(const void* p, int dtype, int64_t n, float m, float a, const float* e, float A, float B, OUT* out,
                  bool nt) {
  with_nt(nt, [&](auto ntc) {
    constexpr bool NT = decltype(ntc)::value;
    switch (dtype) {
      case kBF16: return chunk_grad_e_dt<kBF16, OUT, NT>(p, n, m, a, e, A, B, out);
      case kF16: return chunk_grad_e_dt<kF16, OUT, NT>(p, n, m, a, e, A, B, out);
      default: return chunk_grad_e_dt<kF32, OUT, NT>(p, n, m, a, e, A, B, out);
    }
  });
}

void chunk_stats(const void* p, int dtype, int64_t n, float a, float* m, float* s, float* t) {
  const bool want_t = t != nullptr;
  float dummy;
  if (!t) t = &dummy;
  switch (dtype) {
    case kBF16:
      return want_t ? chunk_stats_t<kBF16, true>(p, n, a, m, s, t)
                    : chunk_stats_t<kBF16, false>(p, n, a, m, s, t);
    case kF16:
      return want_t ? chunk_stats_t<kF16, true>(p, n, a, m, s, t)
                    : chunk_stats_t<kF16, false>(p, n, a, m, s, t);
    default:
      return want_t ? chunk_stats_t<kF32, true>(p, n, a, m, s, t)
                    : chunk_stats_t<kF32, false>(p, n, a, m, s, t);
  }
}

template <class OUT>
void chunk_grad(const void* p, int dtype, int64_t n, float c, float a, float b, float k0, float k1, OUT* out,
                bool nt) {
  with_nt(nt, [&](auto ntc) {
    constexpr bool NT = decltype(ntc)::value;
    switch (dtype) {
      case kBF16: return chunk_grad_t<kBF16, OUT, NT>(p, n, c, a, b, k0, k1, out);
      case kF16: return chunk_grad_t<kF16, OUT, NT>(p, n, c, a, b, k0, k1, out);
      default: return chunk_grad_t<kF32, OUT, NT>(p, n, c, a, b, k0, k1, out);
    }
  });
}

}  // namespace
}  // namespace RK_ISA_NS

namespace detail {
#define RK_CAT2(a, b) a##b
#define RK_CAT(a, b) RK_CAT2(a, b)
#if defined(RK_BF16_NATIVE)
const LogprobsKernels& logprobs_kernels_avx512bf16() {
#else
const LogprobsKernels& RK_CAT(logprobs_kernels_, RK_ISA_NS)() {
#endif
  static const LogprobsKernels k{&RK_ISA_NS::chunk_stats,       &RK_ISA_NS::chunk_grad<float>,
                                 &RK_ISA_NS::chunk_grad<uint16_t>, &RK_ISA_NS::chunk_stats_e,
                                 &RK_ISA_NS::chunk_grad_e<float>,  &RK_ISA_NS::chunk_grad_e<uint16_t>,
                                 &RK_ISA_NS::stats_grad<float>,    &RK_ISA_NS::stats_grad<uint16_t>};
  return k;
}
#undef RK_CAT
#undef RK_CAT2
}  // namespace detail
}  // namespace rk
