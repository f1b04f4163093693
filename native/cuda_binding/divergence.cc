// CUDA entry points of the full-vocabulary divergences (cuda/divergence.h), sync and Promise forms.
// Every array is a (pointer: bigint, length) pair of arguments:
//   vocabDivergence(logits, n, target, n, dtype, vocab, kind, beta, temperature,
//                   mask|null, n, labels|null, n, ignoreIndex,
//                   divergence, n, gradScale, gradRows|null, n, grad|null, n)
// The facade (lib/divergence.ts) checks everything first; this rechecks every length and value the
// kernel relies on. Labels are only compared on the device (no bad-row slot), so the only errors
// after the launch are CUDA errors. The call waits for the legacy default stream (the Promise form
// waits on a libuv thread), like the log-prob entry points.
#include <climits>
#include <cmath>

#include <cuda_runtime.h>

#include "cuda_common.h"
#include "divergence.h"

namespace {

Napi::Value Divergence(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  const rkcb::DevArray logits = rkcb::GetDevice(info, 0, "logits");
  const rkcb::DevArray target = rkcb::GetDevice(info, 2, "targetLogits");
  const int dtype = static_cast<int>(rkb::GetInteger(info, 4, "dtype", 0, 2));
  const int64_t vocab = rkb::GetInteger(info, 5, "vocab", 1, INT32_MAX);
  if (logits.length % static_cast<size_t>(vocab) != 0)
    throw Napi::RangeError::New(env, "logits: expected a length that is a multiple of vocab (" +
                                         std::to_string(vocab) + "), received " + std::to_string(logits.length));
  rkcb::RequireDeviceLength(env, target, logits.length, "targetLogits");
  const int64_t rows = static_cast<int64_t>(logits.length) / vocab;
  if (rows > INT32_MAX) throw Napi::RangeError::New(env, "logits: more than 2^31 - 1 rows");
  const size_t n = static_cast<size_t>(rows);
  const int kind = static_cast<int>(rkb::GetInteger(info, 6, "divergence", 0, 2));
  const double beta = rkb::GetNumber(info, 7, "beta");
  if (!(beta >= 0.0 && beta <= 1.0)) throw Napi::RangeError::New(env, "beta: expected a number in [0, 1]");
  const double t = rkb::GetNumber(info, 8, "temperature");
  if (!(t > 0) || !std::isfinite(t) || !std::isfinite(1.0 / t) || !std::isfinite(static_cast<float>(t)))
    throw Napi::RangeError::New(env, "temperature: expected a finite positive number");
  const rkcb::DevArray mask = rkcb::GetOptionalDevice(info, 9, "mask");
  if (mask.ptr) rkcb::RequireDeviceLength(env, mask, n, "mask");
  const rkcb::DevArray labels = rkcb::GetOptionalDevice(info, 11, "labels");
  if (labels.ptr) rkcb::RequireDeviceLength(env, labels, n, "labels");
  const int32_t ignore = static_cast<int32_t>(rkb::GetInteger(info, 13, "ignoreIndex", INT32_MIN, INT32_MAX));
  const rkcb::DevArray div = rkcb::GetDevice(info, 14, "out.divergence");
  rkcb::RequireDeviceLength(env, div, n, "out.divergence");
  const double scale = rkb::GetNumber(info, 16, "gradOutput");
  if (!std::isfinite(scale)) throw Napi::RangeError::New(env, "gradOutput: expected a finite number");
  const rkcb::DevArray grad_rows = rkcb::GetOptionalDevice(info, 17, "gradOutput");
  if (grad_rows.ptr) rkcb::RequireDeviceLength(env, grad_rows, n, "gradOutput");
  const rkcb::DevArray grad = rkcb::GetOptionalDevice(info, 19, "out.gradient");
  if (grad.ptr) {
    rkcb::RequireDeviceLength(env, grad, logits.length, "out.gradient");
    if (grad.ptr == logits.ptr && logits.length > 0 && dtype != rkcuda::kF32)
      throw Napi::TypeError::New(env, "out.gradient: in-place gradient needs f32 logits");
  }
  // (the kernel itself refuses a gradient that overlaps the target or partly overlaps the logits)

  rkcuda::DivergenceArgs a;
  a.logits = logits.ptr;
  a.target = target.ptr;
  a.dtype = dtype;
  a.rows = rows;
  a.vocab = vocab;
  a.kind = kind;
  a.beta = beta;
  a.temperature = static_cast<float>(t);
  a.row_mask = static_cast<const uint8_t*>(mask.ptr);
  a.labels = static_cast<const int32_t*>(labels.ptr);
  a.ignore_index = ignore;
  a.div = static_cast<float*>(div.ptr);
  a.grad = static_cast<float*>(grad.ptr);
  a.grad_scale = scale;
  a.grad_rows = static_cast<const float*>(grad_rows.ptr);
  // The kernels are asynchronous on the stream: wait for them so errors surface in this call.
  return rkcb::RunDevice(
      info, async,
      [a]() {
        rkcuda::Result r = rkcuda::vocab_divergence(a, nullptr);
        if (!r.ok()) return r;
        const cudaError_t e = cudaStreamSynchronize(nullptr);
        if (e != cudaSuccess) {
          r.code = rkcuda::kCudaError;
          r.cuda_error = static_cast<int>(e);
          r.where = "vocab_divergence (cudaStreamSynchronize)";
        }
        return r;
      },
      // never called: vocab_divergence has no bad-target result
      [](int64_t row, int64_t y) {
        return "labels[" + std::to_string(row) + "]: unexpected value " + std::to_string(y);
      });
}

void InitCudaDivergence(Napi::Env env, Napi::Object exports) {
  exports.Set("vocabDivergence", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Divergence(i, false); }));
  exports.Set("vocabDivergenceAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Divergence(i, true); }));
}

}  // namespace

RK_REGISTER_BINDING(cuda_divergence, InitCudaDivergence);
