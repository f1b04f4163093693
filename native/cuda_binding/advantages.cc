// CUDA entry points of groupAdvantages, ensembleRewards, gae, discountedReturns, maskedWhiten, tokenAdvantages and klRewards
// (cuda/advantages.h), sync and Promise forms, on the op protocol (native/binding/slots.h) with the
// decoding shared with the CPU addon (ops/advantages.h).
//
// Everything runs on the legacy default stream. groupAdvantages' reward weights arrive on the device
// (the facade uploads them); its zero-std-groups counter lives in a small device buffer this binding
// allocates and reads back (cudaMemcpy: ordered with the kernels) into the scalars. Bad elements
// (lengths < 0, group ids out of range, bnpo group means outside [0, 1], f32 mask weights < 0 or
// not finite) are found on the device; the call then waits for the stream and throws the same
// RangeError text as the CPU path.
#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "advantages.h"
#include "cuda_common.h"
#include "ops/advantages.h"

namespace {

rkcuda::Result CudaFail(const char* where, cudaError_t e) {
  cudaGetLastError();
  rkcuda::Result r;
  r.code = rkcuda::kCudaError;
  r.cuda_error = static_cast<int>(e);
  r.where = where;
  return r;
}

// The `where` of a kBadTarget result, kept for the message (fn runs before the text is made).
using WhereBox = std::shared_ptr<std::string>;

rkcb::BadTargetText AdvBadText(WhereBox where, int64_t num_groups) {
  return [where, num_groups](int64_t i, int64_t v) -> std::string {
    if (*where == "lengths")
      return "options.lengths[" + std::to_string(i) + "]: expected a length >= 0, received " + std::to_string(v);
    if (*where == "group_ids")
      return "options.groupIds[" + std::to_string(i) + "]: expected a group id in [0, " + std::to_string(num_groups) +
             "), received " + std::to_string(v);
    if (*where == "bnpo group mean")
      return "rewards: bnpo expects every group mean of (r - rewardMin) / (rewardMax - rewardMin) in [0, 1], "
             "group " + std::to_string(i) + " is outside (set rewardMin / rewardMax)";
    return *where + "[" + std::to_string(i) + "]: bad element " + std::to_string(v);
  };
}

// A bad f32 mask weight (masked_whiten, gae with whiten): the host path's text, the weight read back.
rkcb::BadTargetText MaskBadText(const rk::TokenMask& m) { return rkcb::BadMaskWeightText(m.is_f32 ? m.data : nullptr); }

Napi::Value GroupAdvantages(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LGA);
  const rkb::GroupAdvantagesCall c = rkb::DecodeGroupAdvantages(oa, true);
  rkcuda::GroupAdvantagesDeviceArgs d;
  d.a = c.a;
  d.advantages = c.advantages;
  d.group_mean = c.group_mean;
  d.group_std = c.group_std;
  double* zero_out = oa.scalars + rkb::LGA::scalar::zeroStdGroups;
  WhereBox where = std::make_shared<std::string>();
  // zero_out stays alive: the facade holds its Float64Array until the call settles.
  auto fn = [d, zero_out, where]() mutable -> rkcuda::Result {
    long long* z = nullptr;
    cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&z), sizeof(long long));
    if (e != cudaSuccess) return CudaFail("cudaMalloc", e);
    d.zero_std_groups = z;
    rkcuda::Result res = rkcuda::group_advantages(d, nullptr);
    if (res.code == rkcuda::kBadTarget) *where = res.where ? res.where : "";
    if (res.ok()) {
      long long host = 0;
      e = cudaMemcpy(&host, z, sizeof host, cudaMemcpyDeviceToHost);
      if (e != cudaSuccess) res = CudaFail("cudaMemcpy", e);
      else *zero_out = static_cast<double>(host);
    }
    e = cudaFree(z);
    if (res.ok() && e != cudaSuccess) res = CudaFail("cudaFree", e);
    return res;
  };
  return rkcb::RunDevice(info, async, fn, AdvBadText(where, c.a.num_groups));
}

Napi::Value EnsembleRewards(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LER);
  const rkb::EnsembleRewardsCall c = rkb::DecodeEnsembleRewards(oa);
  return rkcb::RunDevice(
      info, async, [c]() { return rkcuda::ensemble_rewards(c.rewards, c.n, c.m, c.method, c.lambda, c.out, nullptr); },
      MaskBadText(rk::TokenMask{}));  // never called: no bad elements
}

Napi::Value Gae(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LGAE);
  const rkb::GaeCall c = rkb::DecodeGae(oa);
  return rkcb::RunDevice(
      info, async,
      [c]() {
        rkcuda::Result res =
            rkcuda::gae(c.values, c.rewards, c.mask, c.rows, c.cols, c.gamma, c.lambda, c.advantages, c.returns, nullptr);
        if (res.ok() && c.whiten)
          res = rkcuda::masked_whiten(c.advantages, c.mask, c.n, true, true, 1e-8, c.advantages, nullptr, nullptr);
        return res;
      },
      MaskBadText(c.mask));
}

Napi::Value DiscountedReturns(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LDR);
  const rkb::DiscountedReturnsCall c = rkb::DecodeDiscountedReturns(oa);
  return rkcb::RunDevice(
      info, async, [c]() { return rkcuda::discounted_returns(c.rewards, c.mask, c.rows, c.cols, c.gamma, c.out, nullptr); },
      MaskBadText(c.mask));
}

Napi::Value MaskedWhiten(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LMW);
  const rkb::MaskedWhitenCall c = rkb::DecodeMaskedWhiten(oa);
  return rkcb::RunDevice(
      info, async,
      [c]() {
        return rkcuda::masked_whiten(c.values, c.mask, c.n, c.shift_mean, c.unbiased, c.eps, c.out, nullptr, nullptr);
      },
      MaskBadText(c.mask));
}

Napi::Value TokenAdvantages(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LTA);
  const rkb::TokenAdvantagesCall c = rkb::DecodeTokenAdvantages(oa);
  WhereBox where = std::make_shared<std::string>();
  rkcb::BadTargetText mask_text = MaskBadText(c.a.mask);
  const int64_t groups = c.a.num_groups;
  rkcb::BadTargetText text = [where, mask_text, groups](int64_t i, int64_t v) -> std::string {
    if (*where == "group_ids")
      return "options.groupIds[" + std::to_string(i) + "]: expected a group id in [0, " + std::to_string(groups) +
             "), received " + std::to_string(v);
    return mask_text(i, v);
  };
  return rkcb::RunDevice(
      info, async,
      [c, where]() {
        rkcuda::Result r = rkcuda::token_advantages(c.a, c.advantages, c.returns, nullptr, nullptr);
        if (r.code == rkcuda::kBadTarget) *where = r.where ? r.where : "";
        return r;
      },
      text);
}

Napi::Value KlRewards(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LKR);
  const rkb::KlRewardsCall c = rkb::DecodeKlRewards(oa);
  double* mean_out = oa.scalars + rkb::LKR::scalar::klMean;
  // mean_out stays alive: the facade holds its Float64Array until the call settles.
  auto fn = [c, mean_out]() -> rkcuda::Result {
    double* d = nullptr;
    cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&d), sizeof(double));
    if (e != cudaSuccess) return CudaFail("cudaMalloc", e);
    rkcuda::Result res = rkcuda::kl_rewards(c.scores, c.logprobs, c.ref, c.mask, c.rows, c.cols, c.estimator, c.beta,
                                            c.rewards, d, nullptr, nullptr);
    if (res.ok()) {
      e = cudaMemcpy(mean_out, d, sizeof(double), cudaMemcpyDeviceToHost);
      if (e != cudaSuccess) res = CudaFail("cudaMemcpy", e);
    }
    e = cudaFree(d);
    if (res.ok() && e != cudaSuccess) res = CudaFail("cudaFree", e);
    return res;
  };
  return rkcb::RunDevice(info, async, fn, MaskBadText(c.mask));
}

Napi::Value GatedRewards(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LGR);
  const rkb::GatedRewardsCall c = rkb::DecodeGatedRewards(oa);
  return rkcb::RunDevice(
      info, async,
      [c]() { return rkcuda::gated_rewards(c.high, c.low, c.mask, c.rows, c.cols, c.threshold, c.out, nullptr); },
      MaskBadText(c.mask));
}

Napi::Value DiscountedCumsum(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LDC);
  const rkb::DiscountedCumsumCall c = rkb::DecodeDiscountedCumsum(oa);
  return rkcb::RunDevice(
      info, async,
      [c]() { return rkcuda::discounted_cumsum(c.values, c.mask, c.rows, c.cols, c.gamma, c.adjoint, c.out, nullptr); },
      MaskBadText(c.mask));
}

Napi::Value LagrangianMix(const Napi::CallbackInfo& info, bool async) {
  rkb::OpArgs oa = RK_READ_OP(info, true, rkb::LLM);
  const rkb::LagrangianMixCall c = rkb::DecodeLagrangianMix(oa);
  return rkcb::RunDevice(
      info, async,
      [c]() { return rkcuda::lagrangian_mix(c.adv, c.kl, c.xi, c.grad_mixed, c.k, c.n, c.mixed, c.grad_xi, nullptr); },
      nullptr);
}

}  // namespace

RK_REGISTER_OPS(cuda_advantages, RK_ADVANTAGES_OPS);
