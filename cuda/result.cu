// rkcuda::Result messages (result.h).
#include "result.h"

#include <cuda_runtime.h>

#include <cstdio>

namespace rkcuda {

const char* error_name(const Result& r) {
  switch (r.code) {
    case kOk: return "ok";
    case kBadArgument: return "bad argument";
    case kBadTarget: return "bad target";
    default: return cudaGetErrorName(static_cast<cudaError_t>(r.cuda_error));
  }
}

char* format_error(const Result& r, char* buf, int len) {
  if (len <= 0) return buf;
  switch (r.code) {
    case kOk: std::snprintf(buf, len, "ok"); break;
    case kBadArgument:
      std::snprintf(buf, len, "bad argument: %s (%lld)", r.where, static_cast<long long>(r.index));
      break;
    case kBadTarget:
      std::snprintf(buf, len, "targets[%lld] = %lld is outside [0, vocab) and is not ignoreIndex",
                    static_cast<long long>(r.index), static_cast<long long>(r.value));
      break;
    default:
      std::snprintf(buf, len, "%s: %s (%s)", r.where,
                    cudaGetErrorName(static_cast<cudaError_t>(r.cuda_error)),
                    cudaGetErrorString(static_cast<cudaError_t>(r.cuda_error)));
  }
  return buf;
}

}  // namespace rkcuda
