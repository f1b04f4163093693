// copoAdvantages on a CUDA device (copo.h): the shared core's group formulas, one thread per group.
#include "copo.h"

#include <cuda_runtime.h>

#include "small_common.cuh"

namespace rkcuda {
namespace {

using namespace small;

// hr: (2 Q + 2) doubles: H, then R, then the batch mean and std.
__global__ void __launch_bounds__(kThreads) copo_groups(rk::CopoArgs a, float* entropy, float* global_reward, float* local_adv,
                                                       double* hr) {
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (g >= a.num_groups) return;
  rk::core::copo_group(a, g, entropy, global_reward, local_adv, hr + g, hr + a.num_groups + g);
}

__global__ void copo_stats(int64_t Q, double* hr) { rk::core::copo_batch_stats(hr + Q, Q, hr + 2 * Q, hr + 2 * Q + 1); }

__global__ void __launch_bounds__(kThreads) copo_out(rk::CopoArgs a, const double* hr, const float* local_adv, float* global_adv,
                                                    float* gates) {
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t Q = a.num_groups;
  if (g >= Q) return;
  rk::core::copo_group_out(a, g, hr[g], hr[Q + g], hr[2 * Q], hr[2 * Q + 1], local_adv, global_adv, gates);
}

}  // namespace

Result copo_advantages(const rk::CopoArgs& a, float* entropy, float* global_reward, float* local_adv, float* global_adv,
                       float* gates, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (a.n < 0 || a.n > 0x7fffffffLL) return bad_arg("n", a.n);
  if (a.num_groups < 0 || a.num_groups > a.n) return bad_arg("num_groups", a.num_groups);
  if (a.num_groups == 0) return Result{};
  if (!a.order && (a.group_size < 1 || a.group_size * a.num_groups != a.n)) return bad_arg("group_size", a.group_size);
  if (a.order && !a.offsets) return bad_arg("offsets", 0);
  if (!a.answers) return bad_arg("answers", 0);
  if (!a.rewards) return bad_arg("rewards", 0);
  if (!entropy) return bad_arg("entropy", 0);
  if (!global_reward) return bad_arg("global_reward", 0);
  if (!local_adv) return bad_arg("local_adv", 0);
  if (!global_adv) return bad_arg("global_adv", 0);
  if (!gates) return bad_arg("gates", 0);
  Scratch hr(st);
  Result r = hr.alloc(sizeof(double) * static_cast<size_t>(2 * a.num_groups + 2));
  if (!r.ok()) return r;
  double* h = static_cast<double*>(hr.p);
  const int grid = grid_for(a.num_groups, kThreads);
  copo_groups<<<grid, kThreads, 0, st>>>(a, entropy, global_reward, local_adv, h);
  RK_CUDA_CHECK(cudaGetLastError());
  copo_stats<<<1, 1, 0, st>>>(a.num_groups, h);
  RK_CUDA_CHECK(cudaGetLastError());
  copo_out<<<grid, kThreads, 0, st>>>(a, h, local_adv, global_adv, gates);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

}  // namespace rkcuda
