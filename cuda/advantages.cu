// Advantage estimators, ensembles and token-level returns on CUDA (contracts in advantages.h; the
// CPU twins are native/kernels/advantages.cc). Every formula is a shared core function of
// native/core/advantages.h, called by both backends (sample values, group statistic and write-back,
// GDPO's group step, batch std, BNPO's Beta weights, the REINFORCE++ whitening, ensemble rows, the
// GAE / discounted-return rows, masked_whiten's statistics); this file holds the launches and the
// fixed-order reductions.
//
//   values    per sample x_i in double (weighted sum of the present rewards, bnpo scaling);
//             validates lengths (slot n + i)
//   groups    contiguous, or from group_ids: a histogram (integer atomics, validating ids: slot i),
//             an exclusive scan in one block, and a stable radix sort of (id, index) (CUB), so each
//             group's members are in index order as on the CPU
//   stats     one thread per group: count, mean, squared deviations, min/max, passk's best and
//             second, opo's length-weighted baseline; fused estimators write the advantages here
//   batch     sums over fixed chunks of kSumChunk samples in a fixed tree, chunk partials added in
//             order by one block (batch std, bnpo's moments, the REINFORCE++ whitening, GDPO)
#include "advantages.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <vector>

#if !defined(RK_CUDA_EMULATION)
#include <cub/device/device_radix_sort.cuh>
#endif

#include "small_common.cuh"

namespace rkcuda {
namespace {

using namespace small;

constexpr int64_t kSumChunk = 2048;

__device__ __forceinline__ double dnan() { return NAN; }

using GStat = rk::core::GroupStat;
using rk::AdvEstimator;
using rk::AdvScale;

// Member k of a group is sample perm ? perm[k] : k.
struct PermAt {
  const int32_t* perm;
  __host__ __device__ int64_t operator()(int64_t k) const { return perm ? static_cast<int64_t>(perm[k]) : k; }
};
// val(i) = src[i * stride + off] as a double.
template <class T>
struct StridedVal {
  const T* src;
  int64_t stride, off;
  __host__ __device__ double operator()(int64_t i) const { return static_cast<double>(src[i * stride + off]); }
};

// The core group statistic over members [b, e) of val(i) = src[i * stride + off].
template <class T>
__device__ GStat group_stat(const T* src, int64_t stride, int64_t off, int64_t b, int64_t e, const int32_t* perm,
                            bool want_second, const int32_t* lengths, bool solo_self = false) {
  return rk::core::group_stat(b, e, PermAt{perm}, StridedVal<T>{src, stride, off}, want_second, lengths, solo_self);
}

struct Groups {
  int64_t count, size;     // size > 0: contiguous
  const int64_t* offsets;  // (count + 1) for ids
  const int32_t* perm;     // (n) for ids
  __device__ int64_t begin(int64_t g) const { return size ? g * size : offsets[g]; }
  __device__ int64_t end(int64_t g) const { return size ? (g + 1) * size : offsets[g + 1]; }
};

struct EstParams {
  AdvEstimator est;
  AdvScale scale;
  double eps;
  int64_t n;
  const int32_t* lengths;  // opo only (the stats' baseline)
  bool solo_self;          // a group of one valid sample: baseline its own value (TRL)
  double f_norm;           // gpg
};

__device__ __forceinline__ bool slot_bad(const unsigned long long* slot) { return slot && *slot != kNone; }

// The core write-back of group g's advantages.
__device__ void write_group(const EstParams& P, const Groups& G, int64_t g, const GStat& s, const double* xs,
                            double denom_batch, double w_bnpo, float* adv) {
  rk::core::group_write(P.est, P.scale, P.eps, s, denom_batch, w_bnpo, G.begin(g), G.end(g), PermAt{G.perm},
                        StridedVal<double>{xs, 1, 0}, adv);
}

__global__ void __launch_bounds__(kThreads) adv_values(const float* r, int64_t n, int64_t K, const double* wts,
                                                      bool raw, bool bnpo, double lo, double span,
                                                      const int32_t* lengths, double* xs,
                                                      unsigned long long* slot) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  if (lengths && lengths[i] < 0) note_bad(slot, n + i);
  xs[i] = raw ? static_cast<double>(r[i]) : rk::core::sample_value(r + i * K, K, wts, bnpo, lo, span);
}

__global__ void __launch_bounds__(kThreads) adv_hist(const int32_t* ids, int64_t n, int64_t G, int* counts,
                                                    int32_t* iota, unsigned long long* slot) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  iota[i] = static_cast<int32_t>(i);
  const int32_t id = ids[i];
  if (id < 0 || id >= G) {
    note_bad(slot, i);
    return;
  }
  atomicAdd(&counts[id], 1);
}

__global__ void __launch_bounds__(kThreads) adv_scan(const int* counts, int64_t G, int64_t* offsets) {
  __shared__ long long tot[kThreads];
  int64_t b0, b1;
  share(G, threadIdx.x, &b0, &b1);
  long long s = 0;
  for (int64_t g = b0; g < b1; ++g) s += counts[g];
  tot[threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    long long run = 0;
    for (int t = 0; t < kThreads; ++t) {
      const long long v = tot[t];
      tot[t] = run;
      run += v;
    }
    offsets[G] = run;
  }
  __syncthreads();
  long long run = tot[threadIdx.x];
  for (int64_t g = b0; g < b1; ++g) {
    offsets[g] = run;
    run += counts[g];
  }
}

// One thread per group: statistics, gmean/gstd, the zero-std flag; fused: the advantages too.
__global__ void __launch_bounds__(kThreads) adv_stats(EstParams P, Groups G, const double* xs, bool fused,
                                                     GStat* stats, float* gmean, float* gstd, double* zflag,
                                                     float* adv, const unsigned long long* slot) {
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (g >= G.count) return;
  if (slot_bad(slot)) {
    gmean[g] = gstd[g] = NAN;
    zflag[g] = 0;
    if (fused)
      for (int64_t k = G.begin(g); k < G.end(g); ++k) adv[G.perm ? G.perm[k] : k] = NAN;
    return;
  }
  const GStat s = group_stat(xs, 1, 0, G.begin(g), G.end(g), G.perm, P.est == AdvEstimator::PassK, P.est == AdvEstimator::Opo ? P.lengths : nullptr, P.solo_self);
  gmean[g] = static_cast<float>(s.base);
  gstd[g] = static_cast<float>(s.scale);
  zflag[g] = s.equal ? 1.0 : 0.0;
  if (fused) write_group(P, G, g, s, xs, 1.0, 0.0, adv);
  else stats[g] = s;
}

// acc: [0] count, [1] sum, [2] ss (batch mean/std of xs) ; bnpo: ab = alpha, beta, lbeta; gpg: nz[0]
// the count of nonzero valid values.
__global__ void __launch_bounds__(kThreads) adv_write(EstParams P, Groups G, const double* xs, const GStat* stats,
                                                     const double* acc, const double* ab, const double* nz, float* adv,
                                                     const unsigned long long* slot) {
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (g >= G.count) return;
  if (slot_bad(slot)) {
    for (int64_t k = G.begin(g); k < G.end(g); ++k) adv[G.perm ? G.perm[k] : k] = NAN;
    return;
  }
  const double denom = acc ? rk::core::unbiased_sd(acc[0], acc[2]) + P.eps : 1.0;
  const GStat& s = stats[g];
  const double w = nz   ? rk::core::gpg_mul(static_cast<double>(P.n), nz[0], P.f_norm)
                   : ab && s.c > 0 ? rk::core::bnpo_weight(s.base, ab[0], ab[1], ab[2]) : 0.0;
  write_group(P, G, g, s, xs, denom, w, adv);
}

__global__ void __launch_bounds__(kThreads) adv_bnpo(const GStat* stats, int64_t G, int64_t n, double* ab,
                                                    unsigned long long* slot) {
  __shared__ double sh[kThreads];
  int64_t b0, b1;
  share(G, threadIdx.x, &b0, &b1);
  double np = 0, ps = 0;
  for (int64_t g = b0; g < b1; ++g) {
    if (stats[g].c == 0) continue;
    const double p = stats[g].base;
    if (!(p >= 0.0 && p <= 1.0)) note_bad(slot, 2 * n + g);
    np += 1;
    ps += p;
  }
  np = block_sum(np, sh);
  ps = block_sum(ps, sh);
  const double pbar = ps / np;
  double pss = 0;
  if (np >= 2) {
    for (int64_t g = b0; g < b1; ++g)
      if (stats[g].c > 0) pss += (stats[g].base - pbar) * (stats[g].base - pbar);
    pss = block_sum(pss, sh);
  }
  double alpha, beta;
  rk::core::bnpo_shape(np, pbar, pss, &alpha, &beta);
  if (threadIdx.x == 0) {
    ab[0] = alpha;
    ab[1] = beta;
    ab[2] = lgamma(alpha) + lgamma(beta) - lgamma(alpha + beta);
  }
}

// ---- fixed-order batch sums: two values per element, chunk partials, then one block ----------
template <class F>
__global__ void __launch_bounds__(kThreads) bsum_chunks(F f, int64_t n, double* parts) {
  __shared__ double sh[kThreads];
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kSumChunk;
  const int64_t t1 = t0 + kSumChunk < n ? t0 + kSumChunk : n;
  double a = 0, b = 0;
  for (int64_t i = t0 + threadIdx.x; i < t1; i += kThreads) f(i, a, b);
  a = block_sum(a, sh);
  b = block_sum(b, sh);
  if (threadIdx.x == 0) {
    parts[2 * blockIdx.x] = a;
    parts[2 * blockIdx.x + 1] = b;
  }
}
__global__ void __launch_bounds__(kThreads) bsum_final(const double* parts, int64_t items, double* out) {
  __shared__ double sh[kThreads];
  int64_t b0, b1;
  share(items, threadIdx.x, &b0, &b1);
  double a = 0, b = 0;
  for (int64_t it = b0; it < b1; ++it) {
    a += parts[2 * it];
    b += parts[2 * it + 1];
  }
  a = block_sum(a, sh);
  b = block_sum(b, sh);
  if (threadIdx.x == 0) {
    out[0] = a;
    out[1] = b;
  }
}
template <class F>
Result run_sum(const F& f, int64_t n, double* parts, double* out, cudaStream_t st) {
  const int64_t items = n > 0 ? (n + kSumChunk - 1) / kSumChunk : 0;
  if (items > 0) {
    bsum_chunks<F><<<static_cast<unsigned>(items), kThreads, 0, st>>>(f, n, parts);
    RK_CUDA_CHECK(cudaGetLastError());
  }
  bsum_final<<<1, kThreads, 0, st>>>(parts, items, out);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}
int64_t sum_parts_len(int64_t n) { return 2 * ((n + kSumChunk - 1) / kSumChunk) + 2; }

// count and sum of the valid (non-NaN) values
struct FCountSum {
  const double* x;
  __device__ void operator()(int64_t i, double& a, double& b) const {
    const double v = x[i];
    a += v == v ? 1.0 : 0.0;
    b += v == v ? v : 0.0;
  }
};
// squared deviations from acc[1] / acc[0]
struct FSqDev {
  const double* x;
  const double* acc;
  __device__ void operator()(int64_t i, double& a, double&) const {
    a += rk::core::sq_dev(x[i], acc[1] / acc[0]);
  }
};
// gpg's count of nonzero valid values
struct FNonzero {
  const double* x;
  __device__ void operator()(int64_t i, double& a, double&) const { a += rk::core::gpg_nonzero(x[i]); }
};
struct FFlags {
  const double* z;
  __device__ void operator()(int64_t i, double& a, double&) const { a += z[i]; }
};
// REINFORCE++ whitening: weight w = valid ? (len or 1) : 0 of y = x - base
struct FWeightY {
  const double* x;
  const double* y;
  const int32_t* len;
  __device__ void operator()(int64_t i, double& a, double& b) const {
    const double w = rk::core::rpp_weight(x[i], len, i);
    a += w;
    b += rk::core::w_term(w, y[i]);
  }
};
struct FWeightSq {
  const double* x;
  const double* y;
  const int32_t* len;
  const double* acc;  // W, sum w y
  __device__ void operator()(int64_t i, double& a, double&) const {
    a += rk::core::w_sq(rk::core::rpp_weight(x[i], len, i), y[i] - rk::core::rpp_mean(acc[0], acc[1]));
  }
};

__global__ void __launch_bounds__(kThreads) adv_y(Groups G, const int32_t* ids, const double* xs, const GStat* stats,
                                                 int64_t n, double* y, const unsigned long long* slot) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  if (slot_bad(slot)) {
    y[i] = 0;
    return;
  }
  const int64_t g = G.size ? i / G.size : ids[i];
  y[i] = xs[i] - stats[g].base;
}
__global__ void __launch_bounds__(kThreads) adv_whiten_out(const double* xs, const double* y, int64_t n,
                                                          const double* acc, float* adv,
                                                          const unsigned long long* slot) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  if (slot_bad(slot)) {
    adv[i] = NAN;
    return;
  }
  const double my = rk::core::rpp_mean(acc[0], acc[1]);
  adv[i] = rk::core::rpp_out(xs[i], y[i], my, rk::core::rpp_inv_std(acc[0], acc[2]));
}

// GDPO: one thread per group z-scores each reward k and accumulates the weighted sum into comb.
__global__ void __launch_bounds__(kThreads) adv_gdpo(Groups G, const float* r, int64_t K, const double* wts,
                                                    double eps, double* comb, float* gmean, float* gstd,
                                                    double* zflag, const unsigned long long* slot) {
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (g >= G.count) return;
  const int64_t b = G.begin(g), e = G.end(g);
  if (slot_bad(slot)) {
    for (int64_t j = b; j < e; ++j) comb[G.perm ? G.perm[j] : j] = dnan();
    for (int64_t k = 0; k < K; ++k) gmean[g * K + k] = gstd[g * K + k] = NAN;
    zflag[g] = 0;
    return;
  }
  const bool flat = rk::core::gdpo_group(b, e, PermAt{G.perm}, r, K, wts, eps, comb, gmean + g * K, gstd + g * K);
  zflag[g] = flat ? 1.0 : 0.0;
}
__global__ void __launch_bounds__(kThreads) adv_zscore_out(const double* comb, int64_t n, const double* acc,
                                                          double eps, float* adv, const unsigned long long* slot) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  if (slot_bad(slot)) {
    adv[i] = NAN;
    return;
  }
  adv[i] = rk::core::zscore(comb[i], rk::core::valid_mean(acc[0], acc[1]), rk::core::unbiased_sd(acc[0], acc[2]) + eps);
}
__global__ void adv_zero_count(const double* acc, long long* out, const unsigned long long* slot) {
  if (threadIdx.x == 0) *out = slot_bad(slot) ? -1 : static_cast<long long>(acc[0]);
}

}  // namespace

Result group_advantages(const GroupAdvantagesDeviceArgs& d, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const rk::GroupAdvantagesArgs& a = d.a;
  const int64_t n = a.n, K = a.num_rewards;
  if (n < 0 || n > 0x7fffffffLL) return bad_arg("n", n);
  if (K < 1) return bad_arg("num_rewards", K);
  if (!d.advantages || !d.group_mean || !d.group_std || !d.zero_std_groups) return bad_arg("outputs", 0);
  const int est_code = static_cast<int>(a.estimator);
  if (est_code < 0 || est_code >= rk::kAdvEstimatorCount) return bad_arg("estimator", est_code);
  const int scale_code = static_cast<int>(a.scale);
  if (scale_code < 0 || scale_code >= rk::kAdvScaleCount) return bad_arg("scale", scale_code);
  const AdvEstimator est = a.estimator;
  const AdvScale scale = a.scale;
  Groups G{0, 0, nullptr, nullptr};
  if (a.group_size > 0) {
    if (n % a.group_size != 0) return bad_arg("group_size", a.group_size);
    G.size = a.group_size;
    G.count = n / a.group_size;
  } else {
    if (a.num_groups < 0 || a.num_groups > 0x7fffffffLL) return bad_arg("num_groups", a.num_groups);
    if (n > 0 && !a.group_ids) return bad_arg("group_ids", 0);
    G.count = a.num_groups;
  }
  if (n > 0 && !a.rewards) return bad_arg("rewards", 0);
  if (a.estimator == rk::AdvEstimator::Opo && !a.lengths) return bad_arg("lengths", 0);
  const bool gdpo = a.multi == rk::MultiReward::NormalizeThenSum;
  const bool bnpo = !gdpo && a.estimator == rk::AdvEstimator::Bnpo;
  const bool ids = a.group_size <= 0;
  const bool need_slot = ids || a.lengths || bnpo;
  Slot slot(d.bad_index, st);
  if (need_slot) {
    Result r = slot.init();
    if (!r.ok()) return r;
  }
  unsigned long long* sp = need_slot ? slot.p : nullptr;

  // Workspace: xs/comb (n), y (n), stats (G), zflag (G), offsets (G + 1), counts (G), perm, iota,
  // sort keys (n each), acc (8), bnpo (3), sum partials, CUB temp.
  const int64_t Gc = G.count;
  size_t cub_bytes = 0;
#if !defined(RK_CUDA_EMULATION)
  if (ids && n > 0)
    RK_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, cub_bytes, static_cast<const int32_t*>(nullptr),
                                             static_cast<int32_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                                             static_cast<int32_t*>(nullptr), static_cast<int>(n), 0, 32, st));
#endif
  const int64_t parts_len = sum_parts_len(n > Gc ? n : Gc);
  size_t bytes = 0;
  auto carve = [&](size_t sz) {
    const size_t o = bytes;
    bytes += (sz + 255) / 256 * 256;
    return o;
  };
  const size_t o_xs = carve(8 * n), o_y = carve(8 * n), o_stats = carve(sizeof(GStat) * Gc), o_z = carve(8 * Gc),
               o_off = carve(8 * (Gc + 1)), o_cnt = carve(4 * Gc), o_perm = carve(4 * n), o_iota = carve(4 * n),
               o_keys = carve(4 * n), o_acc = carve(8 * 8), o_ab = carve(8 * 3), o_parts = carve(8 * parts_len),
               o_cub = carve(cub_bytes);
  Scratch ws(st);
  {
    Result r = ws.alloc(bytes);
    if (!r.ok()) return r;
  }
  char* base = static_cast<char*>(ws.p);
  double* xs = reinterpret_cast<double*>(base + o_xs);
  double* yv = reinterpret_cast<double*>(base + o_y);
  GStat* stats = reinterpret_cast<GStat*>(base + o_stats);
  double* zflag = reinterpret_cast<double*>(base + o_z);
  int64_t* offsets = reinterpret_cast<int64_t*>(base + o_off);
  int* counts = reinterpret_cast<int*>(base + o_cnt);
  int32_t* perm = reinterpret_cast<int32_t*>(base + o_perm);
  int32_t* iota = reinterpret_cast<int32_t*>(base + o_iota);
  int32_t* keys = reinterpret_cast<int32_t*>(base + o_keys);
  double* acc = reinterpret_cast<double*>(base + o_acc);
  double* ab = reinterpret_cast<double*>(base + o_ab);
  double* parts = reinterpret_cast<double*>(base + o_parts);
  void* cub_tmp = base + o_cub;
  const int nb = grid_for(n, kThreads), gb = grid_for(Gc, kThreads);

  if (ids) {
    G.offsets = offsets;
    G.perm = perm;
    if (Gc > 0) RK_CUDA_CHECK(cudaMemsetAsync(counts, 0, 4 * Gc, st));
    if (n > 0) {
      adv_hist<<<nb, kThreads, 0, st>>>(a.group_ids, n, Gc, counts, iota, sp);
      RK_CUDA_CHECK(cudaGetLastError());
    }
    adv_scan<<<1, kThreads, 0, st>>>(counts, Gc, offsets);
    RK_CUDA_CHECK(cudaGetLastError());
    if (n > 0) {
#if defined(RK_CUDA_EMULATION)
      // The emulation runs launches at once on host memory: a stable counting sort on the host.
      (void)cub_tmp;
      (void)keys;
      if (*sp == kNone) {
        std::vector<int64_t> fill(offsets, offsets + Gc);
        for (int64_t i = 0; i < n; ++i) perm[fill[a.group_ids[i]]++] = static_cast<int32_t>(i);
      } else {
        for (int64_t i = 0; i < n; ++i) perm[i] = static_cast<int32_t>(i);
      }
#else
      // Stable (radix) sort of the indices by id: each group's members in index order. A bad id
      // only moves indices around (perm stays a permutation); every later kernel sees the slot.
      RK_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(cub_tmp, cub_bytes, a.group_ids, keys, iota, perm,
                                               static_cast<int>(n), 0, 32, st));
#endif
    }
  }
  if (n > 0) {
    const bool raw = K == 1 && !a.reward_weights && !bnpo;
    adv_values<<<nb, kThreads, 0, st>>>(a.rewards, n, gdpo ? 1 : K, a.reward_weights, gdpo || raw, bnpo,
                                        a.reward_min, a.reward_max - a.reward_min, a.lengths, xs, sp);
    RK_CUDA_CHECK(cudaGetLastError());
  }
  const bool fused = rk::core::group_local(est, scale);
  EstParams P{est, scale, a.eps, n, a.lengths, a.solo_self, a.f_norm};
  auto finish_zero = [&]() -> Result {
    Result r = run_sum(FFlags{zflag}, Gc, parts, acc + 6, st);
    if (!r.ok()) return r;
    adv_zero_count<<<1, 32, 0, st>>>(acc + 6, d.zero_std_groups, sp);
    RK_CUDA_CHECK(cudaGetLastError());
    return Result{};
  };
  Result r;
  if (gdpo) {
    if (Gc > 0) {
      adv_gdpo<<<gb, kThreads, 0, st>>>(G, a.rewards, K, a.reward_weights, a.eps, xs, d.group_mean, d.group_std, zflag, sp);
      RK_CUDA_CHECK(cudaGetLastError());
    }
    if (!(r = finish_zero()).ok()) return r;
    if (!(r = run_sum(FCountSum{xs}, n, parts, acc, st)).ok()) return r;
    if (!(r = run_sum(FSqDev{xs, acc}, n, parts, acc + 2, st)).ok()) return r;
    if (n > 0) {
      adv_zscore_out<<<nb, kThreads, 0, st>>>(xs, n, acc, a.eps, d.advantages, sp);
      RK_CUDA_CHECK(cudaGetLastError());
    }
  } else {
    if (Gc > 0) {
      adv_stats<<<gb, kThreads, 0, st>>>(P, G, xs, fused, stats, d.group_mean, d.group_std, zflag, d.advantages, sp);
      RK_CUDA_CHECK(cudaGetLastError());
    }
    if (!(r = finish_zero()).ok()) return r;
    if (!fused) {
      const double* accp = nullptr;
      const double* abp = nullptr;
      if (est == AdvEstimator::Grpo || est == AdvEstimator::PassK) {  // batch scale
        if (!(r = run_sum(FCountSum{xs}, n, parts, acc, st)).ok()) return r;
        if (!(r = run_sum(FSqDev{xs, acc}, n, parts, acc + 2, st)).ok()) return r;
        accp = acc;
      }
      if (bnpo) {
        adv_bnpo<<<1, kThreads, 0, st>>>(stats, Gc, n, ab, sp);
        RK_CUDA_CHECK(cudaGetLastError());
        abp = ab;
      }
      const double* nzp = nullptr;
      if (est == AdvEstimator::Gpg) {
        if (!(r = run_sum(FNonzero{xs}, n, parts, acc + 4, st)).ok()) return r;
        nzp = acc + 4;
      }
      if (Gc > 0) {
        adv_write<<<gb, kThreads, 0, st>>>(P, G, xs, stats, accp, abp, nzp, d.advantages, sp);
        RK_CUDA_CHECK(cudaGetLastError());
      }
      if (est == AdvEstimator::ReinforcePPBaseline && n > 0) {  // whiten y = x - base
        adv_y<<<nb, kThreads, 0, st>>>(G, a.group_ids, xs, stats, n, yv, sp);
        RK_CUDA_CHECK(cudaGetLastError());
        if (!(r = run_sum(FWeightY{xs, yv, a.lengths}, n, parts, acc, st)).ok()) return r;
        if (!(r = run_sum(FWeightSq{xs, yv, a.lengths, acc}, n, parts, acc + 2, st)).ok()) return r;
        adv_whiten_out<<<nb, kThreads, 0, st>>>(xs, yv, n, acc, d.advantages, sp);
        RK_CUDA_CHECK(cudaGetLastError());
      }
    }
  }
  if (!slot.owned()) return Result{};
  unsigned long long code = kNone;
  RK_CUDA_CHECK(cudaMemcpyAsync(&code, slot.p, sizeof code, cudaMemcpyDeviceToHost, st));
  RK_CUDA_CHECK(cudaStreamSynchronize(st));
  if (code == kNone) return Result{};
  Result e;
  e.code = kBadTarget;
  const int64_t c = static_cast<int64_t>(code);
  int32_t v = 0;
  if (c < n) {
    RK_CUDA_CHECK(cudaMemcpyAsync(&v, a.group_ids + c, sizeof v, cudaMemcpyDeviceToHost, st));
    e.where = "group_ids";
    e.index = c;
  } else if (c < 2 * n) {
    RK_CUDA_CHECK(cudaMemcpyAsync(&v, a.lengths + (c - n), sizeof v, cudaMemcpyDeviceToHost, st));
    e.where = "lengths";
    e.index = c - n;
  } else {
    e.where = "bnpo group mean";
    e.index = c - 2 * n;
  }
  RK_CUDA_CHECK(cudaStreamSynchronize(st));
  e.value = v;
  return e;
}

namespace {
__global__ void __launch_bounds__(kThreads) ens_rows(const float* r, int64_t n, int64_t m, int method, double lambda,
                                                    float* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  out[i] = static_cast<float>(rk::core::ensemble_row(r + i * m, m, static_cast<rk::EnsembleMethod>(method), lambda));
}

// gae (values != null) or discounted returns (values == null): one thread per row.
__global__ void __launch_bounds__(kThreads) gae_rows(const float* values, const float* rewards, rk::TokenMask mask,
                                                    int64_t rows, int64_t cols, double gamma, double gl, float* adv,
                                                    float* ret) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (b >= rows) return;
  if (values) rk::core::gae_row(values, rewards, mask, b, cols, gamma, gl, adv, ret);
  else rk::core::discounted_row(rewards, mask, b, cols, gamma, adv);
}

struct FMaskW {
  rk::TokenMask m;
  const float* x;
  __device__ void operator()(int64_t i, double& a, double& b) const {
    const double w = rk::core::mask_weight(m, i);
    a += w;
    b += rk::core::w_term(w, x[i]);
  }
};
struct FMaskSq {
  rk::TokenMask m;
  const float* x;
  const double* acc;
  __device__ void operator()(int64_t i, double& a, double&) const {
    a += rk::core::w_sq(rk::core::mask_weight(m, i), x[i] - acc[1] / acc[0]);
  }
};
__global__ void __launch_bounds__(kThreads) mw_check(const float* w, int64_t n, unsigned long long* slot) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i < n && !(w[i] >= 0.0f && w[i] < INFINITY)) note_bad(slot, i);
}
__global__ void __launch_bounds__(kThreads) mw_out(const float* x, rk::TokenMask m, int64_t n, bool shift_mean,
                                                  bool unbiased, double eps, const double* acc, float* out,
                                                  const unsigned long long* slot) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  if (slot_bad(slot)) {
    out[i] = NAN;
    return;
  }
  const double W = acc[0];
  if (!(W > 0)) {
    out[i] = 0.0f;
    return;
  }
  const rk::core::WhitenStats ws = rk::core::whiten_stats(W, acc[1] / W, acc[2], shift_mean, unbiased, eps);
  out[i] = rk::core::whiten_value(x[i], rk::core::mask_weight(m, i), ws);
}
}  // namespace

Result ensemble_rewards(const float* rewards, int64_t n, int64_t m, rk::EnsembleMethod method, double lambda,
                        float* out, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (n < 0 || n > 0x7fffffffLL * kThreads / 2) return bad_arg("n", n);
  if (m < 1) return bad_arg("m", m);
  const int meth = static_cast<int>(method);
  if (meth < 0 || meth >= rk::kEnsembleMethodCount) return bad_arg("method", meth);
  if (n == 0) return Result{};
  if (!rewards) return bad_arg("rewards", 0);
  if (!out) return bad_arg("out", 0);
  ens_rows<<<grid_for(n, kThreads), kThreads, 0, st>>>(rewards, n, m, meth, lambda, out);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

Result gae(const float* values, const float* rewards, rk::TokenMask mask, int64_t rows, int64_t cols, double gamma,
           double lambda, float* advantages, float* returns, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (rows < 0 || rows > 0x7fffffffLL * kThreads / 2) return bad_arg("rows", rows);
  if (cols < 0) return bad_arg("cols", cols);
  if (rows == 0 || cols == 0) return Result{};
  if (!values) return bad_arg("values", 0);
  if (!rewards) return bad_arg("rewards", 0);
  if (!mask.data) return bad_arg("mask", 0);
  if (!advantages) return bad_arg("advantages", 0);
  if (!returns) return bad_arg("returns", 0);
  gae_rows<<<grid_for(rows, kThreads), kThreads, 0, st>>>(values, rewards, mask, rows, cols, gamma, gamma * lambda, advantages, returns);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

Result discounted_returns(const float* rewards, rk::TokenMask mask, int64_t rows, int64_t cols, double gamma,
                          float* out, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (rows < 0 || rows > 0x7fffffffLL * kThreads / 2) return bad_arg("rows", rows);
  if (cols < 0) return bad_arg("cols", cols);
  if (rows == 0 || cols == 0) return Result{};
  if (!rewards) return bad_arg("rewards", 0);
  if (!mask.data) return bad_arg("mask", 0);
  if (!out) return bad_arg("out", 0);
  gae_rows<<<grid_for(rows, kThreads), kThreads, 0, st>>>(nullptr, rewards, mask, rows, cols, gamma, gamma, out, nullptr);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

Result masked_whiten(const float* values, rk::TokenMask mask, int64_t n, bool shift_mean, bool unbiased, double eps,
                     float* out, unsigned long long* bad_index, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (n < 0 || n > 0x7fffffffLL * kThreads / 2) return bad_arg("n", n);
  if (n == 0) return Result{};
  if (!values) return bad_arg("values", 0);
  if (!mask.data) return bad_arg("mask", 0);
  if (!out) return bad_arg("out", 0);
  Slot slot(bad_index, st);
  if (mask.is_f32) {
    Result r = slot.init();
    if (!r.ok()) return r;
    mw_check<<<grid_for(n, kThreads), kThreads, 0, st>>>(static_cast<const float*>(mask.data), n, slot.p);
    RK_CUDA_CHECK(cudaGetLastError());
  }
  Scratch ws(st);
  {
    Result r = ws.alloc(sizeof(double) * static_cast<size_t>(sum_parts_len(n) + 4));
    if (!r.ok()) return r;
  }
  double* acc = static_cast<double*>(ws.p);
  double* parts = acc + 4;
  Result r = run_sum(FMaskW{mask, values}, n, parts, acc, st);
  if (!r.ok()) return r;
  if (!(r = run_sum(FMaskSq{mask, values, acc}, n, parts, acc + 2, st)).ok()) return r;
  mw_out<<<grid_for(n, kThreads), kThreads, 0, st>>>(values, mask, n, shift_mean, unbiased, eps, acc, out, mask.is_f32 ? slot.p : nullptr);
  RK_CUDA_CHECK(cudaGetLastError());
  return slot.finish("mask");
}

namespace {
// ---- tokenAdvantages and klRewards (native/core/token_advantages.h) -------------------------------
__global__ void __launch_bounds__(kThreads) tok_rows(rk::TokenAdvantagesArgs a, float* adv, float* ret,
                                                    const unsigned long long* slot) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (b >= a.rows) return;
  if (a.estimator == rk::TokenEstimator::ReinforcePP) rk::core::rpp_returns_row(a.rewards, a.mask, b, a.cols, a.gamma, ret);
  else rk::core::remax_row(a.rewards, a.mask, a.baselines, b, a.cols, adv, ret);
  if (slot_bad(slot))
    for (int64_t t = 0; t < a.cols; ++t) adv[b * a.cols + t] = ret[b * a.cols + t] = NAN;
}
struct FTokW {
  rk::TokenMask m;
  const float* x;
  __device__ void operator()(int64_t i, double& a, double& b) const {
    const double w = rk::core::tok_w(m, i);
    a += w;
    b += rk::core::w_term(w, x[i]);
  }
};
struct FTokSq {
  rk::TokenMask m;
  const float* x;
  const double* acc;
  __device__ void operator()(int64_t i, double& a, double&) const {
    a += rk::core::w_sq(rk::core::tok_w(m, i), x[i] - acc[1] / acc[0]);
  }
};
__global__ void __launch_bounds__(kThreads) rpp_out(const float* ret, rk::TokenMask m, int64_t n, const double* acc,
                                                   float* adv, const unsigned long long* slot) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  if (slot_bad(slot)) {
    adv[i] = NAN;
    return;
  }
  const double W = acc[0];
  if (!(W > 0)) {
    adv[i] = 0.0f;
    return;
  }
  const rk::core::WhitenStats ws = rk::core::whiten_stats(W, acc[1] / W, acc[2], true, true, rk::core::kWhitenEps);
  adv[i] = rk::core::rpp_token_out(ret[i], rk::core::tok_w(m, i), ws);
}
// Group ids: a bad id into the slot; counts per group (one thread per group, rows in order).
__global__ void __launch_bounds__(kThreads) otb_check(const int32_t* ids, int64_t rows, int64_t G,
                                                     unsigned long long* slot) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (b < rows && (ids[b] < 0 || ids[b] >= G)) note_bad(slot, b);
}
__global__ void __launch_bounds__(kThreads) otb_count(const int32_t* ids, int64_t rows, int64_t G, int* counts) {
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (g >= G) return;
  int c = 0;
  for (int64_t b = 0; b < rows; ++b) c += ids[b] == g;
  counts[g] = c;
}
__global__ void __launch_bounds__(kThreads) otb_fill(const int32_t* ids, int64_t rows, int64_t G,
                                                    const int64_t* offsets, int32_t* perm) {
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (g >= G) return;
  int64_t k = offsets[g];
  for (int64_t b = 0; b < rows; ++b)
    if (ids[b] == g) perm[k++] = static_cast<int32_t>(b);
}
// One thread per group: the shared core's otb_group with this group's scratch.
__global__ void __launch_bounds__(kThreads) otb_groups(rk::core::OtbInputs in, double eps, bool zero_tail, Groups G,
                                                      double* scratch, int64_t* members, int64_t rows, float* adv,
                                                      float* ret, const unsigned long long* slot) {
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (g >= G.count) return;
  const int64_t b = G.begin(g), e = G.end(g), T = in.cols;
  if (slot_bad(slot)) {
    for (int64_t k = b; k < e; ++k) {
      const int64_t r = G.perm ? G.perm[k] : k;
      for (int64_t t = 0; t < T; ++t) adv[r * T + t] = ret[r * T + t] = NAN;
    }
    return;
  }
  double* sc = scratch + 3 * T * g;
  rk::core::otb_group(in, eps, zero_tail, b, e, PermAt{G.perm}, sc, sc + T, sc + 2 * T, members + b, members + rows + b,
                      adv, ret);
}
__global__ void __launch_bounds__(kThreads) kl_rows(const float* scores, const float* lp, const float* ref,
                                                   rk::TokenMask m, int64_t rows, int64_t cols, int est, double beta,
                                                   float* rewards, double* row_kl, const unsigned long long* slot) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (b >= rows) return;
  row_kl[b] = rk::core::kl_rewards_row(scores, lp, ref, m, b, cols, static_cast<rk::KlRewardEstimator>(est), beta, rewards);
  if (slot_bad(slot))
    for (int64_t t = 0; t < cols; ++t) rewards[b * cols + t] = NAN;
}
__global__ void kl_mean_of(const double* row_kl, int64_t rows, double* out, const unsigned long long* slot) {
  if (threadIdx.x == 0 && blockIdx.x == 0) *out = slot_bad(slot) ? NAN : rk::core::kl_rows_mean(row_kl, rows);
}
}  // namespace

Result token_advantages(const rk::TokenAdvantagesArgs& a, float* adv, float* ret, unsigned long long* bad_index,
                        void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t B = a.rows, T = a.cols, n = B * T;
  if (B < 0 || B > 0x7fffffffLL) return bad_arg("rows", B);
  if (T < 1) return bad_arg("cols", T);
  const int est = static_cast<int>(a.estimator);
  if (est < 0 || est >= rk::kTokenEstimatorCount) return bad_arg("estimator", est);
  if (n == 0) return Result{};
  if (!a.rewards) return bad_arg("rewards", 0);
  if (!adv || !ret) return bad_arg("outputs", 0);
  const bool otb = a.estimator == rk::TokenEstimator::Otb || a.estimator == rk::TokenEstimator::TirOtb;
  if (a.estimator == rk::TokenEstimator::Remax && !a.baselines) return bad_arg("baselines", 0);
  if (otb && (!a.logprobs || !a.sum_pi_sq)) return bad_arg("logprobs", 0);
  const bool ids = otb && a.group_size <= 0;
  if (ids && (!a.group_ids || a.num_groups < 0 || a.num_groups > B)) return bad_arg("group_ids", a.num_groups);
  if (otb && !ids && B % a.group_size != 0) return bad_arg("group_size", a.group_size);
  const bool f32m = a.mask.data && a.mask.is_f32;
  Slot slot(bad_index, st);
  if (f32m || ids) {
    Result r = slot.init();
    if (!r.ok()) return r;
  }
  unsigned long long* sp = (f32m || ids) ? slot.p : nullptr;
  if (f32m) {
    mw_check<<<grid_for(n, kThreads), kThreads, 0, st>>>(static_cast<const float*>(a.mask.data), n, sp);
    RK_CUDA_CHECK(cudaGetLastError());
  }
  const char* where = "mask";
  if (!otb) {
    tok_rows<<<grid_for(B, kThreads), kThreads, 0, st>>>(a, adv, ret, sp);
    RK_CUDA_CHECK(cudaGetLastError());
    if (a.estimator == rk::TokenEstimator::ReinforcePP) {
      Scratch ws(st);
      {
        Result r = ws.alloc(sizeof(double) * static_cast<size_t>(sum_parts_len(n) + 4));
        if (!r.ok()) return r;
      }
      double* acc = static_cast<double*>(ws.p);
      double* parts = acc + 4;
      Result r = run_sum(FTokW{a.mask, ret}, n, parts, acc, st);
      if (!r.ok()) return r;
      if (!(r = run_sum(FTokSq{a.mask, ret, acc}, n, parts, acc + 2, st)).ok()) return r;
      rpp_out<<<grid_for(n, kThreads), kThreads, 0, st>>>(ret, a.mask, n, acc, adv, sp);
      RK_CUDA_CHECK(cudaGetLastError());
      return slot.finish(where);  // the scratch is freed after the stream's work (cudaFreeAsync)
    }
    return slot.finish(where);
  }
  const int64_t Gc = ids ? a.num_groups : B / a.group_size;
  size_t bytes = 0;
  auto carve = [&](size_t sz) {
    const size_t o = bytes;
    bytes += (sz + 255) / 256 * 256;
    return o;
  };
  const size_t o_sc = carve(sizeof(double) * 3 * static_cast<size_t>(T) * static_cast<size_t>(Gc)),
               o_mem = carve(sizeof(int64_t) * 2 * static_cast<size_t>(B)), o_cnt = carve(4 * (Gc + 1)),
               o_off = carve(8 * (Gc + 1)), o_perm = carve(4 * B);
  Scratch ws(st);
  {
    Result r = ws.alloc(bytes);
    if (!r.ok()) return r;
  }
  char* base = static_cast<char*>(ws.p);
  Groups G{Gc, ids ? 0 : a.group_size, nullptr, nullptr};
  if (ids) {
    int* counts = reinterpret_cast<int*>(base + o_cnt);
    int64_t* offsets = reinterpret_cast<int64_t*>(base + o_off);
    int32_t* perm = reinterpret_cast<int32_t*>(base + o_perm);
    otb_check<<<grid_for(B, kThreads), kThreads, 0, st>>>(a.group_ids, B, Gc, sp);
    RK_CUDA_CHECK(cudaGetLastError());
    otb_count<<<grid_for(Gc, kThreads), kThreads, 0, st>>>(a.group_ids, B, Gc, counts);
    RK_CUDA_CHECK(cudaGetLastError());
    adv_scan<<<1, kThreads, 0, st>>>(counts, Gc, offsets);
    RK_CUDA_CHECK(cudaGetLastError());
    otb_fill<<<grid_for(Gc, kThreads), kThreads, 0, st>>>(a.group_ids, B, Gc, offsets, perm);
    RK_CUDA_CHECK(cudaGetLastError());
    G.offsets = offsets;
    G.perm = perm;
  }
  const rk::core::OtbInputs in{a.rewards, a.mask, a.logprobs, a.sum_pi_sq, a.is_weights, T,
                               a.estimator == rk::TokenEstimator::TirOtb};
  if (Gc > 0) {
    otb_groups<<<grid_for(Gc, kThreads), kThreads, 0, st>>>(in, a.eps, a.zero_tail, G, reinterpret_cast<double*>(base + o_sc),
                                                           reinterpret_cast<int64_t*>(base + o_mem), B, adv, ret, sp);
    RK_CUDA_CHECK(cudaGetLastError());
  }
  if (!slot.owned()) return Result{};
  // which check fired: an f32 mask weight (index < n) is looked for first
  Result r = slot.finish("mask");
  if (r.code != kBadTarget || !ids) return r;
  bool id_bad = !f32m;
  if (f32m) {  // both checks shared the slot: tell them apart by the element
    float w = 0;
    RK_CUDA_CHECK(cudaMemcpy(&w, static_cast<const float*>(a.mask.data) + r.index, sizeof w, cudaMemcpyDeviceToHost));
    id_bad = r.index < B && w >= 0.0f && w < INFINITY;
  }
  if (id_bad) {
    int32_t v = 0;
    RK_CUDA_CHECK(cudaMemcpy(&v, a.group_ids + r.index, sizeof v, cudaMemcpyDeviceToHost));
    r.where = "group_ids";
    r.value = v;
  }
  return r;
}

Result kl_rewards(const float* scores, const float* logprobs, const float* ref, rk::TokenMask mask, int64_t rows,
                  int64_t cols, rk::KlRewardEstimator est, double beta, float* rewards, double* kl_mean,
                  unsigned long long* bad_index, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (rows < 0 || rows > 0x7fffffffLL) return bad_arg("rows", rows);
  if (cols < 1) return bad_arg("cols", cols);
  const int e = static_cast<int>(est);
  if (e < 0 || e >= rk::kKlRewardEstimatorCount) return bad_arg("estimator", e);
  if (!kl_mean) return bad_arg("kl_mean", 0);
  const int64_t n = rows * cols;
  if (n > 0 && (!scores || !logprobs || !ref || !rewards)) return bad_arg("arrays", 0);
  const bool f32m = mask.data && mask.is_f32;
  Slot slot(bad_index, st);
  if (f32m) {
    Result r = slot.init();
    if (!r.ok()) return r;
    if (n > 0) {
      mw_check<<<grid_for(n, kThreads), kThreads, 0, st>>>(static_cast<const float*>(mask.data), n, slot.p);
      RK_CUDA_CHECK(cudaGetLastError());
    }
  }
  const unsigned long long* sp = f32m ? slot.p : nullptr;
  Scratch ws(st);
  {
    Result r = ws.alloc(sizeof(double) * static_cast<size_t>(rows > 0 ? rows : 1));
    if (!r.ok()) return r;
  }
  double* row_kl = static_cast<double*>(ws.p);
  if (rows > 0) {
    kl_rows<<<grid_for(rows, kThreads), kThreads, 0, st>>>(scores, logprobs, ref, mask, rows, cols, e, beta, rewards, row_kl, sp);
    RK_CUDA_CHECK(cudaGetLastError());
  }
  kl_mean_of<<<1, 32, 0, st>>>(row_kl, rows, kl_mean, sp);
  RK_CUDA_CHECK(cudaGetLastError());
  return slot.finish("mask");
}

// ---- reward mixing (native/core/reward_mix.h) ----------------------------------------------------

namespace {
__global__ void __launch_bounds__(kThreads) gated_rows(const float* high, const float* low, rk::TokenMask mask,
                                                      int64_t rows, int64_t cols, double threshold, float* out) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (b >= rows) return;
  out[b] = static_cast<float>(rk::core::gated_row(high, low, mask, b, cols, threshold));
}

__global__ void __launch_bounds__(kThreads) cumsum_rows(const float* x, rk::TokenMask mask, int64_t rows,
                                                       int64_t cols, double gamma, bool adjoint, float* out) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (b >= rows) return;
  rk::core::discounted_cumsum_row(x, mask, b, cols, gamma, adjoint, out);
}

__global__ void __launch_bounds__(kThreads) mix_elems(const float* adv, const float* kl, const float* xi, int64_t k,
                                                     int64_t n, float* out) {
  const int64_t m = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (m >= n) return;
  const double wkl = rk::core::lagrangian_kl_weight(xi, k);
  out[m] = static_cast<float>(rk::core::lagrangian_mix_value(adv, kl, xi, nullptr, k, m, n, wkl));
}

// grad_xi[i]: block i, each thread a contiguous range of the n terms, then block_sum's fixed tree.
__global__ void __launch_bounds__(kThreads) mix_grad_xi(const float* adv, const float* kl, const float* xi,
                                                       const float* g, int64_t n, float* grad_xi) {
  __shared__ double sh[kThreads];
  const int64_t i = blockIdx.x;
  int64_t m0, m1;
  share(n, threadIdx.x, &m0, &m1);
  double s = 0;
  for (int64_t m = m0; m < m1; ++m) s += rk::core::lagrangian_xi_term(adv + i * n, kl, g, m);
  s = block_sum(s, sh);
  if (threadIdx.x == 0) grad_xi[i] = static_cast<float>(rk::core::mix_sigmoid_grad(xi[i]) * s);
}
}  // namespace

Result gated_rewards(const float* high, const float* low, rk::TokenMask mask, int64_t rows, int64_t cols,
                     double threshold, float* out, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (rows < 0 || rows > 0x7fffffffLL * kThreads / 2) return bad_arg("rows", rows);
  if (cols < 0) return bad_arg("cols", cols);
  if (rows == 0) return Result{};
  if (!high) return bad_arg("high", 0);
  if (cols > 0 && (!low || !mask.data)) return bad_arg(!low ? "low" : "mask", 0);
  if (!out) return bad_arg("out", 0);
  gated_rows<<<grid_for(rows, kThreads), kThreads, 0, st>>>(high, low, mask, rows, cols, threshold, out);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

Result discounted_cumsum(const float* x, rk::TokenMask mask, int64_t rows, int64_t cols, double gamma, bool adjoint,
                         float* out, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (rows < 0 || rows > 0x7fffffffLL * kThreads / 2) return bad_arg("rows", rows);
  if (cols < 0) return bad_arg("cols", cols);
  if (rows == 0 || cols == 0) return Result{};
  if (!x) return bad_arg("x", 0);
  if (!mask.data) return bad_arg("mask", 0);
  if (!out) return bad_arg("out", 0);
  cumsum_rows<<<grid_for(rows, kThreads), kThreads, 0, st>>>(x, mask, rows, cols, gamma, adjoint, out);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

Result lagrangian_mix(const float* adv, const float* kl, const float* xi, const float* grad_mixed, int64_t k,
                      int64_t n, float* out, float* grad_xi, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (k < 1 || k > 0x7fffffffLL) return bad_arg("k", k);
  if (n < 0 || n > 0x7fffffffLL * kThreads / 2) return bad_arg("n", n);
  if (!xi) return bad_arg("xi", 0);
  if ((grad_mixed == nullptr) != (grad_xi == nullptr)) return bad_arg("grad_xi", 0);
  if (n > 0 && (!adv || !kl || !out)) return bad_arg(!adv ? "adv" : !kl ? "kl" : "out", 0);
  // grad_xi first: out may be kl itself
  if (grad_xi) {
    mix_grad_xi<<<static_cast<unsigned>(k), kThreads, 0, st>>>(adv, kl, xi, grad_mixed, n, grad_xi);
    RK_CUDA_CHECK(cudaGetLastError());
  }
  if (n == 0) return Result{};
  mix_elems<<<grid_for(n, kThreads), kThreads, 0, st>>>(adv, kl, xi, k, n, out);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

}  // namespace rkcuda
