// CPU entry points of p3oLoss (sync and Promise forms), on the op protocol (slots.h);
// the decoding is shared with the CUDA addon (ops/p3o.h).
#include "common.h"

#include <string>

#include "ops/p3o.h"

namespace {

Napi::Value P3oLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LP3);
  const rkb::P3oCall c = rkb::DecodeP3oLoss(a);
  double* s = a.scalars;
  return rkb::Run(info, async, [c, s]() -> std::string {
    rk::p3o_loss(c.in, c.params, c.out, s);
    return "";
  }, a.Done());
}

}  // namespace

RK_REGISTER_OPS(p3o, RK_P3O_OPS);
