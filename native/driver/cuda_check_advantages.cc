// rk_driver cuda-check, advantages family: cuda/advantages.cu (group_advantages with every
// estimator, groupSize and groupIds, K rewards with weights, both multi-reward modes, NaN rewards,
// groups of one; ensemble_rewards; gae; discounted_returns; masked_whiten) against the CPU kernels
// native/kernels/advantages.cc; outputs poisoned with NaN first, each group call run twice
// (bit-identical), bad ids / lengths / weights reported. Only compiled with RK_WITH_CUDA.
#if defined(RK_WITH_CUDA)
#include "cuda_check_util.h"
#include "cuda_driver.h"

#include "../../cuda/advantages.h"
#include "../kernels/advantages.h"

namespace rkdriver {
namespace {
using namespace smallcheck;

const char* kEstNames[] = {"grpo", "rloo", "reinforce_pp", "opo", "passk", "bnpo"};
const char* kScaleNames[] = {"group", "batch", "none"};

// ids: 0 contiguous groups of gs; 1 shuffled ids with sizes 1..2gs and one unused id
int group_case(int64_t n, int64_t gs, bool ids, int64_t K, int est, int scale, bool gdpo, bool weights, bool lens,
               uint64_t seed) {
  const bool bnpo = est == 5 && !gdpo;
  std::vector<float> r(n * K);
  for (int64_t i = 0; i < n * K; ++i) {
    const double u = unif(seed, i);
    if (bnpo) r[i] = u < 0.45 ? 0.0f : u < 0.9 ? 1.0f : static_cast<float>(unif(seed + 1, i));
    else r[i] = u < 0.3 ? std::round(2.0f * gauss(seed + 1, i)) : gauss(seed + 1, i) * 3.0f;
    if (unif(seed + 2, i) < 0.08) r[i] = NAN;  // missing
  }
  if (bnpo && K > 1)
    for (int64_t i = 0; i < n * K; ++i) r[i] = std::isnan(r[i]) ? r[i] : r[i] / static_cast<float>(K);
  std::vector<int32_t> gid(n), len(n);
  int64_t G = gs > 0 ? n / gs : 0;
  if (ids) {
    // sizes 1..2gs in a shuffled order; id G0 unused
    int64_t i = 0, g = 0;
    while (i < n) {
      int64_t s = 1 + static_cast<int64_t>(mix(seed + 3 + g) % (2 * gs));
      for (int64_t k = 0; k < s && i < n; ++k) gid[i++] = static_cast<int32_t>(g == 2 ? g + 1 : g);
      g += g == 2 ? 2 : 1;
    }
    G = g;
    for (int64_t k = n - 1; k > 0; --k) std::swap(gid[k], gid[mix(seed + 99 + k) % (k + 1)]);
  }
  for (int64_t i = 0; i < n; ++i) len[i] = static_cast<int32_t>(mix(seed + 5 + i) % 200);
  std::vector<double> wts(K);
  for (int64_t k = 0; k < K; ++k) wts[k] = 0.5 + 0.25 * k;
  rk::GroupAdvantagesArgs a;
  a.rewards = r.data();
  a.n = n;
  a.num_rewards = K;
  a.reward_weights = weights ? wts.data() : nullptr;
  a.group_size = ids ? 0 : gs;
  a.group_ids = ids ? gid.data() : nullptr;
  a.num_groups = ids ? G : 0;
  a.estimator = static_cast<rk::AdvEstimator>(est);
  a.scale = static_cast<rk::AdvScale>(scale);
  a.multi = gdpo ? rk::MultiReward::NormalizeThenSum : rk::MultiReward::SumThenNormalize;
  a.eps = 1e-4;
  a.lengths = (lens || est == 3) ? len.data() : nullptr;
  a.reward_min = 0.0;
  a.reward_max = 1.0;
  const int64_t gw = gdpo ? G * K : G;
  std::vector<float> adv(n), gm(gw), gsd(gw);
  int64_t zero = -5;
  const rk::Status st = rk::group_advantages(a, adv.data(), gm.data(), gsd.data(), &zero);
  Dev<float> dr(r), oa(n), om(gw), os(gw);
  Dev<int32_t> dg(gid), dl(len);
  Dev<double> dwt(wts);
  Dev<long long> oz(1);
  rkcuda::GroupAdvantagesDeviceArgs d;
  d.a = a;
  d.a.rewards = dr.p;
  d.a.reward_weights = weights ? dwt.p : nullptr;
  d.a.group_ids = ids ? dg.p : nullptr;
  d.a.lengths = a.lengths ? dl.p : nullptr;
  d.advantages = oa.p, d.group_mean = om.p, d.group_std = os.p, d.zero_std_groups = oz.p;
  char what[128];
  std::snprintf(what, sizeof what, "n=%lld %s K=%lld %s%s%s%s%s", static_cast<long long>(n), ids ? "ids" : "gs",
                static_cast<long long>(K), gdpo ? "gdpo" : kEstNames[est], gdpo || (est != 0 && est != 4) ? "" : " ",
                gdpo || (est != 0 && est != 4) ? "" : kScaleNames[scale], weights ? " w" : "", a.lengths ? " len" : "");
  Line line;
  rkcuda::Result res = rkcuda::group_advantages(d, nullptr);
  CK(cudaDeviceSynchronize());
  if (!st.ok() || !res.ok()) {
    char msg[200];
    line.flag(st.ok() ? rkcuda::format_error(res, msg, sizeof msg) : "CPU status", false);
    return line.print("advantages", what);
  }
  const std::vector<float> ga = oa.down();
  line.add("adv", worst_rel(ga.data(), adv.data(), n, kFloor * max_abs(adv)));
  line.add("mean", worst_rel(om.down().data(), gm.data(), gw, kFloor * max_abs(gm)));
  line.add("std", worst_rel(os.down().data(), gsd.data(), gw, kFloor * max_abs(gsd)));
  line.flag("zero", oz.down()[0] == zero);
  oa.poison();
  res = rkcuda::group_advantages(d, nullptr);
  CK(cudaDeviceSynchronize());
  line.flag("det", res.ok() && same_bits(oa.down().data(), ga.data(), 4 * n));
  return line.print("advantages", what);
}

int token_case(int64_t B, int64_t T, bool f32, uint64_t seed) {
  const size_t n = static_cast<size_t>(B * T);
  std::vector<float> v(n), rw(n), fm(n), ens(n * 3);
  std::vector<uint8_t> um(n);
  for (size_t i = 0; i < n; ++i) {
    v[i] = gauss(seed, i);
    rw[i] = unif(seed + 1, i) < 0.1 ? 1.0f : 0.1f * gauss(seed + 2, i);
    const int64_t row = static_cast<int64_t>(i) / T, t = static_cast<int64_t>(i) % T;
    um[i] = row == 1 ? 0 : (t < T - static_cast<int64_t>(mix(seed + row) % (T / 3 + 1))) && unif(seed + 3, i) > 0.05;
    fm[i] = um[i] ? static_cast<float>(0.5 + unif(seed + 4, i)) : 0.0f;
  }
  for (size_t i = 0; i < n * 3; ++i) ens[i] = unif(seed + 5, i) < 0.1 ? NAN : gauss(seed + 6, i);
  if (n >= 6) ens[3] = ens[4] = ens[5] = NAN;  // a row of NaN
  rk::TokenMask hm{f32 ? static_cast<const void*>(fm.data()) : um.data(), f32};
  std::vector<float> A(n), R(n), D(n), W(n), E(n);
  rk::gae(v.data(), rw.data(), hm, B, T, 0.99, 0.95, A.data(), R.data());
  rk::discounted_returns(rw.data(), hm, B, T, 0.97, D.data());
  const rk::Status ws = rk::masked_whiten(v.data(), hm, n, seed % 2 == 0, true, 1e-8, W.data());
  rk::ensemble_rewards(ens.data(), n, 3, static_cast<rk::EnsembleMethod>(seed % 3), 0.5, E.data());
  Dev<float> dv(v), drw(rw), dfm(fm), dens(ens), oA(n), oR(n), oD(n), oW(n), oE(n);
  Dev<uint8_t> dum(um);
  rk::TokenMask dm{f32 ? static_cast<const void*>(dfm.p) : dum.p, f32};
  Line line;
  bool ok = ws.ok();
  ok = ok && rkcuda::gae(dv.p, drw.p, dm, B, T, 0.99, 0.95, oA.p, oR.p, nullptr).ok();
  ok = ok && rkcuda::discounted_returns(drw.p, dm, B, T, 0.97, oD.p, nullptr).ok();
  ok = ok && rkcuda::masked_whiten(dv.p, dm, n, seed % 2 == 0, true, 1e-8, oW.p, nullptr, nullptr).ok();
  ok = ok && rkcuda::ensemble_rewards(dens.p, n, 3, static_cast<rk::EnsembleMethod>(seed % 3), 0.5, oE.p, nullptr).ok();
  CK(cudaDeviceSynchronize());
  line.flag("status", ok);
  line.add("gae", std::max(worst_rel(oA.down().data(), A.data(), n, kFloor * max_abs(A)),
                           worst_rel(oR.down().data(), R.data(), n, kFloor * max_abs(R))));
  line.add("returns", worst_rel(oD.down().data(), D.data(), n, kFloor * max_abs(D)));
  line.add("whiten", worst_rel(oW.down().data(), W.data(), n, kFloor * max_abs(W)));
  line.add("ensemble", worst_rel(oE.down().data(), E.data(), n, kFloor * max_abs(E)));
  char what[64];
  std::snprintf(what, sizeof what, "token %lldx%lld %s ens=%d", static_cast<long long>(B), static_cast<long long>(T),
                f32 ? "f32" : "u8", static_cast<int>(seed % 3));
  return line.print("advantages", what);
}

int bad_case() {
  const int64_t n = 300;
  std::vector<float> r(n, 0.5f);
  std::vector<int32_t> gid(n), len(n, 3);
  for (int64_t i = 0; i < n; ++i) gid[i] = static_cast<int32_t>(i % 7);
  gid[123] = 7;
  gid[200] = -1;
  len[50] = -4;
  Dev<float> dr(r), oa(n), om(7), os(7), fw(n);
  Dev<int32_t> dg(gid), dl(len);
  Dev<long long> oz(1);
  rkcuda::GroupAdvantagesDeviceArgs d;
  d.a.rewards = dr.p;
  d.a.n = n;
  d.a.group_ids = dg.p;
  d.a.num_groups = 7;
  d.a.lengths = dl.p;
  d.advantages = oa.p, d.group_mean = om.p, d.group_std = os.p, d.zero_std_groups = oz.p;
  Line line;
  rkcuda::Result res = rkcuda::group_advantages(d, nullptr);
  line.flag("bad id", res.code == rkcuda::kBadTarget && res.index == 123 && res.value == 7 && std::strcmp(res.where, "group_ids") == 0);
  line.flag("NaN adv", std::isnan(oa.down()[0]));
  gid[123] = 1;
  gid[200] = 2;
  dg.up(gid);
  res = rkcuda::group_advantages(d, nullptr);
  line.flag("bad length", res.code == rkcuda::kBadTarget && res.index == 50 && res.value == -4 && std::strcmp(res.where, "lengths") == 0);
  d.a.lengths = nullptr;
  std::vector<float> rb(n, 2.0f);  // bnpo: scaled rewards outside [0, 1]
  dr.up(rb);
  d.a.estimator = rk::AdvEstimator::Bnpo;
  res = rkcuda::group_advantages(d, nullptr);
  line.flag("bnpo range", res.code == rkcuda::kBadTarget && std::strcmp(res.where, "bnpo group mean") == 0 && res.index == 0);
  std::vector<float> w(n, 1.0f);
  w[77] = -0.5f;
  w[80] = INFINITY;
  fw.up(w);
  res = rkcuda::masked_whiten(dr.p, rk::TokenMask{fw.p, true}, n, true, true, 1e-8, oa.p, nullptr, nullptr);
  line.flag("whiten weight", res.code == rkcuda::kBadTarget && res.index == 77);
  CK(cudaDeviceSynchronize());
  return line.print("advantages", "bad ids / lengths / bnpo / weights");
}

}  // namespace

int cuda_check_advantages(bool quick) {
  int failed = 0;
  const int64_t sizes_quick[] = {1, 7, 96};
  const int64_t sizes_full[] = {1, 7, 96, 4001, 1 << 20};
  const int ns = quick ? 3 : 5;
  int c = 0;
  for (int s = 0; s < ns; ++s) {
    const int64_t n = quick ? sizes_quick[s] : sizes_full[s];
    const int64_t gs = n == 1 ? 1 : n == 7 ? 7 : n == 96 ? 8 : n == 4001 ? 1 : 16;  // 4001: groups of one
    for (int est = 0; est < 6; ++est) {
      const int nscale = (est == 0 || est == 4) ? 3 : 1;
      for (int scale = 0; scale < nscale; ++scale) {
        for (int ids = 0; ids < 2; ++ids) {
          ++c;
          failed += group_case(n, gs, ids == 1, 1, est, scale, false, false, est == 2 && ids == 1, 200 + c);
          if (est <= 5 && (c % 2 == 0 || est == 5))
            failed += group_case(n, gs, ids == 1, 3, est, scale, false, c % 4 == 0, false, 300 + c);
        }
      }
    }
    for (int ids = 0; ids < 2; ++ids) {
      failed += group_case(n, gs, ids == 1, 1, 0, 0, true, false, false, 400 + s);
      failed += group_case(n, gs, ids == 1, 3, 0, 0, true, true, false, 500 + s);
    }
  }
  if (quick) {  // batch statistics over several chunks (kSumChunk = 2048) even in the quick run
    const int64_t n = 4100, gs = 4;
    failed += group_case(n, gs, false, 1, 0, 1, false, false, false, 600);
    failed += group_case(n, gs, true, 1, 4, 1, false, false, false, 601);
    failed += group_case(n, gs, true, 1, 2, 0, false, false, true, 602);
    failed += group_case(n, gs, false, 3, 5, 0, false, true, false, 603);
    failed += group_case(n, gs, true, 3, 0, 0, true, true, false, 604);
  }
  struct S {
    int64_t B, T;
  };
  const S ts[] = {{1, 1}, {3, 17}, {4, 257}, {3, 1500}, {64, 4096}};
  uint64_t seed = 0;
  for (const S& s : ts)
    if (!quick || s.B * s.T <= 5000)
      for (int f = 0; f < 2; ++f) failed += token_case(s.B, s.T, f == 1, seed++);
  failed += bad_case();
  return failed;
}

}  // namespace rkdriver
#endif  // RK_WITH_CUDA

#if defined(RK_WITH_CUDA)
namespace rkdriver {
void cuda_bench_advantages(void* stream) {
  using namespace smallcheck;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t n = 1 << 20, gs = 16;
  std::vector<float> r(n);
  for (int64_t i = 0; i < n; ++i) r[i] = gauss(3, i);
  Dev<float> dr(r), adv(n), gm(n / gs), gsd(n / gs);
  Dev<long long> z(1);
  rkcuda::GroupAdvantagesDeviceArgs a;
  a.a.rewards = dr.p;
  a.a.n = n;
  a.a.group_size = gs;
  a.advantages = adv.p, a.group_mean = gm.p, a.group_std = gsd.p, a.zero_std_groups = z.p;
  const double ms = median_ms([&] { die_on(rkcuda::group_advantages(a, st), "group_advantages"); }, st);
  bench_line("groupAdvantages grpo (1M, groups of 16)", ms, static_cast<double>(n) * 8);
}
}  // namespace rkdriver
#endif
