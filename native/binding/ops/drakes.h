// Decoding of the DRAKES ops (lib/diffusion/): slots and params by the names of layout.gen.h, every
// length rechecked.
#pragma once
#include <cmath>
#include <cstdint>

#include "../../kernels/drakes.h"
#include "../slots.h"
#include "logits.h"

#define RK_DRAKES_OPS(X)            \
  X(gumbelSoftmax, GumbelSoftmax) \
  X(gumbelSoftmaxBackward, GumbelSoftmaxBackward) \
  X(drakesKl, DrakesKl)

namespace rkb {

namespace LG = rkl::gumbelSoftmax;
namespace LGB = rkl::gumbelSoftmaxBackward;
namespace LDK = rkl::drakesKl;
RK_ASSERT_LOGITS_DTYPES(LDK);
RK_ASSERT_LOGITS_DTYPES(LG);
RK_ASSERT_LOGITS_DTYPES(LGB);

// The seed param: an integer in [0, 2^53 - 1].
inline uint64_t SeedParam(const OpArgs& a, int i) {
  return static_cast<uint64_t>(IntParam(a, i, "seed", 0, 9007199254740991.0));
}

struct GumbelSoftmaxCall {
  rk::LogitsView logits{nullptr, rk::DType::F32, 0, 0};
  rk::GumbelParams p;
  float* sample = nullptr;  // (N, V)
  int32_t* index = nullptr; // (N)
};

inline GumbelSoftmaxCall DecodeGumbelSoftmax(const OpArgs& a, bool device) {
  GumbelSoftmaxCall c;
  c.logits = DecodeLogits(a, {LG::slot::logits, LG::param::vocab, LG::param::dtype}, device);
  const Slot& logits = a[LG::slot::logits];
  c.p.temperature = TemperatureParam(a, LG::param::temperature, device);
  c.p.seed = SeedParam(a, LG::param::seed);
  c.p.hard = a.Param(LG::param::hard, "hard", 0, 1) != 0;
  const Slot& sample = a.Out(LG::slot::sample, {SlotType::F32}, static_cast<int64_t>(logits.length));
  const Slot& index = a.Out(LG::slot::index, {SlotType::I32}, c.logits.rows);
  const size_t bytes = LogitsBytes(c.logits);
  if (!device && BytesOverlap(sample.data, sample.length * 4, logits.data, bytes)) throw a.Range("sample: overlaps logits");
  if (!device && (BytesOverlap(index.data, index.length * 4, logits.data, bytes) ||
                  BytesOverlap(index.data, index.length * 4, sample.data, sample.length * 4)))
    throw a.Range("index: overlaps logits or the sample");
  c.sample = sample.as<float>();
  c.index = index.as<int32_t>();
  return c;
}

struct GumbelSoftmaxBackwardCall {
  rk::LogitsView logits{nullptr, rk::DType::F32, 0, 0};
  rk::GumbelParams p;
  const float* grad_sample = nullptr;  // (N, V)
  float* grad = nullptr;               // (N, V)
};

inline GumbelSoftmaxBackwardCall DecodeGumbelSoftmaxBackward(const OpArgs& a, bool device) {
  GumbelSoftmaxBackwardCall c;
  c.logits = DecodeLogits(a, {LGB::slot::logits, LGB::param::vocab, LGB::param::dtype}, device);
  const Slot& logits = a[LGB::slot::logits];
  c.p.temperature = TemperatureParam(a, LGB::param::temperature, device);
  c.p.seed = SeedParam(a, LGB::param::seed);
  const Slot& gs = a.Need(LGB::slot::gradSample, {SlotType::F32}, static_cast<int64_t>(logits.length));
  const Slot& grad = a.Out(LGB::slot::gradient, {SlotType::F32}, static_cast<int64_t>(logits.length));
  const size_t bytes = LogitsBytes(c.logits);
  if (!device && (BytesOverlap(grad.data, grad.length * 4, logits.data, bytes) ||
                  BytesOverlap(grad.data, grad.length * 4, gs.data, gs.length * 4)))
    throw a.Range("gradient: overlaps logits or gradSample");
  c.grad_sample = gs.as<const float>();
  c.grad = grad.as<float>();
  return c;
}

inline rk::GklCall DecodeDrakesKl(const OpArgs& a, bool device) {
  rk::GklCall c;
  c.logits = DecodeLogits(a, {LDK::slot::logits, LDK::param::vocab, LDK::param::dtype}, device);
  const Slot& logits = a[LDK::slot::logits];
  const Slot& old = a.Need(LDK::slot::oldLogits, {logits.type}, static_cast<int64_t>(logits.length));
  c.old = c.logits;
  c.old.data = old.data;
  const int64_t n = c.logits.rows;
  c.mask = a.Maybe(LDK::slot::mask, {SlotType::U8}, n).as<const uint8_t>();
  c.move_chance = a.Param(LDK::param::moveChance, "moveChance", 0, HUGE_VAL);
  if (!(c.move_chance > 0) || !std::isfinite(c.move_chance)) throw a.Range("params.moveChance: expected a finite positive number");
  c.move_chance_rows = a.Maybe(LDK::slot::moveChance, {SlotType::F32}, n).as<const float>();
  c.grad_scale = a.Param(LDK::param::gradOutput, "gradOutput", -HUGE_VAL, HUGE_VAL);
  if (!std::isfinite(c.grad_scale)) throw a.Range("params.gradOutput: expected a finite number");
  c.grad_rows = a.Maybe(LDK::slot::gradOutput, {SlotType::F32}, n).as<const float>();
  c.kl = a.Out(LDK::slot::kl, {SlotType::F32}, n).as<float>();
  const size_t bytes = LogitsBytes(c.logits);
  const Slot& g = a.MaybeOut(LDK::slot::gradient, {SlotType::F32}, static_cast<int64_t>(logits.length));
  const Slot& go = a.MaybeOut(LDK::slot::oldGradient, {SlotType::F32}, static_cast<int64_t>(logits.length));
  for (const Slot* s : {&g, &go}) {
    if (!s->present || device) continue;
    if (BytesOverlap(s->data, s->length * 4, logits.data, bytes) || BytesOverlap(s->data, s->length * 4, old.data, bytes))
      throw a.Range("gradient: overlaps logits or oldLogits");
  }
  if (!device && g.present && go.present && BytesOverlap(g.data, g.length * 4, go.data, go.length * 4))
    throw a.Range("oldGradient: overlaps gradient");
  c.grad = g.present ? g.as<float>() : nullptr;
  c.grad_old = go.present ? go.as<float>() : nullptr;
  return c;
}

}  // namespace rkb
