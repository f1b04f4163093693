// rk_driver cuda-check / cuda-bench: the CUDA log-prob kernels (cuda/logprobs.cu) against the CPU
// kernels (native/kernels/logprobs.cc), and their timings against the card's copy bandwidth.
// Compiled only when CMake found nvcc (RK_WITH_CUDA); this file itself is plain C++ on the CUDA
// runtime API. Every CUDA call is checked; an unexpected CUDA error ends the run with exit 1.
#if defined(RK_WITH_CUDA)
#include "cuda_check_common.h"
#include "cuda_driver.h"

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
#include "../../cuda/logprobs.h"
#include "cuda_check_divergence.h"
#include "../kernels/logprobs.h"
#include "../kernels/threadpool.h"

namespace rkdriver {
namespace {



// 0 when there is no usable device; prints why.
int device_or_explain() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    std::printf("no CUDA device (%s): nothing to check on this machine; the CUDA kernels are "
                "checked by scripts/gpu-check.sh on a GPU machine\n",
                e != cudaSuccess ? cudaGetErrorName(e) : "0 devices");
    cudaGetLastError();
    return 0;
  }
  cudaDeviceProp p;
  CK(cudaGetDeviceProperties(&p, 0));
  std::printf("device 0: %s, %d SMs, %.1f GiB, compute %d.%d\n", p.name, p.multiProcessorCount,
              p.totalGlobalMem / 1073741824.0, p.major, p.minor);
  return n;
}


using rng::mix64;
using rng::normal;
using rng::to_bf16;
using rng::to_f16;
using rng::unif;



struct Case {
  const char* what;
  int dtype;
  int64_t n, v;
  float tau;
  float mean, sd;   // logits = mean + sd * normal
  double ninf;      // share of -inf logits (never at the target)
  double ignore;    // share of ignored rows
  int offset;       // logits start this many elements after a 256-byte boundary; grad too
  uint64_t seed;
};

struct HostCase {
  std::vector<uint8_t> z;  // logits, dtype-encoded
  std::vector<int32_t> y;
  std::vector<float> g, h;
};

HostCase make_case(const Case& c, int32_t ignore_index) {
  HostCase hc;
  const int es = c.dtype == rkcuda::kF32 ? 4 : 2;
  const int64_t n = c.n, v = c.v;
  hc.z.resize(static_cast<size_t>(n * v) * es);
  hc.y.resize(n);
  hc.g.resize(n);
  hc.h.resize(n);
  for (int64_t r = 0; r < n; ++r) {
    hc.y[r] = static_cast<int32_t>(mix64(c.seed + 1000 * r + 17) % static_cast<uint64_t>(v));
    if (r > 0 && unif(c.seed + 3, r) < c.ignore) hc.y[r] = ignore_index;
    hc.g[r] = normal(c.seed + 5, r);
    hc.h[r] = normal(c.seed + 7, r);
  }
  uint8_t* base = hc.z.data();
  rk::parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      // Row 1 of a case with -inf logits is all -inf except its target (and a neighbour).
      const bool inf_row = c.ninf > 0 && r == 1 && n > 1;
      const int32_t y = hc.y[r];
      for (int64_t j = 0; j < v; ++j) {
        const uint64_t i = static_cast<uint64_t>(r * v + j);
        float x = c.mean + c.sd * normal(c.seed, i);
        const bool keep = j == y || (inf_row && j == (y + 1) % v);
        if (!keep && (inf_row || (c.ninf > 0 && unif(c.seed + 11, i) < c.ninf)))
          x = -std::numeric_limits<float>::infinity();
        if (c.dtype == rkcuda::kF32) {
          std::memcpy(base + i * 4, &x, 4);
        } else {
          const uint16_t bits = c.dtype == rkcuda::kBF16 ? to_bf16(x) : to_f16(x);
          std::memcpy(base + i * 2, &bits, 2);
        }
      }
    }
  });
  return hc;
}

// One line per case; returns true when every variant matched.
bool run_case(const Case& c) {
  const int32_t ign = -100;
  const int64_t n = c.n, v = c.v;
  const size_t nv = static_cast<size_t>(n * v);
  const int es = c.dtype == rkcuda::kF32 ? 4 : 2;
  const double rtol = c.dtype == rkcuda::kF32 ? 1e-5 : 1e-3;
  const double fwd_atol = 1e-6, grad_atol_rel = 1e-6;
  HostCase hc = make_case(c, ign);
  const rk::LogitsView lv{hc.z.data(), static_cast<rk::DType>(c.dtype), n, v};

  // CPU references.
  std::vector<float> lp(n), lse(n), H(n), lp2(n), lse2(n);
  rk::Status st = rk::token_logprobs_forward(lv, hc.y.data(), c.tau, ign, lp.data(), lse.data(), H.data());
  if (!st.ok()) {
    std::printf("[FAIL] %s: CPU forward status %d\n", c.what, static_cast<int>(st.code));
    return false;
  }
  rk::token_logprobs_forward(lv, hc.y.data(), c.tau, ign, lp2.data(), lse2.data(), nullptr);
  std::vector<float> gref_full(nv), gref_g(nv), gref_reuse(nv), gout(nv);
  rk::token_logprobs_backward(lv, hc.y.data(), c.tau, ign, hc.g.data(), hc.h.data(), nullptr, nullptr, gref_full.data());
  rk::token_logprobs_backward(lv, hc.y.data(), c.tau, ign, hc.g.data(), nullptr, nullptr, nullptr, gref_g.data());
  rk::token_logprobs_backward(lv, hc.y.data(), c.tau, ign, hc.g.data(), hc.h.data(), lse.data(), H.data(), gref_reuse.data());

  // Device copies; logits and grad start `offset` elements past an aligned address.
  DBuf<uint8_t> dzbuf(nv * es + 256);
  uint8_t* dz = dzbuf.p + static_cast<size_t>(c.offset) * es;
  CK(cudaMemcpy(dz, hc.z.data(), nv * es, cudaMemcpyHostToDevice));
  DBuf<int32_t> dy(n);
  dy.up(hc.y.data());
  DBuf<float> dlp(n), dlse(n), dH(n), dg(n), dh(n), dlse_ref(n), dH_ref(n), dgbuf(nv + 64);
  float* dgrad = dgbuf.p + c.offset;
  dg.up(hc.g.data());
  dh.up(hc.h.data());
  dlse_ref.up(lse.data());
  dH_ref.up(H.data());
  std::vector<float> glp(n), glse(n), gH(n), glp_b(n), glse_b(n), gH_b(n);

  std::string line;
  bool all = true;
  char buf[160];
  auto note = [&](const char* name, const Err& e) {
    std::snprintf(buf, sizeof buf, " %s %.1e%s", name, e.worst, e.ok ? "" : "(!)");
    line += buf;
    all = all && e.ok;
  };

  // Forward with entropy.
  rkcuda::LogprobsForwardArgs fa;
  fa.logits = dz;
  fa.dtype = c.dtype;
  fa.rows = n;
  fa.vocab = v;
  fa.targets = dy.p;
  fa.temperature = c.tau;
  fa.ignore_index = ign;
  fa.logp = dlp.p;
  fa.lse = dlse.p;
  fa.entropy = dH.p;
  dlp.poison();
  dlse.poison();
  dH.poison();
  die_on(rkcuda::token_logprobs_forward(fa, nullptr), "forward");
  CK(cudaDeviceSynchronize());
  dlp.down(glp.data());
  dlse.down(glse.data());
  dH.down(gH.data());
  Err e = compare(glp.data(), lp.data(), n, 1, rtol, fwd_atol, 0);
  e = worse(e, compare(glse.data(), lse.data(), n, 1, rtol, fwd_atol, 0));
  note("fwd", e);
  note("H", compare(gH.data(), H.data(), n, 1, rtol, fwd_atol, 0));

  // Same again: bit-identical.
  dlp.poison();
  dH.poison();
  die_on(rkcuda::token_logprobs_forward(fa, nullptr), "forward (repeat)");
  dlp.down(glp_b.data());
  dH.down(gH_b.data());
  const bool det = std::memcmp(glp.data(), glp_b.data(), n * 4) == 0 && std::memcmp(gH.data(), gH_b.data(), n * 4) == 0;
  line += det ? " det ok" : " det DIFFERS(!)";
  all = all && det;

  // Forward without entropy, with a caller-owned bad-row slot (asynchronous form).
  DBuf<unsigned long long> slot(1);
  die_on(rkcuda::bad_row_reset(slot.p, nullptr), "bad_row_reset");
  fa.entropy = nullptr;
  fa.bad_row = slot.p;
  dlp.poison();
  dlse.poison();
  die_on(rkcuda::token_logprobs_forward(fa, nullptr), "forward (no entropy)");
  die_on(rkcuda::bad_row_read(slot.p, dy.p, nullptr), "bad_row_read");
  dlp.down(glp.data());
  dlse.down(glse.data());
  e = compare(glp.data(), lp2.data(), n, 1, rtol, fwd_atol, 0);
  note("fwd-noH", worse(e, compare(glse.data(), lse2.data(), n, 1, rtol, fwd_atol, 0)));

  // Backward: recomputed statistics with g and h; with g only; reusing lse and H.
  rkcuda::LogprobsBackwardArgs ba;
  ba.logits = dz;
  ba.dtype = c.dtype;
  ba.rows = n;
  ba.vocab = v;
  ba.targets = dy.p;
  ba.temperature = c.tau;
  ba.ignore_index = ign;
  ba.grad_logp = dg.p;
  ba.grad_entropy = dh.p;
  ba.grad = dgrad;
  dgbuf.poison();
  die_on(rkcuda::token_logprobs_backward(ba, nullptr), "backward");
  CK(cudaMemcpy(gout.data(), dgrad, nv * 4, cudaMemcpyDeviceToHost));
  note("bwd", compare(gout.data(), gref_full.data(), n, v, rtol, 0, grad_atol_rel));

  ba.grad_entropy = nullptr;
  dgbuf.poison();
  die_on(rkcuda::token_logprobs_backward(ba, nullptr), "backward (g only)");
  CK(cudaMemcpy(gout.data(), dgrad, nv * 4, cudaMemcpyDeviceToHost));
  note("bwd-g", compare(gout.data(), gref_g.data(), n, v, rtol, 0, grad_atol_rel));

  ba.grad_entropy = dh.p;
  ba.lse = dlse_ref.p;
  ba.entropy = dH_ref.p;
  ba.bad_row = slot.p;
  dgbuf.poison();
  die_on(rkcuda::token_logprobs_backward(ba, nullptr), "backward (lse, H given)");
  die_on(rkcuda::bad_row_read(slot.p, dy.p, nullptr), "bad_row_read");
  CK(cudaMemcpy(gout.data(), dgrad, nv * 4, cudaMemcpyDeviceToHost));
  note("bwd-reuse", compare(gout.data(), gref_reuse.data(), n, v, rtol, 0, grad_atol_rel));

  if (c.dtype == rkcuda::kF32) {  // in place over the logits
    dgbuf.poison();
    CK(cudaMemcpy(dgrad, dz, nv * 4, cudaMemcpyDeviceToDevice));
    ba.logits = dgrad;
    die_on(rkcuda::token_logprobs_backward(ba, nullptr), "backward (in place)");
    CK(cudaMemcpy(gout.data(), dgrad, nv * 4, cudaMemcpyDeviceToHost));
    note("in-place", compare(gout.data(), gref_reuse.data(), n, v, rtol, 0, grad_atol_rel));
  }
  CK(cudaDeviceSynchronize());
  std::printf("[%s] %-22s %-4s N=%-5lld V=%-6lld tau=%.2g splits=%d |%s\n", all ? " ok " : "FAIL",
              c.what, dtype_name(c.dtype), static_cast<long long>(n), static_cast<long long>(v),
              c.tau, rkcuda::logprobs_row_splits(n, v), line.c_str());
  std::fflush(stdout);
  return all;
}

// Bad targets: never read out of bounds, NaN rows, the lowest bad row reported; the good rows
// still match the CPU kernel (run with the bad rows ignored).
bool run_bad_targets(int dtype, int64_t n, int64_t v) {
  const int32_t ign = -100;
  Case c{"bad targets", dtype, n, v, 1.0f, 0.0f, 2.0f, 0.0, 0.0, 0, 99};
  HostCase hc = make_case(c, ign);
  const int64_t bad1 = n > 3 ? 3 : n - 1, bad2 = n > 7 ? 7 : -1;
  std::vector<int32_t> ycpu = hc.y;
  hc.y[bad1] = static_cast<int32_t>(v + 100);
  if (bad2 >= 0) hc.y[bad2] = -5;
  ycpu[bad1] = ign;
  if (bad2 >= 0) ycpu[bad2] = ign;
  const rk::LogitsView lv{hc.z.data(), static_cast<rk::DType>(dtype), n, v};
  std::vector<float> lp(n), lse(n), H(n), glp(n), glse(n), gH(n);
  rk::token_logprobs_forward(lv, ycpu.data(), 1.0f, ign, lp.data(), lse.data(), H.data());
  const size_t nv = static_cast<size_t>(n * v);
  std::vector<float> gref(nv), gout(nv);
  rk::token_logprobs_backward(lv, ycpu.data(), 1.0f, ign, hc.g.data(), nullptr, nullptr, nullptr, gref.data());
  const int es = dtype == rkcuda::kF32 ? 4 : 2;
  DBuf<uint8_t> dz(nv * es);
  dz.up(hc.z.data());
  DBuf<int32_t> dy(n);
  dy.up(hc.y.data());
  DBuf<float> dlp(n), dlse(n), dH(n), dg(n), dgrad(nv);
  DBuf<unsigned long long> slot(1);
  dg.up(hc.g.data());
  dlp.poison();
  dlse.poison();
  dH.poison();
  dgrad.poison();

  bool ok = true;
  std::string why;
  rkcuda::LogprobsForwardArgs fa;
  fa.logits = dz.p;
  fa.dtype = dtype;
  fa.rows = n;
  fa.vocab = v;
  fa.targets = dy.p;
  fa.logp = dlp.p;
  fa.lse = dlse.p;
  fa.entropy = dH.p;
  rkcuda::Result r = rkcuda::token_logprobs_forward(fa, nullptr);  // synchronous check
  char msg[256];
  rkcuda::format_error(r, msg, sizeof msg);
  if (r.code != rkcuda::kBadTarget || r.index != bad1 || r.value != v + 100) {
    ok = false;
    why += " forward result wrong;";
  }
  dlp.down(glp.data());
  dlse.down(glse.data());
  dH.down(gH.data());
  for (int64_t i = 0; i < n; ++i) {
    const bool is_bad = i == bad1 || i == bad2;
    if (is_bad != std::isnan(glp[i]) || is_bad != std::isnan(gH[i])) {
      ok = false;
      why += " forward NaN rows wrong;";
      break;
    }
    if (is_bad) glp[i] = lp[i] = glse[i] = lse[i] = 0.0f;
  }
  const double rtol = dtype == rkcuda::kF32 ? 1e-5 : 1e-3;
  if (!compare(glp.data(), lp.data(), n, 1, rtol, 1e-6, 0).ok ||
      !compare(glse.data(), lse.data(), n, 1, rtol, 1e-6, 0).ok) {
    ok = false;
    why += " good rows differ;";
  }
  // Backward, asynchronous slot.
  die_on(rkcuda::bad_row_reset(slot.p, nullptr), "bad_row_reset");
  rkcuda::LogprobsBackwardArgs ba;
  ba.logits = dz.p;
  ba.dtype = dtype;
  ba.rows = n;
  ba.vocab = v;
  ba.targets = dy.p;
  ba.grad_logp = dg.p;
  ba.grad = dgrad.p;
  ba.bad_row = slot.p;
  rkcuda::Result rb = rkcuda::token_logprobs_backward(ba, nullptr);
  if (!rb.ok()) {
    ok = false;
    why += " async backward should not report at launch;";
  }
  rb = rkcuda::bad_row_read(slot.p, dy.p, nullptr);
  if (rb.code != rkcuda::kBadTarget || rb.index != bad1) {
    ok = false;
    why += " backward slot wrong;";
  }
  dgrad.down(gout.data());
  for (int64_t i = 0; i < n; ++i) {
    const bool is_bad = i == bad1 || i == bad2;
    for (int64_t j = 0; j < v; ++j) {
      float& x = gout[i * v + j];
      if (is_bad != std::isnan(x)) {
        ok = false;
        why += " backward NaN rows wrong;";
        i = n;
        break;
      }
      if (is_bad) x = gref[i * v + j];
    }
  }
  if (!compare(gout.data(), gref.data(), n, v, rtol, 0, 1e-6).ok) {
    ok = false;
    why += " good gradient rows differ;";
  }
  // Argument errors.
  rkcuda::LogprobsForwardArgs fb = fa;
  fb.temperature = 0.0f;
  const rkcuda::Result r0 = rkcuda::token_logprobs_forward(fb, nullptr);
  if (r0.code != rkcuda::kBadArgument || std::strcmp(r0.where, "temperature") != 0) {
    ok = false;
    why += " temperature 0 accepted;";
  }
  fb = fa;
  fb.logits = static_cast<const uint8_t*>(fa.logits) + 1;
  if (rkcuda::token_logprobs_forward(fb, nullptr).code != rkcuda::kBadArgument) {
    ok = false;
    why += " misaligned logits accepted;";
  }
  CK(cudaDeviceSynchronize());
  std::printf("[%s] %-22s %-4s N=%-5lld V=%-6lld splits=%d | forward says \"%s\"%s\n",
              ok ? " ok " : "FAIL", "bad targets", dtype_name(dtype), static_cast<long long>(n),
              static_cast<long long>(v), rkcuda::logprobs_row_splits(n, v), msg, why.c_str());
  return ok;
}

}  // namespace

int cuda_check() {
  if (device_or_explain() == 0) return 0;
  using rkcuda::kBF16;
  using rkcuda::kF16;
  using rkcuda::kF32;
  const Case cases[] = {
      {"V=1", kF32, 4, 1, 1.0f, 0, 3, 0, 0, 0, 1},
      {"V=1 bf16", kBF16, 4, 1, 0.7f, 0, 3, 0, 0.3, 0, 2},
      {"V=17 -inf ignore", kF32, 5, 17, 0.7f, 0, 3, 0.1, 0.3, 0, 3},
      {"V=17 -inf", kBF16, 5, 17, 0.7f, 0, 3, 0.1, 0.3, 0, 4},
      {"V=17 offset", kF16, 5, 17, 1.3f, 0, 3, 0.1, 0.0, 1, 5},
      {"V=1031 -inf", kF32, 5, 1031, 0.7f, 0, 3, 0.1, 0.2, 0, 6},
      {"V=1031 -inf", kBF16, 5, 1031, 0.7f, 0, 3, 0.1, 0.2, 0, 7},
      {"V=1031 -inf", kF16, 5, 1031, 0.7f, 0, 3, 0.1, 0.2, 0, 8},
      {"V=1031 many rows", kBF16, 300, 1031, 1.3f, 0, 3, 0.0, 0.1, 0, 9},
      {"V=1031 offset", kF32, 300, 1031, 1.0f, 0, 3, 0.0, 0.1, 1, 10},
      {"V=1031 offset", kBF16, 37, 1031, 1.0f, 0, 3, 0.0, 0.1, 3, 11},
      {"V=32000", kF32, 2, 32000, 1.0f, 0, 3, 0, 0, 0, 12},
      {"V=32000", kBF16, 2, 32000, 0.7f, 0, 3, 0, 0, 0, 13},
      {"V=32000 -inf", kF16, 257, 32000, 1.0f, 0, 3, 0.05, 0.1, 0, 14},
      {"V=32000 rows>=1024", kBF16, 1100, 32000, 1.0f, 0, 3, 0, 0.05, 0, 15},
      {"V=151936 N=1", kF32, 1, 151936, 1.0f, 0, 3, 0, 0, 0, 16},
      {"V=151936 N=1", kBF16, 1, 151936, 0.7f, 0, 3, 0, 0, 0, 17},
      {"V=151936 N=1", kF16, 1, 151936, 2.0f, 0, 3, 0, 0, 0, 18},
      {"V=151936 split -inf", kF32, 300, 151936, 0.7f, 0, 3, 0.02, 0.1, 0, 19},
      {"V=151936 split", kBF16, 300, 151936, 1.0f, 0, 3, 0, 0.1, 0, 20},
      {"V=151936 rows>=1024", kBF16, 1024, 151936, 1.0f, 0, 3, 0, 0.05, 0, 21},
      {"magnitude 1e4+N(0,3)", kF32, 64, 32000, 1.0f, 1e4f, 3, 0, 0.1, 0, 22},
      {"magnitude 1e4+N(0,3)", kBF16, 64, 32000, 1.0f, 1e4f, 3, 0, 0.1, 0, 23},
      {"magnitude 1e4+N(0,3)", kF16, 64, 32000, 0.7f, 1e4f, 3, 0, 0.1, 0, 24},
      {"magnitude N(0,1e4)", kF32, 16, 1031, 1.0f, 0, 1e4f, 0, 0, 0, 25},
      {"magnitude N(0,1e4) spl", kF32, 2, 151936, 0.7f, 0, 1e4f, 0, 0, 0, 26},
  };
  // RK_CUDA_CHECK_MAX_ELEMS skips the larger cases (for the slow host emulation, cuda/emu).
  const char* lim = std::getenv("RK_CUDA_CHECK_MAX_ELEMS");
  const int64_t max_elems = lim ? std::atoll(lim) : std::numeric_limits<int64_t>::max();
  int passed = 0, failed = 0, skipped = 0;
  for (const Case& c : cases) {
    if (c.n * c.v > max_elems) {
      ++skipped;
      continue;
    }
    (run_case(c) ? passed : failed)++;
  }
  if (skipped) std::printf("(%d larger cases skipped: RK_CUDA_CHECK_MAX_ELEMS=%s)\n", skipped, lim);
  const int bad_dtypes[] = {kF32, kBF16, kF16};
  for (int dt : bad_dtypes) (run_bad_targets(dt, 12, 1031) ? passed : failed)++;
  if (2 * 151936 <= max_elems) (run_bad_targets(kBF16, 2, 151936) ? passed : failed)++;  // split path
  failed += cuda_check_divergence(max_elems);
  failed += cuda_check_policy(max_elems < 1000000);
  failed += cuda_check_preference(max_elems < 1000000);
  failed += cuda_check_advantages(max_elems < 1000000);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
namespace {

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
  DBuf<uint8_t> dz(nv * es);
  DBuf<int32_t> dy(n);
  DBuf<float> dlp(n), dlse(n), dH(n), dg(n), dh(n), dgrad(nv);
  DBuf<unsigned long long> slot(1);
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
  die_on(rkcuda::bad_row_read(slot.p, dy.p, st), "bad_row_read");
  // Sanity: the outputs are finite and logp <= 0.
  std::vector<float> lp(n), H(n);
  dlp.down(lp.data());
  dH.down(H.data());
  int64_t weird = 0;
  for (int64_t i = 0; i < n; ++i) weird += !(lp[i] <= 0.0f) || !std::isfinite(H[i]);
  if (weird) std::printf("  WARNING: %lld rows with logp > 0 or non-finite entropy\n", static_cast<long long>(weird));
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
    DBuf<uint8_t> a(bytes), b(bytes);
    DBuf<unsigned> sink(1);
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
  cuda_bench_divergence(n, v, copy_gbs, st);
  cuda_bench_policy(st);
  cuda_bench_preference(st);
  cuda_bench_advantages(st);
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
