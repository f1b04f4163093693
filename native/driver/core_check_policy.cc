// rk_driver check, part: the hand-vectorised policy lanes (policy_simd.inl, one build per SIMD level)
// against the shared core functions (native/core/policy.h) over the whole option space: every
// variant, KL estimator (with and without a reference), dual clip / delta on and off, mask
// none / u8 / f32, per-row and per-token advantages, entropy on and off, random and extreme inputs
// (|d| > 20 clamps, NaN). The scalar build calls the core itself: bits must match there; the AVX2 /
// AVX-512 lanes have their own exp2 and may fuse multiply-adds, so they get a tight tolerance.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "cpu.h"
#include "policy.h"
#include "simd.h"  // the scalar exp2v the C++ kernels' core calls use
#include "threadpool.h"

namespace rkdriver {
namespace {

struct Exp2Ref {
  float operator()(float t) const { return rk::scalar::exp2v(rk::scalar::VF{t}).v; }
};

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }
bool close(double a, double b, bool exact) {
  if (exact) return std::memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b);
  if (a != a || b != b) return a != a && b != b;
  if (a == b) return true;
  return std::fabs(a - b) <= 1e-5 * std::max(1.0, std::fabs(b));
}

}  // namespace

int core_check_policy() {
  rk::FloatModeGuard fm;  // the kernels run flush-to-zero (parallel_for)
  using namespace rk;
  std::mt19937 rng(11);
  constexpr int64_t n = 203;  // tails for every width
  std::vector<float> lp(n), old(n), ref(n), ent(n), adv(n), wf(n), tw(n);
  std::vector<uint8_t> wu(n);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const float extremes[] = {0.0f, -0.0f, 20.0f, -20.0f, 20.5f, -20.5f, 25.0f, -30.0f, 19.99f, -19.99f,
                            0.49f, -0.49f, 0.51f, -0.51f, 1e-7f, -1e-7f, 9.5f, -11.0f, NAN};
  const int ne = sizeof extremes / sizeof extremes[0];
  for (int64_t i = 0; i < n; ++i) {
    lp[i] = -std::fabs(3.0f * u(rng)) - 0.01f;
    const float d = i < ne ? extremes[i] : (i % 3 == 0 ? 0.3f * u(rng) : 4.0f * u(rng));
    old[i] = lp[i] - d;
    const float dk = i + ne < n && i >= ne && i < 2 * ne ? extremes[i - ne] : 2.0f * u(rng);
    ref[i] = lp[i] - dk;
    ent[i] = 2.0f * std::fabs(u(rng));
    adv[i] = i % 17 == 0 ? 0.0f : 3.0f * u(rng);
    wf[i] = i % 5 == 0 ? 0.0f : 1.5f * std::fabs(u(rng));
    wu[i] = static_cast<uint8_t>(i % 4 == 0 ? 0 : i % 3);
    tw[i] = i % 7 == 0 ? 0.0f : 3.0f * std::fabs(u(rng));  // policyLoss tokenWeights
  }
  struct Level {
    Isa isa;
    const detail::PolicyKernels& (*k)();
  };
  const Level levels[] = {{Isa::Scalar, &detail::policy_kernels_scalar},
                          {Isa::Avx2, &detail::policy_kernels_avx2},
                          {Isa::Avx512, &detail::policy_kernels_avx512}};
  const Exp2Ref ex2;
  int cases = 0, bad = 0;
  for (const Level& lv : levels) {
    if (static_cast<int>(lv.isa) > static_cast<int>(detected_isa())) continue;
    const bool exact = lv.isa == Isa::Scalar;
    const detail::PolicyKernels& K = lv.k();
    int lv_bad = 0, lv_cases = 0;
    for (int var = 0; var < kPolicyVariantCount; ++var)
      for (int kl = -1; kl < kKlEstimatorCount; ++kl)  // -1: no reference
        for (int opt = 0; opt < 4; ++opt)                // dual clip, delta
          for (int mk = 0; mk < kMaskKindCount; ++mk)
            for (int shape = 0; shape < 8; ++shape) {  // per-token advantages, entropy, token weights
              PolicyLossParams p;
              p.variant = static_cast<PolicyVariant>(var);
              p.dual_clip = (opt & 1) ? 3.0 : 0.0;
              p.delta = (opt & 2) ? 1.5 : 0.0;
              p.beta = 0.05;
              p.kl = static_cast<KlEstimator>(kl < 0 ? 0 : kl);
              p.entropy_coef = 0.01;
              p.epsilon_high = var == 2 ? 4.0 : 0.28;
              const core::PolicyTokenParams P = core::policy_token_params(p);
              const bool per_tok = shape & 1, has_ent = shape & 2, has_w = shape & 4, has_ref = kl >= 0;
              const void* mask = mk == 1 ? static_cast<const void*>(wu.data())
                                 : mk == 2 ? static_cast<const void*>(wf.data()) : nullptr;
              float gr, gdr;
              core::gspo_row_ratio(var == 1 ? 0.37 : 0.0, &gr, &gdr);
              const float weight = 1.0f / 137.0f;
              detail::FastChunk fc;
              fc.logprobs = lp.data();
              fc.old_logprobs = old.data();
              fc.advantages = per_tok ? adv.data() : nullptr;
              fc.adv_row = -0.75f;
              fc.mask = mask;
              fc.mask_kind = mk;
              fc.n = n;
              fc.variant = var;
              fc.lo = P.lo;
              fc.hi = P.hi;
              fc.eps_hi = P.eps_hi;
              fc.delta = P.delta;
              fc.dual_clip = P.dual_c;
              fc.gspo_ratio = gr;
              fc.gspo_dratio = gdr;
              fc.tau_pos = P.tau_pos;
              fc.tau_neg = P.tau_neg;
              fc.ref_logprobs = has_ref ? ref.data() : nullptr;
              fc.kl_estimator = p.kl == KlEstimator::K1 && !has_ref ? 0 : static_cast<int>(p.kl);
              fc.beta = P.beta;
              fc.entropy = has_ent ? ent.data() : nullptr;
              fc.entropy_coef = P.ecoef;
              fc.token_weights = has_w ? tw.data() : nullptr;
              fc.weight = weight;
              std::vector<float> g(n, 7.0f), ge(n, 7.0f);
              fc.grad = g.data();
              fc.grad_entropy = has_ent ? ge.data() : nullptr;
              K.fast_chunk(&fc);
              // the reference: the core per token, sums in double in token order
              double s[7] = {0, 0, 0, 0, 0, 0, 0};
              bool ok = true;
              for (int64_t i = 0; i < n; ++i) {
                const float m = mk == 1 ? (wu[i] != 0 ? 1.0f : 0.0f) : mk == 2 ? wf[i] : 1.0f;
                const bool valid = m > 0.0f;
                const float A = per_tok ? adv[i] : fc.adv_row;
                const core::PolicyToken t = core::policy_token(p.variant, P, lp[i], lp[i] - old[i], A, gr, gdr,
                                                               has_ref, ref[i], p.kl, has_ent, ent[i], ex2,
                                                               has_w, tw[i]);
                const float w = m * weight;
                const float gref = valid ? w * t.grad : 0.0f;
                if (!(exact ? same_bits(g[i], gref) || (g[i] != g[i] && gref != gref) : close(g[i], gref, false))) {
                  if (ok && lv_bad < 3)
                    std::printf("  %s var %d kl %d opt %d mask %d shape %d token %lld: grad %.9g, core %.9g\n",
                                isa_name(lv.isa), var, kl, opt, mk, shape, (long long)i, g[i], gref);
                  ok = false;
                }
                if (has_ent && !same_bits(ge[i], valid ? 0.0f - P.ecoef * w : 0.0f)) ok = false;
                s[0] += valid ? static_cast<double>(m * t.loss) : 0.0;
                s[1] += (t.clip_low && valid) ? static_cast<double>(m) : 0.0;
                s[2] += (t.clip_high && valid) ? static_cast<double>(m) : 0.0;
                s[3] += (t.dual && valid) ? static_cast<double>(m) : 0.0;
                const float d = lp[i] - old[i];
                s[4] += valid ? static_cast<double>(m * 0.5f * d * d) : 0.0;
                s[5] += has_ref && valid ? static_cast<double>(m * t.kl) : 0.0;
                s[6] += has_ent && valid ? static_cast<double>(m * ent[i]) : 0.0;
              }
              for (int k = 0; k < 7; ++k) {
                // the lanes' partial sums are added in another order: a tolerance even for bits
                if (!close(fc.sums[k], s[k], false)) {
                  if (ok && lv_bad < 3)
                    std::printf("  %s var %d kl %d opt %d mask %d shape %d: sum %d %.17g, core %.17g\n",
                                isa_name(lv.isa), var, kl, opt, mk, shape, k, fc.sums[k], s[k]);
                  ok = false;
                }
              }
              ++lv_cases;
              lv_bad += !ok;
            }
    // kl_chunk: elementwise estimate and gradient
    for (int est = 0; est < kKlEstimatorCount; ++est)
      for (int mk = 0; mk < kMaskKindCount; ++mk) {
        const void* mask = mk == 1 ? static_cast<const void*>(wu.data())
                           : mk == 2 ? static_cast<const void*>(wf.data()) : nullptr;
        std::vector<float> kv(n), kg(n);
        double sums[2];
        K.kl_chunk(lp.data(), old.data(), mask, mk, n, est, kv.data(), kg.data(), sums);
        bool ok = true;
        double sm = 0, skl = 0;
        for (int64_t i = 0; i < n; ++i) {
          const float m = mk == 1 ? (wu[i] != 0 ? 1.0f : 0.0f) : mk == 2 ? wf[i] : 1.0f;
          const bool valid = m > 0.0f;
          float v, gk;
          core::kl_estimate(static_cast<KlEstimator>(est), lp[i] - old[i], ex2, &v, &gk);
          v = valid ? v : 0.0f;
          gk = valid ? gk : 0.0f;
          if (!close(kv[i], v, exact) || !close(kg[i], gk, exact)) {
            if (ok && lv_bad < 3)
              std::printf("  %s kl_chunk est %d mask %d token %lld: %.9g %.9g, core %.9g %.9g\n", isa_name(lv.isa),
                          est, mk, (long long)i, kv[i], kg[i], v, gk);
            ok = false;
          }
          sm += m;
          skl += valid ? static_cast<double>(m * v) : 0.0;
        }
        if (!close(sums[0], sm, false) || !close(sums[1], skl, false)) ok = false;
        ++lv_cases;
        lv_bad += !ok;
      }
    std::printf("core policy  %-7s %4d cases (lanes vs core%s)  %s\n", isa_name(lv.isa), lv_cases,
                exact ? ", bits" : ", 1e-5", lv_bad ? "FAIL" : "ok");
    cases += lv_cases;
    bad += lv_bad;
  }
  return bad;
}

}  // namespace rkdriver
