// policyLoss / klPenalty at B x T = 64 x 4096 against a plain TypeScript loop (same formulas, f32
// inputs, f64 arithmetic, one pass plus the mask count) and the float64 test reference.
import {
  clipCovPolicyLoss, highEntropyMask, klCovPolicyLoss, klPenalty, luspoPolicyLoss, maskTruncatedCompletions, policyLoss, reinforcePolicyLoss, rolloutCorrection, vespoPolicyLoss,
} from '../lib/policy/index.js';
import { getNumThreads, setNumThreads } from '../lib/runtime.js';
import { refPolicyLoss } from '../tests/reference/policy.js';
import { fillNormal, progress, rng, timeSync, type BenchContext, type BenchRow, type BenchSection, type ChartSpec } from './harness.js';

/** PPO clipped surrogate, token-mean, optional k3 KL (verl clamps): loss and gradient. */
function pureTsPpo(
  lp: Float32Array, old: Float32Array, adv: Float32Array, mask: Uint8Array, T: number,
  ref: Float32Array | null, beta: number, grad: Float32Array,
): number {
  const n = lp.length;
  let msum = 0;
  for (let i = 0; i < n; i++) msum += mask[i] !== 0 ? 1 : 0;
  const inv = msum > 0 ? 1 / msum : 0;
  let loss = 0;
  for (let i = 0; i < n; i++) {
    if (mask[i] === 0) { grad[i] = 0; continue; }
    const A = adv[(i / T) | 0];
    const d = lp[i] - old[i];
    const dc = d < -20 ? -20 : d > 20 ? 20 : d;
    const r = Math.exp(dc);
    const rc = r < 0.8 ? 0.8 : r > 1.2 ? 1.2 : r;
    const L1 = -A * r, L2 = -A * rc;
    let L = L1 >= L2 ? L1 : L2;
    let g = L1 >= L2 && d === dc ? -A * r : 0;
    if (ref) {
      const x0 = ref[i] - lp[i];
      const x = x0 < -20 ? -20 : x0 > 20 ? 20 : x0;
      const ex = Math.exp(x);
      const k = ex - x - 1;
      L += beta * (k > 10 ? 10 : k);
      g += beta * (x === x0 && k <= 10 ? 1 - ex : 0);
    }
    loss += L;
    grad[i] = g * inv;
  }
  return loss * inv;
}

export default async function run(ctx: BenchContext): Promise<BenchSection> {
  const rows: BenchRow[] = [];
  const B = 64, T = 4096, n = B * T;
  const shape = `B=${B} T=${T}`;
  const reps = ctx.quick ? 5 : 21;
  const lp = fillNormal(new Float32Array(n), 1, 1).map((x) => -Math.abs(x) - 0.01);
  const noise = fillNormal(new Float32Array(n), 0.2, 2);
  const old = lp.map((x, i) => x - noise[i]);
  const ref = lp.map((x, i) => x - 0.5 * noise[(i * 7) % n]);
  const entropy = fillNormal(new Float32Array(n), 1, 3).map(Math.abs);
  const adv = fillNormal(new Float32Array(B), 1, 4);
  const r = rng(5);
  const mask = new Uint8Array(n);
  for (let b = 0; b < B; b++) mask.fill(1, b * T, b * T + 256 + Math.floor(r() * (T - 256)));
  const grad = new Float32Array(n), gradEnt = new Float32Array(n);
  const bytes = n * (4 + 4 + 1); // logprobs, oldLogprobs, mask read per call
  const threads = getNumThreads();

  const add = (op: string, impl: string, ms: number, b: number, note?: string) => {
    rows.push({ op, shape, impl, ms, bytes: b, elements: n, note });
    progress(`${shape} · ${op} · ${impl} done`);
  };

  const ppo = () => policyLoss(lp, old, adv, mask, { seqLen: T, out: { gradLogprobs: grad } });
  add('policyLoss ppo token-mean', 'reward-kernels', timeSync(ppo, reps, 2), bytes, `${threads} threads`);
  setNumThreads(1);
  add('policyLoss ppo token-mean', 'reward-kernels', timeSync(ppo, reps, 2), bytes, '1 thread');
  setNumThreads(threads);
  add('policyLoss ppo token-mean', 'pure TS', timeSync(() => pureTsPpo(lp, old, adv, mask, T, null, 0, grad), reps, 2), bytes, 'plain loop, f64 math');
  add('policyLoss ppo token-mean', 'pure TS (float64 test reference)',
    timeSync(() => refPolicyLoss(lp, old, adv, mask, { seqLen: T, variant: 'ppo', aggregation: 'token-mean', epsilonLow: 0.2, epsilonHigh: 0.2, beta: 0, klEstimator: 'k3', entropyCoef: 0, tauPos: 1, tauNeg: 1.05 }), ctx.quick ? 3 : 7, 1),
    bytes, 'allocating reference');

  const withKl = () => policyLoss(lp, old, adv, mask, { seqLen: T, refLogprobs: ref, beta: 0.04, out: { gradLogprobs: grad } });
  add('policyLoss ppo + k3 KL', 'reward-kernels', timeSync(withKl, reps, 2), bytes + 4 * n, `${threads} threads`);
  add('policyLoss ppo + k3 KL', 'pure TS', timeSync(() => pureTsPpo(lp, old, adv, mask, T, ref, 0.04, grad), reps, 2), bytes + 4 * n, 'plain loop, f64 math');

  const full = () => policyLoss(lp, old, adv, mask, {
    seqLen: T, variant: 'gspo', refLogprobs: ref, klEstimator: 'k3+', entropy, entropyCoef: 0.001,
    out: { gradLogprobs: grad, gradEntropy: gradEnt },
  });
  add('policyLoss gspo + k3+ KL + entropy', 'reward-kernels', timeSync(full, reps, 2), bytes + 8 * n, `${threads} threads`);
  for (const v of ['cispo', 'sapo'] as const) {
    add(`policyLoss ${v}`, 'reward-kernels', timeSync(() => policyLoss(lp, old, adv, mask, { seqLen: T, variant: v, out: { gradLogprobs: grad } }), reps, 2), bytes, `${threads} threads`);
  }
  const klOut = { kl: new Float32Array(n), grad: new Float32Array(n) };
  add('klPenalty k3', 'reward-kernels', timeSync(() => klPenalty(lp, ref, mask, { out: klOut }), reps, 2), n * 9, `${threads} threads`);
  // rolloutCorrection: trainer = oldLogprobs, rollout = logprobs; weights + rejection mask + metrics
  const rcOut = { weights: new Float32Array(n), mask: new Float32Array(n) };
  add('rolloutCorrection token_truncate + token_k1,seq_max_k2', 'reward-kernels',
    timeSync(() => rolloutCorrection(old, lp, null, mask, { seqLen: T, rejection: { token_k1: [0.5, 2], seq_max_k2: 0.5 }, out: rcOut }), reps, 2), bytes + 8 * n, `${threads} threads`);
  add('policyLoss ppo + tokenWeights', 'reward-kernels',
    timeSync(() => policyLoss(lp, old, adv, mask, { seqLen: T, tokenWeights: rcOut.weights, out: { gradLogprobs: grad } }), reps, 2), bytes + 4 * n, `${threads} threads`);
  for (const [name, f] of [
    ['reinforcePolicyLoss', () => reinforcePolicyLoss(lp, old, adv, mask, { seqLen: T, out: { gradLogprobs: grad } })],
    ['luspoPolicyLoss', () => luspoPolicyLoss(lp, old, adv, mask, { seqLen: T, out: { gradLogprobs: grad } })],
    ['vespoPolicyLoss', () => vespoPolicyLoss(lp, old, adv, mask, { seqLen: T, out: { gradLogprobs: grad } })],
  ] as const) add(name, 'reward-kernels', timeSync(f, reps, 2), bytes, `${threads} threads`);
  const sel = new Uint8Array(n);
  add('clipCovPolicyLoss', 'reward-kernels', timeSync(() => clipCovPolicyLoss(lp, old, adv, mask, { seqLen: T, out: { gradLogprobs: grad, selected: sel } }), reps, 2), bytes, 'CPU only, single-threaded');
  add('klCovPolicyLoss', 'reward-kernels', timeSync(() => klCovPolicyLoss(lp, old, adv, mask, { seqLen: T, out: { gradLogprobs: grad, selected: sel } }), reps, 2), bytes, 'CPU only, single-threaded');
  const ids = Int32Array.from({ length: n }, (_, i) => (i % 97 === 0 ? 2 : 5));
  const outMask = new Float32Array(n), truncated = new Float32Array(B);
  add('maskTruncatedCompletions', 'reward-kernels', timeSync(() => maskTruncatedCompletions(ids, mask, { seqLen: T, eosTokenId: 2, out: { mask: outMask, truncated } }), reps, 2), n * 9, 'rows in order');
  add('highEntropyMask q=0.2', 'reward-kernels', timeSync(() => highEntropyMask(entropy, mask, { topQuantile: 0.2, out: { mask: sel } }), reps, 2), n * 6, 'CPU only, a sort');
  return { family: 'policy', rows };
}

/** The chart: one shape, so bars of tokens per second (the inputs stay in cache: not bandwidth-bound). */
export const chart: ChartSpec = {
  x: 'none', metric: 'Gelem/s', yLabel: 'G tokens/s', bandwidth: false,
  series: (r) => `${r.op.replace('policyLoss ', '')} · ${r.impl}${r.note === '1 thread' ? ', 1 thread' : ''}`,
  title: 'policyLoss and klPenalty at B = 64, T = 4096: tokens per second',
};
