// CPU entry points of the DRAKES ops (sync and Promise forms), on the op protocol (slots.h); the
// decoding is ops/drakes.h.
#include "common.h"

#include <string>

#include "ops/drakes.h"

namespace {

Napi::Value GumbelSoftmax(const Napi::CallbackInfo& info, bool async) {
  const rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LG);
  const rkb::GumbelSoftmaxCall c = rkb::DecodeGumbelSoftmax(a, false);
  return rkb::Run(info, async, [c]() -> std::string {
    rk::Status st = rk::gumbel_softmax_forward(c.logits, c.p, c.sample, c.index);
    if (st.ok()) return "";
    return "gumbelSoftmax: invalid arguments (code " + std::to_string(st.code) + ")";
  }, a.Done());
}

Napi::Value GumbelSoftmaxBackward(const Napi::CallbackInfo& info, bool async) {
  const rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LGB);
  const rkb::GumbelSoftmaxBackwardCall c = rkb::DecodeGumbelSoftmaxBackward(a, false);
  return rkb::Run(info, async, [c]() -> std::string {
    rk::Status st = rk::gumbel_softmax_backward(c.logits, c.p, c.grad_sample, c.grad);
    if (st.ok()) return "";
    return "gumbelSoftmaxBackward: invalid arguments (code " + std::to_string(st.code) + ")";
  }, a.Done());
}

Napi::Value DrakesKl(const Napi::CallbackInfo& info, bool async) {
  const rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LDK);
  const rk::GklCall c = rkb::DecodeDrakesKl(a, false);
  return rkb::Run(info, async, [c]() -> std::string {
    rk::Status st = rk::drakes_kl(c);
    if (st.ok()) return "";
    return "drakesKl: invalid arguments (code " + std::to_string(st.code) + ")";
  }, a.Done());
}

}  // namespace

RK_REGISTER_OPS(drakes, RK_DRAKES_OPS);
