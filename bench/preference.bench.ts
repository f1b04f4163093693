// preferenceLoss (sigmoid = DPO, and simpo) for P = 8, 1024 and 1,048,576 pairs: the native
// kernel against a plain TypeScript loop computing the same outputs (losses, rewards, the two
// gradients, the mean and the metrics) in float64, both writing into preallocated buffers; and,
// native only, aot, MPO's list of losses and ldDpoLogps.
import { ldDpoLogps, preferenceLoss, type PreferenceLossOptions } from '../lib/preference/index.js';
import { fillNormal, progress, timeSmall, timeSync, type BenchContext, type BenchRow, type BenchSection, type ChartSpec } from './harness.js';

interface Outs {
  losses: Float32Array;
  chosenRewards: Float32Array;
  rejectedRewards: Float32Array;
  gradChosen: Float32Array;
  gradRejected: Float32Array;
}

export function makeOuts(p: number): Outs {
  return {
    losses: new Float32Array(p), chosenRewards: new Float32Array(p), rejectedRewards: new Float32Array(p),
    gradChosen: new Float32Array(p), gradRejected: new Float32Array(p),
  };
}

const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** Pure-TS DPO (sigmoid) with references; returns the mean loss. */
export function tsSigmoid(w: Float32Array, l: Float32Array, rw: Float32Array, rl: Float32Array, beta: number, o: Outs) {
  const n = w.length;
  let sum = 0, acc = 0, margin = 0;
  for (let i = 0; i < n; i++) {
    const c = w[i] - rw[i], rho = l[i] - rl[i];
    const x = beta * (c - rho);
    const L = softplus(-x);
    const g = (-beta * sigmoid(-x)) / n;
    o.losses[i] = L;
    o.chosenRewards[i] = beta * c;
    o.rejectedRewards[i] = beta * rho;
    o.gradChosen[i] = g;
    o.gradRejected[i] = -g;
    sum += L;
    acc += c > rho ? 1 : 0;
    margin += beta * (c - rho);
  }
  return [sum / n, acc / n, margin / n];
}

/** Pure-TS SimPO (length-averaged, gamma margin); returns the mean loss. */
function tsSimpo(w: Float32Array, l: Float32Array, lw: Int32Array, ll: Int32Array, beta: number, gamma: number, o: Outs) {
  const n = w.length;
  let sum = 0, acc = 0, margin = 0;
  for (let i = 0; i < n; i++) {
    const aw = w[i] / lw[i], al = l[i] / ll[i];
    const x = beta * (aw - al) - gamma;
    const L = softplus(-x);
    const d = (-beta * sigmoid(-x)) / n;
    o.losses[i] = L;
    o.chosenRewards[i] = beta * aw;
    o.rejectedRewards[i] = beta * al;
    o.gradChosen[i] = d / lw[i];
    o.gradRejected[i] = -d / ll[i];
    sum += L;
    acc += aw > al ? 1 : 0;
    margin += beta * (aw - al);
  }
  return [sum / n, acc / n, margin / n];
}

export default async function run(ctx: BenchContext): Promise<BenchSection> {
  const rows: BenchRow[] = [];
  for (const p of [8, 1024, 1 << 20]) {
    const w = fillNormal(new Float32Array(p), 5, 1).map((v) => v - 60);
    const l = fillNormal(new Float32Array(p), 5, 2).map((v) => v - 62);
    const rw = fillNormal(new Float32Array(p), 5, 3).map((v) => v - 60);
    const rl = fillNormal(new Float32Array(p), 5, 4).map((v) => v - 60);
    const lw = Int32Array.from({ length: p }, (_, i) => 16 + (i * 7919) % 400);
    const ll = Int32Array.from({ length: p }, (_, i) => 16 + (i * 104729) % 400);
    const outN = makeOuts(p), outT = makeOuts(p);
    const small = p <= 1024;
    const inner = ctx.quick ? (p <= 8 ? 2000 : 200) : (p <= 8 ? 20000 : 2000);
    const reps = ctx.quick ? 3 : 9;
    const time = (fn: () => unknown) => (small ? timeSmall(fn, inner, reps) : timeSync(fn, reps, 1));
    const shape = `P=${p}`;
    const cases: [string, PreferenceLossOptions, () => unknown][] = [
      ['sigmoid', { refChosenLogps: rw, refRejectedLogps: rl, beta: 0.1, out: outN }, () => tsSigmoid(w, l, rw, rl, 0.1, outT)],
      ['simpo', { lossType: 'simpo', chosenLengths: lw, rejectedLengths: ll, out: outN }, () => tsSimpo(w, l, lw, ll, 2.0, 0.5, outT)],
    ];
    for (const [name, opts, ts] of cases) {
      const op = `preferenceLoss ${name}`;
      progress(`${op} ${shape}`);
      rows.push({ op, shape, impl: 'reward-kernels', ms: time(() => preferenceLoss(w, l, opts)), elements: p, bytes: p * 36, note: `${ctx.threads} threads, loss+grads+metrics` });
      rows.push({ op, shape, impl: 'pure TS', ms: time(ts), elements: p, bytes: p * 36, note: 'plain float64 loop, same outputs' });
    }
    // TRL f2cd577 additions: aot (a sort over the batch) and MPO's list of three losses.
    const extra: [string, PreferenceLossOptions][] = [
      ['aot', { lossType: 'aot', refChosenLogps: rw, refRejectedLogps: rl, out: outN }],
      ['[sigmoid, bco_pair, sft]', { lossType: ['sigmoid', 'bco_pair', 'sft'], lossWeights: [0.8, 0.2, 1], refChosenLogps: rw, refRejectedLogps: rl, chosenLengths: lw, rejectedLengths: ll, out: outN }],
    ];
    for (const [name, opts] of extra) {
      rows.push({ op: `preferenceLoss ${name}`, shape, impl: 'reward-kernels', ms: time(() => preferenceLoss(w, l, opts)), elements: p, bytes: p * 36, note: `${ctx.threads} threads, loss+grads+metrics` });
    }
  }
  // ldDpoLogps (LD-DPO sequence log-probs) with the weights, P x T tokens.
  for (const [p, t] of [[8, 512], [64, 4096]] as const) {
    const n = p * t;
    const c = fillNormal(new Float32Array(n), 1, 5).map((v) => -Math.abs(v));
    const r = fillNormal(new Float32Array(n), 1, 6).map((v) => -Math.abs(v));
    const mc = Uint8Array.from({ length: n }, (_, i) => (i % t >= 16 && i % t < t - ((i / t) | 0) * 7 ? 1 : 0));
    const mr = Uint8Array.from({ length: n }, (_, i) => (i % t >= 16 && i % t < t - 100 ? 1 : 0));
    const o = { seqLen: t, alpha: 0.5, returnWeights: true, out: { chosenLogps: new Float32Array(p), rejectedLogps: new Float32Array(p), chosenWeights: new Float32Array(n), rejectedWeights: new Float32Array(n) } };
    const inner = ctx.quick ? 20 : 200;
    rows.push({ op: 'ldDpoLogps', shape: `P=${p} T=${t}`, impl: 'reward-kernels', ms: timeSmall(() => ldDpoLogps(c, r, mc, mr, o), inner, ctx.quick ? 3 : 9), elements: n, bytes: n * 18, note: `${ctx.threads} threads, with weights` });
  }
  return { family: 'preference', rows };
}

/** The chart: pairs per second against the number of pairs P. */
export const chart: ChartSpec = {
  x: 'P', xLabel: 'pairs P (log scale)', metric: 'Gelem/s', yLabel: 'G pairs/s', bandwidth: false,
  series: (r) => `${r.op.replace('preferenceLoss ', '')} · ${r.impl}`,
  title: 'preferenceLoss (sigmoid = DPO, simpo): pairs per second against P',
};
