// reinforcePolicyLoss (verl compute_policy_loss_reinforce) against a float64 reference written from its
// formula, and its gradient against central finite differences.
import { describe, expect, it } from 'vitest';

import { reinforcePolicyLoss, reinforcePolicyLossAsync } from '../lib/index.js';
import { centralDiff, expectClose } from './helpers.js';
import { refReinforce } from './reference/policy-extra.js';
import type { RefAggregation } from './reference/seq-ops.js';
import { expectThreadsOutAsync, seqInputs } from './seq-inputs.js';

const AGGS: RefAggregation[] = ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum', 'seq-mean-token-sum-norm'];

describe('reinforcePolicyLoss', () => {
  for (const [B, T] of [[1, 1], [3, 7], [5, 129], [17, 33], [2, 1031]] as const) {
    it(`matches the float64 reference, ${B}x${T}, every aggregation, advantage shape and mask kind`, () => {
      const { lp, old, advSeq, advTok, m8, mf } = seqInputs(B, T, B * 10 + T);
      for (const adv of [advSeq, advTok]) {
        for (const mask of [null, m8, mf]) {
          for (const aggregation of AGGS) {
            for (const normalizer of [0, 37]) {
              const got = reinforcePolicyLoss(lp, old, adv, mask, { seqLen: T, aggregation, ...(normalizer ? { normalizer } : {}) });
              const ref = refReinforce(lp, old, adv, mask, T, aggregation, normalizer);
              expect(got.loss).toBeCloseTo(ref.loss, 10);
              expectClose(got.gradLogprobs, ref.grad, 1e-6, 1e-9, 'grad');
              expect(got.metrics.ppoKl).toBeCloseTo(ref.ppoKl, 10);
              expect(got.metrics.tokenCount).toBe(ref.tokenCount);
            }
          }
        }
      }
    });
  }

  it('defaults to verl seq-mean-token-sum', () => {
    const { lp, old, advSeq, m8 } = seqInputs(4, 9, 3);
    const got = reinforcePolicyLoss(lp, old, advSeq, m8, { seqLen: 9 });
    expect(got.loss).toBeCloseTo(refReinforce(lp, old, advSeq, m8, 9, 'seq-mean-token-sum').loss, 10);
    expect(got.loss).not.toBeCloseTo(refReinforce(lp, old, advSeq, m8, 9, 'token-mean').loss, 3);
  });

  it('gradient agrees with central finite differences of the reference', () => {
    for (const [B, T] of [[2, 5], [1, 1], [4, 9]] as const) {
      const { lp, old, advSeq, advTok, mf } = seqInputs(B, T, 99 + T);
      for (const adv of [advSeq, advTok]) {
        for (const aggregation of AGGS) {
          const got = reinforcePolicyLoss(lp, old, adv, mf, { seqLen: T, aggregation });
          const f = (x: Float64Array) => refReinforce(x, old, adv, mf, T, aggregation).loss;
          const x = Float64Array.from(lp);
          for (let i = 0; i < x.length; i++) expect(got.gradLogprobs[i]).toBeCloseTo(centralDiff(f, x, i), 6);
        }
      }
    }
  });

  it('large and tiny magnitudes, an all-masked row', () => {
    const B = 3, T = 11;
    const { lp, old, advSeq } = seqInputs(B, T, 5);
    for (const s of [1e-30, 1e30]) {
      const big = lp.map((x) => x * s);
      const mask = new Uint8Array(B * T).fill(1);
      mask.fill(0, T, 2 * T);
      const got = reinforcePolicyLoss(big, old, advSeq, mask, { seqLen: T, aggregation: 'seq-mean-token-mean' });
      const ref = refReinforce(big, old, advSeq, mask, T, 'seq-mean-token-mean');
      expect(got.loss / ref.loss).toBeCloseTo(1, 6);
      for (let t = T; t < 2 * T; t++) expect(got.gradLogprobs[t]).toBe(0);
    }
  });

  it('is the same for 1 and 2 threads, writes out, and the Async form agrees', async () => {
    await expectThreadsOutAsync(reinforcePolicyLoss, reinforcePolicyLossAsync);
  });

  it('rejects bad input with a message naming the argument', () => {
    const x = new Float32Array(6);
    expect(() => reinforcePolicyLoss(x, x, new Float32Array(4), null, { seqLen: 3 })).toThrow(
      /advantages: expected length 2 \(one per sequence\) or 6 \(one per token\), received length 4/,
    );
    expect(() => reinforcePolicyLoss(x, new Float32Array(5), x, null, { seqLen: 3 })).toThrow(/rolloutLogprobs: .*6/);
    expect(() => reinforcePolicyLoss(x, x, x, null, { seqLen: 4 })).toThrow(RangeError);
    expect(() => reinforcePolicyLoss(x, x, x, null, { seqLen: 3, aggregation: 'mean' as never })).toThrow(/options.aggregation/);
    expect(() => reinforcePolicyLoss(x, x, x, null, { seqLen: 3, normalizer: -1 })).toThrow(/options.normalizer/);
    expect(() => reinforcePolicyLoss(x, x, x, 'mask' as never, { seqLen: 3 })).toThrow(/mask: expected a Uint8Array or Float32Array/);
    expect(() => reinforcePolicyLoss(x, x, x, null, { seqLen: 3, epsilon: 1 } as never)).toThrow(TypeError);
    expect(() => reinforcePolicyLoss(new Float64Array(6) as never, x, x, null, { seqLen: 3 })).toThrow(/logprobs/);
  });
});
