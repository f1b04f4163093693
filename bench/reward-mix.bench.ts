// The seed papers' reward mixing ops against a plain TypeScript loop (what a trainer would write by
// hand): gatedRewards (G-RA) and discountedCumsum (SubPO step returns, and its adjoint) on a
// [B, T] = [512, 1024] batch of step rewards, lagrangianMix (Constrained RLHF, K = 3 reward models)
// on N = 524,288 token advantages, with and without dL/dxi.
import { discountedCumsum, gatedRewards, lagrangianMix } from '../lib/advantages/index.js';
import { fillNormal, progress, timeSync, type BenchContext, type BenchRow, type BenchSection } from './harness.js';

function gatedLoop(high: Float32Array, low: Float32Array, m: Uint8Array, T: number, delta: number): Float32Array {
  const B = high.length, out = new Float32Array(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    if (high[b] >= delta) for (let t = 0; t < T; t++) if (m[b * T + t]) s += low[b * T + t];
    out[b] = high[b] + s;
  }
  return out;
}

function cumsumLoop(x: Float32Array, m: Uint8Array, T: number, gamma: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < x.length / T; b++) {
    let g = 0;
    for (let t = T - 1; t >= 0; t--) {
      const i = b * T + t;
      g = gamma * g + (m[i] ? x[i] : 0);
      out[i] = g;
    }
  }
  return out;
}

function mixLoop(adv: Float32Array, kl: Float32Array, xi: Float32Array, g: Float32Array | null) {
  const K = xi.length, N = kl.length;
  const lam = Array.from(xi, (x) => 1 / (1 + Math.exp(-x)));
  const wkl = K - lam.reduce((a, b) => a + b, 0);
  const mixed = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let a = wkl * kl[n];
    for (let i = 0; i < K; i++) a += lam[i] * adv[i * N + n];
    mixed[n] = a;
  }
  let gradXi: Float32Array | null = null;
  if (g) {
    gradXi = new Float32Array(K);
    for (let i = 0; i < K; i++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += g[n] * (adv[i * N + n] - kl[n]);
      gradXi[i] = lam[i] * (1 - lam[i]) * s;
    }
  }
  return { mixed, gradXi };
}

export default async function run(ctx: BenchContext): Promise<BenchSection> {
  const rows: BenchRow[] = [];
  const reps = ctx.quick ? 3 : 9;
  const B = 512, T = 1024, n = B * T;
  const low = fillNormal(new Float32Array(n), 1, 1), high = fillNormal(new Float32Array(B), 1, 2);
  const m = new Uint8Array(n);
  for (let b = 0; b < B; b++) for (let t = 0; t < T - ((b * 37) % 300); t++) m[b * T + t] = 1;
  const shape = `B=${B} T=${T}`;
  const note = `${ctx.threads} threads`;
  progress(`gatedRewards, discountedCumsum ${shape}`);
  rows.push({ op: 'gatedRewards', shape, impl: 'reward-kernels', ms: timeSync(() => gatedRewards(high, low, m, { seqLen: T, threshold: 0 }), reps), bytes: n * 5, elements: n, note });
  rows.push({ op: 'gatedRewards', shape, impl: 'pure TS (plain loop)', ms: timeSync(() => gatedLoop(high, low, m, T, 0), reps), bytes: n * 5, elements: n });
  const out = new Float32Array(n);
  rows.push({ op: 'discountedCumsum', shape, impl: 'reward-kernels', ms: timeSync(() => discountedCumsum(low, m, { seqLen: T, gamma: 0.99, out }), reps), bytes: n * 9, elements: n, note });
  rows.push({ op: 'discountedCumsum', shape: `${shape} adjoint`, impl: 'reward-kernels', ms: timeSync(() => discountedCumsum(low, m, { seqLen: T, gamma: 0.99, adjoint: true, out }), reps), bytes: n * 9, elements: n, note });
  rows.push({ op: 'discountedCumsum', shape, impl: 'pure TS (plain loop)', ms: timeSync(() => cumsumLoop(low, m, T, 0.99), reps), bytes: n * 9, elements: n });

  const K = 3, N = 1 << 19;
  const adv = fillNormal(new Float32Array(K * N), 1, 3), kl = fillNormal(new Float32Array(N), 1, 4), g = fillNormal(new Float32Array(N), 1, 5);
  const xi = Float32Array.of(0.3, -1, 2);
  const mshape = `N=${N} K=${K}`;
  progress(`lagrangianMix ${mshape}`);
  const bytes = N * 4 * (K + 2);
  rows.push({ op: 'lagrangianMix', shape: mshape, impl: 'reward-kernels', ms: timeSync(() => lagrangianMix(adv, kl, xi, { numRewards: K }), reps), bytes, elements: N, note });
  rows.push({ op: 'lagrangianMix', shape: mshape, impl: 'pure TS (plain loop)', ms: timeSync(() => mixLoop(adv, kl, xi, null), reps), bytes, elements: N });
  rows.push({ op: 'lagrangianMix', shape: `${mshape} gradXi`, impl: 'reward-kernels', ms: timeSync(() => lagrangianMix(adv, kl, xi, { numRewards: K, gradMixed: g }), reps), bytes: bytes + N * 4 * (K + 2), elements: N, note });
  rows.push({ op: 'lagrangianMix', shape: `${mshape} gradXi`, impl: 'pure TS (plain loop)', ms: timeSync(() => mixLoop(adv, kl, xi, g), reps), bytes: bytes + N * 4 * (K + 2), elements: N });
  return { family: 'reward-mix', rows };
}
