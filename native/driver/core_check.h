// rk_driver check, parts: the hand-vectorised SIMD lanes against the shared core (native/core/).
// Each prints one line per SIMD level and returns the number of failing cases.
#pragma once

namespace rkdriver {
int core_check_policy();      // core_check_policy.cc
int core_check_advantages();  // core_check_advantages.cc
int core_check_drakes();      // core_check_drakes.cc
int pool_check();             // pool_check.cc
}  // namespace rkdriver
