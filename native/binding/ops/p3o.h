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
  const double eps = a.Param(LP3::param::epsilon, "epsilon", 0.0, 0.999999);
  const double clip = a.Param(LP3::param::clip, "clip", 0.0, 1.0);
  c.params.T = static_cast<int64_t>(t);
  c.params.joint = clip != 0;
  c.params.epsilon = eps;
  c.in.B = static_cast<int64_t>(B);
  c.in.logprobs1 = l1.as<const float>();
  c.in.logprobs2 = a.Need(LP3::slot::logprobs2, {SlotType::F32}, n).as<const float>();
  c.in.old1 = a.Need(LP3::slot::oldLogprobs1, {SlotType::F32}, n).as<const float>();
  c.in.old2 = a.Need(LP3::slot::oldLogprobs2, {SlotType::F32}, n).as<const float>();
  c.in.rewards1 = a.Need(LP3::slot::rewards1, {SlotType::F32}, B).as<const float>();
  c.in.rewards2 = a.Need(LP3::slot::rewards2, {SlotType::F32}, B).as<const float>();
  c.in.mask1 = a.Maybe(LP3::slot::mask1, {SlotType::U8}, n).as<const uint8_t>();
  c.in.mask2 = a.Maybe(LP3::slot::mask2, {SlotType::U8}, n).as<const uint8_t>();
  c.out.grad1 = a.Out(LP3::slot::gradLogprobs1, {SlotType::F32}, n).as<float>();
  c.out.grad2 = a.Out(LP3::slot::gradLogprobs2, {SlotType::F32}, n).as<float>();
  return c;
}

}  // namespace rkb
