// CUDA entry points of the DRAKES ops (cuda/drakes.h), sync and Promise forms, on the op protocol
// (native/binding/slots.h) with the decoding shared with the CPU addon (ops/drakes.h). Each call
// waits for the legacy default stream so errors surface in it.
#include <cuda_runtime.h>

#include "cuda_common.h"
#include "drakes.h"
#include "ops/drakes.h"

namespace {

rkcuda::Result Sync(rkcuda::Result r, const char* where) {
  if (!r.ok()) return r;
  const cudaError_t e = cudaStreamSynchronize(nullptr);
  if (e != cudaSuccess) {
    r.code = rkcuda::kCudaError;
    r.cuda_error = static_cast<int>(e);
    r.where = where;
  }
  return r;
}

rkcuda::GumbelArgs Gumbel(const rk::LogitsView& l, const rk::GumbelParams& p) {
  rkcuda::GumbelArgs a;
  a.logits = l.data;
  a.dtype = static_cast<int>(l.dtype);
  a.rows = l.rows;
  a.vocab = l.vocab;
  a.temperature = p.temperature;
  a.seed = p.seed;
  a.hard = p.hard;
  return a;
}

Napi::Value GumbelSoftmax(const Napi::CallbackInfo& info, bool async) {
  const rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LG);
  const rkb::GumbelSoftmaxCall c = rkb::DecodeGumbelSoftmax(oa, true);
  rkcuda::GumbelArgs a = Gumbel(c.logits, c.p);
  a.sample = c.sample;
  a.index = c.index;
  return rkcb::RunDevice(
      info, async, [a]() { return Sync(rkcuda::gumbel_softmax_forward(a, nullptr), "gumbel_softmax (cudaStreamSynchronize)"); },
      nullptr);
}

Napi::Value GumbelSoftmaxBackward(const Napi::CallbackInfo& info, bool async) {
  const rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LGB);
  const rkb::GumbelSoftmaxBackwardCall c = rkb::DecodeGumbelSoftmaxBackward(oa, true);
  rkcuda::GumbelArgs a = Gumbel(c.logits, c.p);
  a.grad_sample = c.grad_sample;
  a.grad = c.grad;
  return rkcb::RunDevice(
      info, async,
      [a]() { return Sync(rkcuda::gumbel_softmax_backward(a, nullptr), "gumbel_softmax_backward (cudaStreamSynchronize)"); },
      nullptr);
}

Napi::Value DrakesKl(const Napi::CallbackInfo& info, bool async) {
  const rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LDK);
  const rk::GklCall c = rkb::DecodeDrakesKl(oa, true);
  rkcuda::DrakesKlArgs a;
  a.logits = c.logits.data;
  a.old = c.old.data;
  a.dtype = static_cast<int>(c.logits.dtype);
  a.rows = c.logits.rows;
  a.vocab = c.logits.vocab;
  a.mask = c.mask;
  a.move_chance = c.move_chance;
  a.move_chance_rows = c.move_chance_rows;
  a.grad_scale = c.grad_scale;
  a.grad_rows = c.grad_rows;
  a.kl = c.kl;
  a.grad = c.grad;
  a.grad_old = c.grad_old;
  return rkcb::RunDevice(
      info, async, [a]() { return Sync(rkcuda::drakes_kl(a, nullptr), "drakes_kl (cudaStreamSynchronize)"); }, nullptr);
}

}  // namespace

RK_REGISTER_OPS(cuda_drakes, RK_DRAKES_OPS);
