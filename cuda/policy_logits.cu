// policyLossFromLogits on CUDA (contracts and passes in policy_logits.h; the CPU twin is
// native/kernels/policy_logits.cc).
//
// One block of kThreads threads per row r (grid N), in three modes:
//   kFused  (every variant but GSPO) statistics -> logp, H -> g, h -> gradient row
//   kStats  (GSPO pass 1)            statistics -> logp, H and the row's (m, log2 s, H)
//   kGrad   (GSPO pass 3)            g, h from policy_loss, (m, log2 s, H) -> gradient row
// Statistics: logprobs_stats.cuh's accumulator over the row, reduced by block_reduce; where the
// log-prob kernels split a row over S blocks (logprobs_row_splits(N, V) > 1) the block walks the same
// S ranges, reduces each like one of those blocks and merges the partials in split order, as
// logprobs.cu's merge_kernel does: logp and H are token_logprobs_forward's bits. The row finish is
// native/core/logits.h's (lp_logp, lp_entropy, lp_grad_row), in double, by thread 0.
// Token: cuda/policy_token.cuh with the row factors of policy_row_factors (policy.cu's own passes).
// Gradient: per element u = (z - m) a - log2 s, grad = 2^u (k0 + k1 u), the target's element
// 2^u_y (k0 + k1 u_y) + g / tau (rounded once more, as logprobs.cu's grad_kernel adds it), stored as
// f32 or bf16 (nearest even, native/kernels/half.h's f32_to_bf16). Each element is read and written
// by the same thread, so the gradient may be the logits themselves (same dtype); the target's
// logit is read before any store.
// Memory: the statistics loads are ordinary (the row stays in L2 for the gradient pass when the
// rows in flight fit), the gradient pass's loads and stores are evict-first (__ldcs / __stcs) and
// walk the row from its end (read last by the statistics pass, so the most likely still cached).
#include "policy_logits.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "host_common.cuh"
#include "logprobs_stats.cuh"
#include "policy.h"
#include "policy_token.cuh"
#include "row_common.cuh"
#include "small_common.cuh"

namespace rkcuda {
namespace {

constexpr int kFused = 0, kStats = 1, kGrad = 2;
constexpr unsigned long long kNoneSlot = ~0ull;

// A row's statistics between GSPO's passes: c = m, b = log2 s (as lp_grad_row takes them), H.
struct RowStat {
  float c, b;
  double H;
};

struct FusedArgs {
  const char* logits;
  int64_t v;
  const int32_t* targets;
  int32_t ignore;
  float a;          // log2(e) / tau in f32 (the accumulators' scale)
  double inv_tau;
  int splits;       // the log-prob kernels' row split, walked in order by the block
  int64_t chunk;
  // the policy side (kFused)
  pol::TokenParams P;
  const void* mask;
  const float* old;
  const float* adv;
  const float* ref;
  const float* tw;
  int64_t T;
  const double* row_log_s;
  const double* row_f;
  const unsigned long long* mask_bad;  // a bad f32 weight was seen: NaN gradients (as policy_loss)
  // kGrad's inputs
  const float* g;
  const float* h;
  const RowStat* stats_in;
  // outputs
  float* logp;
  float* ent;
  void* grad;
  RowStat* stats_out;
  unsigned long long* bad_row;
};

// native/kernels/half.h's f32_to_bf16: nearest even; a NaN gives a quiet NaN with its sign.
__device__ __forceinline__ unsigned short to_bf16(float f) {
  const unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<unsigned short>((u >> 16) | 0x0040u);
  return static_cast<unsigned short>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// a + b rounded once (never fused with the product that gave a).
__device__ __forceinline__ float add_rn(float a, float b) {
#if defined(RK_CUDA_EMULATION)
  return a + b;
#else
  return __fadd_rn(a, b);
#endif
}

template <bool BF>
struct Out;
template <>
struct Out<false> {  // f32 gradient
  static constexpr int kSize = 4;
  static __device__ __forceinline__ void put(char* p, int64_t i, float x) { reinterpret_cast<float*>(p)[i] = x; }
  // VW values from element k * VW of a 16-byte-aligned run.
  template <int VW>
  static __device__ __forceinline__ void put_vec(char* p, int64_t k, const float* x) {
    float4* q = reinterpret_cast<float4*>(p) + k * (VW / 4);
#pragma unroll
    for (int j = 0; j < VW; j += 4) __stcs(q + j / 4, make_float4(x[j], x[j + 1], x[j + 2], x[j + 3]));
  }
};
template <>
struct Out<true> {  // bf16 gradient
  static constexpr int kSize = 2;
  static __device__ __forceinline__ void put(char* p, int64_t i, float x) {
    reinterpret_cast<unsigned short*>(p)[i] = to_bf16(x);
  }
  static __device__ __forceinline__ unsigned pack(float lo, float hi) {
    return static_cast<unsigned>(to_bf16(lo)) | (static_cast<unsigned>(to_bf16(hi)) << 16);
  }
  template <int VW>
  static __device__ __forceinline__ void put_vec(char* p, int64_t k, const float* x) {
    if (VW == 8) {
      uint4 w;
      w.x = pack(x[0], x[1]);
      w.y = pack(x[2], x[3]);
      w.z = pack(x[4], x[5]);
      w.w = pack(x[6], x[7]);
      __stcs(reinterpret_cast<uint4*>(p) + k, w);
    } else {
      uint2 w;
      w.x = pack(x[0], x[1]);
      w.y = pack(x[2], x[3]);
      __stcs(reinterpret_cast<uint2*>(p) + k, w);
    }
  }
};

// Fills row r of the gradient with x (0, or NaN for a bad target).
template <bool BF>
__device__ void fill_row(void* grad, int64_t r, int64_t v, float x) {
  char* dst = static_cast<char*>(grad) + r * v * Out<BF>::kSize;
  for (int64_t i = threadIdx.x; i < v; i += kThreads) Out<BF>::put(dst, i, x);
}

// The row's statistics into every thread's A (the split walk of the log-prob kernels when splits > 1).
template <int DT, bool WT>
__device__ __forceinline__ Acc row_stats(const char* row, const FusedArgs& x, Acc* sh) {
  Acc A = acc_identity();
  if (x.splits == 1) {
    range_stats<DT, WT, false>(row, 0, x.v, x.a, A);
    return block_reduce<WT>(A, x.a, sh);
  }
  Acc R = acc_identity();
  int s = 0;
  for (int64_t lo = 0; lo < x.v; lo += x.chunk, ++s) {
    const int64_t hi = lo + x.chunk < x.v ? lo + x.chunk : x.v;
    Acc B = acc_identity();
    range_stats<DT, WT, false>(row, lo, hi, x.a, B);
    B = block_reduce<WT>(B, x.a, sh);
    __syncthreads();  // sh is reused by the next range's reduction
    R = s == 0 ? B : acc_merge<WT>(R, B, x.a);
  }
  return R;
}

// Writes the gradient row from the row coefficients q; the target's element last (from zy).
template <int DT, bool BF>
__device__ __forceinline__ void grad_row(const char* src, char* dst, int64_t v, int64_t y, float zy, float a,
                                         const rk::core::LpGradRow& q) {
  using E = Elem<DT>;
  using O = Out<BF>;
  constexpr int ES = E::kSize, VW = E::kVec, OS = O::kSize;
  constexpr uintptr_t kOutAlign = VW * OS < 16 ? VW * OS : 16;
  const float fc = q.c, fb = q.b, k0 = q.k0, k1 = q.k1;
  auto f = [&](float z) {
    float u = fmaf(z - fc, a, -fb);
    u = u < -150.0f ? -150.0f : u;
    return ex2(u) * fmaf(k1, u, k0);
  };
  const int64_t head = head_elems<ES>(src, v);
  const int64_t nvec = (v - head) / VW;
  const bool vec_ok = (reinterpret_cast<uintptr_t>(dst + head * OS) & (kOutAlign - 1)) == 0;
  const int64_t scalar_end = vec_ok ? head : v;
  for (int64_t i = threadIdx.x; i < scalar_end; i += kThreads) O::put(dst, i, f(E::load(src, i)));
  if (vec_ok) {
    const uint4* vp = reinterpret_cast<const uint4*>(src + head * ES);
    char* op = dst + head * OS;
    auto put = [&](int64_t k, const uint4& w) {
      float z[VW];
      E::unpack(w, z);
#pragma unroll
      for (int j = 0; j < VW; ++j) z[j] = f(z[j]);
      O::template put_vec<VW>(op, k, z);
    };
    // Two loads in flight per thread; in place, the second load is of other elements than the first
    // store. The vectors are walked from the row's end: the statistics pass read the end last, so
    // it is the part most likely still in L2.
    int64_t k = threadIdx.x;
    for (; k + kThreads < nvec; k += 2 * kThreads) {
      const int64_t k0 = nvec - 1 - k, k1 = k0 - kThreads;
      const uint4 w0 = __ldcs(vp + k0), w1 = __ldcs(vp + k1);
      put(k0, w0);
      put(k1, w1);
    }
    if (k < nvec) put(nvec - 1 - k, __ldcs(vp + (nvec - 1 - k)));
    for (int64_t i = head + nvec * VW + threadIdx.x; i < v; i += kThreads) O::put(dst, i, f(E::load(src, i)));
  }
  __syncthreads();  // the target's element may have been written by another thread of this block
  if (threadIdx.x == 0) O::put(dst, y, add_rn(f(zy), q.gy));
}

template <int DT, bool WT, bool BF, int MODE>
__global__ void __launch_bounds__(kThreads) fused_kernel(FusedArgs x) {
  __shared__ Acc sh[kWarps];
  __shared__ rk::core::LpGradRow sq;
  __shared__ float szy;
  const int64_t r = blockIdx.x, v = x.v;
  const int32_t y = x.targets[r];
  const bool bad = y != x.ignore && (y < 0 || static_cast<int64_t>(y) >= v);
  const float m = pol::mask_at(x.mask, x.P.mask_kind, r);
  if (bad || y == x.ignore || m == 0.0f) {  // not read (as the CPU kernel's skipped rows)
    const float fill = bad ? NAN : 0.0f;
    if (MODE != kGrad && threadIdx.x == 0) {
      x.logp[r] = fill;
      if (WT) x.ent[r] = fill;
    }
    if (bad && threadIdx.x == 0) atomicMin(x.bad_row, static_cast<unsigned long long>(r));
    if (MODE != kStats) fill_row<BF>(x.grad, r, v, fill);
    return;
  }
  const char* row = x.logits + r * v * Elem<DT>::kSize;
  char* out = static_cast<char*>(x.grad) + r * v * Out<BF>::kSize;
  if (MODE == kGrad) {
    if (threadIdx.x == 0) {
      const RowStat s = x.stats_in[r];
      sq = rk::core::lp_grad_row(x.g[r], x.h ? x.h[r] : 0.0f, s.H, s.c, s.b, x.inv_tau);
      szy = Elem<DT>::load(row, y);
    }
    __syncthreads();
    grad_row<DT, BF>(row, out, v, y, szy, x.a, sq);
    return;
  }
  // The target's logit, loaded before the stream so its latency hides behind it.
  const float zy = threadIdx.x == 0 ? Elem<DT>::load(row, y) : 0.0f;
  const Acc A = row_stats<DT, WT>(row, x, sh);
  if (threadIdx.x == 0) {
    const double log_s = log(static_cast<double>(A.s));
    const double H = WT ? rk::core::lp_entropy(log_s, A.t, A.s) : 0.0;
    const float lp = static_cast<float>(rk::core::lp_logp(zy, A.m, x.inv_tau, log_s));
    const float hf = static_cast<float>(H);
    x.logp[r] = lp;
    if (WT) x.ent[r] = hf;
    const double b = log_s * kLog2ed;
    if (MODE == kStats) {
      x.stats_out[r] = RowStat{A.m, static_cast<float>(b), H};
    } else {
      const int64_t row_b = r / x.T;
      float gr, gdr;
      rk::core::gspo_row_ratio(x.row_log_s[row_b], &gr, &gdr);
      const float wf = static_cast<float>(x.row_f[row_b]);
      const float adv_row = x.P.per_token ? 0.0f : x.adv[row_b];
      const rk::core::PolicyToken t = pol::token_terms(x.P, x.adv, x.ref, x.tw, r, lp, lp - x.old[r], hf, adv_row, gr, gdr);
      float g = pol::token_grad(m, wf, t);
      float h = x.P.has_ent ? pol::token_grad_entropy(x.P, m, wf) : 0.0f;
      if (x.mask_bad && *x.mask_bad != kNoneSlot) g = h = NAN;
      sq = rk::core::lp_grad_row(g, h, H, A.m, b, x.inv_tau);
      szy = zy;
    }
  }
  if (MODE == kStats) return;
  __syncthreads();
  grad_row<DT, BF>(row, out, v, y, szy, x.a, sq);
}

using common::bad_arg;
using common::Scratch;

template <int MODE, int DT, bool WT>
void launch_t(const FusedArgs& x, bool bf, int64_t n, cudaStream_t st) {
  const dim3 grid(static_cast<unsigned>(n));
  if (bf) {
    fused_kernel<DT, WT, true, MODE><<<grid, kThreads, 0, st>>>(x);
  } else {
    fused_kernel<DT, WT, false, MODE><<<grid, kThreads, 0, st>>>(x);
  }
}

template <int MODE>
Result launch(const FusedArgs& x, int dtype, bool wt, bool bf, int64_t n, cudaStream_t st) {
  switch (dtype) {
    case kBF16:
      wt ? launch_t<MODE, kBF16, true>(x, bf, n, st) : launch_t<MODE, kBF16, false>(x, bf, n, st);
      break;
    case kF16:
      wt ? launch_t<MODE, kF16, true>(x, bf, n, st) : launch_t<MODE, kF16, false>(x, bf, n, st);
      break;
    default:
      wt ? launch_t<MODE, kF32, true>(x, bf, n, st) : launch_t<MODE, kF32, false>(x, bf, n, st);
  }
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

}  // namespace

Result policy_loss_from_logits(const rk::PolicyFromLogitsArgs& a, const rk::PolicyLossParams& p, double* metrics,
                               void* stream, unsigned long long* bad_row, unsigned long long* bad_index) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const rk::PolicyLossInputs& pin = a.policy;
  const int dtype = static_cast<int>(a.logits.dtype);
  const int64_t n = a.logits.rows, v = a.logits.vocab, B = pin.batch, T = pin.seq_len;
  if (dtype != kF32 && dtype != kBF16 && dtype != kF16) return bad_arg("dtype", dtype);
  if (v <= 0) return bad_arg("vocab", v);
  if (T <= 0) return bad_arg("seq_len", T);
  if (n < 0 || n > 0x7fffffffLL || B < 0 || B * T != n) return bad_arg("rows", n);
  if (!(a.temperature > 0.0f) || !std::isfinite(a.temperature)) return bad_arg("temperature", 0);
  const bool bf = a.grad_dtype == rk::DType::BF16;
  if (!bf && a.grad_dtype != rk::DType::F32) return bad_arg("grad_dtype", static_cast<int64_t>(a.grad_dtype));
  if (!metrics) return bad_arg("metrics", 0);
  const int mk = static_cast<int>(pin.mask_kind);
  if (mk < 0 || mk >= rk::kMaskKindCount) return bad_arg("mask_kind", mk);
  if (n == 0) {  // policy_loss' empty batch: zero metrics
    rkcuda::PolicyLossArgs pa;
    pa.in = pin;
    pa.params = p;
    pa.metrics = metrics;
    return policy_loss(pa, stream);
  }
  if (!a.logits.data) return bad_arg("logits", 0);
  if (!a.targets) return bad_arg("targets", 0);
  if (!a.grad) return bad_arg("grad", 0);
  if (!a.logprobs) return bad_arg("logprobs", 0);
  if (a.want_entropy && !a.entropy) return bad_arg("entropy", 0);
  if (!pin.old_logprobs) return bad_arg("old_logprobs", 0);
  if (!pin.advantages) return bad_arg("advantages", 0);
  if (mk != 0 && !pin.mask) return bad_arg("mask", 0);
  const uintptr_t es = dtype == kF32 ? 4 : 2, gs = bf ? 2 : 4;
  if (reinterpret_cast<uintptr_t>(a.logits.data) % es) return bad_arg("logits (misaligned)", 0);
  if (reinterpret_cast<uintptr_t>(a.grad) % gs) return bad_arg("grad (misaligned)", 0);
  if (reinterpret_cast<uintptr_t>(a.targets) % 4) return bad_arg("targets (misaligned)", 0);
  {  // grad may be the logits themselves (same element size), but may not partly overlap them
    const uintptr_t l0 = reinterpret_cast<uintptr_t>(a.logits.data), l1 = l0 + static_cast<uintptr_t>(n * v) * es;
    const uintptr_t g0 = reinterpret_cast<uintptr_t>(a.grad), g1 = g0 + static_cast<uintptr_t>(n * v) * gs;
    const bool same = g0 == l0 && ((dtype == kF32 && !bf) || (dtype == kBF16 && bf));
    if (g0 < l1 && l0 < g1 && !same) return bad_arg("grad (overlaps logits)", 0);
  }
  const bool gspo = p.variant == rk::PolicyVariant::Gspo;
  small::Slot tslot(bad_row, st), mslot(bad_index, st);
  Result res = tslot.init();
  if (!res.ok()) return res;
  if (mk == 2) {
    res = mslot.init();
    if (!res.ok()) return res;
  }
  unsigned long long* msp = mk == 2 ? mslot.p : nullptr;

  // Scratch: policy_loss' gradients (N + N floats), the row factors (2B doubles) or GSPO's row stats (N).
  Scratch ws(st);
  const size_t fl = static_cast<size_t>(2 * n) * sizeof(float);
  const size_t extra = gspo ? static_cast<size_t>(n) * sizeof(RowStat) : static_cast<size_t>(2 * B) * sizeof(double);
  res = ws.alloc(((fl + 15) / 16) * 16 + extra);
  if (!res.ok()) return res;
  float* g_lp = static_cast<float*>(ws.p);
  float* g_h = g_lp + n;
  char* tail = static_cast<char*>(ws.p) + ((fl + 15) / 16) * 16;

  FusedArgs x{};
  x.logits = static_cast<const char*>(a.logits.data);
  x.v = v;
  x.targets = a.targets;
  x.ignore = a.ignore_index;
  x.a = static_cast<float>(kLog2ed / a.temperature);
  x.inv_tau = 1.0 / a.temperature;
  x.splits = logprobs_row_splits(n, v);
  x.chunk = x.splits == 1 ? v : split_chunk(v, x.splits);
  x.P.variant = p.variant;
  x.P.kl = p.kl;
  x.P.mask_kind = mk;
  x.P.per_token = pin.advantages_per_token;
  x.P.has_ref = pin.ref_logprobs != nullptr;
  x.P.has_ent = a.want_entropy;
  x.P.has_w = pin.token_weights != nullptr;
  x.P.tok = rk::core::policy_token_params(p);
  x.mask = pin.mask;
  x.old = pin.old_logprobs;
  x.adv = pin.advantages;
  x.ref = pin.ref_logprobs;
  x.tw = pin.token_weights;
  x.T = T;
  x.mask_bad = msp;
  x.logp = a.logprobs;
  x.ent = a.want_entropy ? a.entropy : nullptr;
  x.grad = a.grad;
  x.bad_row = tslot.p;

  // policy_loss on the log-probs (and entropies) this call writes.
  rkcuda::PolicyLossArgs pa;
  pa.in = pin;
  pa.in.logprobs = a.logprobs;
  pa.in.entropy = a.want_entropy ? a.entropy : nullptr;
  pa.params = p;
  pa.grad_logprobs = g_lp;
  pa.grad_entropy = a.want_entropy ? g_h : nullptr;
  pa.metrics = metrics;
  pa.bad_index = msp;

  if (!gspo) {
    double* row_log_s = reinterpret_cast<double*>(tail);
    double* row_f = row_log_s + B;
    rk::PolicyLossInputs in = pin;
    in.logprobs = nullptr;
    in.entropy = nullptr;
    res = policy_row_factors(in, p, row_log_s, row_f, msp, stream);
    if (!res.ok()) return res;
    x.row_log_s = row_log_s;
    x.row_f = row_f;
    res = launch<kFused>(x, dtype, a.want_entropy, bf, n, st);
    if (!res.ok()) return res;
    res = policy_loss(pa, stream);
    if (!res.ok()) return res;
  } else {
    RowStat* stats = reinterpret_cast<RowStat*>(tail);
    x.stats_out = stats;
    res = launch<kStats>(x, dtype, a.want_entropy, bf, n, st);
    if (!res.ok()) return res;
    res = policy_loss(pa, stream);
    if (!res.ok()) return res;
    x.stats_in = stats;
    x.g = g_lp;
    x.h = a.want_entropy ? g_h : nullptr;
    res = launch<kGrad>(x, dtype, a.want_entropy, bf, n, st);
    if (!res.ok()) return res;
  }
  res = tslot.finish("targets", a.targets);
  if (!res.ok()) return res;
  return mslot.finish("mask");
}

}  // namespace rkcuda
