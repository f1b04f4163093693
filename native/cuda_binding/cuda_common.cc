#include "cuda_common.h"

#include <cmath>

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

namespace rkcb {

DevArray GetDevice(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Env env = info.Env();
  if (!info[i].IsBigInt())
    throw Napi::TypeError::New(env, std::string(name) + ": expected a device pointer (bigint)");
  bool lossless = false;
  const uint64_t p = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(env, std::string(name) + ": device pointer out of range");
  DevArray a;
  a.ptr = reinterpret_cast<void*>(static_cast<uintptr_t>(p));
  a.length = static_cast<size_t>(rkb::GetInteger(info, i + 1, name, 0, int64_t(1) << 53));
  if (a.length > 0 && a.ptr == nullptr)
    throw Napi::TypeError::New(env, std::string(name) + ": null device pointer with a nonzero length");
  return a;
}

DevArray GetOptionalDevice(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info[i].IsNull() || info[i].IsUndefined()) return DevArray{};
  return GetDevice(info, i, name);
}

void RequireDeviceLength(Napi::Env env, const DevArray& a, size_t want, const char* name) {
  if (a.length != want)
    throw Napi::RangeError::New(env, std::string(name) + ": expected length " + std::to_string(want) +
                                         ", received " + std::to_string(a.length));
}

Napi::Error CudaError(Napi::Env env, const std::string& what, int cuda_error) {
  const cudaError_t e = static_cast<cudaError_t>(cuda_error);
  const std::string name = cudaGetErrorName(e);
  Napi::Error err = Napi::Error::New(env, "reward-kernels CUDA: " + what + ": " + name + " (" +
                                              cudaGetErrorString(e) + ")");
  err.Set("code", Napi::String::New(env, name));
  return err;
}

Napi::Error ResultError(Napi::Env env, const rkcuda::Result& r, const BadTargetText& bad_target) {
  switch (r.code) {
    case rkcuda::kBadTarget:
      return Napi::RangeError::New(env, bad_target(r.index, r.value));
    case rkcuda::kBadArgument: {
      char buf[256];
      return Napi::RangeError::New(env, std::string("reward-kernels CUDA: ") + rkcuda::format_error(r, buf, sizeof buf));
    }
    default:
      return CudaError(env, r.where, r.cuda_error);
  }
}

namespace {

class DeviceWorker : public Napi::AsyncWorker {
 public:
  DeviceWorker(Napi::Env env, DeviceFn fn, BadTargetText bad_target)
      : Napi::AsyncWorker(env, "reward-kernels-cuda"), fn_(std::move(fn)),
        bad_target_(std::move(bad_target)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { result_ = fn_(); }
  // A worker terminated mid-call leaves no one to settle for (rkb::SettlePromise).
  void OnOK() override {
    Napi::Env env = Env();
    rkb::SettlePromise(env, [&] {
      if (result_.ok()) deferred_.Resolve(env.Undefined());
      else deferred_.Reject(ResultError(env, result_, bad_target_).Value());
    });
  }
  void OnError(const Napi::Error& e) override {
    rkb::SettlePromise(Env(), [&] { deferred_.Reject(e.Value()); });
  }

 private:
  DeviceFn fn_;
  BadTargetText bad_target_;
  Napi::Promise::Deferred deferred_;
  rkcuda::Result result_;
};

}  // namespace

Napi::Value RunDevice(const Napi::CallbackInfo& info, bool async, DeviceFn fn, BadTargetText bad_target) {
  Napi::Env env = info.Env();
  if (!async) {
    const rkcuda::Result r = fn();
    if (!r.ok()) throw ResultError(env, r, bad_target);
    return env.Undefined();
  }
  // The device arrays themselves are kept alive by the facade until the Promise settles.
  auto* w = new DeviceWorker(env, std::move(fn), std::move(bad_target));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

float DeviceF32(const float* p, int64_t index) {
  float v = NAN;
  if (p && cudaMemcpy(&v, p + index, sizeof(float), cudaMemcpyDeviceToHost) != cudaSuccess) {
    cudaGetLastError();
    v = NAN;
  }
  return v;
}

BadTargetText BadMaskWeightText(const void* f32_mask) {
  const float* w = static_cast<const float*>(f32_mask);
  return [w](int64_t index, int64_t) { return rkb::MaskWeightMessage(index, DeviceF32(w, index)); };
}

}  // namespace rkcb
