// policyLossFromLogits (formulas and passes in policy_logits.h). The row statistics are the
// log-prob kernel's (same chunks, same merge: the same numbers), the per-token gradient is
// policy_loss's (same lanes), the row coefficients are core::lp_grad_row.
//
// One exp per element: the statistics pass keeps each element's 2^u (u = (z - m_c) log2(e) / tau,
// m_c its chunk's max) in a per-thread row buffer (or, in place on f32 logits without an entropy
// term, over the row's own logits), and the gradient is p_j (k0 + k1 log2 p_j) = e_j (A_c + B_c u_j)
// with per-chunk constants. A thread works through consecutive rows as a software pipeline: chunk c
// of row r's gradient is written inside the exp loop of chunk c of the next row's statistics, so its
// stores (streaming into an out buffer, plain in place) drain while the next row is read and computed.
// GSPO (two passes) and rows over kStoreMaxVocab recompute 2^u instead (the log-prob backward's
// chunks).
#include "policy_logits.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../core/logits.h"
#include "half.h"
#include "threadpool.h"

namespace rk {
namespace {

using core::kLog2ed;

// Rows of up to this many elements keep their 2^u between the statistics and the gradient (a
// per-thread buffer of v floats, in cache: the next row's 2^u overwrite the row being written, each
// vector after its gradient has read it); longer rows recompute it.
constexpr int64_t kStoreMaxVocab = int64_t{1} << 20;

// The calling thread's buffer of at least n floats (kept for the thread's later calls), 64-byte
// aligned: every vector the kernels store to it or load from it is then within one cache line (with
// malloc's 16-byte alignment three in four 64-byte vectors straddle two).
float* thread_buffer(int64_t n) {
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < n + 16) buf.resize(static_cast<size_t>(n + 16));
  const uintptr_t at = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + ((64 - at % 64) % 64) / sizeof(float);
}
using detail::kLogprobsChunk;
using detail::RowStats;

struct Pass {
  const PolicyFromLogitsArgs& a;
  const detail::LogprobsKernels& k;
  int64_t v, nck, esz;
  float a2;        // log2(e) / tau, f32 (the chunk kernels' scale)
  double ad;       // log2(e) / tau
  double inv_tau;
  bool bf16_out;
  bool nt;  // streaming gradient stores: false when the gradient overwrites the logits (in cache)

  const char* row_in(int64_t r) const { return static_cast<const char*>(a.logits.data) + r * v * esz; }

  // Row r's statistics, chunk by chunk in order (pm, ps, pt: nck floats of scratch).
  RowStats stats(int64_t r, float* pm, float* ps, float* pt) const {
    const char* base = row_in(r);
    for (int64_t c = 0; c < nck; ++c) {
      const int64_t off = c * kLogprobsChunk;
      const int64_t len = std::min(kLogprobsChunk, v - off);
      k.stats(base + off * esz, static_cast<int>(a.logits.dtype), len, a2, &pm[c], &ps[c],
              a.want_entropy ? &pt[c] : nullptr);
    }
    return detail::merge_row_stats(pm, ps, a.want_entropy ? pt : nullptr, nck, ad);
  }

  // Row r's target logit.
  double target_logit(int64_t r) const { return detail::load_logit(a.logits, r * v + a.targets[r]); }

  // Writes row r's log-prob (f32, as tokenLogprobs writes it) from its target logit zy and (when
  // wanted) its entropy; returns the log-prob.
  float write_outputs(int64_t r, const RowStats& rs, double zy) const {
    const float lp = static_cast<float>(core::lp_logp(zy, rs.max, inv_tau, rs.log_s));
    a.logprobs[r] = lp;
    if (a.want_entropy) a.entropy[r] = static_cast<float>(rs.h);
    return lp;
  }
  // A row that is not read: log-prob and entropy 0.
  void clear_outputs(int64_t r) const {
    a.logprobs[r] = 0.0f;
    if (a.want_entropy) a.entropy[r] = 0.0f;
  }

  // Chunk c of row r's statistics, storing its 2^u in e + c * chunk.
  void stats_chunk(int64_t r, int64_t c, float* pm, float* ps, float* pt, float* e) const {
    const int64_t off = c * kLogprobsChunk;
    const int64_t len = std::min(kLogprobsChunk, v - off);
    k.stats_store(row_in(r) + off * esz, static_cast<int>(a.logits.dtype), len, a2, &pm[c], &ps[c],
                  a.want_entropy ? &pt[c] : nullptr, e + off);
  }

  // The per-chunk coefficients of a row's gradient from its stored 2^u (see grad_stored).
  struct RowGrad {
    core::LpGradRow q;
    double b;
  };
  RowGrad row_grad(const RowStats& rs, float g, float h) const {
    return RowGrad{core::lp_grad_row(g, h, rs.h, rs.max, rs.log_s * kLog2ed, inv_tau), rs.log_s * kLog2ed};
  }
  // Chunk c of row r's gradient (grad_stored's formula), from the row's max M, chunk results and
  // its stored 2^u in e; with nx >= 0, chunk c of row nx's statistics in the same loop (stats_chunk's
  // results), its 2^u stored in ne (e itself: the thread's one buffer, each value overwritten after
  // the gradient has read it; or row nx's own logits, see self_buffer).
  void grad_chunk(int64_t r, int64_t c, double M, const RowGrad& rg, const float* pm, const float* ps,
                  const float* e, float* ne, int64_t nx, float* npm, float* nps, float* npt) const {
    const core::LpGradRow& q = rg.q;
    const char* base = row_in(r);
    const int dt = static_cast<int>(a.logits.dtype);
    const int64_t y = a.targets[r];
    const int64_t off = c * kLogprobsChunk;
    const int64_t len = std::min(kLogprobsChunk, v - off);
    float A = 0.0f, B = 0.0f;
    if (ps[c] != 0.0f) {  // else an all -inf chunk: e = 0, p = 0
      const double d = (static_cast<double>(pm[c]) - M) * ad - rg.b;
      const double w = std::exp2(d);
      A = static_cast<float>(w * (q.k0 + static_cast<double>(q.k1) * d));
      B = static_cast<float>(w * q.k1);
    }
    const bool has_y = y >= off && y < off + len;
    const char* np = nx >= 0 ? row_in(nx) + off * esz : nullptr;
    float* npt_c = a.want_entropy && nx >= 0 ? &npt[c] : nullptr;
    if (bf16_out) {
      uint16_t* out = static_cast<uint16_t*>(a.grad) + r * v + off;
      float gy = 0.0f;
      // The target's f32 value first (the chunk may overwrite bf16 logits in place).
      if (has_y) k.grad_stored(base + y * esz, dt, 1, pm[c], a2, e + y, A, B, &gy, false);
      if (np) k.stats_grad_bf16(np, dt, len, a2, &npm[c], &nps[c], npt_c, ne + off, base + off * esz, pm[c], e + off, A, B, out, nt);
      else k.grad_stored_bf16(base + off * esz, dt, len, pm[c], a2, e + off, A, B, out, nt);
      if (has_y) out[y - off] = f32_to_bf16(gy + q.gy);
    } else {
      float* out = static_cast<float*>(a.grad) + r * v + off;
      if (np) k.stats_grad(np, dt, len, a2, &npm[c], &nps[c], npt_c, ne + off, base + off * esz, pm[c], e + off, A, B, out, nt);
      else k.grad_stored(base + off * esz, dt, len, pm[c], a2, e + off, A, B, out, nt);
      if (has_y) out[y - off] += q.gy;
    }
  }

  // Writes row r's gradient from its statistics and g = dL/dlogp, h = dL/dH (recomputing 2^u).
  void grad(int64_t r, const RowStats& rs, float g, float h) const {
    const core::LpGradRow q = row_grad(rs, g, h).q;
    const char* base = row_in(r);
    const int dt = static_cast<int>(a.logits.dtype);
    const int64_t y = a.targets[r];
    for (int64_t c = 0; c < nck; ++c) {
      const int64_t off = c * kLogprobsChunk;
      const int64_t len = std::min(kLogprobsChunk, v - off);
      const bool has_y = y >= off && y < off + len;
      if (bf16_out) {
        uint16_t* out = static_cast<uint16_t*>(a.grad) + r * v + off;
        float gy = 0.0f;
        // The target's f32 value first (the chunk may overwrite bf16 logits in place).
        if (has_y) k.grad(base + y * esz, dt, 1, q.c, a2, q.b, q.k0, q.k1, &gy, false);
        k.grad_bf16(base + off * esz, dt, len, q.c, a2, q.b, q.k0, q.k1, out, nt);
        if (has_y) out[y - off] = f32_to_bf16(gy + q.gy);
      } else {
        float* out = static_cast<float*>(a.grad) + r * v + off;
        k.grad(base + off * esz, dt, len, q.c, a2, q.b, q.k0, q.k1, out, nt);
        if (has_y) out[y - off] += q.gy;
      }
    }
  }

  void zero_row(int64_t r) const {
    const size_t gsz = bf16_out ? 2 : 4;
    std::memset(static_cast<char*>(a.grad) + r * v * gsz, 0, static_cast<size_t>(v) * gsz);
  }

  // A row that is not read: an ignored target or a zero mask weight.
  bool skipped(int64_t r) const {
    if (a.targets[r] == a.ignore_index) return true;
    const PolicyLossInputs& in = a.policy;
    if (in.mask_kind == MaskKind::U8) return static_cast<const uint8_t*>(in.mask)[r] == 0;
    if (in.mask_kind == MaskKind::F32) return static_cast<const float*>(in.mask)[r] == 0.0f;
    return false;
  }
};

}  // namespace

Status policy_loss_from_logits(const PolicyFromLogitsArgs& a, const PolicyLossParams& p,
                               PolicyLossMetrics* metrics) {
  const int64_t n = a.logits.rows, v = a.logits.vocab;
  const PolicyLossInputs& pin = a.policy;
  if (n < 0 || v <= 0) return Status{Status::BadShape, 0, v};
  if (pin.seq_len <= 0 || pin.batch * pin.seq_len != n) return Status{Status::BadShape, 0, pin.seq_len};
  if (a.grad_dtype != DType::F32 && a.grad_dtype != DType::BF16) return Status{Status::BadShape, 0, 0};
  Status st = detail::check_targets(a.targets, n, v, a.ignore_index);
  if (!st.ok()) return st;
  // The row factors (validating f32 mask weights) before anything is written.
  PolicyLossInputs in = pin;
  in.logprobs = nullptr;
  in.entropy = nullptr;
  detail::PolicyRows rows;
  if (n > 0) {
    // GSPO's rows need the log-probs (its sequence ratio); here they only validate the weights.
    PolicyLossParams pv = p;
    if (pv.variant == PolicyVariant::Gspo) pv.variant = PolicyVariant::Ppo;
    st = detail::policy_rows(in, pv, rows);
    if (!st.ok()) return st;
  }

  const double inv_tau = 1.0 / a.temperature;
  const Pass ps{a, detail::logprobs_kernels(), v, (v + kLogprobsChunk - 1) / kLogprobsChunk,
                dtype_size(a.logits.dtype), static_cast<float>(kLog2ed * inv_tau), kLog2ed * inv_tau,
                inv_tau, a.grad_dtype == DType::BF16,
                !overlaps(a.grad, static_cast<size_t>(n * v) * (a.grad_dtype == DType::BF16 ? 2 : 4),
                                  a.logits.data, static_cast<size_t>(n * v * dtype_size(a.logits.dtype)))};
  const int64_t nck = ps.nck;
  std::vector<float> grad_lp(n), grad_h(n);
  in.logprobs = a.logprobs;
  in.entropy = a.want_entropy ? a.entropy : nullptr;

  if (p.variant != PolicyVariant::Gspo) {
    const bool store = v <= kStoreMaxVocab;
    // f32 logits with the f32 gradient written over them and no entropy term (every row's gradient
    // is then e_j A_c: no logit is read again once its 2^u is stored): each row keeps its 2^u in its
    // own logits, where its gradient goes next, instead of in the thread's buffer. Half the cache
    // footprint, and each line is read once and written back once.
    const bool self_buffer = store && a.grad == a.logits.data && a.logits.dtype == DType::F32 &&
                             a.grad_dtype == DType::F32 && static_cast<float>(p.entropy_coef) == 0.0f;
    // One pass: statistics, the token's gradient, the gradient row, per row. Blocks of consecutive
    // rows, so a thread knows the row it reads next and reads it while it writes this one.
    const int64_t grain = std::max<int64_t>(1, std::min<int64_t>(8, n / (4 * static_cast<int64_t>(get_num_threads()))));
    parallel_for(n, grain, [&](int64_t b, int64_t e) {
      // Chunk results of two rows (no (N, V) temporary): the row being written and the next one.
      std::vector<float> scv(static_cast<size_t>(6 * nck));
      float* cur = scv.data();
      float* nxt = cur + 3 * nck;
      // A skipped row: zero outputs, no read. Returns the first row from r on that is read.
      auto next_read = [&](int64_t r) {
        for (; r < e && ps.skipped(r); ++r) {
          ps.clear_outputs(r);
          ps.zero_row(r);
        }
        return r;
      };
      // The row's outputs and its token's g = dL/dlogp, h = dL/dH.
      auto token = [&](int64_t r, const RowStats& rs, double zy, float* g, float* h) {
        const float lp = ps.write_outputs(r, rs, zy);
        detail::policy_token_gradient(in, p, rows, r, lp, static_cast<float>(rs.h), g, h);
      };
      if (!store) {
        for (int64_t r = next_read(b); r < e; r = next_read(r + 1)) {
          const RowStats rs = ps.stats(r, cur, cur + nck, cur + 2 * nck);
          float g = 0.0f, h = 0.0f;
          token(r, rs, ps.target_logit(r), &g, &h);
          ps.grad(r, rs, g, h);
        }
        return;
      }
      // Software pipeline: chunk c of this row's gradient is written in the exp loop of chunk c of
      // the next row's statistics (after that chunk's max pass), so the streaming writes drain while
      // the next row is read and its exps computed, as in a copy loop. Each row's chunks are still
      // taken in order with the same arithmetic, so its statistics are the same numbers.
      // Where row r keeps its 2^u: the thread's buffer, or (self_buffer) the row's own logits, whose
      // target logit is read first.
      float* ebuf = self_buffer ? nullptr : thread_buffer(v);
      auto ebuf_of = [&](int64_t r) { return self_buffer ? static_cast<float*>(a.grad) + r * v : ebuf; };
      int64_t r = next_read(b);
      if (r >= e) return;
      double zy = ps.target_logit(r);
      for (int64_t c = 0; c < nck; ++c) ps.stats_chunk(r, c, cur, cur + nck, cur + 2 * nck, ebuf_of(r));
      while (r < e) {
        const RowStats rs = detail::merge_row_stats(cur, cur + nck, a.want_entropy ? cur + 2 * nck : nullptr, nck, ps.ad);
        float g = 0.0f, h = 0.0f;
        token(r, rs, zy, &g, &h);
        const Pass::RowGrad rg = ps.row_grad(rs, g, h);
        const int64_t nx = next_read(r + 1);
        if (nx < e) zy = ps.target_logit(nx);
        float* en = nx < e ? ebuf_of(nx) : nullptr;
        for (int64_t c = 0; c < nck; ++c)
          ps.grad_chunk(r, c, rs.max, rg, cur, cur + nck, ebuf_of(r), en, nx < e ? nx : -1, nxt, nxt + nck, nxt + 2 * nck);
        std::swap(cur, nxt);
        r = nx;
      }
    });
    // The loss and metrics: policy_loss on the log-probs just written (its gradient is the one
    // already applied, bit for bit).
    return policy_loss(in, p, grad_lp.data(), in.entropy ? grad_h.data() : nullptr, metrics);
  }

  // GSPO: two passes.
  std::vector<RowStats> stats(n);
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    std::vector<float> scv(static_cast<size_t>(3 * nck));
    float* sc = scv.data();
    for (int64_t r = b; r < e; ++r) {
      if (ps.skipped(r)) {
        ps.clear_outputs(r);
        continue;
      }
      stats[r] = ps.stats(r, sc, sc + nck, sc + 2 * nck);
      ps.write_outputs(r, stats[r], ps.target_logit(r));
    }
  });
  st = policy_loss(in, p, grad_lp.data(), in.entropy ? grad_h.data() : nullptr, metrics);
  if (!st.ok()) return st;
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      if (ps.skipped(r)) ps.zero_row(r);
      else ps.grad(r, stats[r], grad_lp[r], in.entropy ? grad_h[r] : 0.0f);
    }
  });
  return Status{};
}

}  // namespace rk
