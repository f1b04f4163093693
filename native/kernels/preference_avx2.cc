// The preference hot loop built for avx2 (see preference_simd.inl).
#define RK_ISA_AVX2 1
#include "preference_simd.inl"
