// rk_driver cuda-check / cuda-bench pieces for the CUDA vocabulary divergences (cuda/divergence.cu),
// called from cuda_check.cc. Compiled only when CMake found nvcc (RK_WITH_CUDA).
#pragma once
#include <cstdint>

namespace rkdriver {
// Every divergence variant against the CPU kernel (native/kernels/divergence.cc) on awkward shapes,
// one line per case and a summary line; cases with more than max_elems elements are skipped.
// Needs a CUDA device (cuda_check() has checked). Returns the number of failed cases.
int cuda_check_divergence(int64_t max_elems);
// Times forward and forward+gradient of every kind at (n, v) bf16 on `stream` (a cudaStream_t),
// against copy_gbs (the D2D copy bandwidth, read + written); prints RESULT| lines and a table.
void cuda_bench_divergence(int64_t n, int64_t v, double copy_gbs, void* stream);
}  // namespace rkdriver
