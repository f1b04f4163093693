// Host emulation of the small part of CUDA that cuda/*.cu and native/driver/parity.cc use, so
// the kernels can be run (slowly, one OS thread per CUDA thread) on a machine without a GPU:
// scripts/cuda-emu-check.sh. It checks the kernels' logic (index ranges, alignment heads and tails,
// splits, reductions, bad targets), not their speed. Never on the include path of the real build.
#pragma once
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

// CUDA's isfinite is global in device code (cuda/seq_driver.cuh calls it unqualified).
using std::isfinite;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct uint4 {
  unsigned x, y, z, w;
};
struct uint2 {
  unsigned x, y;
};
struct float4 {
  float x, y, z, w;
};
struct float2 {
  float x, y;
};
inline float4 make_float4(float a, float b, float c, float d) { return float4{a, b, c, d}; }

namespace rkemu {
struct Block {
  std::unique_ptr<std::barrier<>> bar;
  std::vector<std::unique_ptr<std::barrier<>>> warps;
  std::vector<float> shfl;
};
inline thread_local dim3 tid, bid;
inline dim3 bdim, gdim;
inline thread_local Block* blk = nullptr;
inline std::mutex atomic_mu;

template <class... P, class... A>
void launch(dim3 g, dim3 b, void (*k)(P...), A... args) {
  gdim = g;
  bdim = b;
  for (unsigned z = 0; z < g.z; ++z)
    for (unsigned y = 0; y < g.y; ++y)
      for (unsigned x = 0; x < g.x; ++x) {
        Block B;
        B.bar = std::make_unique<std::barrier<>>(b.x);
        for (unsigned w = 0; w < (b.x + 31) / 32; ++w) B.warps.push_back(std::make_unique<std::barrier<>>(32));
        B.shfl.assign(b.x, 0.0f);
        std::vector<std::thread> ts;
        ts.reserve(b.x);
        for (unsigned t = 0; t < b.x; ++t)
          ts.emplace_back([&, t] {
            tid = dim3(t, 0, 0);
            bid = dim3(x, y, z);
            blk = &B;
            k(static_cast<P>(args)...);
          });
        for (auto& th : ts) th.join();
      }
}
}  // namespace rkemu

#define threadIdx (rkemu::tid)
#define blockIdx (rkemu::bid)
#define blockDim (rkemu::bdim)
#define gridDim (rkemu::gdim)

inline void __syncthreads() { rkemu::blk->bar->arrive_and_wait(); }
inline float __shfl_down_sync(unsigned, float v, int off) {
  const unsigned t = threadIdx.x, w = t / 32, lane = t % 32;
  auto& buf = rkemu::blk->shfl;
  buf[t] = v;
  rkemu::blk->warps[w]->arrive_and_wait();
  const float r = lane + off < 32 ? buf[w * 32 + lane + off] : v;
  rkemu::blk->warps[w]->arrive_and_wait();
  return r;
}
inline unsigned long long atomicMin(unsigned long long* p, unsigned long long v) {
  std::lock_guard<std::mutex> g(rkemu::atomic_mu);
  const unsigned long long old = *p;
  if (v < old) *p = v;
  return old;
}
template <class T>
inline T __ldcs(const T* p) {
  return *p;
}
template <class T>
inline void __stcs(T* p, T v) {
  *p = v;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
template <class T>
inline T min(T a, T b) {
  return b < a ? b : a;
}

// ---- runtime API ------------------------------------------------------------------------------
typedef int cudaError_t;
enum : int { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorNoDevice = 100 };
struct CUstream_st;
typedef CUstream_st* cudaStream_t;
struct CUevent_st;
typedef CUevent_st* cudaEvent_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum { cudaStreamNonBlocking = 1 };
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };
struct cudaDeviceProp {
  char name[256];
  int multiProcessorCount, major, minor;
  size_t totalGlobalMem;
};

inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorName(cudaError_t e) { return e ? "cudaErrorEmulated" : "cudaSuccess"; }
inline const char* cudaGetErrorString(cudaError_t e) { return e ? "emulated error" : "no error"; }
inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr, int) {
  *v = 4;
  return cudaSuccess;
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  std::memset(p, 0, sizeof *p);
  std::strcpy(p->name, "host emulation (one OS thread per CUDA thread)");
  p->multiProcessorCount = 1;
  p->major = 9;
  p->totalGlobalMem = size_t(1) << 32;
  return cudaSuccess;
}
inline cudaError_t cudaMalloc(void** p, size_t n) {
  // Exactly n bytes (256-aligned, like cudaMalloc), so AddressSanitizer sees any overrun.
  if (posix_memalign(p, 256, n ? n : 1) != 0) *p = nullptr;
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
template <class T>
inline cudaError_t cudaMalloc(T** p, size_t n) {
  return cudaMalloc(reinterpret_cast<void**>(p), n);
}
inline cudaError_t cudaMallocAsync(void** p, size_t n, cudaStream_t) { return cudaMalloc(p, n); }
inline cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return cudaFree(p); }
inline cudaError_t cudaMemset(void* p, int v, size_t n) {
  std::memset(p, v, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t = nullptr) { return cudaMemset(p, v, n); }
inline cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) {
  std::memmove(d, s, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind k, cudaStream_t = nullptr) {
  return cudaMemcpy(d, s, n, k);
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = nullptr;
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaMemGetInfo(size_t* f, size_t* t) {
  *f = *t = size_t(1) << 32;
  return cudaSuccess;
}
inline cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = nullptr;
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t = nullptr) { return cudaSuccess; }
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) {
  *ms = 1.0f;
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
