// Decoding of p3oLoss (lib/pairwise/), shared by the CPU addon (native/binding/p3o.cc) and the CUDA
// addon (native/cuda_binding/p3o.cc): slots and params by the names of layout.gen.h, every length rechecked.
#pragma once
#include <climits>
#include <cmath>
#include <string>

#include "../../kernels/p3o.h"
#include "../slots.h"

#define RK_P3O_OPS(X) X(p3oLoss, P3oLoss)

namespace rkb {

namespace LP3 = rkl::p3oLoss;

struct P3oCall {
  rk::P3oInputs in;
  rk::P3oParams params;
  rk::P3oOutputs out;
};

inline P3oCall DecodeP3oLoss(const OpArgs& a) {
  P3oCall c;
  const double T = a.params[LP3::param::seqLen];
  if (!(T >= 1 && T <= static_cast<double>(INT_MAX) && T == std::floor(T)))
    throw a.Range("seqLen: expected an integer in [1, 2147483647]");
  const size_t t = static_cast<size_t>(T);
  const Slot& l1 = a.Need(LP3::slot::logprobs1, {SlotType::F32});
  const size_t n = l1.length;
  if (n == 0 || n % t != 0) throw a.Range("seqLen: expected a divisor of the length of logprobs1");
  const size_t B = n / t;
  const bool trlx = a.Enum(LP3::param::surrogate, "surrogate", LP3::surrogate_code::kCount) == LP3::surrogate_code::trlx;
  const double eps = a.Param(LP3::param::epsilon, "epsilon", 0.0, trlx ? 1.7976931348623157e308 : 0.999999);
  const int clip = a.Enum(LP3::param::clip, "clip", LP3::clip_code::kCount);
  if (trlx ? clip == LP3::clip_code::separate : clip == LP3::clip_code::token)
    throw a.Range(trlx ? "clip: expected 'joint' or 'token' with surrogate 'trlx'" : "clip: expected 'separate' or 'joint' with surrogate 'ratio'");
  c.params.T = static_cast<int64_t>(t);
  c.params.joint = clip == LP3::clip_code::joint;
  c.params.epsilon = eps;
  c.params.trlx = trlx;
  c.params.tokenwise = clip == LP3::clip_code::token;
  if (trlx) {
    c.params.beta = a.Param(LP3::param::beta, "beta", 0.0, 1.7976931348623157e308);
    c.params.weightClip = a.Param(LP3::param::weightClip, "weightClip", 1.0, 1.7976931348623157e308);
    c.params.scaleByStd = a.Param(LP3::param::scaleByStd, "scaleByStd", 0.0, 1.0) != 0;
    c.params.normalizeByTokens = a.Param(LP3::param::normalizeByTokens, "normalizeByTokens", 0.0, 1.0) != 0;
  }
  c.in.B = static_cast<int64_t>(B);
  c.in.logprobs1 = l1.as<const float>();
  c.in.logprobs2 = a.Need(LP3::slot::logprobs2, {SlotType::F32}, n).as<const float>();
  c.in.old1 = a.Need(LP3::slot::oldLogprobs1, {SlotType::F32}, n).as<const float>();
  c.in.old2 = a.Need(LP3::slot::oldLogprobs2, {SlotType::F32}, n).as<const float>();
  c.in.rewards1 = a.Need(LP3::slot::rewards1, {SlotType::F32}, B).as<const float>();
  c.in.rewards2 = a.Need(LP3::slot::rewards2, {SlotType::F32}, B).as<const float>();
  c.in.mask1 = a.Maybe(LP3::slot::mask1, {SlotType::U8}, n).as<const uint8_t>();
  c.in.mask2 = a.Maybe(LP3::slot::mask2, {SlotType::U8}, n).as<const uint8_t>();
  if (trlx) {
    c.in.ref1 = a.Need(LP3::slot::refLogprobs1, {SlotType::F32}, n).as<const float>();
    c.in.ref2 = a.Need(LP3::slot::refLogprobs2, {SlotType::F32}, n).as<const float>();
    if (c.params.scaleByStd && B < 2) throw a.Range("scaleByStd: expected at least 2 pairs");
  }
  c.out.grad1 = a.Out(LP3::slot::gradLogprobs1, {SlotType::F32}, n).as<float>();
  c.out.grad2 = a.Out(LP3::slot::gradLogprobs2, {SlotType::F32}, n).as<float>();
  return c;
}

}  // namespace rkb
