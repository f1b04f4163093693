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

// bandwidthSamples(bytes, reps, kind): a Float64Array of `reps` rates in GB/s (kind 0 read, 1 copy).
Napi::Value BandwidthSamples(const Napi::CallbackInfo& info) {
  int64_t bytes = rkb::GetInteger(info, 0, "bytes", 1 << 20, int64_t(1) << 34);
  int64_t reps = rkb::GetInteger(info, 1, "reps", 1, 1000);
  int64_t kind = rkb::GetInteger(info, 2, "kind", 0, 1);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), static_cast<size_t>(reps));
  rk::bandwidth_samples(static_cast<size_t>(bytes), static_cast<int>(reps), static_cast<rk::BandwidthKind>(kind), out.Data());
  return out;
}

// expThroughputSamples(reps): a Float64Array of `reps` rates in G elements/s (probe.h).
Napi::Value ExpThroughputSamples(const Napi::CallbackInfo& info) {
  int64_t reps = rkb::GetInteger(info, 0, "reps", 1, 1000);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), static_cast<size_t>(reps));
  rk::exp_throughput_samples(static_cast<int>(reps), out.Data());
  return out;
}

// Exports F as `name`; failures name `call`, the facade's function (a bad_alloc of the bandwidth
// probe's buffer, a thread the pool cannot start: rkb::NameFailures).
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
void Export(Napi::Env env, Napi::Object exports, const char* name, const char* call) {
  exports.Set(name, Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    return rkb::NameFailures(info.Env(), static_cast<const char*>(info.Data()), false, [&] { return F(info); });
  }, nullptr, const_cast<char*>(call)));
}

void InitRuntime(Napi::Env env, Napi::Object exports) {
  Export<SetNumThreads>(env, exports, "setNumThreads", "setNumThreads");
  Export<GetNumThreads>(env, exports, "getNumThreads", "getNumThreads");
  Export<DefaultNumThreads>(env, exports, "defaultNumThreads", "defaultNumThreads");
  Export<SimdInfo>(env, exports, "simdInfo", "simdLevel");
  Export<SetSimd>(env, exports, "setSimd", "setSimdLevel");
  // the same probe under two names, so that a failure names the facade function that was called
  Export<BandwidthSamples>(env, exports, "readBandwidthSamples", "measureReadBandwidth");
  Export<BandwidthSamples>(env, exports, "bandwidthSamples", "measureBandwidth");
  Export<ExpThroughputSamples>(env, exports, "expThroughputSamples", "measureExpThroughput");
}

}  // namespace

RK_REGISTER_BINDING(runtime, InitRuntime);
