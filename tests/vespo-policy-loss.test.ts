// vespoPolicyLoss (TRL loss_type "vespo") against a float64 reference written from TRL's formula, and
// its gradient (the Gamma weight held constant, as TRL's no_grad weights) against central finite differences.
import { describe, expect, it } from 'vitest';

import { vespoPolicyLoss, vespoPolicyLossAsync } from '../lib/index.js';
import { centralDiff, expectClose } from './helpers.js';
import { refVespo, type RefVespoOptions } from './reference/policy-extra.js';
import { expectThreadsOutAsync, seqInputs } from './seq-inputs.js';

const OPTS: RefVespoOptions[] = [
  {},
  { kPos: 1, lambdaPos: 0.5, kNeg: 4, lambdaNeg: 6 },
  { kPos: 0, lambdaPos: 0, kNeg: 2.5, lambdaNeg: 1e-6, aggregation: 'seq-mean-token-mean' },
  { aggregation: 'seq-mean-token-sum-norm', normalizer: 123 },
  { aggregation: 'seq-mean-token-sum' },
];

describe('vespoPolicyLoss', () => {
  for (const [B, T] of [[1, 1], [3, 7], [5, 129], [17, 33], [2, 1031]] as const) {
    it(`matches the float64 reference, ${B}x${T}, per-sequence and per-token advantages, every mask kind and option`, () => {
      for (const scale of [0.5 / Math.sqrt(T), 0.3]) {
        const { lp, old, advSeq, advTok, m8, mf } = seqInputs(B, T, B * 10 + T, scale);
        for (const adv of [advSeq, advTok]) {
          for (const mask of [null, m8, mf]) {
            for (const o of OPTS) {
              const got = vespoPolicyLoss(lp, old, adv, mask, { seqLen: T, ...o });
              const ref = refVespo(lp, old, adv, mask, T, o);
              expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-10 * Math.max(1, Math.abs(ref.loss)));
              expectClose(got.gradLogprobs, ref.grad, 1e-6, 1e-9, 'grad');
              expect(Math.abs(got.metrics.phi - ref.phi)).toBeLessThanOrEqual(1e-10 * Math.max(1, ref.phi));
              expect(got.metrics.ppoKl).toBeCloseTo(ref.ppoKl, 9);
              expect(got.metrics.tokenCount).toBe(ref.tokenCount);
            }
          }
        }
      }
    });
  }

  it('phi is 1 on-policy, and vanishes for far off-policy sequences (both clamps)', () => {
    const { lp, advSeq } = seqInputs(4, 6, 2);
    const on = vespoPolicyLoss(lp, lp, advSeq, null, { seqLen: 6 });
    expect(on.metrics.phi).toBeCloseTo(1, 12);
    for (const shift of [-30, 30]) {
      const old = lp.map((x) => x + shift);
      const got = vespoPolicyLoss(lp, old, advSeq, null, { seqLen: 6 });
      const ref = refVespo(lp, old, advSeq, null, 6);
      expect(got.metrics.phi).toBeCloseTo(ref.phi, 12);
      expect(got.loss).toBeCloseTo(ref.loss, 12);
      expect(ref.phi).toBeLessThan(1e-6);
    }
  });

  it('gradient agrees with central finite differences of the reference, phi held constant', () => {
    for (const [B, T] of [[2, 5], [1, 1], [4, 9]] as const) {
      const { lp, old, advSeq, advTok, mf } = seqInputs(B, T, 99 + T, 0.1);
      for (const adv of [advSeq, advTok]) {
        for (const o of OPTS) {
          const got = vespoPolicyLoss(lp, old, adv, mf, { seqLen: T, ...o });
          const f = (x: Float64Array) => refVespo(x, old, adv, mf, T, o, lp).loss;
          const x = Float64Array.from(lp);
          for (let i = 0; i < x.length; i++) expect(got.gradLogprobs[i]).toBeCloseTo(centralDiff(f, x, i), 6);
        }
      }
    }
  });

  it('an all-masked row adds nothing and gets no gradient; tiny and large log-probs', () => {
    const B = 3, T = 11;
    const { lp, old, advSeq } = seqInputs(B, T, 5, 0.05);
    for (const s of [1e-20, 1e6]) {
      const big = lp.map((x) => x * s);
      const oldS = old.map((x, i) => x - lp[i] + big[i]);
      const mask = new Uint8Array(B * T).fill(1);
      mask.fill(0, T, 2 * T);
      const got = vespoPolicyLoss(big, oldS, advSeq, mask, { seqLen: T });
      const ref = refVespo(big, oldS, advSeq, mask, T);
      expect(got.loss / ref.loss).toBeCloseTo(1, 5);
      for (let t = T; t < 2 * T; t++) expect(got.gradLogprobs[t]).toBe(0);
    }
  });

  it('is the same for 1 and 2 threads, writes out, and the Async form agrees', async () => {
    await expectThreadsOutAsync(vespoPolicyLoss, vespoPolicyLossAsync, 0.01);
  });

  it('rejects bad input with a message naming the argument', () => {
    const x = new Float32Array(6);
    expect(() => vespoPolicyLoss(x, x, new Float32Array(4), null, { seqLen: 3 })).toThrow(
      /advantages: expected length 2 \(one per sequence\) or 6 \(one per token\), received length 4/,
    );
    expect(() => vespoPolicyLoss(x, x, x, null, { seqLen: 3, kPos: -1 })).toThrow(/options.kPos/);
    expect(() => vespoPolicyLoss(x, x, x, null, { seqLen: 3, lambdaNeg: Infinity })).toThrow(/options.lambdaNeg: expected a finite number/);
    expect(() => vespoPolicyLoss(x, x, x, null, { seqLen: 3, aggregation: 'sum' as never })).toThrow(/options.aggregation/);
    expect(() => vespoPolicyLoss(x, x, x, null, { seqLen: 3, k: 2 } as never)).toThrow(TypeError);
    expect(() => vespoPolicyLoss(x, x, x, null, { seqLen: 3, out: { gradLogprobs: new Float32Array(5) } })).toThrow(/options.out.gradLogprobs/);
  });
});
