// CPU entry points of maskTruncatedCompletions (sync and Promise forms), on the op protocol
// (slots.h); the decoding is shared with the CUDA addon (ops/truncation.h).
#include "common.h"

#include <string>

#include "ops/truncation.h"

namespace {

Napi::Value MaskTruncatedCompletions(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LMT);
  const rkb::MaskTruncatedCompletionsCall c = rkb::DecodeMaskTruncatedCompletions(a);
  return rkb::Run(info, async, [c]() -> std::string {
    rk::mask_truncated_completions(c.ids, c.mask, c.rows, c.T, c.eos, c.pad, c.out, c.truncated);
    return "";
  }, a.Done());
}

}  // namespace

RK_REGISTER_OPS(truncation, RK_TRUNCATION_OPS);
