// Process-wide settings: thread count, SIMD level, and the bandwidth probe used by the benchmarks.
#include "common.h"
#include "cpu.h"
#include "probe.h"
#include "threadpool.h"

namespace {

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  rk::set_num_threads(static_cast<int>(rkb::GetInteger(info, 0, "threads", 1, 1024)));
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), rk::get_num_threads());
}

Napi::Value DefaultNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), rk::default_num_threads());
}

Napi::Value SimdInfo(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("active", rk::isa_name(rk::active_isa()));
  o.Set("detected", rk::isa_name(rk::detected_isa()));
  return o;
}

Napi::Value SetSimd(const Napi::CallbackInfo& info) {
  int64_t level = rkb::GetInteger(info, 0, "level", 0, 2);
  return Napi::Boolean::New(info.Env(), rk::set_isa(static_cast<rk::Isa>(level)));
}

Napi::Value ReadBandwidth(const Napi::CallbackInfo& info) {
  int64_t bytes = rkb::GetInteger(info, 0, "bytes", 1 << 20, int64_t(1) << 34);
  int64_t reps = rkb::GetInteger(info, 1, "reps", 1, 1000);
  return Napi::Number::New(info.Env(), rk::read_bandwidth_gbs(static_cast<size_t>(bytes), static_cast<int>(reps)));
}

void InitRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("defaultNumThreads", Napi::Function::New(env, DefaultNumThreads));
  exports.Set("simdInfo", Napi::Function::New(env, SimdInfo));
  exports.Set("setSimd", Napi::Function::New(env, SetSimd));
  exports.Set("readBandwidth", Napi::Function::New(env, ReadBandwidth));
}

}  // namespace

RK_REGISTER_BINDING(runtime, InitRuntime);
