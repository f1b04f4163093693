// CUDA entry points of tokenLogprobs and tokenLogprobsBackward (cuda/logprobs.h), sync and Promise
// forms, on the op protocol (native/binding/slots.h) with the decoding shared with the CPU addon
// (ops/logprobs.h). The kernels run on the legacy default stream and check the targets on the
// device: the call waits for the stream (the Promise form waits on a libuv thread) and a bad target
// becomes the same RangeError text as the CPU path's.
#include <string>

#include "cuda_common.h"
#include "logprobs.h"
#include "ops/logprobs.h"

namespace {

static_assert(rkcuda::kF32 == static_cast<int>(rk::DType::F32) && rkcuda::kBF16 == static_cast<int>(rk::DType::BF16) &&
                  rkcuda::kF16 == static_cast<int>(rk::DType::F16),
              "rkcuda::LogitsDType and rk::DType disagree");

// The host path's text (lib/logprobs/shared.ts readCommon), so both paths throw the same RangeError.
rkcb::BadTargetText BadTarget(int64_t vocab, int32_t ignore) {
  return [vocab, ignore](int64_t row, int64_t y) {
    return "targets[" + std::to_string(row) + "]: expected an id in [0, " + std::to_string(vocab) +
           ") or ignoreIndex (" + std::to_string(ignore) + "), received " + std::to_string(y);
  };
}

template <typename Args>
void SetCommon(Args& a, const rkb::LogprobsCommon& c) {
  a.logits = c.view.data;
  a.dtype = static_cast<int>(c.view.dtype);
  a.rows = c.view.rows;
  a.vocab = c.view.vocab;
  a.targets = c.targets;
  a.temperature = static_cast<float>(c.temperature);
  a.ignore_index = c.ignore;
}

Napi::Value Forward(const Napi::CallbackInfo& info, bool async) {
  const rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LF);
  const rkb::TokenLogprobsCall t = rkb::DecodeTokenLogprobs(oa, true);
  rkcuda::LogprobsForwardArgs a;
  SetCommon(a, t.c);
  a.logp = t.logp;
  a.lse = t.lse;
  a.entropy = t.entropy;
  return rkcb::RunDevice(info, async, [a]() { return rkcuda::token_logprobs_forward(a, nullptr); },
                         BadTarget(t.c.view.vocab, t.c.ignore));
}

Napi::Value Backward(const Napi::CallbackInfo& info, bool async) {
  const rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LB);
  const rkb::TokenLogprobsBackwardCall t = rkb::DecodeTokenLogprobsBackward(oa, true);
  rkcuda::LogprobsBackwardArgs a;
  SetCommon(a, t.c);
  a.grad_logp = t.grad_logp;
  a.grad_entropy = t.grad_entropy;
  a.lse = t.lse;
  a.entropy = t.entropy;
  a.grad = t.grad;
  return rkcb::RunDevice(info, async, [a]() { return rkcuda::token_logprobs_backward(a, nullptr); },
                         BadTarget(t.c.view.vocab, t.c.ignore));
}

}  // namespace

RK_REGISTER_OPS(cuda_logprobs, RK_LOGPROBS_OPS);
