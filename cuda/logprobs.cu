// Token log-probs on CUDA: forward (logp, lse, entropy) and backward (dL/dlogits), formulas and
// contracts in logprobs.h; the CPU twins are native/kernels/logprobs.{h,cc}.
//
// Layout of the work. One block of kThreads threads per (row, split). A row is split over several
// blocks only when there are too few rows to fill the card (logprobs_row_splits depends on N and V
// only, never on the card, so results are reproducible everywhere). Each block streams its range of
// the row once with 16-byte loads (8 bf16/f16 or 4 f32 per load, four loads in flight per thread);
// the first elements before a 16-byte boundary and the last ones after the final whole vector are
// read one by one, so any V and any (element-aligned) row start work.
//
// Statistics. Each thread keeps an online (m, s, t) in f32 registers, with a = log2(e)/tau:
//   m = max z,  s = sum 2^u,  t = sum 2^u u,  u = (z - m) a  (clamped at -150, like the CPU kernel)
// The (z - m) difference is taken first and only then scaled, so logits of magnitude 1e4 keep their
// precision (the CPU kernel does the same). When m grows by d = (m_old - m_new) a the pair becomes
// s' = 2^d s, t' = 2^d (t + d s). Threads merge with warp shuffles then through shared memory, in a
// fixed order; split rows merge their partial (m, s, t) in split order in a second tiny kernel. The
// final per-row arithmetic (log, divisions) is done in double, exactly as logprobs.cc does:
//   logp = (z_y - m)/tau - log s,  lse = m/tau + log s,  H = log s - ln2 t / s.
//
// Backward. Per element u = (z - c) a - b, grad = 2^u (k0 + k1 u) with k0 = -(g + h H)/tau,
// k1 = -h ln2 / tau, and g/tau added at the target afterwards (c = tau lse, b = 0 when lse is given,
// else c = m, b = log2 s from a statistics pass). Each element is read and written by the same
// thread, so grad may alias f32 logits.
#include "logprobs.h"
#include "host_common.cuh"
#include "row_common.cuh"
#include "logprobs_stats.cuh"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

namespace rkcuda {
namespace {

constexpr unsigned long long kNoRow = ~0ull;

// ---------------------------------------------------------------------------------------------
// Device helpers


__device__ __forceinline__ float load_any(const char* p, int dtype, int64_t i) {
  if (dtype == kBF16) return Elem<kBF16>::load(p, i);
  if (dtype == kF16) return Elem<kF16>::load(p, i);
  return Elem<kF32>::load(p, i);
}


// Where a statistics pass writes. mode 0: the forward outputs; mode 1: per-row (c, b, H) for the
// backward (c = m, b = log2 s).
struct StatsOut {
  float* logp;
  float* lse;
  float* entropy;
  float4* stats;
  unsigned long long* bad;
};

template <int MODE, bool WT>
__device__ __forceinline__ void finalize(const Acc& A, float zy, double inv_tau, int64_t r,
                                         const StatsOut& o) {
  const double log_s = log(static_cast<double>(A.s));
  const double h = WT ? rk::core::lp_entropy(log_s, A.t, A.s) : 0.0;
  if (MODE == 0) {
    o.logp[r] = static_cast<float>(rk::core::lp_logp(zy, A.m, inv_tau, log_s));
    o.lse[r] = static_cast<float>(rk::core::lp_lse(A.m, inv_tau, log_s));
    if (WT) o.entropy[r] = static_cast<float>(h);
  } else {
    o.stats[r] = make_float4(A.m, static_cast<float>(log_s * kLog2ed), static_cast<float>(h), 0.0f);
  }
}

// Ignored / bad rows of the forward. Returns true when the row is not to be computed.
template <int MODE, bool WT>
__device__ __forceinline__ bool skip_row(int32_t y, int64_t v, int32_t ignore, int64_t r,
                                         const StatsOut& o, bool write) {
  if (y == ignore) {
    if (MODE == 0 && write) {
      o.logp[r] = 0.0f;
      o.lse[r] = 0.0f;
      if (WT) o.entropy[r] = 0.0f;
    }
    return true;
  }
  if (y < 0 || static_cast<int64_t>(y) >= v) {
    if (MODE == 0 && write) {
      o.logp[r] = NAN;
      o.lse[r] = NAN;
      if (WT) o.entropy[r] = NAN;
      atomicMin(o.bad, static_cast<unsigned long long>(r));
    }
    return true;
  }
  return false;
}

// grid (N, splits). SPLIT: writes the block's partial (m, s, t) to partial[r * splits + split].
template <int DT, bool WT, bool SPLIT, int MODE>
__global__ void __launch_bounds__(kThreads)
    stats_kernel(const char* __restrict__ logits, int64_t v, const int32_t* __restrict__ targets,
                 float a, double inv_tau, int32_t ignore, int64_t chunk, Acc* __restrict__ partial,
                 StatsOut o) {
  __shared__ Acc sh[kWarps];
  const int64_t r = blockIdx.x;
  const int32_t y = targets[r];
  if (skip_row<MODE, WT>(y, v, ignore, r, o, !SPLIT && threadIdx.x == 0)) return;
  const int64_t lo = SPLIT ? static_cast<int64_t>(blockIdx.y) * chunk : 0;
  const int64_t hi = SPLIT ? min(v, lo + chunk) : v;
  const char* row = logits + r * v * Elem<DT>::kSize;
  // The target's logit, loaded before the stream so its latency hides behind it.
  const float zy = (MODE == 0 && !SPLIT && threadIdx.x == 0) ? Elem<DT>::load(row, y) : 0.0f;
  Acc A = acc_identity();
  range_stats<DT, WT>(row, lo, hi, a, A);
  A = block_reduce<WT>(A, a, sh);
  if (threadIdx.x != 0) return;
  if (SPLIT) {
    partial[r * gridDim.y + blockIdx.y] = A;
  } else {
    finalize<MODE, WT>(A, zy, inv_tau, r, o);
  }
}

// One thread per row: merges the split partials in split order.
template <bool WT, int MODE>
__global__ void merge_kernel(const Acc* __restrict__ partial, int splits, int64_t n,
                             const char* __restrict__ logits, int dtype, int64_t v,
                             const int32_t* __restrict__ targets, float a, double inv_tau,
                             int32_t ignore, StatsOut o) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= n) return;
  const int32_t y = targets[r];
  if (skip_row<MODE, WT>(y, v, ignore, r, o, true)) return;
  Acc A = partial[r * splits];
  for (int i = 1; i < splits; ++i) A = acc_merge<WT>(A, partial[r * splits + i], a);
  const int es = dtype == kF32 ? 4 : 2;
  finalize<MODE, WT>(A, MODE == 0 ? load_any(logits + r * v * es, dtype, y) : 0.0f, inv_tau, r, o);
}

// grid (N, splits): grad over [lo, hi) of row r.
template <int DT>
__global__ void __launch_bounds__(kThreads)
    grad_kernel(const char* logits, int64_t v, const int32_t* __restrict__ targets, int32_t ignore,
                float a, double tau, int64_t chunk, const float* __restrict__ gl,
                const float* __restrict__ gh, const float* __restrict__ lse,
                const float* __restrict__ ent, const float4* __restrict__ stats, float* grad,
                unsigned long long* bad) {
  using E = Elem<DT>;
  constexpr int ES = E::kSize, VW = E::kVec;
  const int64_t r = blockIdx.x;
  const int64_t lo = static_cast<int64_t>(blockIdx.y) * chunk;
  const int64_t hi = min(v, lo + chunk);
  float* out = grad + r * v;
  const int32_t y = targets[r];
  const bool ignored = y == ignore;
  if (ignored || y < 0 || static_cast<int64_t>(y) >= v) {
    const float fill = ignored ? 0.0f : NAN;
    for (int64_t i = lo + threadIdx.x; i < hi; i += kThreads) out[i] = fill;
    if (!ignored && threadIdx.x == 0 && blockIdx.y == 0)
      atomicMin(bad, static_cast<unsigned long long>(r));
    return;
  }
  // Row coefficients, as logprobs.cc computes them (double, then rounded to float).
  const double inv_tau = 1.0 / tau;
  const double g = gl[r];
  const double h = gh ? gh[r] : 0.0;
  double c, b, H;
  if (stats) {
    const float4 q = stats[r];
    c = q.x;
    b = q.y;
    H = q.z;
  } else {
    c = static_cast<double>(lse[r]) * tau;
    b = 0.0;
    H = ent ? ent[r] : 0.0;
  }
  const rk::core::LpGradRow q = rk::core::lp_grad_row(g, h, H, c, b, inv_tau);
  const float fc = q.c, fb = q.b, k0 = q.k0, k1 = q.k1, gy = q.gy;
  auto f = [&](float x) {
    float u = fmaf(x - fc, a, -fb);
    u = u < -150.0f ? -150.0f : u;
    return ex2(u) * fmaf(k1, u, k0);
  };

  const char* src = logits + (r * v + lo) * ES;
  float* dst = out + lo;
  const int64_t n = hi - lo;
  const int64_t head = head_elems<ES>(src, n);
  const int64_t nvec = (n - head) / VW;
  const bool vec_ok = (reinterpret_cast<uintptr_t>(dst + head) & 15u) == 0;
  const int64_t scalar_end = vec_ok ? head : n;
  const int64_t tail0 = vec_ok ? head + nvec * VW : n;
  for (int64_t i = threadIdx.x; i < scalar_end; i += kThreads) dst[i] = f(E::load(src, i));
  if (vec_ok) {
    const uint4* vp = reinterpret_cast<const uint4*>(src + head * ES);
    float4* op = reinterpret_cast<float4*>(dst + head);
    auto put = [&](int64_t k, const uint4& w) {
      float x[VW];
      E::unpack(w, x);
#pragma unroll
      for (int j = 0; j < VW; j += 4)
        op[k * (VW / 4) + j / 4] = make_float4(f(x[j]), f(x[j + 1]), f(x[j + 2]), f(x[j + 3]));
    };
    // Two loads in flight per thread. In place, the second load is of other elements than the
    // first store, so the order stays correct.
    int64_t k = threadIdx.x;
    for (; k + kThreads < nvec; k += 2 * kThreads) {
      const uint4 w0 = __ldcs(vp + k), w1 = __ldcs(vp + k + kThreads);
      put(k, w0);
      put(k + kThreads, w1);
    }
    if (k < nvec) put(k, __ldcs(vp + k));
    for (int64_t i = tail0 + threadIdx.x; i < n; i += kThreads) dst[i] = f(E::load(src, i));
  }
  __syncthreads();  // the target's element may have been written by another thread of this block
  if (threadIdx.x == 0 && y >= lo && y < hi) out[y] += gy;
}

// ---------------------------------------------------------------------------------------------
// Host side

using common::bad_arg;
using common::cuda_fail;
using common::Scratch;

Result check_common(const void* logits, int dtype, int64_t rows, int64_t vocab,
                    const int32_t* targets, float temperature) {
  if (dtype != kF32 && dtype != kBF16 && dtype != kF16) return bad_arg("dtype", dtype);
  if (rows < 0 || rows > 0x7fffffffLL) return bad_arg("rows", rows);
  if (vocab <= 0) return bad_arg("vocab", vocab);
  if (!(temperature > 0.0f) || !std::isfinite(temperature)) return bad_arg("temperature", 0);
  if (rows > 0 && !logits) return bad_arg("logits", 0);
  if (rows > 0 && !targets) return bad_arg("targets", 0);
  const uintptr_t es = dtype == kF32 ? 4 : 2;
  if (reinterpret_cast<uintptr_t>(logits) % es) return bad_arg("logits (misaligned)", 0);
  if (reinterpret_cast<uintptr_t>(targets) % 4) return bad_arg("targets (misaligned)", 0);
  return Result{};
}

template <int DT, bool WT, int MODE>
Result launch_stats_t(const char* logits, int64_t n, int64_t v, const int32_t* targets, float tau,
                      int32_t ignore, const StatsOut& o, cudaStream_t st) {
  const float a = static_cast<float>(kLog2ed / tau);
  const double inv_tau = 1.0 / tau;
  const int splits = logprobs_row_splits(n, v);
  if (splits == 1) {
    stats_kernel<DT, WT, false, MODE><<<dim3(static_cast<unsigned>(n), 1), kThreads, 0, st>>>(
        logits, v, targets, a, inv_tau, ignore, v, nullptr, o);
    RK_CUDA_CHECK(cudaGetLastError());
    return Result{};
  }
  const int64_t chunk = split_chunk(v, splits);
  const int used = static_cast<int>((v + chunk - 1) / chunk);
  Scratch ws(st);
  RK_CUDA_CHECK(cudaMallocAsync(&ws.p, sizeof(Acc) * static_cast<size_t>(n) * used, st));
  Acc* partial = static_cast<Acc*>(ws.p);
  stats_kernel<DT, WT, true, MODE><<<dim3(static_cast<unsigned>(n), used), kThreads, 0, st>>>(
      logits, v, targets, a, inv_tau, ignore, chunk, partial, o);
  RK_CUDA_CHECK(cudaGetLastError());
  const int mt = 128;
  merge_kernel<WT, MODE><<<static_cast<unsigned>((n + mt - 1) / mt), mt, 0, st>>>(
      partial, used, n, logits, DT, v, targets, a, inv_tau, ignore, o);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

template <int MODE>
Result launch_stats(const void* logits, int dtype, int64_t n, int64_t v, const int32_t* targets,
                    float tau, int32_t ignore, bool want_h, const StatsOut& o, cudaStream_t st) {
  const char* p = static_cast<const char*>(logits);
  switch (dtype) {
    case kBF16:
      return want_h ? launch_stats_t<kBF16, true, MODE>(p, n, v, targets, tau, ignore, o, st)
                    : launch_stats_t<kBF16, false, MODE>(p, n, v, targets, tau, ignore, o, st);
    case kF16:
      return want_h ? launch_stats_t<kF16, true, MODE>(p, n, v, targets, tau, ignore, o, st)
                    : launch_stats_t<kF16, false, MODE>(p, n, v, targets, tau, ignore, o, st);
    default:
      return want_h ? launch_stats_t<kF32, true, MODE>(p, n, v, targets, tau, ignore, o, st)
                    : launch_stats_t<kF32, false, MODE>(p, n, v, targets, tau, ignore, o, st);
  }
}

// A bad-row slot: the caller's, or one of our own that is read back (synchronously) at the end.
struct Slot {
  Scratch own;
  unsigned long long* p;
  Slot(unsigned long long* given, cudaStream_t st) : own(st), p(given) {}
  Result init() {
    if (p) return Result{};
    RK_CUDA_CHECK(cudaMallocAsync(&own.p, sizeof(unsigned long long), own.s));
    p = static_cast<unsigned long long*>(own.p);
    return bad_row_reset(p, own.s);
  }
  Result finish(const int32_t* targets) {
    if (!own.p) return Result{};
    return bad_row_read(p, targets, own.s);
  }
};

}  // namespace

int logprobs_row_splits(int64_t rows, int64_t vocab) {
  constexpr int64_t kTargetBlocks = 1024;   // enough blocks to fill an H100/H200 several times
  constexpr int64_t kMinPerBlock = 16384;   // elements: at least 8 vectors per thread
  if (rows <= 0 || rows >= kTargetBlocks) return 1;
  int64_t s = (kTargetBlocks + rows - 1) / rows;
  const int64_t by_vocab = vocab / kMinPerBlock;
  if (s > by_vocab) s = by_vocab;
  if (s < 1) s = 1;
  if (s > 1024) s = 1024;
  return static_cast<int>(s);
}

Result bad_row_reset(unsigned long long* slot, void* stream) {
  if (!slot) return bad_arg("bad_row", 0);
  RK_CUDA_CHECK(cudaMemsetAsync(slot, 0xff, sizeof(unsigned long long), static_cast<cudaStream_t>(stream)));
  return Result{};
}

Result bad_row_read(const unsigned long long* slot, const int32_t* targets, void* stream) {
  if (!slot) return bad_arg("bad_row", 0);
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  unsigned long long row = kNoRow;
  RK_CUDA_CHECK(cudaMemcpyAsync(&row, slot, sizeof row, cudaMemcpyDeviceToHost, st));
  RK_CUDA_CHECK(cudaStreamSynchronize(st));
  if (row == kNoRow) return Result{};
  int32_t y = 0;
  if (targets) {
    RK_CUDA_CHECK(cudaMemcpyAsync(&y, targets + row, sizeof y, cudaMemcpyDeviceToHost, st));
    RK_CUDA_CHECK(cudaStreamSynchronize(st));
  }
  Result r;
  r.code = kBadTarget;
  r.index = static_cast<int64_t>(row);
  r.value = y;
  r.where = "targets";
  return r;
}

Result token_logprobs_forward(const LogprobsForwardArgs& x, void* stream) {
  Result chk = check_common(x.logits, x.dtype, x.rows, x.vocab, x.targets, x.temperature);
  if (!chk.ok()) return chk;
  if (x.rows > 0 && !x.logp) return bad_arg("logp", 0);
  if (x.rows > 0 && !x.lse) return bad_arg("lse", 0);
  if (x.rows == 0) return Result{};
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  Slot slot(x.bad_row, st);
  chk = slot.init();
  if (!chk.ok()) return chk;
  StatsOut o{x.logp, x.lse, x.entropy, nullptr, slot.p};
  chk = launch_stats<0>(x.logits, x.dtype, x.rows, x.vocab, x.targets, x.temperature,
                        x.ignore_index, x.entropy != nullptr, o, st);
  if (!chk.ok()) return chk;
  return slot.finish(x.targets);
}

Result token_logprobs_backward(const LogprobsBackwardArgs& x, void* stream) {
  Result chk = check_common(x.logits, x.dtype, x.rows, x.vocab, x.targets, x.temperature);
  if (!chk.ok()) return chk;
  if (x.rows > 0 && !x.grad_logp) return bad_arg("grad_logp", 0);
  if (x.rows > 0 && !x.grad) return bad_arg("grad", 0);
  if (x.rows == 0) return Result{};
  if (reinterpret_cast<uintptr_t>(x.grad) % 4) return bad_arg("grad (misaligned)", 0);
  {  // grad may be the f32 logits themselves, but may not partly overlap them
    const uintptr_t l0 = reinterpret_cast<uintptr_t>(x.logits);
    const uintptr_t l1 = l0 + static_cast<uintptr_t>(x.rows * x.vocab) * (x.dtype == kF32 ? 4 : 2);
    const uintptr_t g0 = reinterpret_cast<uintptr_t>(x.grad);
    const uintptr_t g1 = g0 + static_cast<uintptr_t>(x.rows * x.vocab) * 4;
    const bool overlap = g0 < l1 && l0 < g1;
    if (overlap && !(x.dtype == kF32 && g0 == l0)) return bad_arg("grad (overlaps logits)", 0);
  }
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t n = x.rows, v = x.vocab;
  const bool reuse = x.lse != nullptr && (x.grad_entropy == nullptr || x.entropy != nullptr);
  Slot slot(x.bad_row, st);
  chk = slot.init();
  if (!chk.ok()) return chk;
  Scratch ws(st);
  float4* stats = nullptr;
  if (!reuse) {
    RK_CUDA_CHECK(cudaMallocAsync(&ws.p, sizeof(float4) * static_cast<size_t>(n), st));
    stats = static_cast<float4*>(ws.p);
    StatsOut o{nullptr, nullptr, nullptr, stats, slot.p};
    chk = launch_stats<1>(x.logits, x.dtype, n, v, x.targets, x.temperature, x.ignore_index,
                          x.grad_entropy != nullptr, o, st);
    if (!chk.ok()) return chk;
  }
  const int splits = logprobs_row_splits(n, v);
  const int64_t chunk = splits == 1 ? v : split_chunk(v, splits);
  const unsigned used = static_cast<unsigned>((v + chunk - 1) / chunk);
  const float a = static_cast<float>(kLog2ed / x.temperature);
  const double tau = x.temperature;
  const char* p = static_cast<const char*>(x.logits);
  const dim3 grid(static_cast<unsigned>(n), used);
  const float* lse = reuse ? x.lse : nullptr;
  const float* ent = reuse ? x.entropy : nullptr;
  switch (x.dtype) {
    case kBF16:
      grad_kernel<kBF16><<<grid, kThreads, 0, st>>>(p, v, x.targets, x.ignore_index, a, tau, chunk,
                                                   x.grad_logp, x.grad_entropy, lse, ent, stats,
                                                   x.grad, slot.p);
      break;
    case kF16:
      grad_kernel<kF16><<<grid, kThreads, 0, st>>>(p, v, x.targets, x.ignore_index, a, tau, chunk,
                                                  x.grad_logp, x.grad_entropy, lse, ent, stats,
                                                  x.grad, slot.p);
      break;
    default:
      grad_kernel<kF32><<<grid, kThreads, 0, st>>>(p, v, x.targets, x.ignore_index, a, tau, chunk,
                                                  x.grad_logp, x.grad_entropy, lse, ent, stats,
                                                  x.grad, slot.p);
  }
  RK_CUDA_CHECK(cudaGetLastError());
  return slot.finish(x.targets);
}

}  // namespace rkcuda
