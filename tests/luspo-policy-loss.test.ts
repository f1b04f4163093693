// luspoPolicyLoss (TRL loss_type "luspo") against a float64 reference written from TRL's formula, and
// its gradient against central finite differences.
import { describe, expect, it } from 'vitest';

import { luspoPolicyLoss, luspoPolicyLossAsync } from '../lib/index.js';
import { centralDiff } from './helpers.js';
import { refLuspo } from './reference/policy-extra.js';
import { expectThreadsOutAsync, seqInputs } from './seq-inputs.js';

const CLIPS: [number, number, number][] = [[0.2, 0.2, 0], [0.05, 0.1, 0], [0.2, 0.28, 1.05], [3e-4, 4e-4, 0]];

describe('luspoPolicyLoss', () => {
  for (const [B, T] of [[1, 1], [3, 7], [5, 129], [17, 33], [2, 1031]] as const) {
    it(`matches the float64 reference, ${B}x${T}, per-sequence and per-token advantages, every mask kind and clip`, () => {
      const { lp, old, advSeq, advTok, m8, mf } = seqInputs(B, T, B * 10 + T, 0.1);
      for (const adv of [advSeq, advTok]) {
        for (const mask of [null, m8, mf]) {
          for (const [eLo, eHi, delta] of CLIPS) {
            const got = luspoPolicyLoss(lp, old, adv, mask, { seqLen: T, epsilonLow: eLo, epsilonHigh: eHi, ...(delta ? { delta } : {}) });
            const ref = refLuspo(lp, old, adv, mask, T, eLo, eHi, delta);
            expect(got.loss).toBeCloseTo(ref.loss, 9);
            expect(got.metrics.clipFractionLow).toBeCloseTo(ref.clipFractionLow, 12);
            expect(got.metrics.clipFractionHigh).toBeCloseTo(ref.clipFractionHigh, 12);
            expect(got.metrics.ppoKl).toBeCloseTo(ref.ppoKl, 9);
            expect(got.metrics.tokenCount).toBe(ref.tokenCount);
          }
        }
      }
    });
  }

  it('epsilonHigh defaults to epsilonLow; both default to 0.2', () => {
    const { lp, old, advSeq, m8 } = seqInputs(6, 5, 8, 0.4);
    expect(luspoPolicyLoss(lp, old, advSeq, m8, { seqLen: 5, epsilonLow: 0.1 }).loss).toBeCloseTo(refLuspo(lp, old, advSeq, m8, 5, 0.1, 0.1).loss, 10);
    expect(luspoPolicyLoss(lp, old, advSeq, m8, { seqLen: 5 }).loss).toBeCloseTo(refLuspo(lp, old, advSeq, m8, 5, 0.2, 0.2).loss, 10);
  });

  it('gradient agrees with central finite differences of the reference (inside, outside the clip, capped by delta)', () => {
    for (const [B, T] of [[2, 5], [1, 1], [4, 9]] as const) {
      for (const scale of [0.05, 0.6]) {
        const { lp, old, advSeq, advTok, mf } = seqInputs(B, T, 99 + T, scale);
        for (const adv of [advSeq, advTok]) {
          for (const [eLo, eHi, delta] of [[0.2, 0.3, 0], [0.05, 0.05, 1.02]]) {
            const got = luspoPolicyLoss(lp, old, adv, mf, { seqLen: T, epsilonLow: eLo, epsilonHigh: eHi, ...(delta ? { delta } : {}) });
            const f = (x: Float64Array) => refLuspo(x, old, adv, mf, T, eLo, eHi, delta).loss;
            const x = Float64Array.from(lp);
            for (let i = 0; i < x.length; i++) expect(got.gradLogprobs[i]).toBeCloseTo(centralDiff(f, x, i), 6);
          }
        }
      }
    }
  });

  it('an all-masked row adds nothing and gets no gradient; large log-ratios', () => {
    const B = 3, T = 11;
    const { lp, advSeq } = seqInputs(B, T, 5);
    for (const s of [1e-7, 5]) {
      const old = lp.map((x, i) => x + s * ((i % 5) - 2));
      const mask = new Uint8Array(B * T).fill(1);
      mask.fill(0, T, 2 * T);
      const got = luspoPolicyLoss(lp, old, advSeq, mask, { seqLen: T });
      const ref = refLuspo(lp, old, advSeq, mask, T);
      expect(got.loss).toBeCloseTo(ref.loss, 10);
      for (let t = T; t < 2 * T; t++) expect(got.gradLogprobs[t]).toBe(0);
    }
  });

  it('is the same for 1 and 2 threads, writes out, and the Async form agrees', async () => {
    await expectThreadsOutAsync(luspoPolicyLoss, luspoPolicyLossAsync, 0.01);
  });

  it('rejects bad input with a message naming the argument', () => {
    const x = new Float32Array(6);
    expect(() => luspoPolicyLoss(x, x, new Float32Array(4), null, { seqLen: 3 })).toThrow(
      /advantages: expected length 2 \(one per sequence\) or 6 \(one per token\), received length 4/,
    );
    expect(() => luspoPolicyLoss(x, new Float32Array(5), x, null, { seqLen: 3 })).toThrow(/oldLogprobs: .*6/);
    expect(() => luspoPolicyLoss(x, x, x, null, { seqLen: 3, delta: 1 })).toThrow(/options.delta: expected a finite number > 1, received 1/);
    expect(() => luspoPolicyLoss(x, x, x, null, { seqLen: 3, epsilonLow: -0.1 })).toThrow(/options.epsilonLow/);
    expect(() => luspoPolicyLoss(x, x, x, null, { seqLen: 3, epsilonHigh: NaN })).toThrow(/options.epsilonHigh: expected a finite number/);
    expect(() => luspoPolicyLoss(x, x, x, new Uint8Array(5), { seqLen: 3 })).toThrow(/mask/);
    expect(() => luspoPolicyLoss(x, x, x, null, { seqLen: 3, kPos: 1 } as never)).toThrow(TypeError);
  });
});
