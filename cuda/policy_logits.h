// policyLossFromLogits on a CUDA device (docs/policy-from-logits.md): tokenLogprobs, policyLoss and
// tokenLogprobsBackward fused. It computes what the CPU kernel native/kernels/policy_logits.{h,cc}
// computes, from the same argument structs (rk::PolicyFromLogitsArgs, rk::PolicyLossParams), with
// every pointer a DEVICE pointer:
//   logp_t, H_t = tokenLogprobs of row t (bit for bit the device token_logprobs_forward's);
//   loss, metrics, g_t = dL/dlogp_t, h_t = dL/dH_t = the device policy_loss on them;
//   dL/dz = the backward of logprobs.h with (g, h), written as f32 or bf16 (round to nearest even).
// A row whose target is ignore_index or whose mask weight is 0 is not read: logp = H = 0 and a zero
// gradient row. The metrics (9 doubles, rk::PolicyLossMetrics' order) are the device policy_loss's
// on the log-probs written, so they equal a separate policyLoss call's bit for bit.
//
// Passes. Every variant but GSPO: the aggregation's row factors from the mask (policy_row_factors),
// then ONE kernel, a block per row: the row's statistics (the log-prob kernels' accumulators, block
// reduction and, where tokenLogprobs splits a row over blocks, the same split merged in the same
// order), the token's g and h (cuda/policy_token.cuh), then the gradient row, reading the row a
// second time right after the first (from L2 when it fits: the statistics loads keep the row
// cached, the gradient loads and stores are evict-first); then policy_loss for the metrics. GSPO
// (whose sequence ratio needs every log-prob of a sequence first): the statistics kernel, policy_loss,
// the gradient kernel (two reads of the logits).
//
// Errors (rkcuda::Result): kBadArgument for a null pointer, a bad size or dtype, a misaligned
// pointer, a gradient that partly overlaps the logits; kBadTarget where = "targets" (index = the
// lowest bad row, value = its target; that row's outputs are NaN) or where = "mask" (index = the
// lowest negative / non-finite f32 weight; the gradients and metrics are NaN). Targets are checked
// before mask weights. Without caller slots the call waits for the stream to report them; with
// bad_row (targets) and, for an f32 mask, bad_index (mask) given (reset by rkcuda::bad_row_reset,
// read with bad_row_read) it stays asynchronous.
// Determinism: the work split depends on (N, V) only and every reduction has a fixed order.
#pragma once
#include <cstdint>

#include "../native/kernels/policy_logits.h"
#include "logprobs.h"

namespace rkcuda {

Result policy_loss_from_logits(const rk::PolicyFromLogitsArgs& args, const rk::PolicyLossParams& params,
                               double* metrics, void* stream, unsigned long long* bad_row = nullptr,
                               unsigned long long* bad_index = nullptr);

}  // namespace rkcuda
