// CUDA entry point of maskTruncatedCompletions (cuda/truncation.h), sync and Promise forms, on the op
// protocol (native/binding/slots.h) with the decoding shared with the CPU addon (ops/truncation.h).
#include "truncation.h"
#include "cuda_common.h"
#include "ops/truncation.h"

namespace {

Napi::Value MaskTruncatedCompletions(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LMT);
  const rkb::MaskTruncatedCompletionsCall c = rkb::DecodeMaskTruncatedCompletions(oa);
  return rkcb::RunDevice(
      info, async,
      [c]() { return rkcuda::mask_truncated_completions(c.ids, c.mask, c.rows, c.T, c.eos, c.pad, c.out, c.truncated, nullptr); },
      nullptr);
}

}  // namespace

RK_REGISTER_OPS(cuda_truncation, RK_TRUNCATION_OPS);
