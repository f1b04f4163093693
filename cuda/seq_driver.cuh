// The CUDA driver of the sequence ops (native/core/seq_op.h): one thread per row runs the shared
// seq_op_row (the same code as the CPU driver, native/kernels/seq_driver.h), then one thread merges the
// row results in row order, so the result is deterministic and matches the CPU's order of sums.
// A bad f32 mask weight is kBadTarget (where "mask", index = the element); outputs are then unused.
//   mask: (B, T) u8 / f32 / none; inputs (B, T) or (B); gradients (B, T); scalars: host doubles
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "../native/core/seq_op.h"
#include "small_common.cuh"

namespace rkcuda {
namespace seq {

using small::kThreads;

template <int I, int G>
__global__ void __launch_bounds__(kThreads) mask_rows(rk::SeqOpArgs<I, G> a, double* rm, unsigned long long* bad) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (r >= a.B) return;
  if (a.mask_kind == rk::SeqMask::F32) {
    const float* w = static_cast<const float*>(a.mask) + r * a.T;
    for (int64_t t = 0; t < a.T; ++t)
      if (!(w[t] >= 0.0f) || !isfinite(w[t])) {
        small::note_bad(bad, r * a.T + t);
        break;
      }
  }
  rm[r] = rk::seq_row_mask(a, r);
}

// rm[B] holds the total after this (one thread, row order).
__global__ void total_mask(const double* rm, int64_t B, double* total) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  double s = 0;
  for (int64_t r = 0; r < B; ++r) s += rm[r];
  *total = s;
}

template <typename Op>
__global__ void __launch_bounds__(kThreads) rows(rk::SeqOpArgs<Op::kInputs, Op::kGrads> a, typename Op::Params p,
                                                 const double* rm, const double* total, double* out) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (r >= a.B) return;
  constexpr int W = 1 + Op::kMetrics;
  double* o = out + r * W;
  for (int k = 1; k < W; ++k) o[k] = 0;
  o[0] = rk::seq_op_row<Op>(a, p, r, rm[r], Op::factor(p, rm[r], *total, a.B, a.T), o + 1);
}

template <typename Op>
__global__ void merge(const double* out, int64_t B, const double* total, double* scalars) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  constexpr int K = Op::kMetrics;
  double l = 0, ms[K > 0 ? K : 1] = {};
  for (int64_t r = 0; r < B; ++r) {
    l += out[r * (1 + K)];
    for (int k = 0; k < K; ++k) ms[k] += out[r * (1 + K) + 1 + k];
  }
  const double tot = *total;
  scalars[0] = l;
  for (int k = 0; k < K; ++k) scalars[1 + k] = tot > 0 ? ms[k] / tot : 0.0;
  scalars[1 + K] = tot;
}

// Runs Op on the device; `scalars` (host, seq_op_scalar_count<Op>() doubles) is filled before return.
template <typename Op>
Result run(const rk::SeqOpArgs<Op::kInputs, Op::kGrads>& a, const typename Op::Params& p, double* scalars,
           void* stream_) {
  cudaStream_t st = static_cast<cudaStream_t>(stream_);
  constexpr int N = rk::seq_op_scalar_count<Op>();
  if (a.B < 0 || a.T <= 0) return small::bad_arg("seqLen", a.T);
  if (a.B == 0) {
    for (int k = 0; k < N; ++k) scalars[k] = 0;
    return Result{};
  }
  constexpr int W = 1 + Op::kMetrics;
  // Scratch: rm (B + 1: the total last), row results (B * W), scalars (N), the bad slot.
  const size_t doubles = static_cast<size_t>(a.B) + 1 + static_cast<size_t>(a.B) * W + N;
  small::Scratch s(st);
  Result r = s.alloc(doubles * sizeof(double) + sizeof(unsigned long long));
  if (!r.ok()) return r;
  double* rm = static_cast<double*>(s.p);
  double* total = rm + a.B;
  double* out = total + 1;
  double* dsc = out + a.B * W;
  unsigned long long* bad = reinterpret_cast<unsigned long long*>(dsc + N);
  RK_CUDA_CHECK(cudaMemsetAsync(bad, 0xff, sizeof(unsigned long long), st));
  const int grid = small::grid_for(a.B, kThreads);
  mask_rows<Op::kInputs, Op::kGrads><<<grid, kThreads, 0, st>>>(a, rm, bad);
  RK_CUDA_CHECK(cudaGetLastError());
  total_mask<<<1, 1, 0, st>>>(rm, a.B, total);
  RK_CUDA_CHECK(cudaGetLastError());
  unsigned long long idx = small::kNone;
  RK_CUDA_CHECK(cudaMemcpyAsync(&idx, bad, sizeof idx, cudaMemcpyDeviceToHost, st));
  RK_CUDA_CHECK(cudaStreamSynchronize(st));
  if (idx != small::kNone) {
    Result b;
    b.code = kBadTarget;
    b.where = "mask";
    b.index = static_cast<int64_t>(idx);
    return b;
  }
  rows<Op><<<grid, kThreads, 0, st>>>(a, p, rm, total, out);
  RK_CUDA_CHECK(cudaGetLastError());
  merge<Op><<<1, 1, 0, st>>>(out, a.B, total, dsc);
  RK_CUDA_CHECK(cudaGetLastError());
  RK_CUDA_CHECK(cudaMemcpyAsync(scalars, dsc, N * sizeof(double), cudaMemcpyDeviceToHost, st));
  RK_CUDA_CHECK(cudaStreamSynchronize(st));
  return Result{};
}

}  // namespace seq
}  // namespace rkcuda
