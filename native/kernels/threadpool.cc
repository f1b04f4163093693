#include "threadpool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif
#if defined(__linux__)
#include <sched.h>
#endif

namespace rk {

FloatModeGuard::FloatModeGuard() {
#if defined(__x86_64__) || defined(__i386__)
  saved_ = _mm_getcsr();
  _mm_setcsr(saved_ | 0x8040u);  // FTZ (bit 15) | DAZ (bit 6)
#else
  saved_ = 0;
#endif
}

FloatModeGuard::~FloatModeGuard() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_setcsr(saved_);
#endif
}

int default_num_threads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

namespace {

thread_local bool t_in_pool = false;

// A thread that goes to sleep on a condition variable can take longer to wake than a small job
// runs (about 0.1 ms measured for a virtual CPU, which the hypervisor also puts to sleep). So a
// thread about to wait for something expected soon polls first: the caller for the last block a
// worker runs, a worker for the next job (kernel calls come in sequences).
constexpr auto kCallerSpin = std::chrono::microseconds(2000);
constexpr auto kIdleSpin = std::chrono::microseconds(300);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Polls done() for up to `limit`; true once it holds.
template <class Done>
bool spin_until(Done done, std::chrono::microseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    for (int i = 0; i < 32; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= end) return done();
  }
}

class Pool {
 public:
  Pool() { resize(default_num_threads()); }
  ~Pool() { stop_workers(); }

  // Not behind job_mu_: another thread's long job does not hold this up.
  int size() { return nthreads_.load(std::memory_order_relaxed); }

  // Process-wide: every thread (worker threads of Node included) shares this pool. A resize waits
  // for the job in progress, if any, to finish. When a thread cannot be started (std::system_error)
  // the pool keeps the threads it has and the error goes on to the caller.
  void resize(int n) {
    std::lock_guard<std::mutex> job(job_mu_);
    stop_workers();
    stop_ = false;
    const uint64_t gen = generation_;  // stable: no job runs while job_mu_ is held
    try {
      for (int i = 1; i < std::max(1, n); ++i) workers_.emplace_back([this, gen] { worker_loop(gen); });
    } catch (...) {
      nthreads_.store(static_cast<int>(workers_.size()) + 1);
      throw;
    }
    nthreads_.store(std::max(1, n));
  }

  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    const int64_t blocks = (n + grain - 1) / grain;
    FloatModeGuard fm;
    if (t_in_pool || blocks == 1) {
      fn(0, n);
      return;
    }
    std::lock_guard<std::mutex> job(job_mu_);
    if (workers_.empty()) {
      fn(0, n);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn;
      n_ = n;
      grain_ = grain;
      blocks_ = blocks;
      next_.store(0);
      error_ = nullptr;
      open_ = true;
      ++generation_;
    }
    cv_.notify_all();
    t_in_pool = true;
    work();
    t_in_pool = false;
    // Every block is taken. Wait only for the workers that joined the job (one may still run a
    // block); one that has not woken yet stays out of it. Waking a sleeping thread can take longer
    // than a small job (about 0.1 ms on a virtual machine): the caller then does every block itself
    // and returns without waiting for that wake-up.
    {
      std::lock_guard<std::mutex> lk(mu_);
      open_ = false;
    }
    spin_until([this] { return joined_.load(std::memory_order_acquire) == 0; }, kCallerSpin);
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return joined_ == 0; });
    fn_ = nullptr;
    if (error_) {
      std::exception_ptr e = std::move(error_);
      error_ = nullptr;
      lk.unlock();
      std::rethrow_exception(e);  // on the caller: e.g. a std::bad_alloc becomes the call's error
    }
  }

 private:
  void work() {
    for (;;) {
      int64_t b = next_.fetch_add(1);
      if (b >= blocks_) break;
      int64_t begin = b * grain_;
      int64_t end = std::min(n_, begin + grain_);
      try {
        (*fn_)(begin, end);
      } catch (...) {
        // Escaping a pool thread would abort the process: the first error is kept for the caller
        // and the blocks not yet started are skipped.
        std::lock_guard<std::mutex> lk(err_mu_);
        if (!error_) error_ = std::current_exception();
        next_.store(blocks_);
      }
    }
  }

  // `seen` is the generation current when the worker was created, so a job published before the
  // thread first runs is still picked up.
  void worker_loop(uint64_t seen) {
    t_in_pool = true;
    FloatModeGuard fm;  // workers keep FTZ/DAZ for their whole life
    for (;;) {
      spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; }, kIdleSpin);
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || (open_ && generation_ != seen); });
        if (stop_) return;
        seen = generation_;
        ++joined_;  // the job's parameters stay put until this worker leaves it
      }
      work();
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (--joined_ == 0) done_cv_.notify_one();
      }
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::mutex job_mu_;  // one job at a time
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  std::atomic<int> nthreads_{1};
  bool stop_ = false;
  std::atomic<uint64_t> generation_{0};  // changed under mu_; polled without it
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, grain_ = 1, blocks_ = 0;
  std::atomic<int64_t> next_{0};
  bool open_ = false;  // a job is published and may still be joined
  std::atomic<int> joined_{0};  // workers inside the open or closing job (changed under mu_; polled without it)
  std::mutex err_mu_;
  std::exception_ptr error_;  // the job's first exception (guarded by err_mu_ while it runs)
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: workers may outlive static destructors at exit
  return *p;
}

}  // namespace

void set_num_threads(int n) { pool().resize(n); }
int get_num_threads() { return pool().size(); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  pool().run(n, grain, fn);
}

}  // namespace rk
