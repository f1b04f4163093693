// rolloutCorrection on the CPU (formulas and outputs in native/core/rollout_correction.h and
// docs/policy.md#rolloutcorrection): rows split over the thread pool, each row computed by the shared
// rc_row in token order, rows merged in row order by rc_merge, so the bits do not depend on the
// thread count. Temporaries are (B) only.
#pragma once
#include "../core/rollout_correction.h"
#include "types.h"

namespace rk {

// scalars: kRcMetricCount doubles. A bad f32 mask weight (negative or not finite) is
// Status::BadIndex (index = the element), before anything is written.
Status rollout_correction(const RcArgs& a, const RolloutCorrectionParams& p, double* scalars);

}  // namespace rk
