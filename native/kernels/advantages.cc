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
constexpr double kWhitenEps = 1e-8;       // verl masked_whiten
constexpr double kBnpoMaxWeight = 1e6;    // BNPO clamp of 1 / BetaPDF

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
GStat group_stat(const Groups& gr, int64_t g, const V& val, bool want_second, const int32_t* lengths) {
  return core::group_stat(gr.begin(g), gr.end(g), [&gr](int64_t k) { return gr.at(k); }, val, want_second,
                          lengths);
}

// Mean and unbiased std over the valid values of x (NaN skipped); std = 0 when fewer than 2.
template <class V>
void batch_mean_std(int64_t n, const V& val, double* mean, double* sd) {
  const double c = block_sum(n, [&](int64_t i) { return std::isnan(val(i)) ? 0.0 : 1.0; });
  const double s = block_sum(n, [&](int64_t i) { const double x = val(i); return std::isnan(x) ? 0.0 : x; });
  *mean = c > 0 ? s / c : kNaN;
  if (c < 2) {
    *sd = 0.0;
    return;
  }
  const double m = *mean;
  const double ss = block_sum(n, [&](int64_t i) {
    const double x = val(i);
    return std::isnan(x) ? 0.0 : (x - m) * (x - m);
  });
  *sd = std::sqrt(ss / (c - 1));
}

double xlogy(double x, double y) { return x == 0 ? 0.0 : x * std::log(y); }

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
  const bool fused = (est == AdvEstimator::Grpo || est == AdvEstimator::PassK) ? a.scale != AdvScale::Batch
                     : (est == AdvEstimator::Rloo || est == AdvEstimator::Opo);
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
      const GStat s = group_stat(gr, g, val, want_second, lens);
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

  if (est == AdvEstimator::Bnpo) {
    // p_g over the groups with a valid sample; alpha = beta = 1 with fewer than 2 such groups or
    // no spread (the reference divides by a zero variance there).
    int64_t np = 0;
    double ps = 0;
    for (int64_t g = 0; g < G; ++g) {
      if (stats[g].c == 0) continue;
      const double p = stats[g].base;
      if (!(p >= 0.0 && p <= 1.0)) return Status{static_cast<Status::Code>(kAdvStatusBnpoRange), g, 0};
      ++np;
      ps += p;
    }
    double alpha = 1.0, beta = 1.0;
    if (np >= 2) {
      const double pbar = ps / static_cast<double>(np);
      double pss = 0;
      for (int64_t g = 0; g < G; ++g)
        if (stats[g].c > 0) pss += (stats[g].base - pbar) * (stats[g].base - pbar);
      const double pvar = pss / static_cast<double>(np - 1);
      if (pvar > 0) {
        const double c = pbar * (1.0 - pbar) / pvar - 1.0;
        alpha = std::max(1.0, 1.0 + c * pbar / 3.0);
        beta = std::max(1.0, 1.0 + c * (1.0 - pbar) / 3.0);
      }
    }
    const double lbeta = log_gamma(alpha) + log_gamma(beta) - log_gamma(alpha + beta);
    parallel_for(G, grain, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) {
        const double p = stats[g].base;
        double w = 0.0;
        if (stats[g].c > 0) {
          const double pdf = std::exp(xlogy(alpha - 1.0, p) + xlogy(beta - 1.0, 1.0 - p) - lbeta);
          w = std::min(1.0 / pdf, kBnpoMaxWeight);
        }
        write_group(g, stats[g], w);
      }
    });
    return Status{};
  }

  parallel_for(G, grain, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) write_group(g, stats[g], 0.0);
  });
  if (est != AdvEstimator::ReinforcePPBaseline) return Status{};

  // Whiten y = x - base over the valid samples, weighted by lengths when given (verl: by tokens).
  // adv holds y rounded to f32; recompute y in double from the group statistics instead.
  const int32_t* wl = a.lengths;
  std::vector<double> base(a.n);
  for (int64_t g = 0; g < G; ++g)
    for (int64_t k = gr.begin(g); k < gr.end(g); ++k) base[gr.at(k)] = stats[g].base;
  auto y = [&](int64_t i) { return val(i) - base[i]; };
  auto w = [&](int64_t i) { return std::isnan(val(i)) ? 0.0 : (wl ? static_cast<double>(wl[i]) : 1.0); };
  const double W = block_sum(a.n, w);
  const double my = W > 0 ? block_sum(a.n, [&](int64_t i) { const double wi = w(i); return wi == 0 ? 0.0 : wi * y(i); }) / W : 0.0;
  const double ss = block_sum(a.n, [&](int64_t i) {
    const double wi = w(i);
    if (wi == 0) return 0.0;
    const double d = y(i) - my;
    return wi * d * d;
  });
  const double var = W > 1 ? ss / (W - 1) : W > 0 ? ss / W : 0.0;
  const double inv = 1.0 / std::sqrt(var + kWhitenEps);
  parallel_for(a.n, kParallelWork, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) adv[i] = std::isnan(val(i)) ? 0.0f : static_cast<float>((y(i) - my) * inv);
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
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t b = gr.begin(g), e = gr.end(g);
      bool flat = true;
      for (int64_t k = 0; k < K; ++k) {
        auto val = [&](int64_t i) { return static_cast<double>(a.rewards[i * K + k]); };
        const GStat s = group_stat(gr, g, val, false, nullptr);
        gmean[g * K + k] = static_cast<float>(s.mean);
        gstd[g * K + k] = static_cast<float>(s.c >= 2 ? s.sd : s.c == 1 ? 0.0 : kNaN);
        const bool spread = s.c >= 2 && !s.equal;
        if (spread) flat = false;
        const double wk = a.reward_weights ? a.reward_weights[k] : 1.0;
        for (int64_t j = b; j < e; ++j) {
          const int64_t i = gr.at(j);
          const double x = val(i);
          if (std::isnan(x)) continue;
          const double z = spread ? (x - s.mean) / (s.sd + a.eps) : 0.0;
          comb[i] = (std::isnan(comb[i]) ? 0.0 : comb[i]) + wk * z;
        }
      }
      int64_t valid = 0;
      for (int64_t j = b; j < e; ++j) valid += !std::isnan(comb[gr.at(j)]);
      zflag[g] = flat && valid >= 2;
    }
  });
  int64_t z = 0;
  for (int64_t g = 0; g < G; ++g) z += zflag[g];
  *zero = z;
  double m, sd;
  batch_mean_std(n, [&](int64_t i) { return comb[i]; }, &m, &sd);
  const double denom = sd + a.eps;
  parallel_for(n, kParallelWork, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) adv[i] = std::isnan(comb[i]) ? 0.0f : static_cast<float>((comb[i] - m) / denom);
  });
  return Status{};
}

bool mask_on(const TokenMask& m, int64_t i) {
  return m.is_f32 ? static_cast<const float*>(m.data)[i] != 0.0f : static_cast<const uint8_t*>(m.data)[i] != 0;
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
      a.scale != AdvScale::Batch && active_isa() != Isa::Scalar) {
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
  // Weighted sum over the rewards that are present (NaN = missing; all missing -> NaN), then the
  // bnpo scaling to [0, 1].
  std::vector<double> xs(a.n);
  parallel_for(a.n, kParallelWork, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      double s = 0;
      bool any = false;
      for (int64_t k = 0; k < K; ++k) {
        const double v = r[i * K + k];
        if (std::isnan(v)) continue;
        s += (a.reward_weights ? a.reward_weights[k] : 1.0) * v;
        any = true;
      }
      double x = any ? s : kNaN;
      if (bnpo) x = (x - lo) / span;
      xs[i] = x;
    }
  });
  const double* xp = xs.data();
  return estimate(a, gr, [xp](int64_t i) { return xp[i]; }, adv, gmean, gstd, zero);
}

void ensemble_rewards(const float* r, int64_t n, int64_t m, EnsembleMethod method, double lambda, float* out) {
  parallel_for(n, std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, m)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* row = r + i * m;
      int64_t c = 0;
      double s = 0, mn = kInf;
      for (int64_t j = 0; j < m; ++j) {
        const double x = row[j];
        if (std::isnan(x)) continue;
        ++c;
        s += x;
        mn = std::min(mn, x);
      }
      double v = kNaN;
      if (c > 0) {
        const double mean = s / static_cast<double>(c);
        if (method == EnsembleMethod::Mean) v = mean;
        else if (method == EnsembleMethod::Min) v = mn;
        else {
          double ss = 0;
          for (int64_t j = 0; j < m; ++j) {
            const double x = row[j];
            if (!std::isnan(x)) ss += (x - mean) * (x - mean);
          }
          v = mean - lambda * ss / static_cast<double>(c);
        }
      }
      out[i] = static_cast<float>(v);
    }
  });
}

void gae(const float* values, const float* rewards, TokenMask mask, int64_t rows, int64_t cols, double gamma,
         double lambda, float* adv, float* ret) {
  const double gl = gamma * lambda;
  parallel_for(rows, std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, cols)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      double next_v = 0, last = 0;
      for (int64_t t = cols - 1; t >= 0; --t) {
        const int64_t i = b * cols + t;
        if (!mask_on(mask, i)) {
          adv[i] = 0.0f;
          ret[i] = 0.0f;
          continue;
        }
        const double v = values[i];
        const double delta = rewards[i] + gamma * next_v - v;
        last = delta + gl * last;
        next_v = v;
        adv[i] = static_cast<float>(last);
        ret[i] = static_cast<float>(last + v);
      }
    }
  });
}

void discounted_returns(const float* rewards, TokenMask mask, int64_t rows, int64_t cols, double gamma, float* out) {
  parallel_for(rows, std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, cols)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      double g = 0;
      for (int64_t t = cols - 1; t >= 0; --t) {
        const int64_t i = b * cols + t;
        if (!mask_on(mask, i)) {
          out[i] = 0.0f;
          continue;
        }
        g = rewards[i] + gamma * g;
        out[i] = static_cast<float>(g);
      }
    }
  });
}

Status masked_whiten(const float* x, TokenMask mask, int64_t n, bool shift_mean, bool unbiased, double eps,
                     float* out) {
  if (mask.is_f32) {
    const float* mw = static_cast<const float*>(mask.data);
    for (int64_t i = 0; i < n; ++i)
      if (!(mw[i] >= 0.0f && mw[i] < std::numeric_limits<float>::infinity())) return Status{Status::BadIndex, i, 0};
  }
  auto w = [&](int64_t i) -> double {
    return mask.is_f32 ? static_cast<double>(static_cast<const float*>(mask.data)[i])
                       : (static_cast<const uint8_t*>(mask.data)[i] != 0 ? 1.0 : 0.0);
  };
  const double W = block_sum(n, w);
  if (!(W > 0)) {
    parallel_for(n, kParallelWork, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) out[i] = 0.0f;
    });
    return Status{};
  }
  const double mean = block_sum(n, [&](int64_t i) { const double wi = w(i); return wi == 0 ? 0.0 : wi * x[i]; }) / W;
  const double ss = block_sum(n, [&](int64_t i) {
    const double wi = w(i);
    if (wi == 0) return 0.0;
    const double d = x[i] - mean;
    return wi * d * d;
  });
  double var = ss / W;
  if (unbiased && W > 1) var *= W / (W - 1);
  const double inv = 1.0 / std::sqrt(var + eps);
  const double add = shift_mean ? 0.0 : mean;
  parallel_for(n, kParallelWork, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = w(i) == 0 ? 0.0f : static_cast<float>((x[i] - mean) * inv + add);
  });
  return Status{};
}

}  // namespace rk
