// rolloutCorrection on CUDA: see rollout_correction.h.
#include "rollout_correction.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "small_common.cuh"

namespace rkcuda {
namespace {

using small::kThreads;

__global__ void __launch_bounds__(kThreads) rc_validate(rk::RcArgs a, unsigned long long* bad) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (r >= a.B) return;
  const float* w = static_cast<const float*>(a.mask) + r * a.T;
  for (int64_t t = 0; t < a.T; ++t)
    if (!(w[t] >= 0.0f) || !isfinite(w[t])) {
      small::note_bad(bad, r * a.T + t);
      break;
    }
}

__global__ void __launch_bounds__(kThreads) rc_rows(rk::RcArgs a, rk::RolloutCorrectionParams p, rk::RcRow* rows) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (r >= a.B) return;
  rk::rc_row(a, p, r, 1.0, rows + r);
}

__global__ void rc_merge_one(const rk::RcRow* rows, int64_t B, rk::RolloutCorrectionParams p, double* s,
                             double* factor) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  *factor = rk::rc_merge(rows, B, p, s);
}

__global__ void __launch_bounds__(kThreads) rc_normalize(rk::RcArgs a, rk::RolloutCorrectionParams p,
                                                        const double* factor) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (r >= a.B) return;
  const double f = *factor;
  if (f != 1.0) rk::rc_row(a, p, r, f, nullptr);
}

}  // namespace

Result rollout_correction(const rk::RcArgs& a, const rk::RolloutCorrectionParams& p, double* scalars, void* stream_) {
  cudaStream_t st = static_cast<cudaStream_t>(stream_);
  constexpr int N = rk::kRcMetricCount;
  if (a.B < 0 || a.T <= 0) return small::bad_arg("seqLen", a.T);
  for (int k = 0; k < N; ++k) scalars[k] = 0;
  if (a.B == 0) return Result{};
  if (!a.trainer || !a.rollout || !a.mask_out) return small::bad_arg("trainer/rollout/mask_out", 0);
  const int grid = small::grid_for(a.B, kThreads);
  // Scratch: the rows (B), the scalars (N), the factor, the bad slot.
  small::Scratch s(st);
  Result r = s.alloc(static_cast<size_t>(a.B) * sizeof(rk::RcRow) + (N + 1) * sizeof(double) + sizeof(unsigned long long));
  if (!r.ok()) return r;
  rk::RcRow* rows = static_cast<rk::RcRow*>(s.p);
  double* dsc = reinterpret_cast<double*>(rows + a.B);
  double* factor = dsc + N;
  unsigned long long* bad = reinterpret_cast<unsigned long long*>(factor + 1);
  if (a.mask_kind == rk::MaskKind::F32) {
    RK_CUDA_CHECK(cudaMemsetAsync(bad, 0xff, sizeof(unsigned long long), st));
    rc_validate<<<grid, kThreads, 0, st>>>(a, bad);
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
  }
  rc_rows<<<grid, kThreads, 0, st>>>(a, p, rows);
  RK_CUDA_CHECK(cudaGetLastError());
  rc_merge_one<<<1, 1, 0, st>>>(rows, a.B, p, dsc, factor);
  RK_CUDA_CHECK(cudaGetLastError());
  if (a.weights && p.batch_normalize) {
    rc_normalize<<<grid, kThreads, 0, st>>>(a, p, factor);
    RK_CUDA_CHECK(cudaGetLastError());
  }
  RK_CUDA_CHECK(cudaMemcpyAsync(scalars, dsc, N * sizeof(double), cudaMemcpyDeviceToHost, st));
  RK_CUDA_CHECK(cudaStreamSynchronize(st));
  return Result{};
}

}  // namespace rkcuda
