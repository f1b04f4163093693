// d3poLoss (D3PO) against a float64 reference written from its formula (yk7333/d3po/scripts/train.py),
// its gradients against central finite differences, bad input, threads and the Async form.
import { describe, expect, it } from 'vitest';

import { d3poLoss, d3poLossAsync, setNumThreads } from '../lib/index.js';
import { centralDiff, randn, rng } from './helpers.js';
import { refD3po } from './reference/pairwise.js';

function inputs(B: number, T: number, seed: number, scale = 0.1) {
  const n = B * T;
  const lp0 = randn(n, 1, seed).map((x) => x - 3);
  const lp1 = randn(n, 1, seed + 1).map((x) => x - 3);
  const n0 = randn(n, scale, seed + 2), n1 = randn(n, scale, seed + 3);
  const ref0 = lp0.map((x, i) => x + n0[i]);
  const ref1 = lp1.map((x, i) => x + n1[i]);
  const r = rng(seed + 4);
  const h0 = new Float32Array(B).map(() => { const u = r(); return u < 0.45 ? 1 : u < 0.9 ? -1 : 0; });
  const h1 = h0.map((x) => -x);
  const hTok0 = randn(n, 1, seed + 5), hTok1 = randn(n, 1, seed + 6);
  const m8 = new Uint8Array(n).map(() => (r() < 0.8 ? 1 : 0));
  const mf = new Float32Array(n).map((_, i) => (m8[i] ? 0.5 + (i % 3) : 0));
  return { lp0, lp1, ref0, ref1, h0, h1, hTok0, hTok1, m8, mf };
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1e-30, Math.abs(b[i]), 1e-8));
  return worst;
}

describe('d3poLoss', () => {
  for (const [B, T] of [[1, 1], [1, 20], [3, 7], [5, 129], [17, 33]] as const) {
    it(`matches the float64 reference, ${B}x${T}, per-pair and per-step preferences, every mask kind`, () => {
      const x = inputs(B, T, B * 10 + T);
      for (const [h0, h1] of [[x.h0, x.h1], [x.hTok0, x.hTok1]]) {
        for (const mask of [null, x.m8, x.mf]) {
          for (const [beta, eps] of [[0.1, 0.1], [2.5, 0.2], [1, 0]]) {
            const got = d3poLoss(x.lp0, x.lp1, x.ref0, x.ref1, h0, h1, mask, { seqLen: T, beta, epsilon: eps });
            const ref = refD3po(x.lp0, x.lp1, x.ref0, x.ref1, h0, h1, mask, T, beta, eps);
            expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(ref.loss)));
            expect(relErr(got.gradLogprobs0, ref.grad0)).toBeLessThan(1e-6);
            expect(relErr(got.gradLogprobs1, ref.grad1)).toBeLessThan(1e-6);
            expect(got.metrics.clipFraction).toBeCloseTo(ref.clipFraction, 12);
            expect(got.metrics.accuracy).toBeCloseTo(ref.accuracy, 12);
            expect(got.metrics.tokenCount).toBe(ref.tokenCount);
          }
        }
      }
    });
  }

  it('defaults are beta 0.1 and epsilon 0.1 (D3PO config), and the loss is log 2 at the reference', () => {
    const x = inputs(4, 9, 7);
    const got = d3poLoss(x.lp0, x.lp1, x.ref0, x.ref1, x.h0, x.h1, null, { seqLen: 9 });
    expect(got.loss).toBeCloseTo(refD3po(x.lp0, x.lp1, x.ref0, x.ref1, x.h0, x.h1, null, 9, 0.1, 0.1).loss, 12);
    const same = d3poLoss(x.lp0, x.lp1, x.lp0, x.lp1, x.h0, x.h1, null, { seqLen: 9 });
    expect(same.loss).toBeCloseTo(Math.LN2, 12);
  });

  it('gradients agree with central finite differences of the reference', () => {
    for (const [B, T] of [[2, 5], [1, 1], [3, 9]] as const) {
      const x = inputs(B, T, 99 + T, 0.05);
      for (const [h0, h1] of [[x.h0, x.h1], [x.hTok0, x.hTok1]]) {
        const got = d3poLoss(x.lp0, x.lp1, x.ref0, x.ref1, h0, h1, x.mf, { seqLen: T, beta: 3, epsilon: 0.08 });
        const lo = Math.log(1 - 0.08), hi = Math.log(1.08);
        for (const which of [0, 1] as const) {
          const base = Float64Array.from(which === 0 ? x.lp0 : x.lp1);
          const refArr = which === 0 ? x.ref0 : x.ref1;
          const f = (v: Float64Array) =>
            which === 0
              ? refD3po(v, x.lp1, x.ref0, x.ref1, h0, h1, x.mf, T, 3, 0.08).loss
              : refD3po(x.lp0, v, x.ref0, x.ref1, h0, h1, x.mf, T, 3, 0.08).loss;
          const g = which === 0 ? got.gradLogprobs0 : got.gradLogprobs1;
          for (let i = 0; i < base.length; i++) {
            const d = base[i] - refArr[i];
            if (Math.abs(d - lo) < 1e-4 || Math.abs(d - hi) < 1e-4) continue; // at a clamp edge
            expect(g[i]).toBeCloseTo(centralDiff(f, base, i), 6);
          }
        }
      }
    }
  });

  it('large and tiny log-ratios, huge beta, an all-masked pair', () => {
    const B = 3, T = 11;
    const x = inputs(B, T, 5);
    for (const s of [1e-7, 30]) {
      const ref0 = x.lp0.map((v, i) => v + s * ((i % 5) - 2));
      const mask = new Uint8Array(B * T).fill(1);
      mask.fill(0, T, 2 * T);
      for (const beta of [0.1, 1e4]) {
        const got = d3poLoss(x.lp0, x.lp1, ref0, x.ref1, x.h0, x.h1, mask, { seqLen: T, beta });
        const ref = refD3po(x.lp0, x.lp1, ref0, x.ref1, x.h0, x.h1, mask, T, beta, 0.1);
        expect(Number.isFinite(got.loss)).toBe(true);
        expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-12 * Math.max(1, ref.loss));
        for (let t = T; t < 2 * T; t++) expect(got.gradLogprobs0[t]).toBe(0);
      }
    }
    const none = d3poLoss(x.lp0, x.lp1, x.ref0, x.ref1, x.h0, x.h1, new Uint8Array(B * T), { seqLen: T });
    expect(none.loss).toBe(0);
    expect(none.metrics.tokenCount).toBe(0);
  });

  it('is bit-identical for 1, 2 and 3 threads, writes out, and the Async form agrees', async () => {
    const x = inputs(64, 257, 11);
    const out0 = new Float32Array(x.lp0.length).fill(NaN);
    const runs = [];
    for (const t of [1, 2, 3]) {
      setNumThreads(t);
      runs.push(d3poLoss(x.lp0, x.lp1, x.ref0, x.ref1, x.hTok0, x.hTok1, x.m8, { seqLen: 257, out: t === 1 ? { gradLogprobs0: out0 } : undefined }));
    }
    const c = await d3poLossAsync(x.lp0, x.lp1, x.ref0, x.ref1, x.hTok0, x.hTok1, x.m8, { seqLen: 257 });
    setNumThreads(2);
    expect(runs[0].gradLogprobs0).toBe(out0);
    for (const r of [...runs.slice(1), c]) {
      expect(r.loss).toBe(runs[0].loss);
      expect(Buffer.from(r.gradLogprobs0.buffer).equals(Buffer.from(out0.buffer))).toBe(true);
      expect(Buffer.from(r.gradLogprobs1.buffer).equals(Buffer.from(runs[0].gradLogprobs1.buffer))).toBe(true);
    }
  });

  it('rejects bad input with a message naming the argument', () => {
    const x = new Float32Array(6);
    expect(() => d3poLoss(x, x, x, x, new Float32Array(4), x, null, { seqLen: 3 })).toThrow(
      /preference0: expected length 2 \(one per sequence\) or 6 \(one per token\), received length 4/,
    );
    expect(() => d3poLoss(x, x, x, new Float32Array(5), x, x, null, { seqLen: 3 })).toThrow(/refLogprobs1/);
    expect(() => d3poLoss(x, x, x, x, x, x, null, { seqLen: 0 })).toThrow(/options.seqLen: expected an integer in \[1, 2147483647\], received 0/);
    expect(() => d3poLoss(x, x, x, x, x, x, null, {} as never)).toThrow(TypeError);
    expect(() => d3poLoss(x, x, x, x, x, x, 'mask' as never, { seqLen: 3 })).toThrow(/mask: expected a Uint8Array or Float32Array, received string 'mask'/);
    expect(() => d3poLoss(x, x, x, x, x, x, null, { seqLen: 3, epsilon: 1 })).toThrow(/options.epsilon: expected a finite number in \[0, 0.99\], received 1/);
    expect(() => d3poLoss(x, x, x, x, x, x, null, { seqLen: 3, beta: 0 })).toThrow(/options.beta: expected a finite positive number, received 0/);
    expect(() => d3poLoss(x, x, x, x, x, x, null, { seqLen: 3, bta: 1 } as never)).toThrow(/bta/);
  });
});
