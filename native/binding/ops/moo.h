// Decoding of the multi-objective ops (lib/moo/): paretoFront, rewardWeightUpdate,
// trajectoryBalanceLoss, orderPreservingLoss and hypervolumeMetaReward (CPU and CUDA addons). Slots
// and params by the names of layout.gen.h, every length rechecked.
#pragma once
#include <climits>
#include <cmath>
#include <string>

#include "../../kernels/moo.h"
#include "../slots.h"

#define RK_MOO_OPS(X)                                \
  X(paretoFront, ParetoFront)                        \
  X(rewardWeightUpdate, RewardWeightUpdate)          \
  X(trajectoryBalanceLoss, TrajectoryBalanceLoss)    \
  X(orderPreservingLoss, OrderPreservingLoss)        \
  X(hypervolumeMetaReward, HypervolumeMetaReward)

namespace rkb {

namespace LPF = rkl::paretoFront;
namespace LRW = rkl::rewardWeightUpdate;
namespace LTB = rkl::trajectoryBalanceLoss;
namespace LOP = rkl::orderPreservingLoss;
namespace LHV = rkl::hypervolumeMetaReward;
static_assert(LPF::scalar::kCount == 1 && LRW::scalar::kCount == 0 && LTB::scalar::kCount == 1 &&
                  LOP::scalar::kCount == 2 && LHV::scalar::kCount == 4,
              "moo scalars");

constexpr int64_t kMooMaxWeights = 64;  // lib/moo/reward-weight-update.ts MAX_OBJECTIVES

inline int64_t MooIntParam(const OpArgs& a, int i, const char* name) {
  const double v = a.Param(i, name, 1, INT32_MAX);
  if (std::floor(v) != v) throw a.Range(std::string(name) + ": expected an integer");
  return static_cast<int64_t>(v);
}

struct ParetoFrontCall {
  const float* points = nullptr;
  int64_t B = 0, K = 0;
  uint8_t* front = nullptr;
};
inline ParetoFrontCall DecodeParetoFront(const OpArgs& a) {
  ParetoFrontCall c;
  const Slot& p = a.Need(LPF::slot::points, {SlotType::F32});
  c.K = MooIntParam(a, LPF::param::numObjectives, "numObjectives");
  if (p.length == 0 || p.length % static_cast<size_t>(c.K) != 0)
    throw a.Range("numObjectives: expected a divisor of the length of points (" + std::to_string(p.length) + ")");
  c.B = static_cast<int64_t>(p.length) / c.K;
  c.points = p.as<const float>();
  c.front = a.Out(LPF::slot::front, {SlotType::U8}, c.B).as<uint8_t>();
  return c;
}

struct RewardWeightUpdateCall {
  const float* grads = nullptr;
  const float* w = nullptr;
  int64_t K = 0, P = 0;
  double lr = 0, mu = 1e-5;
  float* w_out = nullptr;
  float* scores = nullptr;
  float* gram = nullptr;
};
inline RewardWeightUpdateCall DecodeRewardWeightUpdate(const OpArgs& a) {
  RewardWeightUpdateCall c;
  const Slot& g = a.Need(LRW::slot::grads, {SlotType::F32});
  const Slot& w = a.Need(LRW::slot::weights, {SlotType::F32});
  c.K = static_cast<int64_t>(w.length);
  if (c.K < 1 || c.K > kMooMaxWeights) throw a.Range("weights: expected 1 to 64 objectives");
  if (g.length == 0 || g.length % static_cast<size_t>(c.K) != 0)
    throw a.Range("grads: expected a nonzero multiple of K = " + std::to_string(c.K) + " values");
  c.P = static_cast<int64_t>(g.length) / c.K;
  c.grads = g.as<const float>();
  c.w = w.as<const float>();
  c.lr = a.Param(LRW::param::lr, "lr", -HUGE_VAL, HUGE_VAL);
  if (!std::isfinite(c.lr)) throw a.Range("lr: expected a finite number");
  c.mu = a.Param(LRW::param::mu, "mu", 0, HUGE_VAL);
  if (!(c.mu > 0) || !std::isfinite(c.mu)) throw a.Range("mu: expected a finite positive number");
  c.w_out = a.Out(LRW::slot::newWeights, {SlotType::F32}, c.K).as<float>();
  c.scores = a.Out(LRW::slot::scores, {SlotType::F32}, c.K).as<float>();
  c.gram = a.Out(LRW::slot::gram, {SlotType::F32}, c.K * c.K).as<float>();
  return c;
}

struct GfnCall {
  rk::GfnArgs a;
  const float* log_reward = nullptr;  // trajectoryBalanceLoss
  const float* objectives = nullptr;  // orderPreservingLoss
  int64_t K = 0;
  float* rows = nullptr;  // residuals / logRewardHat (B)
  uint8_t* front = nullptr;
  float* grad_logz = nullptr;
  float* grad_pf = nullptr;
  float* grad_pb = nullptr;
};

struct GfnIdx {
  int logPF, logPB, logZ, mask, gradLogZ, gradLogPF, gradLogPB, seqLen;
};
#define RK_GFN_IDX(L)                                                                                          \
  GfnIdx {                                                                                                     \
    L::slot::logPF, L::slot::logPB, L::slot::logZ, L::slot::mask, L::slot::gradLogZ, L::slot::gradLogPF,       \
        L::slot::gradLogPB, L::param::seqLen                                                                   \
  }

inline GfnCall DecodeGfnCommon(const OpArgs& a, const GfnIdx& L) {
  GfnCall c;
  const Slot& pf = a.Need(L.logPF, {SlotType::F32});
  const size_t n = pf.length;
  const int64_t T = MooIntParam(a, L.seqLen, "seqLen");
  if (n == 0 || n % static_cast<size_t>(T) != 0)
    throw a.Range("seqLen: expected a divisor of the length of logPF (" + std::to_string(n) + "), received " +
                  std::to_string(T));
  const int64_t B = static_cast<int64_t>(n) / T;
  a.Need(L.logPB, {SlotType::F32}, static_cast<int64_t>(n));
  const Slot& z = a.Need(L.logZ, {SlotType::F32});
  if (z.length != static_cast<size_t>(B) && z.length != 1)
    throw a.Range("logZ: expected length " + std::to_string(B) + " or 1, received " + std::to_string(z.length));
  const Slot& mask = a.Maybe(L.mask, {SlotType::U8, SlotType::F32}, static_cast<int64_t>(n));
  c.a.lpf = pf.as<const float>();
  c.a.lpb = a[L.logPB].as<const float>();
  c.a.logz = z.as<const float>();
  c.a.z_per_row = z.length == static_cast<size_t>(B);
  c.a.mask.data = mask.present ? mask.data : nullptr;
  c.a.mask.is_f32 = mask.present && mask.type == SlotType::F32;
  c.a.B = B;
  c.a.T = T;
  c.grad_logz = a.Out(L.gradLogZ, {SlotType::F32}, static_cast<int64_t>(z.length)).as<float>();
  c.grad_pf = a.Out(L.gradLogPF, {SlotType::F32}, static_cast<int64_t>(n)).as<float>();
  c.grad_pb = a.Out(L.gradLogPB, {SlotType::F32}, static_cast<int64_t>(n)).as<float>();
  return c;
}

inline GfnCall DecodeTrajectoryBalanceLoss(const OpArgs& a) {
  GfnCall c = DecodeGfnCommon(a, RK_GFN_IDX(LTB));
  c.log_reward = a.Need(LTB::slot::logReward, {SlotType::F32}, c.a.B).as<const float>();
  c.rows = a.Out(LTB::slot::residuals, {SlotType::F32}, c.a.B).as<float>();
  return c;
}

inline GfnCall DecodeOrderPreservingLoss(const OpArgs& a) {
  GfnCall c = DecodeGfnCommon(a, RK_GFN_IDX(LOP));
  c.K = MooIntParam(a, LOP::param::numObjectives, "numObjectives");
  c.objectives = a.Need(LOP::slot::objectives, {SlotType::F32}, c.a.B * c.K).as<const float>();
  c.rows = a.Out(LOP::slot::logRewardHat, {SlotType::F32}, c.a.B).as<float>();
  c.front = a.Out(LOP::slot::front, {SlotType::U8}, c.a.B).as<uint8_t>();
  return c;
}

struct HypervolumeMetaRewardCall {
  const float* rewards = nullptr;
  int64_t n = 0;
  const double* current = nullptr;
  const double* front = nullptr;  // null when M == 0
  const double* ref = nullptr;
  const uint8_t* maximize = nullptr;  // null: every objective maximised
  int64_t M = 0, K = 0;
  float* out = nullptr;
};
// The message of a value that is not finite at index `bad` of the concatenation current (K), front
// (M x K), reference (K) (core::hv_first_bad): the facade's words, the value as JavaScript prints it.
inline std::string HvBadValueMessage(int64_t bad, int64_t K, int64_t M, double value) {
  const char* name = bad < K ? "current" : bad < K + M * K ? "front" : "reference";
  const int64_t i = bad < K ? bad : bad < K + M * K ? bad - K : bad - K - M * K;
  const char* v = value != value ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
  return std::string(name) + ": expected finite values, received " + v + " at index " + std::to_string(i);
}
// Host slots are checked for finite values here; device slots by the kernel (cuda/moo.h).
inline HypervolumeMetaRewardCall DecodeHypervolumeMetaReward(const OpArgs& a) {
  HypervolumeMetaRewardCall c;
  const Slot& cur = a.Need(LHV::slot::current, {SlotType::F64});
  c.K = static_cast<int64_t>(cur.length);
  if (c.K < 1 || c.K > rk::core::kHvMaxK) throw a.Range("current: expected 1 to 8 objectives");
  const Slot& f = a.Need(LHV::slot::front, {SlotType::F64});
  if (f.length % static_cast<size_t>(c.K) != 0) throw a.Range("front: expected a multiple of K values");
  c.M = static_cast<int64_t>(f.length) / c.K;
  const Slot& ref = a.Need(LHV::slot::reference, {SlotType::F64}, c.K);
  const Slot& mx = a.Maybe(LHV::slot::maximize, {SlotType::U8}, c.K);
  c.current = cur.as<const double>();
  c.front = c.M > 0 ? f.as<const double>() : nullptr;
  c.ref = ref.as<const double>();
  c.maximize = mx.present ? mx.as<const uint8_t>() : nullptr;
  if (!cur.device) {
    const int64_t bad = rk::core::hv_first_bad(c.current, c.front, c.M, c.ref, c.K);
    if (bad >= 0) {
      const double v = bad < c.K ? c.current[bad] : bad < c.K + c.M * c.K ? c.front[bad - c.K] : c.ref[bad - c.K - c.M * c.K];
      throw a.Range(HvBadValueMessage(bad, c.K, c.M, v));
    }
  }
  const Slot& r = a.Maybe(LHV::slot::rewards, {SlotType::F32});
  if (r.present) {
    c.rewards = r.as<const float>();
    c.n = static_cast<int64_t>(r.length);
    c.out = a.Out(LHV::slot::out, {SlotType::F32}, c.n).as<float>();
  }
  return c;
}

}  // namespace rkb
