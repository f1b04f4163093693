// rolloutCorrection on a CUDA device (docs/policy.md#rolloutcorrection): the same shared core as the
// CPU kernel (native/core/rollout_correction.h), one thread per row running rc_row in token order,
// then one thread merging the rows in row order (rc_merge), so the sums match the CPU's order.
// Every pointer in args is a DEVICE pointer; `scalars` is a HOST buffer of rk::kRcMetricCount
// doubles, filled before return (the call synchronises the stream). A bad f32 mask weight is
// kBadTarget (where "mask", index = the element), found before anything is written.
#pragma once
#include "../native/core/rollout_correction.h"
#include "result.h"

namespace rkcuda {

Result rollout_correction(const rk::RcArgs& args, const rk::RolloutCorrectionParams& params, double* scalars,
                          void* stream);

}  // namespace rkcuda
