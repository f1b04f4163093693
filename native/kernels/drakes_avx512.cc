// GCC 12 false positive inside avx512fintrin.h, as divergence_avx512.cc notes.
#pragma GCC diagnostic ignored "-Wuninitialized"
#define RK_ISA_AVX512 1
#include "drakes_simd.inl"
