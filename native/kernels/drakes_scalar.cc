// Baseline (no SIMD flags) build of the Gumbel noise.
#include "drakes_simd.inl"
