// prdpLoss (PRDP reward-difference prediction) against a float64 reference written from its formula,
// its gradients against central finite differences, bad input, threads and the Async form.
import { describe, expect, it } from 'vitest';

import { prdpLoss, prdpLossAsync, setNumThreads } from '../lib/index.js';
import { centralDiff, randn, rng } from './helpers.js';
import { refPrdp } from './reference/pairwise.js';

function inputs(B: number, T: number, seed: number, scale = 0.05) {
  const n = B * T;
  const lpA = randn(n, 1, seed).map((x) => x - 3), lpB = randn(n, 1, seed + 1).map((x) => x - 3);
  const nA = randn(n, scale, seed + 2), nB = randn(n, scale, seed + 3);
  const oldA = lpA.map((x, i) => x + nA[i]), oldB = lpB.map((x, i) => x + nB[i]);
  const rA = randn(B, 1, seed + 4), rB = randn(B, 1, seed + 5);
  const r = rng(seed + 6);
  const m8 = new Uint8Array(n).map(() => (r() < 0.8 ? 1 : 0));
  const mf = new Float32Array(n).map((_, i) => (m8[i] ? 0.5 + (i % 3) : 0));
  return { lpA, lpB, oldA, oldB, rA, rB, m8, mf };
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), 1e-8));
  return worst;
}

describe('prdpLoss', () => {
  for (const [B, T] of [[1, 1], [1, 50], [3, 7], [5, 129], [17, 33]] as const) {
    it(`matches the float64 reference, ${B}x${T}, every mask kind, both step reductions`, () => {
      const x = inputs(B, T, B * 10 + T);
      for (const mask of [null, x.m8, x.mf]) {
        for (const stepReduction of ['sum', 'mean'] as const) {
          for (const [beta, eps] of [[0.1, 1e-4], [2, 0.05], [1, 0.5], [0.3, 0]]) {
            const got = prdpLoss(x.lpA, x.lpB, x.oldA, x.oldB, x.rA, x.rB, mask, { seqLen: T, beta, epsilon: eps, stepReduction });
            const ref = refPrdp(x.lpA, x.lpB, x.oldA, x.oldB, x.rA, x.rB, mask, T, beta, eps, stepReduction);
            expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-12 * Math.max(1, ref.loss));
            expect(relErr(got.gradLogprobsA, ref.gradA)).toBeLessThan(1e-6);
            expect(relErr(got.gradLogprobsB, ref.gradB)).toBeLessThan(1e-6);
            expect(got.metrics.clipFraction).toBeCloseTo(ref.clipFraction, 12);
            expect(got.metrics.tokenCount).toBe(ref.tokenCount);
          }
        }
      }
    });
  }

  it('defaults are beta 0.1, epsilon 1e-4, the sum over steps; at the old policy the loss is the mean of ((r_a - r_b) / beta)^2', () => {
    const x = inputs(6, 9, 4);
    const got = prdpLoss(x.lpA, x.lpB, x.oldA, x.oldB, x.rA, x.rB, null, { seqLen: 9 });
    expect(got.loss).toBeCloseTo(refPrdp(x.lpA, x.lpB, x.oldA, x.oldB, x.rA, x.rB, null, 9, 0.1, 1e-4, 'sum').loss, 10);
    const at = prdpLoss(x.lpA, x.lpB, x.lpA, x.lpB, x.rA, x.rB, null, { seqLen: 9 });
    let msd = 0;
    for (let b = 0; b < 6; b++) msd += ((x.rA[b] - x.rB[b]) / 0.1) ** 2 / 6;
    expect(at.loss).toBeCloseTo(msd, 9);
    expect(at.metrics.clipFraction).toBe(0);
  });

  it('the larger of the clipped and unclipped squared errors (Eq. 18), by hand', () => {
    // one pair, T = 2: d_a = (0.5, 0.001), d_b = (0, 0), eps = 0.01, beta = 1
    const lpA = new Float32Array([-1.5, -2.999]), oldA = new Float32Array([-2, -3]);
    const lpB = new Float32Array([-1, -1]), oldB = lpB;
    const dA = [lpA[0] - oldA[0], lpA[1] - oldA[1]];
    const D = dA[0] + dA[1], Dc = 0.01 + dA[1];
    // y = 1: u = D - 1, v = Dc - 1; |v| > |u|: the clipped error, no gradient at the clipped step
    let r = prdpLoss(lpA, lpB, oldA, oldB, new Float32Array([1]), new Float32Array([0]), null, { seqLen: 2, beta: 1, epsilon: 0.01 });
    expect(r.loss).toBeCloseTo((Dc - 1) ** 2, 12);
    expect(r.gradLogprobsA[0]).toBe(0);
    expect(r.gradLogprobsA[1]).toBeCloseTo(2 * (Dc - 1), 6);
    expect(Array.from(r.gradLogprobsB)).toEqual([Math.fround(-2 * (Dc - 1)), Math.fround(-2 * (Dc - 1))]);
    expect(r.metrics.clipFraction).toBe(0.5);
    // y = -1: |u| > |v|: the unclipped error, every step follows
    r = prdpLoss(lpA, lpB, oldA, oldB, new Float32Array([0]), new Float32Array([1]), null, { seqLen: 2, beta: 1, epsilon: 0.01 });
    expect(r.loss).toBeCloseTo((D + 1) ** 2, 12);
    expect(r.gradLogprobsA[0]).toBeCloseTo(2 * (D + 1), 6);
    expect(r.gradLogprobsA[1]).toBeCloseTo(2 * (D + 1), 6);
    // 'mean' divides both log-ratio sums by T; beta divides the reward difference
    r = prdpLoss(lpA, lpB, oldA, oldB, new Float32Array([0]), new Float32Array([1]), null, { seqLen: 2, beta: 4, epsilon: 0.01, stepReduction: 'mean' });
    expect(r.loss).toBeCloseTo((D / 2 + 0.25) ** 2, 12);
    expect(r.gradLogprobsA[0]).toBeCloseTo((2 * (D / 2 + 0.25)) / 2, 6);
  });

  it('the reference model enters through the rewards: r - beta sum_t m (l_old - l_ref) gives the paper loss with l_ref', () => {
    for (const [B, T] of [[4, 13], [1, 50]] as const) {
      const x = inputs(B, T, 300 + T, 0.02);
      const refA = x.oldA.map((v, i) => v - 0.3 * Math.sin(i)), refB = x.oldB.map((v, i) => v + 0.2 * Math.cos(i));
      for (const stepReduction of ['sum', 'mean'] as const) {
        for (const mask of [null, x.mf]) {
          const beta = 0.7, eps = 0.01;
          const shift = (r: Float32Array, old: Float32Array, ref: Float32Array) =>
            Float32Array.from(r, (v, b) => {
              let s = 0, w = 0;
              for (let t = 0; t < T; t++) {
                const i = b * T + t, m = mask === null ? 1 : mask[i];
                s += m * (old[i] - ref[i]), w += m;
              }
              return v - beta * (stepReduction === 'sum' ? s : w > 0 ? s / w : 0);
            });
          const rA = shift(x.rA, x.oldA, refA), rB = shift(x.rB, x.oldB, refB);
          const got = prdpLoss(x.lpA, x.lpB, x.oldA, x.oldB, rA, rB, mask, { seqLen: T, beta, epsilon: eps, stepReduction });
          // the f32 rounding of the shifted rewards is the only difference
          const want = refPrdp(x.lpA, x.lpB, x.oldA, x.oldB, x.rA, x.rB, mask, T, beta, eps, stepReduction, refA, refB);
          expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-5 * Math.max(1, want.loss));
          expect(relErr(got.gradLogprobsA, want.gradA)).toBeLessThan(1e-4);
          expect(relErr(got.gradLogprobsB, want.gradB)).toBeLessThan(1e-4);
        }
      }
    }
  });

  it("Appendix G's group loss: all pairs with r_i > r_j of one prompt, the mean over steps, the reference through the rewards", () => {
    // Appendix G, written from its description: log-ratios to pi_ref (B, T), clipped to the old ones +- eps,
    // averaged over T; B x B differences; max of the two squared errors against dr / beta; mean over r_i > r_j.
    const G = 6, T = 11, beta = 0.5, eps = 0.02;
    const lp = randn(G * T, 1, 901).map((v) => v - 3), old = lp.map((v, i) => v + 0.03 * Math.sin(3 * i));
    const ref = old.map((v, i) => v - 0.1 * Math.cos(i)), r = randn(G, 1, 902);
    r[4] = r[1]; // a tie: dropped by Appendix G
    const appendixG = (l: ArrayLike<number>) => {
      const lr = new Float64Array(G), lc = new Float64Array(G);
      for (let g = 0; g < G; g++) {
        for (let t = 0; t < T; t++) {
          const i = g * T + t, x = l[i] - ref[i], o = old[i] - ref[i];
          lr[g] += x / T;
          lc[g] += Math.min(Math.max(x, o - eps), o + eps) / T;
        }
      }
      let sum = 0, count = 0;
      for (let i = 0; i < G; i++) {
        for (let j = 0; j < G; j++) {
          const dr = r[i] - r[j];
          if (!(dr > 0)) continue;
          sum += Math.max((lr[i] - lr[j] - dr / beta) ** 2, (lc[i] - lc[j] - dr / beta) ** 2);
          count++;
        }
      }
      return sum / count;
    };
    const pairs: [number, number][] = [];
    for (let i = 0; i < G; i++) for (let j = 0; j < G; j++) if (r[i] > r[j]) pairs.push([i, j]);
    expect(pairs.length).toBe(14); // 15 pairs less the tie
    const P = pairs.length;
    const rows = (k: 0 | 1, src: ArrayLike<number>) => {
      const out = new Float32Array(P * T);
      pairs.forEach((pr, p) => { for (let t = 0; t < T; t++) out[p * T + t] = src[pr[k] * T + t]; });
      return out;
    };
    const shifted = Float32Array.from(r, (v, g) => {
      let s = 0;
      for (let t = 0; t < T; t++) s += old[g * T + t] - ref[g * T + t];
      return v - (beta * s) / T;
    });
    const got = prdpLoss(rows(0, lp), rows(1, lp), rows(0, old), rows(1, old),
      Float32Array.from(pairs, (pr) => shifted[pr[0]]), Float32Array.from(pairs, (pr) => shifted[pr[1]]), null,
      { seqLen: T, beta, epsilon: eps, stepReduction: 'mean' });
    const want = appendixG(lp);
    expect(Math.abs(got.loss - want)).toBeLessThan(1e-5 * Math.max(1, want));
    // each sample's gradient: the sum over the pairs it is in, against finite differences of the group loss
    const base = Float64Array.from(lp);
    for (const i of [0, 7, 3 * T + 5, G * T - 1]) {
      const g = Math.floor(i / T), t = i % T;
      let sum = 0;
      pairs.forEach((pr, p) => {
        if (pr[0] === g) sum += got.gradLogprobsA[p * T + t];
        if (pr[1] === g) sum += got.gradLogprobsB[p * T + t];
      });
      expect(sum).toBeCloseTo(centralDiff(appendixG, base, i), 4);
    }
  });

  it('gradients agree with central finite differences of the reference', () => {
    for (const stepReduction of ['sum', 'mean'] as const) {
      for (const [B, T] of [[2, 5], [1, 1], [3, 9]] as const) {
        const x = inputs(B, T, 70 + T, 0.02);
        const eps = 0.03, beta = 1.5;
        const got = prdpLoss(x.lpA, x.lpB, x.oldA, x.oldB, x.rA, x.rB, x.mf, { seqLen: T, beta, epsilon: eps, stepReduction });
        for (const which of ['A', 'B'] as const) {
          const base = Float64Array.from(which === 'A' ? x.lpA : x.lpB);
          const old = which === 'A' ? x.oldA : x.oldB;
          const f = (v: Float64Array) =>
            which === 'A'
              ? refPrdp(v, x.lpB, x.oldA, x.oldB, x.rA, x.rB, x.mf, T, beta, eps, stepReduction).loss
              : refPrdp(x.lpA, v, x.oldA, x.oldB, x.rA, x.rB, x.mf, T, beta, eps, stepReduction).loss;
          const g = which === 'A' ? got.gradLogprobsA : got.gradLogprobsB;
          for (let i = 0; i < base.length; i++) {
            const d = base[i] - old[i];
            if (Math.abs(Math.abs(d) - eps) < 1e-4) continue; // at a clip edge
            expect(g[i]).toBeCloseTo(centralDiff(f, base, i), 6);
          }
        }
      }
    }
  });

  it('large and tiny log-ratios and rewards, an all-masked pair', () => {
    const B = 3, T = 11;
    const x = inputs(B, T, 5);
    for (const s of [1e-7, 30]) {
      const oldA = x.lpA.map((v, i) => v + s * ((i % 5) - 2));
      const mask = new Uint8Array(B * T).fill(1);
      mask.fill(0, T, 2 * T);
      for (const rs of [1e-6, 1e3]) {
        const rA = x.rA.map((v) => v * rs);
        const got = prdpLoss(x.lpA, x.lpB, oldA, x.oldB, rA, x.rB, mask, { seqLen: T, epsilon: 0.2 });
        const ref = refPrdp(x.lpA, x.lpB, oldA, x.oldB, rA, x.rB, mask, T, 0.1, 0.2);
        expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-12 * Math.max(1, ref.loss));
        expect(relErr(got.gradLogprobsA, ref.gradA)).toBeLessThan(1e-6);
        for (let t = T; t < 2 * T; t++) expect(got.gradLogprobsA[t]).toBe(0);
      }
    }
  });

  it('is bit-identical for 1, 2 and 3 threads, writes out, and the Async form agrees', async () => {
    const x = inputs(64, 257, 11, 1e-4);
    const outB = new Float32Array(x.lpA.length).fill(NaN);
    const runs = [];
    for (const t of [1, 2, 3]) {
      setNumThreads(t);
      runs.push(prdpLoss(x.lpA, x.lpB, x.oldA, x.oldB, x.rA, x.rB, x.mf, { seqLen: 257, out: t === 1 ? { gradLogprobsB: outB } : undefined }));
    }
    const c = await prdpLossAsync(x.lpA, x.lpB, x.oldA, x.oldB, x.rA, x.rB, x.mf, { seqLen: 257 });
    setNumThreads(2);
    expect(runs[0].gradLogprobsB).toBe(outB);
    for (const r of [...runs.slice(1), c]) {
      expect(r.loss).toBe(runs[0].loss);
      expect(Buffer.from(r.gradLogprobsA.buffer).equals(Buffer.from(runs[0].gradLogprobsA.buffer))).toBe(true);
      expect(Buffer.from(r.gradLogprobsB.buffer).equals(Buffer.from(outB.buffer))).toBe(true);
    }
  });

  it('rejects bad input with a message naming the argument', async () => {
    const x = new Float32Array(6), r2 = new Float32Array(2);
    expect(() => prdpLoss(x, x, x, x, x, r2, null, { seqLen: 3 })).toThrow(/rewardsA: expected length 2 \(one per pair\), received length 6/);
    await expect(prdpLossAsync(x, x, x, x, r2, new Float32Array(3), null, { seqLen: 3 })).rejects.toThrow(/rewardsB: expected length 2 \(one per pair\), received length 3/);
    expect(() => prdpLoss(x, x, new Float32Array(5), x, r2, r2, null, { seqLen: 3 })).toThrow(/oldLogprobsA/);
    expect(() => prdpLoss(x, x, x, x, r2, r2, null, { seqLen: 0 })).toThrow(/options.seqLen: expected an integer in \[1, 2147483647\], received 0/);
    expect(() => prdpLoss(x, x, x, x, r2, r2, null, {} as never)).toThrow(TypeError);
    expect(() => prdpLoss(x, x, x, x, r2, r2, 'mask' as never, { seqLen: 3 })).toThrow(/mask: expected a Uint8Array or Float32Array, received string 'mask'/);
    expect(() => prdpLoss(x, x, x, x, r2, r2, null, { seqLen: 3, epsilon: -1 })).toThrow(/options.epsilon: expected a finite number in \[0, 0.99\], received -1/);
    expect(() => prdpLoss(x, x, x, x, r2, r2, null, { seqLen: 3, beta: NaN })).toThrow(/options.beta: expected a finite positive number, received NaN/);
    expect(() => prdpLoss(x, x, x, x, r2, r2, null, { seqLen: 3, betta: 1 } as never)).toThrow(/betta/);
    expect(() => prdpLoss(x, x, x, x, r2, r2, null, { seqLen: 3, stepReduction: 'token' as never })).toThrow(
      /options.stepReduction: expected one of 'sum', 'mean', received string 'token'/,
    );
  });
});
