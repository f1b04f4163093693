// CUDA entry points of the policy-loss and KL kernels (cuda/policy.h), sync and Promise forms.
// Every device array is a (pointer: bigint, length) pair of arguments; scalar results come back in
// a host Float64Array (downloaded from the device before the call returns / the Promise settles):
//   policyLoss(logprobs, n, oldLogprobs, n, advantages, n, mask|null, n, maskKind (0 none, 1 u8,
//              2 f32), refLogprobs|null, n, entropy|null, n, seqLen, params: Float64Array(12),
//              gradLogprobs, n, gradEntropy|null, n, metrics: Float64Array(9) on the host)
//     params and metrics as in native/binding/policy.cc
//   klPenalty(logprobs, n, refLogprobs, n, mask|null, n, maskKind, estimator, kl|null, n,
//             grad|null, n, mean: Float64Array(1) on the host)
// Everything runs on the legacy default stream. A bad f32 mask weight (negative or not finite) is
// found on the device; the call waits for the stream and throws the host path's RangeError text.
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <string>

#include "cuda_common.h"
#include "kernel_params.h"
#include "policy.h"

namespace {

constexpr size_t kNumParams = 12;
constexpr size_t kNumMetrics = 9;

struct Mask {
  rkcb::DevArray array;
  rk::MaskKind kind = rk::MaskKind::None;
};

Mask GetMask(const Napi::CallbackInfo& info, size_t i, size_t kind_at, size_t n) {
  Napi::Env env = info.Env();
  Mask m;
  const int kind = static_cast<int>(rkb::GetInteger(info, kind_at, "maskKind", 0, 2));
  m.array = rkcb::GetOptionalDevice(info, i, "mask");
  if (kind == 0) {
    if (m.array.ptr) throw Napi::TypeError::New(env, "mask: given with maskKind 0 (none)");
    return m;
  }
  if (!m.array.ptr && n > 0) throw Napi::TypeError::New(env, "mask: expected a device array for maskKind " + std::to_string(kind));
  rkcb::RequireDeviceLength(env, m.array, n, "mask");
  m.kind = static_cast<rk::MaskKind>(kind);
  return m;
}

// The host path's text (native/binding/policy.cc MaskMessage): the weight is read back from the device.
rkcb::BadTargetText BadMask(const Mask& m) {
  const float* w = static_cast<const float*>(m.array.ptr);
  return [w](int64_t index, int64_t) {
    float v = NAN;
    if (w && cudaMemcpy(&v, w + index, sizeof(float), cudaMemcpyDeviceToHost) != cudaSuccess) {
      cudaGetLastError();
      v = NAN;
    }
    return "mask[" + std::to_string(index) + "]: expected a finite weight >= 0, received " + std::to_string(v);
  };
}

Napi::Value PolicyLoss(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  rkcb::DevArray lp = rkcb::GetDevice(info, 0, "logprobs");
  const size_t n = lp.length;
  rkcb::DevArray old = rkcb::GetDevice(info, 2, "oldLogprobs");
  rkcb::RequireDeviceLength(env, old, n, "oldLogprobs");
  const int64_t T = rkb::GetInteger(info, 13, "seqLen", 1, INT32_MAX);
  if (n % static_cast<size_t>(T) != 0)
    throw Napi::RangeError::New(env, "seqLen: expected a divisor of the length of logprobs (" +
                                         std::to_string(n) + "), received " + std::to_string(T));
  const int64_t B = static_cast<int64_t>(n) / T;
  rkcb::DevArray adv = rkcb::GetDevice(info, 4, "advantages");
  if (adv.length != static_cast<size_t>(B) && adv.length != n)
    throw Napi::RangeError::New(env, "advantages: expected length " + std::to_string(B) + " or " +
                                         std::to_string(n) + ", received " + std::to_string(adv.length));
  Mask mask = GetMask(info, 6, 8, n);
  rkcb::DevArray ref = rkcb::GetOptionalDevice(info, 9, "refLogprobs");
  const bool has_ref = !(info[9].IsNull() || info[9].IsUndefined());
  if (has_ref) rkcb::RequireDeviceLength(env, ref, n, "refLogprobs");
  rkcb::DevArray ent = rkcb::GetOptionalDevice(info, 11, "entropy");
  const bool has_ent = !(info[11].IsNull() || info[11].IsUndefined());
  if (has_ent) rkcb::RequireDeviceLength(env, ent, n, "entropy");
  rkb::Array par = rkb::GetArray(info, 14, "params", {napi_float64_array});
  rkb::RequireLength(env, par, kNumParams, "params");
  rkcb::DevArray grad = rkcb::GetDevice(info, 15, "out.gradLogprobs");
  rkcb::RequireDeviceLength(env, grad, n, "out.gradLogprobs");
  rkcb::DevArray gent = rkcb::GetOptionalDevice(info, 17, "out.gradEntropy");
  const bool want_gent = !(info[17].IsNull() || info[17].IsUndefined());
  if (want_gent) {
    rkcb::RequireDeviceLength(env, gent, n, "out.gradEntropy");
    if (!has_ent) throw Napi::TypeError::New(env, "out.gradEntropy: given without entropy");
  }
  rkb::Array met = rkb::GetArray(info, 19, "metrics", {napi_float64_array});
  rkb::RequireLength(env, met, kNumMetrics, "metrics");

  const double* pv = static_cast<const double*>(par.data);
  const rk::PolicyLossParams p = rkb::PolicyParamsFrom(env, pv);

  rkcuda::PolicyLossArgs a;
  a.in.logprobs = static_cast<const float*>(lp.ptr);
  a.in.old_logprobs = static_cast<const float*>(old.ptr);
  a.in.advantages = static_cast<const float*>(adv.ptr);
  // With T == 1 both shapes coincide and mean the same thing.
  a.in.advantages_per_token = adv.length == n && adv.length != static_cast<size_t>(B);
  a.in.mask = mask.array.ptr;
  a.in.mask_kind = mask.kind;
  a.in.ref_logprobs = has_ref ? static_cast<const float*>(ref.ptr) : nullptr;
  a.in.entropy = has_ent ? static_cast<const float*>(ent.ptr) : nullptr;
  a.in.batch = B;
  a.in.seq_len = T;
  a.params = p;
  a.grad_logprobs = static_cast<float*>(grad.ptr);
  a.grad_entropy = want_gent ? static_cast<float*>(gent.ptr) : nullptr;
  double* mo = static_cast<double*>(met.data);
  return rkcb::RunDevice(
      info, async,
      [a, mo]() {
        return rkcb::WithScalars(kNumMetrics, mo, [&a](double* d) {
          rkcuda::PolicyLossArgs b = a;
          b.metrics = d;
          return rkcuda::policy_loss(b, nullptr);
        });
      },
      BadMask(mask));
}

Napi::Value KlPenalty(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  rkcb::DevArray lp = rkcb::GetDevice(info, 0, "logprobs");
  const size_t n = lp.length;
  rkcb::DevArray ref = rkcb::GetDevice(info, 2, "refLogprobs");
  rkcb::RequireDeviceLength(env, ref, n, "refLogprobs");
  Mask mask = GetMask(info, 4, 6, n);
  const int est = static_cast<int>(rkb::GetInteger(info, 7, "estimator", 0, 4));
  rkcb::DevArray kl = rkcb::GetOptionalDevice(info, 8, "out.kl");
  if (!(info[8].IsNull() || info[8].IsUndefined())) rkcb::RequireDeviceLength(env, kl, n, "out.kl");
  rkcb::DevArray gr = rkcb::GetOptionalDevice(info, 10, "out.grad");
  if (!(info[10].IsNull() || info[10].IsUndefined())) rkcb::RequireDeviceLength(env, gr, n, "out.grad");
  rkb::Array mean = rkb::GetArray(info, 12, "mean", {napi_float64_array});
  rkb::RequireLength(env, mean, 1, "mean");
  rkcuda::KlPenaltyArgs a;
  a.logprobs = static_cast<const float*>(lp.ptr);
  a.ref_logprobs = static_cast<const float*>(ref.ptr);
  a.n = static_cast<int64_t>(n);
  a.mask = mask.array.ptr;
  a.mask_kind = mask.kind;
  a.estimator = static_cast<rk::KlEstimator>(est);
  a.kl = static_cast<float*>(kl.ptr);
  a.grad = static_cast<float*>(gr.ptr);
  double* mo = static_cast<double*>(mean.data);
  return rkcb::RunDevice(
      info, async,
      [a, mo]() {
        return rkcb::WithScalars(1, mo, [&a](double* d) {
          rkcuda::KlPenaltyArgs b = a;
          b.mean = d;
          return rkcuda::kl_penalty(b, nullptr);
        });
      },
      BadMask(mask));
}

void InitCudaPolicy(Napi::Env env, Napi::Object exports) {
  exports.Set("policyLoss", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return PolicyLoss(i, false); }));
  exports.Set("policyLossAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return PolicyLoss(i, true); }));
  exports.Set("klPenalty", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return KlPenalty(i, false); }));
  exports.Set("klPenaltyAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return KlPenalty(i, true); }));
}

}  // namespace

RK_REGISTER_BINDING(cuda_policy, InitCudaPolicy);
