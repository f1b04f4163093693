// p3oLoss on a CUDA device (p3o.h): one block; each thread runs the core formula over a contiguous
// run of pairs, the loss and clip sums meet in a fixed tree (both surrogates).
#include "p3o.h"

#include <cuda_runtime.h>

#include "small_common.cuh"

namespace rkcuda {
namespace {

using namespace small;

__global__ void __launch_bounds__(kThreads) p3o_pairs(rk::P3oInputs in, rk::P3oParams p, rk::P3oOutputs out, double* scalars) {
  __shared__ double sh[kThreads];
  int64_t b0, b1;
  share(in.B, threadIdx.x, &b0, &b1);
  double loss = 0, clipped = 0;
  for (int64_t i = b0; i < b1; ++i) {
    const rk::core::P3oPair r = rk::core::p3o_pair(in, p, i, out);
    loss += r.loss;
    clipped += r.clipped;
  }
  loss = block_sum(loss, sh);
  clipped = block_sum(clipped, sh);
  if (threadIdx.x == 0) {
    const double inv = 1.0 / static_cast<double>(in.B);
    scalars[0] = loss * inv;
    scalars[1] = clipped / (static_cast<double>(in.B) * (p.joint ? 1.0 : 2.0));
  }
}

// The 'trlx' surrogate (p3o.h): each thread's run of pairs is summed for the batch's token count and
// q's mean (and, with scaleByStd, again for q's squared deviations), the sums meet in fixed trees,
// then the pairs are computed; no scratch memory (each pass recomputes the pair sums).
__global__ void __launch_bounds__(kThreads) p3o_trlx_pairs(rk::P3oInputs in, rk::P3oParams p, rk::P3oOutputs out, double* scalars) {
  __shared__ double sh[kThreads];
  int64_t b0, b1;
  share(in.B, threadIdx.x, &b0, &b1);
  double n = 0, qsum = 0;
  for (int64_t i = b0; i < b1; ++i) {
    const rk::core::P3oTrlxStats s = rk::core::p3o_trlx_stats(in, p, i);
    n += s.count;
    qsum += s.q;
  }
  n = block_sum(n, sh);
  double qdiv = 1;
  if (p.scaleByStd) {
    const double mean = block_sum(qsum, sh) / static_cast<double>(in.B);
    double dev = 0;
    for (int64_t i = b0; i < b1; ++i) {
      const double d = rk::core::p3o_trlx_stats(in, p, i).q - mean;
      dev += d * d;
    }
    qdiv = rk::core::p3o_trlx_qdiv(in.B, block_sum(dev, sh));
  }
  const double N = rk::core::p3o_trlx_norm(p, in.B, n);
  double loss = 0, clipped = 0;
  for (int64_t i = b0; i < b1; ++i) {
    const rk::core::P3oPair r = rk::core::p3o_trlx_pair(in, p, i, rk::core::p3o_trlx_stats(in, p, i), qdiv, N, out);
    loss += r.loss;
    clipped += r.clipped;
  }
  loss = block_sum(loss, sh);
  clipped = block_sum(clipped, sh);
  if (threadIdx.x == 0) rk::core::p3o_trlx_scalars(p, in.B, n, loss, clipped, scalars);
}

}  // namespace

Result p3o_loss(const P3oArgs& a, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (a.in.B < 1) return bad_arg("B", a.in.B);
  if (a.params.T < 1) return bad_arg("T", a.params.T);
  if (!a.in.logprobs1) return bad_arg("logprobs1", 0);
  if (!a.in.logprobs2) return bad_arg("logprobs2", 0);
  if (!a.in.old1) return bad_arg("oldLogprobs1", 0);
  if (!a.in.old2) return bad_arg("oldLogprobs2", 0);
  if (!a.in.rewards1) return bad_arg("rewards1", 0);
  if (!a.in.rewards2) return bad_arg("rewards2", 0);
  if (!a.out.grad1 || !a.out.grad2) return bad_arg("out", 0);
  if (!a.scalars) return bad_arg("scalars", 0);
  if (a.params.trlx) {
    if (!a.in.ref1) return bad_arg("refLogprobs1", 0);
    if (!a.in.ref2) return bad_arg("refLogprobs2", 0);
    if (a.params.scaleByStd && a.in.B < 2) return bad_arg("B", a.in.B);
    p3o_trlx_pairs<<<1, kThreads, 0, st>>>(a.in, a.params, a.out, a.scalars);
    RK_CUDA_CHECK(cudaGetLastError());
    return Result{};
  }
  p3o_pairs<<<1, kThreads, 0, st>>>(a.in, a.params, a.out, a.scalars);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

}  // namespace rkcuda
