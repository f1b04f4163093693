// Decoding of copoAdvantages (lib/copo/), shared by the CPU addon (native/binding/copo.cc) and the
// CUDA addon (native/cuda_binding/copo.cc): slots and params by the names of layout.gen.h, every
// length rechecked (and, on the host, every group order index and offset).
#pragma once
#include <climits>
#include <cmath>
#include <string>

#include "../../kernels/copo.h"
#include "../slots.h"

#define RK_COPO_OPS(X) X(copoAdvantages, CopoAdvantages)

namespace rkb {

namespace LCA = rkl::copoAdvantages;
static_assert(LCA::gate_code::kCount == rk::kCopoGateCount, "copoAdvantages gate names vs rk::CopoGate");

struct CopoAdvantagesCall {
  rk::CopoArgs a;
  float* entropy = nullptr;
  float* global_reward = nullptr;
  float* local_adv = nullptr;
  float* global_adv = nullptr;
  float* gates = nullptr;
};

inline int64_t CopoIntParam(const OpArgs& a, int i, const char* name, int64_t lo, int64_t hi) {
  const double v = a.Param(i, name, static_cast<double>(lo), static_cast<double>(hi));
  if (std::floor(v) != v) throw a.Range(std::string(name) + ": expected an integer");
  return static_cast<int64_t>(v);
}

inline CopoAdvantagesCall DecodeCopoAdvantages(const OpArgs& a, bool device) {
  CopoAdvantagesCall c;
  const Slot& ans = a.Need(LCA::slot::answerIds, {SlotType::I32});
  const int64_t n = static_cast<int64_t>(ans.length);
  if (n > INT32_MAX) throw a.Range("answerIds: expected at most 2^31 - 1 samples");
  const Slot& rew = a.Need(LCA::slot::rewards, {SlotType::F32}, n);
  const int64_t gs = CopoIntParam(a, LCA::param::groupSize, "groupSize", 0, INT32_MAX);
  const int64_t Q = CopoIntParam(a, LCA::param::numGroups, "numGroups", 0, INT32_MAX);
  const Slot& order = a.Maybe(LCA::slot::groupOrder, {SlotType::I32}, n);
  const Slot& offs = a.Maybe(LCA::slot::groupOffsets, {SlotType::I32}, Q + 1);
  if (gs > 0) {
    if (order.present || offs.present) throw a.Range("groupOrder: expected null with groupSize");
    if (n % gs != 0 || n / gs != Q) throw a.Range("groupSize: expected a divisor of the number of samples giving numGroups");
  } else {
    if (!order.present || !offs.present) throw a.Range("groupOrder: expected the group order and offsets without groupSize");
    if (!device) {
      const int32_t* o = order.as<const int32_t>();
      const int32_t* f = offs.as<const int32_t>();
      if (f[0] != 0 || f[Q] != n) throw a.Range("groupOffsets: expected 0 first and n last");
      for (int64_t g = 0; g < Q; ++g)
        if (f[g + 1] <= f[g]) throw a.Range("groupOffsets: expected strictly increasing offsets (no empty group)");
      for (int64_t i = 0; i < n; ++i)
        if (o[i] < 0 || o[i] >= n) throw a.Range("groupOrder: expected sample indices in [0, n)");
    }
    c.a.order = order.as<const int32_t>();
    c.a.offsets = offs.as<const int32_t>();
  }
  c.a.answers = ans.as<const int32_t>();
  c.a.rewards = rew.as<const float>();
  c.a.n = n;
  c.a.num_groups = Q;
  c.a.group_size = gs;
  c.a.eps = a.Param(LCA::param::eps, "eps", 0, INFINITY);
  c.a.k = a.Param(LCA::param::softBlendingK, "softBlendingK", -INFINITY, INFINITY);
  c.a.b = a.Param(LCA::param::softBlendingB, "softBlendingB", -INFINITY, INFINITY);
  c.a.gate = static_cast<rk::CopoGate>(a.Enum(LCA::param::gate, "gate", LCA::gate_code::kCount));
  c.a.consistency = a.Enum(LCA::param::scaleByConsistency, "scaleByConsistency", 2) != 0;
  c.a.scale_std = a.Enum(LCA::param::scaleByStd, "scaleByStd", 2) != 0;
  c.entropy = a.Out(LCA::slot::entropy, {SlotType::F32}, Q).as<float>();
  c.global_reward = a.Out(LCA::slot::globalRewards, {SlotType::F32}, Q).as<float>();
  c.local_adv = a.Out(LCA::slot::localAdvantages, {SlotType::F32}, n).as<float>();
  c.global_adv = a.Out(LCA::slot::globalAdvantages, {SlotType::F32}, n).as<float>();
  c.gates = a.Out(LCA::slot::gates, {SlotType::F32}, n).as<float>();
  return c;
}

}  // namespace rkb
