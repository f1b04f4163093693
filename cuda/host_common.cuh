// Host-side pieces shared by every CUDA family (logprobs.cu, divergence.cu and, through
// small_common.cuh, policy/preference/advantages.cu): turning CUDA errors into rkcuda::Result,
// the check macro, and stream-ordered scratch memory.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "result.h"  // rkcuda::Result

namespace rkcuda {
namespace common {

// A kCudaError result naming the failed call; clears a non-sticky error so later calls start clean.
inline Result cuda_fail(cudaError_t e, const char* where) {
  Result r;
  r.code = kCudaError;
  r.cuda_error = static_cast<int>(e);
  r.where = where;
  cudaGetLastError();
  return r;
}

inline Result bad_arg(const char* what, int64_t index) {
  Result r;
  r.code = kBadArgument;
  r.where = what;
  r.index = index;
  return r;
}

// Returns the failure from the enclosing function when a CUDA call fails.
#define RK_CUDA_CHECK(call)                                                        \
  do {                                                                             \
    const cudaError_t rk_cuda_e_ = (call);                                         \
    if (rk_cuda_e_ != cudaSuccess) return ::rkcuda::common::cuda_fail(rk_cuda_e_, #call); \
  } while (0)

// Stream-ordered scratch memory, freed (stream-ordered) on scope exit.
struct Scratch {
  void* p = nullptr;
  cudaStream_t s;
  explicit Scratch(cudaStream_t st) : s(st) {}
  ~Scratch() {
    if (p) cudaFreeAsync(p, s);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  Result alloc(size_t bytes) {
    RK_CUDA_CHECK(cudaMallocAsync(&p, bytes < 16 ? 16 : bytes, s));
    return Result{};
  }
};

}  // namespace common
}  // namespace rkcuda
