// rk_driver check, part: the thread pool (native/kernels/threadpool.cc) under load. Jobs of 1 to 37
// items in blocks of 1 to 3, small enough that the caller often takes every block before a pool
// thread wakes (the caller then returns without waiting for it), from three threads at once while
// the pool is resized, and jobs that throw: every item runs exactly once, the error reaches the
// caller, and nothing hangs. A ThreadSanitizer build of this file and threadpool.cc runs the same.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core_check.h"
#include "threadpool.h"

namespace rkdriver {

int pool_check() {
  const int before = rk::get_num_threads();
  std::atomic<int64_t> wrong{0}, jobs{0}, lost{0};
  auto body = [&](int seed) {
    for (int it = 0; it < 20000; ++it) {
      const int64_t n = 1 + (it * 7919 + seed) % 37;
      std::vector<int> hit(static_cast<size_t>(n), 0);
      rk::parallel_for(n, 1 + it % 3, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hit[static_cast<size_t>(i)]++;
      });
      for (int64_t i = 0; i < n; ++i) wrong += hit[static_cast<size_t>(i)] != 1;
      if (it % 997 == 0) {
        try {
          rk::parallel_for(8, 1, [&](int64_t b, int64_t e) {  // one thread: a single call over [0, 8)
            if (b <= 3 && 3 < e) throw std::runtime_error("item 3");
          });
          ++lost;  // the error was lost
        } catch (const std::runtime_error&) {
        }
      }
      ++jobs;
    }
  };
  std::thread t1(body, 1), t2(body, 2);
  for (int k = 0; k < 50; ++k) {
    rk::set_num_threads(1 + k % 4);
    std::this_thread::yield();
  }
  t1.join();
  t2.join();
  rk::set_num_threads(3);
  body(5);
  rk::set_num_threads(before);
  wrong += lost.load();
  std::printf("pool: %lld jobs from 3 threads with 50 resizes and thrown errors: %lld wrong %s\n",
              static_cast<long long>(jobs.load()), static_cast<long long>(wrong.load()), wrong ? "FAIL" : "ok");
  return wrong != 0;
}

}  // namespace rkdriver
