// CUDA entry point of copoAdvantages (cuda/copo.h), sync and Promise forms, on the op protocol
// (native/binding/slots.h) with the decoding shared with the CPU addon (ops/copo.h).
#include "copo.h"
#include "cuda_common.h"
#include "ops/copo.h"

namespace {

Napi::Value CopoAdvantages(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LCA);
  const rkb::CopoAdvantagesCall c = rkb::DecodeCopoAdvantages(oa, true);
  return rkcb::RunDevice(
      info, async,
      [c]() { return rkcuda::copo_advantages(c.a, c.entropy, c.global_reward, c.local_adv, c.global_adv, c.gates, nullptr); },
      nullptr);
}

}  // namespace

RK_REGISTER_OPS(cuda_copo, RK_COPO_OPS);
