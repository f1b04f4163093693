// Streaming-read bandwidth probe: the ceiling the memory-bound kernels are measured against.
#pragma once
#include <cstddef>

namespace rk {

// Reads a `bytes` buffer (allocated and touched once) `reps` times with all pool threads and
// returns the best rate in GB/s (1e9 bytes per second).
double read_bandwidth_gbs(size_t bytes, int reps);

}  // namespace rk
