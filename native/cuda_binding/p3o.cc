// CUDA entry point of p3oLoss (cuda/p3o.h), sync and Promise forms, on the
// op protocol (native/binding/slots.h) with the decoding shared with the CPU addon (ops/p3o.h).
#include "p3o.h"
#include "cuda_common.h"
#include "ops/p3o.h"

namespace {

Napi::Value P3oLoss(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LP3);
  const rkb::P3oCall c = rkb::DecodeP3oLoss(oa);
  rkcuda::P3oArgs a;
  a.in = c.in;
  a.params = c.params;
  a.out = c.out;
  double* so = oa.scalars;
  return rkcb::RunDevice(
      info, async,
      [a, so]() {
        return rkcb::KernelWithScalars(a, &rkcuda::P3oArgs::scalars, rkb::LP3::scalar::kCount, so, rkcuda::p3o_loss);
      },
      nullptr);
}

}  // namespace

RK_REGISTER_OPS(cuda_p3o, RK_P3O_OPS);
