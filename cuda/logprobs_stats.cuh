// The row statistics of the log-prob kernels on CUDA, shared by cuda/logprobs.cu (tokenLogprobs,
// tokenLogprobsBackward) and cuda/policy_logits.cu (policyLossFromLogits), so both take the same
// statistics in the same order (bit-identical log-probs): the online (m, s, t) accumulator, its
// merge, the fixed-order block reduction and the streaming of a row range (layout and formulas in
// logprobs.cu's header comment). Device code only; internal linkage (each .cu gets its own copy).
#pragma once
#include "row_common.cuh"

namespace rkcuda {
namespace {

struct Acc {
  float m, s, t;
};
__device__ __forceinline__ Acc acc_identity() { return Acc{-INFINITY, 0.0f, 0.0f}; }

// Adds K values to an online accumulator.
template <bool WT, int K>
__device__ __forceinline__ void acc_add(Acc& A, const float* x, float a) {
  float lm = x[0];
#pragma unroll
  for (int i = 1; i < K; ++i) lm = fmaxf(lm, x[i]);
  if (lm > A.m) {
    const float d = fmaxf((A.m - lm) * a, -150.0f);  // A.m = -inf gives -150: weight 0
    const float w = ex2_scale(d);
    if (WT) A.t = w * fmaf(d, A.s, A.t);
    A.s *= w;
    A.m = lm;
  }
  if (A.m == -INFINITY) {  // all -inf so far: only a NaN can matter
#pragma unroll
    for (int i = 0; i < K; ++i)
      if (x[i] != x[i]) A.s = x[i];
    return;
  }
#pragma unroll
  for (int i = 0; i < K; ++i) {
    float u = (x[i] - A.m) * a;
    if (WT) u = u < -150.0f ? -150.0f : u;  // 0 * -inf would poison t; keeps a NaN
    const float e = ex2(u);                 // ex2(-inf) = 0
    A.s += e;
    if (WT) A.t = fmaf(e, u, A.t);
  }
}

template <bool WT>
__device__ __forceinline__ Acc acc_merge(const Acc& A, const Acc& B, float a) {
  const float M = fmaxf(A.m, B.m);
  if (M == -INFINITY) return Acc{M, A.s + B.s, 0.0f};
  const float da = fmaxf((A.m - M) * a, -150.0f), db = fmaxf((B.m - M) * a, -150.0f);
  const float wa = ex2_scale(da), wb = ex2_scale(db);
  Acc r;
  r.m = M;
  r.s = A.s * wa + B.s * wb;
  r.t = WT ? wa * fmaf(da, A.s, A.t) + wb * fmaf(db, B.s, B.t) : 0.0f;
  return r;
}

// Fixed-order block reduction; every thread gets the result.
template <bool WT>
__device__ __forceinline__ Acc block_reduce(Acc A, float a, Acc* sh) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    Acc B;
    B.m = __shfl_down_sync(kFull, A.m, off);
    B.s = __shfl_down_sync(kFull, A.s, off);
    B.t = WT ? __shfl_down_sync(kFull, A.t, off) : 0.0f;
    A = acc_merge<WT>(A, B, a);
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) sh[warp] = A;
  __syncthreads();
  if (warp == 0) {
    A = lane < kWarps ? sh[lane] : acc_identity();
#pragma unroll
    for (int off = kWarps / 2; off > 0; off >>= 1) {
      Acc B;
      B.m = __shfl_down_sync(kFull, A.m, off);
      B.s = __shfl_down_sync(kFull, A.s, off);
      B.t = WT ? __shfl_down_sync(kFull, A.t, off) : 0.0f;
      A = acc_merge<WT>(A, B, a);
    }
    if (lane == 0) sh[0] = A;
  }
  __syncthreads();
  return sh[0];
}

// A 16-byte load: streaming (evict-first, __ldcs) or cached (kept in L2 for a second pass).
template <bool STREAM>
__device__ __forceinline__ uint4 ld16(const uint4* p) {
  if (STREAM) return __ldcs(p);
  return *p;
}

// One block accumulates elements [lo, hi) of a row into this thread's A. STREAM: the loads are
// marked evict-first (the row is not read again soon); false keeps the row in L2 for a second pass.
template <int DT, bool WT, bool STREAM = true>
__device__ __forceinline__ void range_stats(const char* row, int64_t lo, int64_t hi, float a, Acc& A) {
  using E = Elem<DT>;
  constexpr int ES = E::kSize, VW = E::kVec;
  const char* start = row + lo * ES;
  const int64_t n = hi - lo;
  const int64_t head = head_elems<ES>(start, n);
  const int64_t nvec = (n - head) / VW;
  const int64_t tail0 = head + nvec * VW;
  for (int64_t i = threadIdx.x; i < head; i += kThreads) {
    const float x = E::load(start, i);
    acc_add<WT, 1>(A, &x, a);
  }
  const uint4* vp = reinterpret_cast<const uint4*>(start + head * ES);
  int64_t k = threadIdx.x;
  for (; k + 3 * kThreads < nvec; k += 4 * kThreads) {
    const uint4 v0 = ld16<STREAM>(vp + k), v1 = ld16<STREAM>(vp + k + kThreads), v2 = ld16<STREAM>(vp + k + 2 * kThreads),
                v3 = ld16<STREAM>(vp + k + 3 * kThreads);
    float x[VW];
    E::unpack(v0, x);
    acc_add<WT, VW>(A, x, a);
    E::unpack(v1, x);
    acc_add<WT, VW>(A, x, a);
    E::unpack(v2, x);
    acc_add<WT, VW>(A, x, a);
    E::unpack(v3, x);
    acc_add<WT, VW>(A, x, a);
  }
  for (; k < nvec; k += kThreads) {
    float x[VW];
    E::unpack(ld16<STREAM>(vp + k), x);
    acc_add<WT, VW>(A, x, a);
  }
  for (int64_t i = tail0 + threadIdx.x; i < n; i += kThreads) {
    const float x = E::load(start, i);
    acc_add<WT, 1>(A, &x, a);
  }
}

// A row split of the statistics: chunk elements per block, a multiple of 8 (logprobs_row_splits).
inline int64_t split_chunk(int64_t v, int splits) {
  int64_t chunk = (v + splits - 1) / splits;
  return (chunk + 7) / 8 * 8;
}

}  // namespace
}  // namespace rkcuda
