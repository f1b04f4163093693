// Small calls: the fixed cost of one call (argument checks, packing, the N-API crossing) next to a
// plain TypeScript loop computing the same outputs, at the sizes where that cost dominates
// (preferenceLoss P = 8, groupAdvantages n = 64), and a call split over the thread pool (tokenLogprobs
// N = 4 V = 1000: four blocks, a share of them for a pool thread that may be asleep). It loads the compiled package (dist/, what users
// import; `npm run bench` builds it first) rather than lib/ through tsx, whose transpiler adds
// per-call helpers of its own. Each figure is the minimum over batches: on a shared machine the
// minimum is the least disturbed estimate of a fixed cost.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import type * as Api from '../lib/index.js';
import { grpoLoop } from './advantages.bench.js';
import { benchDir, fillNormal, progress, type BenchContext, type BenchRow, type BenchSection, type ChartSpec } from './harness.js';
import { makeOuts, tsSigmoid } from './preference.bench.js';

/** ms per call: the minimum over `reps` batches of `inner` calls. */
function minSmall(fn: () => unknown, inner: number, reps: number): number {
  for (let i = 0; i < inner; i++) fn();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < inner; i++) fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6 / inner);
  }
  return best;
}

/** log_softmax(z)[y] per row, a plain loop (max, then the sum of exponentials), f64 accumulation. */
function tsLogprobs(z: Float32Array, y: Int32Array, v: number, out: Float32Array): Float32Array {
  for (let r = 0; r < y.length; r++) {
    const o = r * v;
    let m = -Infinity;
    for (let j = 0; j < v; j++) if (z[o + j] > m) m = z[o + j];
    let s = 0;
    for (let j = 0; j < v; j++) s += Math.exp(z[o + j] - m);
    out[r] = z[o + y[r]] - m - Math.log(s);
  }
  return out;
}

export default async function run(ctx: BenchContext): Promise<BenchSection> {
  const rk = (await import(pathToFileURL(path.join(benchDir, '..', 'dist', 'index.js')).href)) as typeof Api;
  const inner = ctx.quick ? 2000 : 20000;
  const reps = ctx.quick ? 5 : 25;
  const rows: BenchRow[] = [];
  const pair = (op: string, shape: string, ours: () => unknown, ts: () => unknown, elements: number, bytes: number) => {
    progress(`${op} ${shape}`);
    const a = minSmall(ours, inner, reps), b = minSmall(ts, inner, reps);
    const d = (a - b) * 1000;
    const over = `${Math.abs(d).toFixed(2)} us ${d >= 0 ? 'above' : 'below'} the plain loop`;
    rows.push({ op, shape, impl: 'reward-kernels (out buffers)', ms: a, elements, bytes, note: over });
    rows.push({ op, shape, impl: 'pure TS (plain loop)', ms: b, elements, bytes, note: 'same outputs' });
  };

  const P = 8;
  const w = fillNormal(new Float32Array(P), 5, 1).map((v) => v - 60);
  const l = fillNormal(new Float32Array(P), 5, 2).map((v) => v - 62);
  const rw = fillNormal(new Float32Array(P), 5, 3).map((v) => v - 60);
  const rl = fillNormal(new Float32Array(P), 5, 4).map((v) => v - 60);
  const outN = makeOuts(P), outT = makeOuts(P);
  const opts = { refChosenLogps: rw, refRejectedLogps: rl, beta: 0.1, out: outN };
  pair('preferenceLoss sigmoid', `P=${P}`, () => rk.preferenceLoss(w, l, opts), () => tsSigmoid(w, l, rw, rl, 0.1, outT), P, P * 36);

  const n = 64, G = 16;
  const r = fillNormal(new Float32Array(n), 1, 5);
  const out = { advantages: new Float32Array(n), groupMean: new Float32Array(n / G), groupStd: new Float32Array(n / G) };
  pair('groupAdvantages grpo', `n=${n} G=${G}`, () => rk.groupAdvantages(r, { groupSize: G, eps: 1e-4, out }), () => grpoLoop(r, G), n, n * 8);

  const N = 4, V = 1000;
  const z = fillNormal(new Float32Array(N * V), 2, 6);
  const y = Int32Array.from({ length: N }, (_, i) => (i * 389) % V);
  const lpN = { logprobs: new Float32Array(N) }, lpT = new Float32Array(N);
  pair('tokenLogprobs', `N=${N} V=${V}`, () => rk.tokenLogprobs(z, y, { vocab: V, out: lpN }), () => tsLogprobs(z, y, V, lpT), N * V, N * V * 4);
  return { family: 'small', rows };
}

/** The chart: calls per second of the smallest calls, ours against the plain loop. */
export const chart: ChartSpec = {
  x: 'none', metric: 'Mcalls/s', yLabel: 'M calls/s', bandwidth: false,
  title: 'Small calls: calls per second (the fixed cost of a call)',
};
