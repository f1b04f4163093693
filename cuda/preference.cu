// Preference losses on CUDA (contracts in preference.h; the CPU twins are
// native/kernels/preference.cc and preference_simd.inl). One thread per pair; the per-pair and
// per-item formulas are the CPU kernels' own, native/core/preference.h (RK_HD), all in double
// (one exp and one log1p per logistic term, TRL's cap_exp);
// per-block sums in a fixed tree, then the block partials added in order by one block.
#include "preference.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "small_common.cuh"

namespace rkcuda {
namespace {

using namespace small;

using rk::core::pair_loss;

__global__ void __launch_bounds__(kThreads) check_lengths(const int32_t* a, const int32_t* b, int64_t n,
                                                         unsigned long long* slot) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i < n && (a[i] < 1 || b[i] < 1)) note_bad(slot, i);
}

// A block's loss, accuracy and margin sums, each in the fixed tree, stored as its three partials
// (sum_parts then adds the blocks in order). Every thread of the block calls it.
__device__ void store_pair_parts(double sl, double sa, double sm, double* sh, double* parts) {
  sl = block_sum(sl, sh);
  sa = block_sum(sa, sh);
  sm = block_sum(sm, sh);
  if (threadIdx.x == 0) {
    parts[3 * blockIdx.x] = sl;
    parts[3 * blockIdx.x + 1] = sa;
    parts[3 * blockIdx.x + 2] = sm;
  }
}

__global__ void __launch_bounds__(kThreads) pref_pairs(rk::PreferenceInputs in, rk::PreferenceParams p,
                                                      rk::core::PairOut o, double inv_n, double* parts,
                                                      const unsigned long long* slot) {
  __shared__ double sh[kThreads];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const bool bad = slot && *slot != kNone;
  double sl = 0, sa = 0, sm = 0;
  if (i < in.pairs) {
    if (bad) {
      o.losses[i] = o.rc[i] = o.rr[i] = o.gc[i] = o.gr[i] = NAN;
      sl = sa = sm = NAN;
    } else {
      const rk::core::PairSums r = rk::core::store_pair(o, i, pair_loss(in, p, i), inv_n);
      sl = r.loss;
      sa = r.acc;
      sm = r.margin;
    }
  }
  store_pair_parts(sl, sa, sm, sh, parts);
}

// ---- the general path (lists of losses, aot, aot_unpaired, sft; core::pair_general) -----------
// Rank of every pair in AOT key set `set` by counting (core::aot_rank: the CPU's stable sort
// order, NaN last), and its inverse.
__global__ void __launch_bounds__(kThreads) aot_ranks(rk::PreferenceInputs in, int set, int64_t* rank, int64_t* perm) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= in.pairs) return;
  const int64_t r = rk::core::aot_rank(in, set, i);
  rank[i] = r;
  perm[r] = i;
}

// SFT sums: sum of chosen log-probs and of chosen lengths (one block; contiguous runs, then a tree).
__global__ void __launch_bounds__(kThreads) sft_sums(rk::PreferenceInputs in, double* sums) {
  __shared__ double sh[kThreads];
  int64_t b0, b1;
  share(in.pairs, threadIdx.x, &b0, &b1);
  double sw = 0, sl = 0;
  for (int64_t i = b0; i < b1; ++i) {
    sw += static_cast<double>(in.chosen[i]);
    sl += static_cast<double>(in.chosen_len[i]);
  }
  sw = block_sum(sw, sh);
  sl = block_sum(sl, sh);
  if (threadIdx.x == 0) {
    sums[0] = sw;
    sums[1] = sl;
  }
}

__global__ void __launch_bounds__(kThreads) pref_general(rk::PreferenceInputs in, rk::PreferenceParams p,
                                                        rk::core::BatchTerms bt, const double* sums,
                                                        rk::core::PairOut o, double inv_n, double* parts,
                                                        const unsigned long long* slot) {
  __shared__ double sh[kThreads];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const bool bad = slot && *slot != kNone;
  double sl = 0, sa = 0, sm = 0;
  if (i < in.pairs) {
    if (bad) {
      o.losses[i] = o.rc[i] = o.rr[i] = o.gc[i] = o.gr[i] = NAN;
      sl = sa = sm = NAN;
    } else {
      if (sums) {
        bt.sft_loss = rk::core::sft_loss_of(sums[0], sums[1]);
        bt.sft_grad = rk::core::sft_grad_of(static_cast<double>(in.pairs), sums[1]);
      }
      const rk::core::PairSums r = rk::core::store_pair(o, i, rk::core::pair_general(in, p, bt, i), inv_n);
      sl = r.loss;
      sa = r.acc;
      sm = r.margin;
    }
  }
  store_pair_parts(sl, sa, sm, sh, parts);
}

// Sums `width` columns of `items` partial rows in order (contiguous runs per thread, then a tree).
// mode 0: out = sums * inv_n (preference, tgdpo). mode 1: kto (loss mean, reward means).
__global__ void __launch_bounds__(kThreads) sum_parts(const double* parts, int64_t items, int width,
                                                     double inv_n, double n, int mode, double* out) {
  __shared__ double sh[kThreads];
  int64_t b0, b1;
  share(items, threadIdx.x, &b0, &b1);
  double s[4] = {0, 0, 0, 0};
  for (int64_t it = b0; it < b1; ++it)
    for (int k = 0; k < width; ++k) s[k] += parts[width * it + k];
  for (int k = 0; k < width; ++k) s[k] = block_sum(s[k], sh);
  if (threadIdx.x == 0) {
    if (mode == 0) {
      for (int k = 0; k < width; ++k) out[k] = s[k] * inv_n;
    } else {
      const double nd = s[3], nu = n - s[3];
      out[0] = s[0] * inv_n;
      out[1] = nd > 0 ? s[1] / nd : NAN;
      out[2] = nu > 0 ? s[2] / nu : NAN;
    }
  }
}

__global__ void __launch_bounds__(kThreads) kto_items(int64_t n, const float* logp, const float* ref,
                                                     const uint8_t* des, rk::KtoParams p, float* losses,
                                                     float* rewards, float* grad, double inv_n, double* parts) {
  __shared__ double sh[kThreads];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  double s[4] = {0, 0, 0, 0};
  if (i < n) {
    const rk::core::KtoSums k = rk::core::store_kto(i, logp, ref, des, p, inv_n, losses, rewards, grad);
    s[0] = k.loss;
    s[1] = k.des;
    s[2] = k.undes;
    s[3] = k.ndes;
  }
  for (int k = 0; k < 4; ++k) {
    const double v = block_sum(s[k], sh);
    if (threadIdx.x == 0) parts[4 * blockIdx.x + k] = v;
  }
}

template <typename M>
__global__ void __launch_bounds__(kThreads) tgdpo_rows(rk::TgdpoInputs in, double beta, double alpha,
                                                      float* losses, float* crw, float* rrw, float* gcw,
                                                      float* grw, double* parts) {
  __shared__ double sh[kThreads];
  const int64_t b = blockIdx.x, T = in.seq_len, o = b * T;
  const M* mw = static_cast<const M*>(in.chosen_mask);
  const M* ml = static_cast<const M*>(in.rejected_mask);
  double zw = 0, zl = 0;
  for (int64_t t = threadIdx.x; t < T; t += kThreads) {
    const double m = static_cast<double>(mw[o + t]);
    if (m != 0)
      zw += rk::core::tgdpo_chosen_term(m, beta, alpha, in.chosen_token_rewards[o + t], in.chosen[o + t],
                                        in.ref_chosen[o + t]);
    const double n = static_cast<double>(ml[o + t]);
    if (n != 0)
      zl += rk::core::tgdpo_rejected_term(n, beta, alpha, in.rejected_token_rewards[o + t], in.rejected[o + t],
                                          in.ref_rejected[o + t]);
  }
  zw = block_sum(zw, sh);
  zl = block_sum(zl, sh);
  const double z = zw - zl;
  const rk::core::TgdpoRow row = rk::core::tgdpo_row(z, 1.0 / static_cast<double>(in.batch));
  const double L = row.loss, g = row.g;
  for (int64_t t = threadIdx.x; t < T; t += kThreads) {
    const double m = static_cast<double>(mw[o + t]);
    const double n = static_cast<double>(ml[o + t]);
    gcw[o + t] = static_cast<float>(rk::core::tgdpo_chosen_grad(g, m, beta, alpha, in.chosen_token_rewards[o + t]));
    grw[o + t] = static_cast<float>(rk::core::tgdpo_rejected_grad(g, n, beta, alpha, in.rejected_token_rewards[o + t]));
  }
  if (threadIdx.x == 0) {
    losses[b] = static_cast<float>(L);
    crw[b] = static_cast<float>(zw);
    rrw[b] = static_cast<float>(zl);
    parts[3 * b] = L;
    parts[3 * b + 1] = zw > zl ? 1.0 : 0.0;
    parts[3 * b + 2] = z;
  }
}

__global__ void __launch_bounds__(kThreads) ld_pairs(rk::LdInputs in, double alpha, rk::LdOutputs out) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (b < in.batch) rk::core::ld_pair(in, alpha, b, out);
}

}  // namespace

Result ld_dpo_logps(const LdDpoArgs& a, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (a.in.batch < 1) return bad_arg("batch", a.in.batch);
  if (a.in.batch > (int64_t{0x7fffffff} - kThreads) * kThreads / 2) return bad_arg("batch", a.in.batch);
  if (a.in.seq_len < 1) return bad_arg("seq_len", a.in.seq_len);
  if (!a.in.chosen) return bad_arg("chosen", 0);
  if (!a.in.rejected) return bad_arg("rejected", 0);
  if (!a.out.chosen || !a.out.rejected) return bad_arg("outputs", 0);
  if ((a.out.chosen_weights == nullptr) != (a.out.rejected_weights == nullptr)) return bad_arg("weights", 0);
  ld_pairs<<<grid_for(a.in.batch, kThreads), kThreads, 0, st>>>(a.in, a.alpha, a.out);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

Result preference_loss(const PreferenceLossArgs& a, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t n = a.in.pairs;
  if (n < 1) return bad_arg("pairs", n);
  if (n > (int64_t{0x7fffffff} - kThreads) * kThreads / 2) return bad_arg("pairs", n);
  if (!a.in.chosen) return bad_arg("chosen", 0);
  if (!a.in.rejected) return bad_arg("rejected", 0);
  if (!a.losses || !a.chosen_rewards || !a.rejected_rewards || !a.grad_chosen || !a.grad_rejected)
    return bad_arg("outputs", 0);
  if (!a.scalars) return bad_arg("scalars", 0);
  const int loss = static_cast<int>(a.params.loss), fd = static_cast<int>(a.params.fdiv);
  if (loss < 0 || loss >= rk::kPrefLossCount) return bad_arg("loss", loss);
  if (fd < 0 || fd >= rk::kFDivergenceCount) return bad_arg("fdiv", fd);
  for (int k = 0; k < rk::kPrefLossCount; ++k) {
    const double w = a.params.mix[k];
    if (!std::isfinite(w) || (w != 0 && (!a.params.mixed || !rk::mixable_loss(static_cast<rk::PrefLoss>(k)))))
      return bad_arg("mix", k);
  }
  rk::PreferenceInputs in = a.in;
  const bool lens = rk::needs_lengths(a.params);
  Slot slot(a.bad_index, st);
  if (lens) {
    if (!in.chosen_len) return bad_arg("chosen_len", 0);
    if (!in.rejected_len) return bad_arg("rejected_len", 0);
    Result r = slot.init();
    if (!r.ok()) return r;
    check_lengths<<<grid_for(n, kThreads), kThreads, 0, st>>>(in.chosen_len, in.rejected_len, n, slot.p);
    RK_CUDA_CHECK(cudaGetLastError());
  } else {
    in.chosen_len = nullptr;
    in.rejected_len = nullptr;
  }
  const int nb = grid_for(n, kThreads);
  const bool general = rk::needs_batch_path(a.params);
  const unsigned sets = general ? rk::core::aot_sets(a.params) : 0u;
  const bool sft = general && rk::core::loss_weight(a.params, static_cast<int>(rk::PrefLoss::Sft)) != 0;
  Scratch ws(st);
  {
    // parts, then (general path) the SFT sums and the rank / perm arrays of every key set.
    size_t bytes = sizeof(double) * (3 * static_cast<size_t>(nb) + 2);
    if (general) bytes += sizeof(int64_t) * 2 * rk::core::kAotKeys * static_cast<size_t>(n);
    Result r = ws.alloc(bytes);
    if (!r.ok()) return r;
  }
  double* parts = static_cast<double*>(ws.p);
  const rk::core::PairOut o{a.losses, a.chosen_rewards, a.rejected_rewards, a.grad_chosen, a.grad_rejected};
  const double inv_n = 1.0 / static_cast<double>(n);
  if (general) {
    double* sums = parts + 3 * static_cast<size_t>(nb);
    int64_t* idx = reinterpret_cast<int64_t*>(sums + 2);
    rk::core::BatchTerms bt;
    for (int s = 0; s < rk::core::kAotKeys; ++s) {
      if (!(sets & (1u << s))) continue;
      int64_t* rank = idx + 2 * s * n;
      int64_t* perm = rank + n;
      aot_ranks<<<nb, kThreads, 0, st>>>(in, s, rank, perm);
      RK_CUDA_CHECK(cudaGetLastError());
      bt.rank[s] = rank;
      bt.perm[s] = perm;
    }
    if (sft) {
      sft_sums<<<1, kThreads, 0, st>>>(in, sums);
      RK_CUDA_CHECK(cudaGetLastError());
    }
    pref_general<<<nb, kThreads, 0, st>>>(in, a.params, bt, sft ? sums : nullptr, o, inv_n, parts, lens ? slot.p : nullptr);
  } else {
    pref_pairs<<<nb, kThreads, 0, st>>>(in, a.params, o, inv_n, parts, lens ? slot.p : nullptr);
  }
  RK_CUDA_CHECK(cudaGetLastError());
  sum_parts<<<1, kThreads, 0, st>>>(parts, nb, 3, inv_n, static_cast<double>(n), 0, a.scalars);
  RK_CUDA_CHECK(cudaGetLastError());
  if (!lens) return Result{};
  Result r = slot.finish("chosen_len", in.chosen_len);
  if (r.code == kBadTarget && r.value >= 1) {  // the chosen length was fine: the rejected one
    int32_t v = 0;
    RK_CUDA_CHECK(cudaMemcpyAsync(&v, in.rejected_len + r.index, sizeof v, cudaMemcpyDeviceToHost, st));
    RK_CUDA_CHECK(cudaStreamSynchronize(st));
    r.value = v;
    r.where = "rejected_len";
  }
  return r;
}

Result kto_loss(const KtoLossArgs& a, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (a.n < 1) return bad_arg("n", a.n);
  if (a.n > (int64_t{0x7fffffff} - kThreads) * kThreads / 2) return bad_arg("n", a.n);
  if (!a.logp) return bad_arg("logp", 0);
  if (!a.desirable) return bad_arg("desirable", 0);
  if (!a.losses || !a.rewards || !a.grad) return bad_arg("outputs", 0);
  if (!a.scalars) return bad_arg("scalars", 0);
  const int nb = grid_for(a.n, kThreads);
  Scratch ws(st);
  {
    Result r = ws.alloc(sizeof(double) * 4 * static_cast<size_t>(nb));
    if (!r.ok()) return r;
  }
  double* parts = static_cast<double*>(ws.p);
  const double inv_n = 1.0 / static_cast<double>(a.n);
  kto_items<<<nb, kThreads, 0, st>>>(a.n, a.logp, a.ref, a.desirable, a.params, a.losses, a.rewards, a.grad, inv_n, parts);
  RK_CUDA_CHECK(cudaGetLastError());
  sum_parts<<<1, kThreads, 0, st>>>(parts, nb, 4, inv_n, static_cast<double>(a.n), 1, a.scalars);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

Result token_weighted_dpo_loss(const TgdpoArgs& a, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const rk::TgdpoInputs& in = a.in;
  if (in.batch < 1 || in.batch > 0x7fffffffLL) return bad_arg("batch", in.batch);
  if (in.seq_len < 0) return bad_arg("seq_len", in.seq_len);
  if (in.seq_len > 0 && (!in.chosen || !in.rejected || !in.ref_chosen || !in.ref_rejected ||
                         !in.chosen_token_rewards || !in.rejected_token_rewards || !in.chosen_mask ||
                         !in.rejected_mask || !a.grad_chosen || !a.grad_rejected))
    return bad_arg("per-token arrays", 0);
  if (!a.losses || !a.chosen_rewards || !a.rejected_rewards) return bad_arg("outputs", 0);
  if (!a.scalars) return bad_arg("scalars", 0);
  Scratch ws(st);
  {
    Result r = ws.alloc(sizeof(double) * 3 * static_cast<size_t>(in.batch));
    if (!r.ok()) return r;
  }
  double* parts = static_cast<double*>(ws.p);
  const unsigned nb = static_cast<unsigned>(in.batch);
  if (in.mask_is_f32)
    tgdpo_rows<float><<<nb, kThreads, 0, st>>>(in, a.beta, a.alpha, a.losses, a.chosen_rewards, a.rejected_rewards, a.grad_chosen, a.grad_rejected, parts);
  else
    tgdpo_rows<uint8_t><<<nb, kThreads, 0, st>>>(in, a.beta, a.alpha, a.losses, a.chosen_rewards, a.rejected_rewards, a.grad_chosen, a.grad_rejected, parts);
  RK_CUDA_CHECK(cudaGetLastError());
  sum_parts<<<1, kThreads, 0, st>>>(parts, in.batch, 3, 1.0 / static_cast<double>(in.batch), static_cast<double>(in.batch), 0, a.scalars);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

}  // namespace rkcuda
