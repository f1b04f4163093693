#define RK_ISA_AVX2 1
#include "drakes_simd.inl"
