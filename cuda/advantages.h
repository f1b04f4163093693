// Advantage estimators, reward-model ensembles and token-level returns on a CUDA device
// (docs/advantages.md). They compute exactly what the CPU kernels native/kernels/advantages.{h,cc}
// compute, with the same argument struct (rk::GroupAdvantagesArgs): group_advantages (grpo, rloo,
// reinforce_pp_baseline, opo, passk, bnpo; contiguous groups or group ids; K rewards with weights;
// sum_then_normalize and normalize_then_sum; NaN = missing), ensemble_rewards, gae,
// discounted_returns and masked_whiten.
//
// Plain C++ header (no CUDA types; streams are void*, a cudaStream_t). Every array is a DEVICE
// pointer (reward_weights too: K doubles on the device), and so are the scalar results.
//
// Work split: a group's statistics are computed by one thread over its members in index order with
// the CPU kernel's four interleaved accumulators (group ids are first turned into member lists by a
// stable sort on the device); batch statistics are per-block sums in a fixed tree, added in block
// order; token-level recursions run one thread per row. Deterministic on every run.
//
// Errors: rkcuda::Result (cuda/logprobs.h). kBadArgument: a null pointer or a bad size. Bad
// elements are found on the device and never used as addresses; the call's outputs become NaN and
// the lowest code goes into the bad slot (unsigned long long; reset with rkcuda::bad_row_reset):
//   group_advantages: i (< n) for group_ids[i] outside [0, num_groups); n + i for lengths[i] < 0;
//                     2n + g for a bnpo group mean outside [0, 1] (CPU: kAdvStatusBnpoRange)
//   masked_whiten:    i for an f32 mask weight that is negative or not finite
// With bad_index == nullptr the call allocates a slot, waits for the stream and returns kBadTarget
// (where = "group_ids", "lengths", "bnpo group mean" or "mask"; index = the element or group;
// value = the bad id/length, 0 otherwise); with a caller-owned slot it stays asynchronous (decode
// the code as above). Calls without group ids, lengths, bnpo or an f32 mask never synchronise.
#pragma once
#include <cstdint>

#include "../native/kernels/advantages.h"
#include "logprobs.h"

namespace rkcuda {

struct GroupAdvantagesDeviceArgs {
  rk::GroupAdvantagesArgs a;   // device pointers (rewards, reward_weights, group_ids, lengths)
  float* advantages = nullptr;  // (n), required
  float* group_mean = nullptr;  // (G) or (G, K) for normalize_then_sum, required
  float* group_std = nullptr;   // same shape, required
  long long* zero_std_groups = nullptr;  // 1 int64 on the device, required
  unsigned long long* bad_index = nullptr;
};
Result group_advantages(const GroupAdvantagesDeviceArgs& args, void* stream);

// rewards (n, m) row-major; out (n).
Result ensemble_rewards(const float* rewards, int64_t n, int64_t m, rk::EnsembleMethod method, double lambda,
                        float* out, void* stream);

// values, rewards, mask (B, T) row-major (mask u8 or f32, nonzero = response token).
Result gae(const float* values, const float* rewards, rk::TokenMask mask, int64_t rows, int64_t cols,
           double gamma, double lambda, float* advantages, float* returns, void* stream);
Result discounted_returns(const float* rewards, rk::TokenMask mask, int64_t rows, int64_t cols, double gamma,
                          float* out, void* stream);

// out may be values itself.
Result masked_whiten(const float* values, rk::TokenMask mask, int64_t n, bool shift_mean, bool unbiased,
                     double eps, float* out, unsigned long long* bad_index, void* stream);

// tokenAdvantages (native/kernels/advantages.h rk::TokenAdvantagesArgs, every pointer on the device;
// mask.data may be null). Per-row recursions one thread per row; reinforce_plus_plus' whitening by
// fixed-order batch sums; optimal token baselines one thread per group over its members in index
// order (group ids: member lists built on the device, a stable order). Bad elements (an f32 mask
// weight < 0 or not finite: "mask"; a group id outside [0, num_groups): "group_ids") as
// masked_whiten does (bad_index; null: the call waits and returns kBadTarget).
Result token_advantages(const rk::TokenAdvantagesArgs& a, float* advantages, float* returns,
                        unsigned long long* bad_index, void* stream);

// klRewards: rewards (rows, cols) and *kl_mean, one double on the device (rows in order, one thread).
Result kl_rewards(const float* scores, const float* logprobs, const float* ref, rk::TokenMask mask, int64_t rows,
                  int64_t cols, rk::KlRewardEstimator est, double beta, float* rewards, double* kl_mean,
                  unsigned long long* bad_index, void* stream);

// Reward mixing (native/core/reward_mix.h; the CPU kernels of the same names): one thread per row
// for gated_rewards and discounted_cumsum; lagrangian_mix one thread per element, and with
// grad_mixed one block per multiplier for grad_xi (contiguous ranges per thread, a fixed tree).
Result gated_rewards(const float* high, const float* low, rk::TokenMask mask, int64_t rows, int64_t cols,
                     double threshold, float* out, void* stream);
Result discounted_cumsum(const float* x, rk::TokenMask mask, int64_t rows, int64_t cols, double gamma, bool adjoint,
                         float* out, void* stream);
// out may be kl itself; grad_mixed and grad_xi both null or both given.
Result lagrangian_mix(const float* adv, const float* kl, const float* xi, const float* grad_mixed, int64_t k,
                      int64_t n, float* out, float* grad_xi, void* stream);

}  // namespace rkcuda
