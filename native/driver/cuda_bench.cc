// rk_driver cuda-bench: the D2D copy bandwidth and a read-only pass, then the CUDA kernels' timings
// against it: the log-prob kernels at 8192 x 151936 (bf16, f32), the vocabulary divergences (bf16),
// policyLoss, policyLossFromLogits (beside the log-prob kernels), preferenceLoss and groupAdvantages.
// RESULT| lines are collected by scripts/gpu-check.sh.
// Compiled only when CMake found nvcc (RK_WITH_CUDA); plain C++ on the CUDA runtime API.
#if defined(RK_WITH_CUDA)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../../cuda/advantages.h"
#include "../../cuda/bench_util.h"
#include "../../cuda/divergence.h"
#include "../../cuda/logprobs.h"
#include "../../cuda/policy.h"
#include "../../cuda/policy_logits.h"
#include "../../cuda/preference.h"
#include "cuda_driver.h"
#include "parity.h"

namespace rkdriver {
namespace {

inline const char* dtype_name(int dt) { return dt == rkcuda::kBF16 ? "bf16" : dt == rkcuda::kF16 ? "f16" : "f32"; }

struct Row {
  std::string name;
  double ms, gbs;
};

template <class F>
double median_ms(F f, int reps, cudaStream_t st) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  f();  // warm-up
  f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    CK(cudaEventRecord(a, st));
    f();
    CK(cudaEventRecord(b, st));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void bench_dtype(int dtype, int64_t n, int64_t v, bool note_shape, std::vector<Row>& rows,
                 cudaStream_t st) {
  const int es = dtype == rkcuda::kF32 ? 4 : 2;
  const size_t nv = static_cast<size_t>(n * v);
  Dev<uint8_t> dz(nv * es);
  Dev<int32_t> dy(n);
  Dev<float> dlp(n), dlse(n), dH(n), dg(n), dh(n), dgrad(nv);
  Dev<unsigned long long> slot(1);
  die_on(rkcuda::fill_random(dz.p, dtype, static_cast<int64_t>(nv), 1234, 0.0f, 2.0f, st), "fill");
  die_on(rkcuda::fill_targets(dy.p, n, v, 99, st), "fill targets");
  die_on(rkcuda::fill_random(dg.p, rkcuda::kF32, n, 5, 0.0f, 1.0f, st), "fill g");
  die_on(rkcuda::fill_random(dh.p, rkcuda::kF32, n, 6, 0.0f, 1.0f, st), "fill h");
  die_on(rkcuda::bad_row_reset(slot.p, st), "bad_row_reset");
  CK(cudaStreamSynchronize(st));
  rkcuda::LogprobsForwardArgs fa;
  fa.logits = dz.p;
  fa.dtype = dtype;
  fa.rows = n;
  fa.vocab = v;
  fa.targets = dy.p;
  fa.logp = dlp.p;
  fa.lse = dlse.p;
  fa.bad_row = slot.p;
  rkcuda::LogprobsBackwardArgs ba;
  ba.logits = dz.p;
  ba.dtype = dtype;
  ba.rows = n;
  ba.vocab = v;
  ba.targets = dy.p;
  ba.grad_logp = dg.p;
  ba.grad = dgrad.p;
  ba.bad_row = slot.p;
  const double in = static_cast<double>(nv) * es, out = static_cast<double>(nv) * 4;
  const int reps = 20;
  char label[96];
  auto add = [&](const char* what, double bytes, double ms) {
    if (note_shape)
      std::snprintf(label, sizeof label, "%s %s (%lldx%lld)", what, dtype_name(dtype),
                    static_cast<long long>(n), static_cast<long long>(v));
    else
      std::snprintf(label, sizeof label, "%s %s", what, dtype_name(dtype));
    rows.push_back(Row{label, ms, bytes / ms / 1e6});
    std::printf("  %-40s %8.3f ms %8.1f GB/s\n", label, ms, bytes / ms / 1e6);
    std::fflush(stdout);
  };
  std::printf("%s logits %lld x %lld (%.2f GB), splits %d\n", dtype_name(dtype),
              static_cast<long long>(n), static_cast<long long>(v), in / 1e9,
              rkcuda::logprobs_row_splits(n, v));
  fa.entropy = nullptr;
  add("forward", in, median_ms([&] { die_on(rkcuda::token_logprobs_forward(fa, st), "forward"); }, reps, st));
  fa.entropy = dH.p;
  add("forward+entropy", in, median_ms([&] { die_on(rkcuda::token_logprobs_forward(fa, st), "forward"); }, reps, st));
  ba.lse = dlse.p;
  add("backward (lse given)", in + out, median_ms([&] { die_on(rkcuda::token_logprobs_backward(ba, st), "backward"); }, reps, st));
  ba.grad_entropy = dh.p;
  ba.entropy = dH.p;
  add("backward+entropy (lse,H given)", in + out, median_ms([&] { die_on(rkcuda::token_logprobs_backward(ba, st), "backward"); }, reps, st));
  ba.lse = nullptr;
  ba.entropy = nullptr;
  add("backward+entropy (recompute)", 2 * in + out, median_ms([&] { die_on(rkcuda::token_logprobs_backward(ba, st), "backward"); }, reps, st));
  {  // policyLossFromLogits: ideal bytes = the logits once (GSPO: twice) + the gradient once
    const int64_t T = n % 512 == 0 ? 512 : 1;
    Dev<float> old(n), adv(n / T);
    Dev<double> m(rkcuda::kPolicyMetricCount);
    die_on(rkcuda::fill_random(old.p, rkcuda::kF32, n, 7, -12.0f, 1.0f, st), "fill old");
    die_on(rkcuda::fill_random(adv.p, rkcuda::kF32, n / T, 8, 0.0f, 1.0f, st), "fill adv");
    rk::PolicyFromLogitsArgs pa;
    pa.logits = rk::LogitsView{dz.p, static_cast<rk::DType>(dtype), n, v};
    pa.targets = dy.p;
    pa.policy.old_logprobs = old.p;
    pa.policy.advantages = adv.p;
    pa.policy.batch = n / T;
    pa.policy.seq_len = T;
    pa.grad = dgrad.p;
    pa.logprobs = dlp.p;
    rk::PolicyLossParams pp;
    auto run = [&] { die_on(rkcuda::policy_loss_from_logits(pa, pp, m.p, st, slot.p), "policy_loss_from_logits"); };
    add("policyLossFromLogits ppo f32-grad", in + out, median_ms(run, reps, st));
    pa.grad_dtype = rk::DType::BF16;
    add("policyLossFromLogits ppo bf16-grad", in + out / 2, median_ms(run, reps, st));
    pp.variant = rk::PolicyVariant::Gspo;
    add("policyLossFromLogits gspo bf16-grad", 2 * in + out / 2, median_ms(run, reps, st));
  }
  die_on(rkcuda::bad_row_read(slot.p, dy.p, st), "bad_row_read");
  // Sanity: the outputs are finite and logp <= 0.
  std::vector<float> lp(n), H(n);
  dlp.down(lp.data());
  dH.down(H.data());
  int64_t weird = 0;
  for (int64_t i = 0; i < n; ++i) weird += !(lp[i] <= 0.0f) || !std::isfinite(H[i]);
  if (weird) std::printf("  WARNING: %lld rows with logp > 0 or non-finite entropy\n", static_cast<long long>(weird));
}


// "  name  ms  GB/s" and the RESULT line scripts/gpu-check.sh collects; bytes = read + written.
void bench_line(const char* name, double ms, double bytes) {
  std::printf("  %-40s %8.3f ms %8.1f GB/s\n", name, ms, bytes / ms / 1e6);
  std::printf("RESULT|rk %s|%.4f|%.1f\n", name, ms, bytes / ms / 1e6);
  std::fflush(stdout);
}

std::vector<float> gauss_vec(size_t n, uint64_t seed, float scale, float shift) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = shift + scale * rng::normal(seed, i);
  return v;
}

// policyLoss 64 x 4096 (ppo, u8 mask), preferenceLoss 1M pairs (sigmoid), groupAdvantages 1M samples.
void bench_policy(cudaStream_t st) {
  const int64_t B = 64, T = 4096;
  const size_t n = static_cast<size_t>(B * T);
  std::vector<float> lp = gauss_vec(n, 5, 0.5f, -1.0f), old(n), adv = gauss_vec(B, 6, 1.0f, 0.0f);
  std::vector<uint8_t> mask(n);
  for (size_t i = 0; i < n; ++i) {
    old[i] = lp[i] - 0.3f * rng::normal(7, i);
    mask[i] = rng::unif(8, i) < 0.75;
  }
  Dev<float> dlp(lp), dold(old), dadv(adv), g(n);
  Dev<uint8_t> um(mask);
  Dev<double> m(rkcuda::kPolicyMetricCount);
  rkcuda::PolicyLossArgs a;
  a.in.logprobs = dlp.p, a.in.old_logprobs = dold.p, a.in.advantages = dadv.p, a.in.mask = um.p;
  a.in.mask_kind = rk::MaskKind::U8;
  a.in.batch = B, a.in.seq_len = T;
  a.grad_logprobs = g.p;
  a.metrics = m.p;
  const double ms = median_ms([&] { die_on(rkcuda::policy_loss(a, st), "policy_loss"); }, 20, st);
  bench_line("policyLoss ppo f32 (64 x 4096, u8 mask)", ms, static_cast<double>(B * T) * 13);
}

void bench_preference(cudaStream_t st) {
  const int64_t P = 1 << 20;
  Dev<float> w(gauss_vec(P, 9, 2.0f, -30.0f)), l(gauss_vec(P, 10, 2.0f, -31.0f)), rw(gauss_vec(P, 11, 2.0f, -30.0f)),
      rl(gauss_vec(P, 12, 2.0f, -31.0f)), o1(P), o2(P), o3(P), o4(P), o5(P);
  Dev<double> sc(3);
  rkcuda::PreferenceLossArgs a;
  a.in.pairs = P;
  a.in.chosen = w.p, a.in.rejected = l.p, a.in.ref_chosen = rw.p, a.in.ref_rejected = rl.p;
  a.losses = o1.p, a.chosen_rewards = o2.p, a.rejected_rewards = o3.p, a.grad_chosen = o4.p, a.grad_rejected = o5.p;
  a.scalars = sc.p;
  const double ms = median_ms([&] { die_on(rkcuda::preference_loss(a, st), "preference_loss"); }, 20, st);
  bench_line("preferenceLoss sigmoid (1M pairs)", ms, static_cast<double>(P) * 36);
}

void bench_advantages(cudaStream_t st) {
  const int64_t n = 1 << 20, gs = 16;
  Dev<float> dr(gauss_vec(n, 3, 1.0f, 0.0f)), adv(n), gm(n / gs), gsd(n / gs);
  Dev<long long> z(1);
  rkcuda::GroupAdvantagesDeviceArgs a;
  a.a.rewards = dr.p;
  a.a.n = n;
  a.a.group_size = gs;
  a.advantages = adv.p, a.group_mean = gm.p, a.group_std = gsd.p, a.zero_std_groups = z.p;
  const double ms = median_ms([&] { die_on(rkcuda::group_advantages(a, st), "group_advantages"); }, 20, st);
  bench_line("groupAdvantages grpo (1M, groups of 16)", ms, static_cast<double>(n) * 8);
}

void bench_divergence(int64_t n, int64_t v, double copy_gbs, cudaStream_t st) {
  const int dtype = rkcuda::kBF16;
  const size_t nv = static_cast<size_t>(n * v);
  Dev<uint8_t> dz(nv * 2), dt(nv * 2);
  Dev<float> ddiv(n), dgrad(nv);
  die_on(rkcuda::fill_random(dz.p, dtype, static_cast<int64_t>(nv), 4321, 0.0f, 2.0f, st), "fill logits");
  die_on(rkcuda::fill_random(dt.p, dtype, static_cast<int64_t>(nv), 8765, 0.0f, 2.0f, st), "fill target");
  CK(cudaStreamSynchronize(st));
  const double in = 2.0 * static_cast<double>(nv) * 2, out = static_cast<double>(nv) * 4;
  std::printf("divergence: bf16 logits + target %lld x %lld (%.2f GB both), splits %d; GB/s = both "
              "tensors once (+ the f32 gradient written)\n",
              static_cast<long long>(n), static_cast<long long>(v), in / 1e9,
              rkcuda::divergence_row_splits(n, v));
  struct Row {
    std::string name;
    double ms, gbs;
    int reads;
  };
  std::vector<Row> rows;
  const int kinds[] = {rkcuda::kForwardKL, rkcuda::kReverseKL, rkcuda::kJSD};
  for (int kind : kinds) {
    rkcuda::DivergenceArgs a;
    a.logits = dz.p;
    a.target = dt.p;
    a.dtype = dtype;
    a.rows = n;
    a.vocab = v;
    a.kind = kind;
    a.div = ddiv.p;
    const std::string kn = kind == rkcuda::kForwardKL ? "forward_kl" : kind == rkcuda::kReverseKL ? "reverse_kl" : "jsd";
    const int fwd_reads = kind == rkcuda::kJSD ? 2 : 1;
    double ms = median_ms([&] { die_on(rkcuda::vocab_divergence(a, st), "divergence"); }, 10, st);
    rows.push_back(Row{"div " + kn + " forward bf16", ms, in / ms / 1e6, fwd_reads});
    a.grad = dgrad.p;
    ms = median_ms([&] { die_on(rkcuda::vocab_divergence(a, st), "divergence+grad"); }, 10, st);
    rows.push_back(Row{"div " + kn + " forward+grad bf16", ms, (in + out) / ms / 1e6, fwd_reads + 1});
    std::printf("  %-34s %8.3f ms %8.1f GB/s\n", rows[rows.size() - 2].name.c_str(), rows[rows.size() - 2].ms, rows[rows.size() - 2].gbs);
    std::printf("  %-34s %8.3f ms %8.1f GB/s\n", rows.back().name.c_str(), rows.back().ms, rows.back().gbs);
    std::fflush(stdout);
  }
  std::vector<float> d(n);
  CK(cudaMemcpy(d.data(), ddiv.p, n * 4, cudaMemcpyDeviceToHost));
  int64_t weird = 0;
  for (int64_t i = 0; i < n; ++i) weird += !(d[i] >= 0.0f) || !std::isfinite(d[i]);
  if (weird) std::printf("  WARNING: %lld rows with a negative or non-finite divergence\n", static_cast<long long>(weird));
  for (const Row& r : rows) std::printf("RESULT|rk %s|%.4f|%.1f\n", r.name.c_str(), r.ms, r.gbs);
  std::printf("%-36s %9s %9s %8s %s\n", "divergence kernel", "ms", "GB/s", "% copy", "reads of both rows");
  for (const Row& r : rows)
    std::printf("%-36s %9.3f %9.1f %7.1f%% %d\n", r.name.c_str(), r.ms, r.gbs, 100.0 * r.gbs / copy_gbs, r.reads);
}


}  // namespace


int cuda_bench(int argc, char** argv) {
  if (device_or_explain() == 0) return 0;
  const int64_t n = argc > 2 ? std::atoll(argv[2]) : 8192;
  const int64_t v = argc > 3 ? std::atoll(argv[3]) : 151936;
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  std::vector<Row> rows;
  double copy_gbs = 0, read_gbs = 0;
  {
    // 2 GiB (RK_CUDA_BENCH_COPY_BYTES overrides, e.g. for a smoke run under the emulation)
    const char* cb = std::getenv("RK_CUDA_BENCH_COPY_BYTES");
    const size_t bytes = cb ? static_cast<size_t>(std::atoll(cb)) / 16 * 16 : size_t(2) << 30;
    Dev<uint8_t> a(bytes), b(bytes);
    Dev<unsigned> sink(1);
    CK(cudaMemsetAsync(a.p, 1, bytes, st));
    const auto copy = [&] { CK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice, st)); };
    const auto read = [&] { die_on(rkcuda::read_pass(a.p, static_cast<int64_t>(bytes), sink.p, st), "read_pass"); };
    double best_copy = 1e30, best_read = 1e30;
    for (int i = 0; i < 3; ++i) {
      best_copy = std::min(best_copy, median_ms(copy, 5, st));
      best_read = std::min(best_read, median_ms(read, 5, st));
    }
    copy_gbs = 2.0 * bytes / best_copy / 1e6;
    read_gbs = 1.0 * bytes / best_read / 1e6;
    std::printf("cudaMemcpy D2D of %.2f GB: best %.3f ms = %.1f GB/s read + written (%.1f GB/s read)\n",
                bytes / 1e9, best_copy, copy_gbs, copy_gbs / 2);
    std::printf("read-only pass over %.2f GB: best %.3f ms = %.1f GB/s\n", bytes / 1e9, best_read, read_gbs);
    std::printf("RESULT|copy bandwidth (read+write)|%.4f|%.1f\n", best_copy, copy_gbs);
  }
  bench_dtype(rkcuda::kBF16, n, v, false, rows, st);
  {  // f32 at the same shape when it fits (logits + grad), else fewer rows
    size_t free_b = 0, total_b = 0;
    CK(cudaMemGetInfo(&free_b, &total_b));
    int64_t nf = n;
    while (nf > 1 && static_cast<double>(nf) * v * 8 > 0.85 * free_b) nf /= 2;
    bench_dtype(rkcuda::kF32, nf, v, nf != n, rows, st);
  }
  bench_divergence(n, v, copy_gbs, st);
  bench_policy(st);
  bench_preference(st);
  bench_advantages(st);
  CK(cudaStreamDestroy(st));
  for (const Row& r : rows) std::printf("RESULT|rk %s|%.4f|%.1f\n", r.name.c_str(), r.ms, r.gbs);
  std::printf("\ncopy bandwidth (D2D, read+written) %.1f GB/s; read-only pass %.1f GB/s; GB/s of a "
              "kernel = bytes it must read + write\n", copy_gbs, read_gbs);
  std::printf("%-42s %9s %9s %9s\n", "kernel", "ms", "GB/s", "% copy");
  for (const Row& r : rows)
    std::printf("%-42s %9.3f %9.1f %8.1f%%\n", r.name.c_str(), r.ms, r.gbs, 100.0 * r.gbs / copy_gbs);
  return 0;
}

}  // namespace rkdriver
#endif  // RK_WITH_CUDA
