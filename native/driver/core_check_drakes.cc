// rk_driver check, part: the shared core's counter-based Gumbel noise (native/core/drakes.h) against
// golden bits computed by the TypeScript reference (tests/reference/drakes.ts, BigInt SplitMix64 and
// the same + - * / logarithm). The CUDA kernels call the same core functions (cuda-check compares
// the sample bit for bit with the CPU's). Then the CPU kernels' vector noise (drakes_simd.inl) on
// every SIMD level this CPU has against the core, bit for bit, over runs of every length mod the
// vector width.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <vector>

#include "../core/drakes.h"
#include "../kernels/cpu.h"
#include "../kernels/drakes.h"
#include "core_check.h"

namespace rkdriver {

int core_check_drakes() {
  struct Gold {
    uint64_t seed, row, col, bits, noise;
  };
  static const Gold kGold[] = {
      {0ULL, 0, 0, 0x238275bc38fcbe91ULL, 0xbfe5c8c496496464ULL},
      {0ULL, 0, 1, 0xf89a2566b5822c54ULL, 0x400c3c20f5c9dd62ULL},
      {0ULL, 1, 0, 0x2f101fe21496ea20ULL, 0xbfe0dc7239d76236ULL},
      {1ULL, 0, 0, 0xb18a02f46d8d86c3ULL, 0x3ff015215352c960ULL},
      {42ULL, 3, 31999, 0x81ccd5b67e3da29aULL, 0x3fd8c26cbdac57d2ULL},
      {9007199254740991ULL, 1023, 7, 0x38cba0b4d3c3c316ULL, 0xbfda3184a1760b7eULL},
      {123456789ULL, 77, 12345, 0x64d7d61f726892c5ULL, 0x3fb2228802317471ULL},
      {7ULL, 0, 36, 0xb4339bf37163ec7aULL, 0x3ff0bf34417bb2ebULL},
  };
  int bad = 0;
  for (const Gold& g : kGold) {
    const uint64_t bits = rk::core::gumbel_bits(g.seed, g.row, g.col);
    const uint64_t noise = rk::core::dbits(rk::core::gumbel_noise(g.seed, g.row, g.col));
    if (bits != g.bits || noise != g.noise) {
      std::printf("  gumbel noise (%llu, %llu, %llu): bits %016llx noise %016llx, expected %016llx %016llx\n",
                  static_cast<unsigned long long>(g.seed), static_cast<unsigned long long>(g.row),
                  static_cast<unsigned long long>(g.col), static_cast<unsigned long long>(bits),
                  static_cast<unsigned long long>(noise), static_cast<unsigned long long>(g.bits),
                  static_cast<unsigned long long>(g.noise));
      ++bad;
    }
  }
  std::printf("core drakes: gumbel noise vs the TS reference's golden bits: %s\n", bad ? "FAIL" : "ok");

  {  // core::exp_rn against long double expl, in units of the double result's last place
    double worst = 0, sum = 0, worst_x = 0;
    int64_t cnt = 0, wrong = 0;
    auto ulps = [](double got, long double want) {
      if (want == 0) return got == 0 ? 0.0 : 1e9;
      int e;
      std::frexp(static_cast<double>(want), &e);
      const long double ulp = std::ldexp(1.0L, std::max(e - 53, -1074));
      return static_cast<double>(std::fabs(static_cast<long double>(got) - want) / ulp);
    };
    for (int64_t i = 0; i <= 400000; ++i) {
      // [-745.2, 709.8] evenly, then [-1, 1] and [-1e-3, 1e-3] densely
      const double x = i < 200000 ? -745.2 + 1455.0 * i / 200000.0 : (i < 300000 ? -1.0 + 2.0 * (i - 200000) / 100000.0 : -1e-3 + 2e-3 * (i - 300000) / 100000.0);
      const double got = rk::core::exp_rn(x);
      const long double want = std::exp(static_cast<long double>(x));
      if (want > std::numeric_limits<double>::max()) {
        wrong += got != HUGE_VAL;
        continue;
      }
      const double u = ulps(got, want);
      if (u > worst) worst_x = x;
      worst = std::max(worst, u);
      sum += u;
      ++cnt;
    }
    const double special[][2] = {{-HUGE_VAL, 0.0}, {HUGE_VAL, HUGE_VAL}, {-1e300, 0.0}, {1e300, HUGE_VAL},
                                 {0.0, 1.0}, {-0.0, 1.0}, {710.0, HUGE_VAL}, {-746.0, 0.0}};
    for (const auto& sp : special) wrong += rk::core::exp_rn(sp[0]) != sp[1];
    wrong += !std::isnan(rk::core::exp_rn(std::numeric_limits<double>::quiet_NaN()));
    const bool ok = worst <= 2.0 && wrong == 0;
    std::printf("core drakes: exp_rn vs expl over %lld points: worst %.2f ulp (at %.17g), mean %.3f ulp, special values %s %s\n",
                static_cast<long long>(cnt), worst, worst_x, sum / cnt, wrong ? "wrong" : "right", ok ? "ok" : "FAIL");
    bad += !ok;
  }

  struct Level {
    rk::Isa isa;
    rk::detail::GumbelNoiseFn (*fn)();
  };
  const Level levels[] = {{rk::Isa::Scalar, rk::detail::gumbel_noise_scalar},
                          {rk::Isa::Avx2, rk::detail::gumbel_noise_avx2},
                          {rk::Isa::Avx512, rk::detail::gumbel_noise_avx512}};
  const uint64_t seeds[] = {0ULL, 42ULL, 9007199254740991ULL, 0xffffffffffffffffULL};
  for (const Level& lv : levels) {
    if (static_cast<int>(lv.isa) > static_cast<int>(rk::detected_isa())) continue;
    const rk::detail::GumbelNoiseFn noise = lv.fn();
    int64_t diff = 0, checked = 0;
    std::vector<double> g(1100);
    for (uint64_t seed : seeds) {
      for (uint64_t row : {0ULL, 1ULL, 1023ULL, 4294967296ULL}) {
        const uint64_t key = rk::core::gumbel_row_key(seed, row);
        // columns from c0, n of them: every length 0..19 (tails of 4 and 8 lanes), a long run, and
        // column indices near 2^32 and 2^53
        for (int64_t c0 : {int64_t{0}, int64_t{5}, int64_t{31999}, int64_t{4294967290}, int64_t{9007199254740000}}) {
          for (int64_t n : {0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 15, 16, 17, 19, 1024, 1100}) {
            noise(key, c0, n, g.data());
            for (int64_t k = 0; k < n; ++k) {
              const uint64_t want = rk::core::dbits(rk::core::gumbel_noise_at(key, static_cast<uint64_t>(c0 + k)));
              diff += rk::core::dbits(g[k]) != want;
              ++checked;
            }
          }
        }
      }
    }
    std::printf("core drakes: %s gumbel noise vs the core, %lld values: %lld differ %s\n", rk::isa_name(lv.isa),
                static_cast<long long>(checked), static_cast<long long>(diff), diff ? "FAIL" : "ok");
    bad += diff != 0;
  }
  return bad;
}

}  // namespace rkdriver
