// The pairwise seed-paper losses (lib/pairwise: d3poLoss, prdpLoss, preferenceStrengthLoss, p3oLoss) at a realistic diffusion batch,
// B = 256 pairs by T = 50 denoising steps (and a long-sequence case, 64 x 4096), P3O at 256 x 512 and 64 x 4096 tokens, against a plain
// TypeScript loop of the same formula (f32 inputs, f64 arithmetic, loss and both gradients); p3oLoss also with
// surrogate 'trlx' (the authors' code's surrogate: joint clip, reference log-probs, the defaults).
import { d3poLoss, p3oLoss, prdpLoss, preferenceStrengthLoss } from '../lib/pairwise/index.js';
import { fillNormal, progress, timeSync, type BenchContext, type BenchRow, type BenchSection, type ChartSpec } from './harness.js';

const softplus = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

/** D3PO, per-pair preferences, every step counts: the loss; gradients into g0, g1. */
function tsD3po(l0: Float32Array, l1: Float32Array, r0: Float32Array, r1: Float32Array, h0: Float32Array, h1: Float32Array,
  T: number, beta: number, eps: number, g0: Float32Array, g1: Float32Array): number {
  const n = l0.length, lo = Math.log1p(-eps), hi = Math.log1p(eps), inv = 1 / n;
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const b = (i / T) | 0, d0 = l0[i] - r0[i], d1 = l1[i] - r1[i];
    const c0 = d0 < lo ? lo : d0 > hi ? hi : d0, c1 = d1 < lo ? lo : d1 > hi ? hi : d1;
    const z = beta * (h0[b] * c0 + h1[b] * c1);
    loss += softplus(-z);
    const g = (-inv * beta) / (1 + Math.exp(z));
    g0[i] = d0 === c0 ? g * h0[b] : 0;
    g1[i] = d1 === c1 ? g * h1[b] : 0;
  }
  return loss * inv;
}

/** PRDP (Eq. 18, sum over steps), every step counts: the loss; gradients into gA, gB. */
function tsPrdp(la: Float32Array, lb: Float32Array, oa: Float32Array, ob: Float32Array, ra: Float32Array, rb: Float32Array,
  T: number, beta: number, eps: number, gA: Float32Array, gB: Float32Array): number {
  const B = la.length / T;
  let loss = 0;
  for (let b = 0; b < B; b++) {
    let s = 0, sc = 0;
    for (let i = b * T; i < (b + 1) * T; i++) {
      const da = la[i] - oa[i], db = lb[i] - ob[i];
      s += da - db;
      sc += (da < -eps ? -eps : da > eps ? eps : da) - (db < -eps ? -eps : db > eps ? eps : db);
    }
    const y = (ra[b] - rb[b]) / beta, u = s - y, v = sc - y, clip = v * v > u * u, e = clip ? v : u;
    loss += (e * e) / B;
    const k = (2 / B) * e;
    for (let i = b * T; i < (b + 1) * T; i++) {
      const da = la[i] - oa[i], db = lb[i] - ob[i];
      gA[i] = clip && !(da >= -eps && da <= eps) ? 0 : k;
      gB[i] = clip && !(db >= -eps && db <= eps) ? 0 : -k;
    }
  }
  return loss;
}

/** Secrets of RLHF II, defaults (adaptive margin, flip, no smoothing, Bessel std): loss; per-pair outputs. */
function tsStrength(rc: Float32Array, rr: Float32Array, ec: Float32Array, er: Float32Array,
  gc: Float32Array, gr: Float32Array, mean: Float32Array, std: Float32Array): number {
  const P = rc.length, M = ec.length / P;
  let loss = 0;
  for (let i = 0; i < P; i++) {
    let s = 0;
    for (let m = 0; m < M; m++) s += ec[m * P + i] - er[m * P + i];
    const mu = s / M;
    let q = 0;
    for (let m = 0; m < M; m++) q += (ec[m * P + i] - er[m * P + i] - mu) ** 2;
    const sg = mu < 0 ? -1 : 1;
    const z = sg * (rc[i] - rr[i]) - sg * mu;
    loss += softplus(-z);
    const g = (-sg / (1 + Math.exp(z))) / P;
    gc[i] = g, gr[i] = -g, mean[i] = mu, std[i] = M > 1 ? Math.sqrt(q / (M - 1)) : 0;
  }
  return loss / P;
}

/** P3O, no masks: the loss; gradients into g1, g2. */
function tsP3o(l1: Float32Array, l2: Float32Array, o1: Float32Array, o2: Float32Array, r1: Float32Array, r2: Float32Array,
  T: number, joint: boolean, eps: number, g1: Float32Array, g2: Float32Array): number {
  const B = l1.length / T;
  const term = (rho: number, A: number): [number, number] => {
    if (A === 0) return [0, 0];
    const u = rho * A, v = Math.min(Math.max(rho, 1 - eps), 1 + eps) * A;
    return v < u ? [-v, 0] : [-u, -u];
  };
  let loss = 0;
  for (let b = 0; b < B; b++) {
    let s1 = 0, s2 = 0;
    for (let i = b * T; i < (b + 1) * T; i++) s1 += l1[i] - o1[i], s2 += l2[i] - o2[i];
    const dr = r1[b] - r2[b];
    let d1: number, d2: number;
    if (joint) {
      const [l, d] = term(Math.exp(s1 - s2), dr);
      loss += l, d1 = d, d2 = -d;
    } else {
      const [la, da] = term(Math.exp(s1), dr / 2), [lb, db] = term(Math.exp(s2), -dr / 2);
      loss += la + lb, d1 = da, d2 = db;
    }
    for (let i = b * T; i < (b + 1) * T; i++) g1[i] = d1 / B, g2[i] = d2 / B;
  }
  return loss / B;
}

/** P3O, surrogate 'trlx' (joint clip, no masks, loss / the 2BT tokens, no scale_q): the loss; gradients into g1, g2. */
function tsP3oTrlx(l1: Float32Array, l2: Float32Array, o1: Float32Array, o2: Float32Array, f1: Float32Array, f2: Float32Array,
  r1: Float32Array, r2: Float32Array, T: number, beta: number, c: number, eps: number, g1: Float32Array, g2: Float32Array): number {
  const B = l1.length / T, N = 2 * B * T;
  let loss = 0;
  for (let b = 0; b < B; b++) {
    let L1 = 0, L2 = 0, O1 = 0, O2 = 0;
    for (let i = b * T; i < (b + 1) * T; i++) L1 += l1[i] - f1[i], L2 += l2[i] - f2[i], O1 += o1[i] - f1[i], O2 += o2[i] - f2[i];
    const q = r1[b] - r2[b] - beta * (L1 - L2), w = Math.min(Math.max(Math.exp(L1 - O1 + (L2 - O2)), 1 / c), c), W = -q * w;
    const D = L1 - L2, dO = O1 - O2, a = W * D, bb = W * Math.min(Math.max(D, dO - eps), dO + eps);
    loss += bb > a ? bb : a;
    const g = bb > a ? 0 : W / N;
    for (let i = b * T; i < (b + 1) * T; i++) g1[i] = g, g2[i] = -g;
  }
  return loss / N;
}

export default async function run(ctx: BenchContext): Promise<BenchSection> {
  const rows: BenchRow[] = [];
  const reps = ctx.quick ? 5 : 21;
  for (const [B, T] of [[256, 50], [64, 4096]] as const) {
    const n = B * T, shape = `B=${B} T=${T}`;
    const l0 = fillNormal(new Float32Array(n), 1, 1).map((x) => x - 3), l1 = fillNormal(new Float32Array(n), 1, 2).map((x) => x - 3);
    const e0 = fillNormal(new Float32Array(n), 0.05, 3), e1 = fillNormal(new Float32Array(n), 0.05, 4);
    const r0 = l0.map((x, i) => x + e0[i]), r1 = l1.map((x, i) => x + e1[i]);
    const h0 = new Float32Array(B).map((_, b) => (b % 2 ? 1 : -1)), h1 = h0.map((x) => -x);
    const ra = fillNormal(new Float32Array(B), 1, 5), rb = fillNormal(new Float32Array(B), 1, 6);
    const g0 = new Float32Array(n), g1 = new Float32Array(n), t0 = new Float32Array(n), t1 = new Float32Array(n);
    const bytes = n * 16 + n * 8; // four f32 inputs read, two f32 gradients written
    const add = (op: string, impl: string, ms: number) => rows.push({ op, shape, impl, ms, bytes, elements: n, note: `${ctx.threads} threads` });
    progress(`d3poLoss ${shape}`);
    const d3 = { seqLen: T, out: { gradLogprobs0: g0, gradLogprobs1: g1 } };
    add('d3poLoss', 'reward-kernels', timeSync(() => d3poLoss(l0, l1, r0, r1, h0, h1, null, d3), reps));
    add('d3poLoss', 'pure TS (plain loop)', timeSync(() => tsD3po(l0, l1, r0, r1, h0, h1, T, 0.1, 0.1, t0, t1), reps));
    progress(`prdpLoss ${shape}`);
    const pr = { seqLen: T, epsilon: 0.1, out: { gradLogprobsA: g0, gradLogprobsB: g1 } };
    add('prdpLoss', 'reward-kernels', timeSync(() => prdpLoss(l0, l1, r0, r1, ra, rb, null, pr), reps));
    add('prdpLoss', 'pure TS (plain loop)', timeSync(() => tsPrdp(l0, l1, r0, r1, ra, rb, T, 0.1, 0.1, t0, t1), reps));
  }
  for (const [P, M] of [[4096, 10], [65536, 8]] as const) {
    const shape = `P=${P} M=${M}`;
    const rc = fillNormal(new Float32Array(P), 2, 7), rr = fillNormal(new Float32Array(P), 2, 8);
    const ec = fillNormal(new Float32Array(P * M), 1, 9), er = fillNormal(new Float32Array(P * M), 1, 10);
    const o = { gc: new Float32Array(P), gr: new Float32Array(P), mu: new Float32Array(P), sd: new Float32Array(P), l: new Float32Array(P) };
    const bytes = 2 * P * M * 4 + 2 * P * 4 + 5 * P * 4;
    const add = (impl: string, ms: number) => rows.push({ op: 'preferenceStrengthLoss', shape, impl, ms, bytes, elements: P * M, note: '1 thread (pairs in order)' });
    progress(`preferenceStrengthLoss ${shape}`);
    const opts = { ensembleChosen: ec, ensembleRejected: er, out: { losses: o.l, gradChosen: o.gc, gradRejected: o.gr, strengthMean: o.mu, strengthStd: o.sd } };
    add('reward-kernels', timeSync(() => preferenceStrengthLoss(rc, rr, opts), reps));
    add('pure TS (plain loop)', timeSync(() => tsStrength(rc, rr, ec, er, o.gc, o.gr, o.mu, o.sd), reps));
  }
  for (const [B, T] of [[256, 512], [64, 4096]] as const) {
    const n = B * T, shape = `B=${B} T=${T}`;
    const o1 = fillNormal(new Float32Array(n), 1, 11).map((x) => x - 2), o2 = fillNormal(new Float32Array(n), 1, 12).map((x) => x - 2);
    const e1 = fillNormal(new Float32Array(n), 0.3 / Math.sqrt(T), 13), e2 = fillNormal(new Float32Array(n), 0.3 / Math.sqrt(T), 14);
    const l1 = o1.map((x, i) => x + e1[i]), l2 = o2.map((x, i) => x + e2[i]);
    const r1 = fillNormal(new Float32Array(B), 1, 15), r2 = fillNormal(new Float32Array(B), 1, 16);
    const g1 = new Float32Array(n), g2 = new Float32Array(n), t1 = new Float32Array(n), t2 = new Float32Array(n);
    const bytes = n * 16 + n * 8; // four f32 inputs read, two f32 gradients written
    for (const clip of ['separate', 'joint'] as const) {
      const add = (impl: string, ms: number) => rows.push({ op: `p3oLoss ${clip}`, shape, impl, ms, bytes, elements: n, note: `${ctx.threads} threads` });
      progress(`p3oLoss ${clip} ${shape}`);
      const o = { seqLen: T, clip, out: { gradLogprobs1: g1, gradLogprobs2: g2 } };
      add('reward-kernels', timeSync(() => p3oLoss(l1, l2, o1, o2, r1, r2, null, null, o), reps));
      add('pure TS (plain loop)', timeSync(() => tsP3o(l1, l2, o1, o2, r1, r2, T, clip === 'joint', 0.2, t1, t2), reps));
    }
    {
      const f1 = o1.map((x, i) => x + e2[i]), f2 = o2.map((x, i) => x + e1[i]); // reference log-probs
      const tb = n * 24 + n * 8; // six f32 inputs read, two f32 gradients written
      const add = (impl: string, ms: number) => rows.push({ op: 'p3oLoss trlx', shape, impl, ms, bytes: tb, elements: n, note: `${ctx.threads} threads` });
      progress(`p3oLoss trlx ${shape}`);
      const o = { seqLen: T, surrogate: 'trlx', refLogprobs1: f1, refLogprobs2: f2, out: { gradLogprobs1: g1, gradLogprobs2: g2 } } as const;
      add('reward-kernels', timeSync(() => p3oLoss(l1, l2, o1, o2, r1, r2, null, null, o), reps));
      add('pure TS (plain loop)', timeSync(() => tsP3oTrlx(l1, l2, o1, o2, f1, f2, r1, r2, T, 0.05, 10, 0.2, t1, t2), reps));
      const want = p3oLoss(l1, l2, o1, o2, r1, r2, null, null, o).loss, got = tsP3oTrlx(l1, l2, o1, o2, f1, f2, r1, r2, T, 0.05, 10, 0.2, t1, t2);
      if (Math.abs(want - got) > 1e-9 * Math.max(1, Math.abs(want))) throw new Error(`p3oLoss trlx: the TS loop's loss ${got} differs from the op's ${want}`);
    }
  }
  return { family: 'pairwise', rows };
}

/** The chart: bars of steps per second per op and shape. */
export const chart: ChartSpec = {
  x: 'none', metric: 'Gelem/s', yLabel: 'G steps/s', bandwidth: false,
  series: (r) => `${r.op} ${r.shape} · ${r.impl}`,
  title: 'd3poLoss, prdpLoss (denoising steps), p3oLoss (tokens) and preferenceStrengthLoss (pair x model scores) per second',
};
