// CPU kernels of the DRAKES ops (drakes.h). One row per task, every sum in a fixed order in double:
// results do not depend on the thread count, nor on the SIMD level (the row loops of
// drakes_simd.inl run the same lanes on every level). The noise is made once per element (chunked,
// below) and never stored; the only (N, V) buffers are the caller's output (drakesKl keeps a row's
// exponentials in a per-thread buffer of 2 V doubles). This translation unit, like drakes_simd.inl's,
// is compiled with -ffp-contract=off (CMakeLists.txt), so the shared core's rounded arithmetic is not
// contracted (native/core/drakes.h).
#include "drakes.h"

#include <cmath>
#include <limits>
#include <vector>

#include "../core/drakes.h"
#include "cpu.h"
#include "threadpool.h"

namespace rk {
namespace {

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

// drakesKl keeps a row's exponentials (2 V doubles per thread, 16 MiB at this V) up to this vocabulary;
// longer rows make them again in each pass (the same bits, one exponential more per element).
constexpr int64_t kKeepMaxVocab = int64_t{1} << 20;

// The calling thread's buffer of at least n doubles (kept for its later calls): a row's
// exponentials, in cache between the passes that read them.
double* row_buffer(int64_t n) {
  thread_local std::vector<double> buf;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(static_cast<size_t>(n));
  return buf.data();
}

// The row loops of the active ISA (every one gives the same bits).
const detail::DrakesKernels& kernels() {
  switch (active_isa()) {
    case Isa::Avx512: return detail::drakes_kernels_avx512();
    case Isa::Avx2: return detail::drakes_kernels_avx2();
    default: return detail::drakes_kernels_scalar();
  }
}

// Pass 1 over one row. With e != nullptr, writes exp(t - m_c) per chunk c into e and fills cm / cs
// (and cd = sum exp(t - m_c) g when g != nullptr).
RowPass1 gumbel_pass1(const LogitsView& l, const GumbelParams& p, double inv_tau, int64_t r, float* e, const float* g,
                      std::vector<double>& cm, std::vector<double>& cs, std::vector<double>& cd) {
  const int64_t V = l.vocab, base = r * V;
  const uint64_t key = core::gumbel_row_key(p.seed, static_cast<uint64_t>(r));
  const detail::DrakesKernels& k = kernels();
  const int dt = static_cast<int>(l.dtype);
  const size_t esz = static_cast<size_t>(dtype_size(l.dtype));
  RowPass1 out;
  double t[kChunk];
  cm.clear(), cs.clear(), cd.clear();
  for (int64_t c0 = 0; c0 < V; c0 += kChunk) {
    const int64_t n = V - c0 < kChunk ? V - c0 : kChunk;
    double mc;
    int64_t arg;
    bool bad;
    k.noise(key, c0, n, t);  // the noise, then each score over it
    k.score(static_cast<const char*>(l.data) + static_cast<size_t>(base + c0) * esz, dt, n, inv_tau, t, &mc, &arg, &bad);
    out.bad = out.bad || bad;
    if (mc > out.m) {  // a later chunk wins only with a larger score: the first index of the max
      out.m = mc;
      out.arg = static_cast<int32_t>(c0 + arg);
    }
    if (!e) continue;
    double sc, dc;
    k.exp(t, n, mc, e + c0, g ? g + c0 : nullptr, &sc, &dc);
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
  const detail::DrakesKernels& k = kernels();
  const int dt = static_cast<int>(l.dtype);
  const size_t esz = static_cast<size_t>(dtype_size(l.dtype));
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
      const char* zr = static_cast<const char*>(l.data) + static_cast<size_t>(base) * esz;
      const char* zor = static_cast<const char*>(c.old.data) + static_cast<size_t>(base) * esz;
      // pass 1: both rows' maxima; pass 2: their exponentials (kept) and sums
      double st[4];
      bool bad;
      double* ez = V <= kKeepMaxVocab ? row_buffer(2 * V) : nullptr;
      double* eo = ez ? ez + V : nullptr;
      k.stats2(zr, zor, dt, V, ez, eo, st, &bad);
      if (bad || !(st[1] > 0) || !(st[3] > 0)) {
        c.kl[r] = static_cast<float>(nan);
        for (int64_t j = 0; g && j < V; ++j) g[j] = static_cast<float>(nan);
        for (int64_t j = 0; go && j < V; ++j) go[j] = static_cast<float>(nan);
        continue;
      }
      const double lse = st[0] + std::log(st[1]), lseo = st[2] + std::log(st[3]);
      const double inv_sz = 1.0 / st[1], inv_so = 1.0 / st[3];
      // pass 3: K = sum p (lp - lq)
      const double K = k.gkl_sum(zr, zor, ez, dt, V, lse, lseo, inv_sz, st[0]);
      c.kl[r] = static_cast<float>(K / mc);
      if (!g && !go) continue;
      // pass 4: the gradients
      const double cr = (c.grad_rows ? static_cast<double>(c.grad_rows[r]) : c.grad_scale) / mc;
      k.gkl_grads(zr, zor, ez, eo, dt, V, lse, lseo, inv_sz, inv_so, st[0], st[2], K, cr, g, go);
    }
  });
  return Status{};
}

}  // namespace rk
