#define RK_ISA_AVX2 1
#include "policy_simd.inl"
