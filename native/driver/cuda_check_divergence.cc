// rk_driver cuda-check / cuda-bench: the CUDA vocabulary divergences (cuda/divergence.cu) against the
// CPU kernel (native/kernels/divergence.cc), and their timings against the card's copy bandwidth.
// Compiled only when CMake found nvcc (RK_WITH_CUDA); plain C++ on the CUDA runtime API. Every CUDA
// call is checked; an unexpected CUDA error ends the run with exit 1.
#if defined(RK_WITH_CUDA)
#include "cuda_check_divergence.h"
#include "cuda_check_common.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../../cuda/bench_util.h"
#include "../../cuda/divergence.h"
#include "../kernels/divergence.h"
#include "../kernels/threadpool.h"

namespace rkdriver {
namespace {




using rng::mix64;
using rng::normal;
using rng::to_bf16;
using rng::to_f16;
using rng::unif;
const char* kind_name(int k) { return k == rkcuda::kForwardKL ? "fkl" : k == rkcuda::kReverseKL ? "rkl" : "jsd"; }


struct Case {
  const char* what;
  int dtype;
  int64_t n, v;
  float tau;
  double beta;      // of the jsd runs
  float mean, sd;   // student logits = mean + sd * normal
  float tmean;      // target logits = tmean + 0.8 * (student - mean) + 0.6 sd * normal
  double ninf;      // share of -inf logits (the same entries in both rows)
  double drop;      // share of rows masked out (half by row_mask, half by labels = ignore_index)
  bool edges;       // rows 1-5: mostly -inf, q = 0 < p, p = 0 < q, all -inf, a NaN logit
  int soff, toff, goff;  // logits / target / grad start this many elements past 256 bytes
  uint64_t seed;
  bool extra_beta;  // also jsd with beta 0 and 1 (exactly forward / reverse kl)
};

struct HostCase {
  std::vector<uint8_t> z, zt;  // dtype-encoded
  std::vector<uint8_t> mask;   // GPU row mask
  std::vector<int32_t> labels;
  std::vector<uint8_t> cpu_mask;  // mask and labels combined, for the CPU kernel
  std::vector<float> grow;     // dL/dD per row
};

constexpr int32_t kIgnore = -100;

HostCase make_case(const Case& c) {
  HostCase hc;
  const int es = c.dtype == rkcuda::kF32 ? 4 : 2;
  const int64_t n = c.n, v = c.v;
  hc.z.resize(static_cast<size_t>(n * v) * es);
  hc.zt.resize(static_cast<size_t>(n * v) * es);
  hc.mask.assign(n, 1);
  hc.labels.resize(n);
  hc.cpu_mask.assign(n, 1);
  hc.grow.resize(n);
  for (int64_t r = 0; r < n; ++r) {
    hc.labels[r] = static_cast<int32_t>(mix64(c.seed + 1000 * r + 17) % static_cast<uint64_t>(v));
    const double u = unif(c.seed + 3, r);
    const bool special = c.edges && r >= 1 && r <= 5;
    if (r > 0 && !special && u < c.drop / 2) hc.mask[r] = 0;
    if (r > 0 && !special && u >= c.drop / 2 && u < c.drop) hc.labels[r] = kIgnore;
    hc.cpu_mask[r] = hc.mask[r] != 0 && hc.labels[r] != kIgnore;
    hc.grow[r] = normal(c.seed + 5, r);
  }
  const float ninf = -std::numeric_limits<float>::infinity();
  rk::parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      for (int64_t j = 0; j < v; ++j) {
        const uint64_t i = static_cast<uint64_t>(r * v + j);
        const float base = c.sd * normal(c.seed, i);
        float x = c.mean + base;
        float y = c.tmean + 0.8f * base + 0.6f * c.sd * normal(c.seed + 1, i);
        if (c.ninf > 0 && unif(c.seed + 11, i) < c.ninf && j != 0) x = y = ninf;
        if (c.edges) {
          if (r == 1 && j != 0 && j != v / 2) x = y = ninf;       // two entries left
          if (r == 2 && j % 7 == 3) y = ninf;                      // q = 0 < p: reverse_kl inf
          if (r == 3 && j % 5 == 1) x = ninf;                      // p = 0 < q: forward_kl inf
          if (r == 4) x = y = ninf;                                // no distribution: NaN
          if (r == 5 && j == v / 3) x = std::numeric_limits<float>::quiet_NaN();
        }
        if (c.dtype == rkcuda::kF32) {
          std::memcpy(hc.z.data() + i * 4, &x, 4);
          std::memcpy(hc.zt.data() + i * 4, &y, 4);
        } else {
          const uint16_t bx = c.dtype == rkcuda::kBF16 ? to_bf16(x) : to_f16(x);
          const uint16_t by = c.dtype == rkcuda::kBF16 ? to_bf16(y) : to_f16(y);
          std::memcpy(hc.z.data() + i * 2, &bx, 2);
          std::memcpy(hc.zt.data() + i * 2, &by, 2);
        }
      }
    }
  });
  return hc;
}

// One line per case; returns true when every variant matched.
bool run_case(const Case& c) {
  const int64_t n = c.n, v = c.v;
  const size_t nv = static_cast<size_t>(n * v);
  const int es = c.dtype == rkcuda::kF32 ? 4 : 2;
  const double rtol = c.dtype == rkcuda::kF32 ? 1e-5 : 1e-3;
  // Absolute floors, from what the CPU kernel's own test allows against float64: the divergence
  // is a difference of O(1) log terms in f32 (2e-6 there, twice that here as both sides carry it);
  // gradient entries near 0 come from cancellation (p - q, log p - log q - D: 5e-6 of the row's
  // largest entry). The printed figure is the error over max(|ref|, floor / rtol); pass: <= rtol.
  const double div_atol = 4e-6, grad_atol_rel = 5e-6;
  const double gscale = 0.5;
  HostCase hc = make_case(c);
  const rk::LogitsView lv{hc.z.data(), static_cast<rk::DType>(c.dtype), n, v};
  const rk::LogitsView tv{hc.zt.data(), static_cast<rk::DType>(c.dtype), n, v};

  DBuf<uint8_t> dzbuf(nv * es + 256), dtbuf(nv * es + 256);
  uint8_t* dz = dzbuf.p + static_cast<size_t>(c.soff) * es;
  uint8_t* dt = dtbuf.p + static_cast<size_t>(c.toff) * es;
  CK(cudaMemcpy(dz, hc.z.data(), nv * es, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dt, hc.zt.data(), nv * es, cudaMemcpyHostToDevice));
  DBuf<uint8_t> dmask(n);
  dmask.up(hc.mask.data());
  DBuf<int32_t> dlab(n);
  dlab.up(hc.labels.data());
  DBuf<float> dgrow(n), ddiv(n), dgbuf(nv + 64);
  dgrow.up(hc.grow.data());
  float* dgrad = dgbuf.p + c.goff;

  struct Run {
    int kind;
    double beta;
  };
  std::vector<Run> runs = {{rkcuda::kForwardKL, c.beta}, {rkcuda::kReverseKL, c.beta}, {rkcuda::kJSD, c.beta}};
  if (c.extra_beta) {
    runs.push_back({rkcuda::kJSD, 0.0});
    runs.push_back({rkcuda::kJSD, 1.0});
  }
  std::vector<float> cdiv(n), cgrad(nv), cgrad1(nv), gdiv(n), gdiv2(n), ggrad(nv), ggrad2(nv);
  std::string line;
  bool all = true;
  char buf[200];
  for (const Run& run : runs) {
    rk::DivergenceParams prm;
    prm.kind = static_cast<rk::DivergenceKind>(run.kind);
    prm.beta = run.beta;
    prm.temperature = static_cast<double>(c.tau);
    // CPU references: gradient with per-row dL/dD times 0.5, and with scale 1 only.
    rk::Status st = rk::vocab_divergence(lv, tv, hc.cpu_mask.data(), prm, cdiv.data(), gscale,
                                         hc.grow.data(), cgrad.data());
    if (!st.ok()) {
      std::printf("[FAIL] %s: CPU status %d\n", c.what, static_cast<int>(st.code));
      return false;
    }
    rk::vocab_divergence(lv, tv, hc.cpu_mask.data(), prm, cdiv.data(), 1.0, nullptr, cgrad1.data());

    rkcuda::DivergenceArgs a;
    a.logits = dz;
    a.target = dt;
    a.dtype = c.dtype;
    a.rows = n;
    a.vocab = v;
    a.kind = run.kind;
    a.beta = run.beta;
    a.temperature = c.tau;
    a.row_mask = dmask.p;
    a.labels = dlab.p;
    a.ignore_index = kIgnore;
    a.div = ddiv.p;

    // 1. forward only
    ddiv.poison();
    die_on(rkcuda::vocab_divergence(a, nullptr), "divergence forward");
    CK(cudaMemcpy(gdiv.data(), ddiv.p, n * 4, cudaMemcpyDeviceToHost));
    const Err ef = compare(gdiv.data(), cdiv.data(), n, 1, rtol, div_atol, 0);
    // 2. forward + gradient with per-row dL/dD
    a.grad = dgrad;
    a.grad_scale = gscale;
    a.grad_rows = dgrow.p;
    ddiv.poison();
    dgbuf.poison();
    die_on(rkcuda::vocab_divergence(a, nullptr), "divergence forward+grad");
    CK(cudaMemcpy(gdiv.data(), ddiv.p, n * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(ggrad.data(), dgrad, nv * 4, cudaMemcpyDeviceToHost));
    const Err eg = worse(compare(gdiv.data(), cdiv.data(), n, 1, rtol, div_atol, 0),
                         compare(ggrad.data(), cgrad.data(), n, v, rtol, 0, grad_atol_rel));
    // 3. the same again: bit-identical
    ddiv.poison();
    dgbuf.poison();
    die_on(rkcuda::vocab_divergence(a, nullptr), "divergence forward+grad (repeat)");
    CK(cudaMemcpy(gdiv2.data(), ddiv.p, n * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(ggrad2.data(), dgrad, nv * 4, cudaMemcpyDeviceToHost));
    const bool det = std::memcmp(gdiv.data(), gdiv2.data(), n * 4) == 0 &&
                     std::memcmp(ggrad.data(), ggrad2.data(), nv * 4) == 0;
    // 4. gradient with a scalar dL/dD only; f32: in place over a copy of the logits
    a.grad_scale = 1.0;
    a.grad_rows = nullptr;
    ddiv.poison();
    dgbuf.poison();
    if (c.dtype == rkcuda::kF32) {
      CK(cudaMemcpy(dgrad, dz, nv * 4, cudaMemcpyDeviceToDevice));
      a.logits = dgrad;
    }
    die_on(rkcuda::vocab_divergence(a, nullptr), "divergence grad (scalar / in place)");
    CK(cudaMemcpy(gdiv.data(), ddiv.p, n * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(ggrad.data(), dgrad, nv * 4, cudaMemcpyDeviceToHost));
    const Err ei = worse(compare(gdiv.data(), cdiv.data(), n, 1, rtol, div_atol, 0),
                         compare(ggrad.data(), cgrad1.data(), n, v, rtol, 0, grad_atol_rel));
    const bool ok = ef.ok && eg.ok && det && ei.ok;
    all = all && ok;
    std::snprintf(buf, sizeof buf, " %s%s fwd %.0e grad %.0e %s %s %.0e%s |", kind_name(run.kind),
                  run.kind == rkcuda::kJSD ? (run.beta == 0 ? "(b=0)" : run.beta == 1 ? "(b=1)" : "") : "",
                  ef.worst, eg.worst, det ? "det" : "DET-DIFFERS",
                  c.dtype == rkcuda::kF32 ? "in-place" : "g-scalar", ei.worst, ok ? "" : "(!)");
    line += buf;
  }
  CK(cudaDeviceSynchronize());
  std::printf("[%s] div %-20s %-4s N=%-5lld V=%-6lld tau=%.2g b=%.2g splits=%d |%s\n",
              all ? " ok " : "FAIL", c.what, dtype_name(c.dtype), static_cast<long long>(n),
              static_cast<long long>(v), c.tau, c.beta, rkcuda::divergence_row_splits(n, v), line.c_str());
  std::fflush(stdout);
  return all;
}

// Bad arguments are reported, not used; N = 0 is a no-op.
bool run_bad_args() {
  const int64_t n = 3, v = 17;
  DBuf<float> z(n * v), t(n * v), d(n), g(n * v);
  rkcuda::DivergenceArgs a;
  a.logits = z.p;
  a.target = t.p;
  a.rows = n;
  a.vocab = v;
  a.div = d.p;
  std::string why;
  auto expect_bad = [&](rkcuda::DivergenceArgs b, const char* label) {
    const rkcuda::Result r = rkcuda::vocab_divergence(b, nullptr);
    if (r.code != rkcuda::kBadArgument) why += std::string(" ") + label + " accepted;";
  };
  rkcuda::DivergenceArgs b = a;
  b.temperature = 0.0f;
  expect_bad(b, "temperature 0");
  b = a;
  b.beta = 1.5;
  expect_bad(b, "beta 1.5");
  b = a;
  b.kind = 7;
  expect_bad(b, "kind 7");
  b = a;
  b.vocab = 0;
  expect_bad(b, "vocab 0");
  b = a;
  b.logits = reinterpret_cast<const uint8_t*>(z.p) + 1;
  expect_bad(b, "misaligned logits");
  b = a;
  b.grad = t.p;
  expect_bad(b, "grad over target");
  b = a;
  b.grad = z.p + 1;
  expect_bad(b, "grad partly over logits");
  b = a;
  b.dtype = rkcuda::kBF16;
  b.grad = z.p;
  expect_bad(b, "grad over bf16 logits");
  b = a;
  b.div = nullptr;
  expect_bad(b, "div null");
  b = a;
  b.rows = 0;
  b.div = nullptr;
  if (!rkcuda::vocab_divergence(b, nullptr).ok()) why += " N=0 refused;";
  CK(cudaDeviceSynchronize());
  const bool ok = why.empty();
  std::printf("[%s] div %-20s |%s\n", ok ? " ok " : "FAIL", "bad arguments", ok ? " all reported" : why.c_str());
  return ok;
}

}  // namespace

int cuda_check_divergence(int64_t max_elems) {
  using rkcuda::kBF16;
  using rkcuda::kF16;
  using rkcuda::kF32;
  const float kNoMean = 0.0f;
  // what, dtype, n, v, tau, beta, mean, sd, tmean, ninf, drop, edges, soff, toff, goff, seed, extra_beta
  const Case cases[] = {
      {"V=1", kF32, 4, 1, 1.0f, 0.5, kNoMean, 3, 0, 0, 0, false, 0, 0, 0, 1, false},
      {"V=1 masked", kBF16, 4, 1, 0.7f, 0.5, kNoMean, 3, 0, 0, 0.5, false, 0, 0, 0, 2, false},
      {"V=17 edges", kF32, 8, 17, 0.7f, 0.5, kNoMean, 3, 0, 0.1, 0.3, true, 0, 0, 0, 3, true},
      {"V=17 edges", kBF16, 8, 17, 1.3f, 0.3, kNoMean, 3, 0, 0.1, 0.3, true, 0, 0, 0, 4, false},
      {"V=17 edges offset", kF16, 8, 17, 1.0f, 0.7, kNoMean, 3, 0, 0.1, 0.3, true, 1, 3, 1, 5, false},
      {"V=1031 -inf", kF32, 5, 1031, 0.7f, 0.5, kNoMean, 3, 0, 0.1, 0.2, false, 0, 0, 0, 6, false},
      {"V=1031 -inf", kBF16, 5, 1031, 1.0f, 0.1, kNoMean, 3, 0, 0.1, 0.2, false, 0, 0, 0, 7, false},
      {"V=1031 -inf", kF16, 5, 1031, 2.0f, 0.9, kNoMean, 3, 0, 0.1, 0.2, false, 0, 0, 0, 8, false},
      {"V=1031 offset", kF32, 37, 1031, 1.0f, 0.5, kNoMean, 3, 0, 0, 0.1, false, 1, 1, 3, 9, false},
      {"V=1031 phases differ", kF32, 37, 1031, 1.0f, 0.5, kNoMean, 3, 0, 0, 0.1, false, 1, 2, 0, 10, false},
      {"V=1031 phases differ", kBF16, 37, 1031, 0.7f, 0.5, kNoMean, 3, 0, 0, 0.1, false, 0, 3, 1, 11, false},
      {"V=1031 many rows", kBF16, 300, 1031, 1.3f, 0.5, kNoMean, 3, 0, 0, 0.1, true, 0, 0, 0, 12, false},
      {"V=32000", kF32, 2, 32000, 1.0f, 0.5, kNoMean, 3, 0, 0, 0, false, 0, 0, 0, 13, false},
      {"V=32000", kBF16, 2, 32000, 0.7f, 0.5, kNoMean, 3, 0, 0, 0, false, 0, 0, 0, 14, false},
      {"V=32768 split", kF32, 1, 32768, 1.0f, 0.5, kNoMean, 3, 0, 0.05, 0, false, 1, 1, 1, 15, false},
      {"V=32000 -inf", kF16, 257, 32000, 1.0f, 0.5, kNoMean, 3, 0, 0.05, 0.1, true, 0, 0, 0, 16, false},
      {"V=32000 rows>=1024", kBF16, 1100, 32000, 1.0f, 0.5, kNoMean, 3, 0, 0, 0.05, false, 0, 0, 0, 17, false},
      {"V=151936 N=1", kF32, 1, 151936, 1.0f, 0.5, kNoMean, 3, 0, 0, 0, false, 0, 0, 0, 18, false},
      {"V=151936 N=1", kBF16, 1, 151936, 0.7f, 0.5, kNoMean, 3, 0, 0, 0, false, 0, 0, 0, 19, false},
      {"V=151936 N=1", kF16, 1, 151936, 2.0f, 0.5, kNoMean, 3, 0, 0, 0, false, 1, 1, 1, 20, false},
      {"V=151936 split -inf", kF32, 300, 151936, 0.7f, 0.5, kNoMean, 3, 0, 0.02, 0.1, true, 0, 0, 0, 21, false},
      {"V=151936 split", kBF16, 300, 151936, 1.0f, 0.5, kNoMean, 3, 0, 0, 0.1, false, 0, 0, 0, 22, false},
      {"magnitude 1e4, -1e4", kF32, 64, 32000, 1.0f, 0.5, 1e4f, 3, -1e4f, 0, 0.1, false, 0, 0, 0, 23, false},
      {"magnitude 1e4, -1e4", kBF16, 64, 32000, 1.0f, 0.5, 1e4f, 3, -1e4f, 0, 0.1, false, 0, 0, 0, 24, false},
      {"magnitude 1e4, -1e4", kF16, 64, 32000, 0.7f, 0.5, 1e4f, 3, -1e4f, 0, 0.1, false, 0, 0, 0, 25, false},
      {"magnitude N(0,1e4)", kF32, 16, 1031, 1.0f, 0.5, kNoMean, 1e4f, 0, 0, 0, false, 0, 0, 0, 26, false},
      {"magnitude N(0,1e4) spl", kF32, 2, 151936, 0.7f, 0.5, kNoMean, 1e4f, 0, 0, 0, false, 0, 0, 0, 27, false},
  };
  int passed = 0, failed = 0, skipped = 0;
  for (const Case& c : cases) {
    if (c.n * c.v > max_elems) {
      ++skipped;
      continue;
    }
    (run_case(c) ? passed : failed)++;
  }
  (run_bad_args() ? passed : failed)++;
  if (skipped) std::printf("(divergence: %d larger cases skipped)\n", skipped);
  std::printf("divergence: %d passed, %d failed\n", passed, failed);
  return failed;
}

// ---------------------------------------------------------------------------------------------
namespace {

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

}  // namespace

void cuda_bench_divergence(int64_t n, int64_t v, double copy_gbs, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int dtype = rkcuda::kBF16;
  const size_t nv = static_cast<size_t>(n * v);
  DBuf<uint8_t> dz(nv * 2), dt(nv * 2);
  DBuf<float> ddiv(n), dgrad(nv);
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

}  // namespace rkdriver
#endif  // RK_WITH_CUDA
