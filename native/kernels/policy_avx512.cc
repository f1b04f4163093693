#define RK_ISA_AVX512 1
#include "policy_simd.inl"
