// Token log-probs: forward and backward side by side (formulas in logprobs.h).
//
// Both passes walk the logits as fixed chunks of kLogprobsChunk elements per row. Forward: each
// chunk yields (max, sum 2^u, sum 2^u u) with u = (z - max) log2(e) / tau; a row merges its chunks
// in order, in double. Backward: one more pass writes p_j (k0 + k1 u_j) per element. Any thread may
// take any chunk, so results are bit-identical for every thread count.
#include "logprobs.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../core/logits.h"  // the row finishes, shared with cuda/logprobs.cu
#include "cpu.h"
#include "half.h"
#include "threadpool.h"

namespace rk {
namespace {

using core::kLog2ed;
using detail::kLogprobsChunk;

using detail::check_targets;
using detail::load_logit;
using detail::RowStats;
const detail::LogprobsKernels& kernels() { return detail::logprobs_kernels(); }

// Chunks per scheduling block: up to 64 (1 MiB of f32 logits, long memory streams, negligible
// scheduling cost) while leaving at least 8 blocks per thread for balance. Any partition gives the
// same results, since each chunk's arithmetic and the merge order are fixed.
int64_t chunk_grain(int64_t items) {
  return std::max<int64_t>(1, std::min<int64_t>(64, items / (8 * static_cast<int64_t>(get_num_threads()))));
}

// Computes the per-row statistics of every non-ignored row. want_h: also the entropy.
void row_stats(const LogitsView& lg, const int32_t* targets, int32_t ignore_index, float temperature,
               bool want_h, std::vector<RowStats>& out) {
  const int64_t n = lg.rows, v = lg.vocab;
  const int64_t nck = (v + kLogprobsChunk - 1) / kLogprobsChunk;
  const int esz = dtype_size(lg.dtype);
  const float a = static_cast<float>(kLog2ed / temperature);
  const auto& k = kernels();
  std::vector<float> pm(n * nck), ps(n * nck), pt(want_h ? n * nck : 0);
  const char* base = static_cast<const char*>(lg.data);
  const int64_t grain = chunk_grain(n * nck);
  parallel_for(n * nck, grain, [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) {
      const int64_t r = it / nck, c = it % nck;
      if (targets[r] == ignore_index) continue;
      const int64_t off = c * kLogprobsChunk;
      const int64_t len = std::min(kLogprobsChunk, v - off);
      k.stats(base + (r * v + off) * esz, static_cast<int>(lg.dtype), len, a, &pm[it], &ps[it],
              want_h ? &pt[it] : nullptr);
    }
  });
  out.assign(n, RowStats{});
  const double ad = kLog2ed / temperature;
  for (int64_t r = 0; r < n; ++r) {
    if (targets[r] == ignore_index) continue;
    out[r] = detail::merge_row_stats(&pm[r * nck], &ps[r * nck], want_h ? &pt[r * nck] : nullptr, nck, ad);
  }
}

}  // namespace

namespace detail {

const LogprobsKernels& logprobs_kernels() {
#if defined(__x86_64__)
  static const bool bf16 = (__builtin_cpu_init(), __builtin_cpu_supports("avx512bf16"));
#else
  static const bool bf16 = false;
#endif
  switch (active_isa()) {
    case Isa::Avx512: return bf16 ? logprobs_kernels_avx512bf16() : logprobs_kernels_avx512();
    case Isa::Avx2: return logprobs_kernels_avx2();
    default: return logprobs_kernels_scalar();
  }
}

Status check_targets(const int32_t* targets, int64_t n, int64_t vocab, int32_t ignore_index) {
  for (int64_t r = 0; r < n; ++r) {
    const int32_t y = targets[r];
    if (y != ignore_index && (y < 0 || y >= vocab)) {
      Status st;
      st.code = Status::BadTarget;
      st.index = r;
      st.value = y;
      return st;
    }
  }
  return Status{};
}

RowStats merge_row_stats(const float* m, const float* s, const float* t, int64_t nck, double ad) {
  const bool want_h = t != nullptr;
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t c = 0; c < nck; ++c) mx = (m[c] > mx || m[c] != m[c]) ? m[c] : mx;
  double S = 0, T = 0;  // T in log2 units: sum_j p~_j (z_j - M) a
  for (int64_t c = 0; c < nck; ++c) {
    if (s[c] == 0) continue;  // an all -inf chunk
    const double sh = (static_cast<double>(m[c]) - mx) * ad;  // <= 0
    const double w = std::exp2(sh);
    S += s[c] * w;
    if (want_h) T += w * (static_cast<double>(t[c]) + sh * s[c]);
  }
  RowStats rs;
  rs.max = mx;
  rs.log_s = std::log(S);
  rs.h = want_h ? core::lp_entropy(rs.log_s, T, S) : 0.0;
  return rs;
}

float load_logit(const LogitsView& lg, int64_t idx) {
  if (lg.dtype == DType::F32) return static_cast<const float*>(lg.data)[idx];
  const uint16_t h = static_cast<const uint16_t*>(lg.data)[idx];
  return lg.dtype == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

}  // namespace detail


Status token_logprobs_forward(const LogitsView& lg, const int32_t* targets, float temperature,
                              int32_t ignore_index, float* logp, float* lse, float* entropy) {
  if (lg.rows < 0 || lg.vocab <= 0) return Status{Status::BadShape, 0, lg.vocab};
  Status st = check_targets(targets, lg.rows, lg.vocab, ignore_index);
  if (!st.ok()) return st;
  std::vector<RowStats> rs;
  row_stats(lg, targets, ignore_index, temperature, entropy != nullptr, rs);
  const double inv_tau = 1.0 / temperature;
  for (int64_t r = 0; r < lg.rows; ++r) {
    const int32_t y = targets[r];
    if (y == ignore_index) {
      logp[r] = 0.0f;
      lse[r] = 0.0f;
      if (entropy) entropy[r] = 0.0f;
      continue;
    }
    const double zy = load_logit(lg, r * lg.vocab + y);
    logp[r] = static_cast<float>(core::lp_logp(zy, rs[r].max, inv_tau, rs[r].log_s));
    lse[r] = static_cast<float>(core::lp_lse(rs[r].max, inv_tau, rs[r].log_s));
    if (entropy) entropy[r] = static_cast<float>(rs[r].h);
  }
  return Status{};
}

// ---------------------------------------------------------------------------------------------
// Backward. Per element u = (z - c) a - b (log2 of p), p = 2^u, grad = p (k0 + k1 u), and
// grad_y += gy: the row coefficients are core::lp_grad_row's.
Status token_logprobs_backward(const LogitsView& lg, const int32_t* targets, float temperature,
                               int32_t ignore_index, const float* grad_logp,
                               const float* grad_entropy, const float* lse, const float* entropy,
                               float* grad) {
  if (lg.rows < 0 || lg.vocab <= 0) return Status{Status::BadShape, 0, lg.vocab};
  Status st = check_targets(targets, lg.rows, lg.vocab, ignore_index);
  if (!st.ok()) return st;
  const int64_t n = lg.rows, v = lg.vocab;
  const double inv_tau = 1.0 / temperature;
  const double ad = kLog2ed * inv_tau;
  const bool reuse = lse != nullptr && (grad_entropy == nullptr || entropy != nullptr);
  std::vector<RowStats> rs;
  if (!reuse) row_stats(lg, targets, ignore_index, temperature, grad_entropy != nullptr, rs);

  std::vector<core::LpGradRow> coef(n);
  for (int64_t r = 0; r < n; ++r) {
    if (targets[r] == ignore_index) continue;
    const double g = grad_logp[r];
    const double h = grad_entropy ? grad_entropy[r] : 0.0;
    double H = 0, c = 0, b = 0;
    if (reuse) {
      c = static_cast<double>(lse[r]) * temperature;
      H = entropy ? entropy[r] : 0.0;
    } else {
      c = rs[r].max;
      b = rs[r].log_s * kLog2ed;
      H = rs[r].h;
    }
    coef[r] = core::lp_grad_row(g, h, H, c, b, inv_tau);
  }

  const int64_t nck = (v + kLogprobsChunk - 1) / kLogprobsChunk;
  const int esz = dtype_size(lg.dtype);
  const float a = static_cast<float>(ad);
  const auto& k = kernels();
  const char* base = static_cast<const char*>(lg.data);
  const int64_t grain = chunk_grain(n * nck);
  const size_t elems = static_cast<size_t>(n * v);
  const bool nt = !overlaps(grad, elems * sizeof(float), base, elems * static_cast<size_t>(esz));
  parallel_for(n * nck, grain, [&](int64_t bgn, int64_t end) {
    for (int64_t it = bgn; it < end; ++it) {
      const int64_t r = it / nck, ci = it % nck;
      const int64_t off = ci * kLogprobsChunk;
      const int64_t len = std::min(kLogprobsChunk, v - off);
      float* out = grad + r * v + off;
      const int32_t y = targets[r];
      if (y == ignore_index) {
        for (int64_t j = 0; j < len; ++j) out[j] = 0.0f;
        continue;
      }
      const core::LpGradRow& q = coef[r];
      k.grad(base + (r * v + off) * esz, static_cast<int>(lg.dtype), len, q.c, a, q.b, q.k0, q.k1,
             out, nt);
      if (y >= off && y < off + len) out[y - off] += q.gy;
    }
  });
  return Status{};
}

}  // namespace rk
