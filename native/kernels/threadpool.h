// The CPU thread pool every kernel family shares.
// Kernels split work into items whose results do not depend on which thread computes them, and
// reduce partial results in a fixed order afterwards, so results are identical for any thread count.
#pragma once
#include <cstdint>
#include <functional>

namespace rk {

// The machine's available parallelism (CPU affinity mask), at least 1.
int default_num_threads();
// Threads used by parallel_for, the calling thread included. n >= 1; resizes the pool (after the
// job in progress, if any). Throws std::system_error when a thread cannot start; the pool then
// keeps the threads it has, and get_num_threads() says how many.
void set_num_threads(int n);
int get_num_threads();

// Runs fn(begin, end) over [0, n) in blocks of at most `grain` items, on the pool's threads and
// the caller. Calls from several threads at once are serialised; a call made from inside a pool
// task runs inline on that thread. Sets flush-to-zero/denormals-are-zero for the duration. An
// exception thrown by fn (e.g. std::bad_alloc) on any thread skips the blocks not yet started and
// is rethrown on the caller once every thread is done.
//
// The pool is process-wide and lives as long as the process: the addons link with -z nodelete, so
// Node never unmaps this code under the pool's threads when the worker threads that loaded an addon
// exit (docs/runtime.md, "Worker threads").
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Sets FTZ/DAZ on this thread and restores the previous mode when destroyed.
class FloatModeGuard {
 public:
  FloatModeGuard();
  ~FloatModeGuard();
  FloatModeGuard(const FloatModeGuard&) = delete;
  FloatModeGuard& operator=(const FloatModeGuard&) = delete;

 private:
  unsigned saved_;
};

}  // namespace rk
