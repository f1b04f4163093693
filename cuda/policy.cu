// Policy-gradient losses and KL estimators on CUDA (contracts in policy.h; the CPU twins are
// native/kernels/policy.cc and policy_simd.inl). The per-token loss, gradient and KL estimate are
// the shared core functions of native/core/policy.h, with exp2f as 2^t.
//
// Work split (depends on B and T only): items = (row, chunk of kChunk tokens), one block of
// kThreads threads per item.
//   pass1  per item: sum m (validating f32 weights into the bad slot) and GSPO's sum m d, in double
//   rows   one block: per row, chunk sums in order -> M_i, log s_i; total M; the row factors f_i
//   pass2  per item: per-token loss and gradient (f32), 7 partial sums in double
//   final  one block: per row, chunk partials in order; rows in contiguous per-thread runs, then a
//          fixed tree over the block -> the 9 metrics
// Every reduction has a fixed order, so the same inputs give the same bits on every run.
#include "policy.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "policy_token.cuh"
#include "small_common.cuh"

namespace rkcuda {
namespace {

using namespace small;

constexpr int64_t kChunk = 1024;  // tokens per block

using pol::bad_weight;
using pol::Exp2Dev;
using pol::mask_at;
using Pass2Params = pol::TokenParams;

__global__ void __launch_bounds__(kThreads) pol_pass1(const float* lp, const float* old, const void* mask,
                                                     int mask_kind, int64_t T, int64_t nck, bool gspo,
                                                     double* p1, unsigned long long* slot) {
  __shared__ double sh[kThreads];
  const int64_t item = blockIdx.x;
  const int64_t r = item / nck, c = item % nck;
  const int64_t t0 = r * T + c * kChunk;
  const int64_t t1 = r * T + ((c + 1) * kChunk < T ? (c + 1) * kChunk : T);
  double ms = 0, md = 0;
  for (int64_t i = t0 + threadIdx.x; i < t1; i += kThreads) {
    const float m = mask_at(mask, mask_kind, i);
    if (mask_kind == 2 && bad_weight(m)) {
      note_bad(slot, i);
      continue;
    }
    ms += m;
    if (gspo && m > 0.0f) md += static_cast<double>(m) * (static_cast<double>(lp[i]) - old[i]);
  }
  ms = block_sum(ms, sh);
  md = block_sum(md, sh);
  if (threadIdx.x == 0) {
    p1[2 * item] = ms;
    p1[2 * item + 1] = md;
  }
}

// ws: rowm[B], rowls[B], rowf[B], total[1].
__global__ void __launch_bounds__(kThreads) pol_rows(const double* p1, int64_t B, int64_t T, int64_t nck,
                                                    int aggregation, double normalizer, double* rowm,
                                                    double* rowls, double* rowf, double* total) {
  __shared__ double sh[kThreads];
  int64_t b0, b1;
  share(B, threadIdx.x, &b0, &b1);
  double tot = 0;
  for (int64_t r = b0; r < b1; ++r) {
    double m = 0, md = 0;
    for (int64_t c = 0; c < nck; ++c) {
      m += p1[2 * (r * nck + c)];
      md += p1[2 * (r * nck + c) + 1];
    }
    rowm[r] = m;
    rowls[r] = m > 0 ? md / m : 0.0;
    tot += m;
  }
  const double total_m = block_sum(tot, sh);
  for (int64_t r = b0; r < b1; ++r)
    rowf[r] = rk::core::policy_row_factor(static_cast<rk::LossAggregation>(aggregation), normalizer, rowm[r],
                                          total_m, B, T);
  if (threadIdx.x == 0) *total = total_m;
}

__global__ void __launch_bounds__(kThreads) pol_pass2(const float* lp, const float* old, const float* adv,
                                                     const void* mask, const float* ref, const float* ent,
                                                     const float* tw, int64_t T, int64_t nck, Pass2Params P,
                                                     const double* rowls, const double* rowf,
                                                     float* grad, float* grad_ent, double* p2,
                                                     const unsigned long long* slot) {
  __shared__ double sh[kThreads];
  const int64_t item = blockIdx.x;
  const int64_t r = item / nck, c = item % nck;
  const int64_t t0 = r * T + c * kChunk;
  const int64_t t1 = r * T + ((c + 1) * kChunk < T ? (c + 1) * kChunk : T);
  const bool bad = slot && *slot != kNone;
  double s[7] = {0, 0, 0, 0, 0, 0, 0};
  if (bad) {
    for (int64_t i = t0 + threadIdx.x; i < t1; i += kThreads) {
      grad[i] = NAN;
      if (grad_ent) grad_ent[i] = NAN;
    }
    for (int k = 0; k < 7; ++k) s[k] = NAN;
  } else {
    float gr, gdr;
    rk::core::gspo_row_ratio(rowls[r], &gr, &gdr);
    const float wf = static_cast<float>(rowf[r]);
    const float adv_row = P.per_token ? 0.0f : adv[r];
    const bool clips = P.variant == rk::PolicyVariant::Ppo || P.variant == rk::PolicyVariant::Gspo;
    for (int64_t i = t0 + threadIdx.x; i < t1; i += kThreads) {
      const float m = mask_at(mask, P.mask_kind, i);
      const bool valid = m > 0.0f;
      const float l = lp[i];
      const float d = l - old[i];
      const rk::core::PolicyToken t =
          pol::token_terms(P, adv, ref, tw, i, l, d, P.has_ent ? ent[i] : 0.0f, adv_row, gr, gdr);
      if (clips) {
        if (P.tok.dual_on) s[3] += (t.dual && valid) ? static_cast<double>(m) : 0.0;
        s[1] += (t.clip_low && valid) ? static_cast<double>(m) : 0.0;
      }
      if (clips || P.variant == rk::PolicyVariant::Cispo) s[2] += (t.clip_high && valid) ? static_cast<double>(m) : 0.0;
      if (P.has_ref) s[5] += valid ? static_cast<double>(m * t.kl) : 0.0;
      if (P.has_ent) {
        const float h = ent[i];
        s[6] += valid ? static_cast<double>(m * h) : 0.0;
        if (grad_ent) grad_ent[i] = pol::token_grad_entropy(P, m, wf);
      }
      s[0] += valid ? static_cast<double>(m * t.loss) : 0.0;
      s[4] += valid ? static_cast<double>(m * 0.5f * d * d) : 0.0;
      grad[i] = pol::token_grad(m, wf, t);
    }
  }
  for (int k = 0; k < 7; ++k) {
    const double v = block_sum(s[k], sh);
    if (threadIdx.x == 0) p2[7 * item + k] = v;
  }
}

__global__ void __launch_bounds__(kThreads) pol_final(const double* p2, int64_t B, int64_t nck,
                                                     const double* rowm, const double* rowf,
                                                     const double* total, double* metrics,
                                                     const unsigned long long* slot) {
  __shared__ double sh[kThreads];
  int64_t b0, b1;
  share(B, threadIdx.x, &b0, &b1);
  double s[7] = {0, 0, 0, 0, 0, 0, 0};  // loss, low, high, dual, approx, kl, ent
  for (int64_t r = b0; r < b1; ++r) {
    double ml = 0;
    for (int64_t c = 0; c < nck; ++c) {
      const double* q = p2 + 7 * (r * nck + c);
      ml += q[0];
      for (int k = 1; k < 7; ++k) s[k] += q[k];
    }
    if (rowm[r] > 0) s[0] += rowf[r] * ml;
  }
  for (int k = 0; k < 7; ++k) s[k] = block_sum(s[k], sh);
  if (threadIdx.x == 0) {
    const double tm = *total;
    double out[kPolicyMetricCount] = {s[0], 0, 0, 0, 0, 0, 0, 0, tm};
    if (tm > 0) {
      out[1] = (s[1] + s[2]) / tm;
      out[2] = s[1] / tm;
      out[3] = s[2] / tm;
      out[4] = s[3] / tm;
      out[5] = s[4] / tm;
      out[6] = s[5] / tm;
      out[7] = s[6] / tm;
    }
    const bool bad = slot && *slot != kNone;
    for (int k = 0; k < kPolicyMetricCount; ++k) metrics[k] = bad ? NAN : out[k];
  }
}

__global__ void __launch_bounds__(kThreads) validate_weights(const float* w, int64_t n, unsigned long long* slot) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i < n && bad_weight(w[i])) note_bad(slot, i);
}

__global__ void __launch_bounds__(kThreads) kl_chunks(const float* lp, const float* ref, const void* mask,
                                                     int mask_kind, int64_t n, int est, float* kl_out,
                                                     float* grad_out, double* parts,
                                                     const unsigned long long* slot) {
  __shared__ double sh[kThreads];
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kChunk;
  const int64_t t1 = t0 + kChunk < n ? t0 + kChunk : n;
  const bool bad = slot && *slot != kNone;
  double sm = 0, skl = 0;
  for (int64_t i = t0 + threadIdx.x; i < t1; i += kThreads) {
    const float m = mask_at(mask, mask_kind, i);
    const bool valid = m > 0.0f;
    float kv, kg;
    rk::core::kl_estimate(static_cast<rk::KlEstimator>(est), lp[i] - ref[i], Exp2Dev{}, &kv, &kg);
    kv = valid ? kv : 0.0f;
    kg = valid ? kg : 0.0f;
    if (kl_out) kl_out[i] = bad ? NAN : kv;
    if (grad_out) grad_out[i] = bad ? NAN : kg;
    sm += m;
    skl += valid ? static_cast<double>(m * kv) : 0.0;
  }
  sm = block_sum(sm, sh);
  skl = block_sum(skl, sh);
  if (threadIdx.x == 0) {
    parts[2 * blockIdx.x] = sm;
    parts[2 * blockIdx.x + 1] = skl;
  }
}

__global__ void __launch_bounds__(kThreads) kl_final(const double* parts, int64_t items, double* mean,
                                                    const unsigned long long* slot) {
  __shared__ double sh[kThreads];
  int64_t b0, b1;
  share(items, threadIdx.x, &b0, &b1);
  double sm = 0, skl = 0;
  for (int64_t it = b0; it < b1; ++it) {
    sm += parts[2 * it];
    skl += parts[2 * it + 1];
  }
  sm = block_sum(sm, sh);
  skl = block_sum(skl, sh);
  if (threadIdx.x == 0) *mean = (slot && *slot != kNone) ? NAN : (sm > 0 ? skl / sm : 0.0);
}

}  // namespace

Result policy_loss(const PolicyLossArgs& a, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const rk::PolicyLossInputs& in = a.in;
  const rk::PolicyLossParams& p = a.params;
  const int64_t B = in.batch, T = in.seq_len;
  if (B < 0) return bad_arg("batch", B);
  if (T <= 0) return bad_arg("seq_len", T);
  if (!a.metrics) return bad_arg("metrics", 0);
  const int mk = static_cast<int>(in.mask_kind);
  if (mk < 0 || mk >= rk::kMaskKindCount) return bad_arg("mask_kind", mk);
  if (mk != 0 && !in.mask) return bad_arg("mask", 0);
  const int var = static_cast<int>(p.variant);
  if (var < 0 || var >= rk::kPolicyVariantCount) return bad_arg("variant", var);
  const int agg = static_cast<int>(p.aggregation);
  if (agg < 0 || agg >= rk::kLossAggregationCount) return bad_arg("aggregation", agg);
  const int kl = static_cast<int>(p.kl);
  if (kl < 0 || kl >= rk::kKlEstimatorCount) return bad_arg("kl", kl);
  if (a.grad_entropy && !in.entropy) return bad_arg("grad_entropy needs entropy", 0);
  if (B == 0) {
    RK_CUDA_CHECK(cudaMemsetAsync(a.metrics, 0, sizeof(double) * kPolicyMetricCount, st));
    return Result{};
  }
  if (!in.logprobs) return bad_arg("logprobs", 0);
  if (!in.old_logprobs) return bad_arg("old_logprobs", 0);
  if (!in.advantages) return bad_arg("advantages", 0);
  if (!a.grad_logprobs) return bad_arg("grad_logprobs", 0);
  const int64_t nck = (T + kChunk - 1) / kChunk;
  const int64_t items = B * nck;
  if (items > 0x7fffffffLL) return bad_arg("batch", B);
  Slot slot(a.bad_index, st);
  if (mk == 2) {
    Result r = slot.init();
    if (!r.ok()) return r;
  }
  unsigned long long* sp = mk == 2 ? slot.p : nullptr;
  Scratch ws(st);
  {
    Result r = ws.alloc(sizeof(double) * static_cast<size_t>(items * 9 + 3 * B + 1));
    if (!r.ok()) return r;
  }
  double* p1 = static_cast<double*>(ws.p);
  double* p2 = p1 + 2 * items;
  double* rowm = p2 + 7 * items;
  double* rowls = rowm + B;
  double* rowf = rowls + B;
  double* total = rowf + B;
  const bool gspo = p.variant == rk::PolicyVariant::Gspo;
  pol_pass1<<<static_cast<unsigned>(items), kThreads, 0, st>>>(in.logprobs, in.old_logprobs, in.mask, mk, T, nck, gspo, p1, sp);
  RK_CUDA_CHECK(cudaGetLastError());
  pol_rows<<<1, kThreads, 0, st>>>(p1, B, T, nck, agg, p.normalizer, rowm, rowls, rowf, total);
  RK_CUDA_CHECK(cudaGetLastError());
  Pass2Params P;
  P.variant = p.variant;
  P.kl = p.kl;
  P.mask_kind = mk;
  P.per_token = in.advantages_per_token;
  P.has_ref = in.ref_logprobs != nullptr;
  P.has_ent = in.entropy != nullptr;
  P.has_w = in.token_weights != nullptr;
  P.tok = rk::core::policy_token_params(p);
  pol_pass2<<<static_cast<unsigned>(items), kThreads, 0, st>>>(in.logprobs, in.old_logprobs, in.advantages, in.mask, in.ref_logprobs, in.entropy, in.token_weights, T, nck, P, rowls, rowf, a.grad_logprobs, a.grad_entropy, p2, sp);
  RK_CUDA_CHECK(cudaGetLastError());
  pol_final<<<1, kThreads, 0, st>>>(p2, B, nck, rowm, rowf, total, a.metrics, sp);
  RK_CUDA_CHECK(cudaGetLastError());
  return slot.finish("mask");
}

Result policy_row_factors(const rk::PolicyLossInputs& in, const rk::PolicyLossParams& p, double* row_log_s,
                          double* row_f, unsigned long long* bad_index, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t B = in.batch, T = in.seq_len;
  if (B <= 0) return bad_arg("batch", B);
  if (T <= 0) return bad_arg("seq_len", T);
  const int mk = static_cast<int>(in.mask_kind);
  if (mk < 0 || mk >= rk::kMaskKindCount) return bad_arg("mask_kind", mk);
  if (mk != 0 && !in.mask) return bad_arg("mask", 0);
  if (mk == 2 && !bad_index) return bad_arg("bad_index", 0);
  if (!row_log_s || !row_f) return bad_arg("row factors", 0);
  const int agg = static_cast<int>(p.aggregation);
  if (agg < 0 || agg >= rk::kLossAggregationCount) return bad_arg("aggregation", agg);
  const bool gspo = p.variant == rk::PolicyVariant::Gspo;
  if (gspo && (!in.logprobs || !in.old_logprobs)) return bad_arg("logprobs", 0);
  const int64_t nck = (T + kChunk - 1) / kChunk;
  const int64_t items = B * nck;
  if (items > 0x7fffffffLL) return bad_arg("batch", B);
  Scratch ws(st);
  {
    Result r = ws.alloc(sizeof(double) * static_cast<size_t>(items * 2 + B + 1));
    if (!r.ok()) return r;
  }
  double* p1 = static_cast<double*>(ws.p);
  double* rowm = p1 + 2 * items;
  double* total = rowm + B;
  pol_pass1<<<static_cast<unsigned>(items), kThreads, 0, st>>>(in.logprobs, in.old_logprobs, in.mask, mk, T, nck, gspo, p1,
                                                               mk == 2 ? bad_index : nullptr);
  RK_CUDA_CHECK(cudaGetLastError());
  pol_rows<<<1, kThreads, 0, st>>>(p1, B, T, nck, agg, p.normalizer, rowm, row_log_s, row_f, total);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

Result kl_penalty(const KlPenaltyArgs& a, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (a.n < 0) return bad_arg("n", a.n);
  const int mk = static_cast<int>(a.mask_kind);
  if (mk < 0 || mk >= rk::kMaskKindCount) return bad_arg("mask_kind", mk);
  const int est = static_cast<int>(a.estimator);
  if (est < 0 || est >= rk::kKlEstimatorCount) return bad_arg("estimator", est);
  if (a.n == 0) {
    if (a.mean) RK_CUDA_CHECK(cudaMemsetAsync(a.mean, 0, sizeof(double), st));
    return Result{};
  }
  if (!a.logprobs) return bad_arg("logprobs", 0);
  if (!a.ref_logprobs) return bad_arg("ref_logprobs", 0);
  if (mk != 0 && !a.mask) return bad_arg("mask", 0);
  const int64_t items = (a.n + kChunk - 1) / kChunk;
  if (items > 0x7fffffffLL) return bad_arg("n", a.n);
  Slot slot(a.bad_index, st);
  if (mk == 2) {
    Result r = slot.init();
    if (!r.ok()) return r;
    validate_weights<<<grid_for(a.n, kThreads), kThreads, 0, st>>>(static_cast<const float*>(a.mask), a.n, slot.p);
    RK_CUDA_CHECK(cudaGetLastError());
  }
  const unsigned long long* sp = mk == 2 ? slot.p : nullptr;
  Scratch ws(st);
  {
    Result r = ws.alloc(sizeof(double) * static_cast<size_t>(2 * items));
    if (!r.ok()) return r;
  }
  double* parts = static_cast<double*>(ws.p);
  kl_chunks<<<static_cast<unsigned>(items), kThreads, 0, st>>>(a.logprobs, a.ref_logprobs, a.mask, mk, a.n, est, a.kl, a.grad, parts, sp);
  RK_CUDA_CHECK(cudaGetLastError());
  if (a.mean) {
    kl_final<<<1, kThreads, 0, st>>>(parts, items, a.mean, sp);
    RK_CUDA_CHECK(cudaGetLastError());
  }
  return slot.finish("mask");
}

}  // namespace rkcuda
