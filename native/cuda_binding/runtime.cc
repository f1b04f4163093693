// Device discovery and device memory for lib/cuda.ts (DeviceArray):
//   status() -> { deviceCount, error, runtimeVersion, driverVersion }   never throws
//   device(i) -> { name, totalMemory, major, minor, multiprocessors }
//   malloc(bytes) -> bigint (0n for 0 bytes);  free(ptr)
//   upload(ptr, typedArray) host -> device;  download(typedArray, ptr) device -> host
//   copy(dst, src, bytes) device -> device;  synchronize()
// Everything runs on CUDA's current device (device 0 unless the process changed it) and on the
// legacy default stream, so copies and kernels are ordered with each other.
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda_common.h"

namespace {

void Check(Napi::Env env, cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so the next call starts clean
    throw rkcb::CudaError(env, what, static_cast<int>(e));
  }
}

uint64_t GetPointer(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsBigInt()) throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a bigint");
  bool lossless = false;
  const uint64_t p = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(info.Env(), std::string(name) + ": pointer out of range");
  return p;
}

Napi::Value Status(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    n = 0;
  }
  o.Set("deviceCount", Napi::Number::New(env, n));
  o.Set("error", Napi::String::New(env, e == cudaSuccess ? "" : cudaGetErrorName(e)));
  o.Set("errorText", Napi::String::New(env, e == cudaSuccess ? "" : cudaGetErrorString(e)));
#if !defined(RK_CUDA_EMULATION)
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion(&rt);
  if (cudaDriverGetVersion(&drv) != cudaSuccess) drv = 0;
  o.Set("runtimeVersion", Napi::Number::New(env, rt));
  o.Set("driverVersion", Napi::Number::New(env, drv));
  o.Set("emulated", Napi::Boolean::New(env, false));
#else
  o.Set("runtimeVersion", Napi::Number::New(env, 0));
  o.Set("driverVersion", Napi::Number::New(env, 0));
  o.Set("emulated", Napi::Boolean::New(env, true));
#endif
  return o;
}

Napi::Value Device(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int i = static_cast<int>(rkb::GetInteger(info, 0, "index", 0, 1 << 20));
  cudaDeviceProp p;
  Check(env, cudaGetDeviceProperties(&p, i), "cudaGetDeviceProperties");
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", Napi::String::New(env, p.name));
  o.Set("totalMemory", Napi::Number::New(env, static_cast<double>(p.totalGlobalMem)));
  o.Set("major", Napi::Number::New(env, p.major));
  o.Set("minor", Napi::Number::New(env, p.minor));
  o.Set("multiprocessors", Napi::Number::New(env, p.multiProcessorCount));
  return o;
}

Napi::Value Malloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t bytes = rkb::GetInteger(info, 0, "bytes", 0, int64_t(1) << 53);
  if (bytes == 0) return Napi::BigInt::New(env, static_cast<uint64_t>(0));
  void* p = nullptr;
  Check(env, cudaMalloc(&p, static_cast<size_t>(bytes)),
        ("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str());
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)));
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  const uint64_t p = GetPointer(info, 0, "ptr");
  if (p != 0) Check(info.Env(), cudaFree(reinterpret_cast<void*>(static_cast<uintptr_t>(p))), "cudaFree");
  return info.Env().Undefined();
}

Napi::Value Upload(const Napi::CallbackInfo& info) {
  const uint64_t p = GetPointer(info, 0, "ptr");
  if (!info[1].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "source: expected a TypedArray");
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  const size_t bytes = ta.ByteLength();
  if (bytes == 0) return info.Env().Undefined();
  const void* src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  Check(info.Env(), cudaMemcpy(reinterpret_cast<void*>(static_cast<uintptr_t>(p)), src, bytes, cudaMemcpyHostToDevice),
        "cudaMemcpy host to device");
  return info.Env().Undefined();
}

Napi::Value Download(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "out: expected a TypedArray");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  const uint64_t p = GetPointer(info, 1, "ptr");
  const size_t bytes = ta.ByteLength();
  if (bytes == 0) return info.Env().Undefined();
  void* dst = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  Check(info.Env(), cudaMemcpy(dst, reinterpret_cast<const void*>(static_cast<uintptr_t>(p)), bytes, cudaMemcpyDeviceToHost),
        "cudaMemcpy device to host");
  return info.Env().Undefined();
}

Napi::Value Copy(const Napi::CallbackInfo& info) {
  const uint64_t dst = GetPointer(info, 0, "dst");
  const uint64_t src = GetPointer(info, 1, "src");
  const int64_t bytes = rkb::GetInteger(info, 2, "bytes", 0, int64_t(1) << 53);
  if (bytes == 0) return info.Env().Undefined();
  Check(info.Env(), cudaMemcpy(reinterpret_cast<void*>(static_cast<uintptr_t>(dst)),
                               reinterpret_cast<const void*>(static_cast<uintptr_t>(src)),
                               static_cast<size_t>(bytes), cudaMemcpyDeviceToDevice),
        "cudaMemcpy device to device");
  return info.Env().Undefined();
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  Check(info.Env(), cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  return info.Env().Undefined();
}

void InitRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("status", Napi::Function::New(env, Status));
  exports.Set("device", Napi::Function::New(env, Device));
  exports.Set("malloc", Napi::Function::New(env, Malloc));
  exports.Set("free", Napi::Function::New(env, Free));
  exports.Set("upload", Napi::Function::New(env, Upload));
  exports.Set("download", Napi::Function::New(env, Download));
  exports.Set("copy", Napi::Function::New(env, Copy));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize));
}

}  // namespace

RK_REGISTER_BINDING(cuda_runtime, InitRuntime);
