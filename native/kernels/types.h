// Types shared by every kernel family and the binding.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../core/dtype.h"  // DType, dtype_size (the one dtype table)

namespace rk {

// What a kernel reports instead of reading out of bounds or throwing.
struct Status {
  enum Code : int { Ok = 0, BadTarget = 1, BadShape = 2, BadIndex = 3 } code = Ok;
  int64_t index = 0;  // the offending element (row for BadTarget)
  int64_t value = 0;  // the offending value
  bool ok() const { return code == Ok; }
};

// Whether an output of out_bytes at out shares memory with an input of in_bytes at in. A gradient
// written over the logits (in place) hits the lines just read, so the kernels write it with plain
// stores rather than streaming ones (their nt flag).
inline bool overlaps(const void* out, size_t out_bytes, const void* in, size_t in_bytes) {
  const auto o = reinterpret_cast<uintptr_t>(out), i = reinterpret_cast<uintptr_t>(in);
  return o < i + in_bytes && i < o + out_bytes;
}

}  // namespace rk
