// Preference losses: the loops, blocking and reductions. The per-pair and per-item formulas are
// native/core/preference.h (shared with cuda/preference.cu).
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

using core::pair_loss;

// Fixed-order reduction of per-block partials.
struct Partial {
  double loss = 0, acc = 0, margin = 0, extra = 0;
  Partial& operator+=(const Partial& o) {
    loss += o.loss;
    acc += o.acc;
    margin += o.margin;
    extra += o.extra;
    return *this;
  }
};

// One block runs here, without the pool's std::function and hand-off (a small call's fixed cost); more
// go to the pool. The blocks and their order are the same either way, so are the bits.
template <typename Body>
void run_blocks(int64_t nb, const Body& body) {
  if (nb == 1) {
    FloatModeGuard fm;  // the FTZ/DAZ mode parallel_for gives every task
    body(int64_t{0}, int64_t{1});
  } else {
    parallel_for(nb, 1, body);
  }
}

}  // namespace

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
  Partial one;
  std::vector<Partial> many(nb > 1 ? nb : 0);
  Partial* parts = nb > 1 ? many.data() : &one;
  const double inv_n = 1.0 / static_cast<double>(n);
  if (needs_batch_path(p)) {
    // Lists and batch losses: the ranks and SFT sums first (serial, in pair order), then the pairs.
    core::BatchTerms bt;
    std::vector<int64_t> ranks[core::kAotKeys], perms[core::kAotKeys];
    const unsigned sets = core::aot_sets(p);
    for (int s = 0; s < core::kAotKeys; ++s) {
      if (!(sets & (1u << s))) continue;
      struct KeyIndex {
        double key;
        int64_t i;
      };
      std::vector<KeyIndex> sorted(n);  // (key, pair) side by side: no indirection in the comparisons
      for (int64_t i = 0; i < n; ++i) sorted[i] = KeyIndex{core::aot_key(inp, s, i), i};
      std::sort(sorted.begin(), sorted.end(),
                [](const KeyIndex& a, const KeyIndex& b) { return core::aot_before(a.key, a.i, b.key, b.i); });
      perms[s].resize(n);
      ranks[s].resize(n);
      for (int64_t k = 0; k < n; ++k) {
        perms[s][k] = sorted[k].i;
        ranks[s][sorted[k].i] = k;
      }
      bt.rank[s] = ranks[s].data();
      bt.perm[s] = perms[s].data();
    }
    if (core::loss_weight(p, static_cast<int>(PrefLoss::Sft)) != 0) {
      double sw = 0, sl = 0;
      for (int64_t i = 0; i < n; ++i) {
        sw += static_cast<double>(inp.chosen[i]);
        sl += static_cast<double>(inp.chosen_len[i]);
      }
      bt.sft_loss = core::sft_loss_of(sw, sl);
      bt.sft_grad = core::sft_grad_of(static_cast<double>(n), sl);
    }
    run_blocks(nb, [&](int64_t b0, int64_t b1) {
      const core::PairOut o{out.losses, out.chosen_rewards, out.rejected_rewards, out.grad_chosen, out.grad_rejected};
      for (int64_t b = b0; b < b1; ++b) {
        Partial s;
        const int64_t i1 = std::min(n, (b + 1) * kPreferenceBlock);
        for (int64_t i = b * kPreferenceBlock; i < i1; ++i) {
          const core::PairSums r = core::store_pair(o, i, core::pair_general(inp, p, bt, i), inv_n);
          s += Partial{r.loss, r.acc, r.margin, 0};
        }
        parts[b] = s;
      }
    });
    Partial t;
    for (int64_t b = 0; b < nb; ++b) t += parts[b];
    out.loss = t.loss * inv_n;
    out.reward_accuracy = t.acc * inv_n;
    out.reward_margin = t.margin * inv_n;
    return st;
  }
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
    run_blocks(nb, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        Partial s;
        fn(la, b * kPreferenceBlock, std::min(n, (b + 1) * kPreferenceBlock), &s.loss, &s.acc, &s.margin);
        parts[b] = s;
      }
    });
  } else run_blocks(nb, [&](int64_t b0, int64_t b1) {
    const core::PairOut o{out.losses, out.chosen_rewards, out.rejected_rewards, out.grad_chosen, out.grad_rejected};
    for (int64_t b = b0; b < b1; ++b) {
      Partial s;
      const int64_t i1 = std::min(n, (b + 1) * kPreferenceBlock);
      for (int64_t i = b * kPreferenceBlock; i < i1; ++i) {
        const core::PairSums r = core::store_pair(o, i, pair_loss(inp, p, i), inv_n);
        s += Partial{r.loss, r.acc, r.margin, 0};
      }
      parts[b] = s;
    }
  });
  Partial t;
  for (int64_t b = 0; b < nb; ++b) t += parts[b];
  out.loss = t.loss * inv_n;
  out.reward_accuracy = t.acc * inv_n;
  out.reward_margin = t.margin * inv_n;
  return st;
}

Status ld_dpo_logps(const LdInputs& in, double alpha, const LdOutputs& out) {
  Status st;
  if (in.batch < 1 || in.seq_len < 1 || !in.chosen || !in.rejected || !out.chosen || !out.rejected ||
      (out.chosen_weights == nullptr) != (out.rejected_weights == nullptr)) {
    st.code = Status::BadShape;
    st.value = in.batch;
    return st;
  }
  const int64_t rows = std::max<int64_t>(1, kPreferenceBlock / in.seq_len);
  const int64_t nb = (in.batch + rows - 1) / rows;
  run_blocks(nb, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r1 = std::min(in.batch, (blk + 1) * rows);
      for (int64_t b = blk * rows; b < r1; ++b) core::ld_pair(in, alpha, b, out);
    }
  });
  return st;
}

// KTO: the per-item formula is core::kto_item.// KTO: the per-item formula is core::kto_item.
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
  const double inv_n = 1.0 / static_cast<double>(n);
  parallel_for(nb, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      Partial s;  // loss, desirable reward sum (acc), undesirable reward sum (margin), desirable count
      const int64_t i1 = std::min(n, (b + 1) * kPreferenceBlock);
      for (int64_t i = b * kPreferenceBlock; i < i1; ++i) {
        const core::KtoSums k = core::store_kto(i, logp, ref, desirable, p, inv_n, out.losses, out.rewards, out.grad);
        s += Partial{k.loss, k.des, k.undes, k.ndes};
      }
      parts[b] = s;
    }
  });
  Partial t;
  for (const Partial& s : parts) t += s;
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
            zw += core::tgdpo_chosen_term(m, beta, alpha, in.chosen_token_rewards[o + t], in.chosen[o + t],
                                          in.ref_chosen[o + t]);
          const double n = static_cast<double>(ml[o + t]);
          if (n != 0)
            zl += core::tgdpo_rejected_term(n, beta, alpha, in.rejected_token_rewards[o + t], in.rejected[o + t],
                                            in.ref_rejected[o + t]);
        }
        const double z = zw - zl;
        const core::TgdpoRow row = core::tgdpo_row(z, inv_b);
        const double L = row.loss, g = row.g;  // g = dloss/dz
        for (int64_t t = 0; t < T; ++t) {
          const double m = static_cast<double>(mw[o + t]);
          const double n = static_cast<double>(ml[o + t]);
          out.grad_chosen[o + t] =
              static_cast<float>(core::tgdpo_chosen_grad(g, m, beta, alpha, in.chosen_token_rewards[o + t]));
          out.grad_rejected[o + t] =
              static_cast<float>(core::tgdpo_rejected_grad(g, n, beta, alpha, in.rejected_token_rewards[o + t]));
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
