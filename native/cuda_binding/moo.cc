// CUDA entry points of the multi-objective ops (cuda/moo.h), sync and Promise forms, on the op
// protocol (native/binding/slots.h) with the decoding shared with the CPU addon (ops/moo.h).
#include "moo.h"

#include <cuda_runtime.h>

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

// The double at device address p + index, read back (synchronously) for an error message; NaN when
// the copy fails.
double DeviceF64(const double* p, int64_t index) {
  double v = NAN;
  if (p && cudaMemcpy(&v, p + index, sizeof(double), cudaMemcpyDeviceToHost) != cudaSuccess) {
    cudaGetLastError();
    v = NAN;
  }
  return v;
}

Napi::Value HypervolumeMetaReward(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LHV);
  const rkb::HypervolumeMetaRewardCall c = rkb::DecodeHypervolumeMetaReward(oa);
  double* s = oa.scalars;
  static_assert(rkb::LHV::scalar::metaReward == 0 && rkb::LHV::scalar::hvContribution == 1 &&
                    rkb::LHV::scalar::hypervolume == 2 && rkb::LHV::scalar::hypervolumeBefore == 3,
                "hypervolumeMetaReward scalars: cuda/moo.h's order");
  // A value that is not finite: the host path's message, with the value read back.
  rkcb::BadTargetText bad = [c](int64_t index, int64_t) {
    const int64_t K = c.K, MK = c.M * c.K;
    const double v = index < K ? DeviceF64(c.current, index)
                     : index < K + MK ? DeviceF64(c.front, index - K)
                                      : DeviceF64(c.ref, index - K - MK);
    return rkb::HvBadValueMessage(index, c.K, c.M, v);
  };
  return rkcb::RunDevice(
      info, async,
      [c, s]() {
        return rkcb::WithScalars(4, s, [&c](double* d) {
          return rkcuda::hypervolume_meta_reward(c.current, c.front, c.M, c.ref, c.maximize, c.K, c.rewards, c.n, c.out, d,
                                                 nullptr);
        });
      },
      bad);
}

}  // namespace

RK_REGISTER_OPS(cuda_moo, RK_MOO_OPS);
