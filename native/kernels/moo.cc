// Multi-objective ops on the CPU (moo.h). Rows (and Gram chunks) are independent items of
// parallel_for; every sum across rows or chunks runs afterwards on the calling thread in index
// order, so results are bit-identical for every thread count.
#include "moo.h"

#include <cmath>
#include <vector>

#include "threadpool.h"

namespace rk {

void pareto_front(const float* points, int64_t B, int64_t K, uint8_t* front, int64_t* count) {
  parallel_for(B, 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) front[i] = core::pareto_dominated(points, B, K, i) ? 0 : 1;
  });
  int64_t c = 0;
  for (int64_t i = 0; i < B; ++i) c += front[i];
  *count = c;
}

void reward_weight_update(const float* grads, int64_t K, int64_t P, const float* w, double lr, double mu, float* gram_out,
                          float* scores, float* w_out) {
  std::vector<double> gram(static_cast<size_t>(K * K));
  const int64_t pairs = K * (K + 1) / 2, chunks = (P + core::kGramChunk - 1) / core::kGramChunk;
  std::vector<double> part(static_cast<size_t>(chunks * pairs), 0.0);
  parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    double s[core::kGramLanes];
    for (int64_t c = cb; c < ce; ++c) {
      const int64_t lo = c * core::kGramChunk, hi = lo + core::kGramChunk < P ? lo + core::kGramChunk : P;
      for (int64_t p = 0; p < pairs; ++p) {
        int64_t i, j;
        core::gram_pair(K, p, &i, &j);
        const float* a = grads + i * P;
        const float* b = grads + j * P;
        // Lane l sums columns lo + l + m kGramLanes in ascending m (core::gram_lane), written lane-major
        // so that the compiler vectorises across lanes.
        for (int l = 0; l < core::kGramLanes; ++l) s[l] = 0;
        int64_t col = lo;
        for (; col + core::kGramLanes <= hi; col += core::kGramLanes)
          for (int l = 0; l < core::kGramLanes; ++l)
            s[l] += static_cast<double>(a[col + l]) * static_cast<double>(b[col + l]);
        for (int l = 0; col + l < hi; ++l) s[l] += static_cast<double>(a[col + l]) * static_cast<double>(b[col + l]);
        for (int wdt = core::kGramLanes / 2; wdt >= 1; wdt /= 2)
          for (int l = 0; l < wdt; ++l) core::gram_tree_level(s, l, wdt);
        part[static_cast<size_t>(c * pairs + p)] = s[0];
      }
    }
  });
  for (int64_t p = 0; p < pairs; ++p) {
    double t = 0;
    for (int64_t c = 0; c < chunks; ++c) t += part[static_cast<size_t>(c * pairs + p)];
    int64_t i, j;
    core::gram_pair(K, p, &i, &j);
    gram[i * K + j] = t;
    gram[j * K + i] = t;
  }
  for (int64_t i = 0; i < K * K; ++i) gram_out[i] = static_cast<float>(gram[static_cast<size_t>(i)]);
  core::weight_update(K, gram.data(), w, lr, mu, w_out, scores);
}

HvResult hypervolume_meta_reward(const double* front, int64_t M, const double* current, const double* ref,
                                 const uint8_t* maximize, int64_t K, const float* rewards, int64_t n, float* rewards_out) {
  const HvResult r = core::hv_scalars(front, M, current, ref, maximize, K);
  const double meta = r.meta;
  parallel_for(n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) rewards_out[i] = core::hv_scale(rewards[i], meta);
  });
  return r;
}

namespace {

// r_b = logZ_b + S(logPF) - S(logPB) per row (parallel, one row per item).
void gfn_rows(const GfnArgs& a, std::vector<double>& r) {
  parallel_for(a.B, 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      double sf, sb;
      core::gfn_row_sums(a.lpf, a.lpb, a.mask, i, a.T, &sf, &sb);
      r[static_cast<size_t>(i)] = static_cast<double>(a.logz[a.z_per_row ? i : 0]) + sf - sb;
    }
  });
}

void gfn_grads(const GfnArgs& a, const std::vector<double>& g, float* grad_logz, float* grad_pf, float* grad_pb) {
  parallel_for(a.B, 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) core::gfn_row_grads(a.mask, i, a.T, g[static_cast<size_t>(i)], grad_pf, grad_pb);
  });
  if (a.z_per_row) {
    for (int64_t i = 0; i < a.B; ++i) grad_logz[i] = static_cast<float>(g[static_cast<size_t>(i)]);
  } else {
    double s = 0;
    for (int64_t i = 0; i < a.B; ++i) s += g[static_cast<size_t>(i)];
    grad_logz[0] = static_cast<float>(s);
  }
}

}  // namespace

double trajectory_balance_loss(const GfnArgs& a, const float* log_reward, float* residual, float* grad_logz,
                               float* grad_pf, float* grad_pb) {
  std::vector<double> r(static_cast<size_t>(a.B)), g(static_cast<size_t>(a.B));
  gfn_rows(a, r);
  double loss = 0;
  const double inv = 1.0 / static_cast<double>(a.B);
  for (int64_t i = 0; i < a.B; ++i) {
    const double d = r[static_cast<size_t>(i)] - static_cast<double>(log_reward[i]);
    residual[i] = static_cast<float>(d);
    loss += d * d;
    g[static_cast<size_t>(i)] = 2.0 * d * inv;
  }
  gfn_grads(a, g, grad_logz, grad_pf, grad_pb);
  return loss * inv;
}

double order_preserving_loss(const GfnArgs& a, const float* objectives, int64_t K, float* log_rhat, uint8_t* front,
                             float* grad_logz, float* grad_pf, float* grad_pb, int64_t* count) {
  std::vector<double> r(static_cast<size_t>(a.B)), g(static_cast<size_t>(a.B));
  gfn_rows(a, r);
  pareto_front(objectives, a.B, K, front, count);
  double m = -INFINITY;
  for (int64_t i = 0; i < a.B; ++i) m = r[static_cast<size_t>(i)] > m ? r[static_cast<size_t>(i)] : m;
  double se = 0, tr = 0;
  const double nf = static_cast<double>(*count);
  for (int64_t i = 0; i < a.B; ++i) {
    se += std::exp(r[static_cast<size_t>(i)] - m);
    if (front[i]) tr += r[static_cast<size_t>(i)];
  }
  const double lse = m + std::log(se);
  for (int64_t i = 0; i < a.B; ++i) {
    const double ri = r[static_cast<size_t>(i)];
    log_rhat[i] = static_cast<float>(ri);
    g[static_cast<size_t>(i)] = std::exp(ri - lse) - (front[i] ? 1.0 / nf : 0.0);
  }
  gfn_grads(a, g, grad_logz, grad_pf, grad_pb);
  return lse - tr / nf;
}

}  // namespace rk
