// Preference losses on a CUDA device, forward and backward (docs/preference.md). They compute
// exactly what the CPU kernels native/kernels/preference.{h,cc} compute, with the same option
// structs: preference_loss (all nineteen losses of rk::PrefLoss and weighted lists of them, label smoothing, the f-divergence
// map, RPO's nll_weight, bt margins and soft labels), kto_loss and token_weighted_dpo_loss (TGDPO).
// All per-pair arithmetic is in double, as on the CPU; sums are per-block in a fixed tree, then
// block partials added in order (deterministic).
//
// Plain C++ header (no CUDA types; streams are void*, a cudaStream_t). Every array is a DEVICE
// pointer, including the scalar results (a few doubles on the device, see each function).
//
// Errors: rkcuda::Result (cuda/result.h). kBadArgument: a null pointer or a bad size (where names
// it). A length < 1 where lengths are used (preference_needs_lengths) is a bad element: found on
// the device, never used, every output of the call becomes NaN, and the lowest such pair goes into
// the bad slot; with bad_index == nullptr the call waits for the stream and returns kBadTarget
// (where = "chosen_len" or "rejected_len", index = pair, value = the length), with a caller-owned
// slot (rkcuda::bad_row_reset / bad_row_read) it stays asynchronous. Calls that use no lengths
// never synchronise.
#pragma once
#include <cstdint>

#include "../native/kernels/preference.h"
#include "result.h"

namespace rkcuda {

struct PreferenceLossArgs {
  rk::PreferenceInputs in;  // device pointers; pairs P >= 1
  rk::PreferenceParams params;
  float* losses = nullptr;            // (P), required
  float* chosen_rewards = nullptr;    // (P), required
  float* rejected_rewards = nullptr;  // (P), required
  float* grad_chosen = nullptr;       // (P), required: dloss/dchosen of the mean loss
  float* grad_rejected = nullptr;     // (P), required
  double* scalars = nullptr;  // 3 doubles on the device: loss, reward_accuracy, reward_margin
  unsigned long long* bad_index = nullptr;
};
Result preference_loss(const PreferenceLossArgs& args, void* stream);

struct KtoLossArgs {
  int64_t n = 0;                     // >= 1
  const float* logp = nullptr;       // (n)
  const float* ref = nullptr;        // (n) or null (0)
  const uint8_t* desirable = nullptr;  // (n), nonzero = desirable
  rk::KtoParams params;
  float* losses = nullptr;   // (n), required
  float* rewards = nullptr;  // (n), required
  float* grad = nullptr;     // (n), required
  // 3 doubles on the device: loss, desirable_reward_mean, undesirable_reward_mean (NaN when a
  // class is empty)
  double* scalars = nullptr;
};
Result kto_loss(const KtoLossArgs& args, void* stream);

struct TgdpoArgs {
  rk::TgdpoInputs in;  // device pointers; batch B >= 1, seq_len T >= 0
  double beta = 0.1, alpha = 0.5;
  float* losses = nullptr;            // (B)
  float* chosen_rewards = nullptr;    // (B)
  float* rejected_rewards = nullptr;  // (B)
  float* grad_chosen = nullptr;       // (B, T)
  float* grad_rejected = nullptr;     // (B, T)
  double* scalars = nullptr;  // 3 doubles on the device: loss, reward_accuracy, reward_margin
};
Result token_weighted_dpo_loss(const TgdpoArgs& args, void* stream);

// LD-DPO sequence log-probs (TRL ld_alpha): core::ld_pair, one thread per pair (the CPU's token
// order, so the same bits). Device pointers; out.chosen_weights / rejected_weights both or neither.
struct LdDpoArgs {
  rk::LdInputs in;  // batch B >= 1, seq_len T >= 1
  double alpha = 1.0;
  rk::LdOutputs out;
};
Result ld_dpo_logps(const LdDpoArgs& args, void* stream);

}  // namespace rkcuda
