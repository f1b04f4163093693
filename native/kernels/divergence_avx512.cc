// GCC 12 false positive inside avx512fintrin.h (_mm512_reduce_add_ps -> _mm256_undefined_pd), as
// CMakeLists.txt notes for -Wmaybe-uninitialized; here it surfaces as -Wuninitialized.
#pragma GCC diagnostic ignored "-Wuninitialized"
#define RK_ISA_AVX512 1
#include "divergence_simd.inl"
