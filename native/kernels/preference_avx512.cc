// The preference hot loop built for avx512 (see preference_simd.inl).
#define RK_ISA_AVX512 1
#include "preference_simd.inl"
