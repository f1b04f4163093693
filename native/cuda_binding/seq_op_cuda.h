// The CUDA entry point of a sequence op: the decoding of native/binding/ops/seq_op.h (shared with the
// CPU addon's CpuSeqOp), the launch of its cuda/seq_ops.gen.cu function, and a bad f32 mask weight
// (found on the device) worded as on the host, the weight read back.
#pragma once
#include "cuda_common.h"
#include "ops/seq_op.h"

namespace rkcb {

// Launch: rkcuda::seq_<name>(const rk::SeqOpArgs<...>&, const Op::Params&, double* scalars, void* stream).
template <typename Op, const rkb::SeqLayout& L, auto Launch>
Napi::Value CudaSeqOp(const Napi::CallbackInfo& info, bool async) {
  const rkb::SeqCall<Op> c = rkb::ReadSeqOp<Op, L>(info, true);
  return RunDevice(info, async, [c]() { return Launch(c.s, c.p, c.scalars, nullptr); },
                   BadMaskWeightText(c.s.mask_kind == rk::SeqMask::F32 ? c.s.mask : nullptr));
}

}  // namespace rkcb
