// Float64 reference of vocabDivergence (docs/divergence.md), written from the definitions:
//   p = softmax(z / tau), q = softmax(zt / tau)
//   forward_kl KL(q || p), reverse_kl KL(p || q),
//   jsd beta KL(q || m) + (1 - beta) KL(p || m), m = beta q + (1 - beta) p (beta 0 / 1: forward / reverse)
// with the convention 0 log 0 = 0, and the analytic gradients w.r.t. z.

export type RefKind = 'forward_kl' | 'reverse_kl' | 'jsd';

function logSoftmax(z: ArrayLike<number>, off: number, v: number, tau: number): Float64Array {
  let m = -Infinity;
  for (let j = 0; j < v; j++) m = Math.max(m, z[off + j] / tau);
  let s = 0;
  for (let j = 0; j < v; j++) s += Math.exp(z[off + j] / tau - m);
  const lse = m + Math.log(s);
  const out = new Float64Array(v);
  for (let j = 0; j < v; j++) out[j] = z[off + j] / tau - lse;
  return out;
}

function resolve(kind: RefKind, beta: number): RefKind {
  if (kind === 'jsd' && beta === 0) return 'forward_kl';
  if (kind === 'jsd' && beta === 1) return 'reverse_kl';
  return kind;
}

/** log(beta q + (1 - beta) p) from log q and log p. */
function logMix(lq: number, lp: number, beta: number): number {
  const a = Math.log(beta) + lq, b = Math.log(1 - beta) + lp;
  const m = Math.max(a, b);
  if (m === -Infinity) return -Infinity;
  return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}

export interface RowResult {
  d: number;
  grad: Float64Array;
}

/** Divergence and dD/dz of one row pair starting at `off`. */
export function divergenceRow(
  z: ArrayLike<number>,
  zt: ArrayLike<number>,
  off: number,
  v: number,
  kind: RefKind,
  beta = 0.5,
  tau = 1,
): RowResult {
  const k = resolve(kind, beta);
  const lp = logSoftmax(z, off, v, tau);
  const lq = logSoftmax(zt, off, v, tau);
  const grad = new Float64Array(v);
  let d = 0;
  if (k === 'forward_kl') {
    for (let j = 0; j < v; j++) {
      const q = Math.exp(lq[j]);
      if (q > 0) d += q * (lq[j] - lp[j]);
      grad[j] = (Math.exp(lp[j]) - q) / tau;
    }
  } else if (k === 'reverse_kl') {
    for (let j = 0; j < v; j++) {
      const p = Math.exp(lp[j]);
      if (p > 0) d += p * (lp[j] - lq[j]);
    }
    for (let j = 0; j < v; j++) {
      const p = Math.exp(lp[j]);
      grad[j] = p > 0 ? (p * (lp[j] - lq[j] - d)) / tau : 0;
    }
  } else {
    let kpm = 0;
    const lm = new Float64Array(v);
    for (let j = 0; j < v; j++) {
      lm[j] = logMix(lq[j], lp[j], beta);
      const p = Math.exp(lp[j]), q = Math.exp(lq[j]);
      if (q > 0) d += beta * q * (lq[j] - lm[j]);
      if (p > 0) {
        d += (1 - beta) * p * (lp[j] - lm[j]);
        kpm += p * (lp[j] - lm[j]);
      }
    }
    for (let j = 0; j < v; j++) {
      const p = Math.exp(lp[j]);
      grad[j] = p > 0 ? ((1 - beta) * p * (lp[j] - lm[j] - kpm)) / tau : 0;
    }
  }
  return { d, grad };
}

/** Every row: divergence (N) and gradient (N * V), rows with mask 0 give 0. */
export function divergenceRef(
  z: ArrayLike<number>,
  zt: ArrayLike<number>,
  v: number,
  kind: RefKind,
  beta = 0.5,
  tau = 1,
  mask?: ArrayLike<number>,
  gradOutput: number | ArrayLike<number> = 1,
): { d: Float64Array; grad: Float64Array } {
  const n = z.length / v;
  const d = new Float64Array(n);
  const grad = new Float64Array(n * v);
  for (let r = 0; r < n; r++) {
    if (mask && mask[r] === 0) continue;
    const g = typeof gradOutput === 'number' ? gradOutput : gradOutput[r];
    const res = divergenceRow(z, zt, r * v, v, kind, beta, tau);
    d[r] = res.d;
    for (let j = 0; j < v; j++) grad[r * v + j] = g * res.grad[j];
  }
  return { d, grad };
}
