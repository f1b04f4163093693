// Shared internals of the small CUDA kernel families (policy.cu, preference.cu, advantages.cu):
// error helpers, stream-ordered scratch, a "bad element" slot, fixed-order block reductions and
// x86-style min/max. Included by .cu files only (it uses CUDA types); everything has internal
// linkage.
//
// Error convention (cuda/result.h, the same as cuda/logprobs.h): kBadArgument for a null pointer or a bad size
// (where = the argument), kCudaError with the cudaError_t, and kBadTarget for a bad element of a
// data array (a mask weight that is negative or not finite, a length < 1, a group id out of range):
// where = the array, index = the element, value = its value (0 for a float). Bad elements are found
// on the device and never used as addresses: the lowest bad index goes into a device slot (an
// unsigned long long, ~0 = none, reset with rkcuda::bad_row_reset); the outputs of a call that saw
// one are NaN. Without a caller-owned slot the call allocates one, waits for the stream and returns
// kBadTarget; with one it stays asynchronous and the caller checks it (bad_row_read).
//
// Determinism: no float atomics. Every sum is a per-thread sum in a fixed order, then a fixed tree
// over the block in shared memory, then block partials added in order by one thread or one block.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "host_common.cuh"
#include "logprobs.h"  // bad_row_reset / bad_row_read (the bad-element slot)
#include "result.h"

namespace rkcuda {
namespace small {

constexpr int kThreads = 256;
constexpr unsigned long long kNone = ~0ull;

using common::bad_arg;
using common::cuda_fail;
using common::Scratch;

// The caller's bad-element slot, or one of our own read back (synchronously) by finish().
struct Slot {
  Scratch own;
  unsigned long long* p;
  Slot(unsigned long long* given, cudaStream_t st) : own(st), p(given) {}
  Result init() {
    if (p) return Result{};
    Result r = own.alloc(sizeof(unsigned long long));
    if (!r.ok()) return r;
    p = static_cast<unsigned long long*>(own.p);
    RK_CUDA_CHECK(cudaMemsetAsync(p, 0xff, sizeof(unsigned long long), own.s));
    return Result{};
  }
  bool owned() const { return own.p != nullptr; }
  // Own slot: waits for the stream; kBadTarget naming `what` when an element was bad. The value
  // is read back from `values` (int32, device) when given.
  Result finish(const char* what, const int32_t* values = nullptr) {
    if (!own.p) return Result{};
    unsigned long long idx = kNone;
    RK_CUDA_CHECK(cudaMemcpyAsync(&idx, p, sizeof idx, cudaMemcpyDeviceToHost, own.s));
    RK_CUDA_CHECK(cudaStreamSynchronize(own.s));
    if (idx == kNone) return Result{};
    int32_t v = 0;
    if (values) {
      RK_CUDA_CHECK(cudaMemcpyAsync(&v, values + idx, sizeof v, cudaMemcpyDeviceToHost, own.s));
      RK_CUDA_CHECK(cudaStreamSynchronize(own.s));
    }
    Result r;
    r.code = kBadTarget;
    r.index = static_cast<int64_t>(idx);
    r.value = v;
    r.where = what;
    return r;
  }
};

inline int grid_for(int64_t n, int per_block) {
  const int64_t g = (n + per_block - 1) / per_block;
  return static_cast<int>(g < 1 ? 1 : g);
}

#if defined(RK_CUDA_EMULATION)  // host emulation (cuda/emu): round-to-nearest is the host default
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline int atomicAdd(int* p, int v) {
  std::lock_guard<std::mutex> g(rkemu::atomic_mu);
  const int old = *p;
  *p = old + v;
  return old;
}
#endif

// x86 SIMD min/max semantics (the CPU kernels' vmin/vmax): the second operand when either is NaN.
__host__ __device__ __forceinline__ float mxf(float a, float b) { return a > b ? a : b; }
__host__ __device__ __forceinline__ float mnf(float a, float b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ bool isnan_d(double x) { return x != x; }

// Sum of one double per thread over the block (kThreads threads), a fixed tree; every thread gets
// the total. `sh` is kThreads doubles of shared memory; the call ends synchronised.
__device__ __forceinline__ double block_sum(double v, double* sh) {
  const int t = threadIdx.x;
  __syncthreads();
  sh[t] = v;
  __syncthreads();
  for (int off = kThreads / 2; off > 0; off >>= 1) {
    if (t < off) sh[t] += sh[t + off];
    __syncthreads();
  }
  const double r = sh[0];
  __syncthreads();
  return r;
}

// Contiguous share [b, e) of n items for thread t of kThreads (so in-order per-thread sums).
__device__ __forceinline__ void share(int64_t n, int t, int64_t* b, int64_t* e) {
  const int64_t per = (n + kThreads - 1) / kThreads;
  *b = t * per < n ? t * per : n;
  *e = *b + per < n ? *b + per : n;
}

__device__ __forceinline__ void note_bad(unsigned long long* slot, int64_t i) {
  atomicMin(slot, static_cast<unsigned long long>(i));
}

}  // namespace small
}  // namespace rkcuda
