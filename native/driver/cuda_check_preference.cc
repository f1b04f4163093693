// rk_driver cuda-check, preference family: cuda/preference.cu (preference_loss with all fifteen
// losses and their modifiers, kto_loss, token_weighted_dpo_loss) against the CPU kernels
// native/kernels/preference.cc on awkward sizes; outputs poisoned with NaN first, each call run
// twice (bit-identical), bad lengths reported. Only compiled with RK_WITH_CUDA.
#if defined(RK_WITH_CUDA)
#include "cuda_check_util.h"
#include "cuda_driver.h"

#include "../../cuda/preference.h"
#include "../kernels/preference.h"

namespace rkdriver {
namespace {
using namespace smallcheck;

const char* const* kLossNames = rk::kPrefLossNames;  // native/core/preference.h
const char* kFdivNames[] = {"rkl", "fkl", "js", "alpha"};

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
    d.lw[i] = 1 + static_cast<int32_t>(mix(seed + i) % 300);
    d.ll[i] = 1 + static_cast<int32_t>(mix(seed * 7 + i) % 300);
    d.w[i] = -static_cast<float>(d.lw[i]) * (0.3f + 0.2f * std::fabs(gauss(seed, i)));
    d.l[i] = -static_cast<float>(d.ll[i]) * (0.3f + 0.2f * std::fabs(gauss(seed + 1, i)));
    d.rw[i] = d.w[i] + 4.0f * gauss(seed + 2, i);
    d.rl[i] = d.l[i] + 4.0f * gauss(seed + 3, i);
    if (i % 97 == 5) d.rw[i] = d.w[i] + 400.0f;  // extreme log-ratios (capped exponents)
    if (i % 89 == 7) d.rl[i] = d.l[i] - 400.0f;
    d.margin[i] = 0.5f * gauss(seed + 4, i);
    d.prob[i] = static_cast<float>(unif(seed + 5, i));
  }
  if (P > 3) d.w[3] = -1e-13f;  // orpo: average log-prob at the clamp
  return d;
}

int pref_case(const PrefData& d, int loss, int fdiv, double e, double nll, bool refs, bool bt_arrays) {
  const int64_t P = d.P;
  rk::PreferenceParams p;
  p.loss = static_cast<rk::PrefLoss>(loss);
  p.beta = loss == 14 ? 1.0 : 0.1;
  p.label_smoothing = e;
  p.gamma = 0.5;
  p.alpha = loss == 12 ? 1.0 : 0.0;
  p.tau = 0.05;
  p.margin = 0.25;
  p.fdiv = static_cast<rk::FDivergence>(fdiv);
  p.f_alpha = 0.5;
  p.nll_weight = nll;
  const bool lens = rk::preference_needs_lengths(p);
  rk::PreferenceInputs hi;
  hi.pairs = P;
  hi.chosen = d.w.data();
  hi.rejected = d.l.data();
  hi.ref_chosen = refs ? d.rw.data() : nullptr;
  hi.ref_rejected = refs ? d.rl.data() : nullptr;
  hi.chosen_len = lens ? d.lw.data() : nullptr;
  hi.rejected_len = lens ? d.ll.data() : nullptr;
  hi.margin = bt_arrays ? d.margin.data() : nullptr;
  hi.preference_prob = bt_arrays ? d.prob.data() : nullptr;
  std::vector<float> L(P), rc(P), rr(P), gc(P), gr(P);
  rk::PreferenceOutputs ho;
  ho.losses = L.data(), ho.chosen_rewards = rc.data(), ho.rejected_rewards = rr.data(), ho.grad_chosen = gc.data(),
  ho.grad_rejected = gr.data();
  const rk::Status st = rk::preference_loss(hi, p, ho);
  Dev<float> dw(d.w), dl(d.l), drw(d.rw), drl(d.rl), dmg(d.margin), dpb(d.prob);
  Dev<int32_t> dlw(d.lw), dll(d.ll);
  Dev<float> oL(P), orc(P), orr(P), ogc(P), ogr(P);
  Dev<double> sc(3);
  rkcuda::PreferenceLossArgs a;
  a.in = hi;
  a.in.chosen = dw.p;
  a.in.rejected = dl.p;
  a.in.ref_chosen = refs ? drw.p : nullptr;
  a.in.ref_rejected = refs ? drl.p : nullptr;
  a.in.chosen_len = dlw.p;  // given always: the kernel must ignore them when the loss needs none
  a.in.rejected_len = dll.p;
  a.in.margin = bt_arrays ? dmg.p : nullptr;
  a.in.preference_prob = bt_arrays ? dpb.p : nullptr;
  a.params = p;
  a.losses = oL.p, a.chosen_rewards = orc.p, a.rejected_rewards = orr.p, a.grad_chosen = ogc.p, a.grad_rejected = ogr.p;
  a.scalars = sc.p;
  char what[128];
  std::snprintf(what, sizeof what, "P=%lld %s%s%s e=%.2g nll=%.2g%s", static_cast<long long>(P), kLossNames[loss],
                loss == 0 || loss == 2 || loss == 3 ? " " : "", loss == 0 || loss == 2 || loss == 3 ? kFdivNames[fdiv] : "",
                e, nll, bt_arrays ? " arrays" : refs ? " refs" : "");
  Line line;
  rkcuda::Result r = rkcuda::preference_loss(a, nullptr);
  CK(cudaDeviceSynchronize());
  if (!st.ok() || !r.ok()) {
    line.flag("status", false);
    return line.print("preference", what);
  }
  const std::vector<float> gL = oL.down(), gc2 = ogc.down();
  const std::vector<double> gs = sc.down();
  line.add("losses", worst_rel(gL.data(), L.data(), P, kFloor * max_abs(L)));
  double wr = worst_rel(orc.down().data(), rc.data(), P, kFloor * max_abs(rc));
  wr = std::max(wr, worst_rel(orr.down().data(), rr.data(), P, kFloor * max_abs(rr)));
  line.add("rewards", wr);
  double wg = worst_rel(gc2.data(), gc.data(), P, kFloor * max_abs(gc));
  wg = std::max(wg, worst_rel(ogr.down().data(), gr.data(), P, kFloor * max_abs(gr)));
  line.add("grads", wg);
  const double ref3[3] = {ho.loss, ho.reward_accuracy, ho.reward_margin};
  line.add("scalars", worst_rel(gs.data(), ref3, 3, 1e-9 + 1e-7 * max_abs(L)));
  oL.poison();
  ogc.poison();
  sc.poison();
  r = rkcuda::preference_loss(a, nullptr);
  CK(cudaDeviceSynchronize());
  line.flag("det", r.ok() && same_bits(oL.down().data(), gL.data(), 4 * P) && same_bits(ogc.down().data(), gc2.data(), 4 * P) &&
                       same_bits(sc.down().data(), gs.data(), 24));
  return line.print("preference", what);
}

int kto_case(int64_t n, bool ref, uint64_t seed) {
  std::vector<float> lp(n), rf(n);
  std::vector<uint8_t> des(n);
  for (int64_t i = 0; i < n; ++i) {
    lp[i] = -30.0f + 5.0f * gauss(seed, i);
    rf[i] = lp[i] + 3.0f * gauss(seed + 1, i);
    des[i] = n > 3 ? (unif(seed + 2, i) < 0.6 ? 1 : 0) : 1;  // tiny: no undesirable example (NaN mean)
  }
  rk::KtoParams p;
  p.beta = 0.2;
  p.kl = 0.3;
  p.desirable_weight = 1.0;
  p.undesirable_weight = 1.33;
  std::vector<float> L(n), R(n), G(n);
  rk::KtoOutputs ho;
  ho.losses = L.data(), ho.rewards = R.data(), ho.grad = G.data();
  rk::kto_loss(n, lp.data(), ref ? rf.data() : nullptr, des.data(), p, ho);
  Dev<float> dlp(lp), drf(rf), oL(n), oR(n), oG(n);
  Dev<uint8_t> dd(des);
  Dev<double> sc(3);
  rkcuda::KtoLossArgs a;
  a.n = n;
  a.logp = dlp.p;
  a.ref = ref ? drf.p : nullptr;
  a.desirable = dd.p;
  a.params = p;
  a.losses = oL.p, a.rewards = oR.p, a.grad = oG.p, a.scalars = sc.p;
  Line line;
  line.flag("status", rkcuda::kto_loss(a, nullptr).ok());
  CK(cudaDeviceSynchronize());
  line.add("losses", worst_rel(oL.down().data(), L.data(), n, kFloor * max_abs(L)));
  line.add("rewards", worst_rel(oR.down().data(), R.data(), n, kFloor * max_abs(R)));
  line.add("grad", worst_rel(oG.down().data(), G.data(), n, kFloor * max_abs(G)));
  const double ref3[3] = {ho.loss, ho.desirable_reward_mean, ho.undesirable_reward_mean};
  line.add("scalars", worst_rel(sc.down().data(), ref3, 3, 1e-9));
  char what[64];
  std::snprintf(what, sizeof what, "kto n=%lld%s", static_cast<long long>(n), ref ? " ref" : "");
  return line.print("preference", what);
}

int tgdpo_case(int64_t B, int64_t T, bool f32, uint64_t seed) {
  const size_t n = static_cast<size_t>(B * T);
  std::vector<float> w(n), l(n), rw(n), rl(n), tw(n), tl(n), fmw(n), fml(n);
  std::vector<uint8_t> umw(n), uml(n);
  for (size_t i = 0; i < n; ++i) {
    w[i] = -std::fabs(gauss(seed, i)) * 2;
    l[i] = -std::fabs(gauss(seed + 1, i)) * 2;
    rw[i] = w[i] + 0.3f * gauss(seed + 2, i);
    rl[i] = l[i] + 0.3f * gauss(seed + 3, i);
    tw[i] = gauss(seed + 4, i);
    tl[i] = gauss(seed + 5, i);
    const int64_t row = static_cast<int64_t>(i) / std::max<int64_t>(T, 1);
    umw[i] = row == 1 ? 0 : (unif(seed + 6, i) < 0.8);
    uml[i] = unif(seed + 7, i) < 0.7;
    fmw[i] = umw[i] ? static_cast<float>(unif(seed + 8, i) * 2) : 0.0f;
    fml[i] = uml[i] ? static_cast<float>(unif(seed + 9, i) * 2) : 0.0f;
  }
  rk::TgdpoInputs hi;
  hi.batch = B, hi.seq_len = T;
  hi.chosen = w.data(), hi.rejected = l.data(), hi.ref_chosen = rw.data(), hi.ref_rejected = rl.data();
  hi.chosen_token_rewards = tw.data(), hi.rejected_token_rewards = tl.data();
  hi.chosen_mask = f32 ? static_cast<const void*>(fmw.data()) : umw.data();
  hi.rejected_mask = f32 ? static_cast<const void*>(fml.data()) : uml.data();
  hi.mask_is_f32 = f32;
  std::vector<float> L(B), cr(B), rr(B), gc(n), gr(n);
  rk::TgdpoOutputs ho;
  ho.losses = L.data(), ho.chosen_rewards = cr.data(), ho.rejected_rewards = rr.data(), ho.grad_chosen = gc.data(),
  ho.grad_rejected = gr.data();
  std::vector<float> dummy(1);
  if (n == 0) ho.grad_chosen = ho.grad_rejected = dummy.data();
  const double beta = 0.1, alpha = 0.5;
  rk::Status st = rk::token_weighted_dpo_loss(hi, beta, alpha, ho);
  Dev<float> dw(w), dl(l), drw(rw), drl(rl), dtw(tw), dtl(tl), dfw(fmw), dfl(fml), oL(B), ocr(B), orr(B), ogc(n), ogr(n);
  Dev<uint8_t> duw(umw), dul(uml);
  Dev<double> sc(3);
  rkcuda::TgdpoArgs a;
  a.in = hi;
  a.in.chosen = dw.p, a.in.rejected = dl.p, a.in.ref_chosen = drw.p, a.in.ref_rejected = drl.p;
  a.in.chosen_token_rewards = dtw.p, a.in.rejected_token_rewards = dtl.p;
  a.in.chosen_mask = f32 ? static_cast<const void*>(dfw.p) : duw.p;
  a.in.rejected_mask = f32 ? static_cast<const void*>(dfl.p) : dul.p;
  a.beta = beta, a.alpha = alpha;
  a.losses = oL.p, a.chosen_rewards = ocr.p, a.rejected_rewards = orr.p, a.grad_chosen = ogc.p, a.grad_rejected = ogr.p;
  a.scalars = sc.p;
  Line line;
  line.flag("status", st.ok() && rkcuda::token_weighted_dpo_loss(a, nullptr).ok());
  CK(cudaDeviceSynchronize());
  line.add("losses", worst_rel(oL.down().data(), L.data(), B, kFloor * max_abs(L)));
  double wr = worst_rel(ocr.down().data(), cr.data(), B, kFloor * max_abs(cr));
  line.add("rewards", std::max(wr, worst_rel(orr.down().data(), rr.data(), B, kFloor * max_abs(rr))));
  double wg = worst_rel(ogc.down().data(), gc.data(), n, kFloor * max_abs(gc));
  line.add("grads", std::max(wg, worst_rel(ogr.down().data(), gr.data(), n, kFloor * max_abs(gr))));
  const double ref3[3] = {ho.loss, ho.reward_accuracy, ho.reward_margin};
  line.add("scalars", worst_rel(sc.down().data(), ref3, 3, 1e-9 + 1e-7 * max_abs(cr)));
  char what[64];
  std::snprintf(what, sizeof what, "tgdpo %lldx%lld %s", static_cast<long long>(B), static_cast<long long>(T), f32 ? "f32" : "u8");
  return line.print("preference", what);
}

int bad_lengths_case() {
  PrefData d = make_pref(600, 5);
  d.ll[321] = 0;
  d.lw[400] = -2;
  Dev<float> dw(d.w), dl(d.l), o1(600), o2(600), o3(600), o4(600), o5(600);
  Dev<int32_t> dlw(d.lw), dll(d.ll);
  Dev<double> sc(3);
  rkcuda::PreferenceLossArgs a;
  a.in.pairs = 600;
  a.in.chosen = dw.p, a.in.rejected = dl.p, a.in.chosen_len = dlw.p, a.in.rejected_len = dll.p;
  a.params.loss = rk::PrefLoss::Simpo;
  a.losses = o1.p, a.chosen_rewards = o2.p, a.rejected_rewards = o3.p, a.grad_chosen = o4.p, a.grad_rejected = o5.p;
  a.scalars = sc.p;
  Line line;
  rkcuda::Result r = rkcuda::preference_loss(a, nullptr);
  line.flag("report", r.code == rkcuda::kBadTarget && r.index == 321 && r.value == 0 && std::strcmp(r.where, "rejected_len") == 0);
  line.flag("NaN outputs", std::isnan(o1.down()[0]) && std::isnan(sc.down()[0]));
  a.in.chosen_len = nullptr;
  line.flag("missing lengths", rkcuda::preference_loss(a, nullptr).code == rkcuda::kBadArgument);
  CK(cudaDeviceSynchronize());
  return line.print("preference", "bad lengths / arguments");
}

}  // namespace

int cuda_check_preference(bool quick) {
  int failed = 0;
  const int64_t sizes_quick[] = {1, 257};
  const int64_t sizes_full[] = {1, 257, 4099, 1 << 20};
  const int ns = quick ? 2 : 4;
  for (int s = 0; s < ns; ++s) {
    const int64_t P = quick ? sizes_quick[s] : sizes_full[s];
    const PrefData d = make_pref(P, 100 + s);
    for (int loss = 0; loss < rk::kPrefLossCount; ++loss) {
      const bool ref_free = loss >= 11;
      failed += pref_case(d, loss, 0, 0.0, 0.0, !ref_free, false);
      if (loss == 0 || loss == 1 || loss == 4 || loss == 11 || loss == 12 || loss == 14)
        failed += pref_case(d, loss, 0, 0.1, loss == 0 ? 0.5 : 0.0, false, false);
      if (loss == 0 || loss == 2 || loss == 3)
        for (int f = 1; f < rk::kFDivergenceCount; ++f) failed += pref_case(d, loss, f, 0.0, 0.0, true, false);
      if (loss == 14) failed += pref_case(d, loss, 0, 0.0, 0.0, false, true);
    }
  }
  const int64_t kn[] = {1, 3, 1000, 5001};
  for (int64_t n : kn)
    if (!quick || n <= 1000) failed += kto_case(n, n % 2 == 1, 7 + n);
  struct S {
    int64_t B, T;
  };
  const S ts[] = {{1, 1}, {3, 17}, {5, 300}, {64, 2049}};
  for (const S& s : ts)
    if (!quick || s.B * s.T <= 2000)
      for (int f = 0; f < 2; ++f) failed += tgdpo_case(s.B, s.T, f == 1, 31 + s.T);
  failed += bad_lengths_case();
  return failed;
}

}  // namespace rkdriver
#endif  // RK_WITH_CUDA

#if defined(RK_WITH_CUDA)
namespace rkdriver {
void cuda_bench_preference(void* stream) {
  using namespace smallcheck;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t P = 1 << 20;
  const PrefData d = make_pref(P, 9);
  Dev<float> w(d.w), l(d.l), rw(d.rw), rl(d.rl), o1(P), o2(P), o3(P), o4(P), o5(P);
  Dev<double> sc(3);
  rkcuda::PreferenceLossArgs a;
  a.in.pairs = P;
  a.in.chosen = w.p, a.in.rejected = l.p, a.in.ref_chosen = rw.p, a.in.ref_rejected = rl.p;
  a.losses = o1.p, a.chosen_rewards = o2.p, a.rejected_rewards = o3.p, a.grad_chosen = o4.p, a.grad_rejected = o5.p;
  a.scalars = sc.p;
  const double ms = median_ms([&] { die_on(rkcuda::preference_loss(a, st), "preference_loss"); }, st);
  bench_line("preferenceLoss sigmoid (1M pairs)", ms, static_cast<double>(P) * 36);
}
}  // namespace rkdriver
#endif
