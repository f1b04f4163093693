// Decoding of preferenceLoss, ktoLoss and tokenWeightedDpoLoss (lib/preference/), shared by the CPU
// addon (native/binding/preference.cc) and the CUDA addon (native/cuda_binding/preference.cc):
// slots, params and scalars by the names of layout.gen.h, every length rechecked.
#pragma once
#include <climits>
#include <cmath>
#include <string>

#include "../../kernels/preference.h"
#include "../slots.h"

// The family's ops, X(jsName, EntryPoint): both addons define these entry points and register them
// with RK_REGISTER_OPS (native/binding/common.h).
#define RK_PREFERENCE_OPS(X) \
  X(preferenceLoss, PreferenceLoss) \
  X(ktoLoss, KtoLoss) \
  X(tokenWeightedDpoLoss, TokenWeightedDpoLoss) \
  X(ldDpoLogps, LdDpoLogps)

namespace rkb {

namespace LPR = rkl::preferenceLoss;
namespace LKT = rkl::ktoLoss;
namespace LTW = rkl::tokenWeightedDpoLoss;
namespace LLD = rkl::ldDpoLogps;

// The loss and f-divergence codes of lib/preference/losses.ts are rk::PrefLoss's and rk::FDivergence's.
#define RK_SAME_CODE(ts, cc) static_cast<int>(cc) == LPR::ts
static_assert(LPR::loss_code::kCount == static_cast<int>(rk::PrefLoss::Sft) + 1 && LPR::loss_code::kCount == rk::kPrefLossCount,
              "preference losses: lib/preference/losses.ts and rk::PrefLoss disagree");
static_assert(RK_SAME_CODE(loss_code::sigmoid, rk::PrefLoss::Sigmoid) && RK_SAME_CODE(loss_code::robust, rk::PrefLoss::Robust) &&
                  RK_SAME_CODE(loss_code::hinge, rk::PrefLoss::Hinge) && RK_SAME_CODE(loss_code::ipo, rk::PrefLoss::Ipo) &&
                  RK_SAME_CODE(loss_code::exo_pair, rk::PrefLoss::ExoPair) && RK_SAME_CODE(loss_code::nca_pair, rk::PrefLoss::NcaPair) &&
                  RK_SAME_CODE(loss_code::bco_pair, rk::PrefLoss::BcoPair) && RK_SAME_CODE(loss_code::sppo_hard, rk::PrefLoss::SppoHard) &&
                  RK_SAME_CODE(loss_code::apo_zero, rk::PrefLoss::ApoZero) && RK_SAME_CODE(loss_code::apo_down, rk::PrefLoss::ApoDown) &&
                  RK_SAME_CODE(loss_code::discopop, rk::PrefLoss::Discopop) && RK_SAME_CODE(loss_code::simpo, rk::PrefLoss::Simpo) &&
                  RK_SAME_CODE(loss_code::cpo, rk::PrefLoss::Cpo) && RK_SAME_CODE(loss_code::orpo, rk::PrefLoss::Orpo) &&
                  RK_SAME_CODE(loss_code::bt, rk::PrefLoss::Bt) && RK_SAME_CODE(loss_code::sigmoid_norm, rk::PrefLoss::SigmoidNorm) &&
                  RK_SAME_CODE(loss_code::aot, rk::PrefLoss::Aot) && RK_SAME_CODE(loss_code::aot_unpaired, rk::PrefLoss::AotUnpaired) &&
                  RK_SAME_CODE(loss_code::sft, rk::PrefLoss::Sft),
              "preference losses: lib/preference/losses.ts and rk::PrefLoss disagree");
static_assert(LPR::fDivergence_code::kCount == static_cast<int>(rk::FDivergence::Alpha) + 1 &&
                  RK_SAME_CODE(fDivergence_code::reverse_kl, rk::FDivergence::ReverseKl) &&
                  RK_SAME_CODE(fDivergence_code::forward_kl, rk::FDivergence::ForwardKl) &&
                  RK_SAME_CODE(fDivergence_code::js_divergence, rk::FDivergence::Js) &&
                  RK_SAME_CODE(fDivergence_code::alpha_divergence, rk::FDivergence::Alpha),
              "f-divergences: lib/preference/losses.ts and rk::FDivergence disagree");
// The list weights are one param per loss code, in code order.
static_assert(LPR::param::mix_sft == LPR::param::mix_sigmoid + rk::kPrefLossCount - 1 &&
                  LPR::param::mix_bt == LPR::param::mix_sigmoid + static_cast<int>(rk::PrefLoss::Bt),
              "preferenceLoss: the mix_ params are one per loss, in code order");
static_assert(LPR::lengthAverage_code::score == 0 && LPR::lengthAverage_code::log_ratio == 1, "lengthAverage codes");
#undef RK_SAME_CODE
// The kernels (and the CUDA scalars) write loss, then the two metrics, in the layout's order.
static_assert(LPR::scalar::kCount == 3 && LPR::scalar::loss == 0 && LPR::scalar::rewardAccuracy == 1 &&
                  LPR::scalar::rewardMargin == 2, "preferenceLoss scalars: loss, rewardAccuracy, rewardMargin");
static_assert(LKT::scalar::kCount == 3 && LKT::scalar::loss == 0 && LKT::scalar::desirableRewardMean == 1 &&
                  LKT::scalar::undesirableRewardMean == 2, "ktoLoss scalars: loss, desirableRewardMean, undesirableRewardMean");
static_assert(LTW::scalar::kCount == 3 && LTW::scalar::loss == 0 && LTW::scalar::rewardAccuracy == 1 &&
                  LTW::scalar::rewardMargin == 2, "tokenWeightedDpoLoss scalars: loss, rewardAccuracy, rewardMargin");

// Pair outputs (P each) of preferenceLoss and tokenWeightedDpoLoss; the kernels' scalars are not here.
struct PairOutputs {
  float* losses = nullptr;
  float* chosen_rewards = nullptr;
  float* rejected_rewards = nullptr;
  float* grad_chosen = nullptr;
  float* grad_rejected = nullptr;
};

struct PreferenceLossCall {
  rk::PreferenceInputs in;
  rk::PreferenceParams p;
  PairOutputs out;
  bool needs_lengths = false;
};

inline PreferenceLossCall DecodePreferenceLoss(const OpArgs& a) {
  PreferenceLossCall c;
  const Slot& chosen = a.Need(LPR::slot::chosenLogps, {SlotType::F32});
  const size_t n = chosen.length;
  if (n < 1) throw a.Range("chosenLogps: expected at least one pair, received 0");
  const Slot& rejected = a.Need(LPR::slot::rejectedLogps, {SlotType::F32}, n);
  const Slot& refc = a.Maybe(LPR::slot::refChosenLogps, {SlotType::F32}, n);
  const Slot& refr = a.Maybe(LPR::slot::refRejectedLogps, {SlotType::F32}, n);
  if (refc.present != refr.present)
    throw Napi::TypeError::New(a.env, "refChosenLogps: expected both reference arrays or neither");
  const Slot& lw = a.Maybe(LPR::slot::chosenLengths, {SlotType::I32}, n);
  const Slot& ll = a.Maybe(LPR::slot::rejectedLengths, {SlotType::I32}, n);
  const Slot& margin = a.Maybe(LPR::slot::margin, {SlotType::F32}, n);
  const Slot& prob = a.Maybe(LPR::slot::preferenceProb, {SlotType::F32}, n);

  rk::PreferenceParams& p = c.p;
  p.loss = static_cast<rk::PrefLoss>(a.Enum(LPR::param::loss, "loss", LPR::loss_code::kCount));
  p.fdiv = static_cast<rk::FDivergence>(a.Enum(LPR::param::fDivergence, "fDivergence", LPR::fDivergence_code::kCount));
  p.beta = a.params[LPR::param::beta];
  p.label_smoothing = a.params[LPR::param::labelSmoothing];
  p.gamma = a.params[LPR::param::gamma];
  p.alpha = a.params[LPR::param::alpha];
  p.tau = a.params[LPR::param::tau];
  p.margin = a.params[LPR::param::margin];
  p.f_alpha = a.params[LPR::param::fAlpha];
  p.nll_weight = a.params[LPR::param::nllWeight];
  p.average_scores = a.Enum(LPR::param::lengthAverage, "lengthAverage", LPR::lengthAverage_code::kCount) ==
                     LPR::lengthAverage_code::score;
  p.mixed = a.params[LPR::param::lossWeights] != 0;
  for (int k = 0; k < rk::kPrefLossCount; ++k) {
    const double w = a.params[LPR::param::mix_sigmoid + k];
    if (!std::isfinite(w) || (!p.mixed && w != 0) || (w != 0 && !rk::mixable_loss(static_cast<rk::PrefLoss>(k))))
      throw a.Range(std::string("lossWeights: expected finite weights of TRL's DPO loss types, received ") +
                    JsNumber(w) + " for '" + rk::kPrefLossNames[k] + "'");
    p.mix[k] = w;
  }
  if (!(p.beta > 0)) throw a.Range("beta: expected a positive number");
  if (!(p.label_smoothing >= 0 && p.label_smoothing < 0.5)) throw a.Range("labelSmoothing: expected a number in [0, 0.5)");
  if (!(p.tau > 0)) throw a.Range("tau: expected a positive number");
  if (!(p.f_alpha > 0)) throw a.Range("fAlpha: expected a positive number");
  c.needs_lengths = rk::preference_needs_lengths(p);
  if (c.needs_lengths && (!lw.present || !ll.present))
    throw Napi::TypeError::New(a.env, "chosenLengths: this loss needs chosenLengths and rejectedLengths");

  c.out.losses = a.Out(LPR::slot::losses, {SlotType::F32}, n).as<float>();
  c.out.chosen_rewards = a.Out(LPR::slot::chosenRewards, {SlotType::F32}, n).as<float>();
  c.out.rejected_rewards = a.Out(LPR::slot::rejectedRewards, {SlotType::F32}, n).as<float>();
  c.out.grad_chosen = a.Out(LPR::slot::gradChosen, {SlotType::F32}, n).as<float>();
  c.out.grad_rejected = a.Out(LPR::slot::gradRejected, {SlotType::F32}, n).as<float>();

  rk::PreferenceInputs& in = c.in;
  in.pairs = static_cast<int64_t>(n);
  in.chosen = chosen.as<const float>();
  in.rejected = rejected.as<const float>();
  in.ref_chosen = refc.as<const float>();
  in.ref_rejected = refr.as<const float>();
  in.chosen_len = lw.as<const int32_t>();
  in.rejected_len = ll.as<const int32_t>();
  in.margin = margin.as<const float>();
  in.preference_prob = prob.as<const float>();
  return c;
}

struct KtoLossCall {
  int64_t n = 0;
  const float* logp = nullptr;
  const float* ref = nullptr;  // null: 0
  const uint8_t* desirable = nullptr;
  rk::KtoParams p;
  float* losses = nullptr;
  float* rewards = nullptr;
  float* grad = nullptr;
};

inline KtoLossCall DecodeKtoLoss(const OpArgs& a) {
  KtoLossCall c;
  const Slot& logp = a.Need(LKT::slot::policyLogps, {SlotType::F32});
  const size_t n = logp.length;
  if (n < 1) throw a.Range("policyLogps: expected at least one example, received 0");
  const Slot& ref = a.Maybe(LKT::slot::refLogps, {SlotType::F32}, n);
  const Slot& des = a.Need(LKT::slot::desirable, {SlotType::U8}, n);
  c.p.beta = a.params[LKT::param::beta];
  c.p.kl = a.params[LKT::param::kl];
  c.p.desirable_weight = a.params[LKT::param::desirableWeight];
  c.p.undesirable_weight = a.params[LKT::param::undesirableWeight];
  if (!(c.p.beta > 0)) throw a.Range("beta: expected a positive number");
  c.n = static_cast<int64_t>(n);
  c.logp = logp.as<const float>();
  c.ref = ref.as<const float>();
  c.desirable = des.as<const uint8_t>();
  c.losses = a.Out(LKT::slot::losses, {SlotType::F32}, n).as<float>();
  c.rewards = a.Out(LKT::slot::rewards, {SlotType::F32}, n).as<float>();
  c.grad = a.Out(LKT::slot::grad, {SlotType::F32}, n).as<float>();
  return c;
}

struct TokenWeightedDpoCall {
  rk::TgdpoInputs in;
  double beta = 0.1, alpha = 0.5;
  PairOutputs out;
};

inline TokenWeightedDpoCall DecodeTokenWeightedDpoLoss(const OpArgs& a) {
  TokenWeightedDpoCall c;
  const double Td = a.Param(LTW::param::seqLen, "seqLen", 1, INT32_MAX);
  if (std::floor(Td) != Td) throw a.Range("seqLen: expected an integer");
  const int64_t T = static_cast<int64_t>(Td);
  const Slot& cw = a.Need(LTW::slot::chosenLogps, {SlotType::F32});
  const size_t nt = cw.length;
  if (nt == 0 || nt % static_cast<size_t>(T) != 0)
    throw a.Range("chosenLogps: expected a positive length that is a multiple of seqLen (" + std::to_string(T) +
                  "), received length " + std::to_string(nt));
  const int64_t B = static_cast<int64_t>(nt) / T;
  const Slot& mw = a.Need(LTW::slot::chosenMask, {SlotType::U8, SlotType::F32}, nt);
  a.Need(LTW::slot::rejectedMask, {mw.type}, nt);
  c.beta = a.params[LTW::param::beta];
  c.alpha = a.params[LTW::param::alpha];
  if (!(c.beta > 0)) throw a.Range("beta: expected a positive number");
  if (!std::isfinite(c.alpha)) throw a.Range("alpha: expected a finite number");

  rk::TgdpoInputs& in = c.in;
  in.batch = B;
  in.seq_len = T;
  in.chosen = cw.as<const float>();
  in.rejected = a.Need(LTW::slot::rejectedLogps, {SlotType::F32}, nt).as<const float>();
  in.ref_chosen = a.Need(LTW::slot::refChosenLogps, {SlotType::F32}, nt).as<const float>();
  in.ref_rejected = a.Need(LTW::slot::refRejectedLogps, {SlotType::F32}, nt).as<const float>();
  in.chosen_token_rewards = a.Need(LTW::slot::chosenTokenRewards, {SlotType::F32}, nt).as<const float>();
  in.rejected_token_rewards = a.Need(LTW::slot::rejectedTokenRewards, {SlotType::F32}, nt).as<const float>();
  in.chosen_mask = mw.data;
  in.rejected_mask = a[LTW::slot::rejectedMask].data;
  in.mask_is_f32 = mw.type == SlotType::F32;

  const size_t b = static_cast<size_t>(B);
  c.out.losses = a.Out(LTW::slot::losses, {SlotType::F32}, b).as<float>();
  c.out.chosen_rewards = a.Out(LTW::slot::chosenRewards, {SlotType::F32}, b).as<float>();
  c.out.rejected_rewards = a.Out(LTW::slot::rejectedRewards, {SlotType::F32}, b).as<float>();
  c.out.grad_chosen = a.Out(LTW::slot::gradChosen, {SlotType::F32}, nt).as<float>();
  c.out.grad_rejected = a.Out(LTW::slot::gradRejected, {SlotType::F32}, nt).as<float>();
  return c;
}

// ldDpoLogps: (P, T) token log-probs, optional u8 masks, the (P) sequence log-probs and the
// optional (P, T) weights (both or neither).
struct LdDpoCall {
  rk::LdInputs in;
  rk::LdOutputs out;
  double alpha = 1.0;
};

inline LdDpoCall DecodeLdDpoLogps(const OpArgs& a) {
  LdDpoCall c;
  const double T = a.params[LLD::param::seqLen];
  if (!(T >= 1 && T <= static_cast<double>(INT_MAX) && T == std::floor(T)))
    throw a.Range("seqLen: expected an integer in [1, 2147483647]");
  const size_t t = static_cast<size_t>(T);
  const Slot& cw = a.Need(LLD::slot::chosenTokenLogps, {SlotType::F32});
  const size_t n = cw.length;
  if (n == 0 || n % t != 0) throw a.Range("seqLen: expected a divisor of the length of chosenTokenLogps");
  const Slot& cl = a.Need(LLD::slot::rejectedTokenLogps, {SlotType::F32}, n);
  const Slot& mw = a.Maybe(LLD::slot::chosenMask, {SlotType::U8}, n);
  const Slot& ml = a.Maybe(LLD::slot::rejectedMask, {SlotType::U8}, n);
  c.alpha = a.params[LLD::param::alpha];
  if (!(c.alpha >= 0 && c.alpha <= 1)) throw a.Range("alpha: expected a number in [0, 1]");
  const bool weights = a.params[LLD::param::returnWeights] != 0;
  const size_t pairs = n / t;
  c.in.batch = static_cast<int64_t>(pairs);
  c.in.seq_len = static_cast<int64_t>(t);
  c.in.chosen = cw.as<const float>();
  c.in.rejected = cl.as<const float>();
  c.in.chosen_mask = mw.as<const uint8_t>();
  c.in.rejected_mask = ml.as<const uint8_t>();
  c.out.chosen = a.Out(LLD::slot::chosenLogps, {SlotType::F32}, pairs).as<float>();
  c.out.rejected = a.Out(LLD::slot::rejectedLogps, {SlotType::F32}, pairs).as<float>();
  if (weights) {
    c.out.chosen_weights = a.Out(LLD::slot::chosenWeights, {SlotType::F32}, n).as<float>();
    c.out.rejected_weights = a.Out(LLD::slot::rejectedWeights, {SlotType::F32}, n).as<float>();
  }
  return c;
}

}  // namespace rkb
