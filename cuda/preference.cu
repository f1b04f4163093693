// Preference losses on CUDA (contracts in preference.h; the CPU twins are
// native/kernels/preference.cc and preference_simd.inl). One thread per pair, all in double with
// the same stable logistic forms (one exp and one log1p per logistic term, TRL's cap_exp);
// per-block sums in a fixed tree, then the block partials added in order by one block.
#include "preference.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "small_common.cuh"

namespace rkcuda {
namespace {

using namespace small;

constexpr double kExpCap = 88.72283905206835;  // log(FLT_MAX)
constexpr double kOrpoMinNegLogp = 1e-12;

__device__ __forceinline__ double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
__device__ __forceinline__ double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  const double e = exp(x);
  return e / (1.0 + e);
}
__device__ __forceinline__ double cap_exp(double v, double* d) {
  if (v >= kExpCap) {
    *d = 0;
    return exp(kExpCap);
  }
  const double e = exp(v);
  *d = e;
  return e;
}
struct Logistic {
  double sp_pos, sp_neg, s_pos, s_neg;
};
__device__ __forceinline__ Logistic logistic(double x) {
  const double t = exp(-fabs(x));
  const double lp = log1p(t);
  const double inv = 1.0 / (1.0 + t);
  Logistic g;
  g.sp_pos = (x > 0 ? x : 0.0) + lp;
  g.sp_neg = (x < 0 ? -x : 0.0) + lp;
  g.s_pos = x >= 0 ? inv : t * inv;
  g.s_neg = x >= 0 ? t * inv : inv;
  return g;
}
__device__ __forceinline__ double smoothed(double x, double e, double* dx) {
  const Logistic g = logistic(x);
  if (e == 0) {
    *dx = -g.s_neg;
    return g.sp_neg;
  }
  *dx = -(1 - e) * g.s_neg + e * g.s_pos;
  return (1 - e) * g.sp_neg + e * g.sp_pos;
}
__device__ __forceinline__ double fmap(int f, double a, double u, double* df) {
  switch (f) {
    case 1: {  // forward KL
      double d;
      const double e = cap_exp(-u, &d);
      *df = d;
      return -e;
    }
    case 2: *df = sigmoid(-u); return u - softplus(u);  // JS
    case 3: {  // alpha
      double d;
      const double e = cap_exp(-a * u, &d);
      *df = d;
      return (1.0 - e) / a;
    }
    default: *df = 1; return u;
  }
}

struct PairResult {
  double loss, rc, rr, gc, gr;
};

// preference.cc pair_loss, one pair.
__device__ PairResult pair_loss(const rk::PreferenceInputs& in, const rk::PreferenceParams& p, int64_t i) {
  const double w = in.chosen[i], l = in.rejected[i];
  const double beta = p.beta, e = p.label_smoothing;
  PairResult r{0, 0, 0, 0, 0};
  double inv_lw = 1, inv_ll = 1;
  if (in.chosen_len) inv_lw = 1.0 / in.chosen_len[i];
  if (in.rejected_len) inv_ll = 1.0 / in.rejected_len[i];
  switch (p.loss) {
    case rk::PrefLoss::Simpo: {
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
    case rk::PrefLoss::Cpo: {
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
    case rk::PrefLoss::Orpo: {
      double aw = w * inv_lw, al = l * inv_ll;
      double kw = 1, kl = 1;
      if (!(aw <= -kOrpoMinNegLogp) && !isnan_d(aw)) {
        aw = -kOrpoMinNegLogp;
        kw = 0;
      }
      if (!(al <= -kOrpoMinNegLogp) && !isnan_d(al)) {
        al = -kOrpoMinNegLogp;
        kl = 0;
      }
      const double emw = expm1(aw), eml = expm1(al);
      const double h = (aw - log(-emw)) - (al - log(-eml));
      const Logistic g = logistic(h);
      const double dh = -beta * g.s_neg;
      r.loss = -(w * inv_lw) + beta * g.sp_neg;
      r.gc = -inv_lw + dh * kw * (-1.0 / emw) * inv_lw;
      r.gr = -dh * kl * (-1.0 / eml) * inv_ll;
      r.rc = beta * (w * inv_lw);
      r.rr = beta * (l * inv_ll);
      break;
    }
    case rk::PrefLoss::Bt: {
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
      const double rw = in.ref_chosen ? static_cast<double>(in.ref_chosen[i]) : 0.0;
      const double rl = in.ref_rejected ? static_cast<double>(in.ref_rejected[i]) : 0.0;
      const bool ipo = p.loss == rk::PrefLoss::Ipo;
      const double sc = ipo ? inv_lw : 1.0, sr = ipo ? inv_ll : 1.0;
      const double c = (w - rw) * sc, rho = (l - rl) * sr;
      r.rc = beta * c;
      r.rr = beta * rho;
      double dc = 0, dr = 0;
      const double bc = beta * c, br = beta * rho;
      switch (p.loss) {
        case rk::PrefLoss::NcaPair: {
          const Logistic gc = logistic(bc), gr = logistic(br);
          r.loss = gc.sp_neg + 0.5 * gc.sp_pos + 0.5 * gr.sp_pos;
          dc = beta * (-gc.s_neg + 0.5 * gc.s_pos);
          dr = beta * 0.5 * gr.s_pos;
          break;
        }
        case rk::PrefLoss::BcoPair: {
          const Logistic gc = logistic(bc), gr = logistic(br);
          r.loss = gc.sp_neg + gr.sp_pos;
          dc = -beta * gc.s_neg;
          dr = beta * gr.s_pos;
          break;
        }
        case rk::PrefLoss::SppoHard: {
          const double u = c - 0.5 / beta, v = rho + 0.5 / beta;
          r.loss = u * u + v * v;
          dc = 2 * u;
          dr = 2 * v;
          break;
        }
        case rk::PrefLoss::ApoZero: {
          const Logistic gc = logistic(bc), gr = logistic(br);
          r.loss = gc.s_neg + gr.s_pos;
          dc = -beta * gc.s_pos * gc.s_neg;
          dr = beta * gr.s_pos * gr.s_neg;
          break;
        }
        case rk::PrefLoss::ApoDown: {
          const double bd = beta * (c - rho);
          const Logistic gc = logistic(bc), gd = logistic(bd);
          const double g1 = gc.s_pos * gc.s_neg, g2 = gd.s_pos * gd.s_neg;
          r.loss = gc.s_pos + gd.s_neg;
          dc = beta * (g1 - g2);
          dr = beta * g2;
          break;
        }
        default: {
          double dfc, dfr;
          const int fd = static_cast<int>(p.fdiv);
          const double h = fmap(fd, p.f_alpha, c, &dfc) - fmap(fd, p.f_alpha, rho, &dfr);
          const double x = beta * h;
          double dh = 0;
          switch (p.loss) {
            case rk::PrefLoss::Sigmoid: {
              double dx;
              r.loss = smoothed(x, e, &dx);
              dh = beta * dx;
              break;
            }
            case rk::PrefLoss::Robust: {
              const Logistic g = logistic(x);
              r.loss = ((1 - e) * g.sp_neg - e * g.sp_pos) / (1 - 2 * e);
              dh = beta * (-(1 - e) * g.s_neg - e * g.s_pos) / (1 - 2 * e);
              break;
            }
            case rk::PrefLoss::Hinge:
              r.loss = x < 1 ? 1 - x : 0;
              dh = x < 1 ? -beta : 0;
              break;
            case rk::PrefLoss::Ipo: {
              const double u = h - 0.5 / beta;
              r.loss = u * u;
              dh = 2 * u;
              break;
            }
            case rk::PrefLoss::ExoPair: {
              const double ee = e == 0 ? 1e-3 : e;
              const Logistic g = logistic(x);
              const double spx = g.s_pos, smx = g.s_neg;
              r.loss = spx * (-g.sp_neg - log1p(-ee)) + smx * (-g.sp_pos - log(ee));
              dh = beta * spx * smx * (x - (log1p(-ee) - log(ee)));
              break;
            }
            case rk::PrefLoss::Discopop: {
              const double t = p.tau;
              const double sp = sigmoid(x / t), sm = sigmoid(-x / t);
              const double spm = softplus(-x);
              double dE;
              const double E = cap_exp(-x - softplus(-x / t), &dE);
              r.loss = spm * sm + E;
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
  bool bad = isnan_d(w) || isnan_d(l);
  if (in.ref_chosen) bad = bad || isnan_d(in.ref_chosen[i]);
  if (in.ref_rejected) bad = bad || isnan_d(in.ref_rejected[i]);
  if (in.margin) bad = bad || isnan_d(in.margin[i]);
  if (bad) r.loss = r.gc = r.gr = NAN;
  return r;
}

bool needs_lengths(const rk::PreferenceParams& p) {  // = rk::preference_needs_lengths
  return p.loss == rk::PrefLoss::Ipo || p.loss == rk::PrefLoss::Simpo || p.loss == rk::PrefLoss::Orpo ||
         (p.loss == rk::PrefLoss::Cpo && p.alpha != 0) || p.nll_weight != 0;
}

__global__ void __launch_bounds__(kThreads) check_lengths(const int32_t* a, const int32_t* b, int64_t n,
                                                         unsigned long long* slot) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i < n && (a[i] < 1 || b[i] < 1)) note_bad(slot, i);
}

struct PrefOut {
  float *losses, *rc, *rr, *gc, *gr;
};

__global__ void __launch_bounds__(kThreads) pref_pairs(rk::PreferenceInputs in, rk::PreferenceParams p,
                                                      PrefOut o, double inv_n, double* parts,
                                                      const unsigned long long* slot) {
  __shared__ double sh[kThreads];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const bool bad = slot && *slot != kNone;
  double sl = 0, sa = 0, sm = 0;
  if (i < in.pairs) {
    if (bad) {
      o.losses[i] = o.rc[i] = o.rr[i] = o.gc[i] = o.gr[i] = NAN;
      sl = sa = sm = NAN;
    } else {
      const PairResult r = pair_loss(in, p, i);
      o.losses[i] = static_cast<float>(r.loss);
      o.rc[i] = static_cast<float>(r.rc);
      o.rr[i] = static_cast<float>(r.rr);
      o.gc[i] = static_cast<float>(r.gc * inv_n);
      o.gr[i] = static_cast<float>(r.gr * inv_n);
      sl = r.loss;
      sa = r.rc > r.rr ? 1.0 : 0.0;
      sm = r.rc - r.rr;
    }
  }
  sl = block_sum(sl, sh);
  sa = block_sum(sa, sh);
  sm = block_sum(sm, sh);
  if (threadIdx.x == 0) {
    parts[3 * blockIdx.x] = sl;
    parts[3 * blockIdx.x + 1] = sa;
    parts[3 * blockIdx.x + 2] = sm;
  }
}

// Sums `width` columns of `items` partial rows in order (contiguous runs per thread, then a tree).
// mode 0: out = sums * inv_n (preference, tgdpo). mode 1: kto (loss mean, reward means).
__global__ void __launch_bounds__(kThreads) sum_parts(const double* parts, int64_t items, int width,
                                                     double inv_n, double n, int mode, double* out) {
  __shared__ double sh[kThreads];
  int64_t b0, b1;
  share(items, threadIdx.x, &b0, &b1);
  double s[4] = {0, 0, 0, 0};
  for (int64_t it = b0; it < b1; ++it)
    for (int k = 0; k < width; ++k) s[k] += parts[width * it + k];
  for (int k = 0; k < width; ++k) s[k] = block_sum(s[k], sh);
  if (threadIdx.x == 0) {
    if (mode == 0) {
      for (int k = 0; k < width; ++k) out[k] = s[k] * inv_n;
    } else {
      const double nd = s[3], nu = n - s[3];
      out[0] = s[0] * inv_n;
      out[1] = nd > 0 ? s[1] / nd : NAN;
      out[2] = nu > 0 ? s[2] / nu : NAN;
    }
  }
}

__global__ void __launch_bounds__(kThreads) kto_items(int64_t n, const float* logp, const float* ref,
                                                     const uint8_t* des, rk::KtoParams p, float* losses,
                                                     float* rewards, float* grad, double inv_n, double* parts) {
  __shared__ double sh[kThreads];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  double s[4] = {0, 0, 0, 0};
  if (i < n) {
    const double beta = p.beta;
    const double r = static_cast<double>(logp[i]) - (ref ? static_cast<double>(ref[i]) : 0.0);
    const double x = beta * (r - p.kl);
    const Logistic lg = logistic(x);
    double L, g;
    if (des[i]) {
      L = p.desirable_weight * lg.s_neg;
      g = -p.desirable_weight * beta * lg.s_pos * lg.s_neg;
      s[1] = beta * r;
      s[3] = 1;
    } else {
      L = p.undesirable_weight * lg.s_pos;
      g = p.undesirable_weight * beta * lg.s_pos * lg.s_neg;
      s[2] = beta * r;
    }
    losses[i] = static_cast<float>(L);
    rewards[i] = static_cast<float>(beta * r);
    grad[i] = static_cast<float>(g * inv_n);
    s[0] = L;
  }
  for (int k = 0; k < 4; ++k) {
    const double v = block_sum(s[k], sh);
    if (threadIdx.x == 0) parts[4 * blockIdx.x + k] = v;
  }
}

template <typename M>
__global__ void __launch_bounds__(kThreads) tgdpo_rows(rk::TgdpoInputs in, double beta, double alpha,
                                                      float* losses, float* crw, float* rrw, float* gcw,
                                                      float* grw, double* parts) {
  __shared__ double sh[kThreads];
  const int64_t b = blockIdx.x, T = in.seq_len, o = b * T;
  const M* mw = static_cast<const M*>(in.chosen_mask);
  const M* ml = static_cast<const M*>(in.rejected_mask);
  double zw = 0, zl = 0;
  for (int64_t t = threadIdx.x; t < T; t += kThreads) {
    const double m = static_cast<double>(mw[o + t]);
    if (m != 0)
      zw += m * beta * (1 + alpha * beta * in.chosen_token_rewards[o + t]) *
            (static_cast<double>(in.chosen[o + t]) - in.ref_chosen[o + t]);
    const double n = static_cast<double>(ml[o + t]);
    if (n != 0)
      zl += n * beta * (1 - alpha * beta * in.rejected_token_rewards[o + t]) *
            (static_cast<double>(in.rejected[o + t]) - in.ref_rejected[o + t]);
  }
  zw = block_sum(zw, sh);
  zl = block_sum(zl, sh);
  const double z = zw - zl;
  const Logistic lg = logistic(z);
  const double L = lg.sp_neg, g = -lg.s_neg / static_cast<double>(in.batch);
  for (int64_t t = threadIdx.x; t < T; t += kThreads) {
    const double m = static_cast<double>(mw[o + t]);
    const double n = static_cast<double>(ml[o + t]);
    gcw[o + t] = static_cast<float>(m != 0 ? g * m * beta * (1 + alpha * beta * in.chosen_token_rewards[o + t]) : 0.0);
    grw[o + t] = static_cast<float>(n != 0 ? -g * n * beta * (1 - alpha * beta * in.rejected_token_rewards[o + t]) : 0.0);
  }
  if (threadIdx.x == 0) {
    losses[b] = static_cast<float>(L);
    crw[b] = static_cast<float>(zw);
    rrw[b] = static_cast<float>(zl);
    parts[3 * b] = L;
    parts[3 * b + 1] = zw > zl ? 1.0 : 0.0;
    parts[3 * b + 2] = z;
  }
}

}  // namespace

Result preference_loss(const PreferenceLossArgs& a, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t n = a.in.pairs;
  if (n < 1) return bad_arg("pairs", n);
  if (n > (int64_t{0x7fffffff} - kThreads) * kThreads / 2) return bad_arg("pairs", n);
  if (!a.in.chosen) return bad_arg("chosen", 0);
  if (!a.in.rejected) return bad_arg("rejected", 0);
  if (!a.losses || !a.chosen_rewards || !a.rejected_rewards || !a.grad_chosen || !a.grad_rejected)
    return bad_arg("outputs", 0);
  if (!a.scalars) return bad_arg("scalars", 0);
  const int loss = static_cast<int>(a.params.loss), fd = static_cast<int>(a.params.fdiv);
  if (loss < 0 || loss > 14) return bad_arg("loss", loss);
  if (fd < 0 || fd > 3) return bad_arg("fdiv", fd);
  rk::PreferenceInputs in = a.in;
  const bool lens = needs_lengths(a.params);
  Slot slot(a.bad_index, st);
  if (lens) {
    if (!in.chosen_len) return bad_arg("chosen_len", 0);
    if (!in.rejected_len) return bad_arg("rejected_len", 0);
    Result r = slot.init();
    if (!r.ok()) return r;
    check_lengths<<<grid_for(n, kThreads), kThreads, 0, st>>>(in.chosen_len, in.rejected_len, n, slot.p);
    RK_CUDA_CHECK(cudaGetLastError());
  } else {
    in.chosen_len = nullptr;
    in.rejected_len = nullptr;
  }
  const int nb = grid_for(n, kThreads);
  Scratch ws(st);
  {
    Result r = ws.alloc(sizeof(double) * 3 * static_cast<size_t>(nb));
    if (!r.ok()) return r;
  }
  double* parts = static_cast<double*>(ws.p);
  const PrefOut o{a.losses, a.chosen_rewards, a.rejected_rewards, a.grad_chosen, a.grad_rejected};
  const double inv_n = 1.0 / static_cast<double>(n);
  pref_pairs<<<nb, kThreads, 0, st>>>(in, a.params, o, inv_n, parts, lens ? slot.p : nullptr);
  RK_CUDA_CHECK(cudaGetLastError());
  sum_parts<<<1, kThreads, 0, st>>>(parts, nb, 3, inv_n, static_cast<double>(n), 0, a.scalars);
  RK_CUDA_CHECK(cudaGetLastError());
  if (!lens) return Result{};
  Result r = slot.finish("chosen_len", in.chosen_len);
  if (r.code == kBadTarget && r.value >= 1) {  // the chosen length was fine: the rejected one
    int32_t v = 0;
    RK_CUDA_CHECK(cudaMemcpyAsync(&v, in.rejected_len + r.index, sizeof v, cudaMemcpyDeviceToHost, st));
    RK_CUDA_CHECK(cudaStreamSynchronize(st));
    r.value = v;
    r.where = "rejected_len";
  }
  return r;
}

Result kto_loss(const KtoLossArgs& a, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (a.n < 1) return bad_arg("n", a.n);
  if (a.n > (int64_t{0x7fffffff} - kThreads) * kThreads / 2) return bad_arg("n", a.n);
  if (!a.logp) return bad_arg("logp", 0);
  if (!a.desirable) return bad_arg("desirable", 0);
  if (!a.losses || !a.rewards || !a.grad) return bad_arg("outputs", 0);
  if (!a.scalars) return bad_arg("scalars", 0);
  const int nb = grid_for(a.n, kThreads);
  Scratch ws(st);
  {
    Result r = ws.alloc(sizeof(double) * 4 * static_cast<size_t>(nb));
    if (!r.ok()) return r;
  }
  double* parts = static_cast<double*>(ws.p);
  const double inv_n = 1.0 / static_cast<double>(a.n);
  kto_items<<<nb, kThreads, 0, st>>>(a.n, a.logp, a.ref, a.desirable, a.params, a.losses, a.rewards, a.grad, inv_n, parts);
  RK_CUDA_CHECK(cudaGetLastError());
  sum_parts<<<1, kThreads, 0, st>>>(parts, nb, 4, inv_n, static_cast<double>(a.n), 1, a.scalars);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

Result token_weighted_dpo_loss(const TgdpoArgs& a, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const rk::TgdpoInputs& in = a.in;
  if (in.batch < 1 || in.batch > 0x7fffffffLL) return bad_arg("batch", in.batch);
  if (in.seq_len < 0) return bad_arg("seq_len", in.seq_len);
  if (in.seq_len > 0 && (!in.chosen || !in.rejected || !in.ref_chosen || !in.ref_rejected ||
                         !in.chosen_token_rewards || !in.rejected_token_rewards || !in.chosen_mask ||
                         !in.rejected_mask || !a.grad_chosen || !a.grad_rejected))
    return bad_arg("per-token arrays", 0);
  if (!a.losses || !a.chosen_rewards || !a.rejected_rewards) return bad_arg("outputs", 0);
  if (!a.scalars) return bad_arg("scalars", 0);
  Scratch ws(st);
  {
    Result r = ws.alloc(sizeof(double) * 3 * static_cast<size_t>(in.batch));
    if (!r.ok()) return r;
  }
  double* parts = static_cast<double*>(ws.p);
  const unsigned nb = static_cast<unsigned>(in.batch);
  if (in.mask_is_f32)
    tgdpo_rows<float><<<nb, kThreads, 0, st>>>(in, a.beta, a.alpha, a.losses, a.chosen_rewards, a.rejected_rewards, a.grad_chosen, a.grad_rejected, parts);
  else
    tgdpo_rows<uint8_t><<<nb, kThreads, 0, st>>>(in, a.beta, a.alpha, a.losses, a.chosen_rewards, a.rejected_rewards, a.grad_chosen, a.grad_rejected, parts);
  RK_CUDA_CHECK(cudaGetLastError());
  sum_parts<<<1, kThreads, 0, st>>>(parts, in.batch, 3, 1.0 / static_cast<double>(in.batch), static_cast<double>(in.batch), 0, a.scalars);
  RK_CUDA_CHECK(cudaGetLastError());
  return Result{};
}

}  // namespace rkcuda
