// rk_driver's CUDA subcommands, compiled only when CMake found nvcc (RK_WITH_CUDA).
#pragma once

namespace rkdriver {
// parity.cc: every exported op's CUDA kernel against its CPU kernel, one table row per op, on
// awkward shapes over the op's option space; one line per case, "N passed, M failed" last.
// Exit status: 0 all passed (or no CUDA device: a "no CUDA device" line), 1 a failure.
int cuda_check();
// cuda_bench.cc: D2D copy bandwidth, a read-only pass, then the kernels' timings (argv: optional N V
// for the log-prob and divergence kernels, default 8192 x 151936).
int cuda_bench(int argc, char** argv);
}  // namespace rkdriver
