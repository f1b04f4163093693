// p3oLoss on the CPU: pairs in parallel blocks, the per-pair losses summed in pair order (p3o.h).
#include "p3o.h"

#include <vector>

#include "threadpool.h"

namespace rk {

void p3o_loss(const P3oInputs& in, const P3oParams& p, const P3oOutputs& out, double* scalars) {
  std::vector<double> loss(static_cast<size_t>(in.B)), clipped(static_cast<size_t>(in.B));
  const int64_t grain = p.T >= 4096 ? 1 : 4096 / p.T;
  parallel_for(in.B, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t i = b0; i < b1; ++i) {
      const core::P3oPair r = core::p3o_pair(in, p, i, out);
      loss[static_cast<size_t>(i)] = r.loss;
      clipped[static_cast<size_t>(i)] = r.clipped;
    }
  });
  double l = 0, c = 0;
  for (int64_t i = 0; i < in.B; ++i) {
    l += loss[static_cast<size_t>(i)];
    c += clipped[static_cast<size_t>(i)];
  }
  const double inv = 1.0 / static_cast<double>(in.B);
  scalars[0] = l * inv;
  scalars[1] = c / (static_cast<double>(in.B) * (p.joint ? 1.0 : 2.0));
}

}  // namespace rk
