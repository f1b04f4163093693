// The multi-objective family (docs/papers/dynamic-reward-weighting.md, docs/papers/op-gfn.md) next to a
// plain TypeScript loop computing the same outputs: the Gram product of rewardWeightUpdate at
// K = 4, P = 10^6 (the only heavy part of the weight update: 16 MB of gradients), paretoFront at
// B = 2048, K = 3 (O(B^2 K)), and the two OP-GFN losses at B = 256 trajectories of T = 64 steps.
import { orderPreservingLoss, paretoFront, rewardWeightUpdate, trajectoryBalanceLoss } from '../lib/index.js';
import { fillNormal, progress, timeSync, type BenchContext, type BenchRow, type BenchSection, type ChartSpec } from './harness.js';

/** The plain loop of rewardWeightUpdate: the K x K Gram matrix in double, row sums, softmax. */
function tsWeightUpdate(G: Float32Array, w: Float32Array, lr: number, mu: number): Float64Array {
  const K = w.length, P = G.length / K;
  const s = new Float64Array(K);
  for (let i = 0; i < K; i++) {
    for (let j = i; j < K; j++) {
      let d = 0;
      for (let c = 0, a = i * P, b = j * P; c < P; c++) d += G[a + c] * G[b + c];
      s[i] += d;
      if (j !== i) s[j] += d;
    }
  }
  const z = Float64Array.from(s, (x, i) => Math.log(w[i]) + (lr * x) / mu);
  const m = Math.max(...z);
  let sum = 0;
  for (const x of z) sum += Math.exp(x - m);
  return z.map((x) => Math.exp(x - m) / sum);
}

function tsPareto(p: Float32Array, K: number): Uint8Array {
  const B = p.length / K, out = new Uint8Array(B);
  for (let i = 0; i < B; i++) {
    let dom = false;
    for (let j = 0; j < B && !dom; j++) {
      if (j === i) continue;
      let ge = true, gt = false;
      for (let k = 0; k < K; k++) {
        const q = p[j * K + k], x = p[i * K + k];
        if (!(q >= x)) { ge = false; break; }
        if (q > x) gt = true;
      }
      dom = ge && gt;
    }
    out[i] = dom ? 0 : 1;
  }
  return out;
}

/** The plain loop of the TB loss with its three gradients. */
function tsTb(lpf: Float32Array, lpb: Float32Array, logR: Float32Array, logZ: Float32Array, T: number, gpf: Float32Array, gpb: Float32Array, gz: Float32Array): number {
  const B = logR.length;
  let loss = 0;
  for (let b = 0; b < B; b++) {
    let d = logZ[b] - logR[b];
    for (let t = 0; t < T; t++) d += lpf[b * T + t] - lpb[b * T + t];
    loss += d * d;
    const g = (2 * d) / B;
    gz[b] = g;
    for (let t = 0; t < T; t++) (gpf[b * T + t] = g), (gpb[b * T + t] = -g);
  }
  return loss / B;
}

/** The plain loop of the order-preserving loss: log Rhat, the front, the softmax gradients. */
function tsOp(lpf: Float32Array, lpb: Float32Array, obj: Float32Array, logZ: Float32Array, T: number, K: number, gpf: Float32Array, gpb: Float32Array, gz: Float32Array): number {
  const B = logZ.length, r = new Float64Array(B), f = tsPareto(obj, K);
  let m = -Infinity, nf = 0;
  for (let b = 0; b < B; b++) {
    let s = logZ[b];
    for (let t = 0; t < T; t++) s += lpf[b * T + t] - lpb[b * T + t];
    r[b] = s;
    m = Math.max(m, s);
    nf += f[b];
  }
  let se = 0, tr = 0;
  for (let b = 0; b < B; b++) (se += Math.exp(r[b] - m)), (tr += f[b] ? r[b] : 0);
  const lse = m + Math.log(se);
  for (let b = 0; b < B; b++) {
    const g = Math.exp(r[b] - lse) - (f[b] ? 1 / nf : 0);
    gz[b] = g;
    for (let t = 0; t < T; t++) (gpf[b * T + t] = g), (gpb[b * T + t] = -g);
  }
  return lse - tr / nf;
}

export default async function run(ctx: BenchContext): Promise<BenchSection> {
  const rows: BenchRow[] = [];
  const reps = ctx.quick ? 3 : 9;
  const pair = (op: string, shape: string, ours: () => unknown, ts: () => unknown, elements: number, bytes: number, note = '') => {
    progress(`${op} ${shape}`);
    rows.push({ op, shape, impl: 'reward-kernels', ms: timeSync(ours, reps), elements, bytes, note: `${ctx.threads} threads${note}` });
    rows.push({ op, shape, impl: 'pure TS (plain loop)', ms: timeSync(ts, reps), elements, bytes, note: 'same outputs, 1 thread' });
  };

  const K = 4, P = ctx.quick ? 250_000 : 1_000_000;
  const G = fillNormal(new Float32Array(K * P), 1e-3, 1);
  const w = new Float32Array(K).fill(1 / K);
  const out = { weights: new Float32Array(K), scores: new Float32Array(K), gram: new Float32Array(K * K) };
  pair('rewardWeightUpdate', `K=${K} P=${P}`, () => rewardWeightUpdate(G, w, { lr: 1e-6, out }), () => tsWeightUpdate(G, w, 1e-6, 1e-5), K * P, 4 * K * P,
    ', Gram in double, fixed chunks');

  const B = ctx.quick ? 512 : 2048, Ko = 3;
  const pts = fillNormal(new Float32Array(B * Ko), 1, 2);
  const front = new Uint8Array(B);
  pair('paretoFront', `B=${B} K=${Ko}`, () => paretoFront(pts, { numObjectives: Ko, out: { front } }), () => tsPareto(pts, Ko), B * B, B * Ko * 4);

  const Bt = 256, T = 64, n = Bt * T;
  const lpf = fillNormal(new Float32Array(n), 1, 3), lpb = fillNormal(new Float32Array(n), 1, 4);
  const logR = fillNormal(new Float32Array(Bt), 1, 5), logZ = fillNormal(new Float32Array(Bt), 1, 6), obj = fillNormal(new Float32Array(Bt * 2), 1, 7);
  const o = { residuals: new Float32Array(Bt), gradLogZ: new Float32Array(Bt), gradLogPF: new Float32Array(n), gradLogPB: new Float32Array(n) };
  const t1 = new Float32Array(n), t2 = new Float32Array(n), tz = new Float32Array(Bt);
  pair('trajectoryBalanceLoss', `B=${Bt} T=${T}`, () => trajectoryBalanceLoss(lpf, lpb, logR, logZ, null, { seqLen: T, out: o }),
    () => tsTb(lpf, lpb, logR, logZ, T, t1, t2, tz), n, 8 * n);
  pair('orderPreservingLoss', `B=${Bt} T=${T} K=2`, () => orderPreservingLoss(lpf, lpb, obj, logZ, null, { seqLen: T, numObjectives: 2 }),
    () => tsOp(lpf, lpb, obj, logZ, T, 2, t1, t2, tz), n, 8 * n, ', includes its Pareto front');
  return { family: 'moo', rows };
}

/** The chart: elements per second, ours against the plain loop, one bar per op. */
export const chart: ChartSpec = {
  x: 'none', metric: 'Gelem/s', yLabel: 'G elements/s', bandwidth: false,
  title: 'Multi-objective ops: elements per second against a plain TypeScript loop',
};
