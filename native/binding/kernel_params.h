// Decoding of the Float64Array of scalar options that the facade passes to the policy and
// preference entry points, shared by the CPU addon (native/binding) and the CUDA addon
// (native/cuda_binding), so both check and read the options the same way.
#pragma once
#include <napi.h>

#include <cmath>
#include <string>

#include "../kernels/policy.h"
#include "../kernels/preference.h"

namespace rkb {

// params[i] in [lo, hi], else a RangeError naming it.
inline double Param(Napi::Env env, const double* p, size_t i, const char* name, double lo, double hi) {
  const double v = p[i];
  if (!(v >= lo && v <= hi))
    throw Napi::RangeError::New(env, std::string("params.") + name + ": expected a value in [" +
                                         std::to_string(lo) + ", " + std::to_string(hi) +
                                         "], received " + std::to_string(v));
  return v;
}

inline int Enum(Napi::Env env, const double* p, size_t i, const char* name, int count) {
  const double v = Param(env, p, i, name, 0, count - 1);
  if (std::floor(v) != v)
    throw Napi::RangeError::New(env, std::string("params.") + name + ": expected an integer code");
  return static_cast<int>(v);
}

// params (12 doubles, in lib/policy.ts order) -> rk::PolicyLossParams, checked.
inline rk::PolicyLossParams PolicyParamsFrom(Napi::Env env, const double* pv) {
  rk::PolicyLossParams p;
  p.variant = static_cast<rk::PolicyVariant>(Enum(env, pv, 0, "variant", 5));
  p.aggregation = static_cast<rk::LossAggregation>(Enum(env, pv, 1, "aggregation", 4));
  p.epsilon_low = Param(env, pv, 2, "epsilonLow", 0, 1);
  p.epsilon_high = Param(env, pv, 3, "epsilonHigh", 0, 1e30);
  p.dual_clip = Param(env, pv, 4, "dualClip", 0, 1e30);
  p.delta = Param(env, pv, 5, "delta", 0, 1e30);
  p.normalizer = Param(env, pv, 6, "normalizer", 0, 1e300);
  p.beta = Param(env, pv, 7, "beta", -1e300, 1e300);
  p.kl = static_cast<rk::KlEstimator>(Enum(env, pv, 8, "klEstimator", 5));
  p.entropy_coef = Param(env, pv, 9, "entropyCoef", -1e300, 1e300);
  p.sapo_tau_pos = Param(env, pv, 10, "sapoTemperaturePos", 1e-300, 1e300);
  p.sapo_tau_neg = Param(env, pv, 11, "sapoTemperatureNeg", 1e-300, 1e300);
  if (p.dual_clip != 0 && !(p.dual_clip > 1))
    throw Napi::RangeError::New(env, "params.dualClip: expected 0 (off) or a value > 1");
  if (p.delta != 0 && !(p.delta > 1))
    throw Napi::RangeError::New(env, "params.delta: expected 0 (off) or a value > 1");
  return p;
}

// params (10 doubles, in lib/preference.ts order) -> rk::PreferenceParams, checked.
inline rk::PreferenceParams PreferenceParamsFrom(Napi::Env env, const double* q) {
  rk::PreferenceParams p;
  if (!(q[0] >= 0 && q[0] <= 14 && q[0] == std::floor(q[0])))
    throw Napi::RangeError::New(env, "loss: expected a loss code in [0, 14]");
  if (!(q[7] >= 0 && q[7] <= 3 && q[7] == std::floor(q[7])))
    throw Napi::RangeError::New(env, "fDivergence: expected a code in [0, 3]");
  p.loss = static_cast<rk::PrefLoss>(static_cast<int>(q[0]));
  p.beta = q[1];
  p.label_smoothing = q[2];
  p.gamma = q[3];
  p.alpha = q[4];
  p.tau = q[5];
  p.margin = q[6];
  p.fdiv = static_cast<rk::FDivergence>(static_cast<int>(q[7]));
  p.f_alpha = q[8];
  p.nll_weight = q[9];
  if (!(p.beta > 0)) throw Napi::RangeError::New(env, "beta: expected a positive number");
  if (!(p.label_smoothing >= 0 && p.label_smoothing < 0.5))
    throw Napi::RangeError::New(env, "labelSmoothing: expected a number in [0, 0.5)");
  if (!(p.tau > 0)) throw Napi::RangeError::New(env, "tau: expected a positive number");
  if (!(p.f_alpha > 0)) throw Napi::RangeError::New(env, "fAlpha: expected a positive number");
  return p;
}

}  // namespace rkb
