// rk_driver check, preference part: every output of rk::preference_loss, on every SIMD level this
// CPU runs, against the scalar core formula rk::core::pair_loss (native/core/preference.h), pair by
// pair, over the whole option space: every loss, every f-divergence, label smoothing on and off,
// with and without references and lengths (RPO's nll_weight), bt margins and soft labels, random
// and extreme inputs (|log-ratio| up to 1e4, -inf, NaN, lengths 1 to 4096) and P with a vector
// tail.
//
// The losses without a vectorised path run the core function itself, so they must match bit for
// bit. The vectorised lanes (preference_simd.inl: sigmoid with reverse KL, simpo, cpo, bt without
// soft labels) evaluate exp and log1p with their own polynomials (about 2e-16 relative) and group
// some products differently, so each f32 output may differ from the scalar core in its last bits
// only: |simd - core| <= kUlps f32 ulps of the larger magnitude, or, for results that cancel to
// about 0 (a gradient k dx - nll / Lw), <= kAbs times the largest finite magnitude of that output
// over the pairs (double rounding of the terms). NaN must stay NaN and an infinity the same one.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "cpu.h"
#include "preference.h"
#include "threadpool.h"

namespace {

constexpr double kUlps = 2;
constexpr double kAbs = 1e-13;  // times the largest finite |value| of that output over the pairs

// Whether the loss takes the vectorised path for these options (preference.cc: `fast`).
bool vectorised(const rk::PreferenceParams& p, bool soft_labels) {
  switch (p.loss) {
    case rk::PrefLoss::Sigmoid: return p.fdiv == rk::FDivergence::ReverseKl;
    case rk::PrefLoss::Simpo:
    case rk::PrefLoss::Cpo: return true;
    case rk::PrefLoss::Bt: return !soft_labels;
    default: return false;
  }
}

// Distance of two f32 results in units of the f32 ulp at the larger magnitude (0 when equal bits;
// huge when only one is NaN or the infinities differ).
double ulps_apart(float a, float b, double* abs_diff) {
  *abs_diff = 0;
  if (std::memcmp(&a, &b, 4) == 0) return 0;
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0 : 1e300;
  if (std::isinf(a) || std::isinf(b)) return a == b ? 0 : 1e300;
  const double d = std::fabs(static_cast<double>(a) - static_cast<double>(b));
  *abs_diff = d;
  const double m = std::fmax(std::fabs(static_cast<double>(a)), std::fabs(static_cast<double>(b)));
  if (m == 0) return 0;  // +0 and -0: equal values (ilogb(0) is INT_MIN, which must not reach the ldexp below)
  const double ulp = std::fmax(std::ldexp(1.0, std::ilogb(m) - 23), std::ldexp(1.0, -149));
  return d / ulp;
}

struct Data {
  int64_t P;
  std::vector<float> w, l, rw, rl, margin, prob;
  std::vector<int32_t> lw, ll;
};

// Random pairs, with extreme ones mixed in when `extreme`.
Data make(int64_t P, uint32_t seed, bool extreme) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u01(0.0f, 1.0f);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Data d;
  d.P = P;
  d.w.resize(P), d.l.resize(P), d.rw.resize(P), d.rl.resize(P), d.margin.resize(P), d.prob.resize(P);
  d.lw.resize(P), d.ll.resize(P);
  for (int64_t i = 0; i < P; ++i) {
    d.lw[i] = 1 + static_cast<int32_t>(rng() % 512);
    d.ll[i] = 1 + static_cast<int32_t>(rng() % 512);
    d.w[i] = -static_cast<float>(d.lw[i]) * (0.05f + 1.5f * u01(rng));
    d.l[i] = -static_cast<float>(d.ll[i]) * (0.05f + 1.5f * u01(rng));
    d.rw[i] = d.w[i] + 8.0f * nd(rng);
    d.rl[i] = d.l[i] + 8.0f * nd(rng);
    d.margin[i] = nd(rng);
    d.prob[i] = u01(rng);
    if (!extreme) continue;
    switch (rng() % 12) {
      case 0: d.rw[i] = d.w[i] + 1e4f * u01(rng); break;        // huge log-ratios (capped exponents)
      case 1: d.rl[i] = d.l[i] - 1e4f * u01(rng); break;
      case 2: d.w[i] = -1e-13f; break;                            // orpo clamp
      case 3: d.w[i] = -INFINITY; break;
      case 4: d.l[i] = -INFINITY; break;
      case 5: d.w[i] = NAN; break;
      case 6: d.rl[i] = NAN; break;
      case 7: d.lw[i] = 1; d.ll[i] = 4096; break;
      case 8: d.w[i] = d.l[i] = -1e3f * u01(rng); d.rw[i] = d.rl[i] = 0; break;  // x = 0
      case 9: d.margin[i] = 1e3f * nd(rng); break;
      case 10: d.w[i] = -1e-30f; d.l[i] = -1e30f; break;
      default: break;
    }
  }
  return d;
}

// One option set on every SIMD level; returns the number of failed (level, output) checks.
int run_case(const Data& d, const rk::PreferenceParams& p, bool refs, bool margins, bool soft_labels,
             double* worst_ulps) {
  const int64_t P = d.P;
  const bool lens = rk::preference_needs_lengths(p);
  rk::PreferenceInputs in;
  in.pairs = P;
  in.chosen = d.w.data();
  in.rejected = d.l.data();
  in.ref_chosen = refs ? d.rw.data() : nullptr;
  in.ref_rejected = refs ? d.rl.data() : nullptr;
  in.chosen_len = lens ? d.lw.data() : nullptr;
  in.rejected_len = lens ? d.ll.data() : nullptr;
  in.margin = margins ? d.margin.data() : nullptr;
  in.preference_prob = soft_labels ? d.prob.data() : nullptr;
  // The scalar core, as preference_loss calls it: on a thread with the kernels' float mode
  // (FTZ/DAZ, set by parallel_for), so subnormal results flush to zero as they do in the kernel.
  const double inv_n = 1.0 / static_cast<double>(P);
  std::vector<float> want(5 * P);
  {
    rk::FloatModeGuard ftz;
    for (int64_t i = 0; i < P; ++i) {
      const rk::core::PairResult r = rk::core::pair_loss(in, p, i);
      want[5 * i] = static_cast<float>(r.loss);
      want[5 * i + 1] = static_cast<float>(r.rc);
      want[5 * i + 2] = static_cast<float>(r.rr);
      want[5 * i + 3] = static_cast<float>(r.gc * inv_n);
      want[5 * i + 4] = static_cast<float>(r.gr * inv_n);
    }
  }
  const bool exact = !vectorised(p, soft_labels);
  int bad = 0;
  const rk::Isa levels[] = {rk::Isa::Scalar, rk::Isa::Avx2, rk::Isa::Avx512};
  for (rk::Isa isa : levels) {
    if (!rk::set_isa(isa)) continue;
    std::vector<float> L(P), rc(P), rr(P), gc(P), gr(P);
    rk::PreferenceOutputs out;
    out.losses = L.data(), out.chosen_rewards = rc.data(), out.rejected_rewards = rr.data();
    out.grad_chosen = gc.data(), out.grad_rejected = gr.data();
    const rk::Status st = rk::preference_loss(in, p, out);
    if (!st.ok()) {
      std::printf("core-check preference: %s loss %s: status %d\n", rk::isa_name(isa),
                  rk::kPrefLossNames[static_cast<int>(p.loss)], static_cast<int>(st.code));
      ++bad;
      continue;
    }
    const float* got[5] = {L.data(), rc.data(), rr.data(), gc.data(), gr.data()};
    const char* what[5] = {"loss", "chosen_reward", "rejected_reward", "grad_chosen", "grad_rejected"};
    for (int k = 0; k < 5; ++k) {
      double scale = 0;
      for (int64_t i = 0; i < P; ++i)
        if (std::isfinite(want[5 * i + k])) scale = std::fmax(scale, std::fabs(static_cast<double>(want[5 * i + k])));
      const double abs_tol = kAbs * scale;
      for (int64_t i = 0; i < P; ++i) {
        const float a = got[k][i], b = want[5 * i + k];
        double ad;
        const double u = ulps_apart(a, b, &ad);
        const bool ok = exact ? std::memcmp(&a, &b, 4) == 0 || (std::isnan(a) && std::isnan(b))
                              : u <= kUlps || ad <= abs_tol;
        if (!exact && u < 1e300 && ad > abs_tol && u > *worst_ulps) *worst_ulps = u;
        if (!ok) {
          std::printf("core-check preference FAIL: %s %s fdiv %s e=%g nll=%g refs=%d margins=%d soft=%d pair %lld %s: "
                      "kernel %.9g core %.9g (%.3g ulps)\n",
                      rk::isa_name(isa), rk::kPrefLossNames[static_cast<int>(p.loss)],
                      rk::kFDivergenceNames[static_cast<int>(p.fdiv)], p.label_smoothing, p.nll_weight, refs,
                      margins, soft_labels, static_cast<long long>(i), what[k], a, b, u);
          ++bad;
          break;
        }
      }
    }
  }
  rk::set_isa(rk::detected_isa());
  return bad;
}

}  // namespace

// Called by `rk_driver check` (main.cc). Returns 1 on a mismatch.
int core_check_preference() {
  const Data sets[] = {make(1037, 11, false), make(1037, 12, true), make(7, 13, true), make(4096 + 5, 14, true)};
  int cases = 0, bad = 0;
  double worst = 0;
  for (const Data& d : sets) {
    for (int loss = 0; loss < rk::kPrefLossCount; ++loss) {
      const rk::PrefLoss L = static_cast<rk::PrefLoss>(loss);
      // The batch losses (aot, aot_unpaired, sft) have no per-pair core formula and no SIMD lanes:
      // tests/preference.test.ts and the parity rows hold them.
      if (rk::is_batch_loss(L)) continue;
      const bool uses_fdiv = L == rk::PrefLoss::Sigmoid || L == rk::PrefLoss::Robust || L == rk::PrefLoss::Hinge ||
                             L == rk::PrefLoss::Ipo || L == rk::PrefLoss::ExoPair || L == rk::PrefLoss::Discopop ||
                             L == rk::PrefLoss::SigmoidNorm;
      const bool takes_refs = !(L == rk::PrefLoss::Simpo || L == rk::PrefLoss::Cpo || L == rk::PrefLoss::Orpo ||
                                L == rk::PrefLoss::Bt);
      for (int f = 0; f < (uses_fdiv ? rk::kFDivergenceCount : 1); ++f)
        for (double e : {0.0, 0.1})
          for (double nll : {0.0, 0.3})
            for (int refs = 0; refs < (takes_refs ? 2 : 1); ++refs)
              for (int v = 0; v < (L == rk::PrefLoss::Bt ? 4 : L == rk::PrefLoss::Cpo ? 2 : 1); ++v) {
                rk::PreferenceParams p;
                p.loss = L;
                p.beta = L == rk::PrefLoss::Bt ? 1.0 : (L == rk::PrefLoss::Simpo ? 2.0 : 0.1);
                p.label_smoothing = (L == rk::PrefLoss::Bt && (v & 2)) ? 0.0 : e;
                p.gamma = 0.5;
                p.alpha = L == rk::PrefLoss::Cpo ? ((v & 1) ? 0.0 : 1.0) : 1.0;
                p.tau = 0.05;
                p.margin = 0.25;
                p.fdiv = static_cast<rk::FDivergence>(f);
                p.f_alpha = 0.5;
                p.nll_weight = nll;
                bad += run_case(d, p, refs != 0, L == rk::PrefLoss::Bt && (v & 1), L == rk::PrefLoss::Bt && (v & 2), &worst);
                ++cases;
              }
    }
  }
  std::printf("core-check preference: %d option sets x SIMD levels against the scalar core, worst vectorised "
              "lane %.2f f32 ulps: %s\n",
              cases, worst, bad ? "FAIL" : "ok");
  return bad ? 1 : 0;
}
