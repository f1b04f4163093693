#define RK_ISA_AVX2 1
#include "logprobs_simd.inl"
