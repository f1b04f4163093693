// Float64 references of clipCovPolicyLoss / klCovPolicyLoss (verl compute_policy_loss_clip_cov /
// _kl_cov) and highEntropyMask (TRL get_high_entropy_mask), written from their formulas
// (docs/policy.md). The selection can be given (`fixed`), so that a finite difference holds it still.
import { refRowFactors } from './policy-extra.js';
import type { RefAggregation } from './seq-ops.js';

const M64 = (1n << 64n) - 1n;
/** The documented counter-based key: SplitMix64 of seed + (i + 1) * 0x9E3779B97F4A7C15. */
export function refSelectionKey(seed: number, i: number): bigint {
  let z = (BigInt(seed) + BigInt(i + 1) * 0x9e3779b97f4a7c15n) & M64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return z ^ (z >> 31n);
}

export interface RefCovOptions {
  mode: 'clip-cov' | 'kl-cov';
  epsilonLow?: number;
  epsilonHigh?: number;
  ratio?: number;
  lb?: number;
  ub?: number;
  seed?: number;
  klCoef?: number;
  aggregation?: RefAggregation;
  normalizer?: number;
}

export function refCovPolicyLoss(
  lp: ArrayLike<number>, old: ArrayLike<number>, adv: ArrayLike<number>, mask: ArrayLike<number> | null, T: number,
  o: RefCovOptions, fixed?: ArrayLike<number>,
) {
  const n = lp.length;
  const m = (i: number) => (mask ? mask[i] : 1);
  const A = (i: number) => (adv.length === n ? adv[i] : adv[Math.floor(i / T)]);
  const eLo = o.epsilonLow ?? 0.2, eHi = o.epsilonHigh ?? eLo, ratio = o.ratio ?? 2e-4;
  const { f, total } = refRowFactors(mask, n, T, o.aggregation ?? 'token-mean', o.normalizer ?? 0);
  const tokLoss = (i: number) => {
    const r = Math.exp(lp[i] - old[i]);
    const l1 = -A(i) * r, l2 = -A(i) * Math.min(Math.max(r, 1 - eLo), 1 + eHi);
    return { l1, l2 };
  };
  const selected = new Uint8Array(n);
  let candidates = 0;
  if (fixed) {
    for (let i = 0; i < n; i++) selected[i] = fixed[i] ? 1 : 0;
  } else if (o.mode === 'clip-cov') {
    let sm = 0, sa = 0, sl = 0;
    for (let i = 0; i < n; i++) sm += m(i), sa += m(i) * A(i), sl += m(i) * lp[i];
    const ma = sa / (sm + 1e-8), ml = sl / (sm + 1e-8);
    const cand: { key: bigint; i: number }[] = [];
    for (let i = 0; i < n; i++) {
      if (!(m(i) > 0)) continue;
      const { l1, l2 } = tokLoss(i);
      if (l2 > l1) continue;
      const cov = (A(i) - ma) * (lp[i] - ml);
      if (cov > (o.lb ?? 1) && cov < (o.ub ?? 5)) cand.push({ key: refSelectionKey(o.seed ?? 0, i), i });
    }
    cand.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : x.i - y.i));
    const k = Math.min(Math.max(Math.floor(ratio * sm), 1), cand.length);
    for (let j = 0; j < k; j++) selected[cand[j].i] = 1;
    candidates = cand.length;
  } else {
    const valid: number[] = [];
    for (let i = 0; i < n; i++) if (m(i) > 0) valid.push(i);
    if (valid.length > 0) {
      const ma = valid.reduce((s, i) => s + A(i), 0) / valid.length;
      const ml = valid.reduce((s, i) => s + lp[i], 0) / valid.length;
      const cov = valid.map((i) => ({ c: (A(i) - ma) * (lp[i] - ml), i }));
      cov.sort((x, y) => (x.c !== y.c ? y.c - x.c : x.i - y.i));
      const k = Math.min(Math.max(Math.floor(valid.length * ratio), 1), valid.length);
      for (let j = 0; j < k; j++) selected[cov[j].i] = 1;
    }
    candidates = valid.length;
  }
  let loss = 0, sel = 0, kl = 0;
  for (let i = 0; i < n; i++) {
    if (m(i) === 0) continue;
    const w = m(i) * f[Math.floor(i / T)], d = lp[i] - old[i];
    const { l1, l2 } = tokLoss(i);
    let l: number;
    if (o.mode === 'clip-cov') {
      l = selected[i] ? 0 : Math.max(l1, l2);
      kl += m(i) * -d;
    } else {
      l = l1 + (selected[i] ? (o.klCoef ?? 1) * Math.abs(d) : 0);
      kl += m(i) * Math.abs(d);
    }
    loss += w * l;
    sel += selected[i] ? m(i) : 0;
  }
  let count = 0;
  for (let i = 0; i < n; i++) count += selected[i];
  const mean = (x: number) => (total > 0 ? x / total : 0);
  return { loss, selected, fraction: mean(sel), ppoKl: mean(kl), selectedCount: count, candidateCount: candidates, tokenCount: total };
}

/** torch.quantile (linear) of the entropies with mask != 0, at 1 - topQuantile; the tokens at or above it. */
export function refHighEntropyMask(entropy: ArrayLike<number>, mask: ArrayLike<number> | null, topQuantile: number) {
  const n = entropy.length;
  const vals: number[] = [];
  for (let i = 0; i < n; i++) if (!mask || mask[i] !== 0) vals.push(entropy[i]);
  const out = new Uint8Array(n);
  if (vals.length === 0 || vals.some(Number.isNaN)) return { mask: out, threshold: NaN, count: 0 };
  vals.sort((a, b) => a - b);
  const f = Math.fround;
  const rank = f(f(1 - topQuantile) * f(vals.length - 1));
  const lo = Math.floor(rank), w = f(rank - lo), hi = w > 0 ? Math.min(lo + 1, vals.length - 1) : lo;
  const a = vals[lo], b = vals[hi], diff = f(b - a);
  const threshold = w < 0.5 ? f(a + f(w * diff)) : f(b - f(diff * f(1 - w)));
  let count = 0;
  for (let i = 0; i < n; i++) {
    if ((!mask || mask[i] !== 0) && entropy[i] >= threshold) out[i] = 1, count++;
  }
  return { mask: out, threshold, count };
}
