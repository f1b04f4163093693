// Generic decoding and entry points of the sequence ops (native/core/seq_op.h): the decoding is
// shared by the CPU and CUDA addons, CpuSeqOp is the CPU entry point (the CUDA one is
// native/cuda_binding/seq_op_cuda.h). An op's descriptor (lib/) lists its slots as: the Op's inputs in
// order, `mask`, then its gradients; its params start with `seqLen` and are the Op's Params, all
// doubles, in order (ReadSeqOp checks the counts, native/binding/seq_ops.gen.cc every offset); its
// scalars are loss, the Op's metrics, the mask sum.
#pragma once
#include <climits>
#include <cmath>
#include <cstring>
#include <string>
#include <string_view>

#include "../../core/seq_op.h"
#include "../../kernels/seq_driver.h"  // rk::run_seq_op (CPU)
#include "../common.h"
#include "../slots.h"

namespace rkb {

// The SeqOpArgs of a call. Bit k of per_row_ok: input k may hold one value per row (length B).
template <typename Op>
rk::SeqOpArgs<Op::kInputs, Op::kGrads> DecodeSeqOp(const OpArgs& a, unsigned per_row_ok, typename Op::Params* p) {
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
    const bool row_ok = (per_row_ok >> k) & 1u;
    if (x.length != n && !(row && row_ok))
      throw a.Range(std::string(a.names[k]) + ": expected length " + std::to_string(n) +
                    (row_ok ? " or " + std::to_string(B) : std::string()) + ", received " + std::to_string(x.length));
    s.in[k] = x.template as<const float>();
    s.per_token[k] = !row;
  }
  const Slot& m = a.Maybe(Op::kInputs, {SlotType::U8, SlotType::F32}, static_cast<int64_t>(n));
  s.mask = m.data;
  s.mask_kind = !m.present ? rk::SeqMask::None : m.type == SlotType::U8 ? rk::SeqMask::U8 : rk::SeqMask::F32;
  for (int k = 0; k < Op::kGrads; ++k) s.grad[k] = a.Out(Op::kInputs + 1 + k, {SlotType::F32}, static_cast<int64_t>(n)).template as<float>();
  s.B = B;
  s.T = T;
  return s;
}

// A sequence op's protocol layout (the counts and slot names of its namespace in layout.gen.h) and
// which inputs may hold one value per row (bit k: input k). RK_SEQ_LAYOUT(name, per_row) makes one
// from rkl::name; seq_ops.gen.cc defines one constexpr SeqLayout per op.
struct SeqLayout {
  const char* const* slot_names;
  size_t slots, params, scalars;
  unsigned per_row;
};
#define RK_SEQ_LAYOUT(name, per_row) \
  ::rkb::SeqLayout{rkl::name::kSlotNames, rkl::name::slot::kCount, rkl::name::param::kCount, rkl::name::scalar::kCount, per_row}

// A decoded call: the kernel arguments, the options and where the scalars go.
template <typename Op>
struct SeqCall {
  rk::SeqOpArgs<Op::kInputs, Op::kGrads> s;
  typename Op::Params p;
  double* scalars;
};

// Reads and decodes a call of Op with layout L (device: the CUDA addon's slot form), after checking
// at compile time that the layout is the Op's: slots are the inputs, mask, the gradients; scalars
// are loss, metrics, mask sum; params are the Op's Params, doubles (the offsets: seq_ops.gen.cc).
// `done` (host Async calls): the call works on a HostSnapshot (slots.h) whose completion goes there.
template <typename Op, const SeqLayout& L>
SeqCall<Op> ReadSeqOp(const Napi::CallbackInfo& info, bool device, Completion* done = nullptr) {
  static_assert(L.slots == Op::kInputs + 1 + Op::kGrads, "slots are the inputs, mask, gradients");
  static_assert(std::string_view(L.slot_names[Op::kInputs]) == "mask", "the slot after the inputs is mask");
  static_assert(L.scalars == rk::seq_op_scalar_count<Op>(), "scalars are loss, metrics, mask sum");
  static_assert(sizeof(typename Op::Params) == sizeof(double) * L.params, "Params are the options, doubles");
  const OpArgs a = ReadOpArgs(info, device, L.slot_names, L.slots, L.params, L.scalars, done != nullptr && !device);
  SeqCall<Op> c;
  c.s = DecodeSeqOp<Op>(a, L.per_row, &c.p);
  c.scalars = a.scalars;
  if (done != nullptr) *done = a.Done();
  return c;
}

// The CPU entry point of Op (rk::run_seq_op, native/kernels/seq_driver.h), sync or Promise.
template <typename Op, const SeqLayout& L>
Napi::Value CpuSeqOp(const Napi::CallbackInfo& info, bool async) {
  Completion done;
  const SeqCall<Op> c = ReadSeqOp<Op, L>(info, false, async ? &done : nullptr);
  return Run(info, async, [c]() -> std::string {
    const rk::Status st = rk::run_seq_op<Op>(c.s, c.p, c.scalars);
    if (st.code == rk::Status::BadIndex) return MaskWeightMessage(st.index, static_cast<const float*>(c.s.mask)[st.index]);
    return st.ok() ? std::string() : StatusMessage(st, 0);
  }, std::move(done));
}

}  // namespace rkb
