// N-API entry points of the advantage kernels (sync and Promise forms).
//   groupAdvantages(rewards, K, weights|null, groupSize, groupIds|null, numGroups, estimator, scale,
//                   multi, eps, lengths|null, rewardMin, rewardMax, advantages, groupMean, groupStd,
//                   zeroOut|null) -> zeroStdGroups (sync); the Promise form writes it to zeroOut[0]
//   ensembleRewards(rewards, M, method, lambda, out)
//   gae(values, rewards, mask, T, gamma, lambda, advantages, returns)
//   discountedReturns(rewards, mask, T, gamma, out)
//   maskedWhiten(values, mask, shiftMean, unbiased, eps, out)
// Small calls matter here (a trainer calls groupAdvantages every step), so typed arrays are
// unpacked with one napi_get_typedarray_info each instead of the generic helpers.
#include <climits>
#include <cmath>
#include <memory>

#include "advantages.h"
#include "common.h"

namespace {

struct View {
  void* data = nullptr;
  size_t length = 0;
  napi_typedarray_type type = napi_float32_array;
};

const char* TypeName(napi_typedarray_type t) {
  switch (t) {
    case napi_uint8_array: return "Uint8Array";
    case napi_int32_array: return "Int32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    default: return "another TypedArray";
  }
}

// The TypedArray at info[i], of type t (or t2); null/undefined allowed when optional.
View Get(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type t, bool optional = false,
         napi_typedarray_type t2 = napi_typedarray_type(-1)) {
  napi_env env = info.Env();
  napi_value v = info[i];
  View out;
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) {
    if (optional) {
      napi_valuetype vt;
      napi_typeof(env, v, &vt);
      if (vt == napi_null || vt == napi_undefined) return out;
    }
    throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a " + TypeName(t));
  }
  napi_value ab;
  size_t off = 0;
  napi_get_typedarray_info(env, v, &out.type, &out.length, &out.data, &ab, &off);
  if (out.type != t && out.type != t2)
    throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a " + TypeName(t) + ", received " +
                                               TypeName(out.type));
  if (out.length > 0 && out.data == nullptr)
    throw Napi::TypeError::New(info.Env(), std::string(name) + ": its ArrayBuffer is detached");
  return out;
}

void Need(const Napi::CallbackInfo& info, const View& v, size_t n, const char* name) {
  if (v.length != n)
    throw Napi::RangeError::New(info.Env(), std::string(name) + ": expected length " + std::to_string(n) +
                                                ", received " + std::to_string(v.length));
}

double Num(const Napi::CallbackInfo& info, size_t i, const char* name) {
  double d = 0;
  if (napi_get_value_double(info.Env(), info[i], &d) != napi_ok)
    throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a number");
  return d;
}

int64_t Int(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi) {
  const double d = Num(info, i, name);
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || std::floor(d) != d)
    throw Napi::RangeError::New(info.Env(), std::string(name) + ": expected an integer in [" + std::to_string(lo) +
                                                ", " + std::to_string(hi) + "], received " + std::to_string(d));
  return static_cast<int64_t>(d);
}

std::string AdvMessage(const rk::Status& st, const rk::GroupAdvantagesArgs& a) {
  if (st.ok()) return "";
  if (static_cast<int>(st.code) == rk::kAdvStatusBnpoRange)
    return "rewards: bnpo expects every group mean of (r - rewardMin) / (rewardMax - rewardMin) in [0, 1], "
           "group " + std::to_string(st.index) + " is outside (set rewardMin / rewardMax)";
  if (st.code == rk::Status::BadShape)
    return "groupSize: expected a divisor of the number of samples (" + std::to_string(a.n) + "), received " +
           std::to_string(st.value);
  if (st.code == rk::Status::BadIndex)
    return (a.group_ids ? "groupIds[" : "lengths[") + std::to_string(st.index) + "]: value " +
           std::to_string(st.value) + " is out of range";
  return "groupAdvantages failed";
}

Napi::Value GroupAdvantages(const Napi::CallbackInfo& info, bool async) {
  View r = Get(info, 0, "rewards", napi_float32_array);
  rk::GroupAdvantagesArgs a;
  a.num_rewards = Int(info, 1, "numRewards", 1, INT32_MAX);
  if (r.length % static_cast<size_t>(a.num_rewards) != 0)
    throw Napi::RangeError::New(info.Env(), "rewards: expected a length that is a multiple of numRewards");
  a.n = static_cast<int64_t>(r.length) / a.num_rewards;
  a.rewards = static_cast<const float*>(r.data);
  View w = Get(info, 2, "rewardWeights", napi_float64_array, true);
  if (w.data) Need(info, w, static_cast<size_t>(a.num_rewards), "rewardWeights");
  a.reward_weights = static_cast<const double*>(w.data);
  a.group_size = Int(info, 3, "groupSize", 0, INT32_MAX);
  View ids = Get(info, 4, "groupIds", napi_int32_array, true);
  a.num_groups = Int(info, 5, "numGroups", 0, INT32_MAX);
  if (a.group_size == 0) {
    if (!ids.data && a.n > 0) throw Napi::TypeError::New(info.Env(), "groupIds: expected an Int32Array");
    Need(info, ids, static_cast<size_t>(a.n), "groupIds");
    a.group_ids = static_cast<const int32_t*>(ids.data);
  } else {
    if (a.n % a.group_size != 0)
      throw Napi::RangeError::New(info.Env(), "groupSize: expected a divisor of the number of samples");
    a.num_groups = a.n / a.group_size;
  }
  a.estimator = static_cast<rk::AdvEstimator>(Int(info, 6, "estimator", 0, 5));
  a.scale = static_cast<rk::AdvScale>(Int(info, 7, "scale", 0, 2));
  a.multi = static_cast<rk::MultiReward>(Int(info, 8, "multiReward", 0, 1));
  a.eps = Num(info, 9, "eps");
  View lens = Get(info, 10, "lengths", napi_int32_array, true);
  if (lens.data) Need(info, lens, static_cast<size_t>(a.n), "lengths");
  a.lengths = static_cast<const int32_t*>(lens.data);
  if (a.estimator == rk::AdvEstimator::Opo && !a.lengths && a.n > 0)
    throw Napi::TypeError::New(info.Env(), "lengths: expected an Int32Array for opo");
  a.reward_min = Num(info, 11, "rewardMin");
  a.reward_max = Num(info, 12, "rewardMax");
  if (a.estimator == rk::AdvEstimator::Bnpo && !(a.reward_max > a.reward_min))
    throw Napi::RangeError::New(info.Env(), "rewardMax: expected a number above rewardMin");
  const size_t stats = static_cast<size_t>(a.num_groups) *
                       (a.multi == rk::MultiReward::NormalizeThenSum ? static_cast<size_t>(a.num_rewards) : 1);
  View adv = Get(info, 13, "out.advantages", napi_float32_array);
  Need(info, adv, static_cast<size_t>(a.n), "out.advantages");
  View gm = Get(info, 14, "out.groupMean", napi_float32_array);
  Need(info, gm, stats, "out.groupMean");
  View gs = Get(info, 15, "out.groupStd", napi_float32_array);
  Need(info, gs, stats, "out.groupStd");
  View zo = Get(info, 16, "zeroOut", napi_float64_array, true);
  if (zo.data) Need(info, zo, 1, "zeroOut");
  float* advp = static_cast<float*>(adv.data);
  float* gmp = static_cast<float*>(gm.data);
  float* gsp = static_cast<float*>(gs.data);
  double* zop = static_cast<double*>(zo.data);
  if (!async) {
    int64_t zero = 0;
    rk::Status st = rk::group_advantages(a, advp, gmp, gsp, &zero);
    if (!st.ok()) throw Napi::RangeError::New(info.Env(), AdvMessage(st, a));
    if (zop) *zop = static_cast<double>(zero);
    return Napi::Number::New(info.Env(), static_cast<double>(zero));
  }
  if (!zop) throw Napi::TypeError::New(info.Env(), "zeroOut: expected a Float64Array");
  return rkb::Run(info, true, [=]() {
    int64_t zero = 0;
    rk::Status st = rk::group_advantages(a, advp, gmp, gsp, &zero);
    *zop = static_cast<double>(zero);
    return AdvMessage(st, a);
  });
}

Napi::Value Ensemble(const Napi::CallbackInfo& info, bool async) {
  View r = Get(info, 0, "rewards", napi_float32_array);
  const int64_t m = Int(info, 1, "numModels", 1, INT32_MAX);
  if (r.length % static_cast<size_t>(m) != 0)
    throw Napi::RangeError::New(info.Env(), "rewards: expected a length that is a multiple of numModels");
  const int64_t n = static_cast<int64_t>(r.length) / m;
  const auto method = static_cast<rk::EnsembleMethod>(Int(info, 2, "method", 0, 2));
  const double lambda = Num(info, 3, "lambda");
  View out = Get(info, 4, "out", napi_float32_array);
  Need(info, out, static_cast<size_t>(n), "out");
  const float* rp = static_cast<const float*>(r.data);
  float* op = static_cast<float*>(out.data);
  return rkb::Run(info, async, [=]() {
    rk::ensemble_rewards(rp, n, m, method, lambda, op);
    return std::string();
  });
}

rk::TokenMask GetMask(const Napi::CallbackInfo& info, size_t i, size_t n) {
  View m = Get(info, i, "mask", napi_uint8_array, false, napi_float32_array);
  Need(info, m, n, "mask");
  rk::TokenMask tm;
  tm.data = m.data;
  tm.is_f32 = m.type == napi_float32_array;
  return tm;
}

Napi::Value Gae(const Napi::CallbackInfo& info, bool async) {
  View v = Get(info, 0, "values", napi_float32_array);
  const size_t n = v.length;
  View r = Get(info, 1, "rewards", napi_float32_array);
  Need(info, r, n, "rewards");
  rk::TokenMask mask = GetMask(info, 2, n);
  const int64_t T = Int(info, 3, "seqLen", 1, INT32_MAX);
  if (n % static_cast<size_t>(T) != 0)
    throw Napi::RangeError::New(info.Env(), "values: expected a length that is a multiple of seqLen");
  const double gamma = Num(info, 4, "gamma"), lambda = Num(info, 5, "lambda");
  View adv = Get(info, 6, "out.advantages", napi_float32_array);
  Need(info, adv, n, "out.advantages");
  View ret = Get(info, 7, "out.returns", napi_float32_array);
  Need(info, ret, n, "out.returns");
  const float* vp = static_cast<const float*>(v.data);
  const float* rp = static_cast<const float*>(r.data);
  float* ap = static_cast<float*>(adv.data);
  float* tp = static_cast<float*>(ret.data);
  const int64_t B = static_cast<int64_t>(n) / T;
  return rkb::Run(info, async, [=]() {
    rk::gae(vp, rp, mask, B, T, gamma, lambda, ap, tp);
    return std::string();
  });
}

Napi::Value Discounted(const Napi::CallbackInfo& info, bool async) {
  View r = Get(info, 0, "rewards", napi_float32_array);
  const size_t n = r.length;
  rk::TokenMask mask = GetMask(info, 1, n);
  const int64_t T = Int(info, 2, "seqLen", 1, INT32_MAX);
  if (n % static_cast<size_t>(T) != 0)
    throw Napi::RangeError::New(info.Env(), "rewards: expected a length that is a multiple of seqLen");
  const double gamma = Num(info, 3, "gamma");
  View out = Get(info, 4, "out", napi_float32_array);
  Need(info, out, n, "out");
  const float* rp = static_cast<const float*>(r.data);
  float* op = static_cast<float*>(out.data);
  const int64_t B = static_cast<int64_t>(n) / T;
  return rkb::Run(info, async, [=]() {
    rk::discounted_returns(rp, mask, B, T, gamma, op);
    return std::string();
  });
}

Napi::Value Whiten(const Napi::CallbackInfo& info, bool async) {
  View v = Get(info, 0, "values", napi_float32_array);
  const size_t n = v.length;
  rk::TokenMask mask = GetMask(info, 1, n);
  const bool shift = info[2].ToBoolean().Value();
  const bool unbiased = info[3].ToBoolean().Value();
  const double eps = Num(info, 4, "eps");
  View out = Get(info, 5, "out", napi_float32_array);
  Need(info, out, n, "out");
  const float* vp = static_cast<const float*>(v.data);
  float* op = static_cast<float*>(out.data);
  return rkb::Run(info, async, [=]() {
    rk::Status st = rk::masked_whiten(vp, mask, static_cast<int64_t>(n), shift, unbiased, eps, op);
    return st.ok() ? std::string()
                   : "mask[" + std::to_string(st.index) + "]: expected a finite weight >= 0";
  });
}

template <Napi::Value (*F)(const Napi::CallbackInfo&, bool)>
void Export(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return F(i, false); }));
  exports.Set(std::string(name) + "Async",
              Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return F(i, true); }));
}

void InitAdvantages(Napi::Env env, Napi::Object exports) {
  Export<GroupAdvantages>(env, exports, "groupAdvantages");
  Export<Ensemble>(env, exports, "ensembleRewards");
  Export<Gae>(env, exports, "gae");
  Export<Discounted>(env, exports, "discountedReturns");
  Export<Whiten>(env, exports, "maskedWhiten");
}

}  // namespace

RK_REGISTER_BINDING(advantages, InitAdvantages);
