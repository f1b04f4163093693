// Advantage estimators, reward-model ensembles and token-level returns (formulas in advantages.h).
//
// Determinism: a group's statistics are accumulated in double over its members in index order by
// whichever thread takes the group; batch statistics are sums over fixed blocks of kBlock samples
// (or over groups in order) added in block order. No result depends on the thread count.
#include "advantages.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu.h"
#include "threadpool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define RK_ADV_AVX2 1
#endif

namespace rk {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kBlock = 8192;         // samples per block of a batch reduction
constexpr int64_t kParallelWork = 32768;  // samples per parallel_for block

// Sum of f(i) over [0, n) in fixed blocks of kBlock, added in block order.
template <class F>
double block_sum(int64_t n, const F& f) {
  if (n <= kBlock) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += f(i);
    return s;
  }
  const int64_t nb = (n + kBlock - 1) / kBlock;
  std::vector<double> part(nb);
  parallel_for(nb, std::max<int64_t>(1, kParallelWork / kBlock), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t e = std::min(n, (b + 1) * kBlock);
      double s = 0;
      for (int64_t i = b * kBlock; i < e; ++i) s += f(i);
      part[b] = s;
    }
  });
  double s = 0;
  for (double p : part) s += p;
  return s;
}

// Groups as offsets into a member list: contiguous (perm == nullptr, member j of g is g*G + j)
// or a stable counting sort of group_ids (members in index order).
struct Groups {
  int64_t count = 0;
  int64_t size = 0;  // contiguous group size, 0 for ids
  std::vector<int64_t> offsets;
  std::vector<int64_t> perm;
  int64_t begin(int64_t g) const { return size ? g * size : offsets[g]; }
  int64_t end(int64_t g) const { return size ? (g + 1) * size : offsets[g + 1]; }
  int64_t at(int64_t k) const { return size ? k : perm[k]; }
};

Status make_groups(const GroupAdvantagesArgs& a, Groups& gr) {
  if (a.group_size > 0) {
    if (a.n % a.group_size != 0) return Status{Status::BadShape, 0, a.group_size};
    gr.size = a.group_size;
    gr.count = a.n / a.group_size;
    return Status{};
  }
  gr.count = a.num_groups;
  gr.offsets.assign(a.num_groups + 1, 0);
  for (int64_t i = 0; i < a.n; ++i) {
    const int32_t id = a.group_ids[i];
    if (id < 0 || id >= a.num_groups) return Status{Status::BadIndex, i, id};
    ++gr.offsets[id + 1];
  }
  for (int64_t g = 0; g < a.num_groups; ++g) gr.offsets[g + 1] += gr.offsets[g];
  gr.perm.resize(a.n);
  std::vector<int64_t> fill(gr.offsets.begin(), gr.offsets.end() - 1);
  for (int64_t i = 0; i < a.n; ++i) gr.perm[fill[a.group_ids[i]]++] = i;
  return Status{};
}

using GStat = core::GroupStat;

// The group statistic of the shared core over group g's members.
template <class V>
GStat group_stat(const Groups& gr, int64_t g, const V& val, bool want_second, const int32_t* lengths,
                 bool solo_self) {
  return core::group_stat(gr.begin(g), gr.end(g), [&gr](int64_t k) { return gr.at(k); }, val, want_second,
                          lengths, solo_self);
}

// Mean and unbiased std over the valid values of x (NaN skipped); std = 0 when fewer than 2.
template <class V>
void batch_mean_std(int64_t n, const V& val, double* mean, double* sd) {
  const double c = block_sum(n, [&](int64_t i) { return std::isnan(val(i)) ? 0.0 : 1.0; });
  const double s = block_sum(n, [&](int64_t i) { const double x = val(i); return std::isnan(x) ? 0.0 : x; });
  *mean = core::valid_mean(c, s);
  if (c < 2) {
    *sd = 0.0;
    return;
  }
  const double m = *mean;
  *sd = core::unbiased_sd(c, block_sum(n, [&](int64_t i) { return core::sq_dev(val(i), m); }));
}

// log Gamma(x) for x > 0 without touching the global `signgam` (std::lgamma writes it in glibc,
// a data race when two Promise-form calls run at once).
double log_gamma(double x) {
#if defined(__GLIBC__)
  int sign;
  return lgamma_r(x, &sign);
#else
  return std::lgamma(x);
#endif
}

#if RK_ADV_AVX2
// The hot path, contiguous f32 groups with grpo (scale group or none), in AVX2 double lanes: lane l
// of a 4-double vector is the scalar code's accumulator a_l (member j adds to lane j % 4), so the
// results are bit-identical to group_stat + write_group and to the TS small-call path. target("avx2")
// without FMA: no multiply-add is ever contracted, as in the baseline build.
__attribute__((target("avx2"))) void grpo_contig_avx2(const float* r, int64_t g0, int64_t g1, int64_t G,
                                                       bool divide, double eps, float* adv, float* gmean,
                                                       float* gstd, uint8_t* zflag) {
  // Phases over blocks of groups, so that the long-latency steps (division, sqrt) of neighbouring
  // groups overlap instead of forming one chain per group.
  constexpr int64_t kB = 32;
  const __m256d inf = _mm256_set1_pd(kInf), ninf = _mm256_set1_pd(-kInf), zero = _mm256_setzero_pd();
  const int64_t G4 = G & ~int64_t{3};
  double mean[kB], base[kB], mul[kB];
  int64_t cnt[kB];
  bool eq[kB];
  for (int64_t gb = g0; gb < g1; gb += kB) {
    const int64_t nb = std::min(kB, g1 - gb);
    for (int64_t t = 0; t < nb; ++t) {  // sums, counts, min and max
      const float* p = r + (gb + t) * G;
      __m256d acc = zero, mn = inf, mx = ninf;
      __m256i cv = _mm256_setzero_si256();
      for (int64_t j = 0; j < G4; j += 4) {
        const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(p + j));
        const __m256d ok = _mm256_cmp_pd(x, x, _CMP_ORD_Q);
        cv = _mm256_sub_epi64(cv, _mm256_castpd_si256(ok));  // a valid lane is all ones: -1
        acc = _mm256_add_pd(acc, _mm256_and_pd(ok, x));
        mn = _mm256_min_pd(x, mn);  // minpd/maxpd return the second operand when x is NaN
        mx = _mm256_max_pd(x, mx);
      }
      alignas(32) double a[4], lo[4], hi[4];
      alignas(32) int64_t ca[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(ca), cv);
      int64_t c = (ca[0] + ca[1]) + (ca[2] + ca[3]);
      _mm256_store_pd(a, acc);
      _mm256_store_pd(lo, mn);
      _mm256_store_pd(hi, mx);
      for (int64_t j = G4; j < G; ++j) {
        const double x = p[j];
        const bool ok = x == x;
        c += ok;
        a[j - G4] += ok ? x : 0.0;
        lo[j - G4] = std::min(lo[j - G4], ok ? x : kInf);
        hi[j - G4] = std::max(hi[j - G4], ok ? x : -kInf);
      }
      const double vmin = std::min(std::min(lo[0], lo[2]), std::min(lo[1], lo[3]));
      const double vmax = std::max(std::max(hi[0], hi[2]), std::max(hi[1], hi[3]));
      cnt[t] = c;
      eq[t] = vmin == vmax;
      mean[t] = c == 0 ? kNaN : eq[t] ? vmin : ((a[0] + a[1]) + (a[2] + a[3])) / static_cast<double>(c);
    }
    for (int64_t t = 0; t < nb; ++t) {  // squared deviations, std, the multiplier
      const int64_t c = cnt[t];
      double sd = kNaN, b = kNaN;
      if (c >= 2) {
        double ss = 0;
        if (!eq[t]) {
          const float* p = r + (gb + t) * G;
          const __m256d m = _mm256_set1_pd(mean[t]);
          __m256d q = zero;
          for (int64_t j = 0; j < G4; j += 4) {
            const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(p + j));
            const __m256d ok = _mm256_cmp_pd(x, x, _CMP_ORD_Q);
            const __m256d d = _mm256_sub_pd(x, m);
            q = _mm256_add_pd(q, _mm256_and_pd(ok, _mm256_mul_pd(d, d)));
          }
          alignas(32) double qa[4];
          _mm256_store_pd(qa, q);
          for (int64_t j = G4; j < G; ++j) {
            const double x = p[j];
            const double d = x - mean[t];
            qa[j - G4] += x == x ? d * d : 0.0;
          }
          ss = (qa[0] + qa[1]) + (qa[2] + qa[3]);
        }
        sd = eq[t] ? 0.0 : std::sqrt(ss / static_cast<double>(c - 1));
        b = mean[t];
      } else if (c == 1) {
        sd = 1.0;
        b = 0.0;
      }
      const int64_t g = gb + t;
      gmean[g] = static_cast<float>(b);
      gstd[g] = static_cast<float>(sd);
      zflag[g] = c >= 2 && eq[t];
      base[t] = b;
      mul[t] = 1.0 / (divide ? sd + eps : 1.0);
    }
    for (int64_t t = 0; t < nb; ++t) {  // advantages
      const float* p = r + (gb + t) * G;
      float* o = adv + (gb + t) * G;
      const __m256d vb = _mm256_set1_pd(base[t]), vm = _mm256_set1_pd(mul[t]);
      for (int64_t j = 0; j < G4; j += 4) {
        const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(p + j));
        const __m256d ok = _mm256_cmp_pd(x, x, _CMP_ORD_Q);
        const __m256d y = _mm256_and_pd(ok, _mm256_mul_pd(_mm256_sub_pd(x, vb), vm));
        _mm_storeu_ps(o + j, _mm256_cvtpd_ps(y));
      }
      for (int64_t j = G4; j < G; ++j) {
        const double x = p[j];
        o[j] = x == x ? static_cast<float>((x - base[t]) * mul[t]) : 0.0f;
      }
    }
  }
}
#endif

// The sum_then_normalize estimators on per-sample values val(i) (NaN = missing).
template <class V>
Status estimate(const GroupAdvantagesArgs& a, const Groups& gr, const V& val, float* adv, float* gmean,
                float* gstd, int64_t* zero) {
  const int64_t G = gr.count;
  const AdvEstimator est = a.estimator;
  const bool want_second = est == AdvEstimator::PassK;
  const int32_t* lens = est == AdvEstimator::Opo ? a.lengths : nullptr;
  // Estimators whose advantage needs only its own group's statistics: one fused pass per group.
  const bool fused = core::group_local(est, a.scale);
  double batch_sd = 1.0;
  if (!fused && (est == AdvEstimator::Grpo || est == AdvEstimator::PassK)) {
    double m;
    batch_mean_std(a.n, val, &m, &batch_sd);
  }
  const double denom_batch = batch_sd + a.eps;

  auto write_group = [&](int64_t g, const GStat& s, double w_bnpo) {
    core::group_write(est, a.scale, a.eps, s, denom_batch, w_bnpo, gr.begin(g), gr.end(g),
                      [&gr](int64_t k) { return gr.at(k); }, val, adv);
  };

  std::vector<GStat> stats(fused ? 0 : G);
  std::vector<uint8_t> zflag(G, 0);
  const int64_t grain = std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, a.n / std::max<int64_t>(1, G)));
  parallel_for(G, grain, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      const GStat s = group_stat(gr, g, val, want_second, lens, a.solo_self);
      gmean[g] = static_cast<float>(s.base);
      gstd[g] = static_cast<float>(s.scale);
      zflag[g] = s.equal;
      if (fused) write_group(g, s, 0.0);
      else stats[g] = s;
    }
  });
  int64_t z = 0;
  for (int64_t g = 0; g < G; ++g) z += zflag[g];
  *zero = z;
  if (fused) return Status{};

  if (est == AdvEstimator::Bnpo) {  // p_g over the groups with a valid sample (core::bnpo_shape)
    int64_t np = 0;
    double ps = 0;
    for (int64_t g = 0; g < G; ++g) {
      if (stats[g].c == 0) continue;
      const double p = stats[g].base;
      if (!(p >= 0.0 && p <= 1.0)) return Status{static_cast<Status::Code>(kAdvStatusBnpoRange), g, 0};
      ++np;
      ps += p;
    }
    const double pbar = ps / static_cast<double>(np);
    double pss = 0;
    if (np >= 2)
      for (int64_t g = 0; g < G; ++g)
        if (stats[g].c > 0) pss += (stats[g].base - pbar) * (stats[g].base - pbar);
    double alpha, beta;
    core::bnpo_shape(static_cast<double>(np), pbar, pss, &alpha, &beta);
    const double lbeta = log_gamma(alpha) + log_gamma(beta) - log_gamma(alpha + beta);
    parallel_for(G, grain, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g)
        write_group(g, stats[g], stats[g].c > 0 ? core::bnpo_weight(stats[g].base, alpha, beta, lbeta) : 0.0);
    });
    return Status{};
  }

  const double gmul = est == AdvEstimator::Gpg
                          ? core::gpg_mul(static_cast<double>(a.n), block_sum(a.n, [&](int64_t i) { return core::gpg_nonzero(val(i)); }), a.f_norm)
                          : 0.0;
  parallel_for(G, grain, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) write_group(g, stats[g], gmul);
  });
  if (est != AdvEstimator::ReinforcePPBaseline) return Status{};

  // Whiten y = x - base over the valid samples, weighted by lengths when given (verl: by tokens).
  // adv holds y rounded to f32; recompute y in double from the group statistics instead.
  const int32_t* wl = a.lengths;
  std::vector<double> base(a.n);
  for (int64_t g = 0; g < G; ++g)
    for (int64_t k = gr.begin(g); k < gr.end(g); ++k) base[gr.at(k)] = stats[g].base;
  auto y = [&](int64_t i) { return val(i) - base[i]; };
  auto w = [&](int64_t i) { return core::rpp_weight(val(i), wl, i); };
  const double W = block_sum(a.n, w);
  const double my = core::rpp_mean(W, block_sum(a.n, [&](int64_t i) { return core::w_term(w(i), y(i)); }));
  const double inv = core::rpp_inv_std(W, block_sum(a.n, [&](int64_t i) { return core::w_sq(w(i), y(i) - my); }));
  parallel_for(a.n, kParallelWork, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) adv[i] = core::rpp_out(val(i), y(i), my, inv);
  });
  return Status{};
}

// GDPO: z-score each reward within its group, weighted sum, z-score over the batch.
Status normalize_then_sum(const GroupAdvantagesArgs& a, const Groups& gr, float* adv, float* gmean,
                          float* gstd, int64_t* zero) {
  const int64_t K = a.num_rewards, G = gr.count, n = a.n;
  std::vector<double> comb(n, kNaN);
  std::vector<uint8_t> zflag(G, 0);
  const int64_t grain = std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, (n * K) / std::max<int64_t>(1, G)));
  parallel_for(G, grain, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g)
      zflag[g] = core::gdpo_group(gr.begin(g), gr.end(g), [&gr](int64_t k) { return gr.at(k); }, a.rewards, K,
                                  a.reward_weights, a.eps, comb.data(), gmean + g * K, gstd + g * K);
  });
  int64_t z = 0;
  for (int64_t g = 0; g < G; ++g) z += zflag[g];
  *zero = z;
  double m, sd;
  batch_mean_std(n, [&](int64_t i) { return comb[i]; }, &m, &sd);
  const double denom = sd + a.eps;
  parallel_for(n, kParallelWork, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) adv[i] = core::zscore(comb[i], m, denom);
  });
  return Status{};
}

}  // namespace

Status group_advantages(const GroupAdvantagesArgs& a, float* adv, float* gmean, float* gstd, int64_t* zero) {
  *zero = 0;
  if (a.n < 0 || a.num_rewards < 1) return Status{Status::BadShape, 0, a.num_rewards};
  Groups gr;
  Status st = make_groups(a, gr);
  if (!st.ok()) return st;
  if (a.lengths)
    for (int64_t i = 0; i < a.n; ++i)
      if (a.lengths[i] < 0) return Status{Status::BadIndex, i, a.lengths[i]};
  if (a.multi == MultiReward::NormalizeThenSum) return normalize_then_sum(a, gr, adv, gmean, gstd, zero);

  const int64_t K = a.num_rewards;
  const float* r = a.rewards;
  const bool bnpo = a.estimator == AdvEstimator::Bnpo;
  const double lo = a.reward_min, span = a.reward_max - a.reward_min;
#if RK_ADV_AVX2
  if (K == 1 && !a.reward_weights && a.group_size > 0 && a.estimator == AdvEstimator::Grpo &&
      a.scale != AdvScale::Batch && !a.solo_self && active_isa() != Isa::Scalar) {
    const int64_t G = gr.count, gs = a.group_size;
    std::vector<uint8_t> zflag(G);
    parallel_for(G, std::max<int64_t>(1, kParallelWork / gs), [&](int64_t g0, int64_t g1) {
      grpo_contig_avx2(r, g0, g1, gs, a.scale == AdvScale::Group, a.eps, adv, gmean, gstd, zflag.data());
    });
    int64_t z = 0;
    for (uint8_t f : zflag) z += f;
    *zero = z;
    return Status{};
  }
#endif
  if (K == 1 && !a.reward_weights && !bnpo)
    return estimate(a, gr, [r](int64_t i) { return static_cast<double>(r[i]); }, adv, gmean, gstd, zero);
  // Weighted sum over the rewards that are present, then the bnpo scaling (core::sample_value).
  std::vector<double> xs(a.n);
  parallel_for(a.n, kParallelWork, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) xs[i] = core::sample_value(r + i * K, K, a.reward_weights, bnpo, lo, span);
  });
  const double* xp = xs.data();
  return estimate(a, gr, [xp](int64_t i) { return xp[i]; }, adv, gmean, gstd, zero);
}

void ensemble_rewards(const float* r, int64_t n, int64_t m, EnsembleMethod method, double lambda, float* out) {
  parallel_for(n, std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, m)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = static_cast<float>(core::ensemble_row(r + i * m, m, method, lambda));
  });
}

void gae(const float* values, const float* rewards, TokenMask mask, int64_t rows, int64_t cols, double gamma,
         double lambda, float* adv, float* ret) {
  const double gl = gamma * lambda;
  parallel_for(rows, std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, cols)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) core::gae_row(values, rewards, mask, b, cols, gamma, gl, adv, ret);
  });
}

void discounted_returns(const float* rewards, TokenMask mask, int64_t rows, int64_t cols, double gamma, float* out) {
  parallel_for(rows, std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, cols)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) core::discounted_row(rewards, mask, b, cols, gamma, out);
  });
}

Status masked_whiten(const float* x, TokenMask mask, int64_t n, bool shift_mean, bool unbiased, double eps,
                     float* out) {
  if (mask.is_f32) {
    const float* mw = static_cast<const float*>(mask.data);
    for (int64_t i = 0; i < n; ++i)
      if (!(mw[i] >= 0.0f && mw[i] < std::numeric_limits<float>::infinity())) return Status{Status::BadIndex, i, 0};
  }
  auto w = [&](int64_t i) { return core::mask_weight(mask, i); };
  const double W = block_sum(n, w);
  if (!(W > 0)) {
    parallel_for(n, kParallelWork, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) out[i] = 0.0f;
    });
    return Status{};
  }
  const double mean = block_sum(n, [&](int64_t i) { return core::w_term(w(i), x[i]); }) / W;
  const double ss = block_sum(n, [&](int64_t i) { return core::w_sq(w(i), x[i] - mean); });
  const core::WhitenStats ws = core::whiten_stats(W, mean, ss, shift_mean, unbiased, eps);
  parallel_for(n, kParallelWork, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = core::whiten_value(x[i], w(i), ws);
  });
  return Status{};
}

namespace {

// The first f32 mask weight that is negative or not finite, -1 if none (masked_whiten's check).
int64_t first_bad_mask_weight(const TokenMask& mask, int64_t n) {
  if (!mask.data || !mask.is_f32) return -1;
  const float* mw = static_cast<const float*>(mask.data);
  for (int64_t i = 0; i < n; ++i)
    if (!(mw[i] >= 0.0f && mw[i] < std::numeric_limits<float>::infinity())) return i;
  return -1;
}

}  // namespace

Status token_advantages(const TokenAdvantagesArgs& a, float* adv, float* ret) {
  const int64_t B = a.rows, T = a.cols, n = B * T;
  const int64_t bad = first_bad_mask_weight(a.mask, n);
  if (bad >= 0) return Status{Status::BadIndex, bad, 0};
  const int64_t grain = std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, T));
  const TokenMask mask = a.mask;
  switch (a.estimator) {
    case TokenEstimator::ReinforcePP: {
      parallel_for(B, grain, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) core::rpp_returns_row(a.rewards, mask, b, T, a.gamma, ret);
      });
      // masked_whiten(returns, mask) * mask: the stats of masked_whiten over the f32 returns
      auto w = [&](int64_t i) { return core::tok_w(mask, i); };
      const double W = block_sum(n, w);
      if (!(W > 0)) {
        parallel_for(n, kParallelWork, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) adv[i] = 0.0f;
        });
        return Status{};
      }
      const double mean = block_sum(n, [&](int64_t i) { return core::w_term(w(i), ret[i]); }) / W;
      const double ss = block_sum(n, [&](int64_t i) { return core::w_sq(w(i), ret[i] - mean); });
      const core::WhitenStats ws = core::whiten_stats(W, mean, ss, true, true, core::kWhitenEps);
      parallel_for(n, kParallelWork, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) adv[i] = core::rpp_token_out(ret[i], w(i), ws);
      });
      return Status{};
    }
    case TokenEstimator::Remax:
      parallel_for(B, grain, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) core::remax_row(a.rewards, mask, a.baselines, b, T, adv, ret);
      });
      return Status{};
    default: {
      GroupAdvantagesArgs ga;
      ga.n = B;
      ga.group_size = a.group_size;
      ga.group_ids = a.group_ids;
      ga.num_groups = a.num_groups;
      Groups gr;
      const Status st = make_groups(ga, gr);
      if (!st.ok()) return st;
      const core::OtbInputs in{a.rewards, mask, a.logprobs, a.sum_pi_sq, a.is_weights, T,
                               a.estimator == TokenEstimator::TirOtb};
      const int64_t G = gr.count;
      const int64_t ggrain = std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, n / std::max<int64_t>(1, G)));
      parallel_for(G, ggrain, [&](int64_t g0, int64_t g1) {
        std::vector<double> scratch(3 * T);
        std::vector<int64_t> idx;
        for (int64_t g = g0; g < g1; ++g) {
          const int64_t sz = gr.end(g) - gr.begin(g);
          if (static_cast<int64_t>(idx.size()) < 2 * sz) idx.resize(2 * sz);
          core::otb_group(in, a.eps, a.zero_tail, gr.begin(g), gr.end(g), [&gr](int64_t k) { return gr.at(k); },
                    scratch.data(), scratch.data() + T, scratch.data() + 2 * T, idx.data(), idx.data() + sz, adv, ret);
        }
      });
      return Status{};
    }
  }
}

Status kl_rewards(const float* scores, const float* logprobs, const float* ref, TokenMask mask, int64_t rows,
                  int64_t cols, KlRewardEstimator est, double beta, float* rewards, double* kl_mean) {
  const int64_t bad = first_bad_mask_weight(mask, rows * cols);
  if (bad >= 0) return Status{Status::BadIndex, bad, 0};
  std::vector<double> row_kl(rows);
  parallel_for(rows, std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, cols)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      row_kl[b] = core::kl_rewards_row(scores, logprobs, ref, mask, b, cols, est, beta, rewards);
  });
  *kl_mean = core::kl_rows_mean(row_kl.data(), rows);
  return Status{};
}

// ---- reward mixing (native/core/reward_mix.h) ----------------------------------------------------

void gated_rewards(const float* high, const float* low, TokenMask mask, int64_t rows, int64_t cols, double threshold,
                   float* out) {
  parallel_for(rows, std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, cols)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) out[b] = static_cast<float>(core::gated_row(high, low, mask, b, cols, threshold));
  });
}

void discounted_cumsum(const float* x, TokenMask mask, int64_t rows, int64_t cols, double gamma, bool adjoint,
                       float* out) {
  parallel_for(rows, std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, cols)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) core::discounted_cumsum_row(x, mask, b, cols, gamma, adjoint, out);
  });
}

// grad_xi: per multiplier, fixed chunks of kMixChunk elements summed in double, the chunks merged in
// index order (the same bits for every thread count).
void lagrangian_mix(const float* adv, const float* kl, const float* xi, const float* grad_mixed, int64_t k, int64_t n,
                    float* out, float* grad_xi) {
  std::vector<double> lambda(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) lambda[static_cast<size_t>(i)] = core::mix_sigmoid(xi[i]);
  const double wkl = core::lagrangian_kl_weight(xi, k);
  const double* lam = lambda.data();
  const int64_t grain = std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, k + 1));
  if (grad_mixed && grad_xi) {
    constexpr int64_t kMixChunk = 8192;
    const int64_t chunks = (n + kMixChunk - 1) / kMixChunk;
    std::vector<double> part(static_cast<size_t>(chunks * k), 0.0);
    parallel_for(chunks * k, 1, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t i = j / chunks, c = j % chunks;
        const int64_t e = std::min(n, (c + 1) * kMixChunk);
        double s = 0;
        for (int64_t m = c * kMixChunk; m < e; ++m) s += core::lagrangian_xi_term(adv + i * n, kl, grad_mixed, m);
        part[static_cast<size_t>(j)] = s;
      }
    });
    for (int64_t i = 0; i < k; ++i) {
      double s = 0;
      for (int64_t c = 0; c < chunks; ++c) s += part[static_cast<size_t>(i * chunks + c)];
      grad_xi[i] = static_cast<float>(core::mix_sigmoid_grad(xi[i]) * s);
    }
  }
  // after grad_xi: out may be an input (in place)
  parallel_for(n, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t m = i0; m < i1; ++m) out[m] = static_cast<float>(core::lagrangian_mix_value(adv, kl, xi, lam, k, m, n, wkl));
  });
}

}  // namespace rk
