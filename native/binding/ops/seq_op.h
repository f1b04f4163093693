// Generic decoding and registration of the sequence ops (native/core/seq_op.h), shared by the CPU
// and CUDA addons. An op's descriptor (lib/) lists its slots as: the Op's inputs in order, `mask`,
// then its gradients; its params start with `seqLen` and are the Op's Params, all doubles, in order
// (seq_ops.gen.cc checks every offset); its scalars are loss, the Op's metrics, the mask sum.
#pragma once
#include <climits>
#include <cmath>
#include <cstring>
#include <string>

#include "../../core/seq_op.h"
#include "../slots.h"

namespace rkb {

// The SeqOpArgs of a call. per_row_ok[k]: input k may hold one value per row (length B).
template <typename Op>
rk::SeqOpArgs<Op::kInputs, Op::kGrads> DecodeSeqOp(const OpArgs& a, const bool* per_row_ok, typename Op::Params* p) {
  static_assert(sizeof(typename Op::Params) % sizeof(double) == 0, "Params: doubles only");
  if (a.num_params * sizeof(double) != sizeof(typename Op::Params)) throw a.Range("params: wrong count for this op");
  std::memcpy(p, a.params, sizeof(typename Op::Params));
  rk::SeqOpArgs<Op::kInputs, Op::kGrads> s;
  const Slot& first = a.Need(0, {SlotType::F32});
  const size_t n = first.length;
  const double Td = a.params[0];  // seqLen (checked first in every descriptor)
  if (!(Td >= 1 && Td <= INT32_MAX) || std::floor(Td) != Td) throw a.Range("seqLen: expected a positive integer");
  const int64_t T = static_cast<int64_t>(Td);
  if (n % static_cast<size_t>(T) != 0)
    throw a.Range(std::string("seqLen: expected a divisor of the length of ") + a.names[0] + " (" + std::to_string(n) +
                  "), received " + std::to_string(T));
  const int64_t B = static_cast<int64_t>(n) / T;
  for (int k = 0; k < Op::kInputs; ++k) {
    const Slot& x = a.Need(k, {SlotType::F32});
    const bool row = x.length == static_cast<size_t>(B) && x.length != n;
    if (x.length != n && !(row && per_row_ok[k]))
      throw a.Range(std::string(a.names[k]) + ": expected length " + std::to_string(n) +
                    (per_row_ok[k] ? " or " + std::to_string(B) : std::string()) + ", received " + std::to_string(x.length));
    s.in[k] = x.template as<const float>();
    s.per_token[k] = !row;
  }
  const Slot& m = a.Maybe(Op::kInputs, {SlotType::U8, SlotType::F32}, static_cast<int64_t>(n));
  s.mask = m.data;
  s.mask_kind = !m.present ? rk::SeqMask::None : m.type == SlotType::U8 ? rk::SeqMask::U8 : rk::SeqMask::F32;
  for (int k = 0; k < Op::kGrads; ++k) s.grad[k] = a.Need(Op::kInputs + 1 + k, {SlotType::F32}, static_cast<int64_t>(n)).template as<float>();
  s.B = B;
  s.T = T;
  return s;
}

// The message of a bad f32 mask weight, as the host facade words it.
inline std::string SeqMaskMessage(int64_t index, float w) {
  return "mask[" + std::to_string(index) + "]: expected a finite weight >= 0, received " + std::to_string(w);
}

}  // namespace rkb
