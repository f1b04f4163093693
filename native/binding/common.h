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
// success, otherwise the text of a RangeError.
using KernelFn = std::function<std::string()>;
Napi::Value Run(const Napi::CallbackInfo& info, bool async, KernelFn fn);

// The message for a kernel status (empty when ok).
std::string StatusMessage(const rk::Status& st, int64_t vocab);

// Calls every registered family's init on `exports`. Each addon (the CPU one, native/binding/addon.cc,
// and the CUDA one, native/cuda_binding/addon.cc) links its own copy of this file and so has its own
// registry: a family file registers into the addon it is linked into.
Napi::Object InitAll(Napi::Env env, Napi::Object exports);

}  // namespace rkb
