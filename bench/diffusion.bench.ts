// The DRAKES ops (docs/papers/drakes.md) against plain TypeScript loops at a masked-diffusion LM's
// size, N = 1024 positions of V = 32000. GB/s count the read of the logits (both tensors for drakesKl).
// The Gumbel ops are bound by the noise (a SplitMix64 hash and two logarithms from + - * / per
// element, made once per call), not by the read.
import { drakesKl, gumbelSoftmax, gumbelSoftmaxBackward } from '../lib/diffusion/index.js';
import { fillNormal, peakRssMiB, progress, timeSync, type BenchContext, type BenchRow, type BenchSection } from './harness.js';

/** A plain TypeScript Gumbel-softmax as one would write it: a 32-bit counter hash, Math.log, softmax. */
function pureTsGumbel(z: Float32Array, n: number, v: number, seed: number, out: Float32Array): void {
  const t = new Float64Array(v);
  for (let r = 0; r < n; r++) {
    let m = -Infinity;
    for (let j = 0; j < v; j++) {
      let h = Math.imul(seed ^ Math.imul(r, 0x9e3779b1) ^ Math.imul(j + 1, 0x85ebca6b), 0xc2b2ae35);
      h ^= h >>> 15;
      h = Math.imul(h, 0x27d4eb2f);
      h ^= h >>> 13;
      const u = ((h >>> 0) + 0.5) / 4294967296;
      t[j] = z[r * v + j] - Math.log(-Math.log(u));
      if (t[j] > m) m = t[j];
    }
    let s = 0;
    for (let j = 0; j < v; j++) s += (t[j] = Math.exp(t[j] - m));
    for (let j = 0; j < v; j++) out[r * v + j] = t[j] / s;
  }
}

/** A plain TypeScript KL(p || p_old) per row: both log-softmaxes, then the sum. */
function pureTsKl(z: Float32Array, zo: Float32Array, n: number, v: number, out: Float32Array): void {
  for (let r = 0; r < n; r++) {
    const o = r * v;
    let mz = -Infinity, mo = -Infinity;
    for (let j = 0; j < v; j++) {
      if (z[o + j] > mz) mz = z[o + j];
      if (zo[o + j] > mo) mo = zo[o + j];
    }
    let sz = 0, so = 0;
    for (let j = 0; j < v; j++) {
      sz += Math.exp(z[o + j] - mz);
      so += Math.exp(zo[o + j] - mo);
    }
    const lz = mz + Math.log(sz), lo = mo + Math.log(so);
    let k = 0;
    for (let j = 0; j < v; j++) {
      const lp = z[o + j] - lz, lq = zo[o + j] - lo;
      const p = Math.exp(lp);
      k += p * (lp - lq) - p + Math.exp(lq);
    }
    out[r] = k / 0.5;
  }
}

export default async function run(ctx: BenchContext): Promise<BenchSection> {
  const rows: BenchRow[] = [];
  const reps = ctx.quick ? 3 : 7;
  const [n, v] = ctx.quick ? [128, 32000] : [1024, 32000];
  const shape = `N=${n} V=${v} f32`;
  const elems = n * v;
  const z = fillNormal(new Float32Array(elems), 2, 1), zo = fillNormal(new Float32Array(elems), 2, 2);
  const gs = fillNormal(new Float32Array(elems), 1, 3);
  const sample = new Float32Array(elems).fill(0), grad = new Float32Array(elems).fill(0), grad2 = new Float32Array(elems).fill(0);
  const index = new Int32Array(n), kl = new Float32Array(n);
  const rss0 = peakRssMiB();
  const ours: Record<string, number> = {};
  const add = (op: string, ms: number, bytes: number, note: string) => {
    ours[op] = ms;
    rows.push({ op, shape, impl: 'reward-kernels', ms, bytes, elements: elems, note });
  };

  progress(`${shape} gumbelSoftmax soft`);
  add('gumbelSoftmax soft', timeSync(() => gumbelSoftmax(z, { vocab: v, seed: 1, out: { sample, index } }), reps), elems * 4,
    'one noise pass (chunks of 1024), a rescale pass from cache; writes the (N, V) sample');
  progress(`${shape} gumbelSoftmax hard`);
  add('gumbelSoftmax hard', timeSync(() => gumbelSoftmax(z, { vocab: v, seed: 1, hard: true, out: { sample, index } }), reps), elems * 4,
    'one noise pass; writes the one-hot');
  progress(`${shape} gumbelSoftmaxBackward`);
  add('gumbelSoftmaxBackward', timeSync(() => gumbelSoftmaxBackward(z, gs, { vocab: v, seed: 1, out: { gradient: grad } }), reps), elems * 4,
    'one noise pass + a pass from cache; reads dL/dsample too');
  progress(`${shape} drakesKl`);
  add('drakesKl forward', timeSync(() => drakesKl(z, zo, null, { vocab: v, moveChance: 0.5, out: { kl } }), reps), 2 * elems * 4,
    'both rows: the maxima, the exponentials (kept per thread, 2 V doubles) with their sums, then K from those');
  progress(`${shape} drakesKl + both gradients`);
  add('drakesKl forward+gradients', timeSync(() => drakesKl(z, zo, null, {
    vocab: v, moveChance: 0.5, returnGradient: true, returnOldGradient: true, out: { kl, gradient: grad, oldGradient: grad2 },
  }), reps), 2 * elems * 4, `the forward's passes, then both gradients from the kept exponentials; writes two (N, V) f32 gradients`);
  rows[0].note += `; peak RSS growth over all runs ${(peakRssMiB() - rss0).toFixed(1)} MiB (extra memory O(N))`;

  // plain TypeScript: time a slice of rows and scale
  const tsRows = Math.min(n, ctx.quick ? 8 : 32);
  const scale = n / tsRows;
  progress(`${shape} gumbel softmax pure TS`);
  const tg = timeSync(() => pureTsGumbel(z, tsRows, v, 1, sample), 3) * scale;
  rows.push({ op: 'gumbelSoftmax soft', shape, impl: 'pure TS', ms: tg, bytes: elems * 4, elements: elems,
    note: `32-bit hash + Math.log, one thread; timed on ${tsRows} rows, scaled x${scale}; reward-kernels ${(tg / ours['gumbelSoftmax soft']).toFixed(1)}x faster` });
  progress(`${shape} KL pure TS`);
  const tk = timeSync(() => pureTsKl(z, zo, tsRows, v, kl), 3) * scale;
  rows.push({ op: 'drakesKl forward', shape, impl: 'pure TS', ms: tk, bytes: 2 * elems * 4, elements: elems,
    note: `one thread; timed on ${tsRows} rows, scaled x${scale}; reward-kernels ${(tk / ours['drakesKl forward']).toFixed(1)}x faster` });
  return { family: 'diffusion', rows };
}
