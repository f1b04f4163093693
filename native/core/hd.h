// RK_HD marks a function of the shared core (native/core/) that both backends call: under nvcc it is
// __host__ __device__, so the CUDA kernels call the same formula as the C++ kernels; elsewhere it is a
// plain inline function. The core holds only formulas and the contract (enums, dtype table, parameter
// structs): no threads, no SIMD, no allocation, no I/O.
#pragma once

#if defined(__CUDACC__)
#define RK_HD __host__ __device__ __forceinline__
#else
#define RK_HD inline
#endif
