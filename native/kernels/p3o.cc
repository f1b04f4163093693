// p3oLoss on the CPU: pairs in parallel blocks, the per-pair losses summed in pair order (p3o.h).
#include "p3o.h"

#include <vector>

#include "threadpool.h"

namespace rk {

namespace {

// The 'trlx' surrogate: the per-pair sums in parallel, the batch's token count and q's std in pair
// order, then the pairs again in parallel (p3o.h).
void p3o_trlx(const P3oInputs& in, const P3oParams& p, const P3oOutputs& out, double* scalars, int64_t grain) {
  const size_t B = static_cast<size_t>(in.B);
  std::vector<core::P3oTrlxStats> st(B);
  parallel_for(in.B, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t i = b0; i < b1; ++i) st[static_cast<size_t>(i)] = core::p3o_trlx_stats(in, p, i);
  });
  double n = 0, qdiv = 1;
  for (size_t i = 0; i < B; ++i) n += st[i].count;
  if (p.scaleByStd) {
    double sum = 0, dev = 0;
    for (size_t i = 0; i < B; ++i) sum += st[i].q;
    const double mean = sum / static_cast<double>(in.B);
    for (size_t i = 0; i < B; ++i) dev += (st[i].q - mean) * (st[i].q - mean);
    qdiv = core::p3o_trlx_qdiv(in.B, dev);
  }
  const double N = core::p3o_trlx_norm(p, in.B, n);
  std::vector<double> loss(B), clipped(B);
  parallel_for(in.B, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t i = b0; i < b1; ++i) {
      const core::P3oPair r = core::p3o_trlx_pair(in, p, i, st[static_cast<size_t>(i)], qdiv, N, out);
      loss[static_cast<size_t>(i)] = r.loss;
      clipped[static_cast<size_t>(i)] = r.clipped;
    }
  });
  double l = 0, c = 0;
  for (size_t i = 0; i < B; ++i) {
    l += loss[i];
    c += clipped[i];
  }
  core::p3o_trlx_scalars(p, in.B, n, l, c, scalars);
}

}  // namespace

void p3o_loss(const P3oInputs& in, const P3oParams& p, const P3oOutputs& out, double* scalars) {
  if (p.trlx) {
    p3o_trlx(in, p, out, scalars, p.T >= 4096 ? 1 : 4096 / p.T);
    return;
  }
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
