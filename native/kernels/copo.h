// copoAdvantages on the CPU (the formulas: native/core/copo.h; docs/papers/copo.md).
#pragma once
#include <cstdint>

#include "../core/copo.h"

namespace rk {

// entropy, global_reward: (num_groups); local_adv, global_adv, gates: (n).
void copo_advantages(const CopoArgs& a, float* entropy, float* global_reward, float* local_adv, float* global_adv,
                     float* gates);

}  // namespace rk
