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

// The GFlowNet losses (rk::GfnArgs with device pointers). trajectory_balance_loss: residual (B),
// *loss. order_preserving_loss: log_rhat (B), front (B), scalars[0] = loss, scalars[1] = |front|.
Result trajectory_balance_loss(const rk::GfnArgs& a, const float* log_reward, float* residual, float* grad_logz,
                               float* grad_pf, float* grad_pb, double* loss, void* stream);
Result order_preserving_loss(const rk::GfnArgs& a, const float* objectives, int64_t K, float* log_rhat, uint8_t* front,
                             float* grad_logz, float* grad_pf, float* grad_pb, double* scalars, void* stream);

}  // namespace rkcuda
