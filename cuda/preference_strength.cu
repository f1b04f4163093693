// preferenceStrengthLoss on a CUDA device (preference_strength.h): one block; each thread runs the core
// formula over a contiguous run of pairs, the loss and flip sums meet in a fixed tree.
#include "preference_strength.h"

#include <cuda_runtime.h>

#include "small_common.cuh"

namespace rkcuda {
namespace {

using namespace small;

__global__ void __launch_bounds__(kThreads) strength_pairs(rk::StrengthInputs in, rk::StrengthParams p,
                                                          rk::StrengthOutputs out, double* scalars) {
  __shared__ double sh[kThreads];
  int64_t b0, b1;
  share(in.P, threadIdx.x, &b0, &b1);
  double loss = 0, flips = 0;
  for (int64_t i = b0; i < b1; ++i) {
    const rk::core::StrengthPair r = rk::core::strength_pair(in, p, i, out);
    loss += r.loss;
    flips += r.flipped ? 1.0 : 0.0;
  }
  loss = block_sum(loss, sh);
  flips = block_sum(flips, sh);
  if (threadIdx.x == 0) {
    const double inv = 1.0 / static_cast<double>(in.P);
    scalars[0] = loss * inv;
    scalars[1] = flips * inv;
  }
}

}  // namespace

Result preference_strength_loss(const StrengthArgs& a, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (a.in.P < 1) return bad_arg("P", a.in.P);
  if (a.in.M < 1) return bad_arg("M", a.in.M);
  if (!a.in.chosen) return bad_arg("chosen", 0);
  if (!a.in.rejected) return bad_arg("rejected", 0);
  if (!a.in.ensemble_chosen) return bad_arg("ensemble_chosen", 0);
  if (!a.in.ensemble_rejected) return bad_arg("ensemble_rejected", 0);
  if (!a.out.losses || !a.out.grad_chosen || !a.out.grad_rejected || !a.out.mean || !a.out.std) return bad_arg("out", 0);
  if (!a.scalars) return bad_arg("scalars", 0);
  strength_pairs<<<1, kThreads, 0, st>>>(a.in, a.params, a.out, a.scalars);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

}  // namespace rkcuda
