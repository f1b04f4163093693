// N-API entry points of the full-vocabulary divergence kernel (sync and Promise forms).
//   vocabDivergence(logits, targetLogits, dtype, vocab, kind, beta, temperature, rowMask|null,
//                   div, gradScale, gradRows|null, grad|null)
#include "common.h"
#include <climits>
#include <cmath>

#include "divergence.h"

namespace {

bool Overlaps(const rkb::Array& a, size_t asz, const rkb::Array& b, size_t bsz) {
  const char* a0 = static_cast<const char*>(a.data);
  const char* b0 = static_cast<const char*>(b.data);
  return a.length > 0 && b.length > 0 && a0 < b0 + b.length * bsz && b0 < a0 + a.length * asz;
}

Napi::Value Divergence(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  const int64_t dtype = rkb::GetInteger(info, 2, "dtype", 0, 2);
  const napi_typedarray_type at = dtype == 0 ? napi_float32_array : napi_uint16_array;
  rkb::Array logits = rkb::GetArray(info, 0, "logits", {at});
  rkb::Array target = rkb::GetArray(info, 1, "targetLogits", {at});
  const int64_t vocab = rkb::GetInteger(info, 3, "vocab", 1, INT32_MAX);
  if (logits.length % static_cast<size_t>(vocab) != 0)
    throw Napi::RangeError::New(env, "logits: expected a length that is a multiple of vocab (" +
                                         std::to_string(vocab) + "), received " +
                                         std::to_string(logits.length));
  rkb::RequireLength(env, target, logits.length, "targetLogits");
  const int64_t kind = rkb::GetInteger(info, 4, "divergence", 0, 2);
  const double beta = rkb::GetNumber(info, 5, "beta");
  if (!(beta >= 0 && beta <= 1))
    throw Napi::RangeError::New(env, "beta: expected a number in [0, 1]");
  const double temperature = rkb::GetNumber(info, 6, "temperature");
  if (!(temperature > 0) || !std::isfinite(temperature) || !std::isfinite(1.0 / temperature))
    throw Napi::RangeError::New(env, "temperature: expected a finite positive number");
  const size_t n = logits.length / static_cast<size_t>(vocab);
  rkb::Array mask = rkb::GetOptionalArray(info, 7, "mask", {napi_uint8_array});
  if (mask.data) rkb::RequireLength(env, mask, n, "mask");
  rkb::Array div = rkb::GetArray(info, 8, "out.divergence", {napi_float32_array});
  rkb::RequireLength(env, div, n, "out.divergence");
  const double grad_scale = rkb::GetNumber(info, 9, "gradOutput");
  rkb::Array grad_rows = rkb::GetOptionalArray(info, 10, "gradOutput", {napi_float32_array});
  if (grad_rows.data) rkb::RequireLength(env, grad_rows, n, "gradOutput");
  rkb::Array grad = rkb::GetOptionalArray(info, 11, "out.gradient", {napi_float32_array});
  const size_t esz = static_cast<size_t>(rk::dtype_size(static_cast<rk::DType>(dtype)));
  const bool want_grad = info[11].IsTypedArray();
  if (want_grad) {
    rkb::RequireLength(env, grad, logits.length, "out.gradient");
    if (grad.length > 0 && grad.data == logits.data && dtype != 0)
      throw Napi::TypeError::New(env, "out.gradient: an in-place gradient needs f32 logits");
    if (grad.data != logits.data && Overlaps(grad, 4, logits, esz))
      throw Napi::RangeError::New(env, "out.gradient: overlaps logits without being the same memory");
    if (Overlaps(grad, 4, target, esz))
      throw Napi::RangeError::New(env, "out.gradient: overlaps targetLogits");
  }
  rk::LogitsView lv{logits.data, static_cast<rk::DType>(dtype), static_cast<int64_t>(n), vocab};
  rk::LogitsView tv{target.data, static_cast<rk::DType>(dtype), static_cast<int64_t>(n), vocab};
  rk::DivergenceParams prm;
  prm.kind = static_cast<rk::DivergenceKind>(kind);
  prm.beta = beta;
  prm.temperature = temperature;
  auto fn = [=]() -> std::string {
    rk::Status st = rk::vocab_divergence(
        lv, tv, static_cast<const uint8_t*>(mask.data), prm, static_cast<float*>(div.data),
        grad_scale, static_cast<const float*>(grad_rows.data),
        want_grad ? static_cast<float*>(grad.data) : nullptr);
    if (st.ok()) return "";
    return "vocabDivergence: invalid arguments (code " + std::to_string(st.code) + ", " +
           std::to_string(st.index) + ")";
  };
  return rkb::Run(info, async, fn);
}

void InitDivergence(Napi::Env env, Napi::Object exports) {
  exports.Set("vocabDivergence", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Divergence(i, false); }));
  exports.Set("vocabDivergenceAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return Divergence(i, true); }));
}

}  // namespace

RK_REGISTER_BINDING(divergence, InitDivergence);
