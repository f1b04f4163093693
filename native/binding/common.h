// Shared pieces of the N-API layer: the registry every family file adds itself to, zero-copy
// TypedArray unpacking with rechecked sizes, and the sync/Promise runner.
//
// The TypeScript facade validates every argument first; these checks are the native layer's own
// guarantee that it never reads or writes out of bounds, whatever it is given.
#pragma once
#include <napi.h>

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
// Exports F as `name` (sync) and `name + "Async"` (Promise).
template <OpFn F>
void ExportOp(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return F(i, false); }));
  exports.Set(std::string(name) + "Async", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return F(i, true); }));
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
// success, otherwise the text of a RangeError. `done` (optional, async form): runs on the main
// thread when `fn` has returned, before the Promise settles (OpArgs::Done copies the outputs of a
// HostSnapshot back); in the sync form it runs right after `fn`.
using KernelFn = std::function<std::string()>;
using Completion = std::function<void(Napi::Env)>;
Napi::Value Run(const Napi::CallbackInfo& info, bool async, KernelFn fn, Completion done = nullptr);

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
