// Memory-bandwidth probes: the ceilings the memory-bound kernels are measured against.
#pragma once
#include <cstddef>

namespace rk {

enum class BandwidthKind { kRead = 0, kCopy = 1 };

// Times `reps` passes over a `bytes` footprint (allocated and touched once, before the first
// pass) with all pool threads and writes each pass's rate in GB/s (1e9 bytes per second) to
// out[0..reps). kRead: one streaming read of a `bytes` buffer. kCopy: a streaming read of a
// bytes/2 source plus a streaming write of a bytes/2 destination (non-temporal stores where the
// CPU has them), counted as bytes moved (read + written), as STREAM's copy counts them.
void bandwidth_samples(size_t bytes, int reps, BandwidthKind kind, double* out);

// The best of `reps` read passes over `bytes` (rk_driver's one-line figure).
double read_bandwidth_gbs(size_t bytes, int reps);

}  // namespace rk
