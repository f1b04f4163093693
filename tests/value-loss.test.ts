// valueLoss against a float64 reference written from its formula (verl compute_value_loss), and its
// gradient against central finite differences of that reference.
import { describe, expect, it } from 'vitest';

import { setNumThreads, valueLoss, valueLossAsync, type LossAggregation } from '../lib/index.js';
import { centralDiff, expectClose, randn, rng } from './helpers.js';
import { refValueLoss } from './reference/seq-ops.js';

function inputs(B: number, T: number, seed: number, scale = 1) {
  const n = B * T;
  const v = randn(n, scale, seed), R = randn(n, scale, seed + 1);
  const noise = randn(n, 1, seed + 2);
  const old = v.map((x, i) => x + 0.6 * scale * noise[i]);
  const r = rng(seed + 3);
  const m8 = new Uint8Array(n).map(() => (r() < 0.8 ? 1 : 0));
  const mf = new Float32Array(n).map((_, i) => (m8[i] ? 0.25 + (i % 4) : 0));
  return { v, R, old, m8, mf };
}

const AGGS: LossAggregation[] = ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum', 'seq-mean-token-sum-norm'];

describe('valueLoss', () => {
  for (const [B, T] of [[1, 1], [3, 7], [5, 129], [17, 33], [2, 1031]] as const) {
    for (const agg of AGGS) {
      it(`matches the float64 reference, ${B}x${T} ${agg}, every mask kind`, () => {
        const { v, R, old, m8, mf } = inputs(B, T, B * 100 + T);
        for (const mask of [null, m8, mf]) {
          const got = valueLoss(v, R, old, mask, { seqLen: T, aggregation: agg, cliprangeValue: 0.3 });
          const ref = refValueLoss(v, R, old, mask, T, 0.3, agg);
          expect(got.loss).toBeCloseTo(ref.loss, 10);
          expectClose(got.gradValues, ref.grad, 1e-6, 1e-9, 'gradValues');
          expect(got.metrics.clipFraction).toBeCloseTo(ref.clipFraction, 12);
          expect(got.metrics.tokenCount).toBe(ref.tokenCount);
        }
      });
    }
  }

  it('large and tiny magnitudes, normalizer, default clip 0.5', () => {
    for (const scale of [1e-6, 1e4]) {
      const { v, R, old, m8 } = inputs(4, 37, 7, scale);
      const got = valueLoss(v, R, old, m8, { seqLen: 37, normalizer: 100 });
      const ref = refValueLoss(v, R, old, m8, 37, 0.5, 'token-mean', 100);
      expect(got.loss / ref.loss).toBeCloseTo(1, 9);
      expectClose(got.gradValues, ref.grad, 1e-6, 1e-12 * scale, 'gradValues');
    }
  });

  it('gradient agrees with central finite differences of the reference', () => {
    const B = 3, T = 5;
    const { v, R, old, mf } = inputs(B, T, 42);
    for (const agg of AGGS) {
      const got = valueLoss(v, R, old, mf, { seqLen: T, aggregation: agg, cliprangeValue: 0.3 });
      const f = (x: Float64Array) => refValueLoss(x, R, old, mf, T, 0.3, agg).loss;
      const x = Float64Array.from(v);
      for (let i = 0; i < x.length; i++) {
        // skip the kinks, where the clip or the max switches branch within the step
        const vc = Math.min(Math.max(v[i], old[i] - 0.3), old[i] + 0.3);
        if (Math.abs(v[i] - (old[i] - 0.3)) < 1e-4 || Math.abs(v[i] - (old[i] + 0.3)) < 1e-4) continue;
        if (Math.abs((v[i] - R[i]) ** 2 - (vc - R[i]) ** 2) < 1e-4) continue;
        expect(got.gradValues[i]).toBeCloseTo(centralDiff(f, x, i), 5);
      }
    }
  });

  it('writes caller-owned out, is the same for 1 and 2 threads, and the Async form agrees', async () => {
    const { v, R, old, m8 } = inputs(9, 301, 5);
    const out = new Float32Array(v.length).fill(NaN);
    setNumThreads(1);
    const a = valueLoss(v, R, old, m8, { seqLen: 301, out: { gradValues: out } });
    setNumThreads(2);
    const b = valueLoss(v, R, old, m8, { seqLen: 301 });
    const c = await valueLossAsync(v, R, old, m8, { seqLen: 301 });
    expect(a.gradValues).toBe(out);
    expect(b.loss).toBe(a.loss);
    expect(Array.from(b.gradValues)).toEqual(Array.from(out));
    expect(c.loss).toBe(a.loss);
  });

  it('rejects bad input with a message naming the argument, before native code', () => {
    const v = new Float32Array(6);
    expect(() => valueLoss(v, v, v, null, { seqLen: 4 })).toThrow(/options.seqLen: expected a divisor of the length of values \(6\), received 4/);
    expect(() => valueLoss(v, new Float32Array(5), v, null, { seqLen: 3 })).toThrow(RangeError);
    expect(() => valueLoss(v, v, new Float64Array(6) as never, null, { seqLen: 3 })).toThrow(/oldValues: expected a Float32Array, received Float64Array\(6\)/);
    expect(() => valueLoss(v, v, v, null, { seqLen: 3, cliprangeValue: -1 })).toThrow(/options.cliprangeValue: expected a finite number in \[0, Infinity\], received -1/);
    expect(() => valueLoss(v, v, v, null, { seqLen: 3, aggregation: 'mean' as never })).toThrow(/options.aggregation: expected one of/);
    expect(() => valueLoss(v, v, v, new Float32Array([1, -1, 1, 1, 1, 1]), { seqLen: 3 })).toThrow(/mask\[1\]: expected a finite weight >= 0, received -1/);
    expect(() => valueLoss(v, v, v, null, { seqLen: 3, out: { grad: v } as never })).toThrow(/options.out.grad: not an output of valueLoss/);
  });
});
