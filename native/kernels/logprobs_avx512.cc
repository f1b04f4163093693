#define RK_ISA_AVX512 1
#include "logprobs_simd.inl"
