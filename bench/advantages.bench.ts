// groupAdvantages (grpo, G = 16) for n = 64, 4096 and 1,048,576 rewards against pure TypeScript:
// the float64 reference of the tests (what the issue names) and a plain fast loop (what a trainer
// would write by hand). Also the token-level kernels on a [256, 1024] batch.
import { _setSmallPathThreshold, gae, groupAdvantages, klRewards, maskedWhiten, tokenAdvantages } from '../lib/advantages/index.js';
import { refGroupAdvantages } from '../tests/reference/advantages.js';
import { fillNormal, progress, timeSmall, timeSync, type BenchContext, type BenchRow, type BenchSection, type ChartSpec } from './harness.js';

/** The hand-written TS a trainer would use: TRL grpo, group std, eps 1e-4, no NaN handling. */
export function grpoLoop(r: Float32Array, G: number) {
  const n = r.length, ng = n / G;
  const adv = new Float32Array(n), gm = new Float32Array(ng), gs = new Float32Array(ng);
  let zero = 0;
  for (let g = 0; g < ng; g++) {
    const o = g * G;
    let s = 0;
    for (let i = 0; i < G; i++) s += r[o + i];
    const m = s / G;
    let ss = 0;
    for (let i = 0; i < G; i++) {
      const d = r[o + i] - m;
      ss += d * d;
    }
    const sd = Math.sqrt(ss / (G - 1));
    if (sd === 0) zero++;
    for (let i = 0; i < G; i++) adv[o + i] = (r[o + i] - m) / (sd + 1e-4);
    gm[g] = m;
    gs[g] = sd;
  }
  return { adv, gm, gs, zero };
}

function gaeLoop(v: Float32Array, r: Float32Array, m: Uint8Array, T: number, gamma: number, lam: number) {
  const n = v.length, adv = new Float32Array(n), ret = new Float32Array(n);
  for (let b = 0; b < n / T; b++) {
    let nv = 0, last = 0;
    for (let t = T - 1; t >= 0; t--) {
      const i = b * T + t;
      if (!m[i]) continue;
      last = r[i] + gamma * nv - v[i] + gamma * lam * last;
      nv = v[i];
      adv[i] = last;
      ret[i] = last + v[i];
    }
  }
  return { adv, ret };
}

export default async function run(ctx: BenchContext): Promise<BenchSection> {
  const rows: BenchRow[] = [];
  const G = 16;
  for (const n of [64, 4096, 1 << 20]) {
    const r = fillNormal(new Float32Array(n), 1, n);
    const shape = `n=${n} G=${G} grpo`;
    progress(`groupAdvantages ${shape}`);
    const big = n >= 1 << 20;
    const reps = ctx.quick ? 3 : 9;
    const time = (fn: () => unknown) => (big ? timeSync(fn, reps, 1) : timeSmall(fn, n <= 64 ? 20000 : 500, reps));
    const bytes = n * 4;
    rows.push({ op: 'groupAdvantages', shape, impl: 'reward-kernels', ms: time(() => groupAdvantages(r, { groupSize: G })), bytes, elements: n,
      note: n <= 512 ? 'small-call path (TS, same arithmetic as the kernel)' : `${ctx.threads} threads` });
    if (big) {
      const out = { advantages: new Float32Array(n), groupMean: new Float32Array(n / G), groupStd: new Float32Array(n / G) };
      rows.push({ op: 'groupAdvantages', shape, impl: 'reward-kernels (out buffers reused)', ms: time(() => groupAdvantages(r, { groupSize: G, out })), bytes, elements: n, note: 'steady state of a training loop' });
    }
    if (n <= 512) {
      const prev = _setSmallPathThreshold(0);
      rows.push({ op: 'groupAdvantages', shape, impl: 'reward-kernels (forced native call)', ms: time(() => groupAdvantages(r, { groupSize: G })), bytes, elements: n, note: 'N-API call overhead' });
      _setSmallPathThreshold(prev);
    }
    rows.push({ op: 'groupAdvantages', shape, impl: 'pure TS (plain loop)', ms: time(() => grpoLoop(r, G)), bytes, elements: n, note: 'no NaN handling' });
    const refReps = big ? (ctx.quick ? 1 : 3) : reps;
    rows.push({ op: 'groupAdvantages', shape, impl: 'pure TS (float64 reference)', ms: big ? timeSync(() => refGroupAdvantages(r, { groupSize: G }), refReps, 0) : timeSmall(() => refGroupAdvantages(r, { groupSize: G }), n <= 64 ? 2000 : 50, reps), bytes, elements: n });
  }

  const B = 256, T = 1024;
  const v = fillNormal(new Float32Array(B * T), 1, 1), tr = fillNormal(new Float32Array(B * T), 1, 2);
  const m = new Uint8Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T - ((b * 37) % 300); t++) m[b * T + t] = 1;
  const reps = ctx.quick ? 3 : 9;
  const shape = `B=${B} T=${T}`;
  progress(`gae, maskedWhiten ${shape}`);
  rows.push({ op: 'gae', shape, impl: 'reward-kernels', ms: timeSync(() => gae(v, tr, m, { seqLen: T, lambda: 0.95 }), reps), bytes: B * T * 9, elements: B * T });
  rows.push({ op: 'gae', shape, impl: 'pure TS (plain loop)', ms: timeSync(() => gaeLoop(v, tr, m, T, 1, 0.95), reps), bytes: B * T * 9, elements: B * T });
  rows.push({ op: 'maskedWhiten', shape, impl: 'reward-kernels', ms: timeSync(() => maskedWhiten(v, m), reps), bytes: B * T * 5, elements: B * T });
  // verl's token-level estimators and the KL reward on the same batch (groups of 16 for the baselines)
  const lp = fillNormal(new Float32Array(B * T), 0.5, 3).map((x) => -Math.abs(x));
  const spi = new Float32Array(B * T).fill(0.3), base = fillNormal(new Float32Array(B), 1, 4);
  for (const estimator of ['reinforce_plus_plus', 'remax', 'optimal_token_baseline', 'tir_optimal_token_baseline'] as const) {
    const extra = estimator === 'remax' ? { baselines: base } : estimator === 'reinforce_plus_plus' ? {} : { groupSize: 16, logprobs: lp, sumPiSquared: spi };
    const bytes = B * T * (estimator.includes('optimal') ? 13 : 5);
    rows.push({ op: 'tokenAdvantages', shape: `${shape} ${estimator}`, impl: 'reward-kernels', ms: timeSync(() => tokenAdvantages(tr, m, { seqLen: T, estimator, ...extra }), reps), bytes, elements: B * T });
  }
  rows.push({ op: 'klRewards', shape: `${shape} k3`, impl: 'reward-kernels', ms: timeSync(() => klRewards(tr, lp, v, m, { seqLen: T, beta: 0.1, estimator: 'k3' }), reps), bytes: B * T * 13, elements: B * T });
  return { family: 'advantages', rows };
}

/** The chart: groupAdvantages, rewards per second against n (gae and maskedWhiten run at one shape: table only). */
export const chart: ChartSpec = {
  x: 'n', xLabel: 'rewards n (log scale), groups of G = 16', metric: 'Gelem/s', yLabel: 'G rewards/s',
  rows: (r) => r.op === 'groupAdvantages', series: (r) => r.impl, bandwidth: false,
  title: 'groupAdvantages: rewards per second against n',
};
