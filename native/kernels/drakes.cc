// CPU kernels of the DRAKES ops (drakes.h). One row per task, every sum in a fixed order in double:
// results do not depend on the thread count. The noise is regenerated in each pass rather than
// stored; the only (N, V) buffers are the caller's output. This translation unit is compiled without
// -mfma, so the shared core's rounded arithmetic is not contracted (native/core/drakes.h).
#include "drakes.h"

#include <cmath>
#include <limits>

#include "../core/drakes.h"
#include "half.h"
#include "threadpool.h"

namespace rk {
namespace {

inline double load(const LogitsView& l, int64_t i) {
  switch (l.dtype) {
    case DType::F32: return static_cast<const float*>(l.data)[i];
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(l.data)[i]);
    default: return f16_to_f32(static_cast<const uint16_t*>(l.data)[i]);
  }
}

// Pass 1 of a row: the max score and its first index; false when the row has no distribution.
bool row_max(const LogitsView& l, const GumbelParams& p, double inv_tau, int64_t r, double* m_out, int32_t* arg_out) {
  const int64_t V = l.vocab;
  const int64_t base = r * V;
  double m = -std::numeric_limits<double>::infinity();
  int64_t arg = -1;
  bool bad = false;
  for (int64_t j = 0; j < V; ++j) {
    const double t = core::gumbel_score(load(l, base + j), core::gumbel_noise(p.seed, r, j), inv_tau);
    if (t != t) bad = true;
    if (t > m) {
      m = t;
      arg = j;
    }
  }
  *m_out = m;
  *arg_out = static_cast<int32_t>(arg);
  return !bad && arg >= 0 && m < std::numeric_limits<double>::infinity();
}

}  // namespace

Status gumbel_softmax_forward(const LogitsView& l, const GumbelParams& p, float* sample, int32_t* index) {
  const double inv_tau = 1.0 / p.temperature;
  const int64_t V = l.vocab;
  const int64_t grain = V >= 4096 ? 1 : (4096 + V - 1) / V;
  parallel_for(l.rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* out = sample + r * V;
      double m;
      int32_t arg;
      if (!row_max(l, p, inv_tau, r, &m, &arg)) {
        for (int64_t j = 0; j < V; ++j) out[j] = std::numeric_limits<float>::quiet_NaN();
        index[r] = -1;
        continue;
      }
      index[r] = arg;
      if (p.hard) {
        for (int64_t j = 0; j < V; ++j) out[j] = 0.0f;
        out[arg] = 1.0f;
        continue;
      }
      double S = 0;
      for (int64_t j = 0; j < V; ++j) {
        const double t = core::gumbel_score(load(l, r * V + j), core::gumbel_noise(p.seed, r, j), inv_tau);
        const float e = static_cast<float>(std::exp(t - m));
        out[j] = e;
        S += e;
      }
      const double inv_s = 1.0 / S;
      for (int64_t j = 0; j < V; ++j) out[j] = static_cast<float>(out[j] * inv_s);
    }
  });
  return Status{};
}

Status gumbel_softmax_backward(const LogitsView& l, const GumbelParams& p, const float* gs, float* grad) {
  const double inv_tau = 1.0 / p.temperature;
  const int64_t V = l.vocab;
  const int64_t grain = V >= 4096 ? 1 : (4096 + V - 1) / V;
  parallel_for(l.rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* out = grad + r * V;
      const float* g = gs + r * V;
      double m;
      int32_t arg;
      if (!row_max(l, p, inv_tau, r, &m, &arg)) {
        for (int64_t j = 0; j < V; ++j) out[j] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      double S = 0, D = 0;
      for (int64_t j = 0; j < V; ++j) {
        const double t = core::gumbel_score(load(l, r * V + j), core::gumbel_noise(p.seed, r, j), inv_tau);
        const float e = static_cast<float>(std::exp(t - m));
        out[j] = e;
        S += e;
        D += static_cast<double>(e) * g[j];
      }
      const double inv_s = 1.0 / S;
      const double mean = D * inv_s;
      for (int64_t j = 0; j < V; ++j) out[j] = static_cast<float>(out[j] * inv_s * (g[j] - mean) * inv_tau);
    }
  });
  return Status{};
}

Status drakes_kl(const GklCall& c) {
  const LogitsView& l = c.logits;
  const int64_t V = l.vocab;
  const int64_t grain = V >= 4096 ? 1 : (4096 + V - 1) / V;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  parallel_for(l.rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t base = r * V;
      float* g = c.grad ? c.grad + base : nullptr;
      float* go = c.grad_old ? c.grad_old + base : nullptr;
      if (c.mask && c.mask[r] == 0) {
        c.kl[r] = 0.0f;
        for (int64_t j = 0; g && j < V; ++j) g[j] = 0.0f;
        for (int64_t j = 0; go && j < V; ++j) go[j] = 0.0f;
        continue;
      }
      const double mc = c.move_chance_rows ? static_cast<double>(c.move_chance_rows[r]) : c.move_chance;
      // pass 1: both rows' log-sum-exp, online
      double mz = -HUGE_VAL, sz = 0, mo = -HUGE_VAL, so = 0;
      bool bad = false;
      for (int64_t j = 0; j < V; ++j) {
        const double z = load(l, base + j), zo = load(c.old, base + j);
        if (z != z || zo != zo || z == HUGE_VAL || zo == HUGE_VAL) bad = true;
        core::lse_step(z, &mz, &sz);
        core::lse_step(zo, &mo, &so);
      }
      if (bad || !(sz > 0) || !(so > 0)) {
        c.kl[r] = static_cast<float>(nan);
        for (int64_t j = 0; g && j < V; ++j) g[j] = static_cast<float>(nan);
        for (int64_t j = 0; go && j < V; ++j) go[j] = static_cast<float>(nan);
        continue;
      }
      const double lse = mz + std::log(sz), lseo = mo + std::log(so);
      // pass 2: K = sum p (lp - lq)
      double K = 0;
      for (int64_t j = 0; j < V; ++j) {
        const double lp = load(l, base + j) - lse, lq = load(c.old, base + j) - lseo;
        K += core::gkl_term(std::exp(lp), lp, lq);
      }
      c.kl[r] = static_cast<float>(K / mc);
      if (!g && !go) continue;
      // pass 3: the gradients
      const double cr = (c.grad_rows ? static_cast<double>(c.grad_rows[r]) : c.grad_scale) / mc;
      for (int64_t j = 0; j < V; ++j) {
        const double lp = load(l, base + j) - lse, lq = load(c.old, base + j) - lseo;
        const double p = std::exp(lp);
        if (g) g[j] = static_cast<float>(core::gkl_grad_new(cr, p, lp, lq, K));
        if (go) go[j] = static_cast<float>(core::gkl_grad_old(cr, p, std::exp(lq)));
      }
    }
  });
  return Status{};
}

}  // namespace rk
