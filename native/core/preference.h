// Preference losses: the contract (loss and f-divergence enums with their names, the parameter and
// input structs) and every per-pair / per-item formula, shared by the CPU kernels
// (native/kernels/preference.cc) and the CUDA kernels (cuda/preference.cu). Formulas and conventions
// are described in native/kernels/preference.h and docs/preference.md.
//
// Everything here is RK_HD (host and device under nvcc), in double, with plain C math (::exp,
// ::log1p, ...), which nvcc provides in device code and <cmath> on the host. The operation order
// is the one the CPU kernels have always used: changing it changes result bits (scripts/battery.ts).
// The vectorised smoothed-logistic lanes of native/kernels/preference_simd.inl are held against
// pair_loss by `rk_driver check` (native/driver/core_check_preference.cc).
#pragma once
#include <cmath>
#include <cstdint>

#include "hd.h"

namespace rk {

// ---- contract ---------------------------------------------------------------------------------

// Order and codes are the TS facade's (lib/preference/losses.ts LOSSES) and the CUDA kernels'.
enum class PrefLoss : int {
  Sigmoid = 0, Robust, Hinge, Ipo, ExoPair, NcaPair, BcoPair, SppoHard, ApoZero, ApoDown,
  Discopop, Simpo, Cpo, Orpo, Bt, SigmoidNorm, Aot, AotUnpaired, Sft,
};
constexpr int kPrefLossCount = 19;
static_assert(static_cast<int>(PrefLoss::Sft) + 1 == kPrefLossCount, "PrefLoss: last enumerator + 1 == count");

// The losses that couple the pairs of a batch (so no per-pair formula alone gives them): 'aot' and
// 'aot_unpaired' sort log-ratios across the batch, 'sft' is a token mean over the whole batch.
RK_HD constexpr bool is_batch_loss(PrefLoss l) {
  return l == PrefLoss::Aot || l == PrefLoss::AotUnpaired || l == PrefLoss::Sft;
}
// The losses a list (TRL's loss_type list with loss_weights) may hold: TRL's own DPO loss types,
// i.e. every loss but the reference-free simpo, cpo, orpo and bt.
RK_HD constexpr bool mixable_loss(PrefLoss l) {
  return !(l == PrefLoss::Simpo || l == PrefLoss::Cpo || l == PrefLoss::Orpo || l == PrefLoss::Bt);
}

// Order and codes are lib/preference/losses.ts FDIVS.
enum class FDivergence : int { ReverseKl = 0, ForwardKl, Js, Alpha };
constexpr int kFDivergenceCount = 4;
static_assert(static_cast<int>(FDivergence::Alpha) + 1 == kFDivergenceCount,
              "FDivergence: last enumerator + 1 == count");

// The names the TS facade uses, in enum order.
constexpr const char* kPrefLossNames[] = {
    "sigmoid", "robust", "hinge", "ipo", "exo_pair", "nca_pair", "bco_pair", "sppo_hard",
    "apo_zero", "apo_down", "discopop", "simpo", "cpo", "orpo", "bt", "sigmoid_norm", "aot",
    "aot_unpaired", "sft"};
constexpr const char* kFDivergenceNames[] = {"reverse_kl", "forward_kl", "js_divergence", "alpha_divergence"};
static_assert(sizeof(kPrefLossNames) / sizeof(kPrefLossNames[0]) == kPrefLossCount, "one name per loss");
static_assert(sizeof(kFDivergenceNames) / sizeof(kFDivergenceNames[0]) == kFDivergenceCount,
              "one name per f-divergence");

struct PreferenceParams {
  PrefLoss loss = PrefLoss::Sigmoid;
  double beta = 0.1;
  double label_smoothing = 0;  // e in [0, 0.5)
  double gamma = 0.5;          // simpo target margin
  double alpha = 1.0;          // cpo NLL weight
  double tau = 0.05;           // discopop temperature
  double margin = 0;           // bt scalar margin (used when margin array is null)
  FDivergence fdiv = FDivergence::ReverseKl;
  double f_alpha = 1.0;        // alpha-divergence coefficient
  double nll_weight = 0;       // RPO: + nll_weight * (-chosen / chosen_len)
  // 'ipo' and 'sigmoid_norm' under a non-reverse-KL fDivergence: true divides f(c) by the length
  // (TRL v0.29.0 to f2cd577, the default), false applies f to c / length (TRL v0.19-v0.28).
  bool average_scores = true;
  // A list of losses (TRL loss_type list + loss_weights): loss = sum_k mix[k] mean_i L_k,i, the
  // weights by loss code (0 = not in the list; mixable_loss only). `loss` is unused then.
  bool mixed = false;
  double mix[kPrefLossCount] = {};
};

// Host or device pointers, depending on the backend.
struct PreferenceInputs {
  int64_t pairs = 0;
  const float* chosen = nullptr;
  const float* rejected = nullptr;
  const float* ref_chosen = nullptr;    // may be null
  const float* ref_rejected = nullptr;  // may be null
  const int32_t* chosen_len = nullptr;  // may be null when the loss needs no lengths
  const int32_t* rejected_len = nullptr;
  const float* margin = nullptr;           // bt: per-pair margin (P) or null
  const float* preference_prob = nullptr;  // bt: soft labels q (P) or null
};

struct KtoParams {
  double beta = 0.1;
  double kl = 0;  // z0
  double desirable_weight = 1.0;
  double undesirable_weight = 1.0;
};

struct TgdpoInputs {
  int64_t batch = 0, seq_len = 0;  // B, T; every per-token array is (B, T) row-major
  const float* chosen = nullptr;
  const float* rejected = nullptr;
  const float* ref_chosen = nullptr;
  const float* ref_rejected = nullptr;
  const float* chosen_token_rewards = nullptr;
  const float* rejected_token_rewards = nullptr;
  // Masks: u8 (mask_is_f32 false) or f32 weights (true).
  const void* chosen_mask = nullptr;
  const void* rejected_mask = nullptr;
  bool mask_is_f32 = false;
};

// Which losses divide by the lengths (so chosen_len/rejected_len must be given). The one
// definition: rk::preference_needs_lengths and the CUDA kernels call it.
RK_HD bool loss_needs_lengths(PrefLoss l, const PreferenceParams& p) {
  return l == PrefLoss::Ipo || l == PrefLoss::Simpo || l == PrefLoss::Orpo || (l == PrefLoss::Cpo && p.alpha != 0) ||
         l == PrefLoss::SigmoidNorm || l == PrefLoss::Sft;
}
RK_HD bool needs_lengths(const PreferenceParams& p) {
  if (p.nll_weight != 0) return true;
  if (!p.mixed) return loss_needs_lengths(p.loss, p);
  for (int k = 0; k < kPrefLossCount; ++k)
    if (p.mix[k] != 0 && loss_needs_lengths(static_cast<PrefLoss>(k), p)) return true;
  return false;
}
// Whether the call takes the general path (preference_loss_general): a list, or a batch loss.
RK_HD bool needs_batch_path(const PreferenceParams& p) { return p.mixed || is_batch_loss(p.loss); }

// LD-DPO sequence log-probs (TRL ld_alpha): per-token (B, T) log-probs of the chosen and rejected
// completions with u8 completion masks (null = every token).
struct LdInputs {
  int64_t batch = 0, seq_len = 0;
  const float* chosen = nullptr;
  const float* rejected = nullptr;
  const uint8_t* chosen_mask = nullptr;  // may be null
  const uint8_t* rejected_mask = nullptr;
};
struct LdOutputs {
  float* chosen = nullptr;             // (B) sequence log-probs
  float* rejected = nullptr;           // (B)
  float* chosen_weights = nullptr;     // (B, T) d chosen_b / d token, or null
  float* rejected_weights = nullptr;   // (B, T), or null
};

// ---- formulas ---------------------------------------------------------------------------------
namespace core {

// log(FLT_MAX): the exponent cap of TRL's cap_exp for float32; exp(kExpCap) is finite in f32.
constexpr double kExpCap = 88.72283905206835;
// ORPO: length-averaged log-probs are clamped to <= -kOrpoMinNegLogp so log(1 - e^a) is finite.
constexpr double kOrpoMinNegLogp = 1e-12;

RK_HD bool is_nan(double x) { return x != x; }

// softplus(x) = log(1 + e^x), stable for any x.
RK_HD double softplus(double x) { return x > 0 ? x + ::log1p(::exp(-x)) : ::log1p(::exp(x)); }
// s(x) = 1 / (1 + e^-x), stable for any x.
RK_HD double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + ::exp(-x));
  const double e = ::exp(x);
  return e / (1.0 + e);
}
// exp(min(v, cap)) and its derivative (0 where capped).
RK_HD double cap_exp(double v, double* d) {
  if (v >= kExpCap) {
    *d = 0;
    return ::exp(kExpCap);
  }
  const double e = ::exp(v);
  *d = e;
  return e;
}

// Every logistic quantity of one x from one exp and one log1p:
//   t = e^-|x|, softplus(+-x) = max(+-x, 0) + log1p(t), s(x) = 1/(1+t) or t/(1+t).
struct Logistic {
  double sp_pos, sp_neg;  // softplus(x) = -log s(-x), softplus(-x) = -log s(x)
  double s_pos, s_neg;    // s(x), s(-x)
};
RK_HD Logistic logistic(double x) {
  const double t = ::exp(-::fabs(x));
  const double lp = ::log1p(t);
  const double inv = 1.0 / (1.0 + t);
  Logistic g;
  g.sp_pos = (x > 0 ? x : 0.0) + lp;
  g.sp_neg = (x < 0 ? -x : 0.0) + lp;
  g.s_pos = x >= 0 ? inv : t * inv;
  g.s_neg = x >= 0 ? t * inv : inv;
  return g;
}
// Label-smoothed logistic loss (1-e) softplus(-x) + e softplus(x) and its x-derivative.
RK_HD double smoothed(double x, double e, double* dx) {
  const Logistic g = logistic(x);
  if (e == 0) {
    *dx = -g.s_neg;
    return g.sp_neg;
  }
  *dx = -(1 - e) * g.s_neg + e * g.s_pos;
  return (1 - e) * g.sp_neg + e * g.sp_pos;
}

// f-divergence map of a log-ratio u: returns f(u) with df = f'(u) (TRL dpo_loss, f-DPO).
//   reverse_kl: u;  forward_kl: -e^-u;  js: u - softplus(u) (log 2 dropped: it cancels);
//   alpha: (1 - e^{-a u}) / a (constant 1/a cancels in f(c) - f(rho)); exponents capped.
RK_HD double fmap(FDivergence f, double a, double u, double* df) {
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

// The score TRL f2cd577 divides by the length ('ipo', 'sigmoid_norm' with lengthAverage 'score'):
// fmap without its constant, which no longer cancels once each side is divided by its own length.
// Only alpha's has one: -e^{-a u} / a (TRL: e^{(alpha-1) u} / (alpha - 1), alpha = 1 - a).
RK_HD double fscore(FDivergence f, double a, double u, double* df) {
  if (f == FDivergence::Alpha) {
    double d;
    const double e = cap_exp(-a * u, &d);
    *df = d;
    return -e / a;
  }
  return fmap(f, a, u, df);
}

// One pair's inputs, widened to double (absent references are 0, absent lengths give 1).
struct PairInput {
  double w, l;            // chosen, rejected log-prob sums (rewards for bt)
  double rw, rl;          // reference log-probs
  double inv_lw, inv_ll;  // 1 / length
  double m;               // bt margin: per-pair or params.margin
  double q;               // bt soft label: preference_prob or 1 - label_smoothing
  bool nan_input;         // a NaN in chosen, rejected, a reference or a per-pair margin
};
RK_HD PairInput load_pair(const PreferenceInputs& in, const PreferenceParams& p, int64_t i) {
  PairInput x;
  x.w = in.chosen[i];
  x.l = in.rejected[i];
  x.rw = in.ref_chosen ? static_cast<double>(in.ref_chosen[i]) : 0.0;
  x.rl = in.ref_rejected ? static_cast<double>(in.ref_rejected[i]) : 0.0;
  x.inv_lw = in.chosen_len ? 1.0 / in.chosen_len[i] : 1.0;
  x.inv_ll = in.rejected_len ? 1.0 / in.rejected_len[i] : 1.0;
  x.m = in.margin ? static_cast<double>(in.margin[i]) : p.margin;
  x.q = in.preference_prob ? static_cast<double>(in.preference_prob[i]) : 1 - p.label_smoothing;
  // A NaN input makes the pair's loss and gradients NaN (comparisons such as hinge's x < 1
  // would otherwise hide it).
  x.nan_input = is_nan(x.w) || is_nan(x.l) || is_nan(x.rw) || is_nan(x.rl) || (in.margin && is_nan(x.m));
  return x;
}

struct PairResult {
  double loss, rc, rr, gc, gr;  // loss, rewards, dL_i/dchosen_i, dL_i/drejected_i
};

// Loss of one pair and its gradient with respect to chosen_i and rejected_i.
RK_HD PairResult pair_loss(const PairInput& in, const PreferenceParams& p) {
  const double w = in.w, l = in.l;
  const double beta = p.beta, e = p.label_smoothing;
  PairResult r{0, 0, 0, 0, 0};
  const double inv_lw = in.inv_lw, inv_ll = in.inv_ll;
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
      if (!(aw <= -kOrpoMinNegLogp) && !is_nan(aw)) {
        aw = -kOrpoMinNegLogp;
        kw = 0;
      }
      if (!(al <= -kOrpoMinNegLogp) && !is_nan(al)) {
        al = -kOrpoMinNegLogp;
        kl = 0;
      }
      const double emw = ::expm1(aw), eml = ::expm1(al);
      const double h = (aw - ::log(-emw)) - (al - ::log(-eml));
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
      const double d = w - l - in.m;
      const double q = in.q;
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
      const double rw = in.rw, rl = in.rl;
      const bool avg = p.loss == PrefLoss::Ipo || p.loss == PrefLoss::SigmoidNorm;
      const double sc = avg ? inv_lw : 1.0;
      const double sr = avg ? inv_ll : 1.0;
      const double c = (w - rw) * sc, rho = (l - rl) * sr;
      // Scores averaged after f (TRL f2cd577): h = f(c_sum) / Lw - f(rho_sum) / Ll. With reverse KL
      // f(u) = u, so this is c - rho bit for bit.
      const bool after = avg && p.average_scores && p.fdiv != FDivergence::ReverseKl;
      // ipo keeps its length-averaged rewards; sigmoid_norm reports TRL's beta (w - rw).
      r.rc = p.loss == PrefLoss::SigmoidNorm ? beta * (w - rw) : beta * c;
      r.rr = p.loss == PrefLoss::SigmoidNorm ? beta * (l - rl) : beta * rho;
      double dc = 0, dr = 0;  // dL/dc, dL/drho
      const double bc = beta * c, br = beta * rho;
      switch (p.loss) {
        case PrefLoss::NcaPair: {
          // L = -log s(bc) - 0.5 log s(-bc) - 0.5 log s(-br)
          const Logistic gc = logistic(bc), gr = logistic(br);
          r.loss = gc.sp_neg + 0.5 * gc.sp_pos + 0.5 * gr.sp_pos;
          dc = beta * (-gc.s_neg + 0.5 * gc.s_pos);
          dr = beta * 0.5 * gr.s_pos;
          break;
        }
        case PrefLoss::BcoPair: {
          // L = -log s(bc) - log s(-br)   (TRL's running-mean shift delta = 0)
          const Logistic gc = logistic(bc), gr = logistic(br);
          r.loss = gc.sp_neg + gr.sp_pos;
          dc = -beta * gc.s_neg;
          dr = beta * gr.s_pos;
          break;
        }
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
          const double h = after ? fscore(p.fdiv, p.f_alpha, w - rw, &dfc) * sc - fscore(p.fdiv, p.f_alpha, l - rl, &dfr) * sr
                                 : fmap(p.fdiv, p.f_alpha, c, &dfc) - fmap(p.fdiv, p.f_alpha, rho, &dfr);
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
            case PrefLoss::SigmoidNorm: {
              // L = -log s(beta h), h of the length-averaged scores (TRL: no label smoothing)
              const Logistic g = logistic(x);
              r.loss = g.sp_neg;
              dh = -beta * g.s_neg;
              break;
            }
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
              r.loss = spx * (-g.sp_neg - ::log1p(-ee)) + smx * (-g.sp_pos - ::log(ee));
              dh = beta * spx * smx * (x - (::log1p(-ee) - ::log(ee)));
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
  if (in.nan_input) r.loss = r.gc = r.gr = NAN;
  return r;
}

// Pair i of `in` (lengths already nulled when the loss uses none).
RK_HD PairResult pair_loss(const PreferenceInputs& in, const PreferenceParams& p, int64_t i) {
  return pair_loss(load_pair(in, p, i), p);
}

// Where the pairs' results go: five (P) f32 arrays (losses, chosen / rejected rewards, gradients).
struct PairOut {
  float *losses, *rc, *rr, *gc, *gr;
};
// Pair i's summands of the batch sums: loss, accuracy (chosen reward > rejected reward), margin.
struct PairSums {
  double loss, acc, margin;
};
// Stores pair i's result (the gradients of the mean loss: times inv_n = 1 / P); returns its summands.
RK_HD PairSums store_pair(const PairOut& o, int64_t i, const PairResult& r, double inv_n) {
  o.losses[i] = static_cast<float>(r.loss);
  o.rc[i] = static_cast<float>(r.rc);
  o.rr[i] = static_cast<float>(r.rr);
  o.gc[i] = static_cast<float>(r.gc * inv_n);
  o.gr[i] = static_cast<float>(r.gr * inv_n);
  PairSums s;
  s.loss = r.loss;
  s.acc = r.rc > r.rr ? 1.0 : 0.0;
  s.margin = r.rc - r.rr;
  return s;
}

// ---- the general path: lists of losses and the batch losses (aot, aot_unpaired, sft) --------
//
// AOT (TRL dpo_trainer 'aot', 'aot_unpaired') sorts two sets of log-ratios across the batch and
// pairs them by rank: delta_k = A_(k) - B_(k), L_k = (1-e) softplus(-beta delta_k) + e softplus(beta
// delta_k). The four key sets (kAotKeys):
//   0: 'aot' A = w - l (policy),      1: 'aot' B = rw - rl (reference, no gradient),
//   2: 'aot_unpaired' A = w - rw,     3: 'aot_unpaired' B = l - rl.
// Order: ascending, NaN last (as torch.sort), ties by pair index (a stable sort), so the ranks are
// a permutation any backend reproduces. Pair i carries L at its A rank (the losses still sum to
// sum_k L_k); its gradient is the derivative of every L_k that reads it: dchosen_i = beta dx at
// rank_A(i) ('aot': drejected_i = -that; 'aot_unpaired': drejected_i = -beta dx at rank_B(i)).
constexpr int kAotKeys = 4;
RK_HD double aot_key(const PreferenceInputs& in, int set, int64_t i) {
  const double w = in.chosen[i], l = in.rejected[i];
  const double rw = in.ref_chosen ? static_cast<double>(in.ref_chosen[i]) : 0.0;
  const double rl = in.ref_rejected ? static_cast<double>(in.ref_rejected[i]) : 0.0;
  switch (set) {
    case 0: return w - l;
    case 1: return rw - rl;
    case 2: return w - rw;
    default: return l - rl;
  }
}
// Whether (a, ia) sorts before (b, ib).
RK_HD bool aot_before(double a, int64_t ia, double b, int64_t ib) {
  const bool na = is_nan(a), nb = is_nan(b);
  if (na != nb) return nb;
  if (!na && a != b) return a < b;
  return ia < ib;
}
// The rank of pair i in key set `set` (O(P): the CUDA kernel; the CPU sorts).
RK_HD int64_t aot_rank(const PreferenceInputs& in, int set, int64_t i) {
  const double a = aot_key(in, set, i);
  int64_t r = 0;
  for (int64_t j = 0; j < in.pairs; ++j)
    if (aot_before(aot_key(in, set, j), j, a, i)) ++r;
  return r;
}
// The key sets a call needs (bit `set`).
RK_HD unsigned aot_sets(const PreferenceParams& p) {
  const double wa = p.mixed ? p.mix[static_cast<int>(PrefLoss::Aot)] : (p.loss == PrefLoss::Aot ? 1.0 : 0.0);
  const double wu = p.mixed ? p.mix[static_cast<int>(PrefLoss::AotUnpaired)] : (p.loss == PrefLoss::AotUnpaired ? 1.0 : 0.0);
  return (wa != 0 ? 3u : 0u) | (wu != 0 ? 12u : 0u);
}

// What the batch losses need besides pair i: the ranks (rank[s][i]) and their inverses (perm[s][k]
// = the pair at rank k) of the key sets used, and the SFT sums.
struct BatchTerms {
  const int64_t* rank[kAotKeys] = {nullptr, nullptr, nullptr, nullptr};
  const int64_t* perm[kAotKeys] = {nullptr, nullptr, nullptr, nullptr};
  // SFT (TRL 'sft': cross-entropy over every chosen completion token of the batch) from sequence
  // sums: L = -sum_i w_i / sum_i Lw_i for every pair; dL_mean/dw_j = -1 / sum_i Lw_i.
  double sft_loss = 0;  // -sum w / sum Lw
  double sft_grad = 0;  // -P / sum Lw: the per-pair gradient, times 1/P at the store like the others
};
// sum w and sum Lw in pair order (both backends: this order, in double).
RK_HD double sft_loss_of(double sum_w, double sum_len) { return -sum_w / sum_len; }
RK_HD double sft_grad_of(double pairs, double sum_len) { return -pairs / sum_len; }

// Weight of loss k in this call.
RK_HD double loss_weight(const PreferenceParams& p, int k) {
  return p.mixed ? p.mix[k] : (static_cast<int>(p.loss) == k ? 1.0 : 0.0);
}

// One AOT rank term: L = smoothed(beta delta, e), *dd = dL/ddelta.
RK_HD double aot_term(double delta, double beta, double e, double* dd) {
  double dx;
  const double L = smoothed(beta * delta, e, &dx);
  *dd = beta * dx;
  return L;
}

// Pair i on the general path: sum_k weight_k L_k,i (per-pair losses through pair_loss, the batch
// ones through `bt`), its gradients, and TRL's rewards beta (w - rw), beta (l - rl).
RK_HD PairResult pair_general(const PreferenceInputs& in, const PreferenceParams& p, const BatchTerms& bt, int64_t i) {
  const PairInput x = load_pair(in, p, i);
  PairResult r{0, p.beta * (x.w - x.rw), p.beta * (x.l - x.rl), 0, 0};
  PreferenceParams q = p;
  q.mixed = false;
  q.nll_weight = 0;
  for (int k = 0; k < kPrefLossCount; ++k) {
    const double wk = loss_weight(p, k);
    if (wk == 0) continue;
    const PrefLoss L = static_cast<PrefLoss>(k);
    if (L == PrefLoss::Sft) {
      r.loss += wk * bt.sft_loss;
      r.gc += wk * bt.sft_grad;
    } else if (L == PrefLoss::Aot || L == PrefLoss::AotUnpaired) {
      const int s = L == PrefLoss::Aot ? 0 : 2;
      const int64_t ka = bt.rank[s][i];
      double dd;
      const double La = aot_term(aot_key(in, s, i) - aot_key(in, s + 1, bt.perm[s + 1][ka]), p.beta, p.label_smoothing, &dd);
      r.loss += wk * La;
      r.gc += wk * dd;
      if (L == PrefLoss::Aot) {
        r.gr -= wk * dd;
      } else {
        const int64_t kb = bt.rank[s + 1][i];
        double db;
        aot_term(aot_key(in, s, bt.perm[s][kb]) - aot_key(in, s + 1, i), p.beta, p.label_smoothing, &db);
        r.gr -= wk * db;
      }
    } else {
      q.loss = L;
      const PairResult t = pair_loss(x, q);
      r.loss += wk * t.loss;
      r.gc += wk * t.gc;
      r.gr += wk * t.gr;
    }
  }
  if (p.nll_weight != 0) {
    r.loss += p.nll_weight * (-x.w * x.inv_lw);
    r.gc += -p.nll_weight * x.inv_lw;
  }
  if (x.nan_input) r.loss = r.gc = r.gr = NAN;
  return r;
}

// ---- LD-DPO (TRL dpo_trainer ld_alpha) ------------------------------------------------------
// Row b of a (B, T) array: its completion tokens (mask != 0) in order, n of them. The shared length
// s = min(n_w, n_l) of the pair; a completion token at position k (1-based among the row's
// completion tokens) is shared when k <= s, verbose otherwise. The sequence log-prob is
//   shared_sum + alpha * verbose_sum      (both sums in token order, in double),
// and its derivative with respect to a token is 1 (shared), alpha (verbose) or 0 (not a completion
// token, never read: TRL zeroes those log-probs first).
RK_HD int64_t ld_count(const uint8_t* m, int64_t o, int64_t T) {
  if (!m) return T;
  int64_t n = 0;
  for (int64_t t = 0; t < T; ++t) n += m[o + t] != 0 ? 1 : 0;
  return n;
}
RK_HD double ld_row(const float* x, const uint8_t* m, int64_t o, int64_t T, int64_t shared, double alpha, float* w) {
  double s = 0, v = 0;
  int64_t k = 0;
  for (int64_t t = 0; t < T; ++t) {
    if (m && m[o + t] == 0) {
      if (w) w[o + t] = 0.0f;
      continue;
    }
    ++k;
    if (k <= shared) {
      s += static_cast<double>(x[o + t]);
      if (w) w[o + t] = 1.0f;
    } else {
      v += static_cast<double>(x[o + t]);
      if (w) w[o + t] = static_cast<float>(alpha);
    }
  }
  return s + alpha * v;
}
// Pair b: both sequence log-probs (and the weights where asked).
RK_HD void ld_pair(const LdInputs& in, double alpha, int64_t b, const LdOutputs& out) {
  const int64_t T = in.seq_len, o = b * T;
  const int64_t nw = ld_count(in.chosen_mask, o, T), nl = ld_count(in.rejected_mask, o, T);
  const int64_t s = nw < nl ? nw : nl;
  out.chosen[b] = static_cast<float>(ld_row(in.chosen, in.chosen_mask, o, T, s, alpha, out.chosen_weights));
  out.rejected[b] = static_cast<float>(ld_row(in.rejected, in.rejected_mask, o, T, s, alpha, out.rejected_weights));
}

// KTO, one item: r = logp - ref, x = beta (r - z0);
//   desirable   L = w_d (1 - s(x)) = w_d s(-x),  dL/dlogp = -w_d beta s(x) s(-x)
//   undesirable L = w_u (1 - s(-x)) = w_u s(x),  dL/dlogp =  w_u beta s(x) s(-x)
struct KtoItem {
  double loss, grad;  // L_i and dL_i/dlogp_i (of the item's loss, not the mean)
  double reward;      // beta r
};
RK_HD KtoItem kto_item(double logp, double ref, bool desirable, const KtoParams& p) {
  const double beta = p.beta;
  const double r = logp - ref;
  const double x = beta * (r - p.kl);
  const Logistic lg = logistic(x);
  const double spx = lg.s_pos, smx = lg.s_neg;
  KtoItem it;
  if (desirable) {
    it.loss = p.desirable_weight * smx;
    it.grad = -p.desirable_weight * beta * spx * smx;
  } else {
    it.loss = p.undesirable_weight * spx;
    it.grad = p.undesirable_weight * beta * spx * smx;
  }
  it.reward = beta * r;
  return it;
}

// KTO item i (ref may be null: 0): stores its loss, reward and gradient (of the mean loss: times
// inv_n = 1 / N); returns its summands: loss, the reward as desirable or undesirable (the other 0),
// and the desirable count (1 or 0).
struct KtoSums {
  double loss, des, undes, ndes;
};
RK_HD KtoSums store_kto(int64_t i, const float* logp, const float* ref, const uint8_t* desirable, const KtoParams& p,
                        double inv_n, float* losses, float* rewards, float* grad) {
  const bool d = desirable[i] != 0;
  const KtoItem it = kto_item(static_cast<double>(logp[i]), ref ? static_cast<double>(ref[i]) : 0.0, d, p);
  losses[i] = static_cast<float>(it.loss);
  rewards[i] = static_cast<float>(it.reward);
  grad[i] = static_cast<float>(it.grad * inv_n);
  KtoSums s;
  s.loss = it.loss;
  s.des = d ? it.reward : 0.0;
  s.undes = d ? 0.0 : it.reward;
  s.ndes = d ? 1.0 : 0.0;
  return s;
}

// TGDPO, one token: the chosen term m beta (1 + a beta rw_t) (w_t - ref_w,t) of z_w and the
// rejected term n beta (1 - a beta rl_t) (l_t - ref_l,t) of z_l (callers skip m = 0 / n = 0).
RK_HD double tgdpo_chosen_term(double m, double beta, double alpha, double reward, double w, double ref) {
  return m * beta * (1 + alpha * beta * reward) * (w - ref);
}
RK_HD double tgdpo_rejected_term(double n, double beta, double alpha, double reward, double l, double ref) {
  return n * beta * (1 - alpha * beta * reward) * (l - ref);
}
// One row from z = z_w - z_l: L = -log s(z) = softplus(-z) and g = dloss/dz of the mean loss
// (inv_b = 1 / B).
struct TgdpoRow {
  double loss, g;
};
RK_HD TgdpoRow tgdpo_row(double z, double inv_b) {
  const Logistic lg = logistic(z);
  return TgdpoRow{lg.sp_neg, -lg.s_neg * inv_b};
}
// The token gradients dloss/dw_t and dloss/dl_t from the row's g.
RK_HD double tgdpo_chosen_grad(double g, double m, double beta, double alpha, double reward) {
  return m != 0 ? g * m * beta * (1 + alpha * beta * reward) : 0.0;
}
RK_HD double tgdpo_rejected_grad(double g, double n, double beta, double alpha, double reward) {
  return n != 0 ? -g * n * beta * (1 - alpha * beta * reward) : 0.0;
}

}  // namespace core
}  // namespace rk
