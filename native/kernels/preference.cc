// Preference losses: forward and backward side by side (formulas in preference.h and below).
//
// Every pair is independent: its loss, rewards and the two gradient entries are computed in
// double with stable log-sigmoid/softplus (one exp and one log1p per logistic term), exponents
// capped at log(FLT_MAX) (TRL's cap_exp), and the pair sums (loss, accuracy, margin) are reduced
// in fixed blocks of kPreferenceBlock items whose partials are then added in order: any thread
// count gives the same bits. The smoothed-logistic losses (sigmoid with reverse KL, simpo, cpo,
// bt without soft labels) take the vectorised path of preference_simd.inl instead.
#include "preference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu.h"
#include "threadpool.h"

namespace rk {
namespace {

// log(FLT_MAX): the exponent cap of TRL's cap_exp for float32; exp(kExpCap) is finite in f32.
constexpr double kExpCap = 88.72283905206835;
// ORPO: length-averaged log-probs are clamped to <= -kOrpoMinNegLogp so log(1 - e^a) is finite.
constexpr double kOrpoMinNegLogp = 1e-12;

// softplus(x) = log(1 + e^x), stable for any x.
inline double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
// s(x) = 1 / (1 + e^-x), stable for any x.
inline double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}
// exp(min(v, cap)) and its derivative (0 where capped).
inline double cap_exp(double v, double* d) {
  if (v >= kExpCap) {
    *d = 0;
    return std::exp(kExpCap);
  }
  const double e = std::exp(v);
  *d = e;
  return e;
}

// Every logistic quantity of one x from one exp and one log1p:
//   t = e^-|x|, softplus(+-x) = max(+-x, 0) + log1p(t), s(x) = 1/(1+t) or t/(1+t).
struct Logistic {
  double sp_pos, sp_neg;  // softplus(x) = -log s(-x), softplus(-x) = -log s(x)
  double s_pos, s_neg;    // s(x), s(-x)
};
inline Logistic logistic(double x) {
  const double t = std::exp(-std::fabs(x));
  const double lp = std::log1p(t);
  const double inv = 1.0 / (1.0 + t);
  Logistic g;
  g.sp_pos = (x > 0 ? x : 0.0) + lp;
  g.sp_neg = (x < 0 ? -x : 0.0) + lp;
  g.s_pos = x >= 0 ? inv : t * inv;
  g.s_neg = x >= 0 ? t * inv : inv;
  return g;
}
// Label-smoothed logistic loss (1-e) softplus(-x) + e softplus(x) and its x-derivative.
inline double smoothed(double x, double e, double* dx) {
  const Logistic g = logistic(x);
  if (e == 0) {
    *dx = -g.s_neg;
    return g.sp_neg;
  }
  *dx = -(1 - e) * g.s_neg + e * g.s_pos;
  return (1 - e) * g.sp_neg + e * g.sp_pos;
}

struct PairResult {
  double loss, rc, rr, gc, gr;  // loss, rewards, dL_i/dchosen_i, dL_i/drejected_i
};

// f-divergence map of a log-ratio u: returns f(u) with df = f'(u) (TRL dpo_loss, f-DPO).
//   reverse_kl: u;  forward_kl: -e^-u;  js: u - softplus(u) (log 2 dropped: it cancels);
//   alpha: (1 - e^{-a u}) / a (constant 1/a cancels in f(c) - f(rho)); exponents capped.
inline double fmap(FDivergence f, double a, double u, double* df) {
  switch (f) {
    case FDivergence::ReverseKl: *df = 1; return u;
    case FDivergence::ForwardKl: {
      double d;
      const double e = cap_exp(-u, &d);
      *df = d;
      return -e;
    }
    case FDivergence::Js: *df = sigmoid(-u); return u - softplus(u);
    case FDivergence::Alpha: {
      double d;
      const double e = cap_exp(-a * u, &d);
      *df = d;
      return (1.0 - e) / a;
    }
  }
  *df = 1;
  return u;
}

// Loss of one pair and its gradient with respect to chosen_i and rejected_i.
inline PairResult pair_loss(const PreferenceInputs& in, const PreferenceParams& p, int64_t i) {
  const double w = in.chosen[i], l = in.rejected[i];
  const double beta = p.beta, e = p.label_smoothing;
  PairResult r{0, 0, 0, 0, 0};
  double inv_lw = 1, inv_ll = 1;
  if (in.chosen_len) inv_lw = 1.0 / in.chosen_len[i];
  if (in.rejected_len) inv_ll = 1.0 / in.rejected_len[i];
  switch (p.loss) {
    case PrefLoss::Simpo: {
      // h = avg_w - avg_l - gamma/beta;  L = (1-e) softplus(-beta h) + e softplus(beta h)
      const double aw = w * inv_lw, al = l * inv_ll;
      const double x = beta * (aw - al) - p.gamma;
      double dx;
      r.loss = smoothed(x, e, &dx);
      r.gc = beta * dx * inv_lw;
      r.gr = -beta * dx * inv_ll;
      r.rc = beta * aw;
      r.rr = beta * al;
      break;
    }
    case PrefLoss::Cpo: {
      // L = (1-e) softplus(-x) + e softplus(x), x = beta (w - l);  + alpha (-w / Lw)
      const double x = beta * (w - l);
      double dx;
      r.loss = smoothed(x, e, &dx);
      r.gc = beta * dx;
      r.gr = -beta * dx;
      if (p.alpha != 0) {
        r.loss += p.alpha * (-w * inv_lw);
        r.gc += -p.alpha * inv_lw;
      }
      r.rc = beta * w;
      r.rr = beta * l;
      break;
    }
    case PrefLoss::Orpo: {
      // a = avg log-prob (clamped < 0); lo(a) = a - log(1 - e^a) = a - log(-expm1(a)),
      // lo'(a) = -1 / expm1(a);  h = lo(a_w) - lo(a_l);  L = -a_w + beta softplus(-h)
      double aw = w * inv_lw, al = l * inv_ll;
      double kw = 1, kl = 1;
      if (!(aw <= -kOrpoMinNegLogp) && !std::isnan(aw)) { aw = -kOrpoMinNegLogp; kw = 0; }
      if (!(al <= -kOrpoMinNegLogp) && !std::isnan(al)) { al = -kOrpoMinNegLogp; kl = 0; }
      const double emw = std::expm1(aw), eml = std::expm1(al);
      const double h = (aw - std::log(-emw)) - (al - std::log(-eml));
      const Logistic g = logistic(h);
      const double dh = -beta * g.s_neg;  // dL/dh
      r.loss = -(w * inv_lw) + beta * g.sp_neg;
      r.gc = -inv_lw + dh * kw * (-1.0 / emw) * inv_lw;
      r.gr = -dh * kl * (-1.0 / eml) * inv_ll;
      r.rc = beta * (w * inv_lw);
      r.rr = beta * (l * inv_ll);
      break;
    }
    case PrefLoss::Bt: {
      // d = w - l - margin;  L = -(q log s(d) + (1-q) log s(-d)),  q = preferenceProb or 1-e
      const double m = in.margin ? static_cast<double>(in.margin[i]) : p.margin;
      const double d = w - l - m;
      const double q = in.preference_prob ? static_cast<double>(in.preference_prob[i]) : 1 - e;
      const Logistic g = logistic(d);
      r.loss = q * g.sp_neg + (1 - q) * g.sp_pos;
      const double dd = -q * g.s_neg + (1 - q) * g.s_pos;
      r.gc = dd;
      r.gr = -dd;
      r.rc = w;
      r.rr = l;
      break;
    }
    default: {
      // DPO family: c, rho the policy/reference log-ratios (length-averaged for ipo).
      const double rw = in.ref_chosen ? static_cast<double>(in.ref_chosen[i]) : 0.0;
      const double rl = in.ref_rejected ? static_cast<double>(in.ref_rejected[i]) : 0.0;
      const double sc = p.loss == PrefLoss::Ipo ? inv_lw : 1.0;
      const double sr = p.loss == PrefLoss::Ipo ? inv_ll : 1.0;
      const double c = (w - rw) * sc, rho = (l - rl) * sr;
      r.rc = beta * c;
      r.rr = beta * rho;
      double dc = 0, dr = 0;  // dL/dc, dL/drho
      const double bc = beta * c, br = beta * rho;
      switch (p.loss) {
        case PrefLoss::NcaPair:
          // L = -log s(bc) - 0.5 log s(-bc) - 0.5 log s(-br)
        {
          const Logistic gc = logistic(bc), gr = logistic(br);
          r.loss = gc.sp_neg + 0.5 * gc.sp_pos + 0.5 * gr.sp_pos;
          dc = beta * (-gc.s_neg + 0.5 * gc.s_pos);
          dr = beta * 0.5 * gr.s_pos;
        }
          break;
        case PrefLoss::BcoPair:
          // L = -log s(bc) - log s(-br)   (TRL's running-mean shift delta = 0)
        {
          const Logistic gc = logistic(bc), gr = logistic(br);
          r.loss = gc.sp_neg + gr.sp_pos;
          dc = -beta * gc.s_neg;
          dr = beta * gr.s_pos;
        }
          break;
        case PrefLoss::SppoHard: {
          // L = (c - 1/(2 beta))^2 + (rho + 1/(2 beta))^2
          const double u = c - 0.5 / beta, v = rho + 0.5 / beta;
          r.loss = u * u + v * v;
          dc = 2 * u;
          dr = 2 * v;
          break;
        }
        case PrefLoss::ApoZero: {
          // L = (1 - s(bc)) + s(br)
          const Logistic gc = logistic(bc), gr = logistic(br);
          r.loss = gc.s_neg + gr.s_pos;
          dc = -beta * gc.s_pos * gc.s_neg;
          dr = beta * gr.s_pos * gr.s_neg;
          break;
        }
        case PrefLoss::ApoDown: {
          // L = s(bc) + (1 - s(beta (c - rho)))
          const double bd = beta * (c - rho);
          const Logistic gc = logistic(bc), gd = logistic(bd);
          const double g1 = gc.s_pos * gc.s_neg, g2 = gd.s_pos * gd.s_neg;
          r.loss = gc.s_pos + gd.s_neg;
          dc = beta * (g1 - g2);
          dr = beta * g2;
          break;
        }
        default: {
          // Losses of h = f(c) - f(rho), x = beta h.
          double dfc, dfr;
          const double h = fmap(p.fdiv, p.f_alpha, c, &dfc) - fmap(p.fdiv, p.f_alpha, rho, &dfr);
          const double x = beta * h;
          double dh = 0;  // dL/dh
          switch (p.loss) {
            case PrefLoss::Sigmoid: {
              double dx;
              r.loss = smoothed(x, e, &dx);
              dh = beta * dx;
              break;
            }
            case PrefLoss::Robust: {
              const Logistic g = logistic(x);
              r.loss = ((1 - e) * g.sp_neg - e * g.sp_pos) / (1 - 2 * e);
              dh = beta * (-(1 - e) * g.s_neg - e * g.s_pos) / (1 - 2 * e);
              break;
            }
            case PrefLoss::Hinge:
              r.loss = x < 1 ? 1 - x : 0;
              dh = x < 1 ? -beta : 0;
              break;
            case PrefLoss::Ipo: {
              const double u = h - 0.5 / beta;
              r.loss = u * u;
              dh = 2 * u;
              break;
            }
            case PrefLoss::ExoPair: {
              // L = s(x) (log s(x) - log(1-e)) + s(-x) (log s(-x) - log e), e = 1e-3 when 0;
              // dL/dx = s(x) s(-x) (x - log((1-e)/e))
              const double ee = e == 0 ? 1e-3 : e;
              const Logistic g = logistic(x);
              const double spx = g.s_pos, smx = g.s_neg;
              r.loss = spx * (-g.sp_neg - std::log1p(-ee)) + smx * (-g.sp_pos - std::log(ee));
              dh = beta * spx * smx * (x - (std::log1p(-ee) - std::log(ee)));
              break;
            }
            case PrefLoss::Discopop: {
              // L = softplus(-x) (1 - s(x/t)) + e^-x s(x/t); the second term as
              // exp(-x + log s(x/t)), capped.
              const double t = p.tau;
              const double sp = sigmoid(x / t), sm = sigmoid(-x / t);
              const double spm = softplus(-x);
              double dE;
              const double E = cap_exp(-x - softplus(-x / t), &dE);
              r.loss = spm * sm + E;
              // d/dx: -s(-x) sm - spm sp sm / t + E' (-1 + sm / t)
              dh = beta * (-sigmoid(-x) * sm - spm * sp * sm / t + dE * (-1 + sm / t));
              break;
            }
            default: break;
          }
          dc = dh * dfc;
          dr = -dh * dfr;
          break;
        }
      }
      r.gc = dc * sc;
      r.gr = dr * sr;
      break;
    }
  }
  if (p.nll_weight != 0) {
    r.loss += p.nll_weight * (-w * inv_lw);
    r.gc += -p.nll_weight * inv_lw;
  }
  // A NaN input makes the pair's loss and gradients NaN (comparisons such as hinge's x < 1
  // would otherwise hide it).
  bool bad = std::isnan(w) || std::isnan(l);
  if (in.ref_chosen) bad = bad || std::isnan(in.ref_chosen[i]);
  if (in.ref_rejected) bad = bad || std::isnan(in.ref_rejected[i]);
  if (in.margin) bad = bad || std::isnan(in.margin[i]);
  if (bad) r.loss = r.gc = r.gr = std::numeric_limits<double>::quiet_NaN();
  return r;
}

// Fixed-order reduction of per-block partials.
struct Partial {
  double loss = 0, acc = 0, margin = 0, extra = 0;
};

}  // namespace

bool preference_needs_lengths(const PreferenceParams& p) {
  return p.loss == PrefLoss::Ipo || p.loss == PrefLoss::Simpo || p.loss == PrefLoss::Orpo ||
         (p.loss == PrefLoss::Cpo && p.alpha != 0) || p.nll_weight != 0;
}

Status preference_loss(const PreferenceInputs& in, const PreferenceParams& p, PreferenceOutputs& out) {
  Status st;
  const int64_t n = in.pairs;
  if (n < 1 || !in.chosen || !in.rejected || !out.losses || !out.chosen_rewards ||
      !out.rejected_rewards || !out.grad_chosen || !out.grad_rejected) {
    st.code = Status::BadShape;
    st.value = n;
    return st;
  }
  const bool lens = preference_needs_lengths(p);
  PreferenceInputs inp = in;
  if (lens) {
    if (!in.chosen_len || !in.rejected_len) {
      st.code = Status::BadShape;
      return st;
    }
    for (int64_t i = 0; i < n; ++i) {
      if (in.chosen_len[i] < 1 || in.rejected_len[i] < 1) {
        st.code = Status::BadIndex;
        st.index = i;
        st.value = in.chosen_len[i] < 1 ? in.chosen_len[i] : in.rejected_len[i];
        return st;
      }
    }
  } else {
    inp.chosen_len = nullptr;
    inp.rejected_len = nullptr;
  }
  const int64_t nb = (n + kPreferenceBlock - 1) / kPreferenceBlock;
  std::vector<Partial> parts(nb);
  const double inv_n = 1.0 / static_cast<double>(n);
  // Vectorised path for the smoothed-logistic losses.
  detail::LogisticPairsArgs la{};
  bool fast = true;
  la.k = p.beta;
  la.kr = p.beta;
  la.e = p.label_smoothing;
  la.nll = p.nll_weight;
  switch (p.loss) {
    case PrefLoss::Sigmoid:
      fast = p.fdiv == FDivergence::ReverseKl;
      la.rw = inp.ref_chosen;
      la.rl = inp.ref_rejected;
      break;
    case PrefLoss::Simpo: la.avg = true; la.m = p.gamma; break;
    case PrefLoss::Cpo: la.nll += p.alpha; break;
    case PrefLoss::Bt:
      fast = in.preference_prob == nullptr;
      la.k = la.kr = 1;
      la.m = p.margin;
      la.marr = in.margin;
      break;
    default: fast = false;
  }
  if (fast) {
    la.w = in.chosen;
    la.l = in.rejected;
    la.lw = inp.chosen_len;
    la.ll = inp.rejected_len;
    la.inv_n = inv_n;
    la.losses = out.losses;
    la.rc = out.chosen_rewards;
    la.rr = out.rejected_rewards;
    la.gc = out.grad_chosen;
    la.gr = out.grad_rejected;
    detail::LogisticPairsFn fn;
    switch (active_isa()) {
      case Isa::Avx512: fn = detail::preference_logistic_pairs_avx512(); break;
      case Isa::Avx2: fn = detail::preference_logistic_pairs_avx2(); break;
      default: fn = detail::preference_logistic_pairs_scalar();
    }
    parallel_for(nb, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        Partial s;
        fn(la, b * kPreferenceBlock, std::min(n, (b + 1) * kPreferenceBlock), &s.loss, &s.acc, &s.margin);
        parts[b] = s;
      }
    });
  } else parallel_for(nb, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      Partial s;
      const int64_t i1 = std::min(n, (b + 1) * kPreferenceBlock);
      for (int64_t i = b * kPreferenceBlock; i < i1; ++i) {
        const PairResult r = pair_loss(inp, p, i);
        out.losses[i] = static_cast<float>(r.loss);
        out.chosen_rewards[i] = static_cast<float>(r.rc);
        out.rejected_rewards[i] = static_cast<float>(r.rr);
        out.grad_chosen[i] = static_cast<float>(r.gc * inv_n);
        out.grad_rejected[i] = static_cast<float>(r.gr * inv_n);
        s.loss += r.loss;
        s.acc += r.rc > r.rr ? 1.0 : 0.0;
        s.margin += r.rc - r.rr;
      }
      parts[b] = s;
    }
  });
  Partial t;
  for (const Partial& s : parts) {
    t.loss += s.loss;
    t.acc += s.acc;
    t.margin += s.margin;
  }
  out.loss = t.loss * inv_n;
  out.reward_accuracy = t.acc * inv_n;
  out.reward_margin = t.margin * inv_n;
  return st;
}

// KTO: r = logp - ref, x = beta (r - z0);
//   desirable   L = w_d (1 - s(x)) = w_d s(-x),  dL/dlogp = -w_d beta s(x) s(-x)
//   undesirable L = w_u (1 - s(-x)) = w_u s(x),  dL/dlogp =  w_u beta s(x) s(-x)
Status kto_loss(int64_t n, const float* logp, const float* ref, const uint8_t* desirable,
                const KtoParams& p, KtoOutputs& out) {
  Status st;
  if (n < 1 || !logp || !desirable || !out.losses || !out.rewards || !out.grad) {
    st.code = Status::BadShape;
    st.value = n;
    return st;
  }
  const int64_t nb = (n + kPreferenceBlock - 1) / kPreferenceBlock;
  std::vector<Partial> parts(nb);
  const double inv_n = 1.0 / static_cast<double>(n), beta = p.beta;
  parallel_for(nb, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      Partial s;  // loss, desirable reward sum (acc), undesirable reward sum (margin), desirable count
      const int64_t i1 = std::min(n, (b + 1) * kPreferenceBlock);
      for (int64_t i = b * kPreferenceBlock; i < i1; ++i) {
        const double r = static_cast<double>(logp[i]) - (ref ? static_cast<double>(ref[i]) : 0.0);
        const double x = beta * (r - p.kl);
        const Logistic lg = logistic(x);
        const double spx = lg.s_pos, smx = lg.s_neg;
        double L, g;
        if (desirable[i]) {
          L = p.desirable_weight * smx;
          g = -p.desirable_weight * beta * spx * smx;
          s.acc += beta * r;
          s.extra += 1;
        } else {
          L = p.undesirable_weight * spx;
          g = p.undesirable_weight * beta * spx * smx;
          s.margin += beta * r;
        }
        out.losses[i] = static_cast<float>(L);
        out.rewards[i] = static_cast<float>(beta * r);
        out.grad[i] = static_cast<float>(g * inv_n);
        s.loss += L;
      }
      parts[b] = s;
    }
  });
  Partial t;
  for (const Partial& s : parts) {
    t.loss += s.loss;
    t.acc += s.acc;
    t.margin += s.margin;
    t.extra += s.extra;
  }
  const double nd = t.extra, nu = static_cast<double>(n) - t.extra;
  out.loss = t.loss * inv_n;
  out.desirable_reward_mean = nd > 0 ? t.acc / nd : std::numeric_limits<double>::quiet_NaN();
  out.undesirable_reward_mean = nu > 0 ? t.margin / nu : std::numeric_limits<double>::quiet_NaN();
  return st;
}

namespace {
template <typename M>
void tgdpo_rows(const TgdpoInputs& in, double beta, double alpha, TgdpoOutputs& out,
                std::vector<Partial>& parts) {
  const int64_t B = in.batch, T = in.seq_len;
  const M* mw = static_cast<const M*>(in.chosen_mask);
  const M* ml = static_cast<const M*>(in.rejected_mask);
  const double inv_b = 1.0 / static_cast<double>(B);
  const int64_t rows_per_block = std::max<int64_t>(1, kPreferenceBlock / std::max<int64_t>(1, T));
  const int64_t nb = (B + rows_per_block - 1) / rows_per_block;
  parts.assign(nb, Partial{});
  parallel_for(nb, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      Partial s;
      const int64_t r1 = std::min(B, (blk + 1) * rows_per_block);
      for (int64_t b = blk * rows_per_block; b < r1; ++b) {
        const int64_t o = b * T;
        double zw = 0, zl = 0;
        for (int64_t t = 0; t < T; ++t) {
          const double m = static_cast<double>(mw[o + t]);
          if (m != 0)
            zw += m * beta * (1 + alpha * beta * in.chosen_token_rewards[o + t]) *
                  (static_cast<double>(in.chosen[o + t]) - in.ref_chosen[o + t]);
          const double n = static_cast<double>(ml[o + t]);
          if (n != 0)
            zl += n * beta * (1 - alpha * beta * in.rejected_token_rewards[o + t]) *
                  (static_cast<double>(in.rejected[o + t]) - in.ref_rejected[o + t]);
        }
        const double z = zw - zl;
        const Logistic lg = logistic(z);
        const double L = lg.sp_neg, g = -lg.s_neg * inv_b;  // dloss/dz
        for (int64_t t = 0; t < T; ++t) {
          const double m = static_cast<double>(mw[o + t]);
          const double n = static_cast<double>(ml[o + t]);
          out.grad_chosen[o + t] = static_cast<float>(
              m != 0 ? g * m * beta * (1 + alpha * beta * in.chosen_token_rewards[o + t]) : 0.0);
          out.grad_rejected[o + t] = static_cast<float>(
              n != 0 ? -g * n * beta * (1 - alpha * beta * in.rejected_token_rewards[o + t]) : 0.0);
        }
        out.losses[b] = static_cast<float>(L);
        out.chosen_rewards[b] = static_cast<float>(zw);
        out.rejected_rewards[b] = static_cast<float>(zl);
        s.loss += L;
        s.acc += zw > zl ? 1.0 : 0.0;
        s.margin += z;
      }
      parts[blk] = s;
    }
  });
}
}  // namespace

Status token_weighted_dpo_loss(const TgdpoInputs& in, double beta, double alpha, TgdpoOutputs& out) {
  Status st;
  if (in.batch < 1 || in.seq_len < 0 || !in.chosen || !in.rejected || !in.ref_chosen ||
      !in.ref_rejected || !in.chosen_token_rewards || !in.rejected_token_rewards ||
      !in.chosen_mask || !in.rejected_mask || !out.losses || !out.chosen_rewards ||
      !out.rejected_rewards || !out.grad_chosen || !out.grad_rejected) {
    st.code = Status::BadShape;
    st.value = in.batch;
    return st;
  }
  std::vector<Partial> parts;
  if (in.mask_is_f32)
    tgdpo_rows<float>(in, beta, alpha, out, parts);
  else
    tgdpo_rows<uint8_t>(in, beta, alpha, out, parts);
  Partial t;
  for (const Partial& s : parts) {
    t.loss += s.loss;
    t.acc += s.acc;
    t.margin += s.margin;
  }
  const double inv_b = 1.0 / static_cast<double>(in.batch);
  out.loss = t.loss * inv_b;
  out.reward_accuracy = t.acc * inv_b;
  out.reward_margin = t.margin * inv_b;
  return st;
}

}  // namespace rk
