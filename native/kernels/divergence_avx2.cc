#define RK_ISA_AVX2 1
#include "divergence_simd.inl"
