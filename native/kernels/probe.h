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

// The log-prob forward's compute ceiling: every pool thread runs the forward's chunk kernel (max pass,
// then 2^u and their sum, f32, the active SIMD level) over its own cache-resident 64 KiB of logits
// (4 chunks), round after round; out[0..reps) gets each pass's rate in G elements/s over all
// threads. No memory traffic limits it, so it is what the exponential allows.
constexpr int kExpProbeElements = 4 * 4096;  // per thread
void exp_throughput_samples(int reps, double* out);

}  // namespace rk
