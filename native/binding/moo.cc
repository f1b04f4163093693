// CPU entry points of the multi-objective ops (sync and Promise forms), on the op protocol
// (slots.h); the decoding is shared with the CUDA addon (ops/moo.h).
#include "common.h"

#include <string>

#include "ops/moo.h"

namespace {

Napi::Value ParetoFront(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LPF);
  const rkb::ParetoFrontCall c = rkb::DecodeParetoFront(a);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() -> std::string {
    int64_t count = 0;
    rk::pareto_front(c.points, c.B, c.K, c.front, &count);
    s[rkb::LPF::scalar::count] = static_cast<double>(count);
    return "";
  }, a.Done());
}

Napi::Value RewardWeightUpdate(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LRW);
  const rkb::RewardWeightUpdateCall c = rkb::DecodeRewardWeightUpdate(a);
  return rkb::Run(info, async, [c]() -> std::string {
    rk::reward_weight_update(c.grads, c.K, c.P, c.w, c.lr, c.mu, c.gram, c.scores, c.w_out);
    return "";
  }, a.Done());
}

Napi::Value TrajectoryBalanceLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LTB);
  const rkb::GfnCall c = rkb::DecodeTrajectoryBalanceLoss(a);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() -> std::string {
    s[rkb::LTB::scalar::loss] = rk::trajectory_balance_loss(c.a, c.log_reward, c.rows, c.grad_logz, c.grad_pf, c.grad_pb);
    return "";
  }, a.Done());
}

Napi::Value OrderPreservingLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LOP);
  const rkb::GfnCall c = rkb::DecodeOrderPreservingLoss(a);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() -> std::string {
    int64_t count = 0;
    s[rkb::LOP::scalar::loss] =
        rk::order_preserving_loss(c.a, c.objectives, c.K, c.rows, c.front, c.grad_logz, c.grad_pf, c.grad_pb, &count);
    s[rkb::LOP::scalar::frontSize] = static_cast<double>(count);
    return "";
  }, a.Done());
}

Napi::Value HypervolumeMetaReward(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LHV);
  const rkb::HypervolumeMetaRewardCall c = rkb::DecodeHypervolumeMetaReward(a);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() -> std::string {
    const rk::HvResult r =
        rk::hypervolume_meta_reward(c.front, c.M, c.current, c.ref, c.maximize, c.K, c.rewards, c.n, c.out);
    s[rkb::LHV::scalar::metaReward] = r.meta;
    s[rkb::LHV::scalar::hvContribution] = r.contribution;
    s[rkb::LHV::scalar::hypervolume] = r.hv_with;
    s[rkb::LHV::scalar::hypervolumeBefore] = r.hv_without;
    return "";
  }, a.Done());
}

}  // namespace

RK_REGISTER_OPS(moo, RK_MOO_OPS);
