// CUDA entry points of the advantage kernels (cuda/advantages.h), sync and Promise forms. Every
// device array is a (pointer: bigint, length) pair of arguments:
//   groupAdvantages(rewards, n, K, weights: Float64Array|null, groupSize, groupIds|null, n, numGroups,
//                   estimator, scale, multi, eps, lengths|null, n, rewardMin, rewardMax,
//                   advantages, n, groupMean, s, groupStd, s, zeroOut: Float64Array(1))
//   ensembleRewards(rewards, n, M, method, lambda, out, n)
//   gae(values, n, rewards, n, mask, n, maskIsF32, T, gamma, lambda, whiten, advantages, n, returns, n)
//   discountedReturns(rewards, n, mask, n, maskIsF32, T, gamma, out, n)
//   maskedWhiten(values, n, mask, n, maskIsF32, shiftMean, unbiased, eps, out, n)
// Everything runs on the legacy default stream. The reward weights (K doubles) and the
// zero-std-groups counter live in a small device buffer this binding allocates, fills and reads
// back (cudaMemcpy: ordered with the kernels), so the count comes back as a number. Bad elements
// (lengths < 0, group ids out of range, bnpo group means outside [0, 1], f32 mask weights < 0 or
// not finite) are found on the device; the call then waits for the stream and throws the same
// RangeError text as the CPU path.
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "advantages.h"
#include "cuda_common.h"

namespace {

rkcuda::Result CudaFail(const char* where, cudaError_t e) {
  rkcuda::Result r;
  r.code = rkcuda::kCudaError;
  r.cuda_error = static_cast<int>(e);
  r.where = where;
  return r;
}

// The `where` of a kBadTarget result, kept for the message (fn runs before the text is made).
using WhereBox = std::shared_ptr<std::string>;

rkcb::BadTargetText AdvBadText(WhereBox where, int64_t num_groups) {
  return [where, num_groups](int64_t i, int64_t v) -> std::string {
    if (*where == "lengths")
      return "options.lengths[" + std::to_string(i) + "]: expected a length >= 0, received " + std::to_string(v);
    if (*where == "group_ids")
      return "options.groupIds[" + std::to_string(i) + "]: expected a group id in [0, " + std::to_string(num_groups) +
             "), received " + std::to_string(v);
    if (*where == "bnpo group mean")
      return "rewards: bnpo expects every group mean of (r - rewardMin) / (rewardMax - rewardMin) in [0, 1], "
             "group " + std::to_string(i) + " is outside (set rewardMin / rewardMax)";
    return *where + "[" + std::to_string(i) + "]: bad element " + std::to_string(v);
  };
}

rkcb::BadTargetText MaskBadText() {
  return [](int64_t i, int64_t) { return "mask[" + std::to_string(i) + "]: expected a finite weight >= 0"; };
}

rkcuda::Result Remember(const rkcuda::Result& r, const WhereBox& where) {
  if (r.code == rkcuda::kBadTarget) *where = r.where ? r.where : "";
  return r;
}

// The Float64Array at info[i] (null/undefined allowed when optional): its data and length.
double* GetF64(const Napi::CallbackInfo& info, size_t i, const char* name, size_t want, bool optional) {
  Napi::Env env = info.Env();
  if (optional && (info[i].IsNull() || info[i].IsUndefined())) return nullptr;
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(env, std::string(name) + ": expected a Float64Array");
  Napi::Float64Array a = info[i].As<Napi::Float64Array>();
  if (a.ElementLength() != want)
    throw Napi::RangeError::New(env, std::string(name) + ": expected length " + std::to_string(want) + ", received " +
                                         std::to_string(a.ElementLength()));
  if (want > 0 && a.Data() == nullptr) throw Napi::TypeError::New(env, std::string(name) + ": its ArrayBuffer is detached");
  return a.Data();
}

rk::TokenMask GetMask(const Napi::CallbackInfo& info, size_t i, size_t n) {
  rkcb::DevArray m = rkcb::GetDevice(info, i, "mask");
  rkcb::RequireDeviceLength(info.Env(), m, n, "mask");
  rk::TokenMask tm;
  tm.data = m.ptr;
  tm.is_f32 = info[i + 2].ToBoolean().Value();
  return tm;
}

double Finite(const Napi::CallbackInfo& info, size_t i, const char* name, double lo, double hi) {
  const double d = rkb::GetNumber(info, i, name);
  if (!(d >= lo && d <= hi) || !std::isfinite(d))
    throw Napi::RangeError::New(info.Env(), std::string(name) + ": expected a finite number in [" + std::to_string(lo) +
                                                ", " + std::to_string(hi) + "], received " + std::to_string(d));
  return d;
}

Napi::Value GroupAdvantages(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  rkcb::DevArray r = rkcb::GetDevice(info, 0, "rewards");
  rk::GroupAdvantagesArgs a;
  a.num_rewards = rkb::GetInteger(info, 2, "numRewards", 1, INT32_MAX);
  if (r.length % static_cast<size_t>(a.num_rewards) != 0)
    throw Napi::RangeError::New(env, "rewards: expected a length that is a multiple of numRewards");
  a.n = static_cast<int64_t>(r.length) / a.num_rewards;
  if (a.n > INT32_MAX) throw Napi::RangeError::New(env, "rewards: more than 2^31 - 1 samples");
  const size_t n = static_cast<size_t>(a.n);
  a.rewards = static_cast<const float*>(r.ptr);
  const size_t K = static_cast<size_t>(a.num_rewards);
  const double* w = GetF64(info, 3, "rewardWeights", K, true);
  std::vector<double> weights;
  if (w) weights.assign(w, w + K);
  a.group_size = rkb::GetInteger(info, 4, "groupSize", 0, INT32_MAX);
  rkcb::DevArray ids = rkcb::GetOptionalDevice(info, 5, "groupIds");
  a.num_groups = rkb::GetInteger(info, 7, "numGroups", 0, INT32_MAX);
  if (a.group_size == 0) {
    if (!ids.ptr && a.n > 0) throw Napi::TypeError::New(env, "groupIds: expected a device array");
    rkcb::RequireDeviceLength(env, ids, n, "groupIds");
    a.group_ids = static_cast<const int32_t*>(ids.ptr);
  } else {
    if (a.n % a.group_size != 0) throw Napi::RangeError::New(env, "groupSize: expected a divisor of the number of samples");
    a.num_groups = a.n / a.group_size;
  }
  a.estimator = static_cast<rk::AdvEstimator>(rkb::GetInteger(info, 8, "estimator", 0, 5));
  a.scale = static_cast<rk::AdvScale>(rkb::GetInteger(info, 9, "scale", 0, 2));
  a.multi = static_cast<rk::MultiReward>(rkb::GetInteger(info, 10, "multiReward", 0, 1));
  a.eps = Finite(info, 11, "eps", 0, HUGE_VAL);
  rkcb::DevArray lens = rkcb::GetOptionalDevice(info, 12, "lengths");
  if (lens.ptr) rkcb::RequireDeviceLength(env, lens, n, "lengths");
  a.lengths = static_cast<const int32_t*>(lens.ptr);
  if (a.estimator == rk::AdvEstimator::Opo && !a.lengths && a.n > 0)
    throw Napi::TypeError::New(env, "lengths: expected a device array for opo");
  a.reward_min = rkb::GetNumber(info, 14, "rewardMin");
  a.reward_max = rkb::GetNumber(info, 15, "rewardMax");
  if (a.estimator == rk::AdvEstimator::Bnpo && !(a.reward_max > a.reward_min))
    throw Napi::RangeError::New(env, "rewardMax: expected a number above rewardMin");
  const size_t stats = static_cast<size_t>(a.num_groups) * (a.multi == rk::MultiReward::NormalizeThenSum ? K : 1);
  rkcb::DevArray adv = rkcb::GetDevice(info, 16, "out.advantages");
  rkcb::RequireDeviceLength(env, adv, n, "out.advantages");
  rkcb::DevArray gm = rkcb::GetDevice(info, 18, "out.groupMean");
  rkcb::RequireDeviceLength(env, gm, stats, "out.groupMean");
  rkcb::DevArray gs = rkcb::GetDevice(info, 20, "out.groupStd");
  rkcb::RequireDeviceLength(env, gs, stats, "out.groupStd");
  double* zero_out = GetF64(info, 22, "zeroOut", 1, false);
  rkcuda::GroupAdvantagesDeviceArgs d;
  d.a = a;
  d.advantages = static_cast<float*>(adv.ptr);
  d.group_mean = static_cast<float*>(gm.ptr);
  d.group_std = static_cast<float*>(gs.ptr);
  WhereBox where = std::make_shared<std::string>();
  // zero_out stays alive: the facade holds its Float64Array until the call settles.
  auto fn = [d, weights, zero_out, where]() mutable -> rkcuda::Result {
    // one buffer: [zero_std_groups (int64), weights (K doubles)]
    void* buf = nullptr;
    const size_t bytes = sizeof(long long) + sizeof(double) * weights.size();
    cudaError_t e = cudaMalloc(&buf, bytes);
    if (e != cudaSuccess) return CudaFail("cudaMalloc", e);
    rkcuda::Result res;
    d.zero_std_groups = static_cast<long long*>(buf);
    if (!weights.empty()) {
      double* dw = reinterpret_cast<double*>(static_cast<char*>(buf) + sizeof(long long));
      e = cudaMemcpy(dw, weights.data(), sizeof(double) * weights.size(), cudaMemcpyHostToDevice);
      if (e != cudaSuccess) res = CudaFail("cudaMemcpy", e);
      d.a.reward_weights = dw;
    }
    if (res.ok()) res = Remember(rkcuda::group_advantages(d, nullptr), where);
    if (res.ok()) {
      long long z = 0;
      e = cudaMemcpy(&z, buf, sizeof z, cudaMemcpyDeviceToHost);
      if (e != cudaSuccess) res = CudaFail("cudaMemcpy", e);
      else *zero_out = static_cast<double>(z);
    }
    e = cudaFree(buf);
    if (res.ok() && e != cudaSuccess) res = CudaFail("cudaFree", e);
    return res;
  };
  return rkcb::RunDevice(info, async, fn, AdvBadText(where, a.num_groups));
}

Napi::Value Ensemble(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  rkcb::DevArray r = rkcb::GetDevice(info, 0, "rewards");
  const int64_t m = rkb::GetInteger(info, 2, "numModels", 1, INT32_MAX);
  if (r.length % static_cast<size_t>(m) != 0)
    throw Napi::RangeError::New(env, "rewards: expected a length that is a multiple of numModels");
  const int64_t n = static_cast<int64_t>(r.length) / m;
  const auto method = static_cast<rk::EnsembleMethod>(rkb::GetInteger(info, 3, "method", 0, 2));
  const double lambda = Finite(info, 4, "lambda", 0, HUGE_VAL);
  rkcb::DevArray out = rkcb::GetDevice(info, 5, "out");
  rkcb::RequireDeviceLength(env, out, static_cast<size_t>(n), "out");
  const float* rp = static_cast<const float*>(r.ptr);
  float* op = static_cast<float*>(out.ptr);
  return rkcb::RunDevice(
      info, async, [=]() { return rkcuda::ensemble_rewards(rp, n, m, method, lambda, op, nullptr); },
      MaskBadText());
}

Napi::Value Gae(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  rkcb::DevArray v = rkcb::GetDevice(info, 0, "values");
  const size_t n = v.length;
  rkcb::DevArray r = rkcb::GetDevice(info, 2, "rewards");
  rkcb::RequireDeviceLength(env, r, n, "rewards");
  const rk::TokenMask mask = GetMask(info, 4, n);
  const int64_t T = rkb::GetInteger(info, 7, "seqLen", 1, INT32_MAX);
  if (n % static_cast<size_t>(T) != 0)
    throw Napi::RangeError::New(env, "values: expected a length that is a multiple of seqLen");
  const double gamma = Finite(info, 8, "gamma", 0, 1), lambda = Finite(info, 9, "lambda", 0, 1);
  const bool whiten = info[10].ToBoolean().Value();
  rkcb::DevArray adv = rkcb::GetDevice(info, 11, "out.advantages");
  rkcb::RequireDeviceLength(env, adv, n, "out.advantages");
  rkcb::DevArray ret = rkcb::GetDevice(info, 13, "out.returns");
  rkcb::RequireDeviceLength(env, ret, n, "out.returns");
  if (n > 0 && adv.ptr == ret.ptr) throw Napi::RangeError::New(env, "out.returns: expected a buffer apart from out.advantages");
  const float* vp = static_cast<const float*>(v.ptr);
  const float* rp = static_cast<const float*>(r.ptr);
  float* ap = static_cast<float*>(adv.ptr);
  float* tp = static_cast<float*>(ret.ptr);
  const int64_t B = static_cast<int64_t>(n) / T;
  return rkcb::RunDevice(
      info, async,
      [=]() {
        rkcuda::Result res = rkcuda::gae(vp, rp, mask, B, T, gamma, lambda, ap, tp, nullptr);
        if (res.ok() && whiten) res = rkcuda::masked_whiten(ap, mask, static_cast<int64_t>(n), true, true, 1e-8, ap, nullptr, nullptr);
        return res;
      },
      MaskBadText());
}

Napi::Value Discounted(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  rkcb::DevArray r = rkcb::GetDevice(info, 0, "rewards");
  const size_t n = r.length;
  const rk::TokenMask mask = GetMask(info, 2, n);
  const int64_t T = rkb::GetInteger(info, 5, "seqLen", 1, INT32_MAX);
  if (n % static_cast<size_t>(T) != 0)
    throw Napi::RangeError::New(env, "rewards: expected a length that is a multiple of seqLen");
  const double gamma = Finite(info, 6, "gamma", 0, 1);
  rkcb::DevArray out = rkcb::GetDevice(info, 7, "out");
  rkcb::RequireDeviceLength(env, out, n, "out");
  const float* rp = static_cast<const float*>(r.ptr);
  float* op = static_cast<float*>(out.ptr);
  const int64_t B = static_cast<int64_t>(n) / T;
  return rkcb::RunDevice(
      info, async, [=]() { return rkcuda::discounted_returns(rp, mask, B, T, gamma, op, nullptr); }, MaskBadText());
}

Napi::Value Whiten(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  rkcb::DevArray v = rkcb::GetDevice(info, 0, "values");
  const size_t n = v.length;
  const rk::TokenMask mask = GetMask(info, 2, n);
  const bool shift = info[5].ToBoolean().Value();
  const bool unbiased = info[6].ToBoolean().Value();
  const double eps = Finite(info, 7, "eps", 0, HUGE_VAL);
  rkcb::DevArray out = rkcb::GetDevice(info, 8, "out");
  rkcb::RequireDeviceLength(env, out, n, "out");
  const float* vp = static_cast<const float*>(v.ptr);
  float* op = static_cast<float*>(out.ptr);
  return rkcb::RunDevice(
      info, async,
      [=]() { return rkcuda::masked_whiten(vp, mask, static_cast<int64_t>(n), shift, unbiased, eps, op, nullptr, nullptr); },
      MaskBadText());
}

template <Napi::Value (*F)(const Napi::CallbackInfo&, bool)>
void Export(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return F(i, false); }));
  exports.Set(std::string(name) + "Async",
              Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return F(i, true); }));
}

void InitCudaAdvantages(Napi::Env env, Napi::Object exports) {
  Export<GroupAdvantages>(env, exports, "groupAdvantages");
  Export<Ensemble>(env, exports, "ensembleRewards");
  Export<Gae>(env, exports, "gae");
  Export<Discounted>(env, exports, "discountedReturns");
  Export<Whiten>(env, exports, "maskedWhiten");
}

}  // namespace

RK_REGISTER_BINDING(cuda_advantages, InitCudaAdvantages);
