// CPU entry points of copoAdvantages (sync and Promise forms), on the op protocol (slots.h); the
// decoding is shared with the CUDA addon (ops/copo.h).
#include "common.h"

#include <string>

#include "ops/copo.h"

namespace {

Napi::Value CopoAdvantages(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs a = RK_READ_HOST_OP(info, async, rkb::LCA);
  const rkb::CopoAdvantagesCall c = rkb::DecodeCopoAdvantages(a, false);
  return rkb::Run(info, async, [c]() -> std::string {
    rk::copo_advantages(c.a, c.entropy, c.global_reward, c.local_adv, c.global_adv, c.gates);
    return "";
  }, a.Done());
}

}  // namespace

RK_REGISTER_OPS(copo, RK_COPO_OPS);
