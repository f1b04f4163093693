// The multi-objective ops on a CUDA device (docs/papers/dynamic-reward-weighting.md,
// docs/papers/op-gfn.md): the formulas of native/core/moo.h, as the CPU kernels (native/kernels/moo.cc)
// call them, in the same order. Plain C++ header; every array is a DEVICE pointer, and each scalar
// result is written to a device double.
#pragma once
#include <cstdint>

#include "../native/core/moo.h"
#include "result.h"

namespace rkcuda {

// front (B) u8; *count (device double) = the number of front points.
Result pareto_front(const float* points, int64_t B, int64_t K, uint8_t* front, double* count, void* stream);

// grads (K x P), w (K) f32; gram (K x K), scores (K), w_out (K) f32. K <= 64. The Gram matrix has the
// CPU kernel's bits (the same lanes, tree and chunk order, each product exact in double).
Result reward_weight_update(const float* grads, int64_t K, int64_t P, const float* w, double lr, double mu, float* gram,
                            float* scores, float* w_out, void* stream);

// hypervolumeMetaReward on the device (for pipelines that keep the rewards there; a handful of points,
// so one thread computes the scalars, core::hv_scalars, in double as the CPU does). current, ref (K),
// front (M x K; null when M == 0) f64; maximize (K) u8 or null (all maximised); K <= rk::core::kHvMaxK.
// scalars (device, 4 doubles): metaReward, hvContribution, hypervolume, hypervolumeBefore. rewards,
// out (n) f32, n may be 0 (both null): out[i] = rewards[i] * metaReward. A value that is not finite:
// kBadTarget, where "current, front, reference", index = its index in that concatenation
// (core::hv_first_bad); the scalars and out are then NaN. Waits for the stream to read that flag.
Result hypervolume_meta_reward(const double* current, const double* front, int64_t M, const double* ref,
                               const uint8_t* maximize, int64_t K, const float* rewards, int64_t n, float* out,
                               double* scalars, void* stream);

// The GFlowNet losses (rk::GfnArgs with device pointers). trajectory_balance_loss: residual (B),
// *loss. order_preserving_loss: log_rhat (B), front (B), scalars[0] = loss, scalars[1] = |front|.
Result trajectory_balance_loss(const rk::GfnArgs& a, const float* log_reward, float* residual, float* grad_logz,
                               float* grad_pf, float* grad_pb, double* loss, void* stream);
Result order_preserving_loss(const rk::GfnArgs& a, const float* objectives, int64_t K, float* log_rhat, uint8_t* front,
                             float* grad_logz, float* grad_pf, float* grad_pb, double* scalars, void* stream);

}  // namespace rkcuda
