// rk_driver check, part: the shared core's counter-based Gumbel noise (native/core/drakes.h) against
// golden bits computed by the TypeScript reference (tests/reference/drakes.ts, BigInt SplitMix64 and
// the same + - * / logarithm). The CUDA kernels call the same core functions (cuda-check compares
// the sample bit for bit with the CPU's). Then the CPU kernels' vector noise (drakes_simd.inl) on
// every SIMD level this CPU has against the core, bit for bit, over runs of every length mod the
// vector width.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "../core/drakes.h"
#include "../kernels/cpu.h"
#include "../kernels/drakes.h"
#include "../kernels/half.h"
#include "core_check.h"

namespace rkdriver {

namespace {

// Every level's row loops against the scalar level's, bit for bit (and drakesKl's passes with the
// exponentials made again against those with them kept): runs of every length around the
// lane counts, the three dtypes, -inf entries, all -inf runs, a NaN, and large magnitudes.
// f32 -> f16 bits, truncating (test inputs only): +-inf and NaN kept, magnitudes clamped to [2^-14, 65504].
uint16_t f16_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7e00;
  if ((u & 0x7fffffffu) == 0x7f800000u) return sign | 0x7c00;
  int e = static_cast<int>((u >> 23) & 0xff) - 127;
  if (e < -14) return sign | 0x0400;
  if (e > 15) return sign | 0x7bff;
  return static_cast<uint16_t>(sign | ((e + 15) << 10) | ((u >> 13) & 0x3ffu));
}

int check_drakes_levels() {
  const rk::detail::DrakesKernels& ref = rk::detail::drakes_kernels_scalar();
  const rk::detail::DrakesKernels* others[] = {&rk::detail::drakes_kernels_avx2(), &rk::detail::drakes_kernels_avx512()};
  const rk::Isa isas[] = {rk::Isa::Avx2, rk::Isa::Avx512};
  int bad = 0;
  for (int o = 0; o < 2; ++o) {
    if (static_cast<int>(isas[o]) > static_cast<int>(rk::detected_isa())) continue;
    const rk::detail::DrakesKernels& k = *others[o];
    int64_t diff = 0, cases = 0;
    uint64_t st = 12345;
    auto rnd = [&] {  // uniform in [-1, 1)
      st = rk::core::splitmix64(st);
      return static_cast<double>(st >> 11) * 0x1p-52 - 1.0;
    };
    for (int dt : {rk::kF32, rk::kBF16, rk::kF16}) {
      for (int64_t n : {1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 31, 64, 1000, 1031}) {
        for (int kind = 0; kind < 5; ++kind) {  // 0 plain, 1 some -inf, 2 all -inf, 3 a NaN, 4 x 300
          std::vector<float> zf(n), zof(n), gf(n);
          for (int64_t j = 0; j < n; ++j) {
            zf[j] = static_cast<float>(3 * rnd() * (kind == 4 ? 300 : 1));
            zof[j] = static_cast<float>(3 * rnd() * (kind == 4 ? 300 : 1));
            gf[j] = static_cast<float>(rnd());
            if ((kind == 1 && j % 3 == 1) || kind == 2) zf[j] = -HUGE_VALF;
            if (kind == 1 && j % 5 == 2) zof[j] = -HUGE_VALF;
          }
          if (kind == 3) zf[n / 2] = std::numeric_limits<float>::quiet_NaN();
          std::vector<uint16_t> zh(n), zoh(n);
          const void *z = zf.data(), *zo = zof.data();
          if (dt != rk::kF32) {
            for (int64_t j = 0; j < n; ++j) {
              zh[j] = dt == rk::kBF16 ? rk::f32_to_bf16(zf[j]) : f16_of(zf[j]);
              zoh[j] = dt == rk::kBF16 ? rk::f32_to_bf16(zof[j]) : f16_of(zof[j]);
            }
            z = zh.data(), zo = zoh.data();
          }
          auto same = [&](const void* a, const void* b, size_t bytes) { diff += std::memcmp(a, b, bytes) != 0; };
          // score + exp
          std::vector<double> t1(n), t2(n);
          k.noise(77, 3, n, t1.data());
          t2 = t1;
          double m1, m2;
          int64_t a1, a2;
          bool b1, b2;
          ref.score(z, dt, n, 0.7, t1.data(), &m1, &a1, &b1);
          k.score(z, dt, n, 0.7, t2.data(), &m2, &a2, &b2);
          same(t1.data(), t2.data(), n * 8);
          diff += m1 != m2 && !(m1 != m1 && m2 != m2);
          diff += a1 != a2 || b1 != b2;
          std::vector<float> e1(n), e2(n);
          double s1, s2, d1, d2;
          ref.exp(t1.data(), n, m1, e1.data(), gf.data(), &s1, &d1);
          k.exp(t1.data(), n, m1, e2.data(), gf.data(), &s2, &d2);
          same(e1.data(), e2.data(), n * 4);
          same(&s1, &s2, 8);
          same(&d1, &d2, 8);
          // stats2, gkl_sum, gkl_grads
          double o1[4], o2[4];
          std::vector<double> ez1(2 * n), ez2(2 * n);
          ref.stats2(z, zo, dt, n, ez1.data(), ez1.data() + n, o1, &b1);
          k.stats2(z, zo, dt, n, ez2.data(), ez2.data() + n, o2, &b2);
          same(o1, o2, sizeof o1);
          diff += b1 != b2;
          if (!b1 && o1[1] > 0 && o1[3] > 0) {
            same(ez1.data(), ez2.data(), 2 * n * 8);
            const double lse = o1[0] + std::log(o1[1]), lseo = o1[2] + std::log(o1[3]);
            const double is = 1 / o1[1], io = 1 / o1[3];
            const double K1 = ref.gkl_sum(z, zo, ez1.data(), dt, n, lse, lseo, is, o1[0]);
            const double K2 = k.gkl_sum(z, zo, ez1.data(), dt, n, lse, lseo, is, o1[0]);
            const double K3 = k.gkl_sum(z, zo, nullptr, dt, n, lse, lseo, is, o1[0]);  // made again
            same(&K1, &K2, 8);
            same(&K1, &K3, 8);
            std::vector<float> g1(n), g2(n), g3(n), h1(n), h2(n), h3(n);
            ref.gkl_grads(z, zo, ez1.data(), ez1.data() + n, dt, n, lse, lseo, is, io, o1[0], o1[2], K1, 0.3, g1.data(), h1.data());
            k.gkl_grads(z, zo, ez1.data(), ez1.data() + n, dt, n, lse, lseo, is, io, o1[0], o1[2], K1, 0.3, g2.data(), h2.data());
            k.gkl_grads(z, zo, nullptr, nullptr, dt, n, lse, lseo, is, io, o1[0], o1[2], K1, 0.3, g3.data(), h3.data());
            same(g1.data(), g2.data(), n * 4);
            same(h1.data(), h2.data(), n * 4);
            same(g1.data(), g3.data(), n * 4);
            same(h1.data(), h3.data(), n * 4);
          }
          ++cases;
        }
      }
    }
    std::printf("core drakes: %s row loops vs the scalar level, %lld cases x 5 loops: %lld differ %s\n", rk::isa_name(isas[o]),
                static_cast<long long>(cases), static_cast<long long>(diff), diff ? "FAIL" : "ok");
    bad += diff != 0;
  }
  return bad;
}

}  // namespace

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
    const rk::detail::DrakesKernels& (*fn)();
  };
  const Level levels[] = {{rk::Isa::Scalar, rk::detail::drakes_kernels_scalar},
                          {rk::Isa::Avx2, rk::detail::drakes_kernels_avx2},
                          {rk::Isa::Avx512, rk::detail::drakes_kernels_avx512}};
  const uint64_t seeds[] = {0ULL, 42ULL, 9007199254740991ULL, 0xffffffffffffffffULL};
  for (const Level& lv : levels) {
    if (static_cast<int>(lv.isa) > static_cast<int>(rk::detected_isa())) continue;
    const rk::detail::DrakesKernels& k = lv.fn();
    int64_t diff = 0, checked = 0;
    std::vector<double> g(1100);
    for (uint64_t seed : seeds) {
      for (uint64_t row : {0ULL, 1ULL, 1023ULL, 4294967296ULL}) {
        const uint64_t key = rk::core::gumbel_row_key(seed, row);
        // columns from c0, n of them: every length 0..19 (tails of 4 and 8 lanes), a long run, and
        // column indices near 2^32 and 2^53
        for (int64_t c0 : {int64_t{0}, int64_t{5}, int64_t{31999}, int64_t{4294967290}, int64_t{9007199254740000}}) {
          for (int64_t n : {0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 15, 16, 17, 19, 1024, 1100}) {
            k.noise(key, c0, n, g.data());
            for (int64_t j = 0; j < n; ++j) {
              const uint64_t want = rk::core::dbits(rk::core::gumbel_noise_at(key, static_cast<uint64_t>(c0 + j)));
              diff += rk::core::dbits(g[j]) != want;
              ++checked;
            }
          }
        }
      }
    }
    // exp_rn through the lanes of the row loops, against the core
    std::vector<double> x, y;
    for (int64_t i = 0; i <= 20000; ++i) x.push_back(-800.0 + 1600.0 * i / 20000.0);
    for (double v : {-HUGE_VAL, HUGE_VAL, std::numeric_limits<double>::quiet_NaN(), 0.0, -0.0, -1e-300, 709.8, -745.2}) x.push_back(v);
    y.resize(x.size());
    int64_t ediff = 0;
    for (size_t n : {x.size(), size_t{13}, size_t{7}}) {
      k.exp_rn(x.data(), static_cast<int64_t>(n), y.data());
      for (size_t i = 0; i < n; ++i) ediff += rk::core::dbits(y[i]) != rk::core::dbits(rk::core::exp_rn(x[i]));
    }
    std::printf("core drakes: %s gumbel noise vs the core, %lld values: %lld differ; exp_rn lanes vs the core: %lld differ %s\n",
                rk::isa_name(lv.isa), static_cast<long long>(checked), static_cast<long long>(diff),
                static_cast<long long>(ediff), diff || ediff ? "FAIL" : "ok");
    bad += diff != 0 || ediff != 0;
  }
  bad += check_drakes_levels();
  return bad;
}

}  // namespace rkdriver
