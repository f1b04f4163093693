// Scalar f32 helpers of the shared core with the same result on both backends.
//   max_x86 / min_x86  like x86 maxps / minps: the SECOND operand when either is NaN (the C++ SIMD
//                      kernels use those instructions, so the CUDA kernels copy the semantics)
//   add_rn / sub_rn    a rounded add / subtract that nvcc never fuses with a neighbouring multiply
//                      (__fadd_rn / __fsub_rn); on the host a plain + / -. The host core is compiled
//                      only in translation units without -mfma, so g++ contracts nothing there.
//   fma_f              a*b + c with one rounding on both backends.
#pragma once

#include "hd.h"

namespace rk {
namespace core {

RK_HD float max_x86(float a, float b) { return a > b ? a : b; }
RK_HD float min_x86(float a, float b) { return a < b ? a : b; }

RK_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
RK_HD float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
RK_HD float fma_f(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return __builtin_fmaf(a, b, c);
#endif
}

}  // namespace core
}  // namespace rk
