// rk_driver: checks and times the native kernels without Node.
//   rk_driver check            every SIMD level against a float64 reference; exit 1 on a mismatch
//   rk_driver bench [N V]      forward / forward+entropy / backward timings and the read bandwidth
//   rk_driver devices          the CUDA devices this build sees
//   rk_driver cuda-check       every op's CUDA kernel against its CPU kernel (parity.cc); exit 1 on a
//                              mismatch, 0 with a "no CUDA device" line when there is no GPU
//   rk_driver cuda-bench [N V] copy bandwidth, then the CUDA kernels' timings (8192 x 151936)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core_check.h"
#include "cpu.h"
#include "logprobs.h"
#include "probe.h"
#include "threadpool.h"
#if defined(RK_WITH_CUDA)
#include "cuda_driver.h"
#include "device.h"
#endif

int core_check_preference();  // core_check_preference.cc

namespace {

struct Ref {
  std::vector<double> logp, lse, h;
};

Ref reference(const std::vector<float>& z, int64_t n, int64_t v, const std::vector<int32_t>& y, double tau) {
  Ref r;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = &z[i * v];
    double m = -INFINITY;
    for (int64_t j = 0; j < v; ++j) m = std::max(m, row[j] / tau);
    double s = 0, sz = 0;
    for (int64_t j = 0; j < v; ++j) {
      double e = std::exp(row[j] / tau - m);
      s += e;
      if (e > 0) sz += e * (row[j] / tau - m);
    }
    double lse = m + std::log(s);
    r.lse.push_back(lse);
    r.logp.push_back(row[y[i]] / tau - lse);
    r.h.push_back(std::log(s) - sz / s);
  }
  return r;
}

int check() {
  int bad = 0;
  std::mt19937 rng(7);
  const int64_t shapes[][2] = {{1, 1}, {3, 17}, {5, 1031}, {2, 4096}, {4, 4097}, {2, 32000}, {1, 151936}};
  const rk::Isa levels[] = {rk::Isa::Scalar, rk::Isa::Avx2, rk::Isa::Avx512};
  for (auto& sh : shapes) {
    const int64_t n = sh[0], v = sh[1];
    std::normal_distribution<float> nd(0.0f, 3.0f);
    std::vector<float> z(n * v);
    for (auto& x : z) x = nd(rng);
    std::vector<int32_t> y(n);
    for (auto& t : y) t = static_cast<int32_t>(rng() % v);
    const double tau = 0.7;
    Ref ref = reference(z, n, v, y, tau);
    for (rk::Isa isa : levels) {
      if (!rk::set_isa(isa)) continue;
      std::vector<float> lp(n), lse(n), h(n), g(n * v);
      rk::LogitsView lv{z.data(), rk::DType::F32, n, v};
      rk::token_logprobs_forward(lv, y.data(), tau, -100, lp.data(), lse.data(), h.data());
      std::vector<float> go(n, 1.0f);
      rk::token_logprobs_backward(lv, y.data(), tau, -100, go.data(), nullptr, nullptr, nullptr, g.data());
      double err = 0, gsum = 0;
      for (int64_t i = 0; i < n; ++i) {
        err = std::max(err, std::fabs(lp[i] - ref.logp[i]) / std::max(1.0, std::fabs(ref.logp[i])));
        err = std::max(err, std::fabs(h[i] - ref.h[i]) / std::max(1.0, std::fabs(ref.h[i])));
        for (int64_t j = 0; j < v; ++j) gsum += g[i * v + j];  // each row sums to 0
      }
      const bool ok = err < 1e-5 && std::fabs(gsum) < 1e-4 * n;
      std::printf("%-7s N=%-3lld V=%-7lld max rel err %.2e  grad row-sum %.1e  %s\n", rk::isa_name(isa),
                  (long long)n, (long long)v, err, gsum, ok ? "ok" : "FAIL");
      bad += !ok;
    }
    rk::set_isa(rk::detected_isa());
  }
  std::printf("%d passed, %d failed\n", 7 * 3 - bad, bad);
  bad += rkdriver::core_check_policy() + rkdriver::core_check_advantages() + rkdriver::core_check_drakes() + rkdriver::pool_check();
  return bad ? 1 : 0;
}

template <class F>
double median_ms(F f, int reps) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int bench(int64_t n, int64_t v) {
  std::vector<float> z(n * v);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  for (auto& x : z) x = nd(rng);
  std::vector<int32_t> y(n);
  for (auto& t : y) t = static_cast<int32_t>(rng() % v);
  std::vector<float> lp(n), lse(n), h(n), go(n, 1.0f), g(n * v);
  rk::LogitsView lv{z.data(), rk::DType::F32, n, v};
  const double bw = rk::read_bandwidth_gbs(512u << 20, 5);
  const double bytes = 4.0 * n * v;
  auto row = [&](const char* name, double ms) {
    std::printf("%-22s %9.2f ms  %7.2f GB/s  %5.1f%% of read bw  %6.2f Gelem/s\n", name, ms,
                bytes / ms / 1e6, 100.0 * bytes / ms / 1e6 / bw, n * v / ms / 1e6);
  };
  std::printf("simd %s, threads %d, read bandwidth %.1f GB/s, N=%lld V=%lld f32\n",
              rk::isa_name(rk::active_isa()), rk::get_num_threads(), bw, (long long)n, (long long)v);
  row("forward", median_ms([&] { rk::token_logprobs_forward(lv, y.data(), 1.0f, -100, lp.data(), lse.data(), nullptr); }, 7));
  row("forward+entropy", median_ms([&] { rk::token_logprobs_forward(lv, y.data(), 1.0f, -100, lp.data(), lse.data(), h.data()); }, 7));
  row("backward (lse given)", median_ms([&] { rk::token_logprobs_backward(lv, y.data(), 1.0f, -100, go.data(), nullptr, lse.data(), nullptr, g.data()); }, 7));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "check";
  if (cmd == "devices") {
#if defined(RK_WITH_CUDA)
    const int nd = rkcuda::device_count();
    std::printf("CUDA devices: %d\n", nd);
    for (int i = 0; i < nd; ++i) {
      char name[256];
      if (rkcuda::device_name(i, name, sizeof name)) std::printf("  %d: %s\n", i, name);
    }
#else
    std::printf("built without CUDA\n");
#endif
    return 0;
  }
  if (cmd == "check") return check() | core_check_preference();
  if (cmd == "cuda-check" || cmd == "cuda-bench") {
#if defined(RK_WITH_CUDA)
    return cmd == "cuda-check" ? rkdriver::cuda_check() : rkdriver::cuda_bench(argc, argv);
#else
    std::printf("built without CUDA (no nvcc at configure time): nothing to %s\n", cmd.c_str() + 5);
    return 0;
#endif
  }
  if (cmd == "bench") {
    int64_t n = argc > 2 ? std::atoll(argv[2]) : 1024, v = argc > 3 ? std::atoll(argv[3]) : 151936;
    return bench(n, v);
  }
  std::fprintf(stderr, "usage: rk_driver check | bench [N V] | devices | cuda-check | cuda-bench [N V]\n");
  return 2;
}
