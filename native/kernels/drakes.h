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
// The row loops, per ISA (drakes_simd.inl), the same bits on every level. dtype: rk::kF32 / kBF16 / kF16.
struct DrakesKernels {
  // g[k] = core::gumbel_noise_at(row_key, c0 + k), k < n.
  void (*noise)(uint64_t row_key, int64_t c0, int64_t n, double* g);
  // t[k] = core::gumbel_score(z[k], t[k], inv_tau); the max of the non-NaN scores (-inf if none),
  // the first index holding it (-1), and whether a score is NaN.
  void (*score)(const void* z, int dtype, int64_t n, double inv_tau, double* t, double* mc, int64_t* arg, bool* bad);
  // e[k] = f32(exp_rn(t[k] - mc)) (0 when mc is -inf); sc = sum e, dc = sum e g (g may be null).
  void (*exp)(const double* t, int64_t n, double mc, float* e, const float* g, double* sc, double* dc);
  // out = {max z, sum ez, max zo, sum eo} with ez = exp_rn(z - max z), eo = exp_rn(zo - max zo), stored
  // (n doubles each) unless ez is null; bad: a NaN or +inf in either row (then, or with a row all
  // -inf, the sums are 0 and nothing is stored).
  void (*stats2)(const void* z, const void* zo, int dtype, int64_t n, double* ez, double* eo, double* out, bool* bad);
  // K = sum core::gkl_term(p, lp, lq), p = ez (1 / sz), lp = z - lse, lq = zo - lseo; ez null: made again
  // from mz = max z (the same bits).
  double (*gkl_sum)(const void* z, const void* zo, const double* ez, int dtype, int64_t n, double lse, double lseo,
                    double inv_sz, double mz);
  // g = core::gkl_grad_new(c, p, lp, lq, K), go = core::gkl_grad_old(c, p, q), q = eo (1 / so); either output
  // may be null; ez, eo null as above.
  void (*gkl_grads)(const void* z, const void* zo, const double* ez, const double* eo, int dtype, int64_t n, double lse,
                    double lseo, double inv_sz, double inv_so, double mz, double mo, double K, double c, float* g,
                    float* go);
  // y[k] = core::exp_rn(x[k]) through the lanes the loops above use (rk_driver check holds it to the core).
  void (*exp_rn)(const double* x, int64_t n, double* y);
};
const DrakesKernels& drakes_kernels_avx512();
const DrakesKernels& drakes_kernels_avx2();
const DrakesKernels& drakes_kernels_scalar();
}  // namespace detail

}  // namespace rk
