// COPO (docs/papers/copo.md): copoAdvantages on 512 prompts x 8 answers and copoPolicyLoss on a
// [512 x 8 = 4096, 1024] batch, each against a plain TypeScript loop computing the same outputs.
import { copoAdvantages, copoPolicyLoss } from '../lib/index.js';
import { fillNormal, progress, timeSync, type BenchContext, type BenchRow, type BenchSection, type ChartSpec } from './harness.js';

/** The hand-written TS: per prompt the answer histogram (a Map), R, GRPO advantages; the batch z-score; the soft gate. */
export function copoAdvLoop(ans: Int32Array, r: Float32Array, G: number, k = 20, b = 0.5) {
  const n = r.length, Q = n / G;
  const H = new Float64Array(Q), R = new Float64Array(Q);
  const local = new Float32Array(n), global = new Float32Array(n), gates = new Float32Array(n);
  const lambda = (1 - 1 / G) / Math.log2(G);
  for (let q = 0; q < Q; q++) {
    const o = q * G, counts = new Map<number, number>();
    let s = 0;
    for (let i = 0; i < G; i++) {
      s += r[o + i];
      counts.set(ans[o + i], (counts.get(ans[o + i]) ?? 0) + 1);
    }
    let h = 0;
    for (const c of counts.values()) h -= (c / G) * Math.log2(c / G);
    const m = s / G;
    let ss = 0;
    for (let i = 0; i < G; i++) ss += (r[o + i] - m) ** 2;
    const sd = Math.sqrt(ss / (G - 1));
    for (let i = 0; i < G; i++) local[o + i] = (r[o + i] - m) / (sd + 1e-6);
    H[q] = h;
    R[q] = m * (1 - lambda * h);
  }
  let s = 0;
  for (let q = 0; q < Q; q++) s += R[q];
  const gm = s / Q;
  let ss = 0;
  for (let q = 0; q < Q; q++) ss += (R[q] - gm) ** 2;
  const gsd = Math.sqrt(ss / (Q - 1));
  for (let q = 0; q < Q; q++) {
    const a = (R[q] - gm) / (gsd + 1e-6), w = 1 / (1 + Math.exp(-k * (H[q] - b)));
    for (let i = 0; i < G; i++) {
      global[q * G + i] = a;
      gates[q * G + i] = w;
    }
  }
  return { local, global, gates };
}

/** The hand-written TS of the blended dual-clip loss (token-mean) and its gradient. */
export function copoLossLoop(lp: Float32Array, old: Float32Array, al: Float32Array, ag: Float32Array, w: Float32Array, m: Uint8Array, T: number) {
  const n = lp.length, grad = new Float32Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) total += m[i];
  const f = 1 / total;
  let loss = 0;
  const term = (r: number, A: number) => {
    const rc = Math.min(Math.max(r, 0.8), 1.2), L1 = -A * r, L2 = -A * rc;
    let L = Math.max(L1, L2), d = L2 > L1 ? 0 : -A;
    if (A < 0 && L > -3 * A) (L = -3 * A), (d = 0);
    return [L, d];
  };
  for (let i = 0; i < n; i++) {
    if (!m[i]) continue;
    const row = Math.floor(i / T), g = w[row], r = Math.exp(lp[i] - old[i]);
    const [Ll, dl] = term(r, al[row]), [Lg, dg] = term(r, ag[row]);
    loss += f * (g * Ll + (1 - g) * Lg);
    grad[i] = f * r * (g * dl + (1 - g) * dg);
  }
  return { loss, grad };
}

export default async function run(ctx: BenchContext): Promise<BenchSection> {
  const rows: BenchRow[] = [];
  const reps = ctx.quick ? 3 : 9;
  const Q = 512, G = 8, n = Q * G;
  const ans = Int32Array.from(fillNormal(new Float32Array(n), 1.2, 1), (x) => Math.round(x));
  const r = Float32Array.from(fillNormal(new Float32Array(n), 1, 2), (x) => (x > 0.3 ? 1 : 0));
  const shape = `${Q} prompts x ${G}`;
  progress(`copoAdvantages ${shape}`);
  const outs = { entropy: new Float32Array(Q), globalRewards: new Float32Array(Q), localAdvantages: new Float32Array(n),
    globalAdvantages: new Float32Array(n), gates: new Float32Array(n) };
  rows.push({ op: 'copoAdvantages', shape, impl: 'reward-kernels (out buffers)', ms: timeSync(() => copoAdvantages(ans, r, { groupSize: G, out: outs }), reps), elements: n, bytes: n * 8 });
  rows.push({ op: 'copoAdvantages', shape, impl: 'pure TS (plain loop)', ms: timeSync(() => copoAdvLoop(ans, r, G), reps), elements: n, bytes: n * 8 });

  const B = n, T = ctx.quick ? 256 : 1024, N = B * T;
  const lp = fillNormal(new Float32Array(N), 0.5, 3).map((x) => -Math.abs(x) - 0.1);
  const noise = fillNormal(new Float32Array(N), 0.2, 4);
  const old = lp.map((x, i) => x + noise[i]);
  const m = new Uint8Array(N);
  for (let b = 0; b < B; b++) for (let t = 0; t < T - ((b * 37) % (T / 3)); t++) m[b * T + t] = 1;
  const adv = copoAdvantages(ans, r, { groupSize: G });
  const lshape = `B=${B} T=${T}`;
  progress(`copoPolicyLoss ${lshape}`);
  const grad = new Float32Array(N);
  rows.push({ op: 'copoPolicyLoss', shape: lshape, impl: 'reward-kernels (out buffers)', elements: N, bytes: N * 9, note: `${ctx.threads} threads`,
    ms: timeSync(() => copoPolicyLoss(lp, old, adv.localAdvantages, adv.globalAdvantages, adv.gates, m, { seqLen: T, out: { gradLogprobs: grad } }), reps) });
  rows.push({ op: 'copoPolicyLoss', shape: lshape, impl: 'pure TS (plain loop)', elements: N, bytes: N * 9,
    ms: timeSync(() => copoLossLoop(lp, old, adv.localAdvantages, adv.globalAdvantages, adv.gates, m, T), reps) });
  return { family: 'copo', rows };
}

/** The chart: elements per second, ours against the plain loop. */
export const chart: ChartSpec = {
  x: 'none', metric: 'Gelem/s', yLabel: 'G elements/s', bandwidth: false,
  title: 'COPO: copoAdvantages (answers) and copoPolicyLoss (tokens) per second',
};
