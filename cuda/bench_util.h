// Device-side helpers for the native driver's CUDA check and benchmark (rk_driver cuda-*): filling
// large device arrays without a host round trip, and a read-only pass that measures how fast the
// card streams memory into registers. Plain C++ header (no CUDA types).
#pragma once
#include <cstdint>

#include "logprobs.h"  // dtype codes
#include "result.h"

namespace rkcuda {

// p[i] = mean + stddev * r_i, r_i approximately standard normal (Irwin-Hall of 4 uniforms), from a
// counter-based hash of (seed, i): the same seed gives the same array on every card.
Result fill_random(void* p, int dtype, int64_t n, uint64_t seed, float mean, float stddev, void* stream);
// p[i] uniform in [0, vocab).
Result fill_targets(int32_t* p, int64_t n, int64_t vocab, uint64_t seed, void* stream);
// Reads `bytes` bytes at p (16-byte aligned, bytes a multiple of 16) once with 16-byte loads and
// writes a checksum to *sink (a device word) so the reads cannot be optimised away.
Result read_pass(const void* p, int64_t bytes, unsigned* sink, void* stream);

}  // namespace rkcuda
