#include "probe.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "threadpool.h"

namespace rk {

double read_bandwidth_gbs(size_t bytes, int reps) {
  const size_t words = std::max<size_t>(bytes / 8, 1 << 16);
  std::unique_ptr<uint64_t[]> buf(new uint64_t[words]);
  parallel_for(static_cast<int64_t>(words), 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  });
  const int64_t block = 1 << 17;  // 1 MiB
  const int64_t nblocks = static_cast<int64_t>((words + block - 1) / block);
  std::vector<uint64_t> sink(nblocks);
  double best = 0;
  for (int rep = 0; rep < std::max(1, reps); ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    parallel_for(nblocks, 1, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const uint64_t* p = buf.get() + k * block;
        const int64_t n = std::min<int64_t>(block, static_cast<int64_t>(words) - k * block);
        uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        int64_t i = 0;
        for (; i + 4 <= n; i += 4) {
          a0 += p[i];
          a1 += p[i + 1];
          a2 += p[i + 2];
          a3 += p[i + 3];
        }
        for (; i < n; ++i) a0 += p[i];
        sink[k] = a0 + a1 + a2 + a3;
      }
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(words * 8) / s / 1e9);
  }
  volatile uint64_t keep = 0;
  for (uint64_t x : sink) keep = keep + x;
  (void)keep;
  return best;
}

}  // namespace rk
