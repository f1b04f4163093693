// N-API entry points of the policy-loss and KL kernels (sync and Promise forms).
//   policyLoss(logprobs, oldLogprobs, advantages, mask|null, refLogprobs|null, entropy|null, seqLen,
//              params: Float64Array(12), gradLogprobs, gradEntropy|null, metrics: Float64Array(9))
//     params = [variant, aggregation, epsilonLow, epsilonHigh, dualClip, delta, normalizer, beta,
//               klEstimator, entropyCoef, sapoTauPos, sapoTauNeg]
//     metrics = [loss, clipFraction, clipLowFraction, clipHighFraction, dualClipFraction, approxKl,
//                kl, entropy, tokenCount]
//   klPenalty(logprobs, refLogprobs, mask|null, estimator, klOut|null, gradOut|null, meanOut: Float64Array(1))
#include "common.h"

#include <cmath>
#include <string>

#include "kernel_params.h"
#include "policy.h"

namespace {

constexpr size_t kNumParams = 12;
constexpr size_t kNumMetrics = 9;

struct Mask {
  rkb::Array array;
  rk::MaskKind kind = rk::MaskKind::None;
};

Mask GetMask(const Napi::CallbackInfo& info, size_t i, size_t n) {
  Mask m;
  if (info[i].IsNull() || info[i].IsUndefined()) return m;  // all ones
  m.array = rkb::GetArray(info, i, "mask", {napi_uint8_array, napi_float32_array});
  rkb::RequireLength(info.Env(), m.array, n, "mask");
  m.kind = m.array.type == napi_uint8_array ? rk::MaskKind::U8 : rk::MaskKind::F32;
  return m;
}

std::string MaskMessage(const rk::Status& st, const Mask& m) {
  if (st.ok()) return "";
  if (st.code == rk::Status::BadIndex && m.kind == rk::MaskKind::F32) {
    const float w = static_cast<const float*>(m.array.data)[st.index];
    return "mask[" + std::to_string(st.index) + "]: expected a finite weight >= 0, received " +
           std::to_string(w);
  }
  if (st.code == rk::Status::BadShape)
    return "seqLen: expected a positive integer, received " + std::to_string(st.value);
  return rkb::StatusMessage(st, 0);
}

Napi::Value PolicyLoss(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  rkb::Array lp = rkb::GetArray(info, 0, "logprobs", {napi_float32_array});
  const size_t n = lp.length;
  rkb::Array old = rkb::GetArray(info, 1, "oldLogprobs", {napi_float32_array});
  rkb::RequireLength(env, old, n, "oldLogprobs");
  const int64_t T = rkb::GetInteger(info, 6, "seqLen", 1, INT32_MAX);
  if (n % static_cast<size_t>(T) != 0)
    throw Napi::RangeError::New(env, "seqLen: expected a divisor of the length of logprobs (" +
                                         std::to_string(n) + "), received " + std::to_string(T));
  const int64_t B = static_cast<int64_t>(n) / T;
  rkb::Array adv = rkb::GetArray(info, 2, "advantages", {napi_float32_array});
  if (adv.length != static_cast<size_t>(B) && adv.length != n)
    throw Napi::RangeError::New(env, "advantages: expected length " + std::to_string(B) + " or " +
                                         std::to_string(n) + ", received " + std::to_string(adv.length));
  Mask mask = GetMask(info, 3, n);
  const bool has_ref = !(info[4].IsNull() || info[4].IsUndefined());
  const bool has_ent = !(info[5].IsNull() || info[5].IsUndefined());
  const bool want_gent = !(info[9].IsNull() || info[9].IsUndefined());
  rkb::Array ref = rkb::GetOptionalArray(info, 4, "refLogprobs", {napi_float32_array});
  if (has_ref) rkb::RequireLength(env, ref, n, "refLogprobs");
  rkb::Array ent = rkb::GetOptionalArray(info, 5, "entropy", {napi_float32_array});
  if (has_ent) rkb::RequireLength(env, ent, n, "entropy");
  rkb::Array par = rkb::GetArray(info, 7, "params", {napi_float64_array});
  rkb::RequireLength(env, par, kNumParams, "params");
  rkb::Array grad = rkb::GetArray(info, 8, "out.gradLogprobs", {napi_float32_array});
  rkb::RequireLength(env, grad, n, "out.gradLogprobs");
  rkb::Array gent = rkb::GetOptionalArray(info, 9, "out.gradEntropy", {napi_float32_array});
  if (want_gent) {
    rkb::RequireLength(env, gent, n, "out.gradEntropy");
    if (!has_ent) throw Napi::TypeError::New(env, "out.gradEntropy: given without entropy");
  }
  rkb::Array met = rkb::GetArray(info, 10, "metrics", {napi_float64_array});
  rkb::RequireLength(env, met, kNumMetrics, "metrics");

  const double* pv = static_cast<const double*>(par.data);
  const rk::PolicyLossParams p = rkb::PolicyParamsFrom(env, pv);

  rk::PolicyLossInputs in;
  in.logprobs = static_cast<const float*>(lp.data);
  in.old_logprobs = static_cast<const float*>(old.data);
  in.advantages = static_cast<const float*>(adv.data);
  // With T == 1 both shapes coincide and mean the same thing.
  in.advantages_per_token = adv.length == n && adv.length != static_cast<size_t>(B);
  in.mask = mask.array.data;
  in.mask_kind = mask.kind;
  in.ref_logprobs = has_ref ? static_cast<const float*>(ref.data) : nullptr;
  in.entropy = has_ent ? static_cast<const float*>(ent.data) : nullptr;
  in.batch = B;
  in.seq_len = T;
  float* gl = static_cast<float*>(grad.data);
  float* ge = want_gent ? static_cast<float*>(gent.data) : nullptr;
  double* mo = static_cast<double*>(met.data);
  auto fn = [=]() {
    rk::PolicyLossMetrics m;
    rk::Status st = rk::policy_loss(in, p, gl, ge, &m);
    if (st.ok()) {
      const double v[kNumMetrics] = {m.loss, m.clip_fraction, m.clip_low_fraction,
                                     m.clip_high_fraction, m.dual_clip_fraction, m.approx_kl,
                                     m.kl, m.entropy, m.token_count};
      for (size_t i = 0; i < kNumMetrics; ++i) mo[i] = v[i];
    }
    return MaskMessage(st, mask);
  };
  return rkb::Run(info, async, fn);
}

Napi::Value KlPenalty(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  rkb::Array lp = rkb::GetArray(info, 0, "logprobs", {napi_float32_array});
  const size_t n = lp.length;
  rkb::Array ref = rkb::GetArray(info, 1, "refLogprobs", {napi_float32_array});
  rkb::RequireLength(env, ref, n, "refLogprobs");
  Mask mask = GetMask(info, 2, n);
  const int est = static_cast<int>(rkb::GetInteger(info, 3, "estimator", 0, 4));
  rkb::Array kl = rkb::GetOptionalArray(info, 4, "out.kl", {napi_float32_array});
  const bool want_kl = !(info[4].IsNull() || info[4].IsUndefined());
  if (want_kl) rkb::RequireLength(env, kl, n, "out.kl");
  rkb::Array gr = rkb::GetOptionalArray(info, 5, "out.grad", {napi_float32_array});
  const bool want_gr = !(info[5].IsNull() || info[5].IsUndefined());
  if (want_gr) rkb::RequireLength(env, gr, n, "out.grad");
  rkb::Array mean = rkb::GetArray(info, 6, "mean", {napi_float64_array});
  rkb::RequireLength(env, mean, 1, "mean");
  const float* a = static_cast<const float*>(lp.data);
  const float* b = static_cast<const float*>(ref.data);
  float* ko = want_kl ? static_cast<float*>(kl.data) : nullptr;
  float* go = want_gr ? static_cast<float*>(gr.data) : nullptr;
  double* mo = static_cast<double*>(mean.data);
  auto fn = [=]() {
    double mv = 0;
    rk::Status st = rk::kl_penalty(a, b, static_cast<int64_t>(n), mask.array.data, mask.kind,
                                   static_cast<rk::KlEstimator>(est), ko, go, &mv);
    if (st.ok()) mo[0] = mv;
    return MaskMessage(st, mask);
  };
  return rkb::Run(info, async, fn);
}

void InitPolicy(Napi::Env env, Napi::Object exports) {
  exports.Set("policyLoss", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return PolicyLoss(i, false); }));
  exports.Set("policyLossAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return PolicyLoss(i, true); }));
  exports.Set("klPenalty", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return KlPenalty(i, false); }));
  exports.Set("klPenaltyAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return KlPenalty(i, true); }));
}

}  // namespace

RK_REGISTER_BINDING(policy, InitPolicy);
