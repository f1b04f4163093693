// Float64 references of the DRAKES ops (lib/diffusion/, docs/papers/drakes.md), written from the
// formulas: the counter-based Gumbel noise (SplitMix64 keyed by (seed, row, column), the logarithm
// from + - * / only, exactly as the shared core's), the Gumbel-softmax sample and its backward.
const M64 = (1n << 64n) - 1n;
const GOLDEN = 0x9e3779b97f4a7c15n;

export function splitmix64(z: bigint): bigint {
  z &= M64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return z ^ (z >> 31n);
}

export function gumbelBits(seed: number, row: number, col: number): bigint {
  const k = splitmix64(splitmix64((BigInt(seed) + GOLDEN) & M64) + ((BigInt(row) + 1n) * GOLDEN & M64));
  return splitmix64(k + ((BigInt(col) + 1n) * GOLDEN & M64));
}

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/** ln x for a positive normal double, the core's algorithm step for step (IEEE doubles, no fma; the same order of operations). */
export function logRn(x: number): number {
  f64[0] = x;
  const b = u64[0];
  let e = Number((b >> 52n) & 0x7ffn) - 1023;
  u64[0] = (b & 0x000fffffffffffffn) | 0x3ff0000000000000n;
  let m = f64[0];
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e += 1;
  }
  const s = (m - 1) / (m + 1);
  const s2 = s * s, s4 = s2 * s2, s8 = s4 * s4;
  const a = 1 + s2 * (1 / 3) + s4 * (1 / 5 + s2 * (1 / 7));
  const c = 1 / 9 + s2 * (1 / 11) + s4 * (1 / 13 + s2 * (1 / 15));
  const p = a + s8 * c;
  const lnm = 2 * s * p;
  return e * 6.93147180369123816490e-01 + (e * 1.90821492927058770002e-10 + lnm);
}

/** The standard Gumbel noise of element (row, col) for `seed`. */
export function gumbelNoise(seed: number, row: number, col: number): number {
  const u = (Number(gumbelBits(seed, row, col) >> 11n) + 0.5) * 2 ** -53;
  return -logRn(-logRn(u));
}

export interface GumbelRef {
  /** soft sample (N * V) */
  y: Float64Array;
  /** argmax per row, -1 where the row has no distribution */
  index: Int32Array;
}

/** y = softmax((z + g) / tau) per row, in float64; NaN rows (index -1) where no distribution. */
export function gumbelSoftmaxRef(z: ArrayLike<number>, vocab: number, tau: number, seed: number): GumbelRef {
  const n = z.length / vocab;
  const y = new Float64Array(z.length);
  const index = new Int32Array(n);
  const t = new Float64Array(vocab);
  for (let r = 0; r < n; r++) {
    let m = -Infinity, arg = -1, bad = false;
    for (let j = 0; j < vocab; j++) {
      t[j] = (z[r * vocab + j] + gumbelNoise(seed, r, j)) * (1 / tau);
      if (Number.isNaN(t[j])) bad = true;
      if (t[j] > m) { m = t[j]; arg = j; }
    }
    if (bad || arg < 0 || m === Infinity) {
      y.fill(NaN, r * vocab, (r + 1) * vocab);
      index[r] = -1;
      continue;
    }
    index[r] = arg;
    let s = 0;
    for (let j = 0; j < vocab; j++) s += Math.exp(t[j] - m);
    for (let j = 0; j < vocab; j++) y[r * vocab + j] = Math.exp(t[j] - m) / s;
  }
  return { y, index };
}

/** dL/dz = y (G - sum_k y_k G_k) / tau per row, in float64. */
export function gumbelSoftmaxBackwardRef(z: ArrayLike<number>, gs: ArrayLike<number>, vocab: number, tau: number, seed: number): Float64Array {
  const { y } = gumbelSoftmaxRef(z, vocab, tau, seed);
  const g = new Float64Array(z.length);
  for (let r = 0; r < z.length / vocab; r++) {
    let d = 0;
    for (let j = 0; j < vocab; j++) d += y[r * vocab + j] * gs[r * vocab + j];
    for (let j = 0; j < vocab; j++) g[r * vocab + j] = (y[r * vocab + j] * (gs[r * vocab + j] - d)) / tau;
  }
  return g;
}

function logSoftmaxRow(z: ArrayLike<number>, off: number, v: number): Float64Array | null {
  let m = -Infinity;
  for (let j = 0; j < v; j++) {
    const x = z[off + j];
    if (Number.isNaN(x) || x === Infinity) return null;
    if (x > m) m = x;
  }
  if (m === -Infinity) return null;
  let s = 0;
  for (let j = 0; j < v; j++) s += Math.exp(z[off + j] - m);
  const lse = m + Math.log(s);
  const out = new Float64Array(v);
  for (let j = 0; j < v; j++) out[j] = z[off + j] - lse;
  return out;
}

export interface DrakesKlRef {
  kl: Float64Array;
  grad: Float64Array;
  gradOld: Float64Array;
}

/**
 * kl_r = sum_j [p log(p / p_old) - p + p_old] / mc_r, every term summed as written (the -p + p_old
 * terms included), and its gradients for dL/dkl_r = gradOutput_r; masked rows give 0.
 */
export function drakesKlRef(
  z: ArrayLike<number>,
  zo: ArrayLike<number>,
  vocab: number,
  mask: ArrayLike<number> | null,
  moveChance: number | ArrayLike<number>,
  gradOutput: number | ArrayLike<number> = 1,
): DrakesKlRef {
  const n = z.length / vocab;
  const kl = new Float64Array(n);
  const grad = new Float64Array(z.length);
  const gradOld = new Float64Array(z.length);
  for (let r = 0; r < n; r++) {
    if (mask && mask[r] === 0) continue;
    const mc = typeof moveChance === 'number' ? moveChance : moveChance[r];
    const go = typeof gradOutput === 'number' ? gradOutput : gradOutput[r];
    const lp = logSoftmaxRow(z, r * vocab, vocab), lq = logSoftmaxRow(zo, r * vocab, vocab);
    if (!lp || !lq) {
      kl[r] = NaN;
      grad.fill(NaN, r * vocab, (r + 1) * vocab);
      gradOld.fill(NaN, r * vocab, (r + 1) * vocab);
      continue;
    }
    let sum = 0, K = 0;
    for (let j = 0; j < vocab; j++) {
      const p = Math.exp(lp[j]), q = Math.exp(lq[j]);
      const plog = p > 0 ? p * (lp[j] - lq[j]) : 0;
      K += plog;
      sum += plog - p + q;
    }
    kl[r] = sum / mc;
    const c = go / mc;
    for (let j = 0; j < vocab; j++) {
      const p = Math.exp(lp[j]), q = Math.exp(lq[j]);
      grad[r * vocab + j] = p > 0 ? c * p * (lp[j] - lq[j] - K) : 0;
      gradOld[r * vocab + j] = c * (q - p);
    }
  }
  return { kl, grad, gradOld };
}
