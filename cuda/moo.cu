// The multi-objective ops on a CUDA device (moo.h). Row kernels give each row (point, trajectory) a
// thread calling the core formula; every sum across rows or Gram chunks is done by one thread in index
// order, as on the CPU, and the Gram lanes use the CPU's lanes and tree: no float atomics. The
// hypervolume (a handful of points) is one thread's work, the rewards one thread each.
#include "moo.h"

#include <cuda_runtime.h>

#include "small_common.cuh"

namespace rkcuda {
namespace {

using namespace small;
static_assert(rk::core::kGramLanes == kThreads, "one Gram lane per thread");

__global__ void __launch_bounds__(kThreads) pareto_rows(const float* points, int64_t B, int64_t K, uint8_t* front) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= B) return;
  front[i] = rk::core::pareto_dominated(points, B, K, i) ? 0 : 1;
}

__global__ void pareto_count(const uint8_t* front, int64_t B, double* count) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  int64_t c = 0;
  for (int64_t i = 0; i < B; ++i) c += front[i];
  *count = static_cast<double>(c);
}

// Block (chunk, pair): lane = thread, then the fixed tree; part[chunk * pairs + pair].
__global__ void __launch_bounds__(kThreads) gram_chunks(const float* grads, int64_t K, int64_t P, int64_t pairs, double* part) {
  __shared__ double s[kThreads];
  const int64_t c = blockIdx.x, p = blockIdx.y;
  int64_t i, j;
  rk::core::gram_pair(K, p, &i, &j);
  const int64_t lo = c * rk::core::kGramChunk, hi = lo + rk::core::kGramChunk < P ? lo + rk::core::kGramChunk : P;
  const int l = threadIdx.x;
  s[l] = rk::core::gram_lane(grads + i * P, grads + j * P, lo, hi, l);
  __syncthreads();
  for (int w = kThreads / 2; w >= 1; w /= 2) {
    rk::core::gram_tree_level(s, l, w);
    __syncthreads();
  }
  if (l == 0) part[c * pairs + p] = s[0];
}

__global__ void gram_finish(const double* part, int64_t K, int64_t chunks, int64_t pairs, double* gram, const float* w,
                            double lr, double mu, float* gram_out, float* scores, float* w_out) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  for (int64_t p = 0; p < pairs; ++p) {
    double t = 0;
    for (int64_t c = 0; c < chunks; ++c) t += part[c * pairs + p];
    int64_t i, j;
    rk::core::gram_pair(K, p, &i, &j);
    gram[i * K + j] = t;
    gram[j * K + i] = t;
  }
  for (int64_t i = 0; i < K * K; ++i) gram_out[i] = static_cast<float>(gram[i]);
  rk::core::weight_update(K, gram, w, lr, mu, w_out, scores);
}

// One thread: the finite check, then the scalars (NaN and the bad index when a value is not finite).
__global__ void hv_scalars_kernel(const double* current, const double* front, int64_t M, const double* ref,
                                  const uint8_t* maximize, int64_t K, double* scalars, unsigned long long* bad) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  const int64_t b = rk::core::hv_first_bad(current, front, M, ref, K);
  if (b >= 0) {
    *bad = static_cast<unsigned long long>(b);
    for (int i = 0; i < 4; ++i) scalars[i] = NAN;
    return;
  }
  const rk::core::HvScalars r = rk::core::hv_scalars(front, M, current, ref, maximize, K);
  scalars[0] = r.meta;
  scalars[1] = r.contribution;
  scalars[2] = r.hv_with;
  scalars[3] = r.hv_without;
}

__global__ void __launch_bounds__(kThreads) hv_scale_rows(const float* rewards, int64_t n, const double* scalars, float* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  out[i] = rk::core::hv_scale(rewards[i], scalars[0]);
}

__global__ void __launch_bounds__(kThreads) gfn_rows(rk::GfnArgs a, double* r) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= a.B) return;
  double sf, sb;
  rk::core::gfn_row_sums(a.lpf, a.lpb, a.mask, i, a.T, &sf, &sb);
  r[i] = static_cast<double>(a.logz[a.z_per_row ? i : 0]) + sf - sb;
}

// The per-row gradient g -> logZ's gradient (per row, or their sum in row order).
__device__ void gfn_logz_grad(const rk::GfnArgs& a, const double* g, float* grad_logz) {
  if (a.z_per_row) {
    for (int64_t i = 0; i < a.B; ++i) grad_logz[i] = static_cast<float>(g[i]);
  } else {
    double s = 0;
    for (int64_t i = 0; i < a.B; ++i) s += g[i];
    grad_logz[0] = static_cast<float>(s);
  }
}

__global__ void tb_reduce(rk::GfnArgs a, const double* r, const float* log_reward, float* residual, double* g,
                          float* grad_logz, double* loss) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  double l = 0;
  const double inv = 1.0 / static_cast<double>(a.B);
  for (int64_t i = 0; i < a.B; ++i) {
    const double d = r[i] - static_cast<double>(log_reward[i]);
    residual[i] = static_cast<float>(d);
    l += d * d;
    g[i] = 2.0 * d * inv;
  }
  *loss = l * inv;
  gfn_logz_grad(a, g, grad_logz);
}

__global__ void op_reduce(rk::GfnArgs a, const double* r, const uint8_t* front, float* log_rhat, double* g, float* grad_logz,
                          double* scalars) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  int64_t count = 0;
  for (int64_t i = 0; i < a.B; ++i) count += front[i];
  double m = -INFINITY;
  for (int64_t i = 0; i < a.B; ++i) m = r[i] > m ? r[i] : m;
  double se = 0, tr = 0;
  const double nf = static_cast<double>(count);
  for (int64_t i = 0; i < a.B; ++i) {
    se += exp(r[i] - m);
    if (front[i]) tr += r[i];
  }
  const double lse = m + log(se);
  for (int64_t i = 0; i < a.B; ++i) {
    log_rhat[i] = static_cast<float>(r[i]);
    g[i] = exp(r[i] - lse) - (front[i] ? 1.0 / nf : 0.0);
  }
  scalars[0] = lse - tr / nf;
  scalars[1] = nf;
  gfn_logz_grad(a, g, grad_logz);
}

__global__ void __launch_bounds__(kThreads) gfn_grads(rk::GfnArgs a, const double* g, float* grad_pf, float* grad_pb) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= a.B) return;
  rk::core::gfn_row_grads(a.mask, i, a.T, g[i], grad_pf, grad_pb);
}

Result gfn_check(const rk::GfnArgs& a, const float* grad_logz, const float* grad_pf, const float* grad_pb) {
  if (a.B < 1 || a.B > 0x7fffffffLL * kThreads / 2) return bad_arg("B", a.B);
  if (a.T < 1) return bad_arg("T", a.T);
  if (!a.lpf) return bad_arg("logPF", 0);
  if (!a.lpb) return bad_arg("logPB", 0);
  if (!a.logz) return bad_arg("logZ", 0);
  if (!grad_logz) return bad_arg("grad_logz", 0);
  if (!grad_pf) return bad_arg("grad_pf", 0);
  if (!grad_pb) return bad_arg("grad_pb", 0);
  return Result{};
}

}  // namespace

Result pareto_front(const float* points, int64_t B, int64_t K, uint8_t* front, double* count, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (B < 1 || B > 0x7fffffffLL * kThreads / 2) return bad_arg("B", B);
  if (K < 1) return bad_arg("K", K);
  if (!points) return bad_arg("points", 0);
  if (!front) return bad_arg("front", 0);
  if (!count) return bad_arg("count", 0);
  pareto_rows<<<grid_for(B, kThreads), kThreads, 0, st>>>(points, B, K, front);
  RK_CUDA_CHECK(cudaGetLastError());
  pareto_count<<<1, 1, 0, st>>>(front, B, count);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

Result reward_weight_update(const float* grads, int64_t K, int64_t P, const float* w, double lr, double mu, float* gram,
                            float* scores, float* w_out, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (K < 1 || K > 64) return bad_arg("K", K);
  if (P < 1) return bad_arg("P", P);
  if (!grads) return bad_arg("grads", 0);
  if (!w) return bad_arg("weights", 0);
  if (!gram || !scores || !w_out) return bad_arg("outputs", 0);
  const int64_t pairs = K * (K + 1) / 2, chunks = (P + rk::core::kGramChunk - 1) / rk::core::kGramChunk;
  if (chunks > 0x7fffffffLL) return bad_arg("P", P);
  Scratch part(st), full(st);
  Result r = part.alloc(sizeof(double) * static_cast<size_t>(chunks * pairs));
  if (!r.ok()) return r;
  r = full.alloc(sizeof(double) * static_cast<size_t>(K * K));
  if (!r.ok()) return r;
  gram_chunks<<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(pairs)), kThreads, 0, st>>>(
      grads, K, P, pairs, static_cast<double*>(part.p));
  RK_CUDA_CHECK(cudaGetLastError());
  gram_finish<<<1, 1, 0, st>>>(static_cast<const double*>(part.p), K, chunks, pairs, static_cast<double*>(full.p), w, lr, mu,
                               gram, scores, w_out);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

Result hypervolume_meta_reward(const double* current, const double* front, int64_t M, const double* ref,
                               const uint8_t* maximize, int64_t K, const float* rewards, int64_t n, float* out,
                               double* scalars, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (K < 1 || K > rk::core::kHvMaxK) return bad_arg("K", K);
  if (M < 0 || M > 0x7fffffffLL / K) return bad_arg("M", M);
  if (n < 0 || n > 0x7fffffffLL * kThreads / 2) return bad_arg("n", n);
  if (!current) return bad_arg("current", 0);
  if (M > 0 && !front) return bad_arg("front", 0);
  if (!ref) return bad_arg("reference", 0);
  if (!scalars) return bad_arg("scalars", 0);
  if (n > 0 && (!rewards || !out)) return bad_arg(rewards ? "out" : "rewards", 0);
  Slot bad(nullptr, st);
  Result r = bad.init();
  if (!r.ok()) return r;
  hv_scalars_kernel<<<1, 1, 0, st>>>(current, front, M, ref, maximize, K, scalars, bad.p);
  RK_CUDA_CHECK(cudaGetLastError());
  if (n > 0) {
    hv_scale_rows<<<grid_for(n, kThreads), kThreads, 0, st>>>(rewards, n, scalars, out);
    RK_CUDA_CHECK(cudaGetLastError());
  }
  return bad.finish("current, front, reference");
}

Result trajectory_balance_loss(const rk::GfnArgs& a, const float* log_reward, float* residual, float* grad_logz,
                               float* grad_pf, float* grad_pb, double* loss, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  Result r = gfn_check(a, grad_logz, grad_pf, grad_pb);
  if (!r.ok()) return r;
  if (!log_reward) return bad_arg("logReward", 0);
  if (!residual || !loss) return bad_arg("outputs", 0);
  Scratch rows(st), g(st);
  r = rows.alloc(sizeof(double) * static_cast<size_t>(a.B));
  if (!r.ok()) return r;
  r = g.alloc(sizeof(double) * static_cast<size_t>(a.B));
  if (!r.ok()) return r;
  double* rp = static_cast<double*>(rows.p);
  double* gp = static_cast<double*>(g.p);
  gfn_rows<<<grid_for(a.B, kThreads), kThreads, 0, st>>>(a, rp);
  RK_CUDA_CHECK(cudaGetLastError());
  tb_reduce<<<1, 1, 0, st>>>(a, rp, log_reward, residual, gp, grad_logz, loss);
  RK_CUDA_CHECK(cudaGetLastError());
  gfn_grads<<<grid_for(a.B, kThreads), kThreads, 0, st>>>(a, gp, grad_pf, grad_pb);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

Result order_preserving_loss(const rk::GfnArgs& a, const float* objectives, int64_t K, float* log_rhat, uint8_t* front,
                             float* grad_logz, float* grad_pf, float* grad_pb, double* scalars, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  Result r = gfn_check(a, grad_logz, grad_pf, grad_pb);
  if (!r.ok()) return r;
  if (K < 1) return bad_arg("K", K);
  if (!objectives) return bad_arg("objectives", 0);
  if (!log_rhat || !front || !scalars) return bad_arg("outputs", 0);
  Scratch rows(st), g(st);
  r = rows.alloc(sizeof(double) * static_cast<size_t>(a.B));
  if (!r.ok()) return r;
  r = g.alloc(sizeof(double) * static_cast<size_t>(a.B));
  if (!r.ok()) return r;
  double* rp = static_cast<double*>(rows.p);
  double* gp = static_cast<double*>(g.p);
  gfn_rows<<<grid_for(a.B, kThreads), kThreads, 0, st>>>(a, rp);
  RK_CUDA_CHECK(cudaGetLastError());
  pareto_rows<<<grid_for(a.B, kThreads), kThreads, 0, st>>>(objectives, a.B, K, front);
  RK_CUDA_CHECK(cudaGetLastError());
  op_reduce<<<1, 1, 0, st>>>(a, rp, front, log_rhat, gp, grad_logz, scalars);
  RK_CUDA_CHECK(cudaGetLastError());
  gfn_grads<<<grid_for(a.B, kThreads), kThreads, 0, st>>>(a, gp, grad_pf, grad_pb);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

}  // namespace rkcuda
