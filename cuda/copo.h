// copoAdvantages on a CUDA device (docs/papers/copo.md): the same formulas as the CPU kernel
// (native/core/copo.h). One thread per group, then one thread for the batch statistics (the groups in
// order, as on the CPU), then one thread per group for the outputs. Plain C++ header; every array is
// a DEVICE pointer (a.order and a.offsets too, when given).
#pragma once
#include <cstdint>

#include "../native/core/copo.h"
#include "result.h"

namespace rkcuda {

// entropy, global_reward: (num_groups); local_adv, global_adv, gates: (n). kBadArgument for a null
// array or a bad size.
Result copo_advantages(const rk::CopoArgs& a, float* entropy, float* global_reward, float* local_adv, float* global_adv,
                       float* gates, void* stream);

}  // namespace rkcuda
