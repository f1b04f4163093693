// Decoding of maskTruncatedCompletions (lib/policy/), shared by the CPU addon
// (native/binding/truncation.cc) and the CUDA addon (native/cuda_binding/truncation.cc): slots and
// params by the names of layout.gen.h, every length rechecked.
#pragma once
#include <climits>
#include <cmath>
#include <string>

#include "../../kernels/truncation.h"
#include "../slots.h"

#define RK_TRUNCATION_OPS(X) X(maskTruncatedCompletions, MaskTruncatedCompletions)

namespace rkb {

namespace LMT = rkl::maskTruncatedCompletions;

struct MaskTruncatedCompletionsCall {
  const int32_t* ids = nullptr;
  rk::TokenMask mask;  // data null: every token
  int64_t rows = 0, T = 0, eos = 0, pad = -1;
  float* out = nullptr;
  float* truncated = nullptr;
};

inline int64_t TruncIntParam(const OpArgs& a, int i, const char* name, int64_t lo, int64_t hi) {
  const double v = a.Param(i, name, static_cast<double>(lo), static_cast<double>(hi));
  if (std::floor(v) != v) throw a.Range(std::string(name) + ": expected an integer");
  return static_cast<int64_t>(v);
}

inline MaskTruncatedCompletionsCall DecodeMaskTruncatedCompletions(const OpArgs& a) {
  MaskTruncatedCompletionsCall c;
  const Slot& ids = a.Need(LMT::slot::completionIds, {SlotType::I32});
  const size_t n = ids.length;
  c.T = TruncIntParam(a, LMT::param::seqLen, "seqLen", 1, INT32_MAX);
  if (n % static_cast<size_t>(c.T) != 0)
    throw a.Range("seqLen: expected a divisor of the length of completionIds (" + std::to_string(n) + "), received " +
                  std::to_string(c.T));
  c.rows = static_cast<int64_t>(n) / c.T;
  c.eos = TruncIntParam(a, LMT::param::eosTokenId, "eosTokenId", 0, INT32_MAX);
  c.pad = TruncIntParam(a, LMT::param::padTokenId, "padTokenId", -1, INT32_MAX);
  const Slot& mask = a.Maybe(LMT::slot::mask, {SlotType::U8, SlotType::F32}, static_cast<int64_t>(n));
  c.ids = ids.as<const int32_t>();
  c.mask.data = mask.present ? mask.data : nullptr;
  c.mask.is_f32 = mask.present && mask.type == SlotType::F32;
  c.out = a.Out(LMT::slot::out, {SlotType::F32}, static_cast<int64_t>(n)).as<float>();
  c.truncated = a.Out(LMT::slot::truncated, {SlotType::F32}, c.rows).as<float>();
  return c;
}

}  // namespace rkb
