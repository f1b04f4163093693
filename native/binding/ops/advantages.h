// Decoding of groupAdvantages, ensembleRewards, gae, discountedReturns, maskedWhiten, tokenAdvantages and klRewards
// (lib/advantages/), shared by the CPU addon (native/binding/advantages.cc) and the CUDA addon
// (native/cuda_binding/advantages.cc): slots, params and scalars by the names of layout.gen.h, every
// length rechecked.
#pragma once
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <string>

#include "../../kernels/advantages.h"
#include "../slots.h"

// The family's ops, X(jsName, EntryPoint): both addons define these entry points and register them
// with RK_REGISTER_OPS (native/binding/common.h).
#define RK_ADVANTAGES_OPS(X) \
  X(groupAdvantages, GroupAdvantages) \
  X(ensembleRewards, EnsembleRewards) \
  X(gae, Gae) \
  X(discountedReturns, DiscountedReturns) \
  X(maskedWhiten, MaskedWhiten) \
  X(tokenAdvantages, TokenAdvantages) \
  X(klRewards, KlRewards) \
  X(gatedRewards, GatedRewards) \
  X(discountedCumsum, DiscountedCumsum) \
  X(lagrangianMix, LagrangianMix)

namespace rkb {

namespace LGA = rkl::groupAdvantages;
namespace LER = rkl::ensembleRewards;
namespace LGAE = rkl::gae;
namespace LDR = rkl::discountedReturns;
namespace LMW = rkl::maskedWhiten;
namespace LTA = rkl::tokenAdvantages;
namespace LKR = rkl::klRewards;
namespace LGR = rkl::gatedRewards;
namespace LDC = rkl::discountedCumsum;
namespace LLM = rkl::lagrangianMix;

// The enum tables of lib/advantages/enums.ts are the C++ enums' codes.
static_assert(LGA::estimator_code::kCount == rk::kAdvEstimatorCount &&
                  LGA::estimator_code::gpg == static_cast<int>(rk::AdvEstimator::Gpg) && LGA::estimator_code::grpo == static_cast<int>(rk::AdvEstimator::Grpo) &&
                  LGA::estimator_code::rloo == static_cast<int>(rk::AdvEstimator::Rloo) &&
                  LGA::estimator_code::reinforce_pp_baseline == static_cast<int>(rk::AdvEstimator::ReinforcePPBaseline) &&
                  LGA::estimator_code::opo == static_cast<int>(rk::AdvEstimator::Opo) &&
                  LGA::estimator_code::passk == static_cast<int>(rk::AdvEstimator::PassK) &&
                  LGA::estimator_code::bnpo == static_cast<int>(rk::AdvEstimator::Bnpo),
              "groupAdvantages estimators: lib/advantages/enums.ts and native/kernels/advantages.h disagree");
static_assert(LGA::scale_code::kCount == 3 && LGA::scale_code::group == static_cast<int>(rk::AdvScale::Group) &&
                  LGA::scale_code::batch == static_cast<int>(rk::AdvScale::Batch) &&
                  LGA::scale_code::none == static_cast<int>(rk::AdvScale::None),
              "groupAdvantages scales: lib/advantages/enums.ts and native/kernels/advantages.h disagree");
static_assert(LGA::multiReward_code::kCount == 2 &&
                  LGA::multiReward_code::sum_then_normalize == static_cast<int>(rk::MultiReward::SumThenNormalize) &&
                  LGA::multiReward_code::normalize_then_sum == static_cast<int>(rk::MultiReward::NormalizeThenSum),
              "groupAdvantages multiReward: lib/advantages/enums.ts and native/kernels/advantages.h disagree");
static_assert(LER::method_code::kCount == 3 && LER::method_code::mean == static_cast<int>(rk::EnsembleMethod::Mean) &&
                  LER::method_code::min == static_cast<int>(rk::EnsembleMethod::Min) &&
                  LER::method_code::uwo == static_cast<int>(rk::EnsembleMethod::Uwo),
              "ensembleRewards methods: lib/advantages/enums.ts and native/kernels/advantages.h disagree");
static_assert(LGA::scalar::kCount == 1, "groupAdvantages scalars: zeroStdGroups only");
static_assert(LTA::estimator_code::kCount == rk::kTokenEstimatorCount &&
                  LTA::estimator_code::reinforce_plus_plus == static_cast<int>(rk::TokenEstimator::ReinforcePP) &&
                  LTA::estimator_code::remax == static_cast<int>(rk::TokenEstimator::Remax) &&
                  LTA::estimator_code::optimal_token_baseline == static_cast<int>(rk::TokenEstimator::Otb) &&
                  LTA::estimator_code::tir_optimal_token_baseline == static_cast<int>(rk::TokenEstimator::TirOtb),
              "tokenAdvantages estimators: lib/advantages/token-advantages.ts and native/core/token_advantages.h disagree");
static_assert(LKR::estimator_code::kCount == rk::kKlRewardEstimatorCount &&
                  LKR::estimator_code::k1 == static_cast<int>(rk::KlRewardEstimator::K1) &&
                  LKR::estimator_code::k2 == static_cast<int>(rk::KlRewardEstimator::K2) &&
                  LKR::estimator_code::k3 == static_cast<int>(rk::KlRewardEstimator::K3) &&
                  LKR::estimator_code::abs == static_cast<int>(rk::KlRewardEstimator::Abs) &&
                  LKR::estimator_code::k3_ == static_cast<int>(rk::KlRewardEstimator::K3Plus),
              "klRewards estimators: lib/policy/enums.ts and native/core/token_advantages.h disagree");
static_assert(LKR::scalar::kCount == 1, "klRewards scalars: klMean only");

// params[i] as an integer in [lo, hi].
inline int64_t IntParam(const OpArgs& a, int i, const char* name, int64_t lo, int64_t hi) {
  const double d = a.Param(i, name, static_cast<double>(lo), static_cast<double>(hi));
  if (std::floor(d) != d) throw a.Range(std::string("params.") + name + ": expected an integer");
  return static_cast<int64_t>(d);
}

// params[i] as a flag (0 or 1).
inline bool FlagParam(const OpArgs& a, int i, const char* name) { return a.Enum(i, name, 2) != 0; }

inline rk::TokenMask TokenMaskOf(const Slot& m) {
  rk::TokenMask t;
  t.data = m.data;
  t.is_f32 = m.type == SlotType::F32;
  return t;
}

struct GroupAdvantagesCall {
  rk::GroupAdvantagesArgs a;  // reward_weights: host doubles (CPU) or device doubles (CUDA)
  float* advantages = nullptr;
  float* group_mean = nullptr;
  float* group_std = nullptr;
};

// `device`: the reward weights arrive as the bytes of K doubles in a u8 device slot (the facade
// uploads them); on the host as a Float64Array of K.
inline GroupAdvantagesCall DecodeGroupAdvantages(const OpArgs& a, bool device) {
  GroupAdvantagesCall c;
  rk::GroupAdvantagesArgs& g = c.a;
  const Slot& r = a.Need(LGA::slot::rewards, {SlotType::F32});
  g.num_rewards = IntParam(a, LGA::param::numRewards, "numRewards", 1, INT32_MAX);
  const size_t K = static_cast<size_t>(g.num_rewards);
  if (r.length % K != 0) throw a.Range("rewards: expected a length that is a multiple of numRewards");
  g.n = static_cast<int64_t>(r.length / K);
  if (device && g.n > INT32_MAX) throw a.Range("rewards: more than 2^31 - 1 samples");
  const size_t n = static_cast<size_t>(g.n);
  g.rewards = r.as<const float>();
  const Slot& w = device ? a.Maybe(LGA::slot::rewardWeights, {SlotType::U8}, static_cast<int64_t>(K * sizeof(double)))
                         : a.Maybe(LGA::slot::rewardWeights, {SlotType::F64}, static_cast<int64_t>(K));
  g.reward_weights = w.present ? w.as<const double>() : nullptr;
  g.group_size = IntParam(a, LGA::param::groupSize, "groupSize", 0, INT32_MAX);
  const Slot& ids = a.Maybe(LGA::slot::groupIds, {SlotType::I32});
  g.num_groups = IntParam(a, LGA::param::numGroups, "numGroups", 0, INT32_MAX);
  if (g.group_size == 0) {
    if (!ids.present && g.n > 0) throw Napi::TypeError::New(a.env, "groupIds: expected an Int32Array");
    if (ids.present) a.Need(LGA::slot::groupIds, {SlotType::I32}, g.n);
    g.group_ids = ids.present ? ids.as<const int32_t>() : nullptr;
  } else {
    if (g.n % g.group_size != 0) throw a.Range("groupSize: expected a divisor of the number of samples");
    g.num_groups = g.n / g.group_size;
  }
  g.estimator = static_cast<rk::AdvEstimator>(a.Enum(LGA::param::estimator, "estimator", LGA::estimator_code::kCount));
  g.scale = static_cast<rk::AdvScale>(a.Enum(LGA::param::scale, "scale", LGA::scale_code::kCount));
  g.multi = static_cast<rk::MultiReward>(a.Enum(LGA::param::multiReward, "multiReward", LGA::multiReward_code::kCount));
  g.eps = a.Param(LGA::param::eps, "eps", 0, DBL_MAX);
  const Slot& lens = a.Maybe(LGA::slot::lengths, {SlotType::I32}, g.n);
  g.lengths = lens.present ? lens.as<const int32_t>() : nullptr;
  if (g.estimator == rk::AdvEstimator::Opo && !g.lengths && g.n > 0)
    throw Napi::TypeError::New(a.env, "lengths: expected an Int32Array for opo");
  g.reward_min = a.Param(LGA::param::rewardMin, "rewardMin", -DBL_MAX, DBL_MAX);
  g.reward_max = a.Param(LGA::param::rewardMax, "rewardMax", -DBL_MAX, DBL_MAX);
  if (g.estimator == rk::AdvEstimator::Bnpo && !(g.reward_max > g.reward_min))
    throw a.Range("rewardMax: expected a number above rewardMin");
  g.f_norm = a.Param(LGA::param::fNorm, "fNorm", DBL_MIN, DBL_MAX);
  g.solo_self = a.Enum(LGA::param::singletonBaseline, "singletonBaseline", LGA::singletonBaseline_code::kCount) ==
                LGA::singletonBaseline_code::self;
  const int64_t stats = g.num_groups * (g.multi == rk::MultiReward::NormalizeThenSum ? g.num_rewards : 1);
  c.advantages = a.Out(LGA::slot::advantages, {SlotType::F32}, static_cast<int64_t>(n)).as<float>();
  c.group_mean = a.Out(LGA::slot::groupMean, {SlotType::F32}, stats).as<float>();
  c.group_std = a.Out(LGA::slot::groupStd, {SlotType::F32}, stats).as<float>();
  return c;
}

struct EnsembleRewardsCall {
  const float* rewards = nullptr;
  int64_t n = 0, m = 1;
  rk::EnsembleMethod method = rk::EnsembleMethod::Mean;
  double lambda = 0;
  float* out = nullptr;
};

inline EnsembleRewardsCall DecodeEnsembleRewards(const OpArgs& a) {
  EnsembleRewardsCall c;
  const Slot& r = a.Need(LER::slot::rewards, {SlotType::F32});
  c.m = IntParam(a, LER::param::numModels, "numModels", 1, INT32_MAX);
  if (r.length % static_cast<size_t>(c.m) != 0) throw a.Range("rewards: expected a length that is a multiple of numModels");
  c.n = static_cast<int64_t>(r.length) / c.m;
  c.rewards = r.as<const float>();
  c.method = static_cast<rk::EnsembleMethod>(a.Enum(LER::param::method, "method", LER::method_code::kCount));
  c.lambda = a.Param(LER::param::lambda, "lambda", 0, DBL_MAX);
  c.out = a.Out(LER::slot::out, {SlotType::F32}, c.n).as<float>();
  return c;
}

// The (B, T) shape of `n` elements with T = params[seq_len] (a divisor of n; `what` names the array).
inline int64_t SeqLenOf(const OpArgs& a, int seq_len, size_t n, const char* what) {
  const int64_t T = IntParam(a, seq_len, "seqLen", 1, INT32_MAX);
  if (n % static_cast<size_t>(T) != 0) throw a.Range(std::string(what) + ": expected a length that is a multiple of seqLen");
  return T;
}

struct GaeCall {
  const float* values = nullptr;
  const float* rewards = nullptr;
  rk::TokenMask mask;
  int64_t n = 0, rows = 0, cols = 1;
  double gamma = 1, lambda = 1;
  bool whiten = false;
  float* advantages = nullptr;
  float* returns = nullptr;
};

inline GaeCall DecodeGae(const OpArgs& a) {
  GaeCall c;
  const Slot& v = a.Need(LGAE::slot::values, {SlotType::F32});
  const size_t n = v.length;
  c.values = v.as<const float>();
  c.rewards = a.Need(LGAE::slot::rewards, {SlotType::F32}, static_cast<int64_t>(n)).as<const float>();
  c.mask = TokenMaskOf(a.Need(LGAE::slot::mask, {SlotType::U8, SlotType::F32}, static_cast<int64_t>(n)));
  c.cols = SeqLenOf(a, LGAE::param::seqLen, n, "values");
  c.n = static_cast<int64_t>(n);
  c.rows = c.n / c.cols;
  c.gamma = a.Param(LGAE::param::gamma, "gamma", 0, 1);
  c.lambda = a.Param(LGAE::param::lambda, "lambda", 0, 1);
  c.whiten = FlagParam(a, LGAE::param::whiten, "whiten");
  c.advantages = a.Out(LGAE::slot::advantages, {SlotType::F32}, c.n).as<float>();
  c.returns = a.Out(LGAE::slot::returns, {SlotType::F32}, c.n).as<float>();
  if (n > 0 && c.advantages == c.returns) throw a.Range("out.returns: expected a buffer apart from out.advantages");
  return c;
}

struct DiscountedReturnsCall {
  const float* rewards = nullptr;
  rk::TokenMask mask;
  int64_t rows = 0, cols = 1;
  double gamma = 1;
  float* out = nullptr;
};

inline DiscountedReturnsCall DecodeDiscountedReturns(const OpArgs& a) {
  DiscountedReturnsCall c;
  const Slot& r = a.Need(LDR::slot::rewards, {SlotType::F32});
  const size_t n = r.length;
  c.rewards = r.as<const float>();
  c.mask = TokenMaskOf(a.Need(LDR::slot::mask, {SlotType::U8, SlotType::F32}, static_cast<int64_t>(n)));
  c.cols = SeqLenOf(a, LDR::param::seqLen, n, "rewards");
  c.rows = static_cast<int64_t>(n) / c.cols;
  c.gamma = a.Param(LDR::param::gamma, "gamma", 0, 1);
  c.out = a.Out(LDR::slot::out, {SlotType::F32}, static_cast<int64_t>(n)).as<float>();
  return c;
}

struct MaskedWhitenCall {
  const float* values = nullptr;
  rk::TokenMask mask;
  int64_t n = 0;
  bool shift_mean = true, unbiased = true;
  double eps = 1e-8;
  float* out = nullptr;
};

inline MaskedWhitenCall DecodeMaskedWhiten(const OpArgs& a) {
  MaskedWhitenCall c;
  const Slot& v = a.Need(LMW::slot::values, {SlotType::F32});
  c.n = static_cast<int64_t>(v.length);
  c.values = v.as<const float>();
  c.mask = TokenMaskOf(a.Need(LMW::slot::mask, {SlotType::U8, SlotType::F32}, c.n));
  c.shift_mean = FlagParam(a, LMW::param::shiftMean, "shiftMean");
  c.unbiased = FlagParam(a, LMW::param::unbiased, "unbiased");
  c.eps = a.Param(LMW::param::eps, "eps", 0, DBL_MAX);
  c.out = a.Out(LMW::slot::out, {SlotType::F32}, c.n).as<float>();
  return c;
}

// A nullable (B, T) mask: data null = every token counts.
inline rk::TokenMask OptionalMaskOf(const OpArgs& a, int slot, int64_t n) {
  const Slot& m = a.Maybe(slot, {SlotType::U8, SlotType::F32}, n);
  rk::TokenMask t;
  if (m.present) t = TokenMaskOf(m);
  return t;
}

struct TokenAdvantagesCall {
  rk::TokenAdvantagesArgs a;
  float* advantages = nullptr;
  float* returns = nullptr;
};

inline TokenAdvantagesCall DecodeTokenAdvantages(const OpArgs& a) {
  TokenAdvantagesCall c;
  rk::TokenAdvantagesArgs& g = c.a;
  const Slot& r = a.Need(LTA::slot::rewards, {SlotType::F32});
  const size_t n = r.length;
  const int64_t N = static_cast<int64_t>(n);
  g.rewards = r.as<const float>();
  g.cols = SeqLenOf(a, LTA::param::seqLen, n, "rewards");
  g.rows = N / g.cols;
  g.mask = OptionalMaskOf(a, LTA::slot::mask, N);
  g.estimator = static_cast<rk::TokenEstimator>(a.Enum(LTA::param::estimator, "estimator", LTA::estimator_code::kCount));
  g.gamma = a.Param(LTA::param::gamma, "gamma", 0, 1);
  if (g.estimator == rk::TokenEstimator::Remax)
    g.baselines = a.Need(LTA::slot::baselines, {SlotType::F32}, g.rows).as<const float>();
  const bool otb = g.estimator == rk::TokenEstimator::Otb || g.estimator == rk::TokenEstimator::TirOtb;
  if (otb) {
    g.logprobs = a.Need(LTA::slot::logprobs, {SlotType::F32}, N).as<const float>();
    g.sum_pi_sq = a.Need(LTA::slot::sumPiSquared, {SlotType::F32}, N).as<const float>();
    const Slot& w = a.Maybe(LTA::slot::isWeights, {SlotType::F32}, N);
    g.is_weights = w.present ? w.as<const float>() : nullptr;
    g.group_size = IntParam(a, LTA::param::groupSize, "groupSize", 0, INT32_MAX);
    g.num_groups = IntParam(a, LTA::param::numGroups, "numGroups", 0, INT32_MAX);
    if (g.group_size == 0) {
      const Slot& ids = a.Maybe(LTA::slot::groupIds, {SlotType::I32}, g.rows);
      if (!ids.present && g.rows > 0) throw Napi::TypeError::New(a.env, "groupIds: expected an Int32Array");
      g.group_ids = ids.present ? ids.as<const int32_t>() : nullptr;
      if (g.num_groups > g.rows) throw a.Range("numGroups: expected at most the number of sequences");
    } else {
      if (g.rows % g.group_size != 0) throw a.Range("groupSize: expected a divisor of the number of sequences");
      g.num_groups = g.rows / g.group_size;
    }
  }
  g.zero_tail = FlagParam(a, LTA::param::handleZeroTail, "handleZeroTail");
  g.eps = a.Param(LTA::param::eps, "eps", 0, DBL_MAX);
  c.advantages = a.Out(LTA::slot::advantages, {SlotType::F32}, N).as<float>();
  c.returns = a.Out(LTA::slot::returns, {SlotType::F32}, N).as<float>();
  if (n > 0 && c.advantages == c.returns) throw a.Range("out.returns: expected a buffer apart from out.advantages");
  return c;
}

struct KlRewardsCall {
  const float* scores = nullptr;
  const float* logprobs = nullptr;
  const float* ref = nullptr;
  rk::TokenMask mask;
  int64_t rows = 0, cols = 1;
  rk::KlRewardEstimator estimator = rk::KlRewardEstimator::K1;
  double beta = 0;
  float* rewards = nullptr;
};

inline KlRewardsCall DecodeKlRewards(const OpArgs& a) {
  KlRewardsCall c;
  const Slot& s = a.Need(LKR::slot::scores, {SlotType::F32});
  const size_t n = s.length;
  const int64_t N = static_cast<int64_t>(n);
  c.scores = s.as<const float>();
  c.cols = SeqLenOf(a, LKR::param::seqLen, n, "scores");
  c.rows = N / c.cols;
  c.logprobs = a.Need(LKR::slot::logprobs, {SlotType::F32}, N).as<const float>();
  c.ref = a.Need(LKR::slot::refLogprobs, {SlotType::F32}, N).as<const float>();
  c.mask = OptionalMaskOf(a, LKR::slot::mask, N);
  c.estimator = static_cast<rk::KlRewardEstimator>(a.Enum(LKR::param::estimator, "estimator", LKR::estimator_code::kCount));
  c.beta = a.Param(LKR::param::beta, "beta", -DBL_MAX, DBL_MAX);
  c.rewards = a.Out(LKR::slot::rewards, {SlotType::F32}, N).as<float>();
  return c;
}

// ---- reward mixing (native/core/reward_mix.h) ----------------------------------------------------

struct GatedRewardsCall {
  const float *high = nullptr, *low = nullptr;
  rk::TokenMask mask;
  int64_t rows = 0, cols = 1;
  double threshold = 0;
  float* out = nullptr;
};

inline GatedRewardsCall DecodeGatedRewards(const OpArgs& a) {
  GatedRewardsCall c;
  const Slot& low = a.Need(LGR::slot::lowRewards, {SlotType::F32});
  const size_t n = low.length;
  c.low = low.as<const float>();
  c.cols = SeqLenOf(a, LGR::param::seqLen, n, "lowRewards");
  c.rows = static_cast<int64_t>(n) / c.cols;
  c.high = a.Need(LGR::slot::highRewards, {SlotType::F32}, c.rows).as<const float>();
  c.mask = TokenMaskOf(a.Need(LGR::slot::mask, {SlotType::U8, SlotType::F32}, static_cast<int64_t>(n)));
  c.threshold = a.Param(LGR::param::threshold, "threshold", -DBL_MAX, DBL_MAX);
  c.out = a.Out(LGR::slot::out, {SlotType::F32}, c.rows).as<float>();
  return c;
}

struct DiscountedCumsumCall {
  const float* values = nullptr;
  rk::TokenMask mask;
  int64_t rows = 0, cols = 1;
  double gamma = 1;
  bool adjoint = false;
  float* out = nullptr;
};

inline DiscountedCumsumCall DecodeDiscountedCumsum(const OpArgs& a) {
  DiscountedCumsumCall c;
  const Slot& v = a.Need(LDC::slot::values, {SlotType::F32});
  const size_t n = v.length;
  c.values = v.as<const float>();
  c.mask = TokenMaskOf(a.Need(LDC::slot::mask, {SlotType::U8, SlotType::F32}, static_cast<int64_t>(n)));
  c.cols = SeqLenOf(a, LDC::param::seqLen, n, "values");
  c.rows = static_cast<int64_t>(n) / c.cols;
  c.gamma = a.Param(LDC::param::gamma, "gamma", 0, 1);
  c.adjoint = FlagParam(a, LDC::param::adjoint, "adjoint");
  c.out = a.Out(LDC::slot::out, {SlotType::F32}, static_cast<int64_t>(n)).as<float>();
  return c;
}

struct LagrangianMixCall {
  const float *adv = nullptr, *kl = nullptr, *xi = nullptr, *grad_mixed = nullptr;
  int64_t k = 1, n = 0;
  float *mixed = nullptr, *grad_xi = nullptr;
};

inline LagrangianMixCall DecodeLagrangianMix(const OpArgs& a) {
  LagrangianMixCall c;
  c.k = IntParam(a, LLM::param::numRewards, "numRewards", 1, INT_MAX);
  const Slot& adv = a.Need(LLM::slot::advantages, {SlotType::F32});
  if (adv.length % static_cast<size_t>(c.k) != 0)
    throw a.Range("advantages: expected a length divisible by numRewards (" + std::to_string(c.k) + "), received " +
                  std::to_string(adv.length));
  c.n = static_cast<int64_t>(adv.length) / c.k;
  c.adv = adv.as<const float>();
  c.kl = a.Need(LLM::slot::klAdvantages, {SlotType::F32}, c.n).as<const float>();
  c.xi = a.Need(LLM::slot::xi, {SlotType::F32}, c.k).as<const float>();
  const Slot& g = a.Maybe(LLM::slot::gradMixed, {SlotType::F32}, c.n);
  c.grad_mixed = g.present ? g.as<const float>() : nullptr;
  c.mixed = a.Out(LLM::slot::mixed, {SlotType::F32}, c.n).as<float>();
  if (c.grad_mixed) c.grad_xi = a.Out(LLM::slot::gradXi, {SlotType::F32}, c.k).as<float>();
  return c;
}

}  // namespace rkb
