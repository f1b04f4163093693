// The AVX-512 log-prob kernels again, with AVX512_BF16's conversion for bf16 gradients (simd.h
// to_bf16: the same rounding to nearest even in one instruction); logprobs.cc picks them on CPUs
// that have it.
#define RK_ISA_AVX512 1
#define RK_BF16_NATIVE 1
#include "logprobs_simd.inl"
