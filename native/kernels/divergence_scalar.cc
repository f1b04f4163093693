// Baseline (no SIMD flags) build of the divergence hot loops.
#include "divergence_simd.inl"
