// Token log-probs over a vocabulary, forward and backward (docs/logprobs.md).
//
// logits: (N, V) row-major, f32 / bf16 / f16;  targets: (N) int32;  outputs (N) f32.
//   z' = z / tau,  lse = log sum_j exp(z'_j),  logp = z'_y - lse,  H = lse - sum_j p_j z'_j
//   dL/dz_j = (1/tau) * ( g (1[j=y] - p_j) - h p_j (z'_j - lse + H) ),  g = dL/dlogp, h = dL/dH
// A row whose target equals ignore_index gives logp = H = lse = 0 and a zero gradient row.
#pragma once
#include <cstdint>

#include "types.h"

namespace rk {

struct LogitsView {
  const void* data;
  DType dtype;
  int64_t rows;   // N
  int64_t vocab;  // V
};

// Writes logp (N), lse (N) and, when entropy != nullptr, H (N). One pass over the logits.
Status token_logprobs_forward(const LogitsView& logits, const int32_t* targets, float temperature,
                              int32_t ignore_index, float* logp, float* lse, float* entropy);

// Writes dL/dlogits (N, V) f32 to grad (which may alias f32 logits: in place).
// grad_entropy may be null (h = 0). With lse given (and, when grad_entropy is given, entropy too)
// it makes one pass; otherwise it first recomputes the row statistics (a second read).
Status token_logprobs_backward(const LogitsView& logits, const int32_t* targets, float temperature,
                               int32_t ignore_index, const float* grad_logp,
                               const float* grad_entropy, const float* lse, const float* entropy,
                               float* grad);

namespace detail {
// Elements per chunk: rows are processed as fixed chunks whose partial results merge in a fixed
// order, so any thread may take any chunk and results never depend on the thread count.
constexpr int64_t kLogprobsChunk = 4096;

// One chunk's statistics with a = log2(e)/tau: m = max z, s = sum 2^((z-m)a), t = sum 2^((z-m)a)(z-m)a.
using ChunkStatsFn = void (*)(const void* chunk, int dtype, int64_t n, float a, float* m, float* s,
                              float* t);
// One chunk's gradient: u = max((z - c) a - b, -150), out = 2^u (k0 + k1 u).
// nt (every gradient kernel): non-temporal stores, for an output that is not in cache (written once,
// not read back: no read-for-ownership). False for an output written over the logits just read,
// whose lines are still in cache: plain stores then hit them, and the cache writes them back.
using ChunkGradFn = void (*)(const void* chunk, int dtype, int64_t n, float c, float a, float b,
                             float k0, float k1, float* out, bool nt);
// The same gradient written as bf16 (round to nearest even; NaN stays NaN).
using ChunkGradBf16Fn = void (*)(const void* chunk, int dtype, int64_t n, float c, float a, float b,
                                 float k0, float k1, uint16_t* out, bool nt);
// chunk statistics that also store each element's 2^u (u as in ChunkStatsFn) in e (n floats).
using ChunkStatsStoreFn = void (*)(const void* chunk, int dtype, int64_t n, float a, float* m, float* s,
                                   float* t, float* e);
// The gradient from those stored values: out = e (A + B u), u = max((z - m) a, -150) (B = 0: e A).
using ChunkGradStoredFn = void (*)(const void* chunk, int dtype, int64_t n, float m, float a,
                                   const float* e, float A, float B, float* out, bool nt);
using ChunkGradStoredBf16Fn = void (*)(const void* chunk, int dtype, int64_t n, float m, float a,
                                       const float* e, float A, float B, uint16_t* out, bool nt);
// ChunkStatsStoreFn over chunk p, and meanwhile ChunkGradStoredFn's gradient of another row's chunk
// of the same length n (logits gp, its chunk max gm, stored ge, A, B) into out: the two loops in one.
using ChunkStatsGradFn = void (*)(const void* p, int dtype, int64_t n, float a, float* m, float* s, float* t,
                                  float* e, const void* gp, float gm, const float* ge, float A, float B, float* out,
                                  bool nt);
using ChunkStatsGradBf16Fn = void (*)(const void* p, int dtype, int64_t n, float a, float* m, float* s, float* t,
                                      float* e, const void* gp, float gm, const float* ge, float A, float B,
                                      uint16_t* out, bool nt);
struct LogprobsKernels {
  ChunkStatsFn stats;
  ChunkGradFn grad;
  ChunkGradBf16Fn grad_bf16;
  ChunkStatsStoreFn stats_store;
  ChunkGradStoredFn grad_stored;
  ChunkGradStoredBf16Fn grad_stored_bf16;
  ChunkStatsGradFn stats_grad;
  ChunkStatsGradBf16Fn stats_grad_bf16;
};
const LogprobsKernels& logprobs_kernels_avx512();
const LogprobsKernels& logprobs_kernels_avx512bf16();  // the same with AVX512_BF16's bf16 rounding
const LogprobsKernels& logprobs_kernels_avx2();
const LogprobsKernels& logprobs_kernels_scalar();
// The kernels of the active ISA (cpu.h).
const LogprobsKernels& logprobs_kernels();

// A row's statistics in double, merged from its chunks in order.
struct RowStats {
  double max = 0;    // M = max_j z_j (raw logits)
  double log_s = 0;  // log S, S = sum_j exp((z_j - M) / tau)
  double h = 0;      // entropy (when wanted)
};
// Merges nck chunk results (m, s and, when t != null, t) of one row, in order; ad = log2(e) / tau.
RowStats merge_row_stats(const float* m, const float* s, const float* t, int64_t nck, double ad);
// Logit idx of the view as f32.
float load_logit(const LogitsView& lg, int64_t idx);
// Status BadTarget for the first target outside [0, vocab) that is not ignore_index.
Status check_targets(const int32_t* targets, int64_t n, int64_t vocab, int32_t ignore_index);
}  // namespace detail

}  // namespace rk
