// Float64 references of reinforcePolicyLoss (verl compute_policy_loss_reinforce), luspoPolicyLoss
// (TRL loss_type "luspo") and vespoPolicyLoss (TRL loss_type "vespo"), written from their formulas
// (docs/policy.md). Shared by their tests.
import type { RefAggregation } from './seq-ops.js';

const maskOf = (mask: ArrayLike<number> | null) => (i: number) => (mask ? mask[i] : 1);
const advOf = (adv: ArrayLike<number>, n: number, T: number) => (i: number) => (adv.length === n ? adv[i] : adv[Math.floor(i / T)]);

/** verl agg_loss's per-row weight (with the optional normalizer replacing its denominator). */
export function refRowFactors(mask: ArrayLike<number> | null, n: number, T: number, agg: RefAggregation, normalizer = 0) {
  const B = n / T, m = maskOf(mask);
  const rowM = new Float64Array(B);
  let total = 0;
  for (let i = 0; i < n; i++) rowM[Math.floor(i / T)] += m(i);
  for (let b = 0; b < B; b++) total += rowM[b];
  const nz = normalizer > 0;
  const f = Array.from(rowM, (rm) => {
    switch (agg) {
      case 'token-mean': return (nz ? normalizer : total) > 0 ? 1 / (nz ? normalizer : total) : 0;
      case 'seq-mean-token-mean': return rm > 0 ? 1 / (rm * (nz ? normalizer : B)) : 0;
      case 'seq-mean-token-sum': return 1 / (nz ? normalizer : B);
      default: return 1 / (nz ? normalizer : B * T);
    }
  });
  return { f, total, rowM };
}

/** REINFORCE: agg(-A * lp); ppoKl = masked mean of rollout - lp. */
export function refReinforce(
  lp: ArrayLike<number>, roll: ArrayLike<number>, adv: ArrayLike<number>, mask: ArrayLike<number> | null,
  T: number, agg: RefAggregation = 'seq-mean-token-sum', normalizer = 0,
) {
  const n = lp.length, m = maskOf(mask), A = advOf(adv, n, T);
  const { f, total } = refRowFactors(mask, n, T, agg, normalizer);
  let loss = 0, kl = 0;
  const grad = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (m(i) === 0) continue;
    const w = m(i) * f[Math.floor(i / T)];
    loss += -w * A(i) * lp[i];
    grad[i] = -w * A(i);
    kl += m(i) * (roll[i] - lp[i]);
  }
  return { loss, grad, ppoKl: total > 0 ? kl / total : 0, tokenCount: total };
}

/** LUSPO as TRL writes it: mean over (i, t) of -min(s1 A, clamp(s) A) * sum_t m_it. */
export function refLuspo(
  lp: ArrayLike<number>, old: ArrayLike<number>, adv: ArrayLike<number>, mask: ArrayLike<number> | null,
  T: number, eLo = 0.2, eHi = eLo, delta = 0,
) {
  const n = lp.length, B = n / T, m = maskOf(mask), A = advOf(adv, n, T);
  let loss = 0, total = 0, low = 0, high = 0, kl = 0;
  for (let b = 0; b < B; b++) {
    let sm = 0, sd = 0;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      sm += m(i);
      sd += m(i) * (lp[i] - old[i]);
    }
    total += sm;
    const s = Math.exp(sd / Math.max(sm, 1));
    const s1 = delta > 0 ? Math.min(s, delta) : s;
    const c = Math.min(Math.max(s, 1 - eLo), 1 + eHi);
    for (let t = 0; t < T; t++) {
      const i = b * T + t, a = A(i);
      loss += (-Math.min(s1 * a, c * a) * sm) / (B * T);
      if (m(i) !== 0) {
        low += m(i) * (s < 1 - eLo && a < 0 ? 1 : 0);
        high += m(i) * (s > 1 + eHi && a > 0 ? 1 : 0);
        kl += m(i) * (old[i] - lp[i]);
      }
    }
  }
  const mean = (x: number) => (total > 0 ? x / total : 0);
  return { loss, clipFractionLow: mean(low), clipFractionHigh: mean(high), ppoKl: mean(kl), tokenCount: total };
}

export interface RefVespoOptions {
  kPos?: number;
  lambdaPos?: number;
  kNeg?: number;
  lambdaNeg?: number;
  aggregation?: RefAggregation;
  normalizer?: number;
}

/**
 * VESPO: agg(-phi A lp) with phi = exp(lambda + k log w - lambda w) from the clamped summed log-ratio.
 * phiLogprobs: the log-probs phi is computed from (default lp), so that a finite difference in lp holds
 * phi constant, as TRL's no_grad weights do.
 */
export function refVespo(
  lp: ArrayLike<number>, old: ArrayLike<number>, adv: ArrayLike<number>, mask: ArrayLike<number> | null,
  T: number, o: RefVespoOptions = {}, phiLogprobs: ArrayLike<number> = lp,
) {
  const n = lp.length, B = n / T, m = maskOf(mask), A = advOf(adv, n, T);
  const kP = o.kPos ?? 2, lP = o.lambdaPos ?? 3, kN = o.kNeg ?? 3, lN = o.lambdaNeg ?? 2;
  const { f, total } = refRowFactors(mask, n, T, o.aggregation ?? 'token-mean', o.normalizer ?? 0);
  let loss = 0, phiSum = 0, kl = 0;
  const grad = new Float64Array(n);
  for (let b = 0; b < B; b++) {
    let S = 0;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      S += m(i) * Math.min(Math.max(phiLogprobs[i] - old[i], -20), 20);
    }
    const logw = Math.min(Math.max(S, Math.log(1e-8)), 20), w = Math.exp(logw);
    for (let t = 0; t < T; t++) {
      const i = b * T + t, a = A(i);
      const k = a >= 0 ? kP : kN, lam = Math.max(a >= 0 ? lP : lN, 1e-4);
      let phi = Math.exp(lam + k * logw - lam * w);
      if (!Number.isFinite(phi)) phi = 0;
      if (m(i) === 0) continue;
      const wt = m(i) * f[b];
      loss += -wt * phi * a * lp[i];
      grad[i] = -wt * phi * a;
      phiSum += m(i) * phi;
      kl += m(i) * (old[i] - lp[i]);
    }
  }
  const mean = (x: number) => (total > 0 ? x / total : 0);
  return { loss, grad, phi: mean(phiSum), ppoKl: mean(kl), tokenCount: total };
}

/** TRL mask_truncated_completions: rows whose last counted token is neither eos nor pad (pad < 0: none) are zeroed. */
export function refMaskTruncated(ids: ArrayLike<number>, mask: ArrayLike<number> | null, T: number, eos: number, pad = -1) {
  const n = ids.length, B = n / T;
  const out = new Float64Array(n), truncated = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    // the completion as TRL's unpadded list: the tokens up to the last counted one
    let last = -1;
    for (let t = 0; t < T; t++) if (!mask || mask[b * T + t] !== 0) last = t;
    const cut = last >= 0 && ids[b * T + last] !== eos && !(pad >= 0 && ids[b * T + last] === pad);
    truncated[b] = cut ? 1 : 0;
    for (let t = 0; t < T; t++) out[b * T + t] = cut ? 0 : mask ? mask[b * T + t] : 1;
  }
  return { mask: out, truncated };
}
