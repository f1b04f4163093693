// maskTruncatedCompletions on a CUDA device (truncation.h): one thread per row calls the core formula.
#include "truncation.h"

#include <cuda_runtime.h>

#include "small_common.cuh"

namespace rkcuda {
namespace {

using namespace small;

__global__ void __launch_bounds__(kThreads) truncation_rows(const int32_t* ids, rk::TokenMask mask, int64_t rows, int64_t T,
                                                           int64_t eos, int64_t pad, float* out_mask, float* truncated) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (r >= rows) return;
  rk::core::truncation_row(ids, mask, r, T, eos, pad, out_mask, truncated);
}

}  // namespace

Result mask_truncated_completions(const int32_t* ids, rk::TokenMask mask, int64_t rows, int64_t T, int64_t eos, int64_t pad,
                                  float* out_mask, float* truncated, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (rows < 0 || rows > 0x7fffffffLL * kThreads / 2) return bad_arg("rows", rows);
  if (T < 0) return bad_arg("T", T);
  if (rows == 0) return Result{};
  if (!ids && T > 0) return bad_arg("ids", 0);
  if (!out_mask && T > 0) return bad_arg("out_mask", 0);
  if (!truncated) return bad_arg("truncated", 0);
  truncation_rows<<<grid_for(rows, kThreads), kThreads, 0, st>>>(ids, mask, rows, T, eos, pad, out_mask, truncated);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

}  // namespace rkcuda
