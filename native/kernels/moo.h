// Multi-objective ops on the CPU (the formulas: native/core/moo.h; docs/papers/dynamic-reward-weighting.md,
// docs/papers/op-gfn.md). Work is cut into rows or fixed chunks whose results merge in a fixed order,
// so no result depends on the thread count.
#pragma once
#include <cstdint>

#include "../core/moo.h"

namespace rk {

// front[i] = 1 when point i of the B x K points is not dominated (core::pareto_dominated).
void pareto_front(const float* points, int64_t B, int64_t K, uint8_t* front, int64_t* count);

// grads: K x P (row-major). gram (K x K), scores (K), w_out (K); w: the current weights (K). The Gram
// matrix and every sum are double; the outputs are rounded to f32 once.
void reward_weight_update(const float* grads, int64_t K, int64_t P, const float* w, double lr, double mu, float* gram,
                          float* scores, float* w_out);

// The hypervolume contribution of `current` to front (M x K) above `ref` (all double; maximize (K):
// 0 minimises objective k, null maximises all), the meta-reward (core::hv_scalars), and
// rewards_out[i] = rewards[i] * meta (n may be 0). The inputs are finite (the binding checks).
using HvResult = core::HvScalars;
HvResult hypervolume_meta_reward(const double* front, int64_t M, const double* current, const double* ref,
                                 const uint8_t* maximize, int64_t K, const float* rewards, int64_t n, float* rewards_out);

// Trajectory balance: delta_b = logZ_b + S(logPF_b) - S(logPB_b) - logR_b, loss = mean_b delta_b^2.
// logZ has B values or 1 (z_per_row false: its gradient is the sum over rows). Outputs: residual (B),
// grad_logz (B or 1), grad_pf, grad_pb (B x T). The arrays: rk::GfnArgs (native/core/moo.h).
double trajectory_balance_loss(const GfnArgs& a, const float* log_reward, float* residual, float* grad_logz,
                               float* grad_pf, float* grad_pb);

// Order-preserving loss: r_b = logZ_b + S(logPF_b) - S(logPB_b); front = the Pareto flags of the
// objectives (B x K); loss = logsumexp_b r_b - sum_b t_b r_b with t uniform over the front; grad g_b =
// softmax(r)_b - t_b. Outputs: log_rhat (B), front (B), grad_logz, grad_pf, grad_pb; *count = |front|.
double order_preserving_loss(const GfnArgs& a, const float* objectives, int64_t K, float* log_rhat, uint8_t* front,
                             float* grad_logz, float* grad_pf, float* grad_pb, int64_t* count);

}  // namespace rk
