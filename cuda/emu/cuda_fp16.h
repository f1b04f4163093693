// Host emulation of the half-precision helpers used by cuda/*.cu and the driver (see cuda_runtime.h).
#pragma once
#include <cstdint>
#include <cstring>

#include "cuda_runtime.h"
#include "../../native/kernels/half.h"  // rk::f16_to_f32

struct __half_raw {
  unsigned short x;
};
struct __half {
  unsigned short x;
  operator __half_raw() const { return __half_raw{x}; }
};
struct __half2 {
  __half a, b;
};

// The C++ kernels' own conversion (native/kernels/half.h): one definition of f16 -> f32.
inline float __half2float(__half h) { return rk::f16_to_f32(h.x); }
inline __half __ushort_as_half(unsigned short s) { return __half{s}; }
inline unsigned short __half_as_ushort(__half h) { return h.x; }
inline float2 __half22float2(__half2 h) { return float2{__half2float(h.a), __half2float(h.b)}; }
// Round to nearest even.
inline __half __float2half_rn(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return __half{static_cast<unsigned short>(sign | 0x7e00u)};
  if (x >= 0x477ff000u) return __half{static_cast<unsigned short>(sign | 0x7c00u)};  // >= 65520: inf
  if (x < 0x38800000u) {  // below 2^-14: subnormal half or zero
    if (x < 0x33000000u) return __half{sign};
    const uint32_t e = x >> 23, m = (x & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;
    uint32_t hm = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (hm & 1u))) ++hm;
    return __half{static_cast<unsigned short>(sign | hm)};
  }
  const uint32_t r = x + 0xc8000fffu + ((x >> 13) & 1u);
  return __half{static_cast<unsigned short>(sign | (r >> 13))};
}
