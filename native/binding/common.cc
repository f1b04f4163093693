#include "common.h"

#include "slots.h"

#include <charconv>
#include <cmath>
#include <new>

namespace rkb {
namespace {

std::vector<std::pair<const char*, InitFn>>& Registry() {
  static std::vector<std::pair<const char*, InitFn>> r;
  return r;
}

const char* TypeName(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

std::string Allowed(std::initializer_list<napi_typedarray_type> allowed) {
  std::string s;
  for (auto t : allowed) {
    if (!s.empty()) s += " or ";
    s += TypeName(t);
  }
  return s;
}

class KernelWorker : public Napi::AsyncWorker {
 public:
  KernelWorker(Napi::Env env, KernelFn fn, std::vector<Napi::ObjectReference> keep, Completion done = nullptr)
      : Napi::AsyncWorker(env, "reward-kernels"), fn_(std::move(fn)), keep_(std::move(keep)),
        deferred_(Napi::Promise::Deferred::New(env)), done_(std::move(done)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { message_ = fn_(); }
  void OnOK() override {
    Napi::Env env = Env();
    SettlePromise(env, [&] {
      if (done_) done_(env);
      if (message_.empty()) deferred_.Resolve(env.Undefined());
      else deferred_.Reject(Napi::RangeError::New(env, message_).Value());
    });
  }
  void OnError(const Napi::Error& e) override {
    SettlePromise(Env(), [&] { deferred_.Reject(e.Value()); });
  }

 private:
  KernelFn fn_;
  std::vector<Napi::ObjectReference> keep_;
  Napi::Promise::Deferred deferred_;
  std::string message_;
  Completion done_;  // on the main thread, before the Promise settles (Run's `done`)
};

}  // namespace

bool CanRunJs(napi_env env) {
  // Node-API calls that may run JS answer napi_pending_exception (napi_cannot_run_js from
  // Node-API 10) once the environment cannot run JS any more, though no exception is pending;
  // napi_strict_equals is such a call, without side effects.
  bool pending = false;
  napi_value undefined = nullptr;
  bool same = false;
  return napi_is_exception_pending(env, &pending) == napi_ok && !pending &&
         napi_get_undefined(env, &undefined) == napi_ok &&
         napi_strict_equals(env, undefined, undefined, &same) == napi_ok;
}

Registrar::Registrar(const char* name, InitFn fn) { Registry().emplace_back(name, fn); }

Array GetArray(const Napi::CallbackInfo& info, size_t i, const char* name,
               std::initializer_list<napi_typedarray_type> allowed) {
  Napi::Env env = info.Env();
  Napi::Value v = info[i];
  if (!v.IsTypedArray())
    throw Napi::TypeError::New(env, std::string(name) + ": expected " + Allowed(allowed));
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  bool ok = false;
  for (auto t : allowed) ok = ok || ta.TypedArrayType() == t;
  if (!ok)
    throw Napi::TypeError::New(env, std::string(name) + ": expected " + Allowed(allowed) +
                                        ", received " + TypeName(ta.TypedArrayType()));
  Array a;
  a.type = ta.TypedArrayType();
  a.length = ta.ElementLength();
  a.data = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  if (a.length > 0 && ta.ArrayBuffer().Data() == nullptr)
    throw Napi::TypeError::New(env, std::string(name) + ": its ArrayBuffer is detached");
  return a;
}

Array GetOptionalArray(const Napi::CallbackInfo& info, size_t i, const char* name,
                       std::initializer_list<napi_typedarray_type> allowed) {
  if (info[i].IsNull() || info[i].IsUndefined()) return Array{};
  return GetArray(info, i, name, allowed);
}

void RequireLength(Napi::Env env, const Array& a, size_t want, const char* name) {
  if (a.length != want)
    throw Napi::RangeError::New(env, std::string(name) + ": expected length " + std::to_string(want) +
                                         ", received " + std::to_string(a.length));
}

double GetNumber(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

int64_t GetInteger(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi) {
  double d = GetNumber(info, i, name);
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || std::floor(d) != d)
    throw Napi::RangeError::New(info.Env(), std::string(name) + ": expected an integer in [" +
                                                std::to_string(lo) + ", " + std::to_string(hi) +
                                                "], received " + JsNumber(d));
  return static_cast<int64_t>(d);
}

std::string CallName(const Napi::CallbackInfo& info, bool async) {
  const char* name = static_cast<const char*>(info.Data());
  return std::string(name ? name : "reward-kernels") + (async ? "Async" : "");
}

void ThrowNamed(Napi::Env env, const char* name, bool async, const std::exception* e) {
  const std::string call = std::string(name ? name : "reward-kernels") + (async ? "Async" : "");
  if (dynamic_cast<const std::bad_alloc*>(e)) throw Napi::RangeError::New(env, call + ": out of memory");
  throw Napi::Error::New(env, call + ": " + e->what());
}

namespace {
// On the libuv pool a std::bad_alloc would reject with a bare "std::bad_alloc"; name the call.
KernelFn NameOutOfMemory(KernelFn fn, std::string call) {
  return [fn = std::move(fn), call = std::move(call)]() -> std::string {
    try {
      return fn();
    } catch (const std::bad_alloc&) {
      return call + ": out of memory";
    }
  };
}
}  // namespace

Napi::Value Run(const Napi::CallbackInfo& info, bool async, KernelFn fn, Completion done) {
  Napi::Env env = info.Env();
  if (!async) {
    std::string msg = fn();  // a std::exception goes on to ExportOp's NameFailures
    if (done) done(env);
    if (!msg.empty()) throw Napi::RangeError::New(env, msg);
    return env.Undefined();
  }
  fn = NameOutOfMemory(std::move(fn), CallName(info, true));
  std::vector<Napi::ObjectReference> keep = KeepAlive(info);
  auto* w = new KernelWorker(env, std::move(fn), std::move(keep), std::move(done));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

std::string StatusMessage(const rk::Status& st, int64_t vocab) {
  switch (st.code) {
    case rk::Status::Ok: return "";
    case rk::Status::BadTarget:
      return "targets[" + std::to_string(st.index) + "]: expected an id in [0, " +
             std::to_string(vocab) + ") or ignoreIndex, received " + std::to_string(st.value);
    case rk::Status::BadShape:
      return "vocab: expected a positive integer, received " + std::to_string(st.value);
    case rk::Status::BadIndex:
      return "index " + std::to_string(st.index) + ": value " + std::to_string(st.value) +
             " is out of range";
  }
  return "kernel failed";
}

std::string JsNumber(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x == 0) return "0";  // -0 too, as String(-0)
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  std::string s(buf, r.ptr);
  // to_chars writes e-07 / e+21; JavaScript e-7 / e+21
  const size_t e = s.find('e');
  if (e != std::string::npos && e + 2 < s.size() && s[e + 2] == '0') s.erase(e + 2, 1);
  return s;
}

std::string MaskWeightMessage(int64_t index, float w) {
  return "mask[" + std::to_string(index) + "]: expected a finite weight >= 0, received " + JsNumber(w);
}

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  for (auto& [name, fn] : Registry()) fn(env, exports);
  return exports;
}

}  // namespace rkb
