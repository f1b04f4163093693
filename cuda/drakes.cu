// The DRAKES kernels on a CUDA device (drakes.h): one block of kThreads per row, each thread a
// contiguous share of the row (small::share), the core formulas per element, fixed trees across the
// block.
#include "drakes.h"

#include <cuda_runtime.h>

#include <cmath>

#include "row_common.cuh"
#include "small_common.cuh"

namespace rkcuda {
namespace {

using namespace small;

template <int DT>
__device__ __forceinline__ double ld(const void* p, int64_t i) {
  return static_cast<double>(Elem<DT>::load(static_cast<const char*>(p), i));
}

// Block max with the first index on ties, and a "bad" flag (any thread's); every thread gets them.
struct ArgMax {
  double m;
  long long arg;
  int bad;
};
__device__ __forceinline__ ArgMax block_argmax(ArgMax v, double* sm, long long* sa, int* sb) {
  const int t = threadIdx.x;
  __syncthreads();
  sm[t] = v.m, sa[t] = v.arg, sb[t] = v.bad;
  __syncthreads();
  for (int off = small::kThreads / 2; off > 0; off >>= 1) {
    if (t < off) {
      const double m2 = sm[t + off];
      const long long a2 = sa[t + off];
      if (a2 >= 0 && (m2 > sm[t] || (m2 == sm[t] && (sa[t] < 0 || a2 < sa[t])))) sm[t] = m2, sa[t] = a2;
      sb[t] |= sb[t + off];
    }
    __syncthreads();
  }
  const ArgMax r{sm[0], sa[0], sb[0]};
  __syncthreads();
  return r;
}

// The row's max score (pass 1), shared by the forward and the backward; false: no distribution.
template <int DT>
__device__ bool gumbel_row_max(const GumbelArgs& a, double inv_tau, int64_t r, int64_t b, int64_t e, ArgMax* out, double* sm,
                               long long* sa, int* sb) {
  const int64_t base = r * a.vocab;
  ArgMax v{-HUGE_VAL, -1, 0};
  for (int64_t j = b; j < e; ++j) {
    const double t = rk::core::gumbel_score(ld<DT>(a.logits, base + j), rk::core::gumbel_noise(a.seed, r, j), inv_tau);
    if (t != t) v.bad = 1;
    if (t > v.m) v.m = t, v.arg = j;
  }
  *out = block_argmax(v, sm, sa, sb);
  return !out->bad && out->arg >= 0 && out->m < HUGE_VAL;
}

template <int DT>
__global__ void __launch_bounds__(small::kThreads) gumbel_fwd(GumbelArgs a, double inv_tau) {
  __shared__ double sm[small::kThreads];
  __shared__ long long sa[small::kThreads];
  __shared__ int sb[small::kThreads];
  const int64_t r = blockIdx.x, V = a.vocab, base = r * V;
  int64_t b, e;
  share(V, threadIdx.x, &b, &e);
  ArgMax mx;
  float* out = a.sample + base;
  if (!gumbel_row_max<DT>(a, inv_tau, r, b, e, &mx, sm, sa, sb)) {
    for (int64_t j = b; j < e; ++j) out[j] = NAN;
    if (threadIdx.x == 0) a.index[r] = -1;
    return;
  }
  if (threadIdx.x == 0) a.index[r] = static_cast<int32_t>(mx.arg);
  if (a.hard) {
    for (int64_t j = b; j < e; ++j) out[j] = j == mx.arg ? 1.0f : 0.0f;
    return;
  }
  double s = 0;
  for (int64_t j = b; j < e; ++j) {
    const double t = rk::core::gumbel_score(ld<DT>(a.logits, base + j), rk::core::gumbel_noise(a.seed, r, j), inv_tau);
    const float x = static_cast<float>(rk::core::exp_rn(t - mx.m));
    out[j] = x;
    s += x;
  }
  const double inv_s = 1.0 / block_sum(s, sm);
  for (int64_t j = b; j < e; ++j) out[j] = static_cast<float>(out[j] * inv_s);
}

template <int DT>
__global__ void __launch_bounds__(small::kThreads) gumbel_bwd(GumbelArgs a, double inv_tau) {
  __shared__ double sm[small::kThreads];
  __shared__ long long sa[small::kThreads];
  __shared__ int sb[small::kThreads];
  const int64_t r = blockIdx.x, V = a.vocab, base = r * V;
  int64_t b, e;
  share(V, threadIdx.x, &b, &e);
  ArgMax mx;
  float* out = a.grad + base;
  const float* g = a.grad_sample + base;
  if (!gumbel_row_max<DT>(a, inv_tau, r, b, e, &mx, sm, sa, sb)) {
    for (int64_t j = b; j < e; ++j) out[j] = NAN;
    return;
  }
  double s = 0, d = 0;
  for (int64_t j = b; j < e; ++j) {
    const double t = rk::core::gumbel_score(ld<DT>(a.logits, base + j), rk::core::gumbel_noise(a.seed, r, j), inv_tau);
    const float x = static_cast<float>(rk::core::exp_rn(t - mx.m));
    out[j] = x;
    s += x;
    d += static_cast<double>(x) * g[j];
  }
  const double S = block_sum(s, sm);
  const double D = block_sum(d, sm);
  const double inv_s = 1.0 / S, mean = D * inv_s;
  for (int64_t j = b; j < e; ++j) out[j] = static_cast<float>(out[j] * inv_s * (g[j] - mean) * inv_tau);
}

// Block merge of online log-sum-exp pairs (m, s) in a fixed tree.
__device__ __forceinline__ void block_lse(double* m, double* s, double* sm, double* ss) {
  const int t = threadIdx.x;
  __syncthreads();
  sm[t] = *m, ss[t] = *s;
  __syncthreads();
  for (int off = small::kThreads / 2; off > 0; off >>= 1) {
    if (t < off) {
      const double m1 = sm[t], m2 = sm[t + off];
      const double mm = m1 > m2 ? m1 : m2;
      if (mm > -HUGE_VAL) ss[t] = (m1 > -HUGE_VAL ? ss[t] * rk::core::exp_rn(m1 - mm) : 0.0) + (m2 > -HUGE_VAL ? ss[t + off] * rk::core::exp_rn(m2 - mm) : 0.0);
      sm[t] = mm;
    }
    __syncthreads();
  }
  *m = sm[0], *s = ss[0];
  __syncthreads();
}

template <int DT>
__global__ void __launch_bounds__(small::kThreads) drakes_kl_rows(DrakesKlArgs a) {
  __shared__ double sm[small::kThreads];
  __shared__ double ss[small::kThreads];
  __shared__ int sb[small::kThreads];
  const int64_t r = blockIdx.x, V = a.vocab, base = r * V;
  int64_t b, e;
  share(V, threadIdx.x, &b, &e);
  float* g = a.grad ? a.grad + base : nullptr;
  float* go = a.grad_old ? a.grad_old + base : nullptr;
  if (a.mask && a.mask[r] == 0) {
    if (threadIdx.x == 0) a.kl[r] = 0.0f;
    for (int64_t j = b; j < e; ++j) {
      if (g) g[j] = 0.0f;
      if (go) go[j] = 0.0f;
    }
    return;
  }
  const double mc = a.move_chance_rows ? static_cast<double>(a.move_chance_rows[r]) : a.move_chance;
  double mz = -HUGE_VAL, sz = 0, mo = -HUGE_VAL, so = 0;
  int bad = 0;
  for (int64_t j = b; j < e; ++j) {
    const double z = ld<DT>(a.logits, base + j), zo = ld<DT>(a.old, base + j);
    if (z != z || zo != zo || z == HUGE_VAL || zo == HUGE_VAL) bad = 1;
    rk::core::lse_step(z, &mz, &sz);
    rk::core::lse_step(zo, &mo, &so);
  }
  block_lse(&mz, &sz, sm, ss);
  block_lse(&mo, &so, sm, ss);
  __syncthreads();
  sb[threadIdx.x] = bad;
  __syncthreads();
  for (int off = small::kThreads / 2; off > 0; off >>= 1) {
    if (threadIdx.x < off) sb[threadIdx.x] |= sb[threadIdx.x + off];
    __syncthreads();
  }
  bad = sb[0];
  if (bad || !(sz > 0) || !(so > 0)) {
    if (threadIdx.x == 0) a.kl[r] = NAN;
    for (int64_t j = b; j < e; ++j) {
      if (g) g[j] = NAN;
      if (go) go[j] = NAN;
    }
    return;
  }
  const double lse = mz + log(sz), lseo = mo + log(so);
  double k = 0;
  for (int64_t j = b; j < e; ++j) {
    const double lp = ld<DT>(a.logits, base + j) - lse, lq = ld<DT>(a.old, base + j) - lseo;
    k += rk::core::gkl_term(rk::core::exp_rn(lp), lp, lq);
  }
  const double K = block_sum(k, sm);
  if (threadIdx.x == 0) a.kl[r] = static_cast<float>(K / mc);
  if (!g && !go) return;
  const double c = (a.grad_rows ? static_cast<double>(a.grad_rows[r]) : a.grad_scale) / mc;
  for (int64_t j = b; j < e; ++j) {
    const double lp = ld<DT>(a.logits, base + j) - lse, lq = ld<DT>(a.old, base + j) - lseo;
    const double p = rk::core::exp_rn(lp);
    if (g) g[j] = static_cast<float>(rk::core::gkl_grad_new(c, p, lp, lq, K));
    if (go) go[j] = static_cast<float>(rk::core::gkl_grad_old(c, p, rk::core::exp_rn(lq)));
  }
}

// One launch per line (scripts/cuda-emu-check.sh rewrites the launch syntax line by line).
template <int DT>
void fwd_at(unsigned grid, cudaStream_t st, const GumbelArgs& a, double inv_tau) {
  gumbel_fwd<DT><<<grid, small::kThreads, 0, st>>>(a, inv_tau);
}
template <int DT>
void bwd_at(unsigned grid, cudaStream_t st, const GumbelArgs& a, double inv_tau) {
  gumbel_bwd<DT><<<grid, small::kThreads, 0, st>>>(a, inv_tau);
}
template <int DT>
void kl_at(unsigned grid, cudaStream_t st, const DrakesKlArgs& a) {
  drakes_kl_rows<DT><<<grid, small::kThreads, 0, st>>>(a);
}
void launch_fwd(int dt, unsigned grid, cudaStream_t st, const GumbelArgs& a, double inv_tau) {
  if (dt == kF32) fwd_at<kF32>(grid, st, a, inv_tau);
  if (dt == kBF16) fwd_at<kBF16>(grid, st, a, inv_tau);
  if (dt == kF16) fwd_at<kF16>(grid, st, a, inv_tau);
}
void launch_bwd(int dt, unsigned grid, cudaStream_t st, const GumbelArgs& a, double inv_tau) {
  if (dt == kF32) bwd_at<kF32>(grid, st, a, inv_tau);
  if (dt == kBF16) bwd_at<kBF16>(grid, st, a, inv_tau);
  if (dt == kF16) bwd_at<kF16>(grid, st, a, inv_tau);
}
void launch_kl(int dt, unsigned grid, cudaStream_t st, const DrakesKlArgs& a) {
  if (dt == kF32) kl_at<kF32>(grid, st, a);
  if (dt == kBF16) kl_at<kBF16>(grid, st, a);
  if (dt == kF16) kl_at<kF16>(grid, st, a);
}

Result check_common(int64_t rows, int64_t vocab, int dtype, const void* logits) {
  if (rows < 0 || rows > 0x7fffffffLL) return bad_arg("rows", rows);
  if (vocab < 1) return bad_arg("vocab", vocab);
  if (dtype != kF32 && dtype != kBF16 && dtype != kF16) return bad_arg("dtype", dtype);
  if (rows > 0 && !logits) return bad_arg("logits", 0);
  return Result{};
}

// Both Gumbel entry points: the common checks, the two arrays the direction needs (named for the
// error), then one block per row through `launch`.
using GumbelLaunch = void (*)(int, unsigned, cudaStream_t, const GumbelArgs&, double);

Result gumbel_launch(const GumbelArgs& a, const void* in, const char* in_name, const void* out, const char* out_name,
                     void* stream, GumbelLaunch launch) {
  Result r = check_common(a.rows, a.vocab, a.dtype, a.logits);
  if (!r.ok()) return r;
  if (!(a.temperature > 0)) return bad_arg("temperature", 0);
  if (a.rows == 0) return Result{};
  if (!in) return bad_arg(in_name, 0);
  if (!out) return bad_arg(out_name, 0);
  launch(a.dtype, static_cast<unsigned>(a.rows), static_cast<cudaStream_t>(stream), a, 1.0 / a.temperature);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

}  // namespace

Result gumbel_softmax_forward(const GumbelArgs& a, void* stream) {
  return gumbel_launch(a, a.sample, "sample", a.index, "index", stream, launch_fwd);
}

Result gumbel_softmax_backward(const GumbelArgs& a, void* stream) {
  return gumbel_launch(a, a.grad_sample, "grad_sample", a.grad, "grad", stream, launch_bwd);
}

Result drakes_kl(const DrakesKlArgs& a, void* stream) {
  Result r = check_common(a.rows, a.vocab, a.dtype, a.logits);
  if (!r.ok()) return r;
  if (a.rows == 0) return Result{};
  if (!a.old) return bad_arg("old", 0);
  if (!a.kl) return bad_arg("kl", 0);
  if (!(a.move_chance > 0)) return bad_arg("move_chance", 0);
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const unsigned grid = static_cast<unsigned>(a.rows);
  launch_kl(a.dtype, grid, st, a);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

}  // namespace rkcuda
