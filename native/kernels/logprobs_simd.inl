// The hot loops of logprobs.cc, compiled once per ISA (see simd.h). Included by
// logprobs_avx512.cc, logprobs_avx2.cc and logprobs_scalar.cc.
#include "logprobs.h"
#include "simd.h"

namespace rk {
namespace RK_ISA_NS {
namespace {

// Chunk statistics: a max pass (the only read from memory), then an exp pass over the same chunk,
// now in L1. t is accumulated only when wanted (entropy).
template <int DT, bool WANT_T>
void chunk_stats_t(const void* p, int64_t n, float a, float* om, float* os, float* ot) {
  VF m0 = set1(kNegInf), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 0;
  for (; i + 4 * kW <= n; i += 4 * kW) {
    m0 = vmax(m0, load_dt<DT>(p, i));
    m1 = vmax(m1, load_dt<DT>(p, i + kW));
    m2 = vmax(m2, load_dt<DT>(p, i + 2 * kW));
    m3 = vmax(m3, load_dt<DT>(p, i + 3 * kW));
  }
  for (; i + kW <= n; i += kW) m0 = vmax(m0, load_dt<DT>(p, i));
  if (i < n) m1 = vmax(m1, load_tail_dt<DT>(p, i, n - i, kNegInf));
  const float m = hmax(vmax(vmax(m0, m1), vmax(m2, m3)));
  *om = m;
  if (!(m > kNegInf)) {  // all -inf (or NaN): the chunk adds nothing (or NaN) to the row
    *os = (m == m) ? 0.0f : m;
    *ot = 0.0f;
    return;
  }
  const VF vm = set1(m), va = set1(a), lo = set1(-150.0f);
  VF s0 = set1(0.0f), s1 = s0, t0 = s0, t1 = s0;
  i = 0;
  // While the exp pass works from L1, fetch the memory that comes next (the rest of the row or the
  // next row: rows are contiguous), so the next chunk's max pass does not wait on DRAM.
  for (; i + 2 * kW <= n; i += 2 * kW) {
    if constexpr (kW * dtype_size(DT) >= 64) {
      prefetch_dt<DT>(p, n + i);
      prefetch_dt<DT>(p, n + i + kW);
    } else if (((i * dtype_size(DT)) & 63) == 0) {
      prefetch_dt<DT>(p, n + i);
    }
    VF u0 = vmax(lo, (load_dt<DT>(p, i) - vm) * va);
    VF u1 = vmax(lo, (load_dt<DT>(p, i + kW) - vm) * va);
    VF e0 = exp2v(u0), e1 = exp2v(u1);
    s0 = s0 + e0;
    s1 = s1 + e1;
    if constexpr (WANT_T) {
      t0 = fma(e0, u0, t0);
      t1 = fma(e1, u1, t1);
    }
  }
  for (; i < n; i += kW) {
    VF x = (i + kW <= n) ? load_dt<DT>(p, i) : load_tail_dt<DT>(p, i, n - i, kNegInf);
    VF u = vmax(lo, (x - vm) * va);
    VF e = exp2v(u);
    s0 = s0 + e;
    if constexpr (WANT_T) t0 = fma(e, u, t0);
  }
  *os = hsum(s0 + s1);
  *ot = WANT_T ? hsum(t0 + t1) : 0.0f;
}

// OUT: float (f32 gradient) or uint16_t (bf16 gradient).
template <int DT, class OUT>
void chunk_grad_t(const void* p, int64_t n, float c, float a, float b, float k0, float k1,
                  OUT* out) {
  const VF vc = set1(c), va = set1(a), vb = set1(b), lo = set1(-150.0f), vk0 = set1(k0),
           vk1 = set1(k1);
  auto grad = [&](VF x) {
    VF u = vmax(lo, fms(x - vc, va, vb));
    return exp2v(u) * fma(vk1, u, vk0);
  };
  // Head: up to the first vector-aligned output element, so the body can use non-temporal stores
  // (the gradient is written once and not read back here: skipping the read-for-ownership saves
  // a third of the memory traffic).
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
  for (; i + kW <= n; i += kW) stream(out + i, grad(load_dt<DT>(p, i)));
  if (i < n) store_tail(out + i, n - i, grad(load_tail_dt<DT>(p, i, n - i, kNegInf)));
  stream_fence();
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
void chunk_grad(const void* p, int dtype, int64_t n, float c, float a, float b, float k0, float k1,
                OUT* out) {
  switch (dtype) {
    case kBF16: return chunk_grad_t<kBF16>(p, n, c, a, b, k0, k1, out);
    case kF16: return chunk_grad_t<kF16>(p, n, c, a, b, k0, k1, out);
    default: return chunk_grad_t<kF32>(p, n, c, a, b, k0, k1, out);
  }
}

}  // namespace
}  // namespace RK_ISA_NS

namespace detail {
#define RK_CAT2(a, b) a##b
#define RK_CAT(a, b) RK_CAT2(a, b)
const LogprobsKernels& RK_CAT(logprobs_kernels_, RK_ISA_NS)() {
  static const LogprobsKernels k{&RK_ISA_NS::chunk_stats, &RK_ISA_NS::chunk_grad<float>,
                                 &RK_ISA_NS::chunk_grad<uint16_t>};
  return k;
}
#undef RK_CAT
#undef RK_CAT2
}  // namespace detail
}  // namespace rk
