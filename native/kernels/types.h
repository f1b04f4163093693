// Types shared by every kernel family and the binding.
#pragma once
#include <cstdint>

namespace rk {

enum class DType : int { F32 = 0, BF16 = 1, F16 = 2 };
inline int dtype_size(DType d) { return d == DType::F32 ? 4 : 2; }

// What a kernel reports instead of reading out of bounds or throwing.
struct Status {
  enum Code : int { Ok = 0, BadTarget = 1, BadShape = 2, BadIndex = 3 } code = Ok;
  int64_t index = 0;  // the offending element (row for BadTarget)
  int64_t value = 0;  // the offending value
  bool ok() const { return code == Ok; }
};

}  // namespace rk
