// Full-vocabulary divergences: forward and gradient side by side (formulas in divergence.h).
//
// Every pass walks a row pair as fixed chunks of kDivergenceChunk elements; per-chunk partial
// results merge in chunk order, in double. Which thread runs a chunk never matters, so results
// are bit-identical for every thread count.
//
// Pass 1 (all kinds): per chunk, ms = max z, mt = max zt, Ss = sum 2^((z - ms) a),
//   St = sum 2^((zt - mt) a) with a = log2(e)/tau, and the cross sum the kind needs:
//   forward_kl  X = sum 2^((zt - mt) a) ((zt - mt) - (z - ms)) + (mt - ms) St,
//   reverse_kl  Y = sum 2^((z - ms) a) ((z - ms) - (zt - mt)) + (ms - mt) Ss
//   (the logit difference taken relative to the chunk maxima, so that large offsets between the
//   rows cost no precision; identical rows still give exactly 0).
//   Merged (M = max of the chunk maxima, each chunk rescaled by 2^((m_c - M) a)):
//     KL(q || p) = X / (tau St) - (Mt - Ms) / tau - ln St + ln Ss
//     KL(p || q) = Y / (tau Ss) - (Ms - Mt) / tau - ln Ss + ln St
//   since log q_j - log p_j = (zt_j - z_j) / tau - (Mt - Ms) / tau - ln St + ln Ss.
// Pass 2 (jsd only; the mixture needs both normalisers): per element, with l = log2 p - log2 q,
//   A = log2(p/m), B = log2(q/m) = A - l (one exp2 and one log2, see divergence_simd.inl);
//   J = sum beta q B + (1-beta) p A (each term >= 0: x log x is convex), K = sum p A.
//   D = ln2 J, KL(p || m) = ln2 K.
// Gradient pass: writes g (dD/dz) per element from the row constants.
//
// Derivation of the gradients (s = z / tau, dp_j/ds_k = p_j (1[j=k] - p_k)):
//   forward_kl  D = sum q log q - sum q log p, d/ds_k (-sum_j q_j (s_j - lse)) = -q_k + p_k.
//   reverse_kl  dD/ds_k = sum_j p_j (1[j=k] - p_k) (log p_j - log q_j) + sum_j p_j dlog p_j/ds_k;
//               the last sum is sum_j (1[j=k] - p_k) p_j = 0, so dD/ds_k = p_k (log p_k - log q_k - D).
//   jsd         dD/dp_j (p free) = -beta (1-beta) q_j / m_j + (1-beta) (log(p_j/m_j) + 1
//               - (1-beta) p_j / m_j) = (1-beta) log(p_j / m_j)   (as beta q_j + (1-beta) p_j = m_j);
//               through the softmax, dD/ds_k = p_k (g_k - sum_j p_j g_j) with g = (1-beta) log(p/m):
//               dD/ds_k = (1-beta) p_k (log(p_k/m_k) - KL(p || m)).
//   and dD/dz = dD/ds / tau.
//
// Zeros: -inf logits give probability 0 and contribute 0 * anything = 0 (never NaN). Where the
// target has q_j = 0 and the student p_j > 0, KL(p || q) is +inf (its gradient is then NaN);
// where p_j = 0 and q_j > 0, KL(q || p) is +inf (its gradient p - q stays finite). jsd stays finite.
#include "divergence.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../core/logits.h"  // the row finishes, shared with cuda/divergence.cu
#include "cpu.h"
#include "threadpool.h"

namespace rk {
namespace {

using core::kLog2ed;
constexpr int kStats = 5;  // floats per chunk from pass 1
using detail::kDivergenceChunk;

const detail::DivergenceKernels& kernels() {
  switch (active_isa()) {
    case Isa::Avx512: return detail::divergence_kernels_avx512();
    case Isa::Avx2: return detail::divergence_kernels_avx2();
    default: return detail::divergence_kernels_scalar();
  }
}

}  // namespace

Status vocab_divergence(const LogitsView& lg, const LogitsView& tg, const uint8_t* row_mask,
                        const DivergenceParams& prm, float* div, double grad_scale,
                        const float* grad_rows, float* grad) {
  if (lg.rows < 0 || lg.vocab <= 0) return Status{Status::BadShape, 0, lg.vocab};
  if (tg.rows != lg.rows || tg.vocab != lg.vocab || tg.dtype != lg.dtype)
    return Status{Status::BadShape, 1, tg.rows * tg.vocab};
  if (!(prm.temperature > 0) || !(prm.beta >= 0 && prm.beta <= 1))
    return Status{Status::BadShape, 2, 0};
  DivergenceKind kind = prm.kind;
  if (kind == DivergenceKind::JSD && prm.beta == 0) kind = DivergenceKind::ForwardKL;
  if (kind == DivergenceKind::JSD && prm.beta == 1) kind = DivergenceKind::ReverseKL;
  const int mode = static_cast<int>(kind);

  const int64_t n = lg.rows, v = lg.vocab;
  const int64_t nck = (v + kDivergenceChunk - 1) / kDivergenceChunk;
  const int esz = dtype_size(lg.dtype);
  const int dt = static_cast<int>(lg.dtype);
  const double inv_tau = 1.0 / prm.temperature;
  const double ad = kLog2ed * inv_tau;
  const float a = static_cast<float>(ad);
  const double beta = prm.beta;
  const auto& k = kernels();
  const char* zs = static_cast<const char*>(lg.data);
  const char* zt = static_cast<const char*>(tg.data);
  // In place (the gradient over the student's or the teacher's logits): plain stores into the lines
  // just read; otherwise streaming stores.
  const size_t gbytes = static_cast<size_t>(n * v) * sizeof(float), zbytes = static_cast<size_t>(n * v * esz);
  const bool nt = grad == nullptr || !(overlaps(grad, gbytes, zs, zbytes) || overlaps(grad, gbytes, zt, zbytes));

  std::vector<float> part(static_cast<size_t>(n * nck * kStats));
  std::vector<float> jpart(kind == DivergenceKind::JSD ? static_cast<size_t>(n * nck * 2) : 0);
  std::vector<detail::DivRow> rows(static_cast<size_t>(n));
  auto active = [&](int64_t r) { return row_mask == nullptr || row_mask[r] != 0; };
  auto len_of = [&](int64_t c) { return std::min(kDivergenceChunk, v - c * kDivergenceChunk); };
  auto g_of = [&](int64_t r) { return grad_scale * (grad_rows ? grad_rows[r] : 1.0); };

  auto do_stats = [&](int64_t r, int64_t c) {
    const int64_t off = r * v + c * kDivergenceChunk;
    k.stats(zs + off * esz, zt + off * esz, dt, len_of(c), a, mode, &part[(r * nck + c) * kStats]);
  };
  // Merges pass 1 of row r in chunk order; writes div[r] (kl kinds) and the row constants.
  auto merge = [&](int64_t r) {
    const float* P = &part[r * nck * kStats];
    double Ms = -std::numeric_limits<double>::infinity(), Mt = Ms;
    for (int64_t c = 0; c < nck; ++c) {
      const double ms = P[c * kStats], mt = P[c * kStats + 1];
      Ms = (ms > Ms || ms != ms) ? ms : Ms;
      Mt = (mt > Mt || mt != mt) ? mt : Mt;
    }
    double Ss = 0, St = 0, Cr = 0;
    for (int64_t c = 0; c < nck; ++c) {
      const float* q = P + c * kStats;
      // the shifts the chunk kernel used (0 for an all -inf chunk)
      const double hs = q[0] > -HUGE_VALF ? q[0] : 0.0, ht = q[1] > -HUGE_VALF ? q[1] : 0.0;
      if (q[2] != 0) {
        const double w = std::exp2((q[0] - Ms) * ad);
        Ss += q[2] * w;
        if (kind == DivergenceKind::ReverseKL) Cr += (q[4] + (hs - ht) * q[2]) * w;
      }
      if (q[3] != 0) {
        const double w = std::exp2((q[1] - Mt) * ad);
        St += q[3] * w;
        if (kind == DivergenceKind::ForwardKL) Cr += (q[4] + (ht - hs) * q[3]) * w;
      }
    }
    const double lnSs = std::log(Ss), lnSt = std::log(St);
    const double D = core::kl_row(mode, Cr, kind == DivergenceKind::ForwardKL ? Mt - Ms : Ms - Mt, Ss, St, lnSs, lnSt,
                                  inv_tau);
    div[r] = static_cast<float>(D);
    detail::DivRow& w = rows[r];
    const double bs = lnSs * kLog2ed, bt = lnSt * kLog2ed;
    w.a = a;
    w.cs = static_cast<float>(Ms);
    w.bs = static_cast<float>(bs);
    w.ct = static_cast<float>(Mt);
    w.bt = static_cast<float>(bt);
    w.beta = static_cast<float>(beta);
    w.lam = kind == DivergenceKind::JSD ? static_cast<float>(std::log2(beta / (1 - beta))) : 0.0f;
    const core::DivCoef k = core::kl_row_coef(mode, g_of(r), D, inv_tau);
    w.k0 = k.k0;
    w.k1 = k.k1;
  };
  auto do_jsd = [&](int64_t r, int64_t c) {
    const int64_t off = r * v + c * kDivergenceChunk;
    k.jsd(zs + off * esz, zt + off * esz, dt, len_of(c), rows[r], &jpart[(r * nck + c) * 2]);
  };
  auto merge_jsd = [&](int64_t r) {
    const float* P = &jpart[r * nck * 2];
    double J = 0, K = 0;
    for (int64_t c = 0; c < nck; ++c) {
      J += P[2 * c];
      K += P[2 * c + 1];
    }
    div[r] = core::jsd_row_div(div[r], J);
    const core::DivCoef k = core::jsd_row_coef(g_of(r), beta, K, inv_tau);
    rows[r].k1 = k.k1;
    rows[r].k0 = k.k0;
  };
  auto do_grad = [&](int64_t r, int64_t c) {
    const int64_t off = r * v + c * kDivergenceChunk;
    const int64_t len = len_of(c);
    float* out = grad + off;
    if (!active(r)) {
      std::fill(out, out + len, 0.0f);
      return;
    }
    k.grad(zs + off * esz, zt + off * esz, dt, len, rows[r], mode, out, nt);
  };
  auto inactive_row = [&](int64_t r) {
    div[r] = 0.0f;
    if (grad) std::fill(grad + r * v, grad + (r + 1) * v, 0.0f);
  };

  // Whole rows per task when there are enough rows to feed every thread (the later passes then
  // reread the row from cache); otherwise each pass is spread over all (row, chunk) items. Both
  // run the same chunk functions and merges, so both give the same bits.
  const bool row_mode = nck == 1 || n >= 4 * static_cast<int64_t>(get_num_threads());
  if (row_mode) {
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / v);
    parallel_for(n, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        if (!active(r)) {
          inactive_row(r);
          continue;
        }
        for (int64_t c = 0; c < nck; ++c) do_stats(r, c);
        merge(r);
        if (kind == DivergenceKind::JSD) {
          for (int64_t c = 0; c < nck; ++c) do_jsd(r, c);
          merge_jsd(r);
        }
        if (grad)
          for (int64_t c = 0; c < nck; ++c) do_grad(r, c);
      }
    });
    return Status{};
  }

  const int64_t grain = 1;  // few rows: one chunk per block so that every thread gets work
  parallel_for(n * nck, grain, [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it)
      if (active(it / nck)) do_stats(it / nck, it % nck);
  });
  for (int64_t r = 0; r < n; ++r) {
    if (active(r)) merge(r);
    else div[r] = 0.0f;
  }
  if (kind == DivergenceKind::JSD) {
    parallel_for(n * nck, grain, [&](int64_t b, int64_t e) {
      for (int64_t it = b; it < e; ++it)
        if (active(it / nck)) do_jsd(it / nck, it % nck);
    });
    for (int64_t r = 0; r < n; ++r)
      if (active(r)) merge_jsd(r);
  }
  if (grad) {
    parallel_for(n * nck, grain, [&](int64_t b, int64_t e) {
      for (int64_t it = b; it < e; ++it) do_grad(it / nck, it % nck);
    });
  }
  return Status{};
}

}  // namespace rk
