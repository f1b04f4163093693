// rk_driver cuda-check, policy family: cuda/policy.cu (policy_loss, kl_penalty) against the CPU
// kernels native/kernels/policy.cc on awkward shapes, every variant / aggregation / mask kind / KL
// estimator, entropy, dual clip, delta, normalizer, per-token advantages, masks with empty rows,
// extreme log-ratios; outputs poisoned with NaN first, each call run twice (bit-identical), and the
// bad-mask-weight reports. Only compiled with RK_WITH_CUDA.
#if defined(RK_WITH_CUDA)
#include "cuda_check_util.h"
#include "cuda_driver.h"

#include "../../cuda/policy.h"
#include "../kernels/policy.h"

namespace rkdriver {
namespace {
using namespace smallcheck;

struct PolicyData {
  int64_t B, T;
  std::vector<float> lp, old, adv_row, adv_tok, ref, ent, wmask;
  std::vector<uint8_t> umask;
};

PolicyData make_policy(int64_t B, int64_t T, uint64_t seed) {
  PolicyData d;
  d.B = B;
  d.T = T;
  const size_t n = static_cast<size_t>(B * T);
  d.lp.resize(n), d.old.resize(n), d.adv_tok.resize(n), d.ref.resize(n), d.ent.resize(n), d.wmask.resize(n), d.umask.resize(n);
  d.adv_row.resize(B);
  for (size_t i = 0; i < n; ++i) {
    d.lp[i] = -std::fabs(gauss(seed, i)) * 2.0f - 0.01f;
    float dd = 0.3f * gauss(seed + 1, i);
    const double u = unif(seed + 2, i);
    if (u < 0.02) dd = 25.0f;        // beyond the [-20, 20] clamp
    else if (u < 0.04) dd = -30.0f;
    else if (u < 0.06) dd = 3.0f;    // far outside the clip range
    if (B > 2 && static_cast<int64_t>(i) / T == 2) dd = 12.0f;  // GSPO: log s above its cap of 10
    d.old[i] = d.lp[i] - dd;
    d.adv_tok[i] = gauss(seed + 3, i);
    float kd = 0.4f * gauss(seed + 4, i);
    const double v = unif(seed + 5, i);
    if (v < 0.02) kd = 25.0f;
    else if (v < 0.04) kd = -25.0f;
    else if (v < 0.06) kd = 1e-4f * gauss(seed + 6, i);  // k3's series range
    d.ref[i] = d.lp[i] - kd;
    d.ent[i] = std::fabs(gauss(seed + 7, i)) * 3.0f;
    const int64_t row = static_cast<int64_t>(i) / T;
    const bool empty_row = B > 1 && row == 1;
    d.umask[i] = empty_row ? 0 : (unif(seed + 8, i) < 0.75 ? 1 : 0);
    d.wmask[i] = empty_row ? 0.0f : (unif(seed + 9, i) < 0.2 ? 0.0f : static_cast<float>(2.0 * unif(seed + 10, i)));
  }
  for (int64_t b = 0; b < B; ++b) d.adv_row[b] = b % 5 == 3 ? 0.0f : gauss(seed + 11, b);
  return d;
}

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

int policy_case(const PolicyData& d, int j, const char* shape) {
  const int64_t B = d.B, T = d.T;
  const size_t n = static_cast<size_t>(B * T);
  Dev<float> lp(d.lp), old(d.old), advr(d.adv_row), advt(d.adv_tok), ref(d.ref), ent(d.ent), wm(d.wmask);
  Dev<uint8_t> um(d.umask);
  rk::PolicyLossParams p;
  p.variant = static_cast<rk::PolicyVariant>(j % 5);
  p.aggregation = static_cast<rk::LossAggregation>((j / 5) % 4);
  p.epsilon_low = 0.2;
  p.epsilon_high = p.variant == rk::PolicyVariant::Cispo ? 1.5 + 0.5 * (j % 3) : 0.28;
  p.dual_clip = j % 2 ? 3.0 : 0.0;
  p.delta = j % 3 == 2 ? 2.5 : 0.0;
  p.normalizer = j % 7 == 4 ? 37.0 : 0.0;
  p.beta = 0.05 + 0.01 * (j % 4);
  p.kl = static_cast<rk::KlEstimator>((j * 3 + j / 5) % 5);
  p.entropy_coef = j % 3 == 1 ? 0.0 : 0.01;
  p.sapo_tau_pos = 1.0 + 0.1 * (j % 2);
  p.sapo_tau_neg = 1.05;
  rk::PolicyLossInputs in;
  in.batch = B;
  in.seq_len = T;
  in.advantages_per_token = j % 2 == 1;
  in.mask_kind = static_cast<rk::MaskKind>(j % 3);
  const bool with_ref = j % 4 != 3, with_ent = j % 3 != 1;
  auto fill = [&](rk::PolicyLossInputs& x, bool host) {
    x.logprobs = host ? d.lp.data() : lp.p;
    x.old_logprobs = host ? d.old.data() : old.p;
    x.advantages = in.advantages_per_token ? (host ? d.adv_tok.data() : advt.p) : (host ? d.adv_row.data() : advr.p);
    x.mask = in.mask_kind == rk::MaskKind::U8 ? static_cast<const void*>(host ? d.umask.data() : um.p)
             : in.mask_kind == rk::MaskKind::F32 ? static_cast<const void*>(host ? d.wmask.data() : wm.p)
                                                 : nullptr;
    x.ref_logprobs = with_ref ? (host ? d.ref.data() : ref.p) : nullptr;
    x.entropy = with_ent ? (host ? d.ent.data() : ent.p) : nullptr;
  };
  rk::PolicyLossInputs hin = in;
  fill(hin, true);
  std::vector<float> g(n), ge(n);
  rk::PolicyLossMetrics m;
  const rk::Status st = rk::policy_loss(hin, p, g.data(), with_ent ? ge.data() : nullptr, &m);
  char what[128];
  static const char* vn[] = {"ppo", "gspo", "cispo", "sapo", "gpg"};
  static const char* an[] = {"token-mean", "seq-mean-tm", "seq-mean-ts", "seq-mean-tsn"};
  static const char* mn[] = {"nomask", "u8", "f32"};
  static const char* kn[] = {"k1", "k2", "k3", "abs", "k3+"};
  std::snprintf(what, sizeof what, "%s %s %s %s %s%s%s%s", shape, vn[j % 5], an[(j / 5) % 4], mn[j % 3],
                with_ref ? kn[static_cast<int>(p.kl)] : "noref", with_ent ? " H" : "", p.dual_clip > 0 ? " dual" : "",
                in.advantages_per_token ? " tokA" : "");
  Line line;
  if (!st.ok()) {
    line.flag("CPU status", false);
    return line.print("policy", what);
  }
  rkcuda::PolicyLossArgs a;
  a.in = in;
  fill(a.in, false);
  a.params = p;
  Dev<float> dg(n), dge(n);
  Dev<double> dm(rkcuda::kPolicyMetricCount);
  a.grad_logprobs = dg.p;
  a.grad_entropy = with_ent ? dge.p : nullptr;
  a.metrics = dm.p;
  rkcuda::Result r = rkcuda::policy_loss(a, nullptr);
  CK(cudaDeviceSynchronize());
  if (!r.ok()) {
    line.flag("CUDA status", false);
    return line.print("policy", what);
  }
  const std::vector<float> gg = dg.down(), gge = dge.down();
  const std::vector<double> gm = dm.down();
  line.add("grad", worst_rel(gg.data(), g.data(), n, kFloor * max_abs(g)));
  if (with_ent) line.add("gradH", worst_rel(gge.data(), ge.data(), n, kFloor * max_abs(ge)));
  const double lscale = loss_scale(d, hin, p);
  line.add("loss", worst_rel(&gm[0], &m.loss, 1, kFloor * lscale + 1e-12));
  const double mref[8] = {m.clip_fraction, m.clip_low_fraction, m.clip_high_fraction, m.dual_clip_fraction,
                          m.approx_kl, m.kl, m.entropy, m.token_count};
  line.add("metrics", worst_rel(&gm[1], mref, 8, 1e-2));
  if (std::strncmp(shape, "NaN", 3) == 0) {  // garbage under the mask: everything stays finite
    bool fin = std::isfinite(gm[0]);
    for (float x : gg) fin = fin && std::isfinite(x);
    line.flag("finite", fin);
  }
  // again: bit-identical
  dg.poison();
  dm.poison();
  r = rkcuda::policy_loss(a, nullptr);
  CK(cudaDeviceSynchronize());
  line.flag("det", r.ok() && same_bits(dg.down().data(), gg.data(), n * 4) && same_bits(dm.down().data(), gm.data(), 72));
  return line.print("policy", what);
}

int kl_case(int64_t n, int est, int mkind, uint64_t seed) {
  PolicyData d = make_policy(1, n, seed);
  Dev<float> lp(d.lp), ref(d.ref), wm(d.wmask), kl(n), gr(n);
  Dev<uint8_t> um(d.umask);
  Dev<double> mean(1);
  const void* hm = mkind == 1 ? static_cast<const void*>(d.umask.data()) : mkind == 2 ? static_cast<const void*>(d.wmask.data()) : nullptr;
  std::vector<float> k(n), g(n);
  double mref = 0;
  rk::kl_penalty(d.lp.data(), d.ref.data(), n, hm, static_cast<rk::MaskKind>(mkind), static_cast<rk::KlEstimator>(est), k.data(), g.data(), &mref);
  rkcuda::KlPenaltyArgs a;
  a.logprobs = lp.p;
  a.ref_logprobs = ref.p;
  a.n = n;
  a.mask = mkind == 1 ? static_cast<const void*>(um.p) : mkind == 2 ? static_cast<const void*>(wm.p) : nullptr;
  a.mask_kind = static_cast<rk::MaskKind>(mkind);
  a.estimator = static_cast<rk::KlEstimator>(est);
  a.kl = kl.p;
  a.grad = gr.p;
  a.mean = mean.p;
  Line line;
  const rkcuda::Result r = rkcuda::kl_penalty(a, nullptr);
  CK(cudaDeviceSynchronize());
  line.flag("status", r.ok());
  line.add("kl", worst_rel(kl.down().data(), k.data(), n, kFloor * max_abs(k)));
  line.add("grad", worst_rel(gr.down().data(), g.data(), n, kFloor * max_abs(g)));
  line.add("mean", worst_rel(mean.down().data(), &mref, 1, 1e-9 + kFloor * max_abs(k)));
  static const char* kn[] = {"k1", "k2", "k3", "abs", "k3+"};
  static const char* mn[] = {"nomask", "u8", "f32"};
  char what[96];
  std::snprintf(what, sizeof what, "klPenalty n=%lld %s %s", static_cast<long long>(n), kn[est], mn[mkind]);
  return line.print("policy", what);
}

// A negative and a NaN mask weight: kBadTarget at the first, NaN outputs; async slot form too.
int bad_mask_case() {
  PolicyData d = make_policy(3, 700, 77);
  d.wmask[1500] = -1.0f;
  d.wmask[1900] = NAN;
  Dev<float> lp(d.lp), old(d.old), adv(d.adv_row), wm(d.wmask), g(d.lp.size());
  Dev<double> m(rkcuda::kPolicyMetricCount);
  rkcuda::PolicyLossArgs a;
  a.in.logprobs = lp.p;
  a.in.old_logprobs = old.p;
  a.in.advantages = adv.p;
  a.in.mask = wm.p;
  a.in.mask_kind = rk::MaskKind::F32;
  a.in.batch = 3;
  a.in.seq_len = 700;
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
  k.logprobs = lp.p;
  k.ref_logprobs = old.p;
  k.n = 2100;
  k.mask = wm.p;
  k.mask_kind = rk::MaskKind::F32;
  k.kl = g.p;
  r = rkcuda::kl_penalty(k, nullptr);
  line.flag("klPenalty report", r.code == rkcuda::kBadTarget && r.index == 1500);
  a.bad_index = nullptr;
  a.in.mask_kind = rk::MaskKind::None;
  a.in.batch = 0;  // an empty batch: zero metrics, nothing else touched
  r = rkcuda::policy_loss(a, nullptr);
  const std::vector<double> m0 = m.down();
  bool zeros = r.ok();
  for (double x : m0) zeros = zeros && x == 0.0;
  line.flag("B=0", zeros);
  a.in.batch = 3;
  a.in.seq_len = 0;
  line.flag("bad seq_len", rkcuda::policy_loss(a, nullptr).code == rkcuda::kBadArgument);
  CK(cudaDeviceSynchronize());
  return line.print("policy", "bad mask weights / arguments");
}

// NaN garbage under mask = 0 (both masks) must not reach the loss, the metrics or the gradient.
int garbage_cases(int64_t B, int64_t T) {
  PolicyData d = make_policy(B, T, 4242);
  for (size_t i = 0; i < d.lp.size(); ++i)
    if (!d.umask[i] && d.wmask[i] == 0.0f) d.lp[i] = d.old[i] = d.ref[i] = d.ent[i] = NAN;
  int failed = 0;
  char shape[64];
  std::snprintf(shape, sizeof shape, "NaN-under-mask %lldx%lld", static_cast<long long>(B), static_cast<long long>(T));
  const int js[] = {1, 4, 7, 10, 13, 2, 5, 8, 11, 14};  // u8 then f32 masks, every variant
  for (int j : js) failed += policy_case(d, j, shape);
  return failed;
}

}  // namespace

int cuda_check_policy(bool quick) {
  int failed = 0;
  struct Shape {
    int64_t B, T;
    int configs;
  };
  const Shape shapes_quick[] = {{1, 1, 5}, {3, 17, 20}, {2, 1100, 10}};
  const Shape shapes_full[] = {{1, 1, 5}, {3, 17, 40}, {5, 1031, 40}, {7, 2500, 40}, {64, 4096, 20}, {300, 33, 20}};
  const Shape* shapes = quick ? shapes_quick : shapes_full;
  const int ns = quick ? 3 : 6;
  for (int s = 0; s < ns; ++s) {
    const PolicyData d = make_policy(shapes[s].B, shapes[s].T, 1000 + s);
    char shape[48];
    std::snprintf(shape, sizeof shape, "%lldx%lld", static_cast<long long>(shapes[s].B), static_cast<long long>(shapes[s].T));
    for (int j = 0; j < shapes[s].configs; ++j) failed += policy_case(d, j, shape);
  }
  const int64_t kn[] = {1, 1000, 3001};
  for (int64_t n : kn) {
    if (quick && n > 1000) continue;
    for (int est = 0; est < 5; ++est) failed += kl_case(n, est, static_cast<int>((est + n) % 3), 50 + est);
  }
  if (!quick) failed += kl_case(1 << 20, 2, 2, 99);
  failed += quick ? garbage_cases(3, 40) : garbage_cases(9, 3000);
  failed += bad_mask_case();
  return failed;
}

}  // namespace rkdriver
#endif  // RK_WITH_CUDA

#if defined(RK_WITH_CUDA)
namespace rkdriver {
void cuda_bench_policy(void* stream) {
  using namespace smallcheck;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t B = 64, T = 4096;
  const PolicyData d = make_policy(B, T, 5);
  Dev<float> lp(d.lp), old(d.old), adv(d.adv_row), g(d.lp.size());
  Dev<uint8_t> um(d.umask);
  Dev<double> m(rkcuda::kPolicyMetricCount);
  rkcuda::PolicyLossArgs a;
  a.in.logprobs = lp.p, a.in.old_logprobs = old.p, a.in.advantages = adv.p, a.in.mask = um.p;
  a.in.mask_kind = rk::MaskKind::U8;
  a.in.batch = B, a.in.seq_len = T;
  a.grad_logprobs = g.p;
  a.metrics = m.p;
  const double ms = median_ms([&] { die_on(rkcuda::policy_loss(a, st), "policy_loss"); }, st);
  bench_line("policyLoss ppo f32 (64 x 4096, u8 mask)", ms, static_cast<double>(B * T) * 13);
}
}  // namespace rkdriver
#endif
