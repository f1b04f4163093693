// Multi-objective ops (docs/papers/dynamic-reward-weighting.md, docs/papers/op-gfn.md): the formulas
// shared by the CPU kernels (native/kernels/moo.cc) and the CUDA launches (cuda/moo.cu).
//   paretoFront            botorch is_non_dominated(Y, deduplicate=False), maximisation
//   rewardWeightUpdate     s = (G G^T) 1, w <- softmax(log w + lr s / mu); the Gram product in fixed
//                          chunks of kGramChunk columns, kGramLanes lanes per chunk and a fixed tree
//   hypervolumeMetaReward  exact hypervolume by the recursive slicing of the paper's code, iteratively
//   trajectoryBalanceLoss, orderPreservingLoss   per-row sums of the masked step log-probs
#pragma once
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "advantages.h"  // TokenMask, mask_weight
#include "hd.h"

namespace rk {
namespace core {

// ---- Pareto front ------------------------------------------------------------------------------

// Point i of B points (row-major, K coordinates) is dominated when another point is >= in every
// coordinate and > in one (a comparison with NaN is false: a NaN point is never dominated, and
// dominates nothing). Duplicates do not dominate each other, so all copies stay on the front.
RK_HD bool pareto_dominated(const float* pts, int64_t B, int64_t K, int64_t i) {
  const float* p = pts + i * K;
  for (int64_t j = 0; j < B; ++j) {
    if (j == i) continue;
    const float* q = pts + j * K;
    bool ge = true, gt = false;
    for (int64_t k = 0; k < K; ++k) {
      if (!(q[k] >= p[k])) {
        ge = false;
        break;
      }
      if (q[k] > p[k]) gt = true;
    }
    if (ge && gt) return true;
  }
  return false;
}

// ---- Gram product and the mirror-descent weight update -------------------------------------------

constexpr int kGramLanes = 256;       // lanes of a chunk (one CUDA thread each)
constexpr int64_t kGramChunk = 8192;  // columns per chunk (a multiple of kGramLanes)

// Lane l of the chunk [lo, hi) of rows a and b: sum over c = lo + l, lo + l + kGramLanes, ... < hi of
// a[c] b[c] in double (each f32 x f32 product is exact in double), in ascending c.
RK_HD double gram_lane(const float* a, const float* b, int64_t lo, int64_t hi, int l) {
  double s = 0;
  for (int64_t c = lo + l; c < hi; c += kGramLanes) s += static_cast<double>(a[c]) * static_cast<double>(b[c]);
  return s;
}
// The fixed tree over the lanes: s[l] += s[l + w] for w = kGramLanes/2, ..., 1; the chunk's sum is s[0].
RK_HD void gram_tree_level(double* s, int l, int w) {
  if (l < w) s[l] += s[l + w];
}
// Pair p of the upper triangle (i <= j), row-major: (0,0), (0,1), ..., (0,K-1), (1,1), ...
RK_HD void gram_pair(int64_t K, int64_t p, int64_t* i, int64_t* j) {
  int64_t r = 0;
  while (p >= K - r) {
    p -= K - r;
    ++r;
  }
  *i = r;
  *j = r + p;
}
// z_i = log w_i + lr s_i / mu with s_i = sum_j gram[i][j] (j ascending).
RK_HD double weight_logit(int64_t K, const double* gram, const float* w, double lr, double mu, int64_t i, double* s_i) {
  double s = 0;
  for (int64_t j = 0; j < K; ++j) s += gram[i * K + j];
  *s_i = s;
  return std::log(static_cast<double>(w[i])) + lr * s / mu;
}
// The update from the full Gram matrix (K x K, symmetric, double): w'_i = exp(z_i - max z) / sum_k
// exp(z_k - max z) (k ascending); s_out = the row sums of the Gram matrix.
RK_HD void weight_update(int64_t K, const double* gram, const float* w, double lr, double mu, float* w_out,
                         float* s_out) {
  double zmax = -INFINITY, s;
  for (int64_t i = 0; i < K; ++i) {
    const double z = weight_logit(K, gram, w, lr, mu, i, &s);
    s_out[i] = static_cast<float>(s);
    if (z > zmax) zmax = z;
  }
  double sum = 0;
  for (int64_t i = 0; i < K; ++i) sum += std::exp(weight_logit(K, gram, w, lr, mu, i, &s) - zmax);
  for (int64_t i = 0; i < K; ++i) w_out[i] = static_cast<float>(std::exp(weight_logit(K, gram, w, lr, mu, i, &s) - zmax) / sum);
}

// ---- Hypervolume ---------------------------------------------------------------------------------

constexpr int kHvMaxK = 8;

// The points of one hypervolume: front rows 0..M-1 (row-major, K), then `current` as row M when
// with_current; every coordinate times sign[k] (+1 maximise, -1 minimise, the code's _to_maximization).
struct HvPoints {
  const double* front;
  const double* current;
  int64_t M, K;
  bool with_current;
  const double* sign;
  RK_HD int64_t count() const { return M + (with_current ? 1 : 0); }
  RK_HD double at(int64_t j, int64_t k) const { return sign[k] * (j < M ? front[j * K + k] : current[k]); }
};

// The hypervolume of the paper's code (Fonseca et al.'s recursive slicing, maximisation) with
// reference ref (already signed): along dimension d the distinct values v_1 < v_2 < ... of the points
// still in the slice are visited in order; a slice of width v - base (base: the reference, then the
// last value that opened a slice) counts when the width is > 0, times the hypervolume of the points
// with coordinate d >= v over the remaining dimensions; the last dimension gives max_j x_j - ref
// (not clamped at 0, as the code). No points: 0. Iterative (depth K <= kHvMaxK), no allocation.
RK_HD double hypervolume(const HvPoints& P, const double* ref) {
  const int64_t n = P.count(), K = P.K;
  if (n == 0) return 0.0;
  double thr[kHvMaxK], base[kHvMaxK], acc[kHvMaxK], width[kHvMaxK];
  int d = 0;
  thr[0] = -INFINITY;
  base[0] = ref[0];
  acc[0] = 0;
  for (;;) {
    double val = 0;
    bool up = false;
    if (d == K - 1) {
      double m = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        bool in = true;
        for (int e = 0; e < d && in; ++e) in = P.at(j, e) >= thr[e];
        if (in && P.at(j, d) > m) m = P.at(j, d);
      }
      val = m - ref[d];
      up = true;
    } else {
      double v = INFINITY;
      bool found = false;
      for (int64_t j = 0; j < n; ++j) {
        bool in = true;
        for (int e = 0; e < d && in; ++e) in = P.at(j, e) >= thr[e];
        const double x = P.at(j, d);
        if (in && x > thr[d] && x < v) {
          v = x;
          found = true;
        }
      }
      if (!found) {
        val = acc[d];
        up = true;
      } else {
        thr[d] = v;
        const double w = v - base[d];
        if (w > 0) {
          width[d] = w;
          ++d;
          thr[d] = -INFINITY;
          base[d] = ref[d];
          acc[d] = 0;
        }
        continue;
      }
    }
    if (up) {
      if (d == 0) return val;
      --d;
      acc[d] += width[d] * val;
      base[d] = thr[d];
    }
  }
}

// The meta-reward of a hypervolume contribution (clamped at 0 first, as the code): 0.5 + 1.5 tanh(dHV).
RK_HD double hv_meta_reward(double contribution) { return 0.5 + 1.5 * std::tanh(contribution); }

// The signs of the K objectives (the code's _to_maximization): -1 where maximize[k] == 0, else +1
// (maximize null: every objective maximised).
RK_HD void hv_signs(const uint8_t* maximize, int64_t K, double* sign) {
  for (int64_t k = 0; k < K; ++k) sign[k] = maximize == nullptr || maximize[k] != 0 ? 1.0 : -1.0;
}

// x is neither NaN nor infinite (comparisons only: the same on the host and the device).
RK_HD bool hv_finite(double x) { return x >= -DBL_MAX && x <= DBL_MAX; }
// The first value that is not finite, in the order current (K), front (M x K), reference (K): its
// index in that concatenation, or -1 when every value is finite.
RK_HD int64_t hv_first_bad(const double* current, const double* front, int64_t M, const double* ref, int64_t K) {
  for (int64_t k = 0; k < K; ++k)
    if (!hv_finite(current[k])) return k;
  for (int64_t i = 0; i < M * K; ++i)
    if (!hv_finite(front[i])) return K + i;
  for (int64_t k = 0; k < K; ++k)
    if (!hv_finite(ref[k])) return K + M * K + k;
  return -1;
}

// The scalars of hypervolumeMetaReward: the hypervolume of front (M x K) without and with current
// above ref (all unsigned; sign from hv_signs), the contribution max(0, with - without) and the
// meta-reward. One thread's work (the CPU kernel and a one-thread CUDA kernel call it alike).
struct HvScalars {
  double hv_without = 0, hv_with = 0, contribution = 0, meta = 0;
};
RK_HD HvScalars hv_scalars(const double* front, int64_t M, const double* current, const double* ref,
                           const uint8_t* maximize, int64_t K) {
  double sign[kHvMaxK], sref[kHvMaxK];
  hv_signs(maximize, K, sign);
  for (int64_t k = 0; k < K; ++k) sref[k] = sign[k] * ref[k];
  HvScalars r;
  r.hv_without = hypervolume(HvPoints{front, current, M, K, false, sign}, sref);
  r.hv_with = hypervolume(HvPoints{front, current, M, K, true, sign}, sref);
  const double d = r.hv_with - r.hv_without;
  r.contribution = d > 0 ? d : 0.0;
  r.meta = hv_meta_reward(r.contribution);
  return r;
}

// A reward times the meta-reward, in double, rounded once to f32.
RK_HD float hv_scale(float reward, double meta) { return static_cast<float>(static_cast<double>(reward) * meta); }

// ---- GFlowNet rows ---------------------------------------------------------------------------------

// The (B, T) arrays of a GFlowNet loss (host or device pointers alike): logPF, logPB, the mask (data
// null: every step), logZ (B values, or 1 shared: z_per_row false).
struct GfnArgs {
  const float* lpf = nullptr;
  const float* lpb = nullptr;
  TokenMask mask;
  const float* logz = nullptr;
  bool z_per_row = false;
  int64_t B = 0, T = 0;
};

// Row r of (B, T): sum_t m_t logPF_t and sum_t m_t logPB_t in token order (mask.data null: every step).
RK_HD void gfn_row_sums(const float* lpf, const float* lpb, const TokenMask& mask, int64_t r, int64_t T, double* sf,
                        double* sb) {
  double a = 0, b = 0;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t i = r * T + t;
    const double m = mask.data ? mask_weight(mask, i) : 1.0;
    if (m != 0) {
      a += m * static_cast<double>(lpf[i]);
      b += m * static_cast<double>(lpb[i]);
    }
  }
  *sf = a;
  *sb = b;
}
// Row r's step gradients: g m_t wrt logPF, -g m_t wrt logPB (0 where m_t = 0).
RK_HD void gfn_row_grads(const TokenMask& mask, int64_t r, int64_t T, double g, float* gpf, float* gpb) {
  for (int64_t t = 0; t < T; ++t) {
    const int64_t i = r * T + t;
    const double m = mask.data ? mask_weight(mask, i) : 1.0;
    gpf[i] = m != 0 ? static_cast<float>(g * m) : 0.0f;
    gpb[i] = m != 0 ? static_cast<float>(-g * m) : 0.0f;
  }
}

}  // namespace core
using core::GfnArgs;

}  // namespace rk
