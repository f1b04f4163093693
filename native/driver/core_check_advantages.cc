// rk_driver check, part: group_advantages on every SIMD level against the shared core
// (native/core/advantages.h): the AVX2 path of advantages.cc (contiguous f32 groups, grpo, scale
// group / none) claims bits identical to core::group_stat + core::group_write, so bits are compared;
// every estimator and scale is also compared bit for bit across levels, and the fused estimators
// (grpo / passk with scale group or none, rloo, opo) against the core directly.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "advantages.h"
#include "cpu.h"
#include "threadpool.h"

namespace rkdriver {

int core_check_advantages() {
  rk::FloatModeGuard fm;  // the kernels run flush-to-zero (parallel_for): so does the reference
  using namespace rk;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  const int64_t sizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 33};
  const Isa levels[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512};
  int bad = 0, cases = 0;
  for (int64_t gs : sizes) {
    const int64_t G = 13, n = G * gs;
    std::vector<float> r(n);
    std::vector<int32_t> len(n);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t g = i / gs;
      // group kinds: random, all equal, one NaN, all NaN, huge / tiny values, 0/1 rewards
      r[i] = g % 6 == 1 ? 0.5f : g % 6 == 4 ? (i % 2 ? 3e38f : -1e-38f) : g % 6 == 5 ? float(i % 2) : u(rng);
      if ((g % 6 == 2 && i % gs == gs / 2) || g % 6 == 3) r[i] = NAN;
      if (g % 6 != 4 && g % 6 != 5 && g % 6 != 1) r[i] = 0.5f + 0.25f * r[i];  // in [0, 1] for bnpo
      len[i] = 1 + static_cast<int32_t>(i % 7);
    }
    for (int est = 0; est < kAdvEstimatorCount; ++est)
      for (int sc = 0; sc < kAdvScaleCount; ++sc) {
        GroupAdvantagesArgs a;
        a.rewards = r.data();
        a.n = n;
        a.group_size = gs;
        a.estimator = static_cast<AdvEstimator>(est);
        a.scale = static_cast<AdvScale>(sc);
        a.lengths = a.estimator == AdvEstimator::Opo ? len.data() : nullptr;
        std::vector<float> adv0, gm0, gsd0;
        int64_t z0 = 0;
        bool have0 = false, ok = true;
        const bool fused = (a.estimator == AdvEstimator::Grpo || a.estimator == AdvEstimator::PassK)
                               ? a.scale != AdvScale::Batch
                               : (a.estimator == AdvEstimator::Rloo || a.estimator == AdvEstimator::Opo);
        // the core reference for the fused estimators
        std::vector<float> advr(n), gmr(G), gsr(G);
        int64_t zr = 0;
        if (fused) {
          auto at = [](int64_t k) { return k; };
          auto val = [&](int64_t i) { return static_cast<double>(r[i]); };
          for (int64_t g = 0; g < G; ++g) {
            const core::GroupStat s = core::group_stat(g * gs, (g + 1) * gs, at, val,
                                                       a.estimator == AdvEstimator::PassK, a.lengths);
            gmr[g] = static_cast<float>(s.base);
            gsr[g] = static_cast<float>(s.scale);
            zr += s.equal;
            core::group_write(a.estimator, a.scale, a.eps, s, 1.0, 0.0, g * gs, (g + 1) * gs, at, val, advr.data());
          }
        }
        for (Isa isa : levels) {
          if (!set_isa(isa)) continue;
          std::vector<float> adv(n, 7.0f), gm(G, 7.0f), gsd(G, 7.0f);
          int64_t z = -1;
          const Status st = group_advantages(a, adv.data(), gm.data(), gsd.data(), &z);
          if (!st.ok()) {  // bnpo rejects groups outside [0, 1]: the same on every level
            if (!have0) adv0.clear();
            continue;
          }
          auto same = [](const std::vector<float>& x, const std::vector<float>& y) {
            return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
          };
          if (!have0) {
            adv0 = adv, gm0 = gm, gsd0 = gsd, z0 = z, have0 = true;
          } else if (!same(adv, adv0) || !same(gm, gm0) || !same(gsd, gsd0) || z != z0) {
            std::printf("  %s est %d scale %d group %lld: differs from the scalar level\n", isa_name(isa), est, sc,
                        (long long)gs);
            ok = false;
          }
          if (fused && (!same(adv, advr) || !same(gm, gmr) || !same(gsd, gsr) || z != zr)) {
            std::printf("  %s est %d scale %d group %lld: differs from core group_stat + group_write (%d%d%d%d)\n",
                        isa_name(isa), est, sc, (long long)gs, same(adv, advr), same(gm, gmr), same(gsd, gsr), z == zr);
            for (int64_t i = 0; i < n && ok; ++i)
              if (std::memcmp(&adv[i], &advr[i], 4)) { std::printf("    i %lld r %.9g adv %.9g core %.9g\n", (long long)i, r[i], adv[i], advr[i]); break; }
            ok = false;
          }
        }
        set_isa(detected_isa());
        ++cases;
        bad += !ok;
      }
  }
  std::printf("core advantages: %d cases x every SIMD level (bits vs core and across levels)  %s\n", cases,
              bad ? "FAIL" : "ok");
  return bad;
}

}  // namespace rkdriver
