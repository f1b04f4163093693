// Decoding of the logits argument (lib/logits.ts), shared by ops/logprobs.h and ops/divergence.h and
// so by both addons: the vocab and dtype params, the logits slot (f32 logits in an F32 slot, bf16 /
// f16 bits in a U16 slot) and its rows, and the scalar params every logits op checks the same way.
#pragma once
#include <climits>
#include <cmath>
#include <cstdint>
#include <string>

#include "../../kernels/logprobs.h"  // rk::LogitsView, rk::DType
#include "../slots.h"

namespace rkb {

// params[i] as an integer in [lo, hi].
inline int64_t IntParam(const OpArgs& a, int i, const char* name, double lo, double hi) {
  const double v = a.Param(i, name, lo, hi);
  if (std::floor(v) != v) throw a.Range(std::string("params.") + name + ": expected an integer");
  return static_cast<int64_t>(v);
}

// A temperature whose reciprocal is finite too (on the device, also as a float: the kernels take one).
inline double TemperatureParam(const OpArgs& a, int i, bool device) {
  const double t = a.params[i];
  if (!(t > 0) || !std::isfinite(t) || !std::isfinite(1.0 / t) || (device && !std::isfinite(static_cast<float>(t))))
    throw a.Range("params.temperature: expected a finite positive number");
  return t;
}

// The dtype codes of op L (a namespace of layout.gen.h) are rk::DType's.
#define RK_ASSERT_LOGITS_DTYPES(L)                                                                           \
  static_assert(L::dtype_code::f32 == static_cast<int>(::rk::DType::F32) &&                                 \
                    L::dtype_code::bf16 == static_cast<int>(::rk::DType::BF16) &&                           \
                    L::dtype_code::f16 == static_cast<int>(::rk::DType::F16) && L::dtype_code::kCount == 3, \
                #L " dtypes: lib/logits.ts LOGITS_DTYPES and rk::DType disagree")

// Where an op keeps its logits slot and its vocab and dtype params (layout.gen.h names).
struct LogitsLayout {
  int logits, vocab, dtype;
};

// The logits slot as a view: the dtype param picks the slot type (F32 for f32, U16 for bf16 / f16),
// the length is a multiple of vocab; on the device at most 2^31 - 1 rows (the kernels' grid).
inline rk::LogitsView DecodeLogits(const OpArgs& a, const LogitsLayout& l, bool device) {
  const int dtype = a.Enum(l.dtype, "dtype", 3);
  const Slot& s = a.Need(l.logits, {dtype == static_cast<int>(rk::DType::F32) ? SlotType::F32 : SlotType::U16});
  const int64_t vocab = IntParam(a, l.vocab, "vocab", 1, INT32_MAX);
  if (s.length % static_cast<size_t>(vocab) != 0)
    throw a.Range("logits: expected a length that is a multiple of vocab (" + std::to_string(vocab) + "), received " +
                  std::to_string(s.length));
  const int64_t rows = static_cast<int64_t>(s.length) / vocab;
  if (device && rows > INT32_MAX) throw a.Range("logits: more than 2^31 - 1 rows");
  return rk::LogitsView{s.data, static_cast<rk::DType>(dtype), rows, vocab};
}

// Byte ranges [a, a + an) and [b, b + bn) overlap (empty ranges overlap nothing).
inline bool BytesOverlap(const void* a, size_t an, const void* b, size_t bn) {
  const uintptr_t a0 = reinterpret_cast<uintptr_t>(a), b0 = reinterpret_cast<uintptr_t>(b);
  return an > 0 && bn > 0 && a0 < b0 + bn && b0 < a0 + an;
}

inline size_t LogitsBytes(const rk::LogitsView& v) {
  return static_cast<size_t>(v.rows * v.vocab) * static_cast<size_t>(rk::dtype_size(v.dtype));
}

}  // namespace rkb
