// Decoding of clipCovPolicyLoss, klCovPolicyLoss and highEntropyMask (lib/policy/), CPU-only ops (their
// selection is a batch-wide order statistic; native/kernels/selection.h): slots and params by the
// names of layout.gen.h, every length rechecked.
#pragma once
#include <climits>
#include <cmath>
#include <string>

#include "../../kernels/selection.h"
#include "../slots.h"

#define RK_SELECTION_OPS(X)                  \
  X(clipCovPolicyLoss, ClipCovPolicyLoss)    \
  X(klCovPolicyLoss, KlCovPolicyLoss)        \
  X(highEntropyMask, HighEntropyMask)

namespace rkb {

namespace LCC = rkl::clipCovPolicyLoss;
namespace LKC = rkl::klCovPolicyLoss;
namespace LHE = rkl::highEntropyMask;
static_assert(LCC::aggregation_code::kCount == 4 && LKC::aggregation_code::kCount == 4,
              "cov losses: the aggregation names and native/core/policy.h disagree");
static_assert(LCC::scalar::kCount == 6 && LKC::scalar::kCount == 6 && LHE::scalar::kCount == 2, "selection scalars");

struct CovPolicyLossCall {
  rk::CovPolicyLossArgs a;
  float* grad = nullptr;
  uint8_t* selected = nullptr;
};

// The slots and params both cov losses share (the same names in both layouts).
struct CovIdx {
  int logprobs, oldLogprobs, advantages, mask, gradLogprobs, selected, seqLen, aggregation, normalizer;
};
#define RK_COV_IDX(L)                                                                                         \
  CovIdx {                                                                                                    \
    L::slot::logprobs, L::slot::oldLogprobs, L::slot::advantages, L::slot::mask, L::slot::gradLogprobs,      \
        L::slot::selected, L::param::seqLen, L::param::aggregation, L::param::normalizer                      \
  }

inline CovPolicyLossCall DecodeCovCommon(const OpArgs& a, const CovIdx& L) {
  CovPolicyLossCall c;
  const Slot& lp = a.Need(L.logprobs, {SlotType::F32});
  const size_t n = lp.length;
  a.Need(L.oldLogprobs, {SlotType::F32}, n);
  const double Td = a.Param(L.seqLen, "seqLen", 1, INT32_MAX);
  if (std::floor(Td) != Td) throw a.Range("seqLen: expected an integer");
  const int64_t T = static_cast<int64_t>(Td);
  if (n % static_cast<size_t>(T) != 0)
    throw a.Range("seqLen: expected a divisor of the length of logprobs (" + std::to_string(n) + "), received " +
                  std::to_string(T));
  const int64_t B = static_cast<int64_t>(n) / T;
  const Slot& adv = a.Need(L.advantages, {SlotType::F32});
  if (adv.length != static_cast<size_t>(B) && adv.length != n)
    throw a.Range("advantages: expected length " + std::to_string(B) + " or " + std::to_string(n) + ", received " +
                  std::to_string(adv.length));
  const Slot& mask = a.Maybe(L.mask, {SlotType::U8, SlotType::F32}, n);
  c.a.logprobs = lp.as<const float>();
  c.a.old_logprobs = a[L.oldLogprobs].as<const float>();
  c.a.advantages = adv.as<const float>();
  c.a.advantages_per_token = adv.length == n && n != static_cast<size_t>(B);
  c.a.mask = mask.data;
  c.a.mask_kind = !mask.present ? rk::MaskKind::None : mask.type == SlotType::U8 ? rk::MaskKind::U8 : rk::MaskKind::F32;
  c.a.B = B;
  c.a.T = T;
  c.a.aggregation = static_cast<rk::LossAggregation>(a.Enum(L.aggregation, "aggregation", 4));
  c.a.normalizer = a.Param(L.normalizer, "normalizer", 0, HUGE_VAL);
  if (!std::isfinite(c.a.normalizer)) throw a.Range("normalizer: expected a finite number");
  c.grad = a.Out(L.gradLogprobs, {SlotType::F32}, n).as<float>();
  c.selected = a.Out(L.selected, {SlotType::U8}, n).as<uint8_t>();
  return c;
}

inline double RatioParam(const OpArgs& a, int i, const char* name) {
  const double r = a.Param(i, name, 0, 1);
  if (!(r > 0)) throw a.Range(std::string(name) + ": expected a number in (0, 1]");
  return r;
}

inline CovPolicyLossCall DecodeClipCovPolicyLoss(const OpArgs& a) {
  CovPolicyLossCall c = DecodeCovCommon(a, RK_COV_IDX(LCC));
  c.a.mode = rk::CovMode::ClipCov;
  c.a.eps_low = a.Param(LCC::param::epsilonLow, "epsilonLow", 0, HUGE_VAL);
  c.a.eps_high = a.Param(LCC::param::epsilonHigh, "epsilonHigh", 0, HUGE_VAL);
  c.a.ratio = RatioParam(a, LCC::param::clipCovRatio, "clipCovRatio");
  c.a.cov_lb = a.Param(LCC::param::clipCovLb, "clipCovLb", -HUGE_VAL, HUGE_VAL);
  c.a.cov_ub = a.Param(LCC::param::clipCovUb, "clipCovUb", -HUGE_VAL, HUGE_VAL);
  const double seed = a.Param(LCC::param::seed, "seed", 0, 9007199254740991.0);
  if (std::floor(seed) != seed) throw a.Range("seed: expected an integer");
  c.a.seed = static_cast<uint64_t>(seed);
  return c;
}

inline CovPolicyLossCall DecodeKlCovPolicyLoss(const OpArgs& a) {
  CovPolicyLossCall c = DecodeCovCommon(a, RK_COV_IDX(LKC));
  c.a.mode = rk::CovMode::KlCov;
  c.a.ratio = RatioParam(a, LKC::param::klCovRatio, "klCovRatio");
  c.a.kl_coef = a.Param(LKC::param::ppoKlCoef, "ppoKlCoef", -HUGE_VAL, HUGE_VAL);
  if (!std::isfinite(c.a.kl_coef)) throw a.Range("ppoKlCoef: expected a finite number");
  return c;
}

struct HighEntropyMaskCall {
  const float* entropy = nullptr;
  int64_t n = 0;
  const void* mask = nullptr;
  rk::MaskKind mask_kind = rk::MaskKind::None;
  double top_quantile = 1;
  uint8_t* out = nullptr;
};

inline HighEntropyMaskCall DecodeHighEntropyMask(const OpArgs& a) {
  HighEntropyMaskCall c;
  const Slot& e = a.Need(LHE::slot::entropy, {SlotType::F32});
  const size_t n = e.length;
  const Slot& mask = a.Maybe(LHE::slot::mask, {SlotType::U8, SlotType::F32}, n);
  c.entropy = e.as<const float>();
  c.n = static_cast<int64_t>(n);
  c.mask = mask.data;
  c.mask_kind = !mask.present ? rk::MaskKind::None : mask.type == SlotType::U8 ? rk::MaskKind::U8 : rk::MaskKind::F32;
  c.top_quantile = a.Param(LHE::param::topQuantile, "topQuantile", 0, 1);
  c.out = a.Out(LHE::slot::out, {SlotType::U8}, n).as<uint8_t>();
  return c;
}

}  // namespace rkb
