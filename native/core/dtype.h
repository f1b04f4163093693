// The element types of a logits tensor: the one dtype table of the project. rk::DType for typed
// C++ code, the same codes as plain ints (kF32, kBF16, kF16) for template parameters and for the
// int dtype fields of the CUDA argument structs (rkcuda::LogitsDType is an alias of DTypeCode), and
// the element size.
//
// lib/ (the TS facade) passes these codes through the bindings as plain numbers: its DTYPE codes
// must match f32 = 0, bf16 = 1, f16 = 2.
#pragma once

#include "hd.h"

namespace rk {

enum class DType : int { F32 = 0, BF16 = 1, F16 = 2 };
constexpr int kDTypeCount = 3;
static_assert(static_cast<int>(DType::F16) + 1 == kDTypeCount, "DType: last enumerator + 1 == count");

// The same codes as plain ints.
enum DTypeCode : int {
  kF32 = static_cast<int>(DType::F32),
  kBF16 = static_cast<int>(DType::BF16),
  kF16 = static_cast<int>(DType::F16),
};
static_assert(kF32 == 0 && kBF16 == 1 && kF16 == 2, "dtype codes are the TS facade's (lib DTYPE)");

// Bytes per element.
RK_HD constexpr int dtype_size(int code) { return code == kF32 ? 4 : 2; }
RK_HD constexpr int dtype_size(DType d) { return dtype_size(static_cast<int>(d)); }
// Whether an int is one of the codes.
RK_HD constexpr bool dtype_valid(int code) { return code >= 0 && code < kDTypeCount; }

}  // namespace rk
