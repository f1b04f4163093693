// Baseline (no SIMD flags) build of the policy hot loop.
#include "policy_simd.inl"
