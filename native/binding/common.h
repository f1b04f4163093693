// Shared pieces of the N-API layer: the registry every family file adds itself to, zero-copy
// TypedArray unpacking with rechecked sizes, and the sync/Promise runner.
//
// The TypeScript facade validates every argument first; these checks are the native layer's own
// guarantee that it never reads or writes out of bounds, whatever it is given.
#pragma once
#include <napi.h>

#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "types.h"

namespace rkb {

using InitFn = void (*)(Napi::Env, Napi::Object);
struct Registrar {
  Registrar(const char* name, InitFn fn);
};
// RK_REGISTER_BINDING(logprobs, InitLogprobs) in a family's binding file adds its exports.
#define RK_REGISTER_BINDING(name, fn) static ::rkb::Registrar rk_registrar_##name(#name, fn)

// An op's entry point: F(info, async) runs the op now (sync) or returns a Promise (async).
using OpFn = Napi::Value (*)(const Napi::CallbackInfo&, bool);
// Runs `body()` for the JS call `name` (+ "Async" when async). A C++ exception other than
// Napi::Error would escape into Node-API and abort the process; here a std::bad_alloc becomes a
// RangeError "<call>: out of memory" and any other std::exception an Error "<call>: <what>".
template <class Body>
Napi::Value NameFailures(Napi::Env env, const char* name, bool async, Body&& body);
[[noreturn]] void ThrowNamed(Napi::Env env, const char* name, bool async, const std::exception* e);
// The JS name of an op call (its ExportOp name is each function's data), for failure messages.
std::string CallName(const Napi::CallbackInfo& info, bool async);

// Exports F as `name` (sync) and `name + "Async"` (Promise). `name` must be a string with static
// storage (a literal): it is each function's data, by which failures name the call.
template <OpFn F>
void ExportOp(Napi::Env env, Napi::Object exports, const char* name) {
  void* data = const_cast<char*>(name);
  exports.Set(name, Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    return NameFailures(i.Env(), static_cast<const char*>(i.Data()), false, [&] { return F(i, false); });
  }, nullptr, data));
  exports.Set(std::string(name) + "Async", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    return NameFailures(i.Env(), static_cast<const char*>(i.Data()), true, [&] { return F(i, true); });
  }, nullptr, data));
}

template <class Body>
Napi::Value NameFailures(Napi::Env env, const char* name, bool async, Body&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    ThrowNamed(env, name, async, &e);
  }
}
// A family's ops are listed once, in its decoder header ops/<family>.h, as an X-macro of
// X(jsName, EntryPoint) entries (e.g. RK_POLICY_OPS). Each addon defines entry points of those names
// (sync / Promise by their bool) and registers them all with RK_REGISTER_OPS(tag, RK_POLICY_OPS),
// after its anonymous namespace.
#define RK_EXPORT_OP_ENTRY(js, fn) ::rkb::ExportOp<fn>(env, exports, #js);
#define RK_REGISTER_OPS(tag, LIST)                                                     \
  static void rk_init_ops_##tag(Napi::Env env, Napi::Object exports) { LIST(RK_EXPORT_OP_ENTRY) } \
  RK_REGISTER_BINDING(tag, rk_init_ops_##tag)

struct Array {
  void* data = nullptr;
  size_t length = 0;  // elements
  napi_typedarray_type type = napi_float32_array;
};

// The TypedArray at info[i] of one of the allowed element types; throws TypeError otherwise.
Array GetArray(const Napi::CallbackInfo& info, size_t i, const char* name,
               std::initializer_list<napi_typedarray_type> allowed);
// Same, but null/undefined give an empty Array with data == nullptr.
Array GetOptionalArray(const Napi::CallbackInfo& info, size_t i, const char* name,
                       std::initializer_list<napi_typedarray_type> allowed);
// Throws RangeError unless a.length == want.
void RequireLength(Napi::Env env, const Array& a, size_t want, const char* name);
double GetNumber(const Napi::CallbackInfo& info, size_t i, const char* name);
int64_t GetInteger(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi);

// Runs `fn` now (sync) or on the libuv pool returning a Promise (async). In the async form the
// arrays in info are kept alive until the Promise settles. `fn` returns a message: empty on
// success, otherwise the text of a RangeError. A std::bad_alloc out of `fn` is the call's
// "out of memory" RangeError in both forms (sync: thrown on through ExportOp's NameFailures).
// `done` (optional): in the async form it runs on the main thread when `fn` has returned, before
// the Promise settles, and only while the environment can run JS (OpArgs::Done copies the outputs
// of a HostSnapshot back); in the sync form it runs right after `fn`.
using KernelFn = std::function<std::string()>;
using Completion = std::function<void(Napi::Env)>;
Napi::Value Run(const Napi::CallbackInfo& info, bool async, KernelFn fn, Completion done = nullptr);

// Settles an AsyncWorker's Promise from OnOK/OnError: `settle()` resolves or rejects it. An
// environment that is going away (a worker terminated while its call ran: its loop still completes
// the work it had queued) can no longer run JS and Node-API refuses to settle there; nothing can
// observe that Promise any more, so it gets no settlement and nothing throws (an exception out of
// OnOK/OnError would abort the whole process). Checked first (CanRunJs), and a refusal that races
// with a termination begun on another thread is caught.
bool CanRunJs(napi_env env);
template <class Settle>
void SettlePromise(napi_env env, Settle&& settle) noexcept {
  if (!CanRunJs(env)) return;
  try {
    settle();
  } catch (const Napi::Error&) {
    // Only a dying environment refuses a settlement; there is no one left to tell.
  }
}

// x as JavaScript's String(x) writes it: NaN, Infinity, -Infinity, integers without a fraction, the
// shortest digits that read back as x otherwise (exponents as 1e-7 / 1e+21). Error messages quote
// received numbers this way, as the facade's own checks do.
std::string JsNumber(double x);

// The message for a kernel status (empty when ok).
std::string StatusMessage(const rk::Status& st, int64_t vocab);
// The message of a bad f32 mask weight w at mask[index] (negative or not finite), as the host facade
// words it; both addons throw it (the CUDA one reads w back from the device).
std::string MaskWeightMessage(int64_t index, float w);

// Calls every registered family's init on `exports`. Each addon (the CPU one, native/binding/addon.cc,
// and the CUDA one, native/cuda_binding/addon.cc) links its own copy of this file and so has its own
// registry: a family file registers into the addon it is linked into.
Napi::Object InitAll(Napi::Env env, Napi::Object exports);

}  // namespace rkb
