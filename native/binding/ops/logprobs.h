// Decoding of tokenLogprobs and tokenLogprobsBackward (lib/logprobs/), shared by the CPU addon
// (native/binding/logprobs.cc) and the CUDA addon (native/cuda_binding/logprobs.cc): slots and
// params by the names of layout.gen.h, every length rechecked.
#pragma once
#include <climits>
#include <cstdint>

#include "../../kernels/logprobs.h"
#include "../slots.h"
#include "logits.h"

// The family's ops, X(jsName, EntryPoint): both addons define these entry points and register them
// with RK_REGISTER_OPS (native/binding/common.h).
#define RK_LOGPROBS_OPS(X) \
  X(tokenLogprobs, Forward) \
  X(tokenLogprobsBackward, Backward)

namespace rkb {

namespace LF = rkl::tokenLogprobs;
namespace LB = rkl::tokenLogprobsBackward;

RK_ASSERT_LOGITS_DTYPES(LF);
RK_ASSERT_LOGITS_DTYPES(LB);

// What both ops read: the logits, the targets (N), temperature and ignoreIndex.
struct LogprobsCommon {
  rk::LogitsView view{nullptr, rk::DType::F32, 0, 0};
  const int32_t* targets = nullptr;
  double temperature = 1;
  int32_t ignore = -100;
};

// Where each op keeps them (layout.gen.h names).
struct LogprobsLayout {
  LogitsLayout logits;
  int targets, temperature, ignoreIndex;
};
inline constexpr LogprobsLayout kForwardLayout{{LF::slot::logits, LF::param::vocab, LF::param::dtype},
                                               LF::slot::targets, LF::param::temperature, LF::param::ignoreIndex};
inline constexpr LogprobsLayout kBackwardLayout{{LB::slot::logits, LB::param::vocab, LB::param::dtype},
                                                LB::slot::targets, LB::param::temperature, LB::param::ignoreIndex};

inline LogprobsCommon DecodeLogprobsCommon(const OpArgs& a, const LogprobsLayout& l, bool device) {
  LogprobsCommon c;
  c.view = DecodeLogits(a, l.logits, device);
  c.targets = a.Need(l.targets, {SlotType::I32}, c.view.rows).as<const int32_t>();
  c.temperature = TemperatureParam(a, l.temperature, device);
  c.ignore = static_cast<int32_t>(IntParam(a, l.ignoreIndex, "ignoreIndex", INT32_MIN, INT32_MAX));
  return c;
}

struct TokenLogprobsCall {
  LogprobsCommon c;
  float* logp = nullptr;
  float* lse = nullptr;
  float* entropy = nullptr;  // optional
};

inline TokenLogprobsCall DecodeTokenLogprobs(const OpArgs& a, bool device) {
  TokenLogprobsCall t;
  t.c = DecodeLogprobsCommon(a, kForwardLayout, device);
  const int64_t n = t.c.view.rows;
  t.logp = a.Out(LF::slot::logprobs, {SlotType::F32}, n).as<float>();
  t.lse = a.Out(LF::slot::logsumexp, {SlotType::F32}, n).as<float>();
  t.entropy = a.MaybeOut(LF::slot::entropy, {SlotType::F32}, n).as<float>();
  return t;
}

struct TokenLogprobsBackwardCall {
  LogprobsCommon c;
  const float* grad_logp = nullptr;
  const float* grad_entropy = nullptr;  // optional
  const float* lse = nullptr;           // optional
  const float* entropy = nullptr;       // optional
  float* grad = nullptr;                // may be the f32 logits themselves (in place)
};

inline TokenLogprobsBackwardCall DecodeTokenLogprobsBackward(const OpArgs& a, bool device) {
  TokenLogprobsBackwardCall t;
  t.c = DecodeLogprobsCommon(a, kBackwardLayout, device);
  const int64_t n = t.c.view.rows;
  t.grad_logp = a.Need(LB::slot::gradLogprobs, {SlotType::F32}, n).as<const float>();
  t.grad_entropy = a.Maybe(LB::slot::gradEntropy, {SlotType::F32}, n).as<const float>();
  t.lse = a.Maybe(LB::slot::logsumexp, {SlotType::F32}, n).as<const float>();
  t.entropy = a.Maybe(LB::slot::entropy, {SlotType::F32}, n).as<const float>();
  const Slot& logits = a[LB::slot::logits];
  const Slot& grad = a.Out(LB::slot::grad, {SlotType::F32}, static_cast<int64_t>(logits.length));
  if (logits.length > 0 && grad.data == logits.data && t.c.view.dtype != rk::DType::F32)
    throw Napi::TypeError::New(a.env, "grad: an in-place gradient needs f32 logits");
  if (grad.data != logits.data && BytesOverlap(grad.data, grad.length * 4, logits.data, LogitsBytes(t.c.view)))
    throw a.Range("grad: overlaps logits without being the same memory");
  t.grad = grad.as<float>();
  return t;
}

}  // namespace rkb
