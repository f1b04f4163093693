// Decoding of vocabDivergence (lib/divergence/), shared by the CPU addon (native/binding/divergence.cc)
// and the CUDA addon (native/cuda_binding/divergence.cc): slots and params by the names of
// layout.gen.h, every length rechecked.
#pragma once
#include <climits>
#include <cmath>
#include <cstdint>

#include "../../kernels/divergence.h"
#include "../slots.h"
#include "logits.h"

// The family's ops, X(jsName, EntryPoint): both addons define these entry points and register them
// with RK_REGISTER_OPS (native/binding/common.h).
#define RK_DIVERGENCE_OPS(X) \
  X(vocabDivergence, Divergence)

namespace rkb {

namespace LD = rkl::vocabDivergence;
RK_ASSERT_LOGITS_DTYPES(LD);
static_assert(LD::divergence_code::forward_kl == static_cast<int>(rk::DivergenceKind::ForwardKL) &&
                  LD::divergence_code::reverse_kl == static_cast<int>(rk::DivergenceKind::ReverseKL) &&
                  LD::divergence_code::jsd == static_cast<int>(rk::DivergenceKind::JSD) &&
                  LD::divergence_code::kCount == 3,
              "vocabDivergence kinds: lib/divergence/enums.ts and rk::DivergenceKind disagree");

struct VocabDivergenceCall {
  rk::LogitsView logits{nullptr, rk::DType::F32, 0, 0};
  rk::LogitsView target{nullptr, rk::DType::F32, 0, 0};
  rk::DivergenceParams p;
  const uint8_t* mask = nullptr;    // (N) optional: 0 = inactive row
  const int32_t* labels = nullptr;  // (N) optional: labels[r] == ignore = inactive row
  int32_t ignore = -100;
  float* div = nullptr;             // (N)
  double grad_scale = 1;            // dL/dD = grad_scale * (grad_rows ? grad_rows[r] : 1)
  const float* grad_rows = nullptr; // (N) optional
  float* grad = nullptr;            // (N, V) optional; may be the f32 logits themselves (in place)
};

// `device`: the device kernel checks a gradient over the target itself (the host checks it here).
inline VocabDivergenceCall DecodeVocabDivergence(const OpArgs& a, bool device) {
  VocabDivergenceCall c;
  c.logits = DecodeLogits(a, {LD::slot::logits, LD::param::vocab, LD::param::dtype}, device);
  const Slot& logits = a[LD::slot::logits];
  const Slot& target = a.Need(LD::slot::targetLogits, {logits.type}, static_cast<int64_t>(logits.length));
  c.target = c.logits;
  c.target.data = target.data;
  const int64_t n = c.logits.rows;
  c.p.kind = static_cast<rk::DivergenceKind>(a.Enum(LD::param::divergence, "divergence", LD::divergence_code::kCount));
  c.p.beta = a.Param(LD::param::beta, "beta", 0, 1);
  c.p.temperature = TemperatureParam(a, LD::param::temperature, device);
  c.mask = a.Maybe(LD::slot::mask, {SlotType::U8}, n).as<const uint8_t>();
  c.labels = a.Maybe(LD::slot::labels, {SlotType::I32}, n).as<const int32_t>();
  c.ignore = static_cast<int32_t>(IntParam(a, LD::param::ignoreIndex, "ignoreIndex", INT32_MIN, INT32_MAX));
  c.div = a.Out(LD::slot::divergence, {SlotType::F32}, n).as<float>();
  c.grad_scale = a.Param(LD::param::gradOutput, "gradOutput", -HUGE_VAL, HUGE_VAL);
  if (!std::isfinite(c.grad_scale)) throw a.Range("params.gradOutput: expected a finite number");
  c.grad_rows = a.Maybe(LD::slot::gradOutput, {SlotType::F32}, n).as<const float>();
  const Slot& grad = a.MaybeOut(LD::slot::gradient, {SlotType::F32}, static_cast<int64_t>(logits.length));
  if (grad.present) {
    if (logits.length > 0 && grad.data == logits.data && c.logits.dtype != rk::DType::F32)
      throw Napi::TypeError::New(a.env, "gradient: an in-place gradient needs f32 logits");
    const size_t bytes = LogitsBytes(c.logits);
    if (!device && grad.data != logits.data && BytesOverlap(grad.data, grad.length * 4, logits.data, bytes))
      throw a.Range("gradient: overlaps logits without being the same memory");
    if (!device && BytesOverlap(grad.data, grad.length * 4, target.data, bytes))
      throw a.Range("gradient: overlaps targetLogits");
    c.grad = grad.as<float>();
  }
  return c;
}

}  // namespace rkb
