// Types shared by every kernel family and the binding.
#pragma once
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

}  // namespace rk
