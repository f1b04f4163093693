// Small shared helpers of the CUDA parity checks of the O(n) kernel families
// (cuda_check_policy.cc, cuda_check_preference.cc, cuda_check_advantages.cc): device buffers that
// can be poisoned with NaN, counter-based random numbers, a tolerance comparison and one printed
// line per case. Only compiled with RK_WITH_CUDA.
#pragma once
#if defined(RK_WITH_CUDA)
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

#include "../../cuda/logprobs.h"
#include "cuda_check_common.h"

namespace rkdriver {
namespace smallcheck {


// A device copy of a host vector (or an output of n elements), poisoned with NaN (all-ones bytes).
template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  Dev() = default;
  explicit Dev(size_t count) : n(count) {
    if (n) CK(cudaMalloc(&p, n * sizeof(T)));
    poison();
  }
  explicit Dev(const std::vector<T>& h) : Dev(h.size()) { up(h); }
  ~Dev() {
    if (p) cudaFree(p);
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  void poison() {
    if (n) CK(cudaMemset(p, 0xff, n * sizeof(T)));
  }
  void up(const std::vector<T>& h) {
    if (n) CK(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> down() const {
    std::vector<T> h(n);
    if (n) CK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};
// nullptr for an empty/absent optional array
template <class T>
T* opt(const Dev<T>& d, bool on) {
  return on ? d.p : nullptr;
}

inline uint64_t mix(uint64_t x) { return rng::mix64(x); }
using rng::unif;
inline float gauss(uint64_t seed, uint64_t i) { return rng::normal(seed, i); }

// The absolute floor of a comparison, as a share of the array's largest |value|, expressed as the
// `floor` of worst_rel (whose tolerance is rtol * max(|ref|, floor)): 0.1 with rtol 1e-5 gives an
// absolute floor of 1e-6 x the largest magnitude, the log-prob check's floor for gradients.
constexpr double kFloor = 0.1;

// Worst |got - ref| / max(|ref|, floor) over the elements; NaN and inf must match exactly (then
// the result is +inf on a mismatch).
template <class A, class B>
double worst_rel(const A* got, const B* ref, size_t n, double floor) {
  double w = 0;
  for (size_t i = 0; i < n; ++i) {
    const double x = static_cast<double>(got[i]), y = static_cast<double>(ref[i]);
    if (std::isnan(y) || std::isinf(y)) {
      if (!(std::isnan(y) ? std::isnan(x) : x == y)) return std::numeric_limits<double>::infinity();
      continue;
    }
    if (!std::isfinite(x)) return std::numeric_limits<double>::infinity();
    w = std::max(w, std::fabs(x - y) / std::max(std::fabs(y), std::max(floor, 1e-300)));
  }
  return w;
}
template <class T>
double max_abs(const std::vector<T>& v) {
  double m = 0;
  for (const T& x : v)
    if (std::isfinite(static_cast<double>(x))) m = std::max(m, std::fabs(static_cast<double>(x)));
  return m;
}

// One printed line per case: items "name worst" with (!) past the tolerance.
struct Line {
  std::string text;
  bool ok = true;
  double rtol = 1e-5;
  void add(const char* name, double worst) {
    char b[96];
    const bool good = worst <= rtol;
    std::snprintf(b, sizeof b, " %s %.1e%s", name, worst, good ? "" : "(!)");
    text += b;
    ok = ok && good;
  }
  void flag(const char* what, bool good) {
    text += " ";
    text += what;
    text += good ? " ok" : " FAILED(!)";
    ok = ok && good;
  }
  // Prints "[ ok ] / [FAIL] <family> <case> | ..."; returns 1 on a failure.
  int print(const char* family, const char* what) const {
    std::printf("[%s] %-10s %-34s|%s\n", ok ? " ok " : "FAIL", family, what, text.c_str());
    std::fflush(stdout);
    return ok ? 0 : 1;
  }
};

// Median of `reps` timings (CUDA events) of f() on stream st, after two warm-up calls.
template <class F>
double median_ms(F f, cudaStream_t st, int reps = 20) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  f();
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
// "  name  ms  GB/s" and the RESULT line scripts/gpu-check.sh collects; bytes = read + written.
inline void bench_line(const char* name, double ms, double bytes) {
  std::printf("  %-40s %8.3f ms %8.1f GB/s\n", name, ms, bytes / ms / 1e6);
  std::printf("RESULT|rk %s|%.4f|%.1f\n", name, ms, bytes / ms / 1e6);
  std::fflush(stdout);
}

inline bool same_bits(const void* a, const void* b, size_t bytes) { return std::memcmp(a, b, bytes) == 0; }

}  // namespace smallcheck
}  // namespace rkdriver
#endif  // RK_WITH_CUDA
