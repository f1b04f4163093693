// Baseline (no SIMD flags) build of the log-prob hot loops.
#include "logprobs_simd.inl"
