// Full-vocabulary divergences on CUDA: forward and gradient; formulas and contracts in divergence.h,
// the CPU twin is native/kernels/divergence.{h,cc} (+ divergence_simd.inl), whose precision
// formulation this follows step by step.
//
// Layout of the work (as cuda/logprobs.cu). One block of kThreads threads per (row, split); a row
// is split over several blocks only when there are too few rows to fill the card
// (divergence_row_splits depends on N and V only). Each block streams its range of BOTH rows with
// 16-byte loads (8 bf16/f16 or 4 f32 per load, two loads of each row in flight per thread); the
// elements before the first 16-byte boundary and after the last whole vector are read one by one,
// so any V and any element-aligned base pointers work (when the two tensors are not equally aligned
// modulo 16 bytes, every element is read one by one: correct, just slower).
//
// Pass 1 (all kinds, one read of both rows). Each thread keeps online statistics in f32 registers,
// with a = log2(e)/tau and shifts hs = max z, ht = max zt (0 while a max is -inf, like the CPU's
// all -inf chunks):
//   ss = sum 2^((z - hs) a),  st = sum 2^((zt - ht) a),
//   forward_kl  c = sum 2^((zt - ht) a) ((zt - ht) - (z - hs))
//   reverse_kl  c = sum 2^((z - hs) a) ((z - hs) - (zt - ht))
// The differences are taken relative to the row maxima before scaling (the CPU's (z - m) * a), so
// logits of magnitude 1e4 and large offsets between the two rows cost no precision. When a max
// moves, the sums are rescaled by 2^(dm a) and c is shifted by dm * (its weight sum); products with a
// zero probability are kept at 0 (never 0 * inf = NaN) and an infinite c stays infinite. Threads
// merge with warp shuffles then shared memory in a fixed order; split rows merge their partials in
// split order in a one-thread-per-row kernel. The per-row finish is done in double as the CPU does:
//   KL(q || p) = c / (tau st) - ln st + ln ss,  KL(p || q) = c / (tau ss) - ln ss + ln st,
// and the row constants of the later passes (log2 units): log2 p = (z - Ms) a - log2 ss,
// log2 q = (zt - Mt) a - log2 st, the gradient coefficients k0, k1 as divergence.cc computes them.
// Pass 2 (jsd only): per element l = log2 p - log2 q and A = log2(p/m), B = log2(q/m) with one exp2
// and one log1p (the side that dominates the mixture computed directly, see divergence_simd.inl);
// J = sum beta q B + (1-beta) p A, K = sum p A; D = ln2 J, KL(p || m) = ln2 K.
// Gradient pass: per element from the row constants, as divergence_simd.inl's grad_t. Each element
// is read and written by the same thread, so grad may be the f32 logits (in place).
// The passes after the first walk the rows in the opposite order of the previous pass, so the rows
// read last (still in L2) are read again first.
#include "divergence.h"
#include "host_common.cuh"
#include "row_common.cuh"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>

namespace rkcuda {
namespace {

constexpr float kLog2ef = 1.44269504088896340736f;

// ---------------------------------------------------------------------------------------------
// Device helpers

// clamp at -150 keeping a NaN (the CPU's vmax(lo, x))
__device__ __forceinline__ float clampu(float u) { return u < -150.0f ? -150.0f : u; }
// x where e != 0 (NaN counts as nonzero), else 0: a zero probability times anything is 0
__device__ __forceinline__ float keep_nz(float e, float x) { return e != 0.0f ? x : 0.0f; }
// the shift of a row: its max, or 0 while the max is -inf
__device__ __forceinline__ float shift_of(float m) { return m > -INFINITY ? m : 0.0f; }
__device__ __forceinline__ bool is_inf(float x) { return fabsf(x) == INFINITY; }

// 16-byte load: evict-first on the last pass over the data, normal caching otherwise (the next pass
// may find the most recent rows in L2).
template <bool LAST>
__device__ __forceinline__ uint4 ld16(const uint4* p) {
  if (LAST) return __ldcs(p);
  return *p;
}

__device__ __forceinline__ bool same_phase(const void* a, const void* b) {
  return ((reinterpret_cast<uintptr_t>(a) ^ reinterpret_cast<uintptr_t>(b)) & 15u) == 0;
}

// Everything the kernels need besides the data pointers.
struct Params {
  int64_t n, v;
  float a;           // log2(e) / tau
  double inv_tau;
  double beta;       // jsd mixture weight
  float fbeta, fb1;  // beta, 1 - beta as float
  float lam;         // log2(beta / (1 - beta)) (jsd)
  const uint8_t* mask;
  const int32_t* labels;
  int32_t ignore;
  float* div;
  float* rowc;       // (N, 8) per-row constants: cs bs ct bt k0 k1 (null when no later pass)
  double grad_scale;
  const float* grad_rows;
};

__device__ __forceinline__ bool row_active(const Params& P, int64_t r) {
  if (P.mask && P.mask[r] == 0) return false;
  if (P.labels && P.labels[r] == P.ignore) return false;
  return true;
}
__device__ __forceinline__ double row_g(const Params& P, int64_t r) {
  return P.grad_scale * (P.grad_rows ? static_cast<double>(P.grad_rows[r]) : 1.0);
}

// --- pass 1: online statistics of a row pair --------------------------------------------------
struct DAcc {
  float ms, mt, ss, st, c;
};
__device__ __forceinline__ DAcc dacc_identity() { return DAcc{-INFINITY, -INFINITY, 0.0f, 0.0f, 0.0f}; }

// c rescaled by w after its terms moved by d (per unit of weight s): w (c + d s); an empty part
// (s == 0) stays as it is (0) and an infinite c stays infinite.
__device__ __forceinline__ float move_c(float c, float s, float w, float d) {
  if (s == 0.0f || is_inf(c)) return c;
  return w * fmaf(d, s, c);
}

// Adds K element pairs (x student, y target) to A. MODE 0 forward_kl, 1 reverse_kl, 2 jsd.
template <int MODE, int K>
__device__ __forceinline__ void dacc_add(DAcc& A, const float* x, const float* y, float a) {
  float lms = x[0], lmt = y[0];
#pragma unroll
  for (int i = 1; i < K; ++i) {
    lms = fmaxf(lms, x[i]);
    lmt = fmaxf(lmt, y[i]);
  }
  if (lms > A.ms) {
    const float w = ex2_scale(fmaxf((A.ms - lms) * a, -150.0f));  // A.ms = -inf: weight 0
    const float d = shift_of(A.ms) - lms;  // each (z - hs) grows by d
    if (MODE == 0 && A.st != 0.0f && !is_inf(A.c)) A.c = fmaf(-d, A.st, A.c);
    if (MODE == 1) A.c = move_c(A.c, A.ss, w, d);
    A.ss *= w;
    A.ms = lms;
  }
  if (lmt > A.mt) {
    const float w = ex2_scale(fmaxf((A.mt - lmt) * a, -150.0f));
    const float d = shift_of(A.mt) - lmt;  // each (zt - ht) grows by d
    if (MODE == 0) A.c = move_c(A.c, A.st, w, d);
    if (MODE == 1 && A.ss != 0.0f && !is_inf(A.c)) A.c = fmaf(-d, A.ss, A.c);
    A.st *= w;
    A.mt = lmt;
  }
  const float hs = shift_of(A.ms), ht = shift_of(A.mt);
#pragma unroll
  for (int i = 0; i < K; ++i) {
    const float ds = x[i] - hs, dt = y[i] - ht;
    const float es = ex2(clampu(ds * a)), et = ex2(clampu(dt * a));
    A.ss += es;
    A.st += et;
    if (MODE == 0) A.c += keep_nz(et, et * (dt - ds));
    if (MODE == 1) A.c += keep_nz(es, es * (ds - dt));
  }
}

template <int MODE>
__device__ __forceinline__ DAcc dacc_merge(const DAcc& A, const DAcc& B, float a) {
  DAcc R;
  R.ms = fmaxf(A.ms, B.ms);
  R.mt = fmaxf(A.mt, B.mt);
  // (-inf) - (-inf) = NaN -> fmaxf gives -150 -> weight 0 (the sums are 0 there)
  const float wsa = ex2_scale(fmaxf((A.ms - R.ms) * a, -150.0f));
  const float wsb = ex2_scale(fmaxf((B.ms - R.ms) * a, -150.0f));
  const float wta = ex2_scale(fmaxf((A.mt - R.mt) * a, -150.0f));
  const float wtb = ex2_scale(fmaxf((B.mt - R.mt) * a, -150.0f));
  R.ss = A.ss * wsa + B.ss * wsb;
  R.st = A.st * wta + B.st * wtb;
  R.c = 0.0f;
  if (MODE <= 1) {
    const float hs = shift_of(R.ms), ht = shift_of(R.mt);
    // a term's (z - hs) grows by (hs_A - hs), its (zt - ht) by (ht_A - ht)
    const float dsa = shift_of(A.ms) - hs, dta = shift_of(A.mt) - ht;
    const float dsb = shift_of(B.ms) - hs, dtb = shift_of(B.mt) - ht;
    if (MODE == 0)
      R.c = move_c(A.c, A.st, wta, dta - dsa) + move_c(B.c, B.st, wtb, dtb - dsb);
    else
      R.c = move_c(A.c, A.ss, wsa, dsa - dta) + move_c(B.c, B.ss, wsb, dsb - dtb);
  }
  return R;
}

template <int MODE>
__device__ __forceinline__ DAcc dacc_shfl_down(const DAcc& A, int off) {
  DAcc B;
  B.ms = __shfl_down_sync(kFull, A.ms, off);
  B.mt = __shfl_down_sync(kFull, A.mt, off);
  B.ss = __shfl_down_sync(kFull, A.ss, off);
  B.st = __shfl_down_sync(kFull, A.st, off);
  B.c = MODE <= 1 ? __shfl_down_sync(kFull, A.c, off) : 0.0f;
  return B;
}

// Fixed-order block reduction; thread 0 gets the result.
template <int MODE>
__device__ __forceinline__ DAcc dacc_block_reduce(DAcc A, float a, DAcc* sh) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) A = dacc_merge<MODE>(A, dacc_shfl_down<MODE>(A, off), a);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) sh[warp] = A;
  __syncthreads();
  if (warp == 0) {
    A = lane < kWarps ? sh[lane] : dacc_identity();
#pragma unroll
    for (int off = kWarps / 2; off > 0; off >>= 1) A = dacc_merge<MODE>(A, dacc_shfl_down<MODE>(A, off), a);
  }
  return A;
}

// One block accumulates elements [0, n) of the row slices s, t into this thread's A.
template <int DT, int MODE>
__device__ __forceinline__ void range_stats(const char* s, const char* t, int64_t n, float a, DAcc& A) {
  using E = Elem<DT>;
  constexpr int ES = E::kSize, VW = E::kVec;
  if (!same_phase(s, t)) {  // the two tensors differ in 16-byte phase: element by element
    for (int64_t i = threadIdx.x; i < n; i += kThreads) {
      const float x = E::load(s, i), y = E::load(t, i);
      dacc_add<MODE, 1>(A, &x, &y, a);
    }
    return;
  }
  const int64_t head = head_elems<ES>(s, n);
  const int64_t nvec = (n - head) / VW;
  const int64_t tail0 = head + nvec * VW;
  for (int64_t i = threadIdx.x; i < head; i += kThreads) {
    const float x = E::load(s, i), y = E::load(t, i);
    dacc_add<MODE, 1>(A, &x, &y, a);
  }
  const uint4* sp = reinterpret_cast<const uint4*>(s + head * ES);
  const uint4* tp = reinterpret_cast<const uint4*>(t + head * ES);
  int64_t k = threadIdx.x;
  float x[VW], y[VW];
  for (; k + kThreads < nvec; k += 2 * kThreads) {
    const uint4 s0 = ld16<false>(sp + k), t0 = ld16<false>(tp + k);
    const uint4 s1 = ld16<false>(sp + k + kThreads), t1 = ld16<false>(tp + k + kThreads);
    E::unpack(s0, x);
    E::unpack(t0, y);
    dacc_add<MODE, VW>(A, x, y, a);
    E::unpack(s1, x);
    E::unpack(t1, y);
    dacc_add<MODE, VW>(A, x, y, a);
  }
  if (k < nvec) {
    E::unpack(ld16<false>(sp + k), x);
    E::unpack(ld16<false>(tp + k), y);
    dacc_add<MODE, VW>(A, x, y, a);
  }
  for (int64_t i = tail0 + threadIdx.x; i < n; i += kThreads) {
    const float xs = E::load(s, i), ys = E::load(t, i);
    dacc_add<MODE, 1>(A, &xs, &ys, a);
  }
}

// The per-row finish of pass 1, in double as divergence.cc's merge: div[r] (kl kinds; jsd
// overwrites it in pass 2 unless it is NaN) and the row constants.
template <int MODE>
__device__ __forceinline__ void finish_stats(const DAcc& A, int64_t r, const Params& P) {
  const double Ss = A.ss, St = A.st;
  const double lnSs = log(Ss), lnSt = log(St);
  // the cross sum A.c is taken against the same shifts as Ss and St: no shift difference
  const double D = rk::core::kl_row(MODE, static_cast<double>(A.c), 0.0, Ss, St, lnSs, lnSt, P.inv_tau);
  P.div[r] = static_cast<float>(D);
  if (!P.rowc) return;
  float* w = P.rowc + r * 8;
  w[0] = A.ms;
  w[1] = static_cast<float>(lnSs * kLog2ed);
  w[2] = A.mt;
  w[3] = static_cast<float>(lnSt * kLog2ed);
  const rk::core::DivCoef k = rk::core::kl_row_coef(MODE, row_g(P, r), D, P.inv_tau);
  w[4] = k.k0;
  w[5] = k.k1;
}

// grid (N, splits). SPLIT: writes the block's partial to partial[r * splits + split].
template <int DT, int MODE, bool SPLIT>
__global__ void __launch_bounds__(kThreads)
    stats_kernel(const char* __restrict__ zs, const char* __restrict__ zt, int64_t chunk,
                 DAcc* __restrict__ partial, Params P) {
  __shared__ DAcc sh[kWarps];
  const int64_t r = blockIdx.x;
  if (!row_active(P, r)) {
    if (!SPLIT && threadIdx.x == 0) P.div[r] = 0.0f;
    return;
  }
  const int64_t lo = SPLIT ? static_cast<int64_t>(blockIdx.y) * chunk : 0;
  const int64_t hi = SPLIT ? min(P.v, lo + chunk) : P.v;
  const int64_t off = (r * P.v + lo) * Elem<DT>::kSize;
  DAcc A = dacc_identity();
  range_stats<DT, MODE>(zs + off, zt + off, hi - lo, P.a, A);
  A = dacc_block_reduce<MODE>(A, P.a, sh);
  if (threadIdx.x != 0) return;
  if (SPLIT) partial[r * gridDim.y + blockIdx.y] = A;
  else finish_stats<MODE>(A, r, P);
}

// One thread per row: merges the split partials in split order.
template <int MODE>
__global__ void stats_merge_kernel(const DAcc* __restrict__ partial, int splits, Params P) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= P.n) return;
  if (!row_active(P, r)) {
    P.div[r] = 0.0f;
    return;
  }
  DAcc A = partial[r * splits];
  for (int i = 1; i < splits; ++i) A = dacc_merge<MODE>(A, partial[r * splits + i], P.a);
  finish_stats<MODE>(A, r, P);
}

// --- jsd element terms (divergence_simd.inl's jsd_AB) ------------------------------------------
struct RowK {
  float a, cs, bs, ct, bt, beta, b1, lam, k0, k1;
};
__device__ __forceinline__ RowK row_consts(const Params& P, int64_t r) {
  const float* w = P.rowc + r * 8;
  return RowK{P.a, w[0], w[1], w[2], w[3], P.fbeta, P.fb1, P.lam, w[4], w[5]};
}
// log2(1 - t), accurate relative to t
__device__ __forceinline__ float log2_1m(float t) { return log1pf(-t) * kLog2ef; }
// A = log2(p/m), B = log2(q/m) from l = log2 p - log2 q; e = 2^-l (l >= lam) or 2^l (l < lam)
__device__ __forceinline__ void jsd_AB(const RowK& k, float l, float& A, float& B, float& e) {
  const bool ge = l >= k.lam;
  e = ex2(clampu(ge ? -l : l));
  const float L = -log2_1m((ge ? k.beta : k.b1) * (1.0f - e));
  A = ge ? L : L + l;
  B = ge ? L - l : L;
}

// Calls f(i, x, y) for every element pair of the row slices [0, n), 16-byte loads where possible.
template <int DT, bool LAST, class F>
__device__ __forceinline__ void for_each_pair(const char* s, const char* t, int64_t n, F&& f) {
  using E = Elem<DT>;
  constexpr int ES = E::kSize, VW = E::kVec;
  if (!same_phase(s, t)) {
    for (int64_t i = threadIdx.x; i < n; i += kThreads) f(i, E::load(s, i), E::load(t, i));
    return;
  }
  const int64_t head = head_elems<ES>(s, n);
  const int64_t nvec = (n - head) / VW;
  const int64_t tail0 = head + nvec * VW;
  for (int64_t i = threadIdx.x; i < head; i += kThreads) f(i, E::load(s, i), E::load(t, i));
  const uint4* sp = reinterpret_cast<const uint4*>(s + head * ES);
  const uint4* tp = reinterpret_cast<const uint4*>(t + head * ES);
  float x[VW], y[VW];
  int64_t k = threadIdx.x;
  for (; k + kThreads < nvec; k += 2 * kThreads) {
    const uint4 s0 = ld16<LAST>(sp + k), t0 = ld16<LAST>(tp + k);
    const uint4 s1 = ld16<LAST>(sp + k + kThreads), t1 = ld16<LAST>(tp + k + kThreads);
    E::unpack(s0, x);
    E::unpack(t0, y);
#pragma unroll
    for (int j = 0; j < VW; ++j) f(head + k * VW + j, x[j], y[j]);
    E::unpack(s1, x);
    E::unpack(t1, y);
#pragma unroll
    for (int j = 0; j < VW; ++j) f(head + (k + kThreads) * VW + j, x[j], y[j]);
  }
  if (k < nvec) {
    E::unpack(ld16<LAST>(sp + k), x);
    E::unpack(ld16<LAST>(tp + k), y);
#pragma unroll
    for (int j = 0; j < VW; ++j) f(head + k * VW + j, x[j], y[j]);
  }
  for (int64_t i = tail0 + threadIdx.x; i < n; i += kThreads) f(i, E::load(s, i), E::load(t, i));
}

// Fixed-order block sum of two floats; thread 0 gets the result.
__device__ __forceinline__ void block_sum2(float& u, float& w, float2* sh) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    u += __shfl_down_sync(kFull, u, off);
    w += __shfl_down_sync(kFull, w, off);
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) {
    sh[warp].x = u;
    sh[warp].y = w;
  }
  __syncthreads();
  if (warp == 0) {
    u = lane < kWarps ? sh[lane].x : 0.0f;
    w = lane < kWarps ? sh[lane].y : 0.0f;
#pragma unroll
    for (int off = kWarps / 2; off > 0; off >>= 1) {
      u += __shfl_down_sync(kFull, u, off);
      w += __shfl_down_sync(kFull, w, off);
    }
  }
}

// The per-row finish of pass 2 (divergence.cc's merge_jsd), J and K in double.
__device__ __forceinline__ void finish_jsd(double J, double K, int64_t r, const Params& P) {
  P.div[r] = rk::core::jsd_row_div(P.div[r], J);
  if (!P.rowc) return;
  const rk::core::DivCoef k = rk::core::jsd_row_coef(row_g(P, r), P.beta, K, P.inv_tau);
  P.rowc[r * 8 + 5] = k.k1;
  P.rowc[r * 8 + 4] = k.k0;
}

// grid (N, splits); rows in reverse order (the last rows of pass 1 are still in L2).
template <int DT, bool SPLIT>
__global__ void __launch_bounds__(kThreads)
    jsd_kernel(const char* __restrict__ zs, const char* __restrict__ zt, int64_t chunk,
               float2* __restrict__ partial, Params P) {
  __shared__ float2 sh[kWarps];
  const int64_t r = static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x;
  if (!row_active(P, r)) return;
  const int64_t lo = SPLIT ? static_cast<int64_t>(blockIdx.y) * chunk : 0;
  const int64_t hi = SPLIT ? min(P.v, lo + chunk) : P.v;
  const int64_t off = (r * P.v + lo) * Elem<DT>::kSize;
  const RowK k = row_consts(P, r);
  float aj = 0.0f, ak = 0.0f;
  for_each_pair<DT, false>(zs + off, zt + off, hi - lo, [&](int64_t, float x, float y) {
    const float lp = fmaf(x - k.cs, k.a, -k.bs), lq = fmaf(y - k.ct, k.a, -k.bt);
    const float l = lp - lq;
    float A, B, e;
    jsd_AB(k, l, A, B, e);
    const bool ge = l >= k.lam;
    const float d = ex2(clampu(ge ? lp : lq));
    const float o = keep_nz(d, d * e);  // 0 where d is 0 (e is NaN where both logits are -inf)
    const float p = ge ? d : o, q = ge ? o : d;
    const float pA = keep_nz(p, p * A), qB = keep_nz(q, q * B);
    aj = fmaf(k.beta, qB, fmaf(k.b1, pA, aj));
    ak += pA;
  });
  block_sum2(aj, ak, sh);
  if (threadIdx.x != 0) return;
  if (SPLIT) {
    float2 o;
    o.x = aj;
    o.y = ak;
    partial[r * gridDim.y + blockIdx.y] = o;
  } else {
    finish_jsd(aj, ak, r, P);
  }
}

__global__ void jsd_merge_kernel(const float2* __restrict__ partial, int splits, Params P) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= P.n || !row_active(P, r)) return;
  double J = 0.0, K = 0.0;
  for (int i = 0; i < splits; ++i) {
    J += partial[r * splits + i].x;
    K += partial[r * splits + i].y;
  }
  finish_jsd(J, K, r, P);
}

// --- gradient -----------------------------------------------------------------------------------
template <int MODE>
__device__ __forceinline__ float grad_elem(const RowK& k, float x, float y) {
  const float lp = fmaf(x - k.cs, k.a, -k.bs), lq = fmaf(y - k.ct, k.a, -k.bt);
  const float p = ex2(clampu(lp));
  if (MODE == 0) return k.k0 * (p - ex2(clampu(lq)));
  if (MODE == 1) return keep_nz(p, p * fmaf(k.k1, lp - lq, k.k0));
  float A, B, e;
  jsd_AB(k, lp - lq, A, B, e);
  return keep_nz(p, p * fmaf(k.k1, A, k.k0));
}

// grid (N, splits): grad over [lo, hi) of row r. REV: rows in reverse order. zs may be grad itself
// (f32 in place): every element is read and written by the same thread.
template <int DT, int MODE, bool REV>
__global__ void __launch_bounds__(kThreads)
    grad_kernel(const char* zs, const char* __restrict__ zt, int64_t chunk, float* grad, Params P) {
  using E = Elem<DT>;
  constexpr int ES = E::kSize, VW = E::kVec;
  const int64_t r = REV ? static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x : blockIdx.x;
  const int64_t lo = static_cast<int64_t>(blockIdx.y) * chunk;
  const int64_t hi = min(P.v, lo + chunk);
  const int64_t n = hi - lo;
  float* dst = grad + r * P.v + lo;
  if (!row_active(P, r)) {
    for (int64_t i = threadIdx.x; i < n; i += kThreads) dst[i] = 0.0f;
    return;
  }
  const RowK k = row_consts(P, r);
  const char* s = zs + (r * P.v + lo) * ES;
  const char* t = zt + (r * P.v + lo) * ES;
  const int64_t head = head_elems<ES>(s, n);
  const bool vec_ok = same_phase(s, t) && (reinterpret_cast<uintptr_t>(dst + head) & 15u) == 0;
  if (!vec_ok) {
    for (int64_t i = threadIdx.x; i < n; i += kThreads) dst[i] = grad_elem<MODE>(k, E::load(s, i), E::load(t, i));
    return;
  }
  const int64_t nvec = (n - head) / VW;
  const int64_t tail0 = head + nvec * VW;
  for (int64_t i = threadIdx.x; i < head; i += kThreads) dst[i] = grad_elem<MODE>(k, E::load(s, i), E::load(t, i));
  const uint4* sp = reinterpret_cast<const uint4*>(s + head * ES);
  const uint4* tp = reinterpret_cast<const uint4*>(t + head * ES);
  float4* op = reinterpret_cast<float4*>(dst + head);
  auto put = [&](int64_t kk, const uint4& ws, const uint4& wt) {
    float x[VW], y[VW];
    E::unpack(ws, x);
    E::unpack(wt, y);
#pragma unroll
    for (int j = 0; j < VW; j += 4)
      op[kk * (VW / 4) + j / 4] = make_float4(grad_elem<MODE>(k, x[j], y[j]), grad_elem<MODE>(k, x[j + 1], y[j + 1]),
                                              grad_elem<MODE>(k, x[j + 2], y[j + 2]), grad_elem<MODE>(k, x[j + 3], y[j + 3]));
  };
  // Two loads of each row in flight. In place, the second loads are of other elements than the
  // first stores, so the order stays correct.
  int64_t kk = threadIdx.x;
  for (; kk + kThreads < nvec; kk += 2 * kThreads) {
    const uint4 s0 = __ldcs(sp + kk), t0 = __ldcs(tp + kk);
    const uint4 s1 = __ldcs(sp + kk + kThreads), t1 = __ldcs(tp + kk + kThreads);
    put(kk, s0, t0);
    put(kk + kThreads, s1, t1);
  }
  if (kk < nvec) put(kk, __ldcs(sp + kk), __ldcs(tp + kk));
  for (int64_t i = tail0 + threadIdx.x; i < n; i += kThreads) dst[i] = grad_elem<MODE>(k, E::load(s, i), E::load(t, i));
}

// ---------------------------------------------------------------------------------------------
// Host side

using common::bad_arg;
using common::cuda_fail;
using common::Scratch;

bool overlaps(const void* a, size_t na, const void* b, size_t nb) {
  const uintptr_t a0 = reinterpret_cast<uintptr_t>(a), b0 = reinterpret_cast<uintptr_t>(b);
  return a0 < b0 + nb && b0 < a0 + na;
}

template <int DT, int MODE>
Result launch_all(const char* zs, const char* zt, float* grad, Params P, cudaStream_t st) {
  const int64_t n = P.n, v = P.v;
  const int splits = divergence_row_splits(n, v);
  int64_t chunk = v;
  unsigned used = 1;
  if (splits > 1) {
    chunk = ((v + splits - 1) / splits + 7) / 8 * 8;
    used = static_cast<unsigned>((v + chunk - 1) / chunk);
  }
  const dim3 grid(static_cast<unsigned>(n), used);
  const unsigned merge_blocks = static_cast<unsigned>((n + 127) / 128);
  Scratch rowc(st), part(st), jpart(st);
  if (grad || MODE == 2) {
    RK_CUDA_CHECK(cudaMallocAsync(&rowc.p, sizeof(float) * 8 * static_cast<size_t>(n), st));
    P.rowc = static_cast<float*>(rowc.p);
  }
  if (used > 1) {
    RK_CUDA_CHECK(cudaMallocAsync(&part.p, sizeof(DAcc) * static_cast<size_t>(n) * used, st));
    DAcc* partial = static_cast<DAcc*>(part.p);
    stats_kernel<DT, MODE, true><<<grid, kThreads, 0, st>>>(zs, zt, chunk, partial, P);
    RK_CUDA_CHECK(cudaGetLastError());
    stats_merge_kernel<MODE><<<merge_blocks, 128, 0, st>>>(partial, static_cast<int>(used), P);
    RK_CUDA_CHECK(cudaGetLastError());
  } else {
    stats_kernel<DT, MODE, false><<<grid, kThreads, 0, st>>>(zs, zt, chunk, nullptr, P);
    RK_CUDA_CHECK(cudaGetLastError());
  }
  if (MODE == 2) {
    if (used > 1) {
      RK_CUDA_CHECK(cudaMallocAsync(&jpart.p, sizeof(float2) * static_cast<size_t>(n) * used, st));
      float2* jp = static_cast<float2*>(jpart.p);
      jsd_kernel<DT, true><<<grid, kThreads, 0, st>>>(zs, zt, chunk, jp, P);
      RK_CUDA_CHECK(cudaGetLastError());
      jsd_merge_kernel<<<merge_blocks, 128, 0, st>>>(jp, static_cast<int>(used), P);
      RK_CUDA_CHECK(cudaGetLastError());
    } else {
      jsd_kernel<DT, false><<<grid, kThreads, 0, st>>>(zs, zt, chunk, nullptr, P);
      RK_CUDA_CHECK(cudaGetLastError());
    }
  }
  if (grad) {
    // the opposite row order of the previous pass (jsd: pass 2 ran in reverse)
    grad_kernel<DT, MODE, MODE != 2><<<grid, kThreads, 0, st>>>(zs, zt, chunk, grad, P);
    RK_CUDA_CHECK(cudaGetLastError());
  }
  return Result{};
}

template <int DT>
Result launch_dtype(int mode, const char* zs, const char* zt, float* grad, const Params& P, cudaStream_t st) {
  switch (mode) {
    case kForwardKL: return launch_all<DT, 0>(zs, zt, grad, P, st);
    case kReverseKL: return launch_all<DT, 1>(zs, zt, grad, P, st);
    default: return launch_all<DT, 2>(zs, zt, grad, P, st);
  }
}

}  // namespace

int divergence_row_splits(int64_t rows, int64_t vocab) {
  constexpr int64_t kTargetBlocks = 1024;  // enough blocks to fill an H100/H200 several times
  constexpr int64_t kMinPerBlock = 16384;  // element pairs: at least 8 vectors per thread
  if (rows <= 0 || rows >= kTargetBlocks) return 1;
  int64_t s = (kTargetBlocks + rows - 1) / rows;
  const int64_t by_vocab = vocab / kMinPerBlock;
  if (s > by_vocab) s = by_vocab;
  if (s < 1) s = 1;
  if (s > 1024) s = 1024;
  return static_cast<int>(s);
}

Result vocab_divergence(const DivergenceArgs& x, void* stream) {
  if (x.dtype != kF32 && x.dtype != kBF16 && x.dtype != kF16) return bad_arg("dtype", x.dtype);
  if (x.rows < 0 || x.rows > 0x7fffffffLL) return bad_arg("rows", x.rows);
  if (x.vocab <= 0) return bad_arg("vocab", x.vocab);
  if (x.kind != kForwardKL && x.kind != kReverseKL && x.kind != kJSD) return bad_arg("kind", x.kind);
  if (!(x.beta >= 0.0 && x.beta <= 1.0)) return bad_arg("beta", 0);
  if (!(x.temperature > 0.0f) || !std::isfinite(x.temperature)) return bad_arg("temperature", 0);
  if (!std::isfinite(x.grad_scale)) return bad_arg("grad_scale", 0);
  if (x.rows == 0) return Result{};
  if (!x.logits) return bad_arg("logits", 0);
  if (!x.target) return bad_arg("target", 0);
  if (!x.div) return bad_arg("div", 0);
  const uintptr_t es = x.dtype == kF32 ? 4 : 2;
  if (reinterpret_cast<uintptr_t>(x.logits) % es) return bad_arg("logits (misaligned)", 0);
  if (reinterpret_cast<uintptr_t>(x.target) % es) return bad_arg("target (misaligned)", 0);
  if (reinterpret_cast<uintptr_t>(x.div) % 4) return bad_arg("div (misaligned)", 0);
  if (reinterpret_cast<uintptr_t>(x.labels) % 4) return bad_arg("labels (misaligned)", 0);
  if (reinterpret_cast<uintptr_t>(x.grad_rows) % 4) return bad_arg("grad_rows (misaligned)", 0);
  const size_t nv = static_cast<size_t>(x.rows) * static_cast<size_t>(x.vocab);
  if (x.grad) {
    if (reinterpret_cast<uintptr_t>(x.grad) % 4) return bad_arg("grad (misaligned)", 0);
    if (overlaps(x.grad, nv * 4, x.target, nv * es)) return bad_arg("grad (overlaps target)", 0);
    // grad may be the f32 logits themselves, but may not partly overlap them
    if (overlaps(x.grad, nv * 4, x.logits, nv * es) && !(x.dtype == kF32 && x.grad == x.logits))
      return bad_arg("grad (overlaps logits)", 0);
    if (overlaps(x.grad, nv * 4, x.div, static_cast<size_t>(x.rows) * 4)) return bad_arg("div (overlaps grad)", 0);
  }
  int mode = x.kind;
  if (mode == kJSD && x.beta == 0.0) mode = kForwardKL;
  if (mode == kJSD && x.beta == 1.0) mode = kReverseKL;

  Params P;
  P.n = x.rows;
  P.v = x.vocab;
  P.inv_tau = 1.0 / static_cast<double>(x.temperature);
  P.a = static_cast<float>(kLog2ed * P.inv_tau);
  P.beta = x.beta;
  P.fbeta = static_cast<float>(x.beta);
  P.fb1 = 1.0f - P.fbeta;
  P.lam = mode == kJSD ? static_cast<float>(std::log2(x.beta / (1.0 - x.beta))) : 0.0f;
  P.mask = x.row_mask;
  P.labels = x.labels;
  P.ignore = x.ignore_index;
  P.div = x.div;
  P.rowc = nullptr;
  P.grad_scale = x.grad_scale;
  P.grad_rows = x.grad_rows;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const char* zs = static_cast<const char*>(x.logits);
  const char* zt = static_cast<const char*>(x.target);
  switch (x.dtype) {
    case kBF16: return launch_dtype<kBF16>(mode, zs, zt, x.grad, P, st);
    case kF16: return launch_dtype<kF16>(mode, zs, zt, x.grad, P, st);
    default: return launch_dtype<kF32>(mode, zs, zt, x.grad, P, st);
  }
}

}  // namespace rkcuda
