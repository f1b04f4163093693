// CUDA entry points of the multi-objective ops (cuda/moo.h), sync and Promise forms, on the op
// protocol (native/binding/slots.h) with the decoding shared with the CPU addon (ops/moo.h).
// hypervolumeMetaReward is CPU only (lib/moo/hypervolume-meta-reward.ts).
#include "moo.h"
#include "cuda_common.h"
#include "ops/moo.h"

namespace {

Napi::Value ParetoFront(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LPF);
  const rkb::ParetoFrontCall c = rkb::DecodeParetoFront(oa);
  double* s = oa.scalars;
  return rkcb::RunDevice(
      info, async,
      [c, s]() {
        return rkcb::WithScalars(1, s, [&c](double* d) { return rkcuda::pareto_front(c.points, c.B, c.K, c.front, d, nullptr); });
      },
      nullptr);
}

Napi::Value RewardWeightUpdate(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LRW);
  const rkb::RewardWeightUpdateCall c = rkb::DecodeRewardWeightUpdate(oa);
  return rkcb::RunDevice(
      info, async,
      [c]() { return rkcuda::reward_weight_update(c.grads, c.K, c.P, c.w, c.lr, c.mu, c.gram, c.scores, c.w_out, nullptr); },
      nullptr);
}

Napi::Value TrajectoryBalanceLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LTB);
  const rkb::GfnCall c = rkb::DecodeTrajectoryBalanceLoss(oa);
  double* s = oa.scalars;
  return rkcb::RunDevice(
      info, async,
      [c, s]() {
        return rkcb::WithScalars(1, s, [&c](double* d) {
          return rkcuda::trajectory_balance_loss(c.a, c.log_reward, c.rows, c.grad_logz, c.grad_pf, c.grad_pb, d, nullptr);
        });
      },
      nullptr);
}

Napi::Value OrderPreservingLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LOP);
  const rkb::GfnCall c = rkb::DecodeOrderPreservingLoss(oa);
  double* s = oa.scalars;
  return rkcb::RunDevice(
      info, async,
      [c, s]() {
        return rkcb::WithScalars(2, s, [&c](double* d) {
          return rkcuda::order_preserving_loss(c.a, c.objectives, c.K, c.rows, c.front, c.grad_logz, c.grad_pf, c.grad_pb, d,
                                               nullptr);
        });
      },
      nullptr);
}

}  // namespace

RK_REGISTER_OPS(cuda_moo, RK_MOO_OPS);
