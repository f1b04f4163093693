// Shared pieces of the CUDA addon (reward_kernels_cuda.node): device arrays arrive from the facade
// (lib/cuda.ts) as a (pointer: BigInt, length: elements) pair of arguments; every CUDA failure becomes
// a JS Error whose message carries the CUDA error name (and whose `code` is that name).
//
// The facade checks every argument first; the binding rechecks every length it relies on, so a
// kernel never runs on arrays shorter than the shape it is given (a device pointer's real size
// cannot be known here: a wrapped pointer's length is the caller's word).
#pragma once
#include <cuda_runtime.h>

#include <functional>

#include "common.h"
#include "logprobs.h"  // rkcuda::Result

namespace rkcb {

struct DevArray {
  void* ptr = nullptr;
  size_t length = 0;  // elements
};

// info[i]: the pointer as a BigInt, info[i + 1]: the length in elements.
DevArray GetDevice(const Napi::CallbackInfo& info, size_t i, const char* name);
// Same; a null/undefined pointer gives {nullptr, 0}.
DevArray GetOptionalDevice(const Napi::CallbackInfo& info, size_t i, const char* name);
// Throws RangeError unless a.length == want.
void RequireDeviceLength(Napi::Env env, const DevArray& a, size_t want, const char* name);

// An Error "<what>: <cudaErrorName> (<description>)" with .code = the CUDA error name.
Napi::Error CudaError(Napi::Env env, const std::string& what, int cuda_error);
// The JS error for a failed rkcuda::Result: kCudaError -> Error (with .code), kBadArgument ->
// RangeError, kBadTarget -> the RangeError `bad_target` formats (row, target).
using BadTargetText = std::function<std::string(int64_t row, int64_t target)>;
Napi::Error ResultError(Napi::Env env, const rkcuda::Result& r, const BadTargetText& bad_target);

// The f32 at device address p + index, read back (synchronously) for an error message; NaN when p is
// null or the copy fails.
float DeviceF32(const float* p, int64_t index);
// The BadTargetText of a bad f32 mask weight found on the device (index = the element): the host
// path's message (rkb::MaskWeightMessage) with the weight read back. f32_mask: the device mask when
// it holds f32 weights, else null (the weight then reads NaN).
BadTargetText BadMaskWeightText(const void* f32_mask);

// Runs `fn` now (sync; throws the mapped error) or on the libuv pool returning a Promise (async).
using DeviceFn = std::function<rkcuda::Result()>;
Napi::Value RunDevice(const Napi::CallbackInfo& info, bool async, DeviceFn fn, BadTargetText bad_target);

// Runs a kernel writing `count` doubles to scratch device memory, then downloads them to `host`.
template <typename Launch>
inline rkcuda::Result WithScalars(size_t count, double* host, Launch launch) {
  rkcuda::Result r;
  double* d = nullptr;
  cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&d), sizeof(double) * count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    r.code = rkcuda::kCudaError;
    r.cuda_error = static_cast<int>(e);
    r.where = "cudaMalloc";
    return r;
  }
  r = launch(d);
  if (r.ok()) {
    e = cudaMemcpy(host, d, sizeof(double) * count, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
      cudaGetLastError();
      r.code = rkcuda::kCudaError;
      r.cuda_error = static_cast<int>(e);
      r.where = "cudaMemcpy";
    }
  }
  cudaFree(d);
  return r;
}

// WithScalars for a launch kernel(args, stream) whose argument struct names its device scalar output:
// runs kernel on a copy of a with (copy.*out) = the scratch, on the legacy default stream.
template <typename Args, typename Kernel>
inline rkcuda::Result KernelWithScalars(const Args& a, double* Args::*out, size_t count, double* host, Kernel kernel) {
  return WithScalars(count, host, [&a, out, &kernel](double* d) {
    Args b = a;
    b.*out = d;
    return kernel(b, nullptr);
  });
}

}  // namespace rkcb
