// Float64 references of copoAdvantages and copoPolicyLoss (docs/papers/copo.md), written from the
// formulas (COPO, hijih/copo-code core_algos.py). Shared by tests/copo.test.ts and the property tests.
import type { RefAggregation } from './seq-ops.js';
import { refRowFactors } from './policy-extra.js';

export type RefCopoGate =
  | 'only-soft' | 'soft-with-forced' | 'soft-with-zero' | 'only-forced' | 'only-zero' | 'no-global' | 'only-global';

export interface RefCopoOptions {
  groupSize?: number;
  groupIds?: ArrayLike<number>;
  scaleByConsistency?: boolean;
  scaleByStd?: boolean;
  eps?: number;
  softBlendingK?: number;
  softBlendingB?: number;
  gate?: RefCopoGate;
}

/** The groups' members in sample order. */
function members(n: number, o: RefCopoOptions): number[][] {
  const groups: number[][] = [];
  for (let i = 0; i < n; i++) {
    const g = o.groupIds ? o.groupIds[i] : Math.floor(i / o.groupSize!);
    (groups[g] ??= []).push(i);
  }
  return groups;
}

/** Entropy in bits of a list of labels. */
export function refEntropyBits(labels: ArrayLike<number>): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < labels.length; i++) counts.set(labels[i], (counts.get(labels[i]) ?? 0) + 1);
  let h = 0;
  for (const c of counts.values()) {
    const p = c / labels.length;
    h -= p * Math.log2(p);
  }
  return h;
}

export function refCopoAdvantages(answers: ArrayLike<number>, rewards: ArrayLike<number>, o: RefCopoOptions) {
  const n = answers.length, eps = o.eps ?? 1e-6, k = o.softBlendingK ?? 20, b = o.softBlendingB ?? 0.5;
  const gate = o.gate ?? 'only-soft', byStd = o.scaleByStd ?? true, consistency = o.scaleByConsistency ?? true;
  const groups = members(n, o);
  const Q = groups.length;
  const entropy = new Float64Array(Q), R = new Float64Array(Q);
  const local = new Float64Array(n), global = new Float64Array(n), gates = new Float64Array(n);
  groups.forEach((mem, g) => {
    const G = mem.length;
    const mean = mem.reduce((s, i) => s + rewards[i], 0) / G;
    const H = refEntropyBits(mem.map((i) => answers[i]));
    const lambda = G > 1 ? (1 - 1 / G) / Math.log2(G) : 0;
    entropy[g] = H;
    R[g] = consistency ? mean * (1 - lambda * H) : mean;
    const base = G > 1 ? mean : 0;
    const sd = G > 1 ? Math.sqrt(mem.reduce((s, i) => s + (rewards[i] - mean) ** 2, 0) / (G - 1)) : 1;
    for (const i of mem) local[i] = byStd ? (rewards[i] - base) / (sd + eps) : rewards[i] - base;
  });
  const gm = R.reduce((s, x) => s + x, 0) / Q;
  const gsd = Q > 1 ? Math.sqrt(R.reduce((s, x) => s + (x - gm) ** 2, 0) / (Q - 1)) : 0;
  groups.forEach((mem, g) => {
    const soft = 1 / (1 + Math.exp(-k * (entropy[g] - b)));
    for (const i of mem) {
      global[i] = byStd ? (R[g] - gm) / (gsd + eps) : R[g] - gm;
      const forced = Math.fround(local[i]) !== 0, nonzero = rewards[i] !== 0;
      gates[i] = {
        'only-soft': soft,
        'soft-with-forced': forced ? soft : 0,
        'soft-with-zero': nonzero ? soft : 0,
        'only-forced': forced ? 1 : 0,
        'only-zero': nonzero ? 1 : 0,
        'no-global': 1,
        'only-global': 0,
      }[gate];
    }
  });
  return { entropy, globalRewards: R, localAdvantages: local, globalAdvantages: global, gates, numGroups: Q, globalMean: gm, globalStd: gsd };
}

/** verl's dual-clip PPO term P(r, A), its dP/dr, and whether the clip and the dual clip fired. */
function ppoTerm(r: number, A: number, lo: number, hi: number, c: number) {
  const rc = Math.min(Math.max(r, 1 - lo), 1 + hi);
  const L1 = -A * r, L2 = -A * rc;
  const clip = L2 > L1;
  let L = Math.max(L1, L2), d = clip ? 0 : -A, dual = false;
  if (A < 0 && L > -A * c) {
    L = -A * c;
    d = 0;
    dual = true;
  }
  return { L, d, clip, dual };
}

/** COPO's loss: agg(w P(A_local) + (1 - w) P(A_global)), its gradient and metrics. */
export function refCopoLoss(
  lp: ArrayLike<number>, old: ArrayLike<number>, al: ArrayLike<number>, ag: ArrayLike<number>, gates: ArrayLike<number>,
  mask: ArrayLike<number> | null, T: number,
  o: { epsilonLow?: number; epsilonHigh?: number; dualClip?: number; aggregation?: RefAggregation; normalizer?: number } = {},
) {
  const n = lp.length, lo = o.epsilonLow ?? 0.2, hi = o.epsilonHigh ?? 0.2, c = o.dualClip ?? 3;
  const at = (a: ArrayLike<number>, i: number) => (a.length === n ? a[i] : a[Math.floor(i / T)]);
  const m = (i: number) => (mask ? mask[i] : 1);
  const { f, total } = refRowFactors(mask, n, T, o.aggregation ?? 'token-mean', o.normalizer ?? 0);
  let loss = 0, cf = 0, cfl = 0, gcf = 0, gcfl = 0, kl = 0;
  const grad = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (m(i) === 0) continue;
    const w = m(i) * f[Math.floor(i / T)], g = at(gates, i);
    const r = Math.exp(lp[i] - old[i]);
    const pl = ppoTerm(r, at(al, i), lo, hi, c), pg = ppoTerm(r, at(ag, i), lo, hi, c);
    loss += w * (g * pl.L + (1 - g) * pg.L);
    grad[i] = w * r * (g * pl.d + (1 - g) * pg.d);
    cf += m(i) * +pl.clip;
    cfl += m(i) * +pl.dual;
    gcf += m(i) * +pg.clip;
    gcfl += m(i) * +pg.dual;
    kl += m(i) * (old[i] - lp[i]);
  }
  const mean = (x: number) => (total > 0 ? x / total : 0);
  return {
    loss, grad, tokenCount: total,
    clipFraction: mean(cf), clipFractionLower: mean(cfl), globalClipFraction: mean(gcf), globalClipFractionLower: mean(gcfl), ppoKl: mean(kl),
  };
}
