// CUDA entry points of the token log-prob kernels (cuda/logprobs.h), sync and Promise forms. Every
// array is a (pointer: bigint, length) pair of arguments:
//   tokenLogprobs(logits, n, dtype, vocab, targets, n, temperature, ignoreIndex,
//                 logp, n, lse, n, entropy|null, n)
//   tokenLogprobsBackward(logits, n, dtype, vocab, targets, n, temperature, ignoreIndex,
//                         gradLogp, n, gradEntropy|null, n, lse|null, n, entropy|null, n, grad, n)
// The kernels run on the legacy default stream and check the targets on the device: the call waits
// for the stream (the Promise form waits on a libuv thread) and a bad target becomes the same
// RangeError text as the CPU path's.
#include <climits>
#include <cmath>

#include "cuda_common.h"
#include "logprobs.h"

namespace {

struct Common {
  rkcb::DevArray logits, targets;
  int dtype;
  int64_t rows, vocab;
  float temperature;
  int32_t ignore;
};

Common GetCommon(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Common c;
  c.logits = rkcb::GetDevice(info, 0, "logits");
  c.dtype = static_cast<int>(rkb::GetInteger(info, 2, "dtype", 0, 2));
  c.vocab = rkb::GetInteger(info, 3, "vocab", 1, INT32_MAX);
  if (c.logits.length % static_cast<size_t>(c.vocab) != 0)
    throw Napi::RangeError::New(env, "logits: expected a length that is a multiple of vocab (" +
                                         std::to_string(c.vocab) + "), received " +
                                         std::to_string(c.logits.length));
  c.rows = static_cast<int64_t>(c.logits.length) / c.vocab;
  if (c.rows > INT32_MAX) throw Napi::RangeError::New(env, "logits: more than 2^31 - 1 rows");
  c.targets = rkcb::GetDevice(info, 4, "targets");
  rkcb::RequireDeviceLength(env, c.targets, static_cast<size_t>(c.rows), "targets");
  const double t = rkb::GetNumber(info, 6, "temperature");
  if (!(t > 0) || !std::isfinite(t) || !std::isfinite(1.0 / t) || !std::isfinite(static_cast<float>(t)))
    throw Napi::RangeError::New(env, "temperature: expected a finite positive number");
  c.temperature = static_cast<float>(t);
  c.ignore = static_cast<int32_t>(rkb::GetInteger(info, 7, "ignoreIndex", INT32_MIN, INT32_MAX));
  return c;
}

// The CPU path's text (lib/logprobs.ts checkCommon), so both paths throw the same RangeError.
rkcb::BadTargetText BadTarget(int64_t vocab, int32_t ignore) {
  return [vocab, ignore](int64_t row, int64_t y) {
    return "targets[" + std::to_string(row) + "]: expected an id in [0, " + std::to_string(vocab) +
           ") or ignoreIndex (" + std::to_string(ignore) + "), received " + std::to_string(y);
  };
}

Napi::Value Forward(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  const Common c = GetCommon(info);
  const size_t n = static_cast<size_t>(c.rows);
  rkcb::DevArray logp = rkcb::GetDevice(info, 8, "out.logprobs");
  rkcb::RequireDeviceLength(env, logp, n, "out.logprobs");
  rkcb::DevArray lse = rkcb::GetDevice(info, 10, "out.logsumexp");
  rkcb::RequireDeviceLength(env, lse, n, "out.logsumexp");
  rkcb::DevArray ent = rkcb::GetOptionalDevice(info, 12, "out.entropy");
  if (ent.ptr) rkcb::RequireDeviceLength(env, ent, n, "out.entropy");
  rkcuda::LogprobsForwardArgs a;
  a.logits = c.logits.ptr;
  a.dtype = c.dtype;
  a.rows = c.rows;
  a.vocab = c.vocab;
  a.targets = static_cast<const int32_t*>(c.targets.ptr);
  a.temperature = c.temperature;
  a.ignore_index = c.ignore;
  a.logp = static_cast<float*>(logp.ptr);
  a.lse = static_cast<float*>(lse.ptr);
  a.entropy = static_cast<float*>(ent.ptr);
  return rkcb::RunDevice(info, async, [a]() { return rkcuda::token_logprobs_forward(a, nullptr); },
                         BadTarget(c.vocab, c.ignore));
}

Napi::Value Backward(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  const Common c = GetCommon(info);
  const size_t n = static_cast<size_t>(c.rows);
  rkcb::DevArray g = rkcb::GetDevice(info, 8, "gradLogprobs");
  rkcb::RequireDeviceLength(env, g, n, "gradLogprobs");
  rkcb::DevArray h = rkcb::GetOptionalDevice(info, 10, "gradEntropy");
  if (h.ptr) rkcb::RequireDeviceLength(env, h, n, "gradEntropy");
  rkcb::DevArray lse = rkcb::GetOptionalDevice(info, 12, "logsumexp");
  if (lse.ptr) rkcb::RequireDeviceLength(env, lse, n, "logsumexp");
  rkcb::DevArray ent = rkcb::GetOptionalDevice(info, 14, "entropy");
  if (ent.ptr) rkcb::RequireDeviceLength(env, ent, n, "entropy");
  rkcb::DevArray grad = rkcb::GetDevice(info, 16, "out");
  rkcb::RequireDeviceLength(env, grad, c.logits.length, "out");
  if (grad.ptr == c.logits.ptr && c.logits.length > 0 && c.dtype != rkcuda::kF32)
    throw Napi::TypeError::New(env, "out: in-place gradient needs f32 logits");
  rkcuda::LogprobsBackwardArgs a;
  a.logits = c.logits.ptr;
  a.dtype = c.dtype;
  a.rows = c.rows;
  a.vocab = c.vocab;
  a.targets = static_cast<const int32_t*>(c.targets.ptr);
  a.temperature = c.temperature;
  a.ignore_index = c.ignore;
  a.grad_logp = static_cast<const float*>(g.ptr);
  a.grad_entropy = static_cast<const float*>(h.ptr);
  a.lse = static_cast<const float*>(lse.ptr);
  a.entropy = static_cast<const float*>(ent.ptr);
  a.grad = static_cast<float*>(grad.ptr);
  return rkcb::RunDevice(info, async, [a]() { return rkcuda::token_logprobs_backward(a, nullptr); },
                         BadTarget(c.vocab, c.ignore));
}

void InitCudaLogprobs(Napi::Env env, Napi::Object exports) {
  exports.Set("tokenLogprobs", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Forward(i, false); }));
  exports.Set("tokenLogprobsAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Forward(i, true); }));
  exports.Set("tokenLogprobsBackward", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Backward(i, false); }));
  exports.Set("tokenLogprobsBackwardAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Backward(i, true); }));
}

}  // namespace

RK_REGISTER_BINDING(cuda_logprobs, InitCudaLogprobs);
