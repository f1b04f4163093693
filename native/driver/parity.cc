// rk_driver cuda-check: the backend parity harness (as ggml's test-backend-ops). One table row per
// exported op (kOps at the end): a case generator over awkward shapes and the op's option space (the
// enum options counted and named by the generated layout, native/binding/layout.gen.h), the CPU call
// (native/kernels), the CUDA call (cuda/) and the stated tolerance of every output. The generic
// runner (run_cases) gives every CUDA call fresh outputs poisoned with NaN, compares each output
// with the CPU's, reruns the call where the row asks (bit-identical), prints one line per case and
// "N passed, M failed" last. Each row may add edge checks (bad targets, bad arguments, bad mask
// weights) that are not CPU comparisons. The sequence ops share one row template (SeqRow): a new
// sequence op is one RK_SEQ_ROW line in kOps.
//   RK_CUDA_CHECK_MAX_ELEMS  skip cases with more elements (the host emulation, cuda/emu)
//   RK_CUDA_CHECK_OPS        comma-separated op names: run only those rows
// Compiled only when CMake found nvcc (RK_WITH_CUDA); plain C++ on the CUDA runtime API.
#if defined(RK_WITH_CUDA)
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../../cuda/advantages.h"
#include "../../cuda/copo.h"
#include "../../cuda/divergence.h"
#include "../../cuda/drakes.h"
#include "../../cuda/logprobs.h"
#include "../../cuda/moo.h"
#include "../../cuda/policy.h"
#include "../../cuda/policy_logits.h"
#include "../../cuda/preference.h"
#include "../../cuda/p3o.h"
#include "../../cuda/preference_strength.h"
#include "../../cuda/rollout_correction.h"
#include "../../cuda/seq_ops.gen.h"
#include "../../cuda/truncation.h"
#include "../binding/layout.gen.h"
#include "../kernels/advantages.h"
#include "../kernels/copo.h"
#include "../kernels/divergence.h"
#include "../kernels/drakes.h"
#include "../kernels/logprobs.h"
#include "../kernels/moo.h"
#include "../kernels/policy.h"
#include "../kernels/policy_logits.h"
#include "../kernels/preference.h"
#include "../kernels/p3o.h"
#include "../kernels/preference_strength.h"
#include "../kernels/rollout_correction.h"
#include "../kernels/seq_driver.h"
#include "../kernels/threadpool.h"
#include "../kernels/truncation.h"
#include "cuda_driver.h"
#include "parity.h"

namespace rkdriver {
namespace {

using rng::mix64;
using rng::normal;
using rng::unif;
constexpr double kInf = std::numeric_limits<double>::infinity();

// The layout's enum codes are the kernels' (checked here, so a reordered descriptor fails to build).
namespace lp = rkl::tokenLogprobs;
namespace dv = rkl::vocabDivergence;
namespace pl = rkl::policyLoss;
namespace pf = rkl::preferenceLoss;
static_assert(int(lp::dtype_code::f32) == int(rkcuda::kF32) && int(lp::dtype_code::bf16) == int(rkcuda::kBF16) &&
              int(lp::dtype_code::f16) == int(rkcuda::kF16), "dtype codes");
static_assert(int(rkl::tokenLogprobsBackward::dtype_code::kCount) == int(lp::dtype_code::kCount) &&
              int(dv::dtype_code::kCount) == int(lp::dtype_code::kCount), "dtype codes");
static_assert(int(dv::divergence_code::forward_kl) == int(rkcuda::kForwardKL) && int(dv::divergence_code::reverse_kl) == int(rkcuda::kReverseKL) &&
              int(dv::divergence_code::jsd) == int(rkcuda::kJSD), "divergence codes");
static_assert(pl::variant_code::cispo == static_cast<int>(rk::PolicyVariant::Cispo) &&
              pl::variant_code::kCount == static_cast<int>(rk::PolicyVariant::Gpg) + 1, "variant codes");
static_assert(pl::aggregation_code::seq_mean_token_sum_norm == static_cast<int>(rk::LossAggregation::SeqMeanTokenSumNorm),
              "aggregation codes");
static_assert(pl::klEstimator_code::k3_ == static_cast<int>(rk::KlEstimator::K3Plus) &&
              int(rkl::klPenalty::estimator_code::kCount) == int(pl::klEstimator_code::kCount), "estimator codes");
static_assert(int(pf::loss_code::kCount) == int(rk::kPrefLossCount) && pf::loss_code::bt == static_cast<int>(rk::PrefLoss::Bt) &&
              int(pf::fDivergence_code::kCount) == int(rk::kFDivergenceCount), "preference codes");
// Mask kinds of policyLoss / klPenalty / the sequence ops (a slot's type, not an enum option).
constexpr int kMaskKinds = 3;
const char* const kMaskNames[kMaskKinds] = {"nomask", "u8", "f32"};
namespace ga = rkl::groupAdvantages;
static_assert(int(ga::estimator_code::kCount) == rk::kAdvEstimatorCount && int(ga::estimator_code::bnpo) == int(rk::AdvEstimator::Bnpo) &&
              int(ga::scale_code::kCount) == rk::kAdvScaleCount && int(ga::scale_code::none) == int(rk::AdvScale::None) &&
              int(ga::multiReward_code::normalize_then_sum) == int(rk::MultiReward::NormalizeThenSum),
              "groupAdvantages codes");
static_assert(int(rkl::ensembleRewards::method_code::kCount) == rk::kEnsembleMethodCount &&
              int(rkl::ensembleRewards::method_code::uwo) == int(rk::EnsembleMethod::Uwo), "ensembleRewards codes");

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char b[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(b, sizeof b, f, ap);
  va_end(ap);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Outputs, tolerances, comparison.

// The error of an element is |got - ref| / max(|ref|, floor), floor = (atol + atol_rel * scale) / rtol
// where scale is the largest finite |ref| of its row (row elements; 0: the whole array); it passes
// at <= rtol. NaN and inf must match exactly. exact: bit-for-bit equal values.
struct Tol {
  double rtol = 1e-5, atol = 0, atol_rel = 0;
  int64_t row = 0;
  bool exact = false;
};
Tol abs_tol(double rtol, double atol) {
  Tol t;
  t.rtol = rtol, t.atol = atol;
  return t;
}
Tol rel_tol(double rtol, double atol_rel, int64_t row = 0) {
  Tol t;
  t.rtol = rtol, t.atol_rel = atol_rel, t.row = row;
  return t;
}
// The O(n) kernels' f32 outputs: 1e-5 relative, absolute floor 1e-6 x the largest |value|.
const Tol kRel = rel_tol(1e-5, 1e-6);
Tol exact_tol() {
  Tol t;
  t.exact = true;
  return t;
}

// One named output: f32 elements, or f64 (scalars, metrics).
struct Arr {
  std::string name;
  std::vector<float> f;
  std::vector<double> d;
  bool f64 = false;
  Tol tol;
  bool finite = false;  // must be finite everywhere, on both backends (garbage under a mask)
  size_t size() const { return f64 ? d.size() : f.size(); }
  double at(size_t i) const { return f64 ? d[i] : f[i]; }
};
Arr farr(std::string name, std::vector<float> v, Tol t) {
  Arr a;
  a.name = std::move(name), a.f = std::move(v), a.tol = t;
  return a;
}
Arr darr(std::string name, std::vector<double> v, Tol t) {
  Arr a;
  a.name = std::move(name), a.d = std::move(v), a.f64 = true, a.tol = t;
  return a;
}
template <class T>
double max_abs(const std::vector<T>& v) {
  double m = 0;
  for (const T& x : v)
    if (std::isfinite(static_cast<double>(x))) m = std::max(m, std::fabs(static_cast<double>(x)));
  return m;
}

double worst_err(const Arr& g, const Arr& r) {
  const Tol& t = r.tol;
  const int64_t n = static_cast<int64_t>(r.size());
  if (static_cast<int64_t>(g.size()) != n) return kInf;
  if (n == 0) return 0;
  const int64_t row = t.row > 0 ? t.row : n, rows = (n + row - 1) / row;
  std::vector<double> worst(static_cast<size_t>(rows), 0.0);
  rk::parallel_for(rows, 1, [&](int64_t b, int64_t e) {
    for (int64_t q = b; q < e; ++q) {
      const int64_t lo = q * row, hi = std::min(n, lo + row);
      double scale = 0;
      if (t.atol_rel > 0)
        for (int64_t j = lo; j < hi; ++j)
          if (std::isfinite(r.at(j))) scale = std::max(scale, std::fabs(r.at(j)));
      const double floor = t.exact ? 0 : std::max((t.atol + t.atol_rel * scale) / t.rtol, 1e-300);
      double w = 0;
      for (int64_t j = lo; j < hi && w < kInf; ++j) {
        const double x = g.at(j), y = r.at(j);
        if (!std::isfinite(y)) {
          if (!(std::isnan(y) ? std::isnan(x) : x == y)) w = kInf;
        } else if (!std::isfinite(x)) {
          w = kInf;
        } else if (t.exact) {
          if (x != y) w = kInf;
        } else {
          w = std::max(w, std::fabs(x - y) / std::max(std::fabs(y), floor));
        }
      }
      worst[q] = w;
    }
  });
  return *std::max_element(worst.begin(), worst.end());
}
bool all_finite(const Arr& a) {
  for (size_t i = 0; i < a.size(); ++i)
    if (!std::isfinite(a.at(i))) return false;
  return true;
}
bool same_bits(const Arr& a, const Arr& b) {
  if (a.f64 != b.f64 || a.size() != b.size()) return false;
  return a.f64 ? std::memcmp(a.d.data(), b.d.data(), 8 * a.size()) == 0
               : std::memcmp(a.f.data(), b.f.data(), 4 * a.size()) == 0;
}

// The outputs of one call, or why it failed.
struct Run {
  std::vector<Arr> out;
  std::string fail;
};
std::string status_text(const rk::Status& s) {
  return fmt("status %d (index %lld, value %lld)", static_cast<int>(s.code), static_cast<long long>(s.index),
             static_cast<long long>(s.value));
}
std::string result_text(const rkcuda::Result& r) {
  char msg[256];
  return rkcuda::format_error(r, msg, sizeof msg);
}

// One printed line per case: "name worst" items, (!) past the tolerance, flags.
struct Line {
  std::string text;
  bool ok = true;
  void add(const std::string& name, double worst, const Tol& t) {
    const bool good = t.exact ? worst == 0 : worst <= t.rtol;
    text += t.exact ? fmt(" %s %s", name.c_str(), good ? "exact" : "DIFFERS(!)")
                    : fmt(" %s %.1e%s", name.c_str(), worst, good ? "" : "(!)");
    ok = ok && good;
  }
  void flag(const std::string& what, bool good) {
    text += " " + what + (good ? " ok" : " FAILED(!)");
    ok = ok && good;
  }
  bool print(const char* op, const std::string& what) const {
    std::printf("[%s] %-21s %-50s|%s\n", ok ? " ok " : "FAIL", op, what.c_str(), text.c_str());
    std::fflush(stdout);
    return ok;
  }
};

struct Ctx {
  int64_t max_elems = std::numeric_limits<int64_t>::max();
  bool quick = false;  // the host emulation: the small ops' short size lists
  int skipped = 0;
  bool fits(int64_t elems) {
    if (elems <= max_elems) return true;
    ++skipped;
    return false;
  }
};
struct Tally {
  int passed = 0, failed = 0;
  void add(bool ok) { (ok ? passed : failed)++; }
};

// The generic runner of a row R: R::Case, R::cases(Ctx&), R::label(c), R::data(c) (host inputs),
// R::cpu(c, d), R::cuda(c, d) (fresh NaN-poisoned outputs every call), R::det(c) (rerun, same bits).
template <class R>
void run_cases(const char* op, const R& row, Ctx& ctx, Tally& tally) {
  for (const auto& c : row.cases(ctx)) {
    const auto d = row.data(c);
    Line line;
    const Run ref = row.cpu(c, d);
    const Run got = row.cuda(c, d);
    CK(cudaDeviceSynchronize());
    if (!ref.fail.empty()) {
      line.flag("CPU " + ref.fail, false);
    } else if (!got.fail.empty()) {
      line.flag("CUDA " + got.fail, false);
    } else {
      for (const Arr& r : ref.out) {
        const Arr* g = nullptr;
        for (const Arr& x : got.out)
          if (x.name == r.name) g = &x;
        if (!g) {
          line.flag(r.name + " missing", false);
          continue;
        }
        line.add(r.name, worst_err(*g, r), r.tol);
        if (r.finite) line.flag("finite", all_finite(r) && all_finite(*g));
      }
      if (row.det(c)) {
        const Run again = row.cuda(c, d);
        CK(cudaDeviceSynchronize());
        bool same = again.fail.empty() && again.out.size() == got.out.size();
        for (size_t i = 0; same && i < got.out.size(); ++i) same = same_bits(got.out[i], again.out[i]);
        line.flag("det", same);
      }
    }
    tally.add(line.print(op, row.label(c)));
  }
}

// ---------------------------------------------------------------------------------------------
// tokenLogprobs, tokenLogprobsBackward: (N, V) logits of every dtype.

constexpr int kDtypes = lp::dtype_code::kCount;
constexpr unsigned kAllDt = (1u << kDtypes) - 1, kF32b = 1u << lp::dtype_code::f32,
                   kBF16b = 1u << lp::dtype_code::bf16, kF16b = 1u << lp::dtype_code::f16;
constexpr int32_t kIgn = -100;
double dtype_rtol(int dt) { return dt == rkcuda::kF32 ? 1e-5 : 1e-3; }
int dtype_size(int dt) { return dt == rkcuda::kF32 ? 4 : 2; }

struct LpShape {
  const char* what;
  unsigned dtypes;
  int64_t n, v;
  float tau;
  float mean, sd;  // logits = mean + sd * normal
  double ninf;     // share of -inf logits (never at the target); row 1 all -inf but two
  double ignore;   // share of ignored rows
  int offset;      // logits and grad start this many elements past an aligned address
  uint64_t seed;
};
const LpShape kLpShapes[] = {
    {"V=1", kAllDt, 4, 1, 1.0f, 0, 3, 0, 0, 0, 1},
    {"V=1 ignore", kAllDt, 4, 1, 0.7f, 0, 3, 0, 0.3, 0, 2},
    {"V=17 -inf ignore", kAllDt, 5, 17, 0.7f, 0, 3, 0.1, 0.3, 0, 3},
    {"V=17 offset", kAllDt, 5, 17, 1.3f, 0, 3, 0.1, 0.0, 1, 5},
    {"V=1031 -inf", kAllDt, 5, 1031, 0.7f, 0, 3, 0.1, 0.2, 0, 6},
    {"V=1031 many rows", kBF16b, 300, 1031, 1.3f, 0, 3, 0.0, 0.1, 0, 9},
    {"V=1031 offset", kF32b, 300, 1031, 1.0f, 0, 3, 0.0, 0.1, 1, 10},
    {"V=1031 offset 3", kAllDt, 37, 1031, 1.0f, 0, 3, 0.0, 0.1, 3, 11},
    {"V=32000", kAllDt, 2, 32000, 0.7f, 0, 3, 0, 0, 0, 12},
    {"V=32000 -inf", kF16b, 257, 32000, 1.0f, 0, 3, 0.05, 0.1, 0, 14},
    {"V=32000 rows>=1024", kBF16b, 1100, 32000, 1.0f, 0, 3, 0, 0.05, 0, 15},
    {"V=151936 N=1", kAllDt, 1, 151936, 0.7f, 0, 3, 0, 0, 0, 16},
    {"V=151936 split -inf", kF32b, 300, 151936, 0.7f, 0, 3, 0.02, 0.1, 0, 19},
    {"V=151936 split", kBF16b, 300, 151936, 1.0f, 0, 3, 0, 0.1, 0, 20},
    {"V=151936 rows>=1024", kBF16b, 1024, 151936, 1.0f, 0, 3, 0, 0.05, 0, 21},
    {"magnitude 1e4+N(0,3)", kAllDt, 64, 32000, 1.0f, 1e4f, 3, 0, 0.1, 0, 22},
    {"magnitude N(0,1e4)", kF32b, 16, 1031, 1.0f, 0, 1e4f, 0, 0, 0, 25},
    {"magnitude N(0,1e4) split", kF32b, 2, 151936, 0.7f, 0, 1e4f, 0, 0, 0, 26},
};

struct LpData {
  std::vector<uint8_t> z;  // dtype-encoded
  std::vector<int32_t> y;
  std::vector<float> g, h, lse, H;  // dL/dlogp, dL/dH; the CPU forward's lse, H (for reuse)
};
LpData lp_data(const LpShape& c, int dtype) {
  LpData d;
  const int es = dtype_size(dtype);
  const int64_t n = c.n, v = c.v;
  d.z.resize(static_cast<size_t>(n * v) * es);
  d.y.resize(n), d.g.resize(n), d.h.resize(n), d.lse.resize(n), d.H.resize(n);
  for (int64_t r = 0; r < n; ++r) {
    d.y[r] = static_cast<int32_t>(mix64(c.seed + 1000 * r + 17) % static_cast<uint64_t>(v));
    if (r > 0 && unif(c.seed + 3, r) < c.ignore) d.y[r] = kIgn;
    d.g[r] = normal(c.seed + 5, r);
    d.h[r] = normal(c.seed + 7, r);
  }
  uint8_t* base = d.z.data();
  rk::parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const bool inf_row = c.ninf > 0 && r == 1 && n > 1;
      const int32_t y = d.y[r];
      for (int64_t j = 0; j < v; ++j) {
        const uint64_t i = static_cast<uint64_t>(r * v + j);
        float x = c.mean + c.sd * normal(c.seed, i);
        const bool keep = j == y || (inf_row && j == (y + 1) % v);
        if (!keep && (inf_row || (c.ninf > 0 && unif(c.seed + 11, i) < c.ninf))) x = -INFINITY;
        if (dtype == rkcuda::kF32) {
          std::memcpy(base + i * 4, &x, 4);
        } else {
          const uint16_t bits = dtype == rkcuda::kBF16 ? rng::to_bf16(x) : rng::to_f16(x);
          std::memcpy(base + i * 2, &bits, 2);
        }
      }
    }
  });
  const rk::LogitsView lv{d.z.data(), static_cast<rk::DType>(dtype), n, v};
  std::vector<float> lp(n);
  rk::token_logprobs_forward(lv, d.y.data(), c.tau, kIgn, lp.data(), d.lse.data(), d.H.data());
  return d;
}
// The logits on the device, `offset` elements past an aligned address.
struct DevLogits {
  Dev<uint8_t> buf;
  uint8_t* p;
  DevLogits(const LpData& d, int dtype, int offset) : buf(d.z.size() + 256) {
    p = buf.p + static_cast<size_t>(offset) * dtype_size(dtype);
    CK(cudaMemcpy(p, d.z.data(), d.z.size(), cudaMemcpyHostToDevice));
  }
};

struct LpCase {
  const LpShape* s;
  int dtype;
  int variant;
};
std::vector<LpCase> lp_cases(Ctx& ctx, int variants, bool f32_only_last) {
  std::vector<LpCase> out;
  for (const LpShape& s : kLpShapes) {
    if (!ctx.fits(s.n * s.v)) continue;
    for (int dt = 0; dt < kDtypes; ++dt)
      if (s.dtypes >> dt & 1)
        for (int k = 0; k < variants; ++k)
          if (!(f32_only_last && k == variants - 1 && dt != rkcuda::kF32)) out.push_back({&s, dt, k});
  }
  return out;
}
std::string lp_label(const LpCase& c, const char* variant) {
  return fmt("%s %s N=%lld V=%lld tau=%.2g %s splits=%d", c.s->what, lp::k_dtype_names[c.dtype],
             static_cast<long long>(c.s->n), static_cast<long long>(c.s->v), c.s->tau, variant,
             rkcuda::logprobs_row_splits(c.s->n, c.s->v));
}

// Variant 0: with entropy (rerun: same bits); 1: without, a caller-owned bad-row slot (async form).
struct TokenLogprobs {
  using Case = LpCase;
  std::vector<Case> cases(Ctx& ctx) const { return lp_cases(ctx, 2, false); }
  std::string label(const Case& c) const { return lp_label(c, c.variant == 0 ? "entropy" : "no entropy, slot"); }
  LpData data(const Case& c) const { return lp_data(*c.s, c.dtype); }
  bool det(const Case& c) const { return c.variant == 0; }
  Run cpu(const Case& c, const LpData& d) const {
    const int64_t n = c.s->n;
    const rk::LogitsView lv{d.z.data(), static_cast<rk::DType>(c.dtype), n, c.s->v};
    std::vector<float> lp(n), lse(n), H(n);
    Run r;
    const rk::Status st = rk::token_logprobs_forward(lv, d.y.data(), c.s->tau, kIgn, lp.data(), lse.data(),
                                                     c.variant == 0 ? H.data() : nullptr);
    if (!st.ok()) r.fail = status_text(st);
    const Tol t = abs_tol(dtype_rtol(c.dtype), 1e-6);
    r.out = {farr("logp", lp, t), farr("lse", lse, t)};
    if (c.variant == 0) r.out.push_back(farr("H", H, t));
    return r;
  }
  Run cuda(const Case& c, const LpData& d) const {
    const int64_t n = c.s->n;
    DevLogits z(d, c.dtype, c.s->offset);
    Dev<int32_t> y(d.y);
    Dev<float> lp(n), lse(n), H(n);
    Dev<unsigned long long> slot(1);
    rkcuda::LogprobsForwardArgs a;
    a.logits = z.p, a.dtype = c.dtype, a.rows = n, a.vocab = c.s->v, a.targets = y.p;
    a.temperature = c.s->tau, a.ignore_index = kIgn, a.logp = lp.p, a.lse = lse.p;
    a.entropy = c.variant == 0 ? H.p : nullptr;
    Run r;
    rkcuda::Result res;
    if (c.variant == 1) {
      die_on(rkcuda::bad_row_reset(slot.p, nullptr), "bad_row_reset");
      a.bad_row = slot.p;
      res = rkcuda::token_logprobs_forward(a, nullptr);
      if (res.ok()) res = rkcuda::bad_row_read(slot.p, y.p, nullptr);
    } else {
      res = rkcuda::token_logprobs_forward(a, nullptr);
    }
    if (!res.ok()) r.fail = result_text(res);
    const Tol t;
    r.out = {farr("logp", lp.down(), t), farr("lse", lse.down(), t)};
    if (c.variant == 0) r.out.push_back(farr("H", H.down(), t));
    return r;
  }
};

// Variants: g and h (statistics recomputed); g only; lse and H given with a bad-row slot; f32 in
// place over the logits (lse and H given).
struct TokenLogprobsBackward {
  using Case = LpCase;
  static constexpr const char* kNames[] = {"g+h", "g only", "g+h lse,H given, slot", "in place"};
  std::vector<Case> cases(Ctx& ctx) const { return lp_cases(ctx, 4, true); }
  std::string label(const Case& c) const { return lp_label(c, kNames[c.variant]); }
  LpData data(const Case& c) const { return lp_data(*c.s, c.dtype); }
  bool det(const Case& c) const { return c.variant == 2; }
  Run cpu(const Case& c, const LpData& d) const {
    const int64_t n = c.s->n, v = c.s->v;
    const rk::LogitsView lv{d.z.data(), static_cast<rk::DType>(c.dtype), n, v};
    std::vector<float> g(static_cast<size_t>(n * v));
    const bool reuse = c.variant >= 2;
    const rk::Status st =
        rk::token_logprobs_backward(lv, d.y.data(), c.s->tau, kIgn, d.g.data(), c.variant == 1 ? nullptr : d.h.data(),
                                    reuse ? d.lse.data() : nullptr, reuse ? d.H.data() : nullptr, g.data());
    Run r;
    if (!st.ok()) r.fail = status_text(st);
    r.out = {farr("grad", std::move(g), rel_tol(dtype_rtol(c.dtype), 1e-6, v))};
    return r;
  }
  Run cuda(const Case& c, const LpData& d) const {
    const int64_t n = c.s->n, v = c.s->v;
    const size_t nv = static_cast<size_t>(n * v);
    DevLogits z(d, c.dtype, c.s->offset);
    Dev<int32_t> y(d.y);
    Dev<float> g(d.g), h(d.h), lse(d.lse), H(d.H), gbuf(nv + 64);
    Dev<unsigned long long> slot(1);
    float* grad = gbuf.p + c.s->offset;
    rkcuda::LogprobsBackwardArgs a;
    a.logits = z.p, a.dtype = c.dtype, a.rows = n, a.vocab = v, a.targets = y.p;
    a.temperature = c.s->tau, a.ignore_index = kIgn, a.grad_logp = g.p;
    a.grad_entropy = c.variant == 1 ? nullptr : h.p;
    a.grad = grad;
    if (c.variant >= 2) a.lse = lse.p, a.entropy = H.p;
    if (c.variant == 2) {
      die_on(rkcuda::bad_row_reset(slot.p, nullptr), "bad_row_reset");
      a.bad_row = slot.p;
    }
    if (c.variant == 3) {
      CK(cudaMemcpy(grad, z.p, nv * 4, cudaMemcpyDeviceToDevice));
      a.logits = grad;
    }
    rkcuda::Result res = rkcuda::token_logprobs_backward(a, nullptr);
    if (res.ok() && c.variant == 2) res = rkcuda::bad_row_read(slot.p, y.p, nullptr);
    Run r;
    if (!res.ok()) r.fail = result_text(res);
    std::vector<float> out(nv);
    CK(cudaMemcpy(out.data(), grad, nv * 4, cudaMemcpyDeviceToHost));
    r.out = {farr("grad", std::move(out), Tol{})};
    return r;
  }
};

// Bad targets: never read out of bounds, NaN rows, the lowest bad row reported (sync and slot); the
// good rows match the CPU kernel run with the bad rows ignored; bad temperature / alignment refused.
bool logprobs_bad_targets(int dtype, int64_t n, int64_t v) {
  const LpShape s{"bad targets", 1u << dtype, n, v, 1.0f, 0.0f, 2.0f, 0.0, 0.0, 0, 99};
  LpData d = lp_data(s, dtype);
  const int64_t bad1 = n > 3 ? 3 : n - 1, bad2 = n > 7 ? 7 : -1;
  std::vector<int32_t> ycpu = d.y;
  d.y[bad1] = static_cast<int32_t>(v + 100);
  if (bad2 >= 0) d.y[bad2] = -5;
  ycpu[bad1] = kIgn;
  if (bad2 >= 0) ycpu[bad2] = kIgn;
  const rk::LogitsView lv{d.z.data(), static_cast<rk::DType>(dtype), n, v};
  std::vector<float> lp(n), lse(n), H(n);
  rk::token_logprobs_forward(lv, ycpu.data(), 1.0f, kIgn, lp.data(), lse.data(), H.data());
  const size_t nv = static_cast<size_t>(n * v);
  std::vector<float> gref(nv);
  rk::token_logprobs_backward(lv, ycpu.data(), 1.0f, kIgn, d.g.data(), nullptr, nullptr, nullptr, gref.data());
  DevLogits z(d, dtype, 0);
  Dev<int32_t> y(d.y);
  Dev<float> dlp(n), dlse(n), dH(n), dg(d.g), dgrad(nv);
  Dev<unsigned long long> slot(1);
  Line line;
  rkcuda::LogprobsForwardArgs fa;
  fa.logits = z.p, fa.dtype = dtype, fa.rows = n, fa.vocab = v, fa.targets = y.p;
  fa.logp = dlp.p, fa.lse = dlse.p, fa.entropy = dH.p;
  const rkcuda::Result r = rkcuda::token_logprobs_forward(fa, nullptr);  // synchronous check
  line.flag("forward report", r.code == rkcuda::kBadTarget && r.index == bad1 && r.value == v + 100);
  std::vector<float> glp = dlp.down(), glse = dlse.down(), gH = dH.down();
  bool nan_rows = true;
  for (int64_t i = 0; i < n; ++i) {
    const bool is_bad = i == bad1 || i == bad2;
    nan_rows = nan_rows && is_bad == std::isnan(glp[i]) && is_bad == std::isnan(gH[i]);
    if (is_bad) glp[i] = lp[i] = glse[i] = lse[i] = 0.0f;
  }
  line.flag("forward NaN rows", nan_rows);
  const Tol t = abs_tol(dtype_rtol(dtype), 1e-6);
  line.add("good rows", std::max(worst_err(farr("", glp, t), farr("", lp, t)), worst_err(farr("", glse, t), farr("", lse, t))), t);
  die_on(rkcuda::bad_row_reset(slot.p, nullptr), "bad_row_reset");
  rkcuda::LogprobsBackwardArgs ba;
  ba.logits = z.p, ba.dtype = dtype, ba.rows = n, ba.vocab = v, ba.targets = y.p;
  ba.grad_logp = dg.p, ba.grad = dgrad.p, ba.bad_row = slot.p;
  line.flag("async launch", rkcuda::token_logprobs_backward(ba, nullptr).ok());
  const rkcuda::Result rb = rkcuda::bad_row_read(slot.p, y.p, nullptr);
  line.flag("backward slot", rb.code == rkcuda::kBadTarget && rb.index == bad1);
  std::vector<float> gout = dgrad.down();
  nan_rows = true;
  for (int64_t i = 0; i < n; ++i) {
    const bool is_bad = i == bad1 || i == bad2;
    for (int64_t j = 0; j < v; ++j) {
      float& x = gout[i * v + j];
      nan_rows = nan_rows && is_bad == std::isnan(x);
      if (is_bad) x = gref[i * v + j];
    }
  }
  line.flag("backward NaN rows", nan_rows);
  const Tol tg = rel_tol(dtype_rtol(dtype), 1e-6, v);
  line.add("good grad rows", worst_err(farr("", gout, tg), farr("", gref, tg)), tg);
  rkcuda::LogprobsForwardArgs fb = fa;
  fb.temperature = 0.0f;
  const rkcuda::Result r0 = rkcuda::token_logprobs_forward(fb, nullptr);
  line.flag("temperature 0 refused", r0.code == rkcuda::kBadArgument && std::strcmp(r0.where, "temperature") == 0);
  fb = fa;
  fb.logits = static_cast<const uint8_t*>(fa.logits) + 1;
  line.flag("misaligned refused", rkcuda::token_logprobs_forward(fb, nullptr).code == rkcuda::kBadArgument);
  CK(cudaDeviceSynchronize());
  return line.print("tokenLogprobs", fmt("bad targets %s N=%lld V=%lld splits=%d", lp::k_dtype_names[dtype],
                                         static_cast<long long>(n), static_cast<long long>(v),
                                         rkcuda::logprobs_row_splits(n, v)));
}
void logprobs_edges(Ctx& ctx, Tally& t) {
  for (int dt = 0; dt < kDtypes; ++dt) t.add(logprobs_bad_targets(dt, 12, 1031));
  if (ctx.fits(2 * 151936)) t.add(logprobs_bad_targets(rkcuda::kBF16, 2, 151936));  // split path
}

// ---------------------------------------------------------------------------------------------
// vocabDivergence: every kind (and jsd at beta 0 and 1) x forward only / gradient with per-row
// dL/dD / gradient with a scalar dL/dD (f32: in place over the logits).

struct DivShape {
  const char* what;
  unsigned dtypes;
  int64_t n, v;
  float tau;
  double beta;     // of the jsd runs
  float mean, sd;  // student logits = mean + sd * normal
  float tmean;     // target logits = tmean + 0.8 * (student - mean) + 0.6 sd * normal
  double ninf;     // share of -inf logits (the same entries in both rows)
  double drop;     // share of rows masked out (half by row_mask, half by labels = ignore_index)
  bool edges;      // rows 1-5: mostly -inf, q = 0 < p, p = 0 < q, all -inf, a NaN logit
  int soff, toff, goff;  // logits / target / grad start this many elements past 256 bytes
  uint64_t seed;
  bool extra_beta;  // also jsd with beta 0 and 1 (exactly forward / reverse kl)
};
const DivShape kDivShapes[] = {
    {"V=1", kF32b, 4, 1, 1.0f, 0.5, 0, 3, 0, 0, 0, false, 0, 0, 0, 1, false},
    {"V=1 masked", kBF16b, 4, 1, 0.7f, 0.5, 0, 3, 0, 0, 0.5, false, 0, 0, 0, 2, false},
    {"V=17 edges", kF32b, 8, 17, 0.7f, 0.5, 0, 3, 0, 0.1, 0.3, true, 0, 0, 0, 3, true},
    {"V=17 edges", kBF16b, 8, 17, 1.3f, 0.3, 0, 3, 0, 0.1, 0.3, true, 0, 0, 0, 4, false},
    {"V=17 edges offset", kF16b, 8, 17, 1.0f, 0.7, 0, 3, 0, 0.1, 0.3, true, 1, 3, 1, 5, false},
    {"V=1031 -inf", kF32b, 5, 1031, 0.7f, 0.5, 0, 3, 0, 0.1, 0.2, false, 0, 0, 0, 6, false},
    {"V=1031 -inf", kBF16b, 5, 1031, 1.0f, 0.1, 0, 3, 0, 0.1, 0.2, false, 0, 0, 0, 7, false},
    {"V=1031 -inf", kF16b, 5, 1031, 2.0f, 0.9, 0, 3, 0, 0.1, 0.2, false, 0, 0, 0, 8, false},
    {"V=1031 offset", kF32b, 37, 1031, 1.0f, 0.5, 0, 3, 0, 0, 0.1, false, 1, 1, 3, 9, false},
    {"V=1031 phases differ", kF32b, 37, 1031, 1.0f, 0.5, 0, 3, 0, 0, 0.1, false, 1, 2, 0, 10, false},
    {"V=1031 phases differ", kBF16b, 37, 1031, 0.7f, 0.5, 0, 3, 0, 0, 0.1, false, 0, 3, 1, 11, false},
    {"V=1031 many rows", kBF16b, 300, 1031, 1.3f, 0.5, 0, 3, 0, 0, 0.1, true, 0, 0, 0, 12, false},
    {"V=32000", kF32b | kBF16b, 2, 32000, 0.7f, 0.5, 0, 3, 0, 0, 0, false, 0, 0, 0, 13, false},
    {"V=32768 split", kF32b, 1, 32768, 1.0f, 0.5, 0, 3, 0, 0.05, 0, false, 1, 1, 1, 15, false},
    {"V=32000 -inf", kF16b, 257, 32000, 1.0f, 0.5, 0, 3, 0, 0.05, 0.1, true, 0, 0, 0, 16, false},
    {"V=32000 rows>=1024", kBF16b, 1100, 32000, 1.0f, 0.5, 0, 3, 0, 0, 0.05, false, 0, 0, 0, 17, false},
    {"V=151936 N=1", kF32b | kBF16b, 1, 151936, 0.7f, 0.5, 0, 3, 0, 0, 0, false, 0, 0, 0, 18, false},
    {"V=151936 N=1 offset", kF16b, 1, 151936, 2.0f, 0.5, 0, 3, 0, 0, 0, false, 1, 1, 1, 20, false},
    {"V=151936 split -inf", kF32b, 300, 151936, 0.7f, 0.5, 0, 3, 0, 0.02, 0.1, true, 0, 0, 0, 21, false},
    {"V=151936 split", kBF16b, 300, 151936, 1.0f, 0.5, 0, 3, 0, 0, 0.1, false, 0, 0, 0, 22, false},
    {"magnitude 1e4, -1e4", kAllDt, 64, 32000, 1.0f, 0.5, 1e4f, 3, -1e4f, 0, 0.1, false, 0, 0, 0, 23, false},
    {"magnitude N(0,1e4)", kF32b, 16, 1031, 1.0f, 0.5, 0, 1e4f, 0, 0, 0, false, 0, 0, 0, 26, false},
    {"magnitude N(0,1e4) split", kF32b, 2, 151936, 0.7f, 0.5, 0, 1e4f, 0, 0, 0, false, 0, 0, 0, 27, false},
};

struct DivData {
  std::vector<uint8_t> z, zt;       // dtype-encoded
  std::vector<uint8_t> mask;        // the device's row mask
  std::vector<int32_t> labels;      // the device's labels (ignore_index drops a row)
  std::vector<uint8_t> cpu_mask;    // mask and labels combined, for the CPU kernel
  std::vector<float> grow;          // dL/dD per row
};
DivData div_data(const DivShape& c, int dtype) {
  DivData d;
  const int es = dtype_size(dtype);
  const int64_t n = c.n, v = c.v;
  d.z.resize(static_cast<size_t>(n * v) * es);
  d.zt.resize(static_cast<size_t>(n * v) * es);
  d.mask.assign(n, 1), d.labels.resize(n), d.cpu_mask.assign(n, 1), d.grow.resize(n);
  for (int64_t r = 0; r < n; ++r) {
    d.labels[r] = static_cast<int32_t>(mix64(c.seed + 1000 * r + 17) % static_cast<uint64_t>(v));
    const double u = unif(c.seed + 3, r);
    const bool special = c.edges && r >= 1 && r <= 5;
    if (r > 0 && !special && u < c.drop / 2) d.mask[r] = 0;
    if (r > 0 && !special && u >= c.drop / 2 && u < c.drop) d.labels[r] = kIgn;
    d.cpu_mask[r] = d.mask[r] != 0 && d.labels[r] != kIgn;
    d.grow[r] = normal(c.seed + 5, r);
  }
  const float ninf = -INFINITY;
  rk::parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      for (int64_t j = 0; j < v; ++j) {
        const uint64_t i = static_cast<uint64_t>(r * v + j);
        const float base = c.sd * normal(c.seed, i);
        float x = c.mean + base;
        float y = c.tmean + 0.8f * base + 0.6f * c.sd * normal(c.seed + 1, i);
        if (c.ninf > 0 && unif(c.seed + 11, i) < c.ninf && j != 0) x = y = ninf;
        if (c.edges) {
          if (r == 1 && j != 0 && j != v / 2) x = y = ninf;  // two entries left
          if (r == 2 && j % 7 == 3) y = ninf;                 // q = 0 < p: reverse_kl inf
          if (r == 3 && j % 5 == 1) x = ninf;                 // p = 0 < q: forward_kl inf
          if (r == 4) x = y = ninf;                           // no distribution: NaN
          if (r == 5 && j == v / 3) x = std::numeric_limits<float>::quiet_NaN();
        }
        if (dtype == rkcuda::kF32) {
          std::memcpy(d.z.data() + i * 4, &x, 4);
          std::memcpy(d.zt.data() + i * 4, &y, 4);
        } else {
          const uint16_t bx = dtype == rkcuda::kBF16 ? rng::to_bf16(x) : rng::to_f16(x);
          const uint16_t by = dtype == rkcuda::kBF16 ? rng::to_bf16(y) : rng::to_f16(y);
          std::memcpy(d.z.data() + i * 2, &bx, 2);
          std::memcpy(d.zt.data() + i * 2, &by, 2);
        }
      }
    }
  });
  return d;
}

struct VocabDivergence {
  struct Case {
    const DivShape* s;
    int dtype, kind;
    double beta;
    int mode;  // 0 forward only; 1 gradient, per-row dL/dD x 0.5; 2 gradient, dL/dD = 1 (f32: in place)
  };
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    for (const DivShape& s : kDivShapes) {
      if (!ctx.fits(s.n * s.v)) continue;
      for (int dt = 0; dt < kDtypes; ++dt) {
        if (!(s.dtypes >> dt & 1)) continue;
        std::vector<std::pair<int, double>> runs;
        for (int k = 0; k < dv::divergence_code::kCount; ++k) runs.push_back({k, s.beta});
        if (s.extra_beta) runs.push_back({dv::divergence_code::jsd, 0.0}), runs.push_back({dv::divergence_code::jsd, 1.0});
        for (const auto& run : runs)
          for (int mode = 0; mode < 3; ++mode) out.push_back({&s, dt, run.first, run.second, mode});
      }
    }
    return out;
  }
  std::string label(const Case& c) const {
    const char* mode = c.mode == 0 ? "fwd" : c.mode == 1 ? "grad rows" : c.dtype == rkcuda::kF32 ? "grad in place" : "grad scalar";
    return fmt("%s %s N=%lld V=%lld tau=%.2g %s%s %s splits=%d", c.s->what, dv::k_dtype_names[c.dtype],
               static_cast<long long>(c.s->n), static_cast<long long>(c.s->v), c.s->tau, dv::k_divergence_names[c.kind],
               c.kind == dv::divergence_code::jsd ? fmt(" b=%.2g", c.beta).c_str() : "", mode,
               rkcuda::divergence_row_splits(c.s->n, c.s->v));
  }
  DivData data(const Case& c) const { return div_data(*c.s, c.dtype); }
  bool det(const Case& c) const { return c.mode == 1; }
  // Absolute floors, from what the CPU kernel's own test allows against float64: the divergence is
  // a difference of O(1) log terms in f32 (2e-6 there, twice that here as both sides carry it);
  // gradient entries near 0 come from cancellation (5e-6 of the row's largest entry).
  Run cpu(const Case& c, const DivData& d) const {
    const int64_t n = c.s->n, v = c.s->v;
    const rk::LogitsView lv{d.z.data(), static_cast<rk::DType>(c.dtype), n, v};
    const rk::LogitsView tv{d.zt.data(), static_cast<rk::DType>(c.dtype), n, v};
    rk::DivergenceParams prm;
    prm.kind = static_cast<rk::DivergenceKind>(c.kind);
    prm.beta = c.beta;
    prm.temperature = static_cast<double>(c.s->tau);
    std::vector<float> div(n), grad(c.mode ? static_cast<size_t>(n * v) : 0);
    const rk::Status st = rk::vocab_divergence(lv, tv, d.cpu_mask.data(), prm, div.data(), c.mode == 1 ? 0.5 : 1.0,
                                               c.mode == 1 ? d.grow.data() : nullptr, c.mode ? grad.data() : nullptr);
    Run r;
    if (!st.ok()) r.fail = status_text(st);
    const double rtol = dtype_rtol(c.dtype);
    r.out = {farr("div", div, abs_tol(rtol, 4e-6))};
    if (c.mode) r.out.push_back(farr("grad", std::move(grad), rel_tol(rtol, 5e-6, v)));
    return r;
  }
  Run cuda(const Case& c, const DivData& d) const {
    const int64_t n = c.s->n, v = c.s->v;
    const size_t nv = static_cast<size_t>(n * v);
    const int es = dtype_size(c.dtype);
    Dev<uint8_t> zbuf(nv * es + 256), tbuf(nv * es + 256), mask(d.mask);
    uint8_t* z = zbuf.p + static_cast<size_t>(c.s->soff) * es;
    uint8_t* zt = tbuf.p + static_cast<size_t>(c.s->toff) * es;
    CK(cudaMemcpy(z, d.z.data(), nv * es, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(zt, d.zt.data(), nv * es, cudaMemcpyHostToDevice));
    Dev<int32_t> labels(d.labels);
    Dev<float> grow(d.grow), div(n), gbuf(c.mode ? nv + 64 : 0);
    float* grad = c.mode ? gbuf.p + c.s->goff : nullptr;
    rkcuda::DivergenceArgs a;
    a.logits = z, a.target = zt, a.dtype = c.dtype, a.rows = n, a.vocab = v, a.kind = c.kind, a.beta = c.beta;
    a.temperature = c.s->tau, a.row_mask = mask.p, a.labels = labels.p, a.ignore_index = kIgn, a.div = div.p;
    if (c.mode == 1) a.grad = grad, a.grad_scale = 0.5, a.grad_rows = grow.p;
    if (c.mode == 2) {
      a.grad = grad, a.grad_scale = 1.0;
      if (c.dtype == rkcuda::kF32) {
        CK(cudaMemcpy(grad, z, nv * 4, cudaMemcpyDeviceToDevice));
        a.logits = grad;
      }
    }
    const rkcuda::Result res = rkcuda::vocab_divergence(a, nullptr);
    Run r;
    if (!res.ok()) r.fail = result_text(res);
    r.out = {farr("div", div.down(), Tol{})};
    if (c.mode) {
      std::vector<float> g(nv);
      CK(cudaMemcpy(g.data(), grad, nv * 4, cudaMemcpyDeviceToHost));
      r.out.push_back(farr("grad", std::move(g), Tol{}));
    }
    return r;
  }
};

// Bad arguments are reported, not used; N = 0 is a no-op.
void divergence_edges(Ctx&, Tally& t) {
  const int64_t n = 3, v = 17;
  Dev<float> z(n * v), tg(n * v), d(n), g(n * v);
  rkcuda::DivergenceArgs a;
  a.logits = z.p, a.target = tg.p, a.rows = n, a.vocab = v, a.div = d.p;
  Line line;
  auto refused = [&](rkcuda::DivergenceArgs b, const char* what) {
    line.flag(what, rkcuda::vocab_divergence(b, nullptr).code == rkcuda::kBadArgument);
  };
  rkcuda::DivergenceArgs b = a;
  b.temperature = 0.0f, refused(b, "temperature 0");
  b = a, b.beta = 1.5, refused(b, "beta 1.5");
  b = a, b.kind = 7, refused(b, "kind 7");
  b = a, b.vocab = 0, refused(b, "vocab 0");
  b = a, b.logits = reinterpret_cast<const uint8_t*>(z.p) + 1, refused(b, "misaligned");
  b = a, b.grad = tg.p, refused(b, "grad over target");
  b = a, b.grad = z.p + 1, refused(b, "grad partly over logits");
  b = a, b.dtype = rkcuda::kBF16, b.grad = z.p, refused(b, "grad over bf16 logits");
  b = a, b.div = nullptr, refused(b, "div null");
  b = a, b.rows = 0, b.div = nullptr;
  line.flag("N=0", rkcuda::vocab_divergence(b, nullptr).ok());
  CK(cudaDeviceSynchronize());
  t.add(line.print("vocabDivergence", "bad arguments"));
}

// ---------------------------------------------------------------------------------------------
// policyLoss, klPenalty.

struct PolicyData {
  int64_t B, T;
  std::vector<float> lp, old, adv_row, adv_tok, ref, ent, wmask;
  std::vector<uint8_t> umask;
};
// Extreme log-ratios (beyond the [-20, 20] clamp, far outside the clip range, GSPO's cap), k3's
// series range, an empty row (row 1), rows with zero advantage.
PolicyData make_policy(int64_t B, int64_t T, uint64_t seed) {
  PolicyData d;
  d.B = B, d.T = T;
  const size_t n = static_cast<size_t>(B * T);
  d.lp.resize(n), d.old.resize(n), d.adv_tok.resize(n), d.ref.resize(n), d.ent.resize(n), d.wmask.resize(n), d.umask.resize(n);
  d.adv_row.resize(B);
  for (size_t i = 0; i < n; ++i) {
    d.lp[i] = -std::fabs(normal(seed, i)) * 2.0f - 0.01f;
    float dd = 0.3f * normal(seed + 1, i);
    const double u = unif(seed + 2, i);
    if (u < 0.02) dd = 25.0f;
    else if (u < 0.04) dd = -30.0f;
    else if (u < 0.06) dd = 3.0f;
    if (B > 2 && static_cast<int64_t>(i) / T == 2) dd = 12.0f;  // GSPO: log s above its cap of 10
    d.old[i] = d.lp[i] - dd;
    d.adv_tok[i] = normal(seed + 3, i);
    float kd = 0.4f * normal(seed + 4, i);
    const double w = unif(seed + 5, i);
    if (w < 0.02) kd = 25.0f;
    else if (w < 0.04) kd = -25.0f;
    else if (w < 0.06) kd = 1e-4f * normal(seed + 6, i);
    d.ref[i] = d.lp[i] - kd;
    d.ent[i] = std::fabs(normal(seed + 7, i)) * 3.0f;
    const bool empty_row = B > 1 && static_cast<int64_t>(i) / T == 1;
    d.umask[i] = empty_row ? 0 : (unif(seed + 8, i) < 0.75 ? 1 : 0);
    d.wmask[i] = empty_row ? 0.0f : (unif(seed + 9, i) < 0.2 ? 0.0f : static_cast<float>(2.0 * unif(seed + 10, i)));
  }
  for (int64_t b = 0; b < B; ++b) d.adv_row[b] = b % 5 == 3 ? 0.0f : normal(seed + 11, b);
  return d;
}
const void* mask_of(int kind, const void* u8, const void* f32) { return kind == 1 ? u8 : kind == 2 ? f32 : nullptr; }

// sum_t w_t |L_t| bound (host, double): what a cancelling loss is relative to.
double loss_scale(const PolicyData& d, const rk::PolicyLossInputs& in, const rk::PolicyLossParams& p) {
  const int64_t B = d.B, T = d.T;
  std::vector<double> rm(B, 0.0);
  double tot = 0;
  auto mk = [&](int64_t i) -> double {
    if (in.mask_kind == rk::MaskKind::U8) return d.umask[i] ? 1.0 : 0.0;
    if (in.mask_kind == rk::MaskKind::F32) return d.wmask[i];
    return 1.0;
  };
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) rm[b] += mk(b * T + t);
    tot += rm[b];
  }
  double s = 0;
  for (int64_t b = 0; b < B; ++b) {
    double f;
    const double nz = p.normalizer;
    switch (p.aggregation) {
      case rk::LossAggregation::TokenMean: f = 1.0 / (nz > 0 ? nz : std::max(tot, 1e-300)); break;
      case rk::LossAggregation::SeqMeanTokenMean: f = rm[b] > 0 ? 1.0 / (rm[b] * (nz > 0 ? nz : B)) : 0; break;
      case rk::LossAggregation::SeqMeanTokenSum: f = 1.0 / (nz > 0 ? nz : B); break;
      default: f = 1.0 / (nz > 0 ? nz : double(B) * T);
    }
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = b * T + t;
      if (!(mk(i) > 0)) continue;
      const double A = std::fabs(in.advantages_per_token ? d.adv_tok[i] : d.adv_row[b]);
      const double r = std::exp(std::min(20.0, std::max(-20.0, double(d.lp[i]) - d.old[i])));
      double L = A * (1.0 + r + std::fabs(d.lp[i]) + 4.0 / p.sapo_tau_pos);
      if (in.ref_logprobs) {
        const double kd = std::fabs(double(d.lp[i]) - d.ref[i]);
        L += std::fabs(p.beta) * (kd + 0.5 * kd * kd + 10.0);
      }
      if (in.entropy) L += std::fabs(p.entropy_coef) * d.ent[i];
      s += mk(i) * f * L;
    }
  }
  return s;
}

// Case j walks the option space (codes and counts from the layout): variant j % V, aggregation
// (j / V) % A, mask kind j % 3, KL estimator (3j + j / V) % K, with and without ref log-probs,
// entropy, dual clip, delta, normalizer, per-token advantages.
struct PolicyLoss {
  struct Case {
    int64_t B, T;
    uint64_t seed;
    int j;
    bool garbage;  // NaN inputs under mask = 0
  };
  static constexpr int kV = pl::variant_code::kCount, kA = pl::aggregation_code::kCount, kK = pl::klEstimator_code::kCount;
  static bool with_ref(int j) { return j % 4 != 3; }
  static bool with_ent(int j) { return j % 3 != 1; }
  static rk::PolicyLossParams params(int j) {
    rk::PolicyLossParams p;
    p.variant = static_cast<rk::PolicyVariant>(j % kV);
    p.aggregation = static_cast<rk::LossAggregation>((j / kV) % kA);
    p.epsilon_low = 0.2;
    p.epsilon_high = j % kV == pl::variant_code::cispo ? 1.5 + 0.5 * (j % 3) : 0.28;
    p.dual_clip = j % 2 ? 3.0 : 0.0;
    p.delta = j % 3 == 2 ? 2.5 : 0.0;
    p.normalizer = j % 7 == 4 ? 37.0 : 0.0;
    p.beta = 0.05 + 0.01 * (j % 4);
    p.kl = static_cast<rk::KlEstimator>((j * 3 + j / kV) % kK);
    p.entropy_coef = j % 3 == 1 ? 0.0 : 0.01;
    p.sapo_tau_pos = 1.0 + 0.1 * (j % 2);
    p.sapo_tau_neg = 1.05;
    return p;
  }
  // Host or device pointers of case j.
  template <class P>
  static rk::PolicyLossInputs inputs(const Case& c, const P& x) {
    rk::PolicyLossInputs in;
    in.batch = c.B, in.seq_len = c.T;
    in.advantages_per_token = c.j % 2 == 1;
    in.mask_kind = static_cast<rk::MaskKind>(c.j % kMaskKinds);
    in.logprobs = x.lp, in.old_logprobs = x.old;
    in.advantages = in.advantages_per_token ? x.adv_tok : x.adv_row;
    in.mask = mask_of(c.j % kMaskKinds, x.umask, x.wmask);
    in.ref_logprobs = with_ref(c.j) ? x.ref : nullptr;
    in.entropy = with_ent(c.j) ? x.ent : nullptr;
    in.token_weights = c.j % 5 == 3 ? x.wmask : nullptr;  // options.tokenWeights (the f32 weights as u)
    return in;
  }
  struct Ptrs {
    const float *lp, *old, *adv_row, *adv_tok, *ref, *ent, *wmask;
    const uint8_t* umask;
  };
  std::vector<Case> cases(Ctx& ctx) const {
    struct Shape {
      int64_t B, T;
      int configs;
    };
    const std::vector<Shape> shapes = ctx.quick ? std::vector<Shape>{{1, 1, 5}, {3, 17, 20}, {2, 1100, 10}}
                                                : std::vector<Shape>{{1, 1, 5}, {3, 17, 40}, {5, 1031, 40}, {7, 2500, 40}, {64, 4096, 20}, {300, 33, 20}};
    std::vector<Case> out;
    for (size_t s = 0; s < shapes.size(); ++s)
      for (int j = 0; j < shapes[s].configs; ++j) out.push_back({shapes[s].B, shapes[s].T, 1000 + s, j, false});
    const int64_t gB = ctx.quick ? 3 : 9, gT = ctx.quick ? 40 : 3000;
    for (int j : {1, 4, 7, 10, 13, 2, 5, 8, 11, 14}) out.push_back({gB, gT, 4242, j, true});  // u8 then f32 masks
    return out;
  }
  std::string label(const Case& c) const {
    const rk::PolicyLossParams p = params(c.j);
    return fmt("%s%lldx%lld %s %s %s %s%s%s%s", c.garbage ? "NaN-under-mask " : "", static_cast<long long>(c.B),
               static_cast<long long>(c.T), pl::k_variant_names[c.j % kV], pl::k_aggregation_names[(c.j / kV) % kA],
               kMaskNames[c.j % kMaskKinds], with_ref(c.j) ? pl::k_klEstimator_names[static_cast<int>(p.kl)] : "noref",
               with_ent(c.j) ? " H" : "", p.dual_clip > 0 ? " dual" : "", c.j % 2 ? " tokA" : "");
  }
  PolicyData data(const Case& c) const {
    PolicyData d = make_policy(c.B, c.T, c.seed);
    if (c.garbage)
      for (size_t i = 0; i < d.lp.size(); ++i)
        if (!d.umask[i] && d.wmask[i] == 0.0f) d.lp[i] = d.old[i] = d.ref[i] = d.ent[i] = NAN;
    return d;
  }
  bool det(const Case&) const { return true; }
  Run cpu(const Case& c, const PolicyData& d) const {
    const Ptrs h{d.lp.data(), d.old.data(), d.adv_row.data(), d.adv_tok.data(), d.ref.data(), d.ent.data(), d.wmask.data(), d.umask.data()};
    const rk::PolicyLossInputs in = inputs(c, h);
    const rk::PolicyLossParams p = params(c.j);
    const size_t n = d.lp.size();
    std::vector<float> g(n), ge(n);
    rk::PolicyLossMetrics m;
    const rk::Status st = rk::policy_loss(in, p, g.data(), with_ent(c.j) ? ge.data() : nullptr, &m);
    Run r;
    if (!st.ok()) r.fail = status_text(st);
    r.out.push_back(farr("grad", std::move(g), kRel));
    if (with_ent(c.j)) r.out.push_back(farr("gradH", std::move(ge), kRel));
    r.out.push_back(darr("loss", {m.loss}, abs_tol(1e-5, 1e-5 * (0.1 * loss_scale(d, in, p) + 1e-12))));
    r.out.push_back(darr("metrics", {m.clip_fraction, m.clip_low_fraction, m.clip_high_fraction, m.dual_clip_fraction,
                                     m.approx_kl, m.kl, m.entropy, m.token_count}, abs_tol(1e-5, 1e-7)));
    if (c.garbage) r.out[0].finite = r.out[with_ent(c.j) ? 2 : 1].finite = true;
    return r;
  }
  Run cuda(const Case& c, const PolicyData& d) const {
    Dev<float> lp(d.lp), old(d.old), advr(d.adv_row), advt(d.adv_tok), ref(d.ref), ent(d.ent), wm(d.wmask);
    Dev<uint8_t> um(d.umask);
    const size_t n = d.lp.size();
    Dev<float> g(n), ge(n);
    Dev<double> m(rkcuda::kPolicyMetricCount);
    rkcuda::PolicyLossArgs a;
    a.in = inputs(c, Ptrs{lp.p, old.p, advr.p, advt.p, ref.p, ent.p, wm.p, um.p});
    a.params = params(c.j);
    a.grad_logprobs = g.p;
    a.grad_entropy = with_ent(c.j) ? ge.p : nullptr;
    a.metrics = m.p;
    const rkcuda::Result res = rkcuda::policy_loss(a, nullptr);
    Run r;
    if (!res.ok()) r.fail = result_text(res);
    const std::vector<double> gm = m.down();
    r.out.push_back(farr("grad", g.down(), Tol{}));
    if (with_ent(c.j)) r.out.push_back(farr("gradH", ge.down(), Tol{}));
    r.out.push_back(darr("loss", {gm[0]}, Tol{}));
    r.out.push_back(darr("metrics", std::vector<double>(gm.begin() + 1, gm.begin() + 9), Tol{}));
    return r;
  }
};

// A negative and a NaN mask weight: kBadTarget at the first, NaN outputs; the slot form; klPenalty's
// report; B = 0 (zero metrics); seq_len 0 refused.
void policy_edges(Ctx&, Tally& t) {
  PolicyData d = make_policy(3, 700, 77);
  d.wmask[1500] = -1.0f;
  d.wmask[1900] = NAN;
  Dev<float> lp(d.lp), old(d.old), adv(d.adv_row), wm(d.wmask), g(d.lp.size());
  Dev<double> m(rkcuda::kPolicyMetricCount);
  rkcuda::PolicyLossArgs a;
  a.in.logprobs = lp.p, a.in.old_logprobs = old.p, a.in.advantages = adv.p, a.in.mask = wm.p;
  a.in.mask_kind = rk::MaskKind::F32;
  a.in.batch = 3, a.in.seq_len = 700;
  a.grad_logprobs = g.p;
  a.metrics = m.p;
  Line line;
  rkcuda::Result r = rkcuda::policy_loss(a, nullptr);
  line.flag("sync report", r.code == rkcuda::kBadTarget && r.index == 1500 && std::strcmp(r.where, "mask") == 0);
  const std::vector<float> gg = g.down();
  const std::vector<double> mm = m.down();
  line.flag("NaN outputs", std::isnan(gg[0]) && std::isnan(gg[2099]) && std::isnan(mm[0]));
  Dev<unsigned long long> slot(1);
  rkcuda::bad_row_reset(slot.p, nullptr);
  a.bad_index = slot.p;
  r = rkcuda::policy_loss(a, nullptr);
  const rkcuda::Result rr = rkcuda::bad_row_read(slot.p, nullptr, nullptr);
  line.flag("async slot", r.ok() && rr.code == rkcuda::kBadTarget && rr.index == 1500);
  rkcuda::KlPenaltyArgs k;
  k.logprobs = lp.p, k.ref_logprobs = old.p, k.n = 2100, k.mask = wm.p, k.mask_kind = rk::MaskKind::F32, k.kl = g.p;
  r = rkcuda::kl_penalty(k, nullptr);
  line.flag("klPenalty report", r.code == rkcuda::kBadTarget && r.index == 1500);
  a.bad_index = nullptr;
  a.in.mask_kind = rk::MaskKind::None;
  a.in.batch = 0;  // an empty batch: zero metrics, nothing else touched
  r = rkcuda::policy_loss(a, nullptr);
  bool zeros = r.ok();
  for (double x : m.down()) zeros = zeros && x == 0.0;
  line.flag("B=0", zeros);
  a.in.batch = 3;
  a.in.seq_len = 0;
  line.flag("seq_len 0 refused", rkcuda::policy_loss(a, nullptr).code == rkcuda::kBadArgument);
  CK(cudaDeviceSynchronize());
  t.add(line.print("policyLoss", "bad mask weights / arguments"));
}

struct KlPenalty {
  struct Case {
    int64_t n;
    int est, mask;
  };
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{3001}}) {
      if (ctx.quick && n > 1000) continue;
      for (int est = 0; est < rkl::klPenalty::estimator_code::kCount; ++est)
        for (int mk = 0; mk < kMaskKinds; ++mk) out.push_back({n, est, mk});
    }
    if (!ctx.quick) out.push_back({int64_t{1} << 20, rkl::klPenalty::estimator_code::k3, 2});
    return out;
  }
  std::string label(const Case& c) const {
    return fmt("n=%lld %s %s", static_cast<long long>(c.n), rkl::klPenalty::k_estimator_names[c.est], kMaskNames[c.mask]);
  }
  PolicyData data(const Case& c) const { return make_policy(1, c.n, 50 + c.est + 7 * c.mask); }
  bool det(const Case&) const { return true; }
  Run cpu(const Case& c, const PolicyData& d) const {
    std::vector<float> k(c.n), g(c.n);
    double mean = 0;
    rk::kl_penalty(d.lp.data(), d.ref.data(), c.n, mask_of(c.mask, d.umask.data(), d.wmask.data()),
                   static_cast<rk::MaskKind>(c.mask), static_cast<rk::KlEstimator>(c.est), k.data(), g.data(), &mean);
    Run r;
    const double mtol = 1e-5 * (1e-9 + 0.1 * max_abs(k));
    r.out = {farr("kl", std::move(k), kRel), farr("grad", std::move(g), kRel), darr("mean", {mean}, abs_tol(1e-5, mtol))};
    return r;
  }
  Run cuda(const Case& c, const PolicyData& d) const {
    Dev<float> lp(d.lp), ref(d.ref), wm(d.wmask), kl(c.n), gr(c.n);
    Dev<uint8_t> um(d.umask);
    Dev<double> mean(1);
    rkcuda::KlPenaltyArgs a;
    a.logprobs = lp.p, a.ref_logprobs = ref.p, a.n = c.n;
    a.mask = mask_of(c.mask, um.p, wm.p);
    a.mask_kind = static_cast<rk::MaskKind>(c.mask);
    a.estimator = static_cast<rk::KlEstimator>(c.est);
    a.kl = kl.p, a.grad = gr.p, a.mean = mean.p;
    const rkcuda::Result res = rkcuda::kl_penalty(a, nullptr);
    Run r;
    if (!res.ok()) r.fail = result_text(res);
    r.out = {farr("kl", kl.down(), Tol{}), farr("grad", gr.down(), Tol{}), darr("mean", mean.down(), Tol{})};
    return r;
  }
};

// rolloutCorrection: trainer = lp, rollout = old of make_policy (log-ratios beyond +-20 included).
struct RolloutCorrection {
  struct Case {
    int64_t B, T;
    int j;
  };
  static rk::RolloutCorrectionParams params(int j) {
    rk::RolloutCorrectionParams p;
    p.mode = static_cast<rk::RcMode>(j % rk::kRcModeCount);
    p.clip_max = j % 4 == 1 ? 0.0 : (j % 4 == 2 ? 3.0 : 2.0);
    p.clip_min = j % 3 == 1 ? 0.5 : 0.0;
    p.batch_normalize = j % 2 == 1;
    p.opsm = j % 7 < 3;
    p.opsm_threshold = 0.02 * (j % 5) - 0.03;
    for (int k = 0; k < rk::kRcCriterionCount; ++k) {
      if ((j + k) % 4 != 0) continue;
      const bool k1 = k == 0 || k == 3 || k == 6;
      p.rs_on[k] = true;
      p.rs_lo[k] = k1 ? std::log(0.6) : 0.0;
      p.rs_hi[k] = k1 ? std::log(1.8) : (k < 3 ? 0.05 : 0.5);
    }
    rk::rc_metric_bounds(p);
    return p;
  }
  static bool has_w(int j) { return (j % rk::kRcModeCount) != static_cast<int>(rk::RcMode::None) || params(j).opsm; }
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    const std::vector<std::pair<int64_t, int64_t>> shapes = ctx.quick ? std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 17}, {2, 1100}}
                                                                      : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 17}, {5, 1031}, {300, 33}, {64, 4096}};
    for (const auto& s : shapes)
      for (int j = 0; j < (ctx.quick ? 15 : 30); ++j) out.push_back({s.first, s.second, j});
    return out;
  }
  std::string label(const Case& c) const {
    const rk::RolloutCorrectionParams p = params(c.j);
    return fmt("%lldx%lld %s %s%s%s", static_cast<long long>(c.B), static_cast<long long>(c.T),
               rkl::rolloutCorrection::k_mode_names[c.j % rk::kRcModeCount], kMaskNames[c.j % kMaskKinds],
               p.batch_normalize ? " bn" : "", p.opsm ? " opsm" : "");
  }
  PolicyData data(const Case& c) const { return make_policy(c.B, c.T, 7000 + c.j); }
  bool det(const Case&) const { return true; }
  template <class P>
  static rk::RcArgs args(const Case& c, const float* tr, const float* ro, const float* adv_row, const float* adv_tok,
                         const P& um, const float* wm, float* w, float* km) {
    rk::RcArgs a;
    a.trainer = tr, a.rollout = ro;
    a.adv_per_token = c.j % 2 == 0;
    a.advantages = params(c.j).opsm ? (a.adv_per_token ? adv_tok : adv_row) : nullptr;
    a.mask_kind = static_cast<rk::MaskKind>(c.j % kMaskKinds);
    a.mask = mask_of(c.j % kMaskKinds, um, wm);
    a.weights = has_w(c.j) ? w : nullptr;
    a.mask_out = km;
    a.B = c.B, a.T = c.T;
    return a;
  }
  static void outs(Run& r, std::vector<float> w, std::vector<float> km, const std::vector<double>& sc, bool ref) {
    Tol mt;
    mt.rtol = 1e-7, mt.atol = 1e-13;
    std::vector<double> rest(sc), stdv{sc[rk::kRcIsStd]};
    rest[rk::kRcIsStd] = 0;
    r.out.push_back(farr("weights", std::move(w), ref ? kRel : Tol{}));
    r.out.push_back(farr("mask", std::move(km), ref ? exact_tol() : Tol{}));
    r.out.push_back(darr("metrics", std::move(rest), ref ? mt : Tol{}));
    r.out.push_back(darr("isStd", std::move(stdv), ref ? abs_tol(1e-5, 1e-9) : Tol{}));
  }
  Run cpu(const Case& c, const PolicyData& d) const {
    const size_t n = d.lp.size();
    std::vector<float> w(n, 0.0f), km(n);
    std::vector<double> sc(rk::kRcMetricCount);
    const rk::Status st = rk::rollout_correction(args(c, d.lp.data(), d.old.data(), d.adv_row.data(), d.adv_tok.data(), d.umask.data(), d.wmask.data(), w.data(), km.data()), params(c.j), sc.data());
    Run r;
    if (!st.ok()) r.fail = status_text(st);
    outs(r, std::move(w), std::move(km), sc, true);
    return r;
  }
  Run cuda(const Case& c, const PolicyData& d) const {
    const size_t n = d.lp.size();
    Dev<float> tr(d.lp), ro(d.old), ar(d.adv_row), at(d.adv_tok), wm(d.wmask), w(n), km(n);
    Dev<uint8_t> um(d.umask);
    if (!has_w(c.j)) CK(cudaMemset(w.p, 0, n * sizeof(float)));  // no weights: the CPU's zeros
    std::vector<double> sc(rk::kRcMetricCount);
    const rkcuda::Result res = rkcuda::rollout_correction(args(c, tr.p, ro.p, ar.p, at.p, um.p, wm.p, w.p, km.p), params(c.j), sc.data(), nullptr);
    Run r;
    if (!res.ok()) r.fail = result_text(res);
    outs(r, w.down(), km.down(), sc, false);
    return r;
  }
};

// ---------------------------------------------------------------------------------------------
// preferenceLoss, ktoLoss, tokenWeightedDpoLoss.

struct PrefData {
  int64_t P;
  std::vector<float> w, l, rw, rl, margin, prob;
  std::vector<int32_t> lw, ll;
};
PrefData make_pref(int64_t P, uint64_t seed) {
  PrefData d;
  d.P = P;
  d.w.resize(P), d.l.resize(P), d.rw.resize(P), d.rl.resize(P), d.margin.resize(P), d.prob.resize(P);
  d.lw.resize(P), d.ll.resize(P);
  for (int64_t i = 0; i < P; ++i) {
    d.lw[i] = 1 + static_cast<int32_t>(mix64(seed + i) % 300);
    d.ll[i] = 1 + static_cast<int32_t>(mix64(seed * 7 + i) % 300);
    d.w[i] = -static_cast<float>(d.lw[i]) * (0.3f + 0.2f * std::fabs(normal(seed, i)));
    d.l[i] = -static_cast<float>(d.ll[i]) * (0.3f + 0.2f * std::fabs(normal(seed + 1, i)));
    d.rw[i] = d.w[i] + 4.0f * normal(seed + 2, i);
    d.rl[i] = d.l[i] + 4.0f * normal(seed + 3, i);
    if (i % 97 == 5) d.rw[i] = d.w[i] + 400.0f;  // extreme log-ratios (capped exponents)
    if (i % 89 == 7) d.rl[i] = d.l[i] - 400.0f;
    d.margin[i] = 0.5f * normal(seed + 4, i);
    d.prob[i] = static_cast<float>(unif(seed + 5, i));
  }
  if (P > 3) d.w[3] = -1e-13f;  // orpo: average log-prob at the clamp
  return d;
}

// Every loss (codes and names from the layout) plainly; label smoothing (and sigmoid's NLL term)
// where the loss takes it; every f-divergence where it applies; bt's margin / probability arrays.
struct PreferenceLoss {
  struct Case {
    int64_t P;
    uint64_t seed;
    int loss, fdiv;
    double e, nll;
    bool refs, bt_arrays;
    int mixset = 0;  // 0: the one loss; 1: MPO's sigmoid 0.8 + bco_pair 0.2 + sft 1.0; 2: aot + aot_unpaired + ipo
  };
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    const std::vector<int64_t> sizes = ctx.quick ? std::vector<int64_t>{1, 257} : std::vector<int64_t>{1, 257, 4099, 1 << 20};
    for (size_t s = 0; s < sizes.size(); ++s) {
      const int64_t P = sizes[s];
      const uint64_t seed = 100 + s;
      for (int loss = 0; loss < pf::loss_code::kCount; ++loss) {
        // The CUDA AOT ranks count (O(P^2)): not at a million pairs.
        if ((loss == pf::loss_code::aot || loss == pf::loss_code::aot_unpaired) && P > 65536) continue;
        const bool ref_free = loss >= pf::loss_code::simpo && loss <= pf::loss_code::bt;
        const bool fdiv = loss == pf::loss_code::sigmoid || loss == pf::loss_code::hinge || loss == pf::loss_code::ipo ||
                          loss == pf::loss_code::sigmoid_norm;
        const bool smoothing = loss == pf::loss_code::sigmoid || loss == pf::loss_code::robust || loss == pf::loss_code::exo_pair ||
                               loss == pf::loss_code::simpo || loss == pf::loss_code::cpo || loss == pf::loss_code::bt ||
                               loss == pf::loss_code::aot || loss == pf::loss_code::aot_unpaired;
        out.push_back({P, seed, loss, 0, 0.0, 0.0, !ref_free, false});
        if (smoothing) out.push_back({P, seed, loss, 0, 0.1, loss == pf::loss_code::sigmoid ? 0.5 : 0.0, false, false});
        if (fdiv)
          for (int f = 1; f < pf::fDivergence_code::kCount; ++f) out.push_back({P, seed, loss, f, 0.0, 0.0, true, false});
        if (loss == pf::loss_code::bt) out.push_back({P, seed, loss, 0, 0.0, 0.0, false, true});
      }
      out.push_back({P, seed, 0, 0, 0.0, 0.0, true, false, 1});
      if (P <= 65536) out.push_back({P, seed, 0, 2, 0.1, 0.0, true, false, 2});
    }
    return out;
  }
  std::string label(const Case& c) const {
    const bool fdiv = c.loss == pf::loss_code::sigmoid || c.loss == pf::loss_code::hinge || c.loss == pf::loss_code::ipo ||
                      c.loss == pf::loss_code::sigmoid_norm || c.mixset != 0;
    return fmt("P=%lld %s%s%s e=%.2g nll=%.2g%s", static_cast<long long>(c.P),
               c.mixset == 1 ? "[sigmoid .8, bco_pair .2, sft 1]" : c.mixset == 2 ? "[aot, aot_unpaired .5, ipo .1]" : pf::k_loss_names[c.loss],
               fdiv ? " " : "",
               fdiv ? pf::k_fDivergence_names[c.fdiv] : "", c.e, c.nll, c.bt_arrays ? " arrays" : c.refs ? " refs" : "");
  }
  PrefData data(const Case& c) const { return make_pref(c.P, c.seed); }
  bool det(const Case&) const { return true; }
  static rk::PreferenceParams params(const Case& c) {
    rk::PreferenceParams p;
    p.loss = static_cast<rk::PrefLoss>(c.loss);
    p.beta = c.loss == pf::loss_code::bt ? 1.0 : 0.1;
    p.label_smoothing = c.e;
    p.gamma = 0.5;
    p.alpha = c.loss == pf::loss_code::cpo ? 1.0 : 0.0;
    p.tau = 0.05;
    p.margin = 0.25;
    p.fdiv = static_cast<rk::FDivergence>(c.fdiv);
    p.f_alpha = 0.5;
    p.nll_weight = c.nll;
    if (c.mixset != 0) {
      p.mixed = true;
      if (c.mixset == 1) {
        p.mix[pf::loss_code::sigmoid] = 0.8, p.mix[pf::loss_code::bco_pair] = 0.2, p.mix[pf::loss_code::sft] = 1.0;
      } else {
        p.mix[pf::loss_code::aot] = 1.0, p.mix[pf::loss_code::aot_unpaired] = 0.5, p.mix[pf::loss_code::ipo] = 0.1;
      }
    }
    return p;
  }
  Run cpu(const Case& c, const PrefData& d) const {
    const rk::PreferenceParams p = params(c);
    const bool lens = rk::preference_needs_lengths(p);
    rk::PreferenceInputs hi;
    hi.pairs = c.P;
    hi.chosen = d.w.data(), hi.rejected = d.l.data();
    hi.ref_chosen = c.refs ? d.rw.data() : nullptr, hi.ref_rejected = c.refs ? d.rl.data() : nullptr;
    hi.chosen_len = lens ? d.lw.data() : nullptr, hi.rejected_len = lens ? d.ll.data() : nullptr;
    hi.margin = c.bt_arrays ? d.margin.data() : nullptr, hi.preference_prob = c.bt_arrays ? d.prob.data() : nullptr;
    std::vector<float> L(c.P), rc(c.P), rr(c.P), gc(c.P), gr(c.P);
    rk::PreferenceOutputs ho;
    ho.losses = L.data(), ho.chosen_rewards = rc.data(), ho.rejected_rewards = rr.data(), ho.grad_chosen = gc.data(),
    ho.grad_rejected = gr.data();
    const rk::Status st = rk::preference_loss(hi, p, ho);
    Run r;
    if (!st.ok()) r.fail = status_text(st);
    const Tol ts = abs_tol(1e-5, 1e-5 * (1e-9 + 1e-7 * max_abs(L)));
    r.out = {farr("losses", std::move(L), kRel), farr("rewardsC", std::move(rc), kRel), farr("rewardsR", std::move(rr), kRel),
             farr("gradC", std::move(gc), kRel), farr("gradR", std::move(gr), kRel),
             darr("scalars", {ho.loss, ho.reward_accuracy, ho.reward_margin}, ts)};
    return r;
  }
  Run cuda(const Case& c, const PrefData& d) const {
    const int64_t P = c.P;
    Dev<float> w(d.w), l(d.l), rw(d.rw), rl(d.rl), mg(d.margin), pb(d.prob);
    Dev<int32_t> lw(d.lw), ll(d.ll);
    Dev<float> L(P), rc(P), rr(P), gc(P), gr(P);
    Dev<double> sc(3);
    rkcuda::PreferenceLossArgs a;
    a.in.pairs = P;
    a.in.chosen = w.p, a.in.rejected = l.p;
    a.in.ref_chosen = c.refs ? rw.p : nullptr, a.in.ref_rejected = c.refs ? rl.p : nullptr;
    a.in.chosen_len = lw.p, a.in.rejected_len = ll.p;  // given always: ignored when the loss needs none
    a.in.margin = c.bt_arrays ? mg.p : nullptr, a.in.preference_prob = c.bt_arrays ? pb.p : nullptr;
    a.params = params(c);
    a.losses = L.p, a.chosen_rewards = rc.p, a.rejected_rewards = rr.p, a.grad_chosen = gc.p, a.grad_rejected = gr.p;
    a.scalars = sc.p;
    const rkcuda::Result res = rkcuda::preference_loss(a, nullptr);
    Run r;
    if (!res.ok()) r.fail = result_text(res);
    r.out = {farr("losses", L.down(), Tol{}), farr("rewardsC", rc.down(), Tol{}), farr("rewardsR", rr.down(), Tol{}),
             farr("gradC", gc.down(), Tol{}), farr("gradR", gr.down(), Tol{}), darr("scalars", sc.down(), Tol{})};
    return r;
  }
};

void preference_edges(Ctx&, Tally& t) {
  PrefData d = make_pref(600, 5);
  d.ll[321] = 0;
  d.lw[400] = -2;
  Dev<float> w(d.w), l(d.l), o1(600), o2(600), o3(600), o4(600), o5(600);
  Dev<int32_t> lw(d.lw), ll(d.ll);
  Dev<double> sc(3);
  rkcuda::PreferenceLossArgs a;
  a.in.pairs = 600;
  a.in.chosen = w.p, a.in.rejected = l.p, a.in.chosen_len = lw.p, a.in.rejected_len = ll.p;
  a.params.loss = rk::PrefLoss::Simpo;
  a.losses = o1.p, a.chosen_rewards = o2.p, a.rejected_rewards = o3.p, a.grad_chosen = o4.p, a.grad_rejected = o5.p;
  a.scalars = sc.p;
  Line line;
  const rkcuda::Result r = rkcuda::preference_loss(a, nullptr);
  line.flag("report", r.code == rkcuda::kBadTarget && r.index == 321 && r.value == 0 && std::strcmp(r.where, "rejected_len") == 0);
  line.flag("NaN outputs", std::isnan(o1.down()[0]) && std::isnan(sc.down()[0]));
  a.in.chosen_len = nullptr;
  line.flag("missing lengths refused", rkcuda::preference_loss(a, nullptr).code == rkcuda::kBadArgument);
  CK(cudaDeviceSynchronize());
  t.add(line.print("preferenceLoss", "bad lengths / arguments"));
}

// ldDpoLogps: LD-DPO sequence log-probs, with and without masks and weights.
struct LdDpoLogps {
  struct Case {
    int64_t P, T;
    double alpha;
    bool masks, weights;
  };
  struct Data {
    std::vector<float> w, l;
    std::vector<uint8_t> mw, ml;
  };
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    const std::vector<std::pair<int64_t, int64_t>> sizes = {{1, 1}, {3, 37}, {257, 129}, {1000, 1000}};
    for (const auto& st : sizes)
      if (!ctx.quick || st.first * st.second <= 40000)
        for (double alpha : {0.0, 0.35, 1.0})
          for (bool masks : {false, true}) out.push_back({st.first, st.second, alpha, masks, masks});
    return out;
  }
  std::string label(const Case& c) const {
    return fmt("P=%lld T=%lld alpha=%.2g%s", static_cast<long long>(c.P), static_cast<long long>(c.T), c.alpha,
               c.masks ? " masks weights" : "");
  }
  Data data(const Case& c) const {
    const uint64_t seed = 31 + c.P * 7 + c.T;
    const int64_t n = c.P * c.T;
    Data d;
    d.w.resize(n), d.l.resize(n), d.mw.resize(n), d.ml.resize(n);
    for (int64_t b = 0; b < c.P; ++b) {
      const int64_t lw = static_cast<int64_t>(mix64(seed + b) % (c.T + 1)), ll = static_cast<int64_t>(mix64(seed * 3 + b) % (c.T + 1));
      for (int64_t t = 0; t < c.T; ++t) {
        const int64_t i = b * c.T + t;
        d.mw[i] = t < lw ? 1 : 0;
        d.ml[i] = t < ll ? 1 : 0;
        d.w[i] = d.mw[i] ? -2.0f * static_cast<float>(unif(seed + 1, i)) : -INFINITY;  // padding: never read
        d.l[i] = d.ml[i] ? -2.0f * static_cast<float>(unif(seed + 2, i)) : -INFINITY;
        if (!c.masks) d.w[i] = -1.0f - static_cast<float>(unif(seed + 3, i)), d.l[i] = -static_cast<float>(unif(seed + 4, i));
      }
    }
    return d;
  }
  bool det(const Case&) const { return true; }
  Run cpu(const Case& c, const Data& d) const {
    const int64_t n = c.P * c.T;
    std::vector<float> A(c.P), B(c.P), WA(c.weights ? n : 0), WB(c.weights ? n : 0);
    rk::LdInputs in;
    in.batch = c.P, in.seq_len = c.T, in.chosen = d.w.data(), in.rejected = d.l.data();
    in.chosen_mask = c.masks ? d.mw.data() : nullptr, in.rejected_mask = c.masks ? d.ml.data() : nullptr;
    rk::LdOutputs out;
    out.chosen = A.data(), out.rejected = B.data();
    out.chosen_weights = c.weights ? WA.data() : nullptr, out.rejected_weights = c.weights ? WB.data() : nullptr;
    const rk::Status st = rk::ld_dpo_logps(in, c.alpha, out);
    Run r;
    if (!st.ok()) r.fail = status_text(st);
    r.out = {farr("chosen", std::move(A), kRel), farr("rejected", std::move(B), kRel)};
    if (c.weights) r.out.push_back(farr("wChosen", std::move(WA), kRel)), r.out.push_back(farr("wRejected", std::move(WB), kRel));
    return r;
  }
  Run cuda(const Case& c, const Data& d) const {
    const int64_t n = c.P * c.T;
    Dev<float> w(d.w), l(d.l), A(c.P), B(c.P), WA(c.weights ? n : 1), WB(c.weights ? n : 1);
    Dev<uint8_t> mw(d.mw), ml(d.ml);
    rkcuda::LdDpoArgs a;
    a.in.batch = c.P, a.in.seq_len = c.T, a.in.chosen = w.p, a.in.rejected = l.p;
    a.in.chosen_mask = c.masks ? mw.p : nullptr, a.in.rejected_mask = c.masks ? ml.p : nullptr;
    a.alpha = c.alpha;
    a.out.chosen = A.p, a.out.rejected = B.p;
    a.out.chosen_weights = c.weights ? WA.p : nullptr, a.out.rejected_weights = c.weights ? WB.p : nullptr;
    const rkcuda::Result res = rkcuda::ld_dpo_logps(a, nullptr);
    Run r;
    if (!res.ok()) r.fail = result_text(res);
    r.out = {farr("chosen", A.down(), Tol{}), farr("rejected", B.down(), Tol{})};
    if (c.weights) r.out.push_back(farr("wChosen", WA.down(), Tol{})), r.out.push_back(farr("wRejected", WB.down(), Tol{}));
    return r;
  }
};

struct KtoLoss {
  struct Case {
    int64_t n;
    bool ref;
  };
  struct Data {
    std::vector<float> lp, rf;
    std::vector<uint8_t> des;
  };
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{1000}, int64_t{5001}})
      if (!ctx.quick || n <= 1000)
        for (bool ref : {false, true}) out.push_back({n, ref});
    return out;
  }
  std::string label(const Case& c) const { return fmt("n=%lld%s", static_cast<long long>(c.n), c.ref ? " ref" : ""); }
  Data data(const Case& c) const {
    const uint64_t seed = 7 + c.n;
    Data d;
    d.lp.resize(c.n), d.rf.resize(c.n), d.des.resize(c.n);
    for (int64_t i = 0; i < c.n; ++i) {
      d.lp[i] = -30.0f + 5.0f * normal(seed, i);
      d.rf[i] = d.lp[i] + 3.0f * normal(seed + 1, i);
      d.des[i] = c.n > 3 ? (unif(seed + 2, i) < 0.6 ? 1 : 0) : 1;  // tiny: no undesirable example (NaN mean)
    }
    return d;
  }
  bool det(const Case&) const { return true; }
  static rk::KtoParams params() {
    rk::KtoParams p;
    p.beta = 0.2, p.kl = 0.3, p.desirable_weight = 1.0, p.undesirable_weight = 1.33;
    return p;
  }
  Run cpu(const Case& c, const Data& d) const {
    std::vector<float> L(c.n), R(c.n), G(c.n);
    rk::KtoOutputs ho;
    ho.losses = L.data(), ho.rewards = R.data(), ho.grad = G.data();
    const rk::Status st = rk::kto_loss(c.n, d.lp.data(), c.ref ? d.rf.data() : nullptr, d.des.data(), params(), ho);
    Run r;
    if (!st.ok()) r.fail = status_text(st);
    r.out = {farr("losses", std::move(L), kRel), farr("rewards", std::move(R), kRel), farr("grad", std::move(G), kRel),
             darr("scalars", {ho.loss, ho.desirable_reward_mean, ho.undesirable_reward_mean}, abs_tol(1e-5, 1e-14))};
    return r;
  }
  Run cuda(const Case& c, const Data& d) const {
    Dev<float> lp(d.lp), rf(d.rf), L(c.n), R(c.n), G(c.n);
    Dev<uint8_t> des(d.des);
    Dev<double> sc(3);
    rkcuda::KtoLossArgs a;
    a.n = c.n, a.logp = lp.p, a.ref = c.ref ? rf.p : nullptr, a.desirable = des.p, a.params = params();
    a.losses = L.p, a.rewards = R.p, a.grad = G.p, a.scalars = sc.p;
    const rkcuda::Result res = rkcuda::kto_loss(a, nullptr);
    Run r;
    if (!res.ok()) r.fail = result_text(res);
    r.out = {farr("losses", L.down(), Tol{}), farr("rewards", R.down(), Tol{}), farr("grad", G.down(), Tol{}),
             darr("scalars", sc.down(), Tol{})};
    return r;
  }
};

// preferenceStrengthLoss (Secrets of RLHF II): P pairs scored by M ensemble models, every option pair.
struct PreferenceStrengthLoss {
  struct Case {
    int64_t P, M;
    int variant;  // 0 defaults, 1 smoothing + population std, 2 no margin no flip
  };
  struct Data {
    std::vector<float> rc, rr, ec, er;
  };
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    for (int64_t P : {int64_t{1}, int64_t{7}, int64_t{1000}, int64_t{5001}})
      if (!ctx.quick || P <= 1000)
        for (int64_t M : {int64_t{1}, int64_t{10}})
          for (int v = 0; v < 3; ++v) out.push_back({P, M, v});
    return out;
  }
  std::string label(const Case& c) const {
    return fmt("P=%lld M=%lld v%d", static_cast<long long>(c.P), static_cast<long long>(c.M), c.variant);
  }
  Data data(const Case& c) const {
    const uint64_t seed = 31 + c.P + 7 * c.M;
    Data d;
    d.rc.resize(c.P), d.rr.resize(c.P), d.ec.resize(c.P * c.M), d.er.resize(c.P * c.M);
    for (int64_t i = 0; i < c.P; ++i) d.rc[i] = 2.0f * normal(seed, i), d.rr[i] = 2.0f * normal(seed + 1, i);
    for (int64_t k = 0; k < c.P * c.M; ++k) d.ec[k] = normal(seed + 2, k % c.P) + 0.5f * normal(seed + 3, k), d.er[k] = 0.3f * normal(seed + 4, k);
    return d;
  }
  bool det(const Case&) const { return true; }
  static rk::StrengthParams params(const Case& c) {
    rk::StrengthParams p;
    if (c.variant == 1) p.label_smoothing = 0.1, p.correction = 0;
    if (c.variant == 2) p.adaptive_margin = false, p.flip = false;
    return p;
  }
  Run cpu(const Case& c, const Data& d) const {
    std::vector<float> L(c.P), GC(c.P), GR(c.P), MU(c.P), SD(c.P);
    rk::StrengthInputs in{d.rc.data(), d.rr.data(), d.ec.data(), d.er.data(), c.P, c.M};
    rk::StrengthOutputs o{L.data(), GC.data(), GR.data(), MU.data(), SD.data()};
    double sc[2] = {0, 0};
    rk::preference_strength_loss(in, params(c), o, sc);
    Run r;
    r.out = {farr("losses", std::move(L), kRel), farr("gradChosen", std::move(GC), kRel), farr("gradRejected", std::move(GR), kRel),
             farr("mean", std::move(MU), abs_tol(1e-5, 1e-6)), farr("std", std::move(SD), abs_tol(1e-5, 1e-6)),
             darr("scalars", {sc[0], sc[1]}, abs_tol(1e-5, 1e-14))};
    return r;
  }
  Run cuda(const Case& c, const Data& d) const {
    Dev<float> rc(d.rc), rr(d.rr), ec(d.ec), er(d.er), L(c.P), GC(c.P), GR(c.P), MU(c.P), SD(c.P);
    Dev<double> sc(2);
    rkcuda::StrengthArgs a;
    a.in = rk::StrengthInputs{rc.p, rr.p, ec.p, er.p, c.P, c.M};
    a.params = params(c);
    a.out = rk::StrengthOutputs{L.p, GC.p, GR.p, MU.p, SD.p};
    a.scalars = sc.p;
    const rkcuda::Result res = rkcuda::preference_strength_loss(a, nullptr);
    Run r;
    if (!res.ok()) r.fail = result_text(res);
    r.out = {farr("losses", L.down(), Tol{}), farr("gradChosen", GC.down(), Tol{}), farr("gradRejected", GR.down(), Tol{}),
             farr("mean", MU.down(), Tol{}), farr("std", SD.down(), Tol{}), darr("scalars", sc.down(), Tol{})};
    return r;
  }
};

// p3oLoss (Pairwise PPO): B pairs of T tokens, both clips, masks on both, one or neither response;
// and the 'trlx' surrogate (the authors' code): joint and token clip, with and without scaleByStd.
struct P3oLoss {
  struct Case {
    int64_t B, T;
    bool joint;
    int masks;  // 0 none, 1 the first response's only, 2 both
    int trlx;   // 0 the ratio surrogate; 1 trlx joint, 2 trlx joint + scaleByStd, pair mean; 3 trlx token, 4 trlx token + scaleByStd
  };
  struct Data {
    std::vector<float> l1, l2, o1, o2, r1, r2, f1, f2;
    std::vector<uint8_t> m1, m2;
  };
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    for (auto bt : {std::pair<int64_t, int64_t>{1, 1}, {7, 13}, {300, 37}, {2001, 129}})
      if (!ctx.quick || bt.first <= 300)
        for (int m = 0; m < 3; ++m) {
          for (bool joint : {false, true}) out.push_back({bt.first, bt.second, joint, m, 0});
          for (int trlx = 1; trlx <= 4; ++trlx)
            if (bt.first >= 2 || trlx % 2 == 1) out.push_back({bt.first, bt.second, trlx <= 2, m, trlx});
        }
    return out;
  }
  std::string label(const Case& c) const {
    static const char* kTrlx[] = {"", " trlx", " trlx scaleByStd pair-mean", " trlx", " trlx scaleByStd"};
    return fmt("B=%lld T=%lld %s masks=%d%s", static_cast<long long>(c.B), static_cast<long long>(c.T),
               c.trlx >= 3 ? "token" : c.joint ? "joint" : "separate", c.masks, kTrlx[c.trlx]);
  }
  Data data(const Case& c) const {
    const uint64_t seed = 57 + c.B + 3 * c.T;
    const int64_t n = c.B * c.T;
    const float sd = 0.4f / std::sqrt(static_cast<float>(c.T));
    Data d;
    d.l1.resize(n), d.l2.resize(n), d.o1.resize(n), d.o2.resize(n), d.r1.resize(c.B), d.r2.resize(c.B);
    for (int64_t k = 0; k < n; ++k) {
      d.o1[k] = normal(seed, k) - 2.0f, d.o2[k] = normal(seed + 1, k) - 2.0f;
      d.l1[k] = d.o1[k] + sd * normal(seed + 2, k), d.l2[k] = d.o2[k] + sd * normal(seed + 3, k);
    }
    for (int64_t i = 0; i < c.B; ++i) d.r1[i] = normal(seed + 4, i), d.r2[i] = normal(seed + 5, i);
    if (c.trlx) {
      d.f1.resize(n), d.f2.resize(n);
      for (int64_t k = 0; k < n; ++k) d.f1[k] = d.o1[k] + 2 * sd * normal(seed + 8, k), d.f2[k] = d.o2[k] + 2 * sd * normal(seed + 9, k);
    }
    if (c.masks >= 1) {
      d.m1.resize(n);
      for (int64_t k = 0; k < n; ++k) d.m1[k] = normal(seed + 6, k) > -0.6f ? 1 : 0;
    }
    if (c.masks == 2) {
      d.m2.resize(n);
      for (int64_t k = 0; k < n; ++k) d.m2[k] = normal(seed + 7, k) > -0.6f ? 1 : 0;
    }
    return d;
  }
  bool det(const Case&) const { return true; }
  static rk::P3oParams params(const Case& c) {
    rk::P3oParams p;
    p.T = c.T;
    p.joint = c.joint;
    p.epsilon = 0.2;
    p.trlx = c.trlx != 0;
    p.tokenwise = c.trlx >= 3;
    p.beta = 0.1;
    p.weightClip = 1.3;
    p.scaleByStd = c.trlx == 2 || c.trlx == 4;
    p.normalizeByTokens = c.trlx != 2;
    return p;
  }
  Run cpu(const Case& c, const Data& d) const {
    const int64_t n = c.B * c.T;
    std::vector<float> G1(n), G2(n);
    rk::P3oInputs in{d.l1.data(), d.l2.data(), d.o1.data(), d.o2.data(), d.r1.data(), d.r2.data(),
                     d.m1.empty() ? nullptr : d.m1.data(), d.m2.empty() ? nullptr : d.m2.data(), c.B,
                     c.trlx ? d.f1.data() : nullptr, c.trlx ? d.f2.data() : nullptr};
    rk::P3oOutputs o{G1.data(), G2.data()};
    double sc[2] = {0, 0};
    rk::p3o_loss(in, params(c), o, sc);
    Run r;
    r.out = {farr("gradLogprobs1", std::move(G1), kRel), farr("gradLogprobs2", std::move(G2), kRel),
             darr("scalars", {sc[0], sc[1]}, abs_tol(1e-5, 1e-14))};
    return r;
  }
  Run cuda(const Case& c, const Data& d) const {
    const int64_t n = c.B * c.T;
    Dev<float> l1(d.l1), l2(d.l2), o1(d.o1), o2(d.o2), r1(d.r1), r2(d.r2), G1(n), G2(n);
    Dev<float> f1(c.trlx ? d.f1 : std::vector<float>(1)), f2(c.trlx ? d.f2 : std::vector<float>(1));
    Dev<uint8_t> m1(d.m1.empty() ? std::vector<uint8_t>(1) : d.m1), m2(d.m2.empty() ? std::vector<uint8_t>(1) : d.m2);
    Dev<double> sc(2);
    rkcuda::P3oArgs a;
    a.in = rk::P3oInputs{l1.p, l2.p, o1.p, o2.p, r1.p, r2.p, d.m1.empty() ? nullptr : m1.p, d.m2.empty() ? nullptr : m2.p, c.B,
                         c.trlx ? f1.p : nullptr, c.trlx ? f2.p : nullptr};
    a.params = params(c);
    a.out = rk::P3oOutputs{G1.p, G2.p};
    a.scalars = sc.p;
    const rkcuda::Result res = rkcuda::p3o_loss(a, nullptr);
    Run r;
    if (!res.ok()) r.fail = result_text(res);
    r.out = {farr("gradLogprobs1", G1.down(), Tol{}), farr("gradLogprobs2", G2.down(), Tol{}), darr("scalars", sc.down(), Tol{})};
    return r;
  }
};

struct TokenWeightedDpoLoss {
  struct Case {
    int64_t B, T;
    bool f32;
  };
  struct Data {
    std::vector<float> w, l, rw, rl, tw, tl, fmw, fml;
    std::vector<uint8_t> umw, uml;
  };
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    const int64_t shapes[][2] = {{1, 1}, {3, 17}, {5, 300}, {64, 2049}};
    for (const auto& s : shapes)
      if (!ctx.quick || s[0] * s[1] <= 2000)
        for (bool f32 : {false, true}) out.push_back({s[0], s[1], f32});
    return out;
  }
  std::string label(const Case& c) const {
    return fmt("%lldx%lld %s masks", static_cast<long long>(c.B), static_cast<long long>(c.T), c.f32 ? "f32" : "u8");
  }
  Data data(const Case& c) const {
    const uint64_t seed = 31 + c.T;
    const size_t n = static_cast<size_t>(c.B * c.T);
    Data d;
    for (auto* v : {&d.w, &d.l, &d.rw, &d.rl, &d.tw, &d.tl, &d.fmw, &d.fml}) v->resize(n);
    d.umw.resize(n), d.uml.resize(n);
    for (size_t i = 0; i < n; ++i) {
      d.w[i] = -std::fabs(normal(seed, i)) * 2;
      d.l[i] = -std::fabs(normal(seed + 1, i)) * 2;
      d.rw[i] = d.w[i] + 0.3f * normal(seed + 2, i);
      d.rl[i] = d.l[i] + 0.3f * normal(seed + 3, i);
      d.tw[i] = normal(seed + 4, i);
      d.tl[i] = normal(seed + 5, i);
      const int64_t row = static_cast<int64_t>(i) / c.T;
      d.umw[i] = row == 1 ? 0 : (unif(seed + 6, i) < 0.8);
      d.uml[i] = unif(seed + 7, i) < 0.7;
      d.fmw[i] = d.umw[i] ? static_cast<float>(unif(seed + 8, i) * 2) : 0.0f;
      d.fml[i] = d.uml[i] ? static_cast<float>(unif(seed + 9, i) * 2) : 0.0f;
    }
    return d;
  }
  bool det(const Case&) const { return true; }
  static constexpr double kBeta = 0.1, kAlpha = 0.5;
  Run cpu(const Case& c, const Data& d) const {
    rk::TgdpoInputs hi;
    hi.batch = c.B, hi.seq_len = c.T;
    hi.chosen = d.w.data(), hi.rejected = d.l.data(), hi.ref_chosen = d.rw.data(), hi.ref_rejected = d.rl.data();
    hi.chosen_token_rewards = d.tw.data(), hi.rejected_token_rewards = d.tl.data();
    hi.chosen_mask = c.f32 ? static_cast<const void*>(d.fmw.data()) : d.umw.data();
    hi.rejected_mask = c.f32 ? static_cast<const void*>(d.fml.data()) : d.uml.data();
    hi.mask_is_f32 = c.f32;
    const size_t n = d.w.size();
    std::vector<float> L(c.B), cr(c.B), rr(c.B), gc(n), gr(n);
    rk::TgdpoOutputs ho;
    ho.losses = L.data(), ho.chosen_rewards = cr.data(), ho.rejected_rewards = rr.data(), ho.grad_chosen = gc.data(),
    ho.grad_rejected = gr.data();
    const rk::Status st = rk::token_weighted_dpo_loss(hi, kBeta, kAlpha, ho);
    Run r;
    if (!st.ok()) r.fail = status_text(st);
    const Tol ts = abs_tol(1e-5, 1e-5 * (1e-9 + 1e-7 * max_abs(cr)));
    r.out = {farr("losses", std::move(L), kRel), farr("rewardsC", std::move(cr), kRel), farr("rewardsR", std::move(rr), kRel),
             farr("gradC", std::move(gc), kRel), farr("gradR", std::move(gr), kRel),
             darr("scalars", {ho.loss, ho.reward_accuracy, ho.reward_margin}, ts)};
    return r;
  }
  Run cuda(const Case& c, const Data& d) const {
    const size_t n = d.w.size();
    Dev<float> w(d.w), l(d.l), rw(d.rw), rl(d.rl), tw(d.tw), tl(d.tl), fw(d.fmw), fl(d.fml);
    Dev<float> L(c.B), cr(c.B), rr(c.B), gc(n), gr(n);
    Dev<uint8_t> uw(d.umw), ul(d.uml);
    Dev<double> sc(3);
    rkcuda::TgdpoArgs a;
    a.in.batch = c.B, a.in.seq_len = c.T, a.in.mask_is_f32 = c.f32;
    a.in.chosen = w.p, a.in.rejected = l.p, a.in.ref_chosen = rw.p, a.in.ref_rejected = rl.p;
    a.in.chosen_token_rewards = tw.p, a.in.rejected_token_rewards = tl.p;
    a.in.chosen_mask = c.f32 ? static_cast<const void*>(fw.p) : uw.p;
    a.in.rejected_mask = c.f32 ? static_cast<const void*>(fl.p) : ul.p;
    a.beta = kBeta, a.alpha = kAlpha;
    a.losses = L.p, a.chosen_rewards = cr.p, a.rejected_rewards = rr.p, a.grad_chosen = gc.p, a.grad_rejected = gr.p;
    a.scalars = sc.p;
    const rkcuda::Result res = rkcuda::token_weighted_dpo_loss(a, nullptr);
    Run r;
    if (!res.ok()) r.fail = result_text(res);
    r.out = {farr("losses", L.down(), Tol{}), farr("rewardsC", cr.down(), Tol{}), farr("rewardsR", rr.down(), Tol{}),
             farr("gradC", gc.down(), Tol{}), farr("gradR", gr.down(), Tol{}), darr("scalars", sc.down(), Tol{})};
    return r;
  }
};

// ---------------------------------------------------------------------------------------------
// groupAdvantages, ensembleRewards, gae, discountedReturns, maskedWhiten.

struct GroupAdvantages {
  struct Case {
    int64_t n, gs;
    bool ids;  // false: contiguous groups of gs; true: shuffled ids, sizes 1..2gs, one id unused
    int64_t K;
    int est, scale;
    bool gdpo, weights, lens;
    uint64_t seed;
  };
  struct Data {
    std::vector<float> r;
    std::vector<int32_t> gid, len;
    std::vector<double> wts;
    int64_t G = 0;
  };
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    const std::vector<int64_t> sizes = ctx.quick ? std::vector<int64_t>{1, 7, 96} : std::vector<int64_t>{1, 7, 96, 4001, 1 << 20};
    int c = 0;
    for (size_t s = 0; s < sizes.size(); ++s) {
      const int64_t n = sizes[s];
      const int64_t gs = n == 1 ? 1 : n == 7 ? 7 : n == 96 ? 8 : n == 4001 ? 1 : 16;  // 4001: groups of one
      for (int est = 0; est < ga::estimator_code::kCount; ++est) {
        const bool scaled = est == ga::estimator_code::grpo || est == ga::estimator_code::passk;
        for (int scale = 0; scale < (scaled ? int(ga::scale_code::kCount) : 1); ++scale)
          for (int ids = 0; ids < 2; ++ids) {
            ++c;
            out.push_back({n, gs, ids == 1, 1, est, scale, false, false, est == ga::estimator_code::reinforce_pp_baseline && ids == 1, uint64_t(200 + c)});
            if (c % 2 == 0 || est == ga::estimator_code::bnpo)
              out.push_back({n, gs, ids == 1, 3, est, scale, false, c % 4 == 0, false, uint64_t(300 + c)});
          }
      }
      for (int ids = 0; ids < 2; ++ids) {
        out.push_back({n, gs, ids == 1, 1, 0, 0, true, false, false, 400 + s});
        out.push_back({n, gs, ids == 1, 3, 0, 0, true, true, false, 500 + s});
      }
    }
    if (ctx.quick) {  // batch statistics over several chunks (kSumChunk = 2048) even in the quick run
      out.push_back({4100, 4, false, 1, 0, 1, false, false, false, 600});
      out.push_back({4100, 4, true, 1, 4, 1, false, false, false, 601});
      out.push_back({4100, 4, true, 1, 2, 0, false, false, true, 602});
      out.push_back({4100, 4, false, 3, 5, 0, false, true, false, 603});
      out.push_back({4100, 4, true, 3, 0, 0, true, true, false, 604});
    }
    return out;
  }
  static bool with_lengths(const Case& c) { return c.lens || c.est == ga::estimator_code::opo; }
  // singletonBaseline 'self' (TRL) on every third case where it applies
  static bool solo(const Case& c) { return c.seed % 3 == 0 && !c.gdpo && c.est != ga::estimator_code::passk; }
  std::string label(const Case& c) const {
    const bool scaled = !c.gdpo && (c.est == ga::estimator_code::grpo || c.est == ga::estimator_code::passk);
    return fmt("n=%lld %s K=%lld %s%s%s%s%s%s", static_cast<long long>(c.n), c.ids ? "ids" : "gs", static_cast<long long>(c.K),
               c.gdpo ? ga::k_multiReward_names[ga::multiReward_code::normalize_then_sum] : ga::k_estimator_names[c.est],
               scaled ? " " : "", scaled ? ga::k_scale_names[c.scale] : "",
               c.weights ? " w" : "", with_lengths(c) ? " len" : "", solo(c) ? " self" : "");
  }
  Data data(const Case& c) const {
    Data d;
    const bool bnpo = c.est == ga::estimator_code::bnpo && !c.gdpo;
    const int64_t n = c.n, K = c.K;
    d.r.resize(n * K);
    for (int64_t i = 0; i < n * K; ++i) {
      const double u = unif(c.seed, i);
      if (bnpo) d.r[i] = u < 0.45 ? 0.0f : u < 0.9 ? 1.0f : static_cast<float>(unif(c.seed + 1, i));
      else d.r[i] = u < 0.3 ? std::round(2.0f * normal(c.seed + 1, i)) : normal(c.seed + 1, i) * 3.0f;
      if (unif(c.seed + 2, i) < 0.08) d.r[i] = NAN;  // missing
    }
    if (bnpo && K > 1)
      for (float& x : d.r) x = std::isnan(x) ? x : x / static_cast<float>(K);
    d.gid.resize(n), d.len.resize(n);
    d.G = c.gs > 0 ? n / c.gs : 0;
    if (c.ids) {
      int64_t i = 0, g = 0;
      while (i < n) {
        const int64_t s = 1 + static_cast<int64_t>(mix64(c.seed + 3 + g) % (2 * c.gs));
        for (int64_t k = 0; k < s && i < n; ++k) d.gid[i++] = static_cast<int32_t>(g == 2 ? g + 1 : g);
        g += g == 2 ? 2 : 1;
      }
      d.G = g;
      for (int64_t k = n - 1; k > 0; --k) std::swap(d.gid[k], d.gid[mix64(c.seed + 99 + k) % (k + 1)]);
    }
    for (int64_t i = 0; i < n; ++i) d.len[i] = static_cast<int32_t>(mix64(c.seed + 5 + i) % 200);
    d.wts.resize(K);
    for (int64_t k = 0; k < K; ++k) d.wts[k] = 0.5 + 0.25 * k;
    return d;
  }
  bool det(const Case&) const { return true; }
  static rk::GroupAdvantagesArgs args(const Case& c, const Data& d, const float* r, const double* w, const int32_t* gid,
                                      const int32_t* len) {
    rk::GroupAdvantagesArgs a;
    a.rewards = r, a.n = c.n, a.num_rewards = c.K, a.reward_weights = c.weights ? w : nullptr;
    a.group_size = c.ids ? 0 : c.gs, a.group_ids = c.ids ? gid : nullptr, a.num_groups = c.ids ? d.G : 0;
    a.estimator = static_cast<rk::AdvEstimator>(c.est), a.scale = static_cast<rk::AdvScale>(c.scale);
    a.multi = c.gdpo ? rk::MultiReward::NormalizeThenSum : rk::MultiReward::SumThenNormalize;
    a.eps = 1e-4, a.lengths = with_lengths(c) ? len : nullptr, a.reward_min = 0.0, a.reward_max = 1.0;
    a.solo_self = solo(c), a.f_norm = c.est == ga::estimator_code::gpg ? 0.7 : 1.0;
    return a;
  }
  static int64_t gw(const Case& c, const Data& d) { return c.gdpo ? d.G * c.K : d.G; }
  Run cpu(const Case& c, const Data& d) const {
    std::vector<float> adv(c.n), gm(gw(c, d)), gsd(gw(c, d));
    int64_t zero = -5;
    const rk::Status st = rk::group_advantages(args(c, d, d.r.data(), d.wts.data(), d.gid.data(), d.len.data()), adv.data(),
                                               gm.data(), gsd.data(), &zero);
    Run r;
    if (!st.ok()) r.fail = status_text(st);
    r.out = {farr("adv", std::move(adv), kRel), farr("mean", std::move(gm), kRel), farr("std", std::move(gsd), kRel),
             darr("zero", {static_cast<double>(zero)}, exact_tol())};
    return r;
  }
  Run cuda(const Case& c, const Data& d) const {
    Dev<float> dr(d.r), oa(c.n), om(gw(c, d)), os(gw(c, d));
    Dev<int32_t> dg(d.gid), dl(d.len);
    Dev<double> dw(d.wts);
    Dev<long long> oz(1);
    rkcuda::GroupAdvantagesDeviceArgs a;
    a.a = args(c, d, dr.p, dw.p, dg.p, dl.p);
    a.advantages = oa.p, a.group_mean = om.p, a.group_std = os.p, a.zero_std_groups = oz.p;
    const rkcuda::Result res = rkcuda::group_advantages(a, nullptr);
    Run r;
    if (!res.ok()) r.fail = result_text(res);
    r.out = {farr("adv", oa.down(), Tol{}), farr("mean", om.down(), Tol{}), farr("std", os.down(), Tol{}),
             darr("zero", {static_cast<double>(oz.down()[0])}, Tol{})};
    return r;
  }
};

// Bad group ids, lengths, bnpo's range, bad whitening weights: reported with the element.
void advantages_edges(Ctx&, Tally& t) {
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
  d.a.rewards = dr.p, d.a.n = n, d.a.group_ids = dg.p, d.a.num_groups = 7, d.a.lengths = dl.p;
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
  dr.up(std::vector<float>(n, 2.0f));  // bnpo: scaled rewards outside [0, 1]
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
  t.add(line.print("groupAdvantages", "bad ids / lengths / bnpo / whiten weights"));
}

// The token-level ops: values, rewards (sparse), u8 masks with an empty row and ragged tails, f32
// weights under them, ensemble rewards (B*T, 3) with NaN entries and a NaN row.
struct TokData {
  int64_t B, T;
  std::vector<float> v, rw, fm, ens;
  std::vector<uint8_t> um;
};
TokData make_tok(int64_t B, int64_t T, uint64_t seed) {
  TokData d;
  d.B = B, d.T = T;
  const size_t n = static_cast<size_t>(B * T);
  d.v.resize(n), d.rw.resize(n), d.fm.resize(n), d.ens.resize(n * 3), d.um.resize(n);
  for (size_t i = 0; i < n; ++i) {
    d.v[i] = normal(seed, i);
    d.rw[i] = unif(seed + 1, i) < 0.1 ? 1.0f : 0.1f * normal(seed + 2, i);
    const int64_t row = static_cast<int64_t>(i) / T, t = static_cast<int64_t>(i) % T;
    d.um[i] = row == 1 ? 0 : (t < T - static_cast<int64_t>(mix64(seed + row) % (T / 3 + 1))) && unif(seed + 3, i) > 0.05;
    d.fm[i] = d.um[i] ? static_cast<float>(0.5 + unif(seed + 4, i)) : 0.0f;
  }
  for (size_t i = 0; i < n * 3; ++i) d.ens[i] = unif(seed + 5, i) < 0.1 ? NAN : normal(seed + 6, i);
  if (n >= 2) d.ens[3] = d.ens[4] = d.ens[5] = NAN;  // a row of NaN
  return d;
}
struct TokCase {
  int64_t B, T;
  bool f32;
  int opt;  // the op's own option: ensemble method, whitening's shift_mean
  uint64_t seed;
};
std::vector<TokCase> tok_cases(Ctx& ctx, int opts) {
  std::vector<TokCase> out;
  const int64_t shapes[][2] = {{1, 1}, {3, 17}, {4, 257}, {3, 1500}, {64, 4096}};
  uint64_t seed = 0;
  for (const auto& s : shapes) {
    if (ctx.quick && s[0] * s[1] > 5000) continue;
    for (int f = 0; f < 2; ++f, ++seed)
      for (int o = 0; o < opts; ++o) out.push_back({s[0], s[1], f == 1, o, seed});
  }
  return out;
}
std::string tok_label(const TokCase& c, const char* opt) {
  return fmt("%lldx%lld %s%s%s", static_cast<long long>(c.B), static_cast<long long>(c.T), c.f32 ? "f32" : "u8",
             *opt ? " " : "", opt);
}
// Common parts of the four token-level rows.
struct TokRow {
  TokData data(const TokCase& c) const { return make_tok(c.B, c.T, c.seed); }
  bool det(const TokCase&) const { return true; }
  static rk::TokenMask mask(const TokCase& c, const float* f, const uint8_t* u) {
    return rk::TokenMask{c.f32 ? static_cast<const void*>(f) : u, c.f32};
  }
  static Run fail_or(const rkcuda::Result& res, Run r) {
    if (!res.ok()) r.fail = result_text(res);
    return r;
  }
};

struct EnsembleRewards : TokRow {
  using Case = TokCase;
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    for (const Case& c : tok_cases(ctx, rkl::ensembleRewards::method_code::kCount))
      if (!c.f32) out.push_back(c);  // no mask
    return out;
  }
  std::string label(const Case& c) const { return fmt("n=%lld K=3 %s", static_cast<long long>(c.B * c.T), rkl::ensembleRewards::k_method_names[c.opt]); }
  Run cpu(const Case& c, const TokData& d) const {
    const int64_t n = c.B * c.T;
    std::vector<float> e(n);
    rk::ensemble_rewards(d.ens.data(), n, 3, static_cast<rk::EnsembleMethod>(c.opt), 0.5, e.data());
    return Run{{farr("rewards", std::move(e), kRel)}, ""};
  }
  Run cuda(const Case& c, const TokData& d) const {
    const int64_t n = c.B * c.T;
    Dev<float> ens(d.ens), e(n);
    const rkcuda::Result res = rkcuda::ensemble_rewards(ens.p, n, 3, static_cast<rk::EnsembleMethod>(c.opt), 0.5, e.p, nullptr);
    return fail_or(res, Run{{farr("rewards", e.down(), Tol{})}, ""});
  }
};

struct Gae : TokRow {
  using Case = TokCase;
  std::vector<Case> cases(Ctx& ctx) const { return tok_cases(ctx, 1); }
  std::string label(const Case& c) const { return tok_label(c, "gamma=0.99 lambda=0.95"); }
  Run cpu(const Case& c, const TokData& d) const {
    const size_t n = d.v.size();
    std::vector<float> A(n), R(n);
    rk::gae(d.v.data(), d.rw.data(), mask(c, d.fm.data(), d.um.data()), c.B, c.T, 0.99, 0.95, A.data(), R.data());
    return Run{{farr("adv", std::move(A), kRel), farr("returns", std::move(R), kRel)}, ""};
  }
  Run cuda(const Case& c, const TokData& d) const {
    const size_t n = d.v.size();
    Dev<float> v(d.v), rw(d.rw), fm(d.fm), A(n), R(n);
    Dev<uint8_t> um(d.um);
    const rkcuda::Result res = rkcuda::gae(v.p, rw.p, mask(c, fm.p, um.p), c.B, c.T, 0.99, 0.95, A.p, R.p, nullptr);
    return fail_or(res, Run{{farr("adv", A.down(), Tol{}), farr("returns", R.down(), Tol{})}, ""});
  }
};

struct DiscountedReturns : TokRow {
  using Case = TokCase;
  std::vector<Case> cases(Ctx& ctx) const { return tok_cases(ctx, 1); }
  std::string label(const Case& c) const { return tok_label(c, "gamma=0.97"); }
  Run cpu(const Case& c, const TokData& d) const {
    std::vector<float> D(d.v.size());
    rk::discounted_returns(d.rw.data(), mask(c, d.fm.data(), d.um.data()), c.B, c.T, 0.97, D.data());
    return Run{{farr("returns", std::move(D), kRel)}, ""};
  }
  Run cuda(const Case& c, const TokData& d) const {
    Dev<float> rw(d.rw), fm(d.fm), D(d.v.size());
    Dev<uint8_t> um(d.um);
    const rkcuda::Result res = rkcuda::discounted_returns(rw.p, mask(c, fm.p, um.p), c.B, c.T, 0.97, D.p, nullptr);
    return fail_or(res, Run{{farr("returns", D.down(), Tol{})}, ""});
  }
};

// gatedRewards, discountedCumsum, lagrangianMix (native/core/reward_mix.h): the token rows' data;
// the high rewards are the first B values, the K = 3 advantages are rearranged values.
struct GatedRewards : TokRow {
  using Case = TokCase;  // opt: threshold 0 or -0.5
  std::vector<Case> cases(Ctx& ctx) const { return tok_cases(ctx, 2); }
  std::string label(const Case& c) const { return tok_label(c, c.opt ? "threshold=-0.5" : "threshold=0"); }
  static double thr(const Case& c) { return c.opt ? -0.5 : 0.0; }
  Run cpu(const Case& c, const TokData& d) const {
    std::vector<float> R(c.B);
    rk::gated_rewards(d.v.data(), d.rw.data(), mask(c, d.fm.data(), d.um.data()), c.B, c.T, thr(c), R.data());
    return Run{{farr("returns", std::move(R), kRel)}, ""};
  }
  Run cuda(const Case& c, const TokData& d) const {
    Dev<float> v(d.v), rw(d.rw), fm(d.fm), R(c.B);
    Dev<uint8_t> um(d.um);
    const rkcuda::Result res = rkcuda::gated_rewards(v.p, rw.p, mask(c, fm.p, um.p), c.B, c.T, thr(c), R.p, nullptr);
    return fail_or(res, Run{{farr("returns", R.down(), Tol{})}, ""});
  }
};

struct DiscountedCumsum : TokRow {
  using Case = TokCase;  // opt: adjoint
  std::vector<Case> cases(Ctx& ctx) const { return tok_cases(ctx, 2); }
  std::string label(const Case& c) const { return tok_label(c, c.opt ? "gamma=0.97 adjoint" : "gamma=0.97"); }
  Run cpu(const Case& c, const TokData& d) const {
    std::vector<float> D(d.v.size());
    rk::discounted_cumsum(d.rw.data(), mask(c, d.fm.data(), d.um.data()), c.B, c.T, 0.97, c.opt == 1, D.data());
    return Run{{farr("cumsum", std::move(D), kRel)}, ""};
  }
  Run cuda(const Case& c, const TokData& d) const {
    Dev<float> rw(d.rw), fm(d.fm), D(d.v.size());
    Dev<uint8_t> um(d.um);
    const rkcuda::Result res = rkcuda::discounted_cumsum(rw.p, mask(c, fm.p, um.p), c.B, c.T, 0.97, c.opt == 1, D.p, nullptr);
    return fail_or(res, Run{{farr("cumsum", D.down(), Tol{})}, ""});
  }
};

struct LagrangianMix : TokRow {
  using Case = TokCase;  // opt: with gradMixed (gradXi); the mask kinds are unused
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    for (const Case& c : tok_cases(ctx, 2))
      if (!c.f32) out.push_back(c);
    return out;
  }
  std::string label(const Case& c) const { return fmt("N=%lld K=3%s", static_cast<long long>(c.B * c.T), c.opt ? " gradXi" : ""); }
  static std::vector<float> adv(const TokData& d) {
    const size_t n = d.v.size();
    std::vector<float> a(3 * n);
    for (size_t i = 0; i < 3; ++i)
      for (size_t m = 0; m < n; ++m) a[i * n + m] = static_cast<float>(i + 1) * d.v[(m + 7919 * i) % n] - 0.1f * static_cast<float>(i);
    return a;
  }
  static std::vector<float> xi() { return {0.3f, -1.2f, 2.0f}; }
  Run cpu(const Case& c, const TokData& d) const {
    const int64_t n = static_cast<int64_t>(d.v.size());
    const std::vector<float> a = adv(d), x = xi();
    std::vector<float> M(n), G(3);
    rk::lagrangian_mix(a.data(), d.v.data(), x.data(), c.opt ? d.rw.data() : nullptr, 3, n, M.data(), c.opt ? G.data() : nullptr);
    Run r{{farr("mixed", std::move(M), kRel)}, ""};
    if (c.opt) r.out.push_back(farr("gradXi", std::move(G), rel_tol(1e-5, 1e-5)));
    return r;
  }
  Run cuda(const Case& c, const TokData& d) const {
    const int64_t n = static_cast<int64_t>(d.v.size());
    Dev<float> a(adv(d)), kl(d.v), x(xi()), g(d.rw), M(n), G(3);
    const rkcuda::Result res =
        rkcuda::lagrangian_mix(a.p, kl.p, x.p, c.opt ? g.p : nullptr, 3, n, M.p, c.opt ? G.p : nullptr, nullptr);
    Run r{{farr("mixed", M.down(), Tol{})}, ""};
    if (c.opt) r.out.push_back(farr("gradXi", G.down(), Tol{}));
    return fail_or(res, r);
  }
};

struct MaskedWhiten : TokRow {
  using Case = TokCase;  // opt: shift_mean
  std::vector<Case> cases(Ctx& ctx) const { return tok_cases(ctx, 2); }
  std::string label(const Case& c) const { return tok_label(c, c.opt ? "shiftMean" : "no shiftMean"); }
  Run cpu(const Case& c, const TokData& d) const {
    std::vector<float> W(d.v.size());
    const rk::Status st = rk::masked_whiten(d.v.data(), mask(c, d.fm.data(), d.um.data()), static_cast<int64_t>(d.v.size()),
                                            c.opt == 1, true, 1e-8, W.data());
    Run r{{farr("whiten", std::move(W), kRel)}, ""};
    if (!st.ok()) r.fail = status_text(st);
    return r;
  }
  Run cuda(const Case& c, const TokData& d) const {
    Dev<float> v(d.v), fm(d.fm), W(d.v.size());
    Dev<uint8_t> um(d.um);
    const rkcuda::Result res = rkcuda::masked_whiten(v.p, mask(c, fm.p, um.p), static_cast<int64_t>(d.v.size()), c.opt == 1,
                                                     true, 1e-8, W.p, nullptr, nullptr);
    return fail_or(res, Run{{farr("whiten", W.down(), Tol{})}, ""});
  }
};

// tokenAdvantages: opt = the estimator; the u8 cases of reinforce_plus_plus and remax with no mask;
// optimal token baselines over one group (even seeds) or shuffled ids (odd), IS weights under f32 masks.
struct TokenAdvantages : TokRow {
  using Case = TokCase;
  std::vector<Case> cases(Ctx& ctx) const { return tok_cases(ctx, rkl::tokenAdvantages::estimator_code::kCount); }
  std::string label(const Case& c) const {
    return tok_label(c, fmt("%s%s", rkl::tokenAdvantages::k_estimator_names[c.opt], no_mask(c) ? " no mask" : "").c_str());
  }
  static bool no_mask(const Case& c) { return c.opt < 2 && !c.f32 && c.seed % 4 == 0; }
  struct Extra {
    std::vector<float> lp, spi, isw, base;
    std::vector<int32_t> ids;
    int64_t G;
  };
  static Extra extra(const Case& c, const TokData& d) {
    Extra e;
    const size_t n = d.v.size();
    e.lp.resize(n), e.spi.resize(n), e.isw.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const double p = 0.02 + 0.97 * unif(c.seed + 11, i);
      e.lp[i] = static_cast<float>(std::log(p));
      e.spi[i] = static_cast<float>(p * p + (1 - p * p) * 0.5 * unif(c.seed + 12, i));
      e.isw[i] = static_cast<float>(1.0 + 0.3 * normal(c.seed + 13, i));
    }
    e.base.resize(c.B);
    for (int64_t b = 0; b < c.B; ++b) e.base[b] = normal(c.seed + 14, b);
    e.G = c.B > 2 ? c.B / 2 : 1;
    e.ids.resize(c.B);
    for (int64_t b = 0; b < c.B; ++b) e.ids[b] = static_cast<int32_t>(mix64(c.seed + 15 + b) % e.G);
    return e;
  }
  static rk::TokenAdvantagesArgs args(const Case& c, const float* rw, rk::TokenMask m, const float* lp, const float* spi,
                                      const float* isw, const float* base, const int32_t* ids, int64_t G) {
    rk::TokenAdvantagesArgs a;
    a.estimator = static_cast<rk::TokenEstimator>(c.opt);
    a.rewards = rw, a.mask = no_mask(c) ? rk::TokenMask{} : m, a.rows = c.B, a.cols = c.T, a.gamma = 0.97;
    a.baselines = base, a.logprobs = lp, a.sum_pi_sq = spi, a.is_weights = c.f32 ? isw : nullptr;
    const bool by_ids = c.seed % 2 == 1;
    a.group_size = by_ids ? 0 : c.B, a.group_ids = by_ids ? ids : nullptr, a.num_groups = by_ids ? G : 0;
    a.zero_tail = c.opt == 3 || c.seed % 3 == 0, a.eps = 1e-8;
    return a;
  }
  Run cpu(const Case& c, const TokData& d) const {
    const Extra e = extra(c, d);
    std::vector<float> A(d.v.size()), R(d.v.size());
    const rk::Status st = rk::token_advantages(args(c, d.rw.data(), mask(c, d.fm.data(), d.um.data()), e.lp.data(), e.spi.data(),
                                                    e.isw.data(), e.base.data(), e.ids.data(), e.G), A.data(), R.data());
    Run r{{farr("adv", std::move(A), kRel), farr("returns", std::move(R), kRel)}, ""};
    if (!st.ok()) r.fail = status_text(st);
    return r;
  }
  Run cuda(const Case& c, const TokData& d) const {
    const Extra e = extra(c, d);
    Dev<float> rw(d.rw), fm(d.fm), lp(e.lp), spi(e.spi), isw(e.isw), base(e.base), A(d.v.size()), R(d.v.size());
    Dev<uint8_t> um(d.um);
    Dev<int32_t> ids(e.ids);
    const rkcuda::Result res = rkcuda::token_advantages(
        args(c, rw.p, mask(c, fm.p, um.p), lp.p, spi.p, isw.p, base.p, ids.p, e.G), A.p, R.p, nullptr, nullptr);
    return fail_or(res, Run{{farr("adv", A.down(), Tol{}), farr("returns", R.down(), Tol{})}, ""});
  }
};

// tokenAdvantages / klRewards: a bad group id and bad f32 mask weights, reported with the element.
void token_edges(Ctx&, Tally& t) {
  const int64_t B = 6, T = 5, n = B * T;
  std::vector<float> r(n, 0.5f), lp(n, -0.7f), spi(n, 0.4f), w(n, 1.0f);
  std::vector<int32_t> ids = {0, 1, 0, 2, 1, 2};
  ids[4] = 3;
  Dev<float> dr(r), dlp(lp), dspi(spi), fw(w), A(n), R(n);
  Dev<int32_t> dg(ids);
  Dev<double> mean(1);
  rk::TokenAdvantagesArgs a;
  a.estimator = rk::TokenEstimator::Otb, a.rewards = dr.p, a.rows = B, a.cols = T, a.logprobs = dlp.p, a.sum_pi_sq = dspi.p;
  a.group_ids = dg.p, a.num_groups = 3;
  Line line;
  rkcuda::Result res = rkcuda::token_advantages(a, A.p, R.p, nullptr, nullptr);
  line.flag("bad id", res.code == rkcuda::kBadTarget && res.index == 4 && res.value == 3 && std::strcmp(res.where, "group_ids") == 0);
  line.flag("NaN adv", std::isnan(A.down()[0]));
  w[17] = -1.0f;
  fw.up(w);
  a.mask = rk::TokenMask{fw.p, true};
  res = rkcuda::token_advantages(a, A.p, R.p, nullptr, nullptr);
  line.flag("id and weight: the lower index", res.code == rkcuda::kBadTarget && res.index == 4 && std::strcmp(res.where, "group_ids") == 0);
  ids[4] = 1;
  dg.up(ids);
  res = rkcuda::token_advantages(a, A.p, R.p, nullptr, nullptr);
  line.flag("bad weight", res.code == rkcuda::kBadTarget && res.index == 17 && std::strcmp(res.where, "mask") == 0);
  a.estimator = rk::TokenEstimator::ReinforcePP;
  res = rkcuda::token_advantages(a, A.p, R.p, nullptr, nullptr);
  line.flag("rpp weight", res.code == rkcuda::kBadTarget && res.index == 17);
  res = rkcuda::kl_rewards(dr.p, dlp.p, dspi.p, rk::TokenMask{fw.p, true}, B, T, rk::KlRewardEstimator::K3, 0.1, A.p, mean.p,
                           nullptr, nullptr);
  line.flag("kl weight", res.code == rkcuda::kBadTarget && res.index == 17 && std::isnan(mean.down()[0]));
  CK(cudaDeviceSynchronize());
  t.add(line.print("tokenAdvantages", "bad ids / mask weights (and klRewards)"));
}

// klRewards: opt = the estimator; no mask on every fourth u8 case.
struct KlRewards : TokRow {
  using Case = TokCase;
  std::vector<Case> cases(Ctx& ctx) const { return tok_cases(ctx, rkl::klRewards::estimator_code::kCount); }
  std::string label(const Case& c) const {
    return tok_label(c, fmt("%s%s", rkl::klRewards::k_estimator_names[c.opt], no_mask(c) ? " no mask" : "").c_str());
  }
  static bool no_mask(const Case& c) { return !c.f32 && c.seed % 4 == 0; }
  static std::vector<float> ref_of(const TokData& d) {
    std::vector<float> ref(d.v.size());
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = 0.7f * d.v[i] + 3.0f * d.rw[i] - (i % 9 == 0 ? 25.0f : 0.0f);
    return ref;
  }
  Run cpu(const Case& c, const TokData& d) const {
    const std::vector<float> ref = ref_of(d);
    std::vector<float> R(d.v.size());
    double mean = -1;
    const rk::TokenMask m = no_mask(c) ? rk::TokenMask{} : mask(c, d.fm.data(), d.um.data());
    const rk::Status st = rk::kl_rewards(d.rw.data(), d.v.data(), ref.data(), m, c.B, c.T,
                                         static_cast<rk::KlRewardEstimator>(c.opt), 0.15, R.data(), &mean);
    Run r{{farr("rewards", std::move(R), kRel), darr("klMean", {mean}, kRel)}, ""};
    if (!st.ok()) r.fail = status_text(st);
    return r;
  }
  Run cuda(const Case& c, const TokData& d) const {
    Dev<float> rw(d.rw), v(d.v), ref(ref_of(d)), fm(d.fm), R(d.v.size());
    Dev<uint8_t> um(d.um);
    Dev<double> mean(1);
    const rk::TokenMask m = no_mask(c) ? rk::TokenMask{} : mask(c, fm.p, um.p);
    const rkcuda::Result res = rkcuda::kl_rewards(rw.p, v.p, ref.p, m, c.B, c.T, static_cast<rk::KlRewardEstimator>(c.opt), 0.15,
                                                  R.p, mean.p, nullptr, nullptr);
    return fail_or(res, Run{{farr("rewards", R.down(), Tol{}), darr("klMean", mean.down(), Tol{})}, ""});
  }
};

// maskTruncatedCompletions: ids in [0, 4) from the values (eos 1, pad 0), the u8 / f32 mask or none (opt 1).
struct MaskTruncatedCompletions : TokRow {
  using Case = TokCase;
  std::vector<Case> cases(Ctx& ctx) const { return tok_cases(ctx, 2); }
  std::string label(const Case& c) const { return tok_label(c, c.opt ? "no mask" : "mask"); }
  static std::vector<int32_t> ids(const TokData& d) {
    std::vector<int32_t> out(d.v.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int32_t>(std::fabs(d.v[i]) * 3.0f) % 4;
    return out;
  }
  rk::TokenMask mk(const Case& c, const float* f, const uint8_t* u) const {
    return c.opt ? rk::TokenMask{nullptr, false} : mask(c, f, u);
  }
  Run cpu(const Case& c, const TokData& d) const {
    std::vector<float> M(d.v.size()), F(static_cast<size_t>(c.B));
    const std::vector<int32_t> id = ids(d);
    rk::mask_truncated_completions(id.data(), mk(c, d.fm.data(), d.um.data()), c.B, c.T, 1, 0, M.data(), F.data());
    return Run{{farr("mask", std::move(M), Tol{}), farr("truncated", std::move(F), Tol{})}, ""};
  }
  Run cuda(const Case& c, const TokData& d) const {
    Dev<float> fm(d.fm), M(d.v.size()), F(static_cast<size_t>(c.B));
    Dev<uint8_t> um(d.um);
    Dev<int32_t> id(ids(d));
    const rkcuda::Result res =
        rkcuda::mask_truncated_completions(id.p, mk(c, fm.p, um.p), c.B, c.T, 1, 0, M.p, F.p, nullptr);
    return fail_or(res, Run{{farr("mask", M.down(), Tol{}), farr("truncated", F.down(), Tol{})}, ""});
  }
};

// copoAdvantages: B prompts of T samples; answers in [0, 3) from the values, the token rewards; groups
// contiguous (u8 cases) or scattered by id g(i) = (i * 7 + i / 3) % B (f32 cases, the grouped order
// and offsets built here as the facade builds them); every gate mode (opt).
struct CopoAdvantages : TokRow {
  using Case = TokCase;
  std::vector<Case> cases(Ctx& ctx) const { return tok_cases(ctx, rkl::copoAdvantages::gate_code::kCount); }
  std::string label(const Case& c) const {
    return fmt("%lld prompts x %lld %s gate=%s", static_cast<long long>(c.B), static_cast<long long>(c.T),
               c.f32 ? "groupIds" : "groupSize", rkl::copoAdvantages::k_gate_names[c.opt]);
  }
  struct In {
    std::vector<int32_t> ans, order, offs;
  };
  static In inputs(const Case& c, const TokData& d) {
    In in;
    const int64_t n = c.B * c.T;
    in.ans.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) in.ans[i] = static_cast<int32_t>(std::fabs(d.v[i]) * 2.0f) % 3;
    if (c.f32) {
      std::vector<int32_t> gid(static_cast<size_t>(n));
      in.offs.assign(static_cast<size_t>(c.B + 1), 0);
      for (int64_t i = 0; i < n; ++i) gid[i] = static_cast<int32_t>(i < c.B ? i : (i * 7 + i / 3) % c.B);
      for (int64_t i = 0; i < n; ++i) in.offs[gid[i] + 1]++;
      for (int64_t g = 0; g < c.B; ++g) in.offs[g + 1] += in.offs[g];
      std::vector<int32_t> next(in.offs.begin(), in.offs.end() - 1);
      in.order.resize(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) in.order[next[gid[i]]++] = static_cast<int32_t>(i);
    }
    return in;
  }
  static rk::CopoArgs args(const Case& c, const int32_t* ans, const float* rw, const int32_t* order, const int32_t* offs) {
    rk::CopoArgs a;
    a.answers = ans;
    a.rewards = rw;
    a.order = c.f32 ? order : nullptr;
    a.offsets = c.f32 ? offs : nullptr;
    a.n = c.B * c.T;
    a.num_groups = c.B;
    a.group_size = c.f32 ? 0 : c.T;
    a.k = 5;
    a.b = 0.7;
    a.gate = static_cast<rk::CopoGate>(c.opt);
    a.consistency = (c.seed & 1) == 0;
    return a;
  }
  Run cpu(const Case& c, const TokData& d) const {
    const In in = inputs(c, d);
    const size_t n = static_cast<size_t>(c.B * c.T), Q = static_cast<size_t>(c.B);
    std::vector<float> H(Q), R(Q), L(n), A(n), W(n);
    rk::copo_advantages(args(c, in.ans.data(), d.rw.data(), in.order.data(), in.offs.data()), H.data(), R.data(), L.data(), A.data(),
                        W.data());
    return Run{{farr("entropy", std::move(H), kRel), farr("globalRewards", std::move(R), kRel), farr("local", std::move(L), kRel),
                farr("global", std::move(A), kRel), farr("gates", std::move(W), kRel)},
               ""};
  }
  Run cuda(const Case& c, const TokData& d) const {
    const In in = inputs(c, d);
    const size_t n = static_cast<size_t>(c.B * c.T), Q = static_cast<size_t>(c.B);
    Dev<int32_t> ans(in.ans), order(in.order.empty() ? std::vector<int32_t>(1) : in.order),
        offs(in.offs.empty() ? std::vector<int32_t>(1) : in.offs);
    Dev<float> rw(d.rw), H(Q), R(Q), L(n), A(n), W(n);
    const rkcuda::Result res =
        rkcuda::copo_advantages(args(c, ans.p, rw.p, order.p, offs.p), H.p, R.p, L.p, A.p, W.p, nullptr);
    return fail_or(res, Run{{farr("entropy", H.down(), Tol{}), farr("globalRewards", R.down(), Tol{}), farr("local", L.down(), Tol{}),
                             farr("global", A.down(), Tol{}), farr("gates", W.down(), Tol{})},
                            ""});
  }
};

// ---------------------------------------------------------------------------------------------
// The multi-objective ops (native/core/moo.h): paretoFront, rewardWeightUpdate (the Gram matrix has
// the same bits on both backends), trajectoryBalanceLoss and orderPreservingLoss (opt: 0 TB, 1 OP),
// hypervolumeMetaReward (its own case struct, below).

struct MooCase {
  int64_t B, T, K;
  int mask;   // 0 none, 1 u8, 2 f32 weights
  bool zrow;  // logZ per row (else shared)
  int opt;
  uint64_t seed;
};
struct MooData {
  std::vector<float> a, b, c, z, obj, fm;
  std::vector<uint8_t> um;
};
// Normal values (quantised to quarters when `ties`, so that points tie and repeat).
std::vector<float> moo_normal(size_t n, uint64_t seed, double scale, bool ties) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> nd(0.0, scale);
  std::vector<float> v(n);
  for (float& x : v) {
    const double y = nd(g);
    x = static_cast<float>(ties ? std::round(y * 4) / 4 : y);
  }
  return v;
}
MooData moo_data(const MooCase& c) {
  MooData d;
  const size_t n = static_cast<size_t>(c.B * c.T);
  d.a = moo_normal(n, c.seed, 1, false);
  d.b = moo_normal(n, c.seed + 1, 1, false);
  d.c = moo_normal(static_cast<size_t>(c.B), c.seed + 2, 2, false);
  d.z = moo_normal(static_cast<size_t>(c.zrow ? c.B : 1), c.seed + 3, 1, false);
  d.obj = moo_normal(static_cast<size_t>(c.B * c.K), c.seed + 4, 1, true);
  d.um.resize(n);
  d.fm.resize(n);
  for (size_t i = 0; i < n; ++i) {
    d.um[i] = (i * 2654435761u + c.seed) % 4 != 0 ? 1 : 0;
    d.fm[i] = d.um[i] ? 0.5f + static_cast<float>(i % 3) : 0.0f;
  }
  return d;
}
std::vector<float> moo_flags(const std::vector<uint8_t>& f) { return std::vector<float>(f.begin(), f.end()); }

struct MooRow {
  MooData data(const MooCase& c) const { return moo_data(c); }
  bool det(const MooCase&) const { return true; }
  static Run fail_or(const rkcuda::Result& res, Run r) {
    if (!res.ok()) r.fail = result_text(res);
    return r;
  }
  static rk::TokenMask mask(const MooCase& c, const float* f, const uint8_t* u) {
    return c.mask == 0 ? rk::TokenMask{} : rk::TokenMask{c.mask == 2 ? static_cast<const void*>(f) : u, c.mask == 2};
  }
};

struct ParetoFrontRow : MooRow {
  using Case = MooCase;
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    uint64_t seed = 100;
    for (int64_t K : {1, 2, 3, 5})
      for (int64_t B : {1, 7, 33, 300, 3000})
        if (!(ctx.quick && B > 300)) out.push_back({B, 1, K, 0, false, 0, seed++});
    return out;
  }
  std::string label(const Case& c) const { return fmt("B=%lld K=%lld (ties)", static_cast<long long>(c.B), static_cast<long long>(c.K)); }
  Run cpu(const Case& c, const MooData& d) const {
    std::vector<uint8_t> f(static_cast<size_t>(c.B));
    int64_t count = 0;
    rk::pareto_front(d.obj.data(), c.B, c.K, f.data(), &count);
    return Run{{farr("front", moo_flags(f), exact_tol()), darr("count", {static_cast<double>(count)}, exact_tol())}, ""};
  }
  Run cuda(const Case& c, const MooData& d) const {
    Dev<float> obj(d.obj);
    Dev<uint8_t> f(static_cast<size_t>(c.B));
    Dev<double> count(1);
    const rkcuda::Result res = rkcuda::pareto_front(obj.p, c.B, c.K, f.p, count.p, nullptr);
    return fail_or(res, Run{{farr("front", moo_flags(f.down()), Tol{}), darr("count", count.down(), Tol{})}, ""});
  }
};

// rewardWeightUpdate: B = K objectives, T = P columns.
struct RewardWeightUpdateRow : MooRow {
  using Case = MooCase;
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    uint64_t seed = 200;
    for (int64_t K : {1, 2, 3, 5})
      for (int64_t P : {1, 7, 8193, 100003, 1000000})
        if (ctx.fits(K * P) && !(ctx.quick && P > 100003)) out.push_back({K, P, K, 0, false, 0, seed++});
    return out;
  }
  std::string label(const Case& c) const { return fmt("K=%lld P=%lld", static_cast<long long>(c.B), static_cast<long long>(c.T)); }
  static std::vector<float> weights(int64_t K) {
    std::vector<float> w(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) w[static_cast<size_t>(k)] = static_cast<float>(k + 1) / static_cast<float>(K * (K + 1) / 2);
    return w;
  }
  static double lr(const Case& c) { return 1e-5 / static_cast<double>(c.T); }
  Run cpu(const Case& c, const MooData& d) const {
    const int64_t K = c.B;
    const std::vector<float> w = weights(K);
    std::vector<float> gram(static_cast<size_t>(K * K)), s(static_cast<size_t>(K)), wo(static_cast<size_t>(K));
    rk::reward_weight_update(d.a.data(), K, c.T, w.data(), lr(c), 1e-5, gram.data(), s.data(), wo.data());
    return Run{{farr("gram", std::move(gram), exact_tol()), farr("scores", std::move(s), exact_tol()), farr("weights", std::move(wo), kRel)}, ""};
  }
  Run cuda(const Case& c, const MooData& d) const {
    const int64_t K = c.B;
    Dev<float> g(d.a), w(weights(K)), gram(static_cast<size_t>(K * K)), s(static_cast<size_t>(K)), wo(static_cast<size_t>(K));
    const rkcuda::Result res = rkcuda::reward_weight_update(g.p, K, c.T, w.p, lr(c), 1e-5, gram.p, s.p, wo.p, nullptr);
    return fail_or(res, Run{{farr("gram", gram.down(), Tol{}), farr("scores", s.down(), Tol{}), farr("weights", wo.down(), Tol{})}, ""});
  }
};

// trajectoryBalanceLoss (opt 0) and orderPreservingLoss (opt 1): every mask kind, shared and per-row logZ.
struct GfnRow : MooRow {
  using Case = MooCase;
  int op = 0;
  explicit GfnRow(int which) : op(which) {}
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    const int64_t shapes[][2] = {{1, 1}, {3, 7}, {17, 33}, {64, 129}, {1000, 257}};
    uint64_t seed = 300 + static_cast<uint64_t>(op) * 1000;
    for (const auto& s : shapes) {
      if (ctx.quick && s[0] * s[1] > 10000) continue;
      for (int m = 0; m < 3; ++m)
        for (int zr = 0; zr < 2; ++zr) out.push_back({s[0], s[1], op ? static_cast<int64_t>(seed % 4 == 3 ? 5 : 1 + seed % 4) : 1, m, zr == 1, op, seed++});
    }
    return out;
  }
  std::string label(const Case& c) const {
    static const char* masks[] = {"no mask", "u8", "f32"};
    return fmt("%lldx%lld K=%lld %s %s", static_cast<long long>(c.B), static_cast<long long>(c.T), static_cast<long long>(c.K),
               masks[c.mask], c.zrow ? "logZ per row" : "shared logZ");
  }
  static rk::GfnArgs args(const Case& c, const float* a, const float* b, const float* z, rk::TokenMask m) {
    rk::GfnArgs g;
    g.lpf = a, g.lpb = b, g.logz = z, g.mask = m, g.z_per_row = c.zrow, g.B = c.B, g.T = c.T;
    return g;
  }
  Run cpu(const Case& c, const MooData& d) const {
    const size_t n = static_cast<size_t>(c.B * c.T), B = static_cast<size_t>(c.B);
    std::vector<float> rows(B), gz(d.z.size()), gpf(n), gpb(n);
    const rk::GfnArgs a = args(c, d.a.data(), d.b.data(), d.z.data(), mask(c, d.fm.data(), d.um.data()));
    if (c.opt == 0) {
      const double loss = rk::trajectory_balance_loss(a, d.c.data(), rows.data(), gz.data(), gpf.data(), gpb.data());
      return Run{{farr("residuals", std::move(rows), kRel), farr("gradLogZ", std::move(gz), kRel), farr("gradLogPF", std::move(gpf), kRel),
                  farr("gradLogPB", std::move(gpb), kRel), darr("loss", {loss}, kRel)},
                 ""};
    }
    std::vector<uint8_t> f(B);
    int64_t count = 0;
    const double loss = rk::order_preserving_loss(a, d.obj.data(), c.K, rows.data(), f.data(), gz.data(), gpf.data(), gpb.data(), &count);
    return Run{{farr("logRewardHat", std::move(rows), kRel), farr("front", moo_flags(f), exact_tol()),
                farr("gradLogZ", std::move(gz), rel_tol(1e-5, 1e-5)), farr("gradLogPF", std::move(gpf), kRel),
                farr("gradLogPB", std::move(gpb), kRel), darr("loss", {loss}, kRel), darr("frontSize", {static_cast<double>(count)}, exact_tol())},
               ""};
  }
  Run cuda(const Case& c, const MooData& d) const {
    const size_t n = static_cast<size_t>(c.B * c.T), B = static_cast<size_t>(c.B);
    Dev<float> A(d.a), Bv(d.b), R(d.c), Z(d.z), O(d.obj), fm(d.fm), rows(B), gz(d.z.size()), gpf(n), gpb(n);
    Dev<uint8_t> um(d.um), f(B);
    Dev<double> sc(2);
    const rk::GfnArgs a = args(c, A.p, Bv.p, Z.p, mask(c, fm.p, um.p));
    if (c.opt == 0) {
      const rkcuda::Result res = rkcuda::trajectory_balance_loss(a, R.p, rows.p, gz.p, gpf.p, gpb.p, sc.p, nullptr);
      const std::vector<double> s = sc.down();
      return fail_or(res, Run{{farr("residuals", rows.down(), Tol{}), farr("gradLogZ", gz.down(), Tol{}), farr("gradLogPF", gpf.down(), Tol{}),
                               farr("gradLogPB", gpb.down(), Tol{}), darr("loss", {s[0]}, Tol{})},
                              ""});
    }
    const rkcuda::Result res = rkcuda::order_preserving_loss(a, O.p, c.K, rows.p, f.p, gz.p, gpf.p, gpb.p, sc.p, nullptr);
    const std::vector<double> s = sc.down();
    return fail_or(res, Run{{farr("logRewardHat", rows.down(), Tol{}), farr("front", moo_flags(f.down()), Tol{}), farr("gradLogZ", gz.down(), Tol{}),
                             farr("gradLogPF", gpf.down(), Tol{}), farr("gradLogPB", gpb.down(), Tol{}), darr("loss", {s[0]}, Tol{}),
                             darr("frontSize", {s[1]}, Tol{})},
                            ""});
  }
};
template <int kOp>
struct GfnRowOf : GfnRow {
  GfnRowOf() : GfnRow(kOp) {}
};

// hypervolumeMetaReward: K objectives, M front points (ties: quarters), n rewards; maximize none or
// mixed; current sometimes dominated (contribution 0) or below the reference (a negative volume).
// The scalars within 1e-12 of the largest hypervolume (the device may contract a product and a sum
// into one FMA); the rewards as the O(n) kernels.
struct HvCase {
  int64_t K, M, n;
  int kind;  // 0 all maximised, 1 mixed maximize, 2 current dominated, 3 current below the reference
  uint64_t seed;
};
struct HvData {
  std::vector<double> cur, front, ref;
  std::vector<uint8_t> mx;
  std::vector<float> rw;
};
struct HypervolumeMetaRewardRow {
  using Case = HvCase;
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    uint64_t seed = 500;
    for (int64_t K : {1, 2, 3, 5, 8})
      for (int64_t M : {0, 1, 7, 40})
        for (int kind = 0; kind < 4; ++kind) {
          const int64_t n = (seed % 3 == 0) ? 0 : (seed % 3 == 1) ? 1 + static_cast<int64_t>(seed % 37) : 1000;
          out.push_back({K, M, n, kind, seed++});
        }
    for (int64_t n : {257, 100003, 1000000})
      if (ctx.fits(n) && !(ctx.quick && n > 100003)) out.push_back({3, 9, n, 1, seed++});
    return out;
  }
  std::string label(const Case& c) const {
    static const char* kinds[] = {"maximise", "mixed maximize", "current dominated", "current below ref"};
    return fmt("K=%lld M=%lld n=%lld %s", static_cast<long long>(c.K), static_cast<long long>(c.M),
               static_cast<long long>(c.n), kinds[c.kind]);
  }
  HvData data(const Case& c) const {
    HvData d;
    std::mt19937_64 g(c.seed);
    std::uniform_real_distribution<double> u(0.0, 2.0);
    const auto q = [](double x) { return std::round(x * 4) / 4; };
    d.front.resize(static_cast<size_t>(c.M * c.K));
    for (double& x : d.front) x = q(u(g));
    d.cur.resize(static_cast<size_t>(c.K));
    for (double& x : d.cur) x = q(u(g));
    d.ref.resize(static_cast<size_t>(c.K));
    for (double& x : d.ref) x = q(u(g) * 0.25);
    if (c.kind == 1) {
      d.mx.resize(static_cast<size_t>(c.K));
      for (int64_t k = 0; k < c.K; ++k) d.mx[static_cast<size_t>(k)] = k % 3 == 1 ? 0 : 1;
    }
    if (c.kind == 2 && c.M > 0)
      for (int64_t k = 0; k < c.K; ++k) d.cur[static_cast<size_t>(k)] = d.front[static_cast<size_t>(k)] - 0.25;
    if (c.kind == 3) d.cur[static_cast<size_t>(c.K - 1)] = d.ref[static_cast<size_t>(c.K - 1)] - 0.5;
    d.rw = moo_normal(static_cast<size_t>(c.n), c.seed + 1, 1, false);
    return d;
  }
  bool det(const Case&) const { return true; }
  static const uint8_t* mx(const HvData& d) { return d.mx.empty() ? nullptr : d.mx.data(); }
  Run cpu(const Case& c, const HvData& d) const {
    std::vector<float> out(static_cast<size_t>(c.n));
    const rk::HvResult r = rk::hypervolume_meta_reward(c.M ? d.front.data() : nullptr, c.M, d.cur.data(), d.ref.data(), mx(d), c.K,
                                                       d.rw.data(), c.n, out.data());
    const double scale = std::max({1.0, std::fabs(r.hv_with), std::fabs(r.hv_without)});
    return Run{{darr("scalars", {r.meta, r.contribution, r.hv_with, r.hv_without}, abs_tol(1e-12, 1e-12 * scale)),
                farr("rewards", std::move(out), kRel)},
               ""};
  }
  Run cuda(const Case& c, const HvData& d) const {
    Dev<double> cur(d.cur), front(d.front), ref(d.ref), sc(4);
    Dev<uint8_t> m(d.mx);
    Dev<float> rw(d.rw), out(static_cast<size_t>(c.n));
    const rkcuda::Result res = rkcuda::hypervolume_meta_reward(cur.p, front.p, c.M, ref.p, m.p, c.K, rw.p, c.n, out.p, sc.p, nullptr);
    Run r{{darr("scalars", sc.down(), Tol{}), farr("rewards", out.down(), Tol{})}, ""};
    if (!res.ok()) r.fail = result_text(res);
    return r;
  }
};

// A value that is not finite: kBadTarget at its index in (current, front, reference), NaN outputs;
// bad sizes are kBadArgument.
void hv_edges(Ctx&, Tally& t) {
  const int64_t K = 3, M = 2, n = 5;
  std::vector<double> cur{1, 1, 1}, front{0.5, 0.5, 0.5, 0.7, 0.2, 0.9}, ref{0, 0, 0};
  Dev<double> dc(cur), df(front), dr(ref), sc(4);
  Dev<float> rw(std::vector<float>(n, 1.0f)), out(n);
  Line line;
  front[4] = NAN;
  df.up(front);
  rkcuda::Result res = rkcuda::hypervolume_meta_reward(dc.p, df.p, M, dr.p, nullptr, K, rw.p, n, out.p, sc.p, nullptr);
  line.flag("NaN front", res.code == rkcuda::kBadTarget && res.index == K + 4 && std::strcmp(res.where, "current, front, reference") == 0);
  line.flag("NaN outputs", std::isnan(sc.down()[0]) && std::isnan(sc.down()[2]) && std::isnan(out.down()[n - 1]));
  front[4] = 0.2;
  df.up(front);
  ref[2] = -INFINITY;
  dr.up(ref);
  res = rkcuda::hypervolume_meta_reward(dc.p, df.p, M, dr.p, nullptr, K, rw.p, n, out.p, sc.p, nullptr);
  line.flag("-inf reference", res.code == rkcuda::kBadTarget && res.index == K + M * K + 2);
  ref[2] = 0;
  dr.up(ref);
  cur[0] = INFINITY;
  dc.up(cur);
  res = rkcuda::hypervolume_meta_reward(dc.p, df.p, M, dr.p, nullptr, K, rw.p, n, out.p, sc.p, nullptr);
  line.flag("inf current", res.code == rkcuda::kBadTarget && res.index == 0);
  res = rkcuda::hypervolume_meta_reward(dc.p, df.p, M, dr.p, nullptr, 9, rw.p, n, out.p, sc.p, nullptr);
  line.flag("K=9", res.code == rkcuda::kBadArgument && std::strcmp(res.where, "K") == 0);
  res = rkcuda::hypervolume_meta_reward(dc.p, nullptr, M, dr.p, nullptr, K, rw.p, n, out.p, sc.p, nullptr);
  line.flag("null front", res.code == rkcuda::kBadArgument && std::strcmp(res.where, "front") == 0);
  CK(cudaDeviceSynchronize());
  t.add(line.print("hypervolumeMetaReward", "non-finite current / front / reference, bad sizes"));
}

// ---------------------------------------------------------------------------------------------
// DRAKES: gumbelSoftmax (variant 0 soft, 1 hard), gumbelSoftmaxBackward, drakesKl (variant 0 no
// mask, scalar moveChance, both gradients; 1 row mask, per-row moveChance and gradOutput, the new
// gradient only). The index is compared exactly: it holds the Gumbel noise to the CPU's bits.

std::vector<float> as_float(const std::vector<int32_t>& v) { return std::vector<float>(v.begin(), v.end()); }
Run drakes_fail_or(const rkcuda::Result& res, Run r) {
  if (!res.ok()) r.fail = result_text(res);
  return r;
}

struct GumbelSoftmaxRow {
  using Case = LpCase;
  std::vector<Case> cases(Ctx& ctx) const { return lp_cases(ctx, 2, false); }
  std::string label(const Case& c) const { return lp_label(c, c.variant == 0 ? "soft" : "hard"); }
  LpData data(const Case& c) const { return lp_data(*c.s, c.dtype); }
  bool det(const Case& c) const { return c.variant == 0; }
  rk::GumbelParams params(const Case& c) const {
    rk::GumbelParams p;
    p.temperature = c.s->tau;
    p.seed = c.s->seed * 7919 + 1;
    p.hard = c.variant == 1;
    return p;
  }
  Run cpu(const Case& c, const LpData& d) const {
    const int64_t n = c.s->n, v = c.s->v;
    const rk::LogitsView lv{d.z.data(), static_cast<rk::DType>(c.dtype), n, v};
    std::vector<float> y(static_cast<size_t>(n * v));
    std::vector<int32_t> idx(static_cast<size_t>(n));
    Run r;
    const rk::Status st = rk::gumbel_softmax_forward(lv, params(c), y.data(), idx.data());
    if (!st.ok()) r.fail = status_text(st);
    r.out = {farr("sample", std::move(y), rel_tol(1e-5, 1e-6, v)), farr("index", as_float(idx), exact_tol())};
    return r;
  }
  Run cuda(const Case& c, const LpData& d) const {
    const int64_t n = c.s->n, v = c.s->v;
    DevLogits z(d, c.dtype, c.s->offset);
    Dev<float> y(static_cast<size_t>(n * v));
    Dev<int32_t> idx(static_cast<size_t>(n));
    const rk::GumbelParams p = params(c);
    rkcuda::GumbelArgs a;
    a.logits = z.p, a.dtype = c.dtype, a.rows = n, a.vocab = v, a.temperature = p.temperature, a.seed = p.seed, a.hard = p.hard;
    a.sample = y.p, a.index = idx.p;
    const rkcuda::Result res = rkcuda::gumbel_softmax_forward(a, nullptr);
    return drakes_fail_or(res, Run{{farr("sample", y.down(), Tol{}), farr("index", as_float(idx.down()), Tol{})}, ""});
  }
};

struct GumbelData {
  LpData lp;
  std::vector<float> gs;
};
struct GumbelSoftmaxBackwardRow {
  using Case = LpCase;
  std::vector<Case> cases(Ctx& ctx) const { return lp_cases(ctx, 1, false); }
  std::string label(const Case& c) const { return lp_label(c, "backward"); }
  GumbelData data(const Case& c) const {
    GumbelData d{lp_data(*c.s, c.dtype), {}};
    d.gs.resize(static_cast<size_t>(c.s->n * c.s->v));
    for (size_t i = 0; i < d.gs.size(); ++i) d.gs[i] = normal(c.s->seed + 41, i);
    return d;
  }
  bool det(const Case&) const { return true; }
  rk::GumbelParams params(const Case& c) const {
    rk::GumbelParams p;
    p.temperature = c.s->tau;
    p.seed = c.s->seed * 7919 + 3;
    return p;
  }
  Run cpu(const Case& c, const GumbelData& d) const {
    const int64_t n = c.s->n, v = c.s->v;
    const rk::LogitsView lv{d.lp.z.data(), static_cast<rk::DType>(c.dtype), n, v};
    std::vector<float> g(static_cast<size_t>(n * v));
    Run r;
    const rk::Status st = rk::gumbel_softmax_backward(lv, params(c), d.gs.data(), g.data());
    if (!st.ok()) r.fail = status_text(st);
    r.out = {farr("gradient", std::move(g), rel_tol(1e-5, 1e-6, v))};
    return r;
  }
  Run cuda(const Case& c, const GumbelData& d) const {
    const int64_t n = c.s->n, v = c.s->v;
    DevLogits z(d.lp, c.dtype, c.s->offset);
    Dev<float> gs(d.gs), g(static_cast<size_t>(n * v));
    const rk::GumbelParams p = params(c);
    rkcuda::GumbelArgs a;
    a.logits = z.p, a.dtype = c.dtype, a.rows = n, a.vocab = v, a.temperature = p.temperature, a.seed = p.seed;
    a.grad_sample = gs.p, a.grad = g.p;
    const rkcuda::Result res = rkcuda::gumbel_softmax_backward(a, nullptr);
    return drakes_fail_or(res, Run{{farr("gradient", g.down(), Tol{})}, ""});
  }
};

struct KlData {
  LpData z, old;
  std::vector<uint8_t> mask;
  std::vector<float> mc, go;
};
struct DrakesKlRow {
  using Case = LpCase;
  std::vector<Case> cases(Ctx& ctx) const { return lp_cases(ctx, 2, false); }
  std::string label(const Case& c) const { return lp_label(c, c.variant == 0 ? "both grads" : "mask, per-row mc"); }
  KlData data(const Case& c) const {
    LpShape o = *c.s;
    o.seed += 101, o.ninf = 0;
    KlData d{lp_data(*c.s, c.dtype), lp_data(o, c.dtype), {}, {}, {}};
    const int64_t n = c.s->n;
    d.mask.resize(n), d.mc.resize(n), d.go.resize(n);
    for (int64_t r = 0; r < n; ++r) {
      d.mask[r] = r % 3 != 1;
      d.mc[r] = static_cast<float>(0.05 + 0.9 * unif(c.s->seed + 43, r));
      d.go[r] = normal(c.s->seed + 47, r);
    }
    return d;
  }
  bool det(const Case&) const { return true; }
  Run cpu(const Case& c, const KlData& d) const {
    const int64_t n = c.s->n, v = c.s->v;
    rk::GklCall k;
    k.logits = rk::LogitsView{d.z.z.data(), static_cast<rk::DType>(c.dtype), n, v};
    k.old = rk::LogitsView{d.old.z.data(), static_cast<rk::DType>(c.dtype), n, v};
    std::vector<float> kl(n), g(static_cast<size_t>(n * v)), go(static_cast<size_t>(n * v));
    k.kl = kl.data(), k.grad = g.data();
    if (c.variant == 0) k.move_chance = 0.3, k.grad_old = go.data();
    else k.mask = d.mask.data(), k.move_chance_rows = d.mc.data(), k.grad_rows = d.go.data();
    Run r;
    const rk::Status st = rk::drakes_kl(k);
    if (!st.ok()) r.fail = status_text(st);
    r.out = {farr("kl", std::move(kl), abs_tol(1e-5, 1e-6)), farr("gradient", std::move(g), rel_tol(1e-5, 1e-6, v))};
    if (c.variant == 0) r.out.push_back(farr("oldGradient", std::move(go), rel_tol(1e-5, 1e-6, v)));
    return r;
  }
  Run cuda(const Case& c, const KlData& d) const {
    const int64_t n = c.s->n, v = c.s->v;
    DevLogits z(d.z, c.dtype, c.s->offset), zo(d.old, c.dtype, 0);
    Dev<uint8_t> mask(d.mask);
    Dev<float> mc(d.mc), gout(d.go), kl(n), g(static_cast<size_t>(n * v)), go(static_cast<size_t>(n * v));
    rkcuda::DrakesKlArgs a;
    a.logits = z.p, a.old = zo.p, a.dtype = c.dtype, a.rows = n, a.vocab = v, a.kl = kl.p, a.grad = g.p;
    if (c.variant == 0) a.move_chance = 0.3, a.grad_old = go.p;
    else a.mask = mask.p, a.move_chance_rows = mc.p, a.grad_rows = gout.p;
    const rkcuda::Result res = rkcuda::drakes_kl(a, nullptr);
    Run r{{farr("kl", kl.down(), Tol{}), farr("gradient", g.down(), Tol{})}, ""};
    if (c.variant == 0) r.out.push_back(farr("oldGradient", go.down(), Tol{}));
    return drakes_fail_or(res, std::move(r));
  }
};

// ---------------------------------------------------------------------------------------------
// The sequence ops (native/core/seq_op.h): one generic row. The layout gives the op's params (names
// and order: Op::Params is the options as doubles), slots (inputs, mask, gradients) and scalars
// (loss, metrics, mask sum); an enum option is named in the op's RK_SEQ_ROW line and walked in full.
// Other params take the values of kSeqParamValues by name (a default pair otherwise).

struct SeqEnum {
  int param, count;
  const char* const* names;
};
struct SeqSpec {
  int num_params;
  const char* const* param_names;
  const char* const* slot_names;
  const char* const* scalar_names;
  std::vector<SeqEnum> enums;
  unsigned per_row_ok;  // bit k: input k may hold one value per row
};
struct SeqParamValues {
  const char* name;
  std::vector<double> v;
};
const SeqParamValues kSeqParamValues[] = {
    {"epsilonLow", {0.2, 0.05}},
    {"epsilonHigh", {0.28, 3.0}},
    {"cliprangeValue", {0.2, 1e-3}},
    {"normalizer", {0.0, 37.0}},
    {"delta", {0.0, 1.5}},
    {"dualClip", {3.0, 1.5}},
    {"epsilon", {0.1, 0.5}},
};
const std::vector<double> kSeqDefaultValues = {0.3, 2.0};
const std::vector<double>& seq_values(const char* name) {
  for (const SeqParamValues& p : kSeqParamValues)
    if (std::strcmp(p.name, name) == 0) return p.v;
  return kSeqDefaultValues;
}

// Inputs: input 0 log-prob-like (< 0); the others half close to it (small differences, some far
// outside any clip range or beyond exp's range), half independent and signed. Masks: u8 with an
// empty row (row 1), f32 weights in [0, 2) with zeros.
struct SeqData {
  std::vector<std::vector<float>> tok, row;  // per input: (B, T) and (B)
  std::vector<uint8_t> um;
  std::vector<float> wm;
};
SeqData seq_data(int inputs, int64_t B, int64_t T, uint64_t seed) {
  SeqData d;
  const size_t n = static_cast<size_t>(B * T);
  d.tok.assign(inputs, std::vector<float>(n));
  d.row.assign(inputs, std::vector<float>(B));
  d.um.resize(n), d.wm.resize(n);
  for (size_t i = 0; i < n; ++i) {
    d.tok[0][i] = -std::fabs(normal(seed, i)) * 2.0f - 0.01f;
    for (int k = 1; k < inputs; ++k) {
      const double u = unif(seed + 10 * k, i);
      float x = d.tok[0][i] - 0.3f * normal(seed + 10 * k + 1, i);
      if (u < 0.02) x = d.tok[0][i] - 25.0f;
      else if (u < 0.04) x = d.tok[0][i] + 30.0f;
      else if (u < 0.06) x = d.tok[0][i] - 3.0f;
      else if (u < 0.5) x = 2.0f * normal(seed + 10 * k + 2, i);
      d.tok[k][i] = x;
    }
    const bool empty_row = B > 1 && static_cast<int64_t>(i) / T == 1;
    d.um[i] = empty_row ? 0 : (unif(seed + 8, i) < 0.75 ? 1 : 0);
    d.wm[i] = empty_row ? 0.0f : (unif(seed + 9, i) < 0.2 ? 0.0f : static_cast<float>(2.0 * unif(seed + 7, i)));
  }
  for (int k = 0; k < inputs; ++k)
    for (int64_t b = 0; b < B; ++b) d.row[k][b] = b % 5 == 3 ? 0.0f : normal(seed + 100 + k, b);
  return d;
}

template <typename Op>
struct SeqRow {
  using Args = rk::SeqOpArgs<Op::kInputs, Op::kGrads>;
  using CudaFn = rkcuda::Result (*)(const Args&, const typename Op::Params&, double*, void*);
  static constexpr int kScalars = rk::seq_op_scalar_count<Op>();
  SeqSpec spec;
  CudaFn fn;
  struct Case {
    int64_t B, T;
    uint64_t seed;
    std::vector<double> params;  // in the layout's order
    int mask;
    unsigned per_row;  // bit k: input k holds one value per row
  };
  std::vector<Case> cases(Ctx& ctx) const {
    struct Shape {
      int64_t B, T;
    };
    const std::vector<Shape> shapes = ctx.quick ? std::vector<Shape>{{1, 1}, {3, 17}, {4, 300}, {2, 1100}}
                                                : std::vector<Shape>{{1, 1}, {3, 17}, {4, 300}, {2, 1100}, {64, 4096}, {300, 33}};
    // The option space: every param but seqLen, the mask kind, the subsets of per-row inputs.
    std::vector<int> radix;
    for (int p = 0; p < spec.num_params; ++p) radix.push_back(std::strcmp(spec.param_names[p], "seqLen") == 0 ? 1 : values(p));
    std::vector<unsigned> subsets;
    for (unsigned s = 0; s <= spec.per_row_ok; ++s)
      if ((s & ~spec.per_row_ok) == 0) subsets.push_back(s);
    int64_t combos = kMaskKinds * static_cast<int64_t>(subsets.size());
    for (int r : radix) combos *= r;
    std::vector<Case> out;
    for (size_t s = 0; s < shapes.size(); ++s)
      for (int64_t j = 0; j < combos; ++j) {
        Case c{shapes[s].B, shapes[s].T, 700 + s, std::vector<double>(spec.num_params), 0, 0};
        int64_t x = j;
        for (int p = 0; p < spec.num_params; ++p) {
          const int v = static_cast<int>(x % radix[p]);
          x /= radix[p];
          c.params[p] = std::strcmp(spec.param_names[p], "seqLen") == 0 ? static_cast<double>(c.T) : value(p, v);
        }
        c.mask = static_cast<int>(x % kMaskKinds);
        x /= kMaskKinds;
        c.per_row = subsets[x % subsets.size()];
        out.push_back(std::move(c));
      }
    return out;
  }
  const SeqEnum* enum_of(int p) const {
    for (const SeqEnum& e : spec.enums)
      if (e.param == p) return &e;
    return nullptr;
  }
  int values(int p) const {
    const SeqEnum* e = enum_of(p);
    return e ? e->count : static_cast<int>(seq_values(spec.param_names[p]).size());
  }
  double value(int p, int v) const { return enum_of(p) ? v : seq_values(spec.param_names[p])[v]; }
  std::string label(const Case& c) const {
    std::string s = fmt("%lldx%lld", static_cast<long long>(c.B), static_cast<long long>(c.T));
    for (int p = 0; p < spec.num_params; ++p) {
      if (std::strcmp(spec.param_names[p], "seqLen") == 0) continue;
      const SeqEnum* e = enum_of(p);
      s += e ? fmt(" %s", e->names[static_cast<int>(c.params[p])]) : fmt(" %s=%g", spec.param_names[p], c.params[p]);
    }
    s += fmt(" %s", kMaskNames[c.mask]);
    for (int k = 0; k < Op::kInputs; ++k)
      if (c.per_row >> k & 1) s += fmt(" %s/row", spec.slot_names[k]);
    return s;
  }
  SeqData data(const Case& c) const { return seq_data(Op::kInputs, c.B, c.T, c.seed); }
  bool det(const Case&) const { return true; }
  static typename Op::Params params(const Case& c) {
    typename Op::Params p;
    static_assert(sizeof p % sizeof(double) == 0, "Params: doubles only");
    std::memcpy(&p, c.params.data(), sizeof p);
    return p;
  }
  // Host or device pointers of a case.
  static Args args(const Case& c, const float* const* tok, const float* const* row, const void* um, const void* wm, float* const* grad) {
    Args a;
    for (int k = 0; k < Op::kInputs; ++k) {
      a.per_token[k] = !(c.per_row >> k & 1);
      a.in[k] = a.per_token[k] ? tok[k] : row[k];
    }
    a.mask = mask_of(c.mask, um, wm);
    a.mask_kind = static_cast<rk::SeqMask>(c.mask);
    for (int k = 0; k < Op::kGrads; ++k) a.grad[k] = grad[k];
    a.B = c.B, a.T = c.T;
    return a;
  }
  Run outputs(std::vector<std::vector<float>> g, const double* sc, bool ref) const {
    Run r;
    for (int k = 0; k < Op::kGrads; ++k) r.out.push_back(farr(spec.slot_names[Op::kInputs + 1 + k], std::move(g[k]), ref ? kRel : Tol{}));
    // The scalars are double sums of the same per-row code in the same order on both backends.
    for (int s = 0; s < kScalars; ++s) r.out.push_back(darr(spec.scalar_names[s], {sc[s]}, ref ? abs_tol(1e-5, 1e-9) : Tol{}));
    return r;
  }
  Run cpu(const Case& c, const SeqData& d) const {
    const size_t n = static_cast<size_t>(c.B * c.T);
    std::vector<std::vector<float>> g(Op::kGrads, std::vector<float>(n));
    const float* tok[Op::kInputs];
    const float* row[Op::kInputs];
    float* gp[Op::kGrads > 0 ? Op::kGrads : 1];
    for (int k = 0; k < Op::kInputs; ++k) tok[k] = d.tok[k].data(), row[k] = d.row[k].data();
    for (int k = 0; k < Op::kGrads; ++k) gp[k] = g[k].data();
    double sc[kScalars];
    const rk::Status st = rk::run_seq_op<Op>(args(c, tok, row, d.um.data(), d.wm.data(), gp), params(c), sc);
    Run r = outputs(std::move(g), sc, true);
    if (!st.ok()) r.fail = status_text(st);
    return r;
  }
  Run cuda(const Case& c, const SeqData& d) const {
    const size_t n = static_cast<size_t>(c.B * c.T);
    std::deque<Dev<float>> tok, row, grad;
    const float* tp[Op::kInputs];
    const float* rp[Op::kInputs];
    float* gp[Op::kGrads > 0 ? Op::kGrads : 1];
    for (int k = 0; k < Op::kInputs; ++k) {
      tok.emplace_back(d.tok[k]), row.emplace_back(d.row[k]);
      tp[k] = tok.back().p, rp[k] = row.back().p;
    }
    for (int k = 0; k < Op::kGrads; ++k) grad.emplace_back(n), gp[k] = grad.back().p;
    Dev<uint8_t> um(d.um);
    Dev<float> wm(d.wm);
    double sc[kScalars];
    for (double& x : sc) x = NAN;  // host scalars, poisoned too
    const rkcuda::Result res = fn(args(c, tp, rp, um.p, wm.p, gp), params(c), sc, nullptr);
    std::vector<std::vector<float>> g;
    for (int k = 0; k < Op::kGrads; ++k) g.push_back(grad[k].down());
    Run r = outputs(std::move(g), sc, false);
    if (!res.ok()) r.fail = result_text(res);
    return r;
  }
  // A negative and a NaN f32 weight: the CPU's BadIndex and the device's kBadTarget (where "mask")
  // at the first; B = 0: zero scalars; T = 0 refused by both.
  bool edges(const char* op) const {
    Case c{3, 50, 9, std::vector<double>(spec.num_params), 2, 0};
    for (int p = 0; p < spec.num_params; ++p)
      c.params[p] = std::strcmp(spec.param_names[p], "seqLen") == 0 ? 50.0 : value(p, 0);
    SeqData d = data(c);
    d.wm[60] = -1.0f;
    d.wm[90] = NAN;
    const Run ref = cpu(c, d);
    Line line;
    line.flag("CPU report", ref.fail == status_text(rk::Status{rk::Status::BadIndex, 60, 0}));
    std::deque<Dev<float>> tok;
    const float* tp[Op::kInputs];
    for (int k = 0; k < Op::kInputs; ++k) tok.emplace_back(d.tok[k]), tp[k] = tok.back().p;
    Dev<float> wm(d.wm), g(d.wm.size());
    float* gp[Op::kGrads > 0 ? Op::kGrads : 1];
    for (float*& x : gp) x = g.p;
    double sc[kScalars];
    rkcuda::Result r = fn(args(c, tp, tp, nullptr, wm.p, gp), params(c), sc, nullptr);
    line.flag("device report", r.code == rkcuda::kBadTarget && r.index == 60 && std::strcmp(r.where, "mask") == 0);
    c.B = 0;
    for (double& x : sc) x = NAN;
    r = fn(args(c, tp, tp, nullptr, wm.p, gp), params(c), sc, nullptr);
    bool zeros = r.ok();
    for (double x : sc) zeros = zeros && x == 0.0;
    line.flag("B=0", zeros);
    c.B = 3, c.T = 0;
    line.flag("T=0 refused", fn(args(c, tp, tp, nullptr, wm.p, gp), params(c), sc, nullptr).code == rkcuda::kBadArgument &&
                                 !cpu(c, d).fail.empty());
    CK(cudaDeviceSynchronize());
    return line.print(op, "bad mask weights / B=0 / T=0");
  }
};

#define RK_SEQ_ENUM(op, opt) SeqEnum{rkl::op::param::opt, rkl::op::opt##_code::kCount, rkl::op::k_##opt##_names}
#define RK_SEQ_SPEC(op, Type, per_row, ...)                                                                     \
  SeqRow<rk::Type> {                                                                                            \
    SeqSpec{rkl::op::param::kCount, rkl::op::kParamNames, rkl::op::kSlotNames, rkl::op::kScalarNames, {__VA_ARGS__}, \
            per_row},                                                                                           \
        rkcuda::seq_##op                                                                                        \
  }
// One kOps row per sequence op: the op's layout name, its core struct (native/core/ops), the inputs
// that may hold one value per row (bit k: input k), then its enum options.
#define RK_SEQ_ROW(op, Type, per_row, ...)                                                                        \
  {#op,                                                                                                           \
   [](Ctx& c, Tally& t) {                                                                                         \
     static_assert(sizeof(rk::Type::Params) == sizeof(double) * rkl::op::param::kCount, #op ": Params");          \
     static_assert(rkl::op::scalar::kCount == rk::seq_op_scalar_count<rk::Type>(), #op ": scalars");             \
     run_cases(#op, RK_SEQ_SPEC(op, Type, per_row, __VA_ARGS__), c, t);                                            \
   },                                                                                                             \
   [](Ctx&, Tally& t) { t.add(RK_SEQ_SPEC(op, Type, per_row, __VA_ARGS__).edges(#op)); }},

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// policyLossFromLogits: (B T, V) logits of every dtype, policyLoss' option walk (PolicyLoss::params,
// PolicyLoss::inputs), f32 and bf16 gradients, in place (f32 / f32 and bf16 / bf16), GSPO's two
// passes, rows split like tokenLogprobs' (V >= 32768 with few rows). Against the CPU kernel; and on
// the device itself: logprobs / entropy equal token_logprobs_forward's bit for bit at every row read,
// and the metrics equal policy_loss' on those log-probs bit for bit.

struct PlfCase {
  int64_t B, T, V;
  int dtype, j;
  bool bf16, in_place;
  int offset;
  double ninf, ignore;
  uint64_t seed;
};
struct PlfData {
  LpData z;        // logits and targets
  PolicyData pol;  // lp / ent: the CPU's; old, ref: lp minus make_policy's log-ratios
};

struct PolicyLossFromLogits {
  using Case = PlfCase;
  static float tau(const Case& c) { return c.j % 4 == 3 ? 0.7f : 1.0f; }
  // The entropy is computed with an entropy term, and without one for j % 4 == 1 (returnEntropy).
  static bool want_h(const Case& c) { return PolicyLoss::with_ent(c.j) || c.j % 4 == 1; }
  static PolicyLoss::Case pcase(const Case& c) { return PolicyLoss::Case{c.B, c.T, c.seed, c.j, false}; }
  std::vector<Case> cases(Ctx& ctx) const {
    std::vector<Case> out;
    auto add = [&](Case c) {
      if (ctx.fits(c.B * c.T * c.V)) out.push_back(c);
    };
    // Every variant and aggregation (j < 20) on V = 1001, dtypes and gradient dtypes in turn.
    for (int j = 0; j < 20; ++j) add({3, 5, 1001, j % 3, j, (j / 3) % 2 == 1, false, j % 2, 0.05, 0.15, 500u + j});
    // In place: f32 over f32, bf16 over bf16; GSPO (j % 5 == 1) among them.
    for (int j : {0, 1, 6, 11}) add({2, 7, 4097, rkcuda::kF32, j, false, true, 1, 0.02, 0.1, 600u + j});
    for (int j : {2, 3, 21}) add({2, 7, 4097, rkcuda::kBF16, j, true, true, 0, 0.02, 0.1, 610u + j});
    // One row, one token; V = 1.
    add({1, 1, 4097, rkcuda::kF32, 5, false, false, 0, 0.0, 0.0, 620});
    add({1, 1, 1, rkcuda::kBF16, 7, true, false, 0, 0.0, 0.0, 621});
    // Split rows (logprobs_row_splits > 1): the block walks tokenLogprobs' splits.
    add({1, 2, 40000, rkcuda::kF32, 0, false, false, 1, 0.01, 0.0, 630});
    add({1, 2, 40000, rkcuda::kBF16, 1, true, false, 0, 0.01, 0.0, 631});
    add({2, 2, 33001, rkcuda::kF16, 6, false, false, 3, 0.0, 0.0, 632});
    if (!ctx.quick) {
      for (int j = 0; j < 40; ++j) add({16, 33, 32000, j % 3, j, j % 2 == 1, false, j % 2, 0.02, 0.1, 700u + j});
      add({4, 100, 151936, rkcuda::kBF16, 2, true, true, 0, 0.0, 0.1, 800});
      add({2, 1, 151936, rkcuda::kF32, 1, false, false, 0, 0.0, 0.0, 801});
    }
    return out;
  }
  std::string label(const Case& c) const {
    return fmt("%lldx%lld V=%lld %s->%s%s %s %s %s%s tau=%.2g splits=%d", static_cast<long long>(c.B), static_cast<long long>(c.T),
               static_cast<long long>(c.V), lp::k_dtype_names[c.dtype], c.bf16 ? "bf16" : "f32", c.in_place ? " in place" : "",
               pl::k_variant_names[c.j % PolicyLoss::kV], pl::k_aggregation_names[(c.j / PolicyLoss::kV) % PolicyLoss::kA],
               kMaskNames[c.j % kMaskKinds], want_h(c) ? (PolicyLoss::with_ent(c.j) ? " H" : " returnH") : "",
               static_cast<double>(tau(c)), rkcuda::logprobs_row_splits(c.B * c.T, c.V));
  }
  PlfData data(const Case& c) const {
    PlfData d;
    const int64_t n = c.B * c.T;
    const LpShape s{"plf", 1u << c.dtype, n, c.V, tau(c), 0.0f, 3.0f, c.ninf, c.ignore, c.offset, c.seed};
    d.z = lp_data(s, c.dtype);
    std::vector<float> lp(n), lse(n), H(n);
    const rk::LogitsView lv{d.z.z.data(), static_cast<rk::DType>(c.dtype), n, c.V};
    rk::token_logprobs_forward(lv, d.z.y.data(), tau(c), kIgn, lp.data(), lse.data(), H.data());
    d.pol = make_policy(c.B, c.T, c.seed + 77);
    for (int64_t i = 0; i < n; ++i) {
      const float dd = d.pol.lp[i] - d.pol.old[i], kd = d.pol.lp[i] - d.pol.ref[i];
      d.pol.lp[i] = lp[i];
      d.pol.old[i] = lp[i] - dd;
      d.pol.ref[i] = lp[i] - kd;
      d.pol.ent[i] = H[i];
    }
    return d;
  }
  bool det(const Case& c) const { return !c.in_place; }
  // Rows the kernels read: target not ignored, mask weight not 0.
  static bool read_row(const Case& c, const PlfData& d, int64_t r) {
    if (d.z.y[r] == kIgn) return false;
    const int mk = c.j % kMaskKinds;
    if (mk == 1) return d.pol.umask[r] != 0;
    if (mk == 2) return d.pol.wmask[r] != 0.0f;
    return true;
  }
  static std::vector<float> grad_floats(const std::vector<uint8_t>& g, bool bf16) {
    const size_t n = g.size() / (bf16 ? 2 : 4);
    std::vector<float> f(n);
    if (!bf16) {
      std::memcpy(f.data(), g.data(), 4 * n);
    } else {
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, g.data() + 2 * i, 2);
        const uint32_t u = static_cast<uint32_t>(h) << 16;
        std::memcpy(&f[i], &u, 4);
      }
    }
    return f;
  }
  template <class P>
  static rk::PolicyFromLogitsArgs args(const Case& c, const void* z, const int32_t* y, const P& ptrs, void* grad, float* lp,
                                       float* H) {
    rk::PolicyFromLogitsArgs a;
    a.logits = rk::LogitsView{z, static_cast<rk::DType>(c.dtype), c.B * c.T, c.V};
    a.targets = y;
    a.temperature = tau(c);
    a.ignore_index = kIgn;
    a.policy = PolicyLoss::inputs(pcase(c), ptrs);
    a.policy.logprobs = nullptr;
    a.policy.entropy = nullptr;
    a.want_entropy = want_h(c);
    a.grad_dtype = c.bf16 ? rk::DType::BF16 : rk::DType::F32;
    a.grad = grad;
    a.logprobs = lp;
    a.entropy = want_h(c) ? H : nullptr;
    return a;
  }
  Run cpu(const Case& c, const PlfData& d) const {
    const int64_t n = c.B * c.T;
    const size_t nv = static_cast<size_t>(n * c.V), gs = c.bf16 ? 2 : 4;
    std::vector<uint8_t> zc = d.z.z, g(nv * gs);
    std::vector<float> lp(n), H(n);
    const PolicyLoss::Ptrs h{d.pol.lp.data(), d.pol.old.data(), d.pol.adv_row.data(), d.pol.adv_tok.data(), d.pol.ref.data(),
                             d.pol.ent.data(), d.pol.wmask.data(), d.pol.umask.data()};
    const rk::PolicyFromLogitsArgs a = args(c, zc.data(), d.z.y.data(), h, c.in_place ? static_cast<void*>(zc.data()) : g.data(), lp.data(), H.data());
    const rk::PolicyLossParams p = PolicyLoss::params(c.j);
    rk::PolicyLossMetrics m;
    const rk::Status st = rk::policy_loss_from_logits(a, p, &m);
    Run r;
    if (!st.ok()) r.fail = status_text(st);
    const double rt = dtype_rtol(c.dtype);
    r.out.push_back(farr("logp", lp, abs_tol(rt, 1e-6)));
    if (want_h(c)) r.out.push_back(farr("H", H, abs_tol(rt, 1e-6)));
    r.out.push_back(farr("grad", grad_floats(c.in_place ? zc : g, c.bf16), rel_tol(c.bf16 ? 1e-2 : rt, 1e-6, c.V)));
    rk::PolicyLossInputs in = PolicyLoss::inputs(pcase(c), h);
    in.entropy = PolicyLoss::with_ent(c.j) ? in.entropy : nullptr;
    r.out.push_back(darr("loss", {m.loss}, abs_tol(rt, rt * (0.1 * loss_scale(d.pol, in, p) + 1e-12))));
    r.out.push_back(darr("metrics", {m.clip_fraction, m.clip_low_fraction, m.clip_high_fraction, m.dual_clip_fraction,
                                     m.approx_kl, m.kl, m.entropy, m.token_count}, abs_tol(rt, 1e-6)));
    return r;
  }
  Run cuda(const Case& c, const PlfData& d) const {
    const int64_t n = c.B * c.T, v = c.V;
    const size_t nv = static_cast<size_t>(n * v), gs = c.bf16 ? 2 : 4;
    DevLogits z(d.z, c.dtype, c.offset);
    Dev<int32_t> y(d.z.y);
    Dev<float> old(d.pol.old), advr(d.pol.adv_row), advt(d.pol.adv_tok), ref(d.pol.ref), wm(d.pol.wmask);
    Dev<uint8_t> um(d.pol.umask), gbuf(nv * gs + 64);
    Dev<float> lp(n), H(n), lp_sep(n), lse_sep(n), H_sep(n), g1(n), g2(n);
    Dev<double> m(rkcuda::kPolicyMetricCount), m_sep(rkcuda::kPolicyMetricCount);
    const bool wh = want_h(c);
    Run r;
    // The separate device tokenLogprobs first (the in-place call overwrites the logits).
    rkcuda::LogprobsForwardArgs fw;
    fw.logits = z.p, fw.dtype = c.dtype, fw.rows = n, fw.vocab = v, fw.targets = y.p, fw.temperature = tau(c);
    fw.ignore_index = kIgn, fw.logp = lp_sep.p, fw.lse = lse_sep.p, fw.entropy = wh ? H_sep.p : nullptr;
    rkcuda::Result res = rkcuda::token_logprobs_forward(fw, nullptr);
    if (!res.ok()) r.fail = "tokenLogprobs " + result_text(res);
    void* grad = c.in_place ? static_cast<void*>(z.p) : static_cast<void*>(gbuf.p + static_cast<size_t>(c.offset) * gs);
    const PolicyLoss::Ptrs dp{nullptr, old.p, advr.p, advt.p, ref.p, nullptr, wm.p, um.p};
    const rk::PolicyFromLogitsArgs a = args(c, z.p, y.p, dp, grad, lp.p, H.p);
    const rk::PolicyLossParams p = PolicyLoss::params(c.j);
    res = rkcuda::policy_loss_from_logits(a, p, m.p, nullptr);
    if (!res.ok()) r.fail = result_text(res);
    std::vector<uint8_t> gh(nv * gs);
    CK(cudaMemcpy(gh.data(), grad, nv * gs, cudaMemcpyDeviceToHost));
    const std::vector<float> lph = lp.down(), Hh = H.down(), lps = lp_sep.down(), Hs = H_sep.down();
    // On the device: the log-probs are tokenLogprobs', the metrics policyLoss' on them, bit for bit.
    for (int64_t i = 0; i < n && r.fail.empty(); ++i) {
      if (!read_row(c, d, i)) {
        if (lph[i] != 0.0f || (wh && Hh[i] != 0.0f)) r.fail = fmt("row %lld not read: logp/H not 0", static_cast<long long>(i));
        continue;
      }
      if (std::memcmp(&lph[i], &lps[i], 4) != 0 || (wh && std::memcmp(&Hh[i], &Hs[i], 4) != 0))
        r.fail = fmt("row %lld: logp/H differ from tokenLogprobs' bits", static_cast<long long>(i));
    }
    rkcuda::PolicyLossArgs pa;
    pa.in = a.policy;
    pa.in.logprobs = lp.p;
    pa.in.entropy = wh ? H.p : nullptr;
    pa.params = p;
    pa.grad_logprobs = g1.p;
    pa.grad_entropy = wh ? g2.p : nullptr;
    pa.metrics = m_sep.p;
    res = rkcuda::policy_loss(pa, nullptr);
    const std::vector<double> gm = m.down(), gms = m_sep.down();
    if (r.fail.empty() && (!res.ok() || std::memcmp(gm.data(), gms.data(), 8 * gm.size()) != 0))
      r.fail = "metrics differ from policyLoss' bits";
    r.out.push_back(farr("logp", lph, Tol{}));
    if (wh) r.out.push_back(farr("H", Hh, Tol{}));
    r.out.push_back(farr("grad", grad_floats(gh, c.bf16), Tol{}));
    r.out.push_back(darr("loss", {gm[0]}, Tol{}));
    r.out.push_back(darr("metrics", std::vector<double>(gm.begin() + 1, gm.begin() + 9), Tol{}));
    return r;
  }
};

// A bad target and a bad f32 mask weight: kBadTarget naming each (targets first), NaN rows; the
// caller-slot forms; B = 0 (zero metrics); partly overlapping gradient refused.
void policy_logits_edges(Ctx&, Tally& t) {
  const int64_t B = 2, T = 5, V = 1001, n = B * T;
  const LpShape s{"plf edges", kF32b, n, V, 1.0f, 0.0f, 3.0f, 0.0, 0.0, 0, 91};
  LpData z = lp_data(s, rkcuda::kF32);
  PolicyData d = make_policy(B, T, 92);
  std::vector<int32_t> yb = z.y;
  yb[7] = static_cast<int32_t>(V);
  d.wmask[3] = -1.0f;
  Dev<uint8_t> zl(z.z);
  Dev<int32_t> y(z.y), ybad(yb);
  Dev<float> old(d.old), adv(d.adv_row), wm(d.wmask), lp(n), gr(static_cast<size_t>(n * V));
  Dev<double> m(rkcuda::kPolicyMetricCount);
  rk::PolicyFromLogitsArgs a;
  a.logits = rk::LogitsView{zl.p, rk::DType::F32, n, V};
  a.targets = ybad.p;
  a.policy.old_logprobs = old.p, a.policy.advantages = adv.p, a.policy.mask = wm.p;
  a.policy.mask_kind = rk::MaskKind::F32;
  a.policy.batch = B, a.policy.seq_len = T;
  a.grad = gr.p, a.logprobs = lp.p;
  rk::PolicyLossParams p;
  Line line;
  rkcuda::Result r = rkcuda::policy_loss_from_logits(a, p, m.p, nullptr);
  line.flag("bad target first", r.code == rkcuda::kBadTarget && std::strcmp(r.where, "targets") == 0 && r.index == 7 && r.value == V);
  const std::vector<float> lph = lp.down(), gh = gr.down();
  line.flag("NaN row", std::isnan(lph[7]) && std::isnan(gh[7 * V]) && std::isnan(gh[8 * V - 1]));
  a.targets = y.p;
  r = rkcuda::policy_loss_from_logits(a, p, m.p, nullptr);
  line.flag("bad weight", r.code == rkcuda::kBadTarget && std::strcmp(r.where, "mask") == 0 && r.index == 3);
  int64_t first = 0;  // a row the kernel reads (weight > 0, batch row 0)
  while (first < T - 1 && !(d.wmask[first] > 0.0f)) ++first;
  line.flag("NaN metrics", std::isnan(m.down()[0]) && std::isnan(gr.down()[first * V]));
  Dev<unsigned long long> s1(1), s2(1);
  rkcuda::bad_row_reset(s1.p, nullptr);
  rkcuda::bad_row_reset(s2.p, nullptr);
  a.targets = ybad.p;
  r = rkcuda::policy_loss_from_logits(a, p, m.p, nullptr, s1.p, s2.p);
  const rkcuda::Result r1 = rkcuda::bad_row_read(s1.p, ybad.p, nullptr), r2 = rkcuda::bad_row_read(s2.p, nullptr, nullptr);
  line.flag("slots", r.ok() && r1.code == rkcuda::kBadTarget && r1.index == 7 && r2.code == rkcuda::kBadTarget && r2.index == 3);
  a.policy.batch = 0;
  a.logits.rows = 0;
  r = rkcuda::policy_loss_from_logits(a, p, m.p, nullptr);
  bool zeros = r.ok();
  for (double x : m.down()) zeros = zeros && x == 0.0;
  line.flag("B=0", zeros);
  a.policy.batch = B;
  a.logits.rows = n;
  a.grad = reinterpret_cast<float*>(zl.p) + 1;
  line.flag("overlap refused", rkcuda::policy_loss_from_logits(a, p, m.p, nullptr).code == rkcuda::kBadArgument);
  CK(cudaDeviceSynchronize());
  t.add(line.print("policyLossFromLogits", "bad targets / weights / arguments"));
}

// The table: one row per exported op.

template <class R>
void cases_of(const char* op, Ctx& c, Tally& t) {
  run_cases(op, R{}, c, t);
}
#define RK_ROW(op, R, edges) {#op, [](Ctx& c, Tally& t) { cases_of<R>(#op, c, t); }, edges},

struct OpRow {
  const char* op;
  void (*cases)(Ctx&, Tally&);
  void (*edges)(Ctx&, Tally&);
};
const OpRow kOps[] = {
    RK_ROW(tokenLogprobs, TokenLogprobs, logprobs_edges)
    RK_ROW(tokenLogprobsBackward, TokenLogprobsBackward, nullptr)
    RK_ROW(vocabDivergence, VocabDivergence, divergence_edges)
    RK_ROW(policyLoss, PolicyLoss, policy_edges)
    RK_ROW(klPenalty, KlPenalty, nullptr)
    RK_ROW(preferenceLoss, PreferenceLoss, preference_edges)
    RK_ROW(ktoLoss, KtoLoss, nullptr)
    RK_ROW(tokenWeightedDpoLoss, TokenWeightedDpoLoss, nullptr)
    RK_ROW(ldDpoLogps, LdDpoLogps, nullptr)
    RK_ROW(groupAdvantages, GroupAdvantages, advantages_edges)
    RK_ROW(ensembleRewards, EnsembleRewards, nullptr)
    RK_ROW(gae, Gae, nullptr)
    RK_ROW(discountedReturns, DiscountedReturns, nullptr)
    RK_ROW(maskedWhiten, MaskedWhiten, nullptr)
    RK_ROW(tokenAdvantages, TokenAdvantages, token_edges)
    RK_ROW(klRewards, KlRewards, nullptr)
    RK_ROW(gatedRewards, GatedRewards, nullptr)
    RK_ROW(discountedCumsum, DiscountedCumsum, nullptr)
    RK_ROW(lagrangianMix, LagrangianMix, nullptr)
    RK_SEQ_ROW(geoMeanPolicyLoss, GeoMeanPolicyLossOp, 0x4u)
    RK_SEQ_ROW(valueLoss, ValueLossOp, 0x0u, RK_SEQ_ENUM(valueLoss, aggregation))
    RK_ROW(rolloutCorrection, RolloutCorrection, nullptr)
    RK_ROW(maskTruncatedCompletions, MaskTruncatedCompletions, nullptr)
    RK_ROW(gumbelSoftmax, GumbelSoftmaxRow, nullptr)
    RK_ROW(gumbelSoftmaxBackward, GumbelSoftmaxBackwardRow, nullptr)
    RK_ROW(drakesKl, DrakesKlRow, nullptr)
    RK_SEQ_ROW(reinforcePolicyLoss, ReinforcePolicyLossOp, 0x4u, RK_SEQ_ENUM(reinforcePolicyLoss, aggregation))
    RK_SEQ_ROW(luspoPolicyLoss, LuspoPolicyLossOp, 0x4u)
    RK_SEQ_ROW(vespoPolicyLoss, VespoPolicyLossOp, 0x4u, RK_SEQ_ENUM(vespoPolicyLoss, aggregation))
    RK_ROW(copoAdvantages, CopoAdvantages, nullptr)
    RK_SEQ_ROW(copoPolicyLoss, CopoPolicyLossOp, 0x1Cu, RK_SEQ_ENUM(copoPolicyLoss, aggregation))
    RK_ROW(paretoFront, ParetoFrontRow, nullptr)
    RK_ROW(rewardWeightUpdate, RewardWeightUpdateRow, nullptr)
    RK_ROW(trajectoryBalanceLoss, GfnRowOf<0>, nullptr)
    RK_ROW(orderPreservingLoss, GfnRowOf<1>, nullptr)
    RK_ROW(hypervolumeMetaReward, HypervolumeMetaRewardRow, hv_edges)
    RK_SEQ_ROW(d3poLoss, D3poLossOp, 0x30u)
    RK_SEQ_ROW(prdpLoss, PrdpLossOp, 0x30u, RK_SEQ_ENUM(prdpLoss, stepReduction))
    RK_ROW(preferenceStrengthLoss, PreferenceStrengthLoss, nullptr)
    RK_ROW(p3oLoss, P3oLoss, nullptr)
    RK_ROW(policyLossFromLogits, PolicyLossFromLogits, policy_logits_edges)
};

bool selected(const char* list, const char* op) {
  if (!list || !*list) return true;
  const std::string s = std::string(",") + list + ",";
  return s.find(std::string(",") + op + ",") != std::string::npos;
}

}  // namespace

int cuda_check() {
  if (device_or_explain() == 0) return 0;
  Ctx ctx;
  const char* lim = std::getenv("RK_CUDA_CHECK_MAX_ELEMS");
  if (lim) ctx.max_elems = std::atoll(lim);
  ctx.quick = ctx.max_elems < 1000000;
  const char* only = std::getenv("RK_CUDA_CHECK_OPS");
  Tally t;
  int rows = 0;
  for (const OpRow& row : kOps) {
    if (!selected(only, row.op)) continue;
    ++rows;
    const int before = t.passed + t.failed, failed_before = t.failed;
    row.cases(ctx, t);
    if (row.edges) row.edges(ctx, t);
    std::printf("%s: %d cases, %d failed\n", row.op, t.passed + t.failed - before, t.failed - failed_before);
  }
  if (ctx.skipped) std::printf("(%d larger shapes skipped: RK_CUDA_CHECK_MAX_ELEMS=%s)\n", ctx.skipped, lim);
  std::printf("(%d ops)\n", rows);
  std::printf("%d passed, %d failed\n", t.passed, t.failed);
  return t.failed || rows == 0 ? 1 : 0;
}

}  // namespace rkdriver
#endif  // RK_WITH_CUDA
