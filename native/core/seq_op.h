// Sequence ops: the generic per-row contract that lets a loss over padded (B, T) token data be one
// formula header (native/core/ops/<op>.h) run by both backends, with no kernel of its own: the CPU
// driver (native/kernels/seq_driver.h) threads over rows, the CUDA driver (cuda/seq_driver.cuh) gives each
// row a thread; both call seq_op_row below, so every formula exists once (docs/design.md).
//
// An op `Op` declares (all per-element math in double):
//   struct Params { double ...; }           the packed options, in the descriptor's order (all doubles)
//   kInputs      f32 inputs (B, T) or (B) (per-row: one value per sequence)
//   kGrads       f32 gradients (B, T) written, of the first kGrads inputs
//   kStats       per-row statistics gathered in a first pass (0: one pass)
//   kMetrics     masked means reported beside the loss (sum_t m_t metric_t / sum_t m_t)
//   RK_HD static void stat(const Params&, const double* x, double m, double* stats)
//                adds token (x, m)'s part of the row statistics (only called when kStats > 0)
//   RK_HD static double factor(const Params&, double row_mask, double total_mask, int64_t B, int64_t T)
//                the row factor (policy_row_factor for verl's aggregation modes, 1/B for a mean over rows)
//   RK_HD static double row(const Params&, double* stats, double mask_sum, double row_factor)
//                the row's loss term that is not a sum over tokens (0 for token-sum losses); may
//                leave values in stats for token()
//   RK_HD static double token(const Params&, const double* x, double m, double w, const double* stats,
//                             double mask_sum, double row_factor, double* grad, double* metric)
//                the token's loss term (already weighted), its gradients (per input, weighted) and
//                its metric values (unweighted, 0/1 flags or values)
// where w = m * row_factor. Inputs are read as double; the loss, the metrics and every sum are
// double; gradients are written as f32 (0 where m == 0).
#pragma once
#include <cstdint>

#include "hd.h"
#include "policy.h"  // MaskKind, LossAggregation and core::policy_row_factor (verl's loss_agg_mode)

namespace rk {

// The token mask, as policyLoss's (native/core/policy.h): none, u8 1/0, f32 weights.
using SeqMask = MaskKind;

// The arrays of one call (host or device pointers alike).
template <int kInputs, int kGrads>
struct SeqOpArgs {
  const float* in[kInputs > 0 ? kInputs : 1] = {};
  bool per_token[kInputs > 0 ? kInputs : 1] = {};  // false: one value per row (index r)
  const void* mask = nullptr;
  SeqMask mask_kind = SeqMask::None;
  float* grad[kGrads > 0 ? kGrads : 1] = {};
  int64_t B = 0, T = 0;
};

RK_HD double seq_mask_at(const void* mask, SeqMask kind, int64_t i) {
  switch (kind) {
    case SeqMask::U8: return static_cast<const uint8_t*>(mask)[i] != 0 ? 1.0 : 0.0;
    case SeqMask::F32: return static_cast<double>(static_cast<const float*>(mask)[i]);
    default: return 1.0;
  }
}

// The mask sum of row r, in token order.
template <int kInputs, int kGrads>
RK_HD double seq_row_mask(const SeqOpArgs<kInputs, kGrads>& a, int64_t r) {
  double s = 0;
  for (int64_t t = 0; t < a.T; ++t) s += seq_mask_at(a.mask, a.mask_kind, r * a.T + t);
  return s;
}

// Row r: both passes, in token order; writes the row's gradients and returns its loss; adds the
// row's metric sums (sum_t m_t metric_t) to metric_sums.
template <typename Op>
RK_HD double seq_op_row(const SeqOpArgs<Op::kInputs, Op::kGrads>& a, const typename Op::Params& p, int64_t r,
                        double mask_sum, double row_factor, double* metric_sums) {
  double stats[Op::kStats > 0 ? Op::kStats : 1] = {};
  double x[Op::kInputs];
  const int64_t T = a.T;
  if (Op::kStats > 0) {
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = r * T + t;
      const double m = seq_mask_at(a.mask, a.mask_kind, i);
      for (int k = 0; k < Op::kInputs; ++k) x[k] = a.in[k][a.per_token[k] ? i : r];
      Op::stat(p, x, m, stats);
    }
  }
  double loss = Op::row(p, stats, mask_sum, row_factor);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t i = r * T + t;
    const double m = seq_mask_at(a.mask, a.mask_kind, i);
    for (int k = 0; k < Op::kInputs; ++k) x[k] = a.in[k][a.per_token[k] ? i : r];
    double g[Op::kGrads > 0 ? Op::kGrads : 1] = {};
    double met[Op::kMetrics > 0 ? Op::kMetrics : 1] = {};
    loss += Op::token(p, x, m, m * row_factor, stats, mask_sum, row_factor, g, met);
    for (int k = 0; k < Op::kGrads; ++k) a.grad[k][i] = m != 0 ? static_cast<float>(g[k]) : 0.0f;
    if (m != 0)
      for (int k = 0; k < Op::kMetrics; ++k) metric_sums[k] += m * met[k];
  }
  return loss;
}

// The scalars every sequence op returns: loss, then its kMetrics masked means, then the mask sum.
template <typename Op>
constexpr int seq_op_scalar_count() {
  return 2 + Op::kMetrics;
}

}  // namespace rk
