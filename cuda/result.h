// The error model of every CUDA family (logprobs, divergence, policy, preference, advantages):
// each entry point returns an rkcuda::Result. Plain C++ header: no CUDA type appears here, so the
// N-API layer and the native driver include it with any host compiler.
//
// kBadArgument: a null pointer, a bad size or an unknown dtype/option (where = the argument,
// index = which or its value). kBadTarget: a bad element of a data array found on the device (a
// target out of range, a length < 1, ...): where = the array, index = the element, value = its
// value. kCudaError: cuda_error = the cudaError_t, where = the call that failed.
#pragma once
#include <cstdint>

namespace rkcuda {

enum Code : int {
  kOk = 0,
  kBadArgument = 1,  // a null pointer, a negative size, an unknown dtype, tau <= 0 (index: which)
  kBadTarget = 2,    // index: the lowest bad row, value: its target
  kCudaError = 3,    // cuda_error: the cudaError_t; where: the call that failed
};

struct Result {
  int code = kOk;
  int cuda_error = 0;       // cudaError_t when code == kCudaError
  int64_t index = 0;        // the bad row (kBadTarget) or argument number (kBadArgument)
  int64_t value = 0;        // the bad target
  const char* where = "";   // the CUDA call or argument that failed (static string)
  bool ok() const { return code == kOk; }
};

// The CUDA error name ("cudaErrorMemoryAllocation", ...) for kCudaError, else the code's name.
const char* error_name(const Result& r);
// A one-line message: "<where>: <error name> (<description>)" or the bad row and target.
// Writes at most len bytes including the NUL; returns buf.
char* format_error(const Result& r, char* buf, int len);

}  // namespace rkcuda
