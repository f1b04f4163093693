// CPU entry points of tokenLogprobs and tokenLogprobsBackward (sync and Promise forms), on the op
// protocol (slots.h); the decoding is shared with the CUDA addon (ops/logprobs.h).
#include "common.h"

#include "ops/logprobs.h"

namespace {

Napi::Value Forward(const Napi::CallbackInfo& info, bool async) {
  const rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LF);
  const rkb::TokenLogprobsCall t = rkb::DecodeTokenLogprobs(a, false);
  return rkb::Run(info, async, [t]() {
    const rkb::LogprobsCommon& c = t.c;
    rk::Status st = rk::token_logprobs_forward(c.view, c.targets, static_cast<float>(c.temperature), c.ignore, t.logp,
                                               t.lse, t.entropy);
    return rkb::StatusMessage(st, c.view.vocab);
  }, a.Done());
}

Napi::Value Backward(const Napi::CallbackInfo& info, bool async) {
  const rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LB);
  const rkb::TokenLogprobsBackwardCall t = rkb::DecodeTokenLogprobsBackward(a, false);
  return rkb::Run(info, async, [t]() {
    const rkb::LogprobsCommon& c = t.c;
    rk::Status st = rk::token_logprobs_backward(c.view, c.targets, static_cast<float>(c.temperature), c.ignore,
                                                t.grad_logp, t.grad_entropy, t.lse, t.entropy, t.grad);
    return rkb::StatusMessage(st, c.view.vocab);
  }, a.Done());
}

}  // namespace

RK_REGISTER_OPS(logprobs, RK_LOGPROBS_OPS);
