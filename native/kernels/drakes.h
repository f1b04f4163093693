// DRAKES kernels on the CPU (docs/papers/drakes.md): the Gumbel-softmax sample with its
// straight-through hard form, and its backward, which regenerates the noise from the seed. The
// per-element formulas are native/core/drakes.h, shared with cuda/drakes.cu.
#pragma once
#include <cstdint>

#include "logprobs.h"  // rk::LogitsView
#include "types.h"

namespace rk {

struct GumbelParams {
  double temperature = 1.0;
  uint64_t seed = 0;
  bool hard = false;  // forward: write the one-hot of the argmax instead of the soft sample
};

// sample (N, V): softmax((z + g) / tau), or the one-hot of its argmax when hard; index (N): the
// argmax (first on ties). A row with a NaN or +inf score, or with every score -inf, gets NaN and -1.
Status gumbel_softmax_forward(const LogitsView& logits, const GumbelParams& p, float* sample, int32_t* index);

// grad (N, V) = dL/dz = y (gs - sum_k y_k gs_k) / tau with y the soft sample of the same seed (the
// straight-through estimator passes dL/d(hard sample) to the soft one unchanged). NaN rows as above.
Status gumbel_softmax_backward(const LogitsView& logits, const GumbelParams& p, const float* grad_sample, float* grad);

// The DRAKES generalised-KL rate integrand per position (core::gkl_*): kl[r] = K_r / mc_r with
// K_r = sum_j p (lp - lq) = sum_j [p log(p / p_old) - p + p_old], p = softmax(logits[r]),
// p_old = softmax(old[r]); mc_r = move_chance (or move_chance_rows[r]). A row the mask drops gives 0
// and zero gradient rows. With grad / grad_old (optional, (N, V)): dL/dlogits and dL/doldLogits for
// dL/dkl[r] = grad_scale (or grad_rows[r]). A row whose logits hold NaN or +inf, or no finite
// entry, gives NaN.
struct GklCall {
  LogitsView logits{nullptr, DType::F32, 0, 0};
  LogitsView old{nullptr, DType::F32, 0, 0};
  const uint8_t* mask = nullptr;
  double move_chance = 1;
  const float* move_chance_rows = nullptr;
  double grad_scale = 1;
  const float* grad_rows = nullptr;
  float* kl = nullptr;
  float* grad = nullptr;
  float* grad_old = nullptr;
};
Status drakes_kl(const GklCall& c);

namespace detail {
// g[k] = core::gumbel_noise_at(row_key, c0 + k) for k < n, to the bit, per ISA (drakes_simd.inl).
using GumbelNoiseFn = void (*)(uint64_t row_key, int64_t c0, int64_t n, double* g);
GumbelNoiseFn gumbel_noise_avx512();
GumbelNoiseFn gumbel_noise_avx2();
GumbelNoiseFn gumbel_noise_scalar();
}  // namespace detail

}  // namespace rk
