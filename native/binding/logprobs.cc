// N-API entry points of the token log-prob kernels (sync and Promise forms).
//   tokenLogprobs(logits, dtype, vocab, targets, temperature, ignoreIndex, logp, lse, entropy|null)
//   tokenLogprobsBackward(logits, dtype, vocab, targets, temperature, ignoreIndex,
//                         gradLogp, gradEntropy|null, lse|null, entropy|null, grad)
#include "common.h"
#include <climits>
#include <cmath>

#include "logprobs.h"

namespace {

// Arguments 0-5, shared by both entry points: logits, dtype, vocab, targets, temperature, ignoreIndex.
struct Logits {
  rk::LogitsView view;
  rkb::Array array;
  rkb::Array targets;
  double temperature;
  int64_t ignore;
};

double GetTemperature(const Napi::CallbackInfo& info, size_t i);

Logits GetLogits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t dtype = rkb::GetInteger(info, 1, "dtype", 0, 2);
  Logits l;
  l.array = rkb::GetArray(info, 0, "logits",
                          {dtype == 0 ? napi_float32_array : napi_uint16_array});
  int64_t vocab = rkb::GetInteger(info, 2, "vocab", 1, INT32_MAX);
  if (l.array.length % static_cast<size_t>(vocab) != 0)
    throw Napi::RangeError::New(env, "logits: expected a length that is a multiple of vocab (" +
                                         std::to_string(vocab) + "), received " +
                                         std::to_string(l.array.length));
  l.view = rk::LogitsView{l.array.data, static_cast<rk::DType>(dtype),
                          static_cast<int64_t>(l.array.length) / vocab, vocab};
  l.targets = rkb::GetArray(info, 3, "targets", {napi_int32_array});
  rkb::RequireLength(env, l.targets, static_cast<size_t>(l.view.rows), "targets");
  l.temperature = GetTemperature(info, 4);
  l.ignore = rkb::GetInteger(info, 5, "ignoreIndex", INT32_MIN, INT32_MAX);
  return l;
}

double GetTemperature(const Napi::CallbackInfo& info, size_t i) {
  double t = rkb::GetNumber(info, i, "temperature");
  if (!(t > 0) || !std::isfinite(t) || !std::isfinite(1.0 / t))
    throw Napi::RangeError::New(info.Env(), "temperature: expected a finite positive number");
  return t;
}

Napi::Value Forward(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  Logits l = GetLogits(info);
  const size_t n = static_cast<size_t>(l.view.rows);
  const rkb::Array targets = l.targets;
  const double temperature = l.temperature;
  const int64_t ignore = l.ignore;
  rkb::Array logp = rkb::GetArray(info, 6, "out.logprobs", {napi_float32_array});
  rkb::RequireLength(env, logp, n, "out.logprobs");
  rkb::Array lse = rkb::GetArray(info, 7, "out.logsumexp", {napi_float32_array});
  rkb::RequireLength(env, lse, n, "out.logsumexp");
  rkb::Array ent = rkb::GetOptionalArray(info, 8, "out.entropy", {napi_float32_array});
  if (ent.data) rkb::RequireLength(env, ent, n, "out.entropy");
  rk::LogitsView view = l.view;
  auto fn = [=]() {
    rk::Status st = rk::token_logprobs_forward(
        view, static_cast<const int32_t*>(targets.data), static_cast<float>(temperature),
        static_cast<int32_t>(ignore), static_cast<float*>(logp.data), static_cast<float*>(lse.data),
        static_cast<float*>(ent.data));
    return rkb::StatusMessage(st, view.vocab);
  };
  return rkb::Run(info, async, fn);
}

Napi::Value Backward(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  Logits l = GetLogits(info);
  const size_t n = static_cast<size_t>(l.view.rows);
  const rkb::Array targets = l.targets;
  const double temperature = l.temperature;
  const int64_t ignore = l.ignore;
  rkb::Array g = rkb::GetArray(info, 6, "gradLogprobs", {napi_float32_array});
  rkb::RequireLength(env, g, n, "gradLogprobs");
  rkb::Array h = rkb::GetOptionalArray(info, 7, "gradEntropy", {napi_float32_array});
  if (h.data) rkb::RequireLength(env, h, n, "gradEntropy");
  rkb::Array lse = rkb::GetOptionalArray(info, 8, "logsumexp", {napi_float32_array});
  if (lse.data) rkb::RequireLength(env, lse, n, "logsumexp");
  rkb::Array ent = rkb::GetOptionalArray(info, 9, "entropy", {napi_float32_array});
  if (ent.data) rkb::RequireLength(env, ent, n, "entropy");
  rkb::Array grad = rkb::GetArray(info, 10, "out", {napi_float32_array});
  rkb::RequireLength(env, grad, l.array.length, "out");
  const char* gb = static_cast<const char*>(grad.data);
  const char* lb = static_cast<const char*>(l.array.data);
  const size_t lbytes = l.array.length * static_cast<size_t>(rk::dtype_size(l.view.dtype));
  if (gb == lb && l.view.dtype != rk::DType::F32)
    throw Napi::TypeError::New(env, "out: in-place gradient needs f32 logits");
  if (gb != lb && l.array.length > 0 && gb < lb + lbytes && lb < gb + grad.length * 4)
    throw Napi::RangeError::New(env, "out: overlaps logits without being the same memory");
  rk::LogitsView view = l.view;
  auto fn = [=]() {
    rk::Status st = rk::token_logprobs_backward(
        view, static_cast<const int32_t*>(targets.data), static_cast<float>(temperature),
        static_cast<int32_t>(ignore), static_cast<const float*>(g.data),
        static_cast<const float*>(h.data), static_cast<const float*>(lse.data),
        static_cast<const float*>(ent.data), static_cast<float*>(grad.data));
    return rkb::StatusMessage(st, view.vocab);
  };
  return rkb::Run(info, async, fn);
}

void InitLogprobs(Napi::Env env, Napi::Object exports) {
  exports.Set("tokenLogprobs", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Forward(i, false); }));
  exports.Set("tokenLogprobsAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Forward(i, true); }));
  exports.Set("tokenLogprobsBackward", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Backward(i, false); }));
  exports.Set("tokenLogprobsBackwardAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Backward(i, true); }));
}

}  // namespace

RK_REGISTER_BINDING(logprobs, InitLogprobs);
