// Full-vocabulary divergences between two logit rows, forward and gradient (docs/divergence.md).
//
// logits, target: (N, V) row-major, same dtype (f32 / bf16 / f16);  div: (N) f32;  grad: (N, V) f32.
//   p = softmax(z / tau) (student),  q = softmax(zt / tau) (target / teacher)
//   forward_kl  D = KL(q || p) = sum_j q_j (log q_j - log p_j)
//   reverse_kl  D = KL(p || q) = sum_j p_j (log p_j - log q_j)
//   jsd (beta)  D = beta KL(q || m) + (1 - beta) KL(p || m),  m = beta q + (1 - beta) p
//               (Liger / TRL generalized JSD: beta = 0 is forward_kl, beta = 1 is reverse_kl)
// Gradients w.r.t. the student logits z, times g_r = dL/dD_r:
//   forward_kl  dD/dz_k = (p_k - q_k) / tau
//   reverse_kl  dD/dz_k = p_k (log p_k - log q_k - D) / tau
//   jsd         dD/dz_k = (1 - beta) p_k (log(p_k / m_k) - KL(p || m)) / tau
// Rows whose row_mask entry is 0 give D = 0 and a zero gradient row.
#pragma once
#include <cstdint>

#include "logprobs.h"  // LogitsView
#include "types.h"

namespace rk {

enum class DivergenceKind : int { ForwardKL = 0, ReverseKL = 1, JSD = 2 };

struct DivergenceParams {
  DivergenceKind kind = DivergenceKind::JSD;
  double beta = 0.5;         // jsd only; 0 and 1 select forward_kl / reverse_kl
  double temperature = 1.0;  // divides both logit rows
};

// Writes div (N). When grad != nullptr also writes dL/dz (N, V) f32, with dL/dD_r =
// grad_scale * (grad_rows ? grad_rows[r] : 1). grad may alias f32 logits (in place); it must not
// overlap target. row_mask (N) may be null (every row counts).
// forward_kl / reverse_kl read each row pair once (one-pass online statistics); jsd reads it twice
// (the mixture needs both normalisers), and the gradient adds one more pass over each row, which
// comes from cache when rows are processed whole (N large enough to feed every thread).
Status vocab_divergence(const LogitsView& logits, const LogitsView& target,
                        const uint8_t* row_mask, const DivergenceParams& params, float* div,
                        double grad_scale, const float* grad_rows, float* grad);

namespace detail {
constexpr int64_t kDivergenceChunk = 4096;

// Chunk statistics of a row pair with a = log2(e)/tau, es = 2^((z - ms) a), et = 2^((zt - mt) a):
// out[0] ms = max z, out[1] mt = max zt, out[2] sum es, out[3] sum et,
// out[4] sum et ((zt - mt) - (z - ms)) (mode 0: forward_kl) or sum es ((z - ms) - (zt - mt))
// (mode 1: reverse_kl), else 0. An all -inf row chunk shifts by 0 instead of its max.
using DivStatsFn = void (*)(const void* z, const void* zt, int dtype, int64_t n, float a, int mode,
                            float* out);
// Per-row constants of the later passes (log2 units):
//   log2 p = (z - cs) a - bs,  log2 q = (zt - ct) a - bt,  l = log2 p - log2 q.
struct DivRow {
  float a, cs, bs, ct, bt;
  float beta;    // jsd mixture weight
  float lam;     // log2(beta / (1 - beta))
  float k0, k1;  // gradient coefficients
};
// jsd sums of one chunk: out[0] = sum beta q log2(q/m) + (1-beta) p log2(p/m), out[1] = sum p log2(p/m).
using DivJsdFn = void (*)(const void* z, const void* zt, int dtype, int64_t n, const DivRow& r,
                          float* out);
// Gradient of one chunk (mode as DivergenceKind):
//   forward_kl  out = k0 (p - q);  reverse_kl  out = p (k1 l + k0);  jsd  out = p (k1 log2(p/m) + k0)
// nt: streaming stores; false when out overwrites the logits just read (in place: lines in cache).
using DivGradFn = void (*)(const void* z, const void* zt, int dtype, int64_t n, const DivRow& r,
                           int mode, float* out, bool nt);
struct DivergenceKernels {
  DivStatsFn stats;
  DivJsdFn jsd;
  DivGradFn grad;
};
const DivergenceKernels& divergence_kernels_avx512();
const DivergenceKernels& divergence_kernels_avx2();
const DivergenceKernels& divergence_kernels_scalar();
}  // namespace detail

}  // namespace rk
