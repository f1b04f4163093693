// CPU kernels of the DRAKES ops (drakes.h). One row per task, every sum in a fixed order in double:
// results do not depend on the thread count. The noise is made once per element (chunked, below)
// and never stored; the only (N, V) buffers are the caller's output. The noise comes from the active
// SIMD level's generator (drakes_simd.inl), the core's bits on every level. This translation unit,
// like those, is compiled with -ffp-contract=off (CMakeLists.txt), so the shared core's rounded
// arithmetic is not contracted (native/core/drakes.h).
#include "drakes.h"

#include <cmath>
#include <limits>
#include <vector>

#include "../core/drakes.h"
#include "cpu.h"
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

// Gumbel rows run in chunks of kChunk columns: pass 1 makes each score once (the noise is the
// expensive part), keeps the chunk's max m_c and sum s_c = sum exp(t - m_c), and writes
// exp(t - m_c) to the output; pass 2 rescales from the output by exp(m_c - M) / S. The chunk's
// scores live in a stack buffer; the per-row chunk statistics in a per-task vector.
constexpr int64_t kChunk = 1024;

struct RowPass1 {
  double m = -std::numeric_limits<double>::infinity();  // the row max
  int32_t arg = -1;
  bool bad = false;
  bool ok() const { return !bad && arg >= 0 && m < std::numeric_limits<double>::infinity(); }
};

// The noise generator of the active ISA (every one gives the same bits).
detail::GumbelNoiseFn noise_fn() {
  switch (active_isa()) {
    case Isa::Avx512: return detail::gumbel_noise_avx512();
    case Isa::Avx2: return detail::gumbel_noise_avx2();
    default: return detail::gumbel_noise_scalar();
  }
}

// Pass 1 over one row. With e != nullptr, writes exp(t - m_c) per chunk c into e and fills cm / cs
// (and cd = sum exp(t - m_c) g when g != nullptr).
RowPass1 gumbel_pass1(const LogitsView& l, const GumbelParams& p, double inv_tau, int64_t r, float* e, const float* g,
                      std::vector<double>& cm, std::vector<double>& cs, std::vector<double>& cd) {
  const int64_t V = l.vocab, base = r * V;
  const uint64_t key = core::gumbel_row_key(p.seed, static_cast<uint64_t>(r));
  const detail::GumbelNoiseFn noise = noise_fn();
  RowPass1 out;
  double t[kChunk];
  cm.clear(), cs.clear(), cd.clear();
  for (int64_t c0 = 0; c0 < V; c0 += kChunk) {
    const int64_t n = V - c0 < kChunk ? V - c0 : kChunk;
    double mc = -std::numeric_limits<double>::infinity();
    noise(key, c0, n, t);  // the noise first, then each score over it
    for (int64_t k = 0; k < n; ++k) {
      const int64_t j = c0 + k;
      t[k] = core::gumbel_score(load(l, base + j), t[k], inv_tau);
      if (t[k] != t[k]) out.bad = true;
      if (t[k] > mc) mc = t[k];
      if (t[k] > out.m) {
        out.m = t[k];
        out.arg = static_cast<int32_t>(j);
      }
    }
    if (!e) continue;
    double sc = 0, dc = 0;
    for (int64_t k = 0; k < n; ++k) {
      const float x = mc > -std::numeric_limits<double>::infinity() ? static_cast<float>(core::exp_rn(t[k] - mc)) : 0.0f;
      e[c0 + k] = x;
      sc += x;
      if (g) dc += static_cast<double>(x) * g[c0 + k];
    }
    cm.push_back(mc), cs.push_back(sc), cd.push_back(dc);
  }
  return out;
}

// The row's S = sum_c s_c exp(m_c - M) and each chunk's factor exp(m_c - M) (into cm), and D likewise.
void merge_chunks(double M, std::vector<double>& cm, const std::vector<double>& cs, const std::vector<double>& cd, double* S,
                  double* D) {
  *S = 0, *D = 0;
  for (size_t c = 0; c < cm.size(); ++c) {
    cm[c] = cm[c] > -std::numeric_limits<double>::infinity() ? core::exp_rn(cm[c] - M) : 0.0;
    *S += cs[c] * cm[c];
    *D += cd[c] * cm[c];
  }
}

}  // namespace

Status gumbel_softmax_forward(const LogitsView& l, const GumbelParams& p, float* sample, int32_t* index) {
  const double inv_tau = 1.0 / p.temperature;
  const int64_t V = l.vocab;
  const int64_t grain = V >= 4096 ? 1 : (4096 + V - 1) / V;
  parallel_for(l.rows, grain, [&](int64_t r0, int64_t r1) {
    std::vector<double> cm, cs, cd;
    for (int64_t r = r0; r < r1; ++r) {
      float* out = sample + r * V;
      const RowPass1 a = gumbel_pass1(l, p, inv_tau, r, p.hard ? nullptr : out, nullptr, cm, cs, cd);
      if (!a.ok()) {
        for (int64_t j = 0; j < V; ++j) out[j] = std::numeric_limits<float>::quiet_NaN();
        index[r] = -1;
        continue;
      }
      index[r] = a.arg;
      if (p.hard) {
        for (int64_t j = 0; j < V; ++j) out[j] = 0.0f;
        out[a.arg] = 1.0f;
        continue;
      }
      double S, D;
      merge_chunks(a.m, cm, cs, cd, &S, &D);
      for (size_t c = 0; c < cm.size(); ++c) {
        const double f = cm[c] / S;
        const int64_t c0 = static_cast<int64_t>(c) * kChunk, c1 = c0 + kChunk < V ? c0 + kChunk : V;
        for (int64_t j = c0; j < c1; ++j) out[j] = static_cast<float>(out[j] * f);
      }
    }
  });
  return Status{};
}

Status gumbel_softmax_backward(const LogitsView& l, const GumbelParams& p, const float* gs, float* grad) {
  const double inv_tau = 1.0 / p.temperature;
  const int64_t V = l.vocab;
  const int64_t grain = V >= 4096 ? 1 : (4096 + V - 1) / V;
  parallel_for(l.rows, grain, [&](int64_t r0, int64_t r1) {
    std::vector<double> cm, cs, cd;
    for (int64_t r = r0; r < r1; ++r) {
      float* out = grad + r * V;
      const float* g = gs + r * V;
      const RowPass1 a = gumbel_pass1(l, p, inv_tau, r, out, g, cm, cs, cd);
      if (!a.ok()) {
        for (int64_t j = 0; j < V; ++j) out[j] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      double S, D;
      merge_chunks(a.m, cm, cs, cd, &S, &D);
      const double mean = D / S;
      for (size_t c = 0; c < cm.size(); ++c) {
        const double f = cm[c] / S;
        const int64_t c0 = static_cast<int64_t>(c) * kChunk, c1 = c0 + kChunk < V ? c0 + kChunk : V;
        for (int64_t j = c0; j < c1; ++j) out[j] = static_cast<float>(out[j] * f * (g[j] - mean) * inv_tau);
      }
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
        K += core::gkl_term(core::exp_rn(lp), lp, lq);
      }
      c.kl[r] = static_cast<float>(K / mc);
      if (!g && !go) continue;
      // pass 3: the gradients
      const double cr = (c.grad_rows ? static_cast<double>(c.grad_rows[r]) : c.grad_scale) / mc;
      for (int64_t j = 0; j < V; ++j) {
        const double lp = load(l, base + j) - lse, lq = load(c.old, base + j) - lseo;
        const double p = core::exp_rn(lp);
        if (g) g[j] = static_cast<float>(core::gkl_grad_new(cr, p, lp, lq, K));
        if (go) go[j] = static_cast<float>(core::gkl_grad_old(cr, p, core::exp_rn(lq)));
      }
    }
  });
  return Status{};
}

}  // namespace rk
