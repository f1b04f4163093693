// rk_driver's CUDA subcommands (cuda_check.cc), compiled only when CMake found nvcc (RK_WITH_CUDA).
#pragma once

namespace rkdriver {
// Every CUDA kernel against the CPU kernel on awkward shapes; "N passed, N failed" last.
// Exit status: 0 all passed (or no CUDA device), 1 a failure.
int cuda_check();
// D2D copy bandwidth, a read-only pass, then the log-prob kernels at 8192 x 151936 (bf16, f32).
// argv: optional N V.
int cuda_bench(int argc, char** argv);
// The O(n) families against their CPU kernels (cuda_check_<family>.cc); quick: tiny sizes only
// (the host emulation). One printed line per case; returns the number of failed cases.
int cuda_check_policy(bool quick);
int cuda_check_preference(bool quick);
int cuda_check_advantages(bool quick);
// One timing line each on `stream` (a cudaStream_t): policyLoss 64 x 4096, preferenceLoss 1M
// pairs, groupAdvantages 1M samples.
void cuda_bench_policy(void* stream);
void cuda_bench_preference(void* stream);
void cuda_bench_advantages(void* stream);
}  // namespace rkdriver
