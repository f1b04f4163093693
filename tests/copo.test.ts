// copoAdvantages and copoPolicyLoss (COPO, hijih/copo-code core_algos.py) against float64 references
// written from their formulas (tests/reference/copo.ts); the loss gradient against central finite
// differences; bad inputs; thread counts; Async and out buffers.
import { describe, expect, it } from 'vitest';

import {
  copoAdvantages, copoAdvantagesAsync, copoPolicyLoss, copoPolicyLossAsync, setNumThreads, type CopoGate,
} from '../lib/index.js';
import { centralDiff, expectClose, rng } from './helpers.js';
import { refCopoAdvantages, refCopoLoss, refEntropyBits } from './reference/copo.js';
import type { RefAggregation } from './reference/seq-ops.js';
import { seqInputs } from './seq-inputs.js';

const GATES: CopoGate[] = ['only-soft', 'soft-with-forced', 'soft-with-zero', 'only-forced', 'only-zero', 'no-global', 'only-global'];
const AGGS: RefAggregation[] = ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum', 'seq-mean-token-sum-norm'];

/** n answers drawn from `classes` labels (any int32), 0/1 or real rewards. */
function batch(n: number, seed: number, classes = 4, binary = true) {
  const r = rng(seed);
  const labels = [7, -3, 2147483647, -2147483648, 0, 11, 5];
  const answers = Int32Array.from({ length: n }, () => labels[Math.floor(r() * classes) % labels.length]);
  const rewards = Float32Array.from({ length: n }, () => (binary ? (r() < 0.5 ? 1 : 0) : (r() - 0.3) * 4));
  return { answers, rewards };
}

let worstAdv = 0, worstLoss = 0;
function compareAdv(got: ReturnType<typeof copoAdvantages>, ref: ReturnType<typeof refCopoAdvantages>, label: string) {
  expect(got.numGroups).toBe(ref.numGroups);
  for (const k of ['entropy', 'globalRewards', 'localAdvantages', 'globalAdvantages', 'gates'] as const) {
    expectClose(got[k], ref[k], 2e-6, 2e-6, `${label} ${k}`);
    for (let i = 0; i < ref[k].length; i++) worstAdv = Math.max(worstAdv, Math.abs(got[k][i] - ref[k][i]));
  }
}

describe('copoAdvantages', () => {
  for (const [Q, G] of [[1, 1], [1, 7], [3, 1], [5, 8], [13, 6], [37, 16], [3, 129]] as const) {
    it(`matches the float64 reference, ${Q} prompts x ${G} samples, every gate and flag`, () => {
      const { answers, rewards } = batch(Q * G, Q * 100 + G, 1 + (G % 5), G !== 8);
      for (const gate of GATES) {
        for (const [scaleByConsistency, scaleByStd] of [[true, true], [false, true], [true, false]]) {
          const opts = { groupSize: G, gate, scaleByConsistency, scaleByStd, softBlendingK: gate === 'only-soft' ? 5 : 20, softBlendingB: 0.7 };
          compareAdv(copoAdvantages(answers, rewards, opts), refCopoAdvantages(answers, rewards, opts), `${Q}x${G} ${gate}`);
        }
      }
    });
  }

  it('groupIds: scattered groups of different sizes equal the reference and the contiguous layout', () => {
    const n = 61, r = rng(3);
    const { answers, rewards } = batch(n, 4, 3, false);
    const ids = Int32Array.from({ length: n }, (_, i) => (i < 9 ? i : Math.floor(r() * 9)));
    for (const gate of GATES) compareAdv(copoAdvantages(answers, rewards, { groupIds: ids, gate }), refCopoAdvantages(answers, rewards, { groupIds: ids, gate }), gate);
    const contiguous = Int32Array.from({ length: 24 }, (_, i) => Math.floor(i / 6));
    const b = batch(24, 9);
    const x = copoAdvantages(b.answers, b.rewards, { groupIds: contiguous }), y = copoAdvantages(b.answers, b.rewards, { groupSize: 6 });
    expect(x.localAdvantages).toEqual(y.localAdvantages);
    expect(x.globalAdvantages).toEqual(y.globalAdvantages);
    expect(x.gates).toEqual(y.gates);
    const big = copoAdvantages(b.answers, b.rewards, { groupIds: BigInt64Array.from(contiguous, (v) => BigInt(v)) });
    expect(big.globalAdvantages).toEqual(y.globalAdvantages);
  });

  it('the paper\'s quantities on a hand-made batch', () => {
    // prompt 0: answers a a b c (H = 1.5 bits), rewards 1 0 1 0; prompt 1 unanimous and right; prompt 2: 2 x 2 (H = 1)
    const answers = Int32Array.from([1, 1, 2, 3, 5, 5, 5, 5, 0, 1, 0, 1]);
    const rewards = Float32Array.from([1, 0, 1, 0, 1, 1, 1, 1, 0, 0, 1, 0]);
    const got = copoAdvantages(answers, rewards, { groupSize: 4 });
    expect(Array.from(got.entropy)).toEqual([1.5, 0, 1]);
    const lambda = (1 - 1 / 4) / 2; // (1 - 1/G) / log2 G
    expect(got.globalRewards[0]).toBeCloseTo(0.5 * (1 - lambda * 1.5), 7);
    expect(got.globalRewards[1]).toBe(1);
    expect(got.globalRewards[2]).toBeCloseTo(0.25 * (1 - lambda), 7);
    // the unanimous prompt: local advantages 0 (GRPO's vanishing signal), a positive global one
    expect(Array.from(got.localAdvantages.subarray(4, 8))).toEqual([0, 0, 0, 0]);
    expect(got.globalAdvantages[4]).toBeGreaterThan(1);
    expect(got.gates[4]).toBeCloseTo(1 / (1 + Math.exp(20 * 0.5)), 9);
    expect(refEntropyBits([1, 1, 2, 3])).toBe(1.5);
    const off = copoAdvantages(answers, rewards, { groupSize: 4, scaleByConsistency: false });
    expect(Array.from(off.globalRewards)).toEqual([0.5, 1, 0.25]);
  });

  it('one prompt: global advantages 0 (the code divides by torch.std of one value: NaN)', () => {
    const { answers, rewards } = batch(9, 5);
    const got = copoAdvantages(answers, rewards, { groupSize: 9 });
    expect(Array.from(got.globalAdvantages)).toEqual(new Array(9).fill(0));
  });

  it('large and tiny rewards', () => {
    for (const s of [1e-30, 1e30]) {
      const { answers, rewards } = batch(40, 8, 3, false);
      const big = rewards.map((x) => x * s);
      const got = copoAdvantages(answers, big, { groupSize: 5, eps: 0 });
      const ref = refCopoAdvantages(answers, big, { groupSize: 5, eps: 0 });
      expectClose(got.globalRewards, ref.globalRewards, 1e-6, 0, 'R');
      expectClose(got.localAdvantages, ref.localAdvantages, 1e-5, 1e-6, 'local');
      expectClose(got.globalAdvantages, ref.globalAdvantages, 1e-5, 1e-6, 'global');
    }
  });

  it('is the same for 1, 2 and 3 threads, writes out, and the Async form agrees', async () => {
    const { answers, rewards } = batch(4096, 12, 5, false);
    const outs = { entropy: new Float32Array(512), globalRewards: new Float32Array(512), localAdvantages: new Float32Array(4096),
      globalAdvantages: new Float32Array(4096), gates: new Float32Array(4096) };
    const runs = [];
    for (const t of [1, 2, 3]) {
      setNumThreads(t);
      runs.push(copoAdvantages(answers, rewards, { groupSize: 8, gate: 'soft-with-forced' }));
    }
    const o = copoAdvantages(answers, rewards, { groupSize: 8, gate: 'soft-with-forced', out: outs });
    const a = await copoAdvantagesAsync(answers, rewards, { groupSize: 8, gate: 'soft-with-forced' });
    expect(o.gates).toBe(outs.gates);
    for (const r of [...runs.slice(1), o, a]) {
      for (const k of ['entropy', 'globalRewards', 'localAdvantages', 'globalAdvantages', 'gates'] as const) expect(r[k]).toEqual(runs[0][k]);
    }
  });

  it('rejects bad input with a message naming the argument', () => {
    const a = new Int32Array(6), r = new Float32Array(6);
    expect(() => copoAdvantages(a, new Float32Array(5), { groupSize: 3 })).toThrow(/rewards: expected length 6/);
    expect(() => copoAdvantages(new Float32Array(6) as never, r, { groupSize: 3 })).toThrow(/answerIds/);
    expect(() => copoAdvantages(a, r, { groupSize: 4 })).toThrow(/options.groupSize: expected a divisor/);
    expect(() => copoAdvantages(a, r, {} as never)).toThrow(/options.groupSize: expected a positive integer/);
    expect(() => copoAdvantages(a, r, { groupSize: 3, groupIds: new Int32Array(6) })).toThrow(/either groupSize or groupIds/);
    expect(() => copoAdvantages(a, r, { groupIds: new Int32Array(5) })).toThrow(/options.groupIds: expected length 6/);
    expect(() => copoAdvantages(a, r, { groupIds: Int32Array.from([0, 0, 2, 2, 0, 0]) })).toThrow(/options.groupIds: .*group 1 has no sample/);
    expect(() => copoAdvantages(a, r, { groupIds: Int32Array.from([0, 0, 6, 1, 1, 1]) })).toThrow(/options.groupIds\[2\]/);
    expect(() => copoAdvantages(a, r, { groupSize: 3, gate: 'soft' as never })).toThrow(/options.gate/);
    expect(() => copoAdvantages(a, r, { groupSize: 3, eps: -1 })).toThrow(RangeError);
    expect(() => copoAdvantages(a, r, { groupSize: 3, softBlendingK: NaN })).toThrow(/options.softBlendingK/);
    expect(() => copoAdvantages(a, r, { groupSize: 3, scaleByStd: 1 as never })).toThrow(/options.scaleByStd/);
    expect(() => copoAdvantages(a, r, { groupSize: 3, k: 20 } as never)).toThrow(TypeError);
    expect(() => copoAdvantages(a, r, { groupSize: 3, out: { gates: new Float32Array(5) } })).toThrow(/options.out.gates: expected length 6/);
  });
});

describe('copoPolicyLoss', () => {
  function inputs(B: number, T: number, seed: number) {
    const s = seqInputs(B, T, seed, 0.5);
    const r = rng(seed + 7);
    const ag = Float32Array.from({ length: B }, () => (r() - 0.5) * 3);
    const gSeq = Float32Array.from({ length: B }, () => r());
    const gTok = Float32Array.from({ length: B * T }, () => r());
    return { ...s, ag, agTok: Float32Array.from({ length: B * T }, () => (r() - 0.5) * 3), gSeq, gTok };
  }

  for (const [B, T] of [[1, 1], [3, 7], [5, 129], [17, 33], [2, 1031]] as const) {
    it(`matches the float64 reference, ${B}x${T}, every aggregation, shape and mask kind`, () => {
      const x = inputs(B, T, B * 10 + T);
      for (const [al, ag, g] of [[x.advSeq, x.ag, x.gSeq], [x.advTok, x.agTok, x.gTok], [x.advSeq, x.agTok, x.gSeq]]) {
        for (const mask of [null, x.m8, x.mf]) {
          for (const aggregation of AGGS) {
            for (const o of [{}, { epsilonLow: 0.1, epsilonHigh: 0.28, dualClip: 1.5, normalizer: 37 }]) {
              const opts = { seqLen: T, aggregation, ...o };
              const got = copoPolicyLoss(x.lp, x.old, al, ag, g, mask, opts);
              const ref = refCopoLoss(x.lp, x.old, al, ag, g, mask, T, opts);
              expect(got.loss).toBeCloseTo(ref.loss, 10);
              worstLoss = Math.max(worstLoss, Math.abs(got.loss - ref.loss));
              expectClose(got.gradLogprobs, ref.grad, 1e-6, 1e-9, 'grad');
              for (let i = 0; i < ref.grad.length; i++) worstLoss = Math.max(worstLoss, Math.abs(got.gradLogprobs[i] - ref.grad[i]));
              for (const k of ['clipFraction', 'clipFractionLower', 'globalClipFraction', 'globalClipFractionLower', 'ppoKl'] as const) {
                expect(got.metrics[k]).toBeCloseTo(ref[k], 10);
              }
              expect(got.metrics.tokenCount).toBe(ref.tokenCount);
            }
          }
        }
      }
    });
  }

  it('gate 1 is verl\'s dual-clip PPO of the local advantages, gate 0 of the global ones', () => {
    const x = inputs(4, 9, 2);
    const ones = new Float32Array(4).fill(1), zeros = new Float32Array(4);
    const a = copoPolicyLoss(x.lp, x.old, x.advSeq, x.ag, ones, x.m8, { seqLen: 9 });
    const b = copoPolicyLoss(x.lp, x.old, x.ag, x.advSeq, zeros, x.m8, { seqLen: 9 });
    expect(a.loss).toBeCloseTo(b.loss, 12);
    expect(a.metrics.clipFraction).toBe(b.metrics.globalClipFraction);
    expect(a.metrics.clipFractionLower).toBe(b.metrics.globalClipFractionLower);
  });

  it('gradient agrees with central finite differences of the reference', () => {
    for (const [B, T] of [[2, 5], [1, 1], [4, 9]] as const) {
      const x = inputs(B, T, 99 + T);
      for (const [al, ag, g] of [[x.advSeq, x.ag, x.gSeq], [x.advTok, x.agTok, x.gTok]]) {
        for (const aggregation of AGGS) {
          const got = copoPolicyLoss(x.lp, x.old, al, ag, g, x.mf, { seqLen: T, aggregation, dualClip: 1.2 });
          const f = (v: Float64Array) => refCopoLoss(v, x.old, al, ag, g, x.mf, T, { aggregation, dualClip: 1.2 }).loss;
          const v = Float64Array.from(x.lp);
          for (let i = 0; i < v.length; i++) expect(got.gradLogprobs[i]).toBeCloseTo(centralDiff(f, v, i), 6);
        }
      }
    }
  });

  it('large and tiny magnitudes, an all-masked row', () => {
    const B = 3, T = 11, x = inputs(B, T, 5);
    for (const s of [1e-30, 1e30]) {
      const al = x.advSeq.map((v) => v * s), ag = x.ag.map((v) => v * s);
      const mask = new Uint8Array(B * T).fill(1);
      mask.fill(0, T, 2 * T);
      const got = copoPolicyLoss(x.lp, x.old, al, ag, x.gSeq, mask, { seqLen: T, aggregation: 'seq-mean-token-mean' });
      const ref = refCopoLoss(x.lp, x.old, al, ag, x.gSeq, mask, T, { aggregation: 'seq-mean-token-mean' });
      expect(got.loss / ref.loss).toBeCloseTo(1, 6);
      for (let t = T; t < 2 * T; t++) expect(got.gradLogprobs[t]).toBe(0);
    }
  });

  it('is the same for 1, 2 and 3 threads, writes out, and the Async form agrees', async () => {
    const x = inputs(64, 257, 11);
    const out = new Float32Array(x.lp.length).fill(NaN);
    setNumThreads(1);
    const a = copoPolicyLoss(x.lp, x.old, x.advTok, x.agTok, x.gTok, x.m8, { seqLen: 257, out: { gradLogprobs: out } });
    for (const t of [2, 3]) {
      setNumThreads(t);
      const b = copoPolicyLoss(x.lp, x.old, x.advTok, x.agTok, x.gTok, x.m8, { seqLen: 257 });
      expect(b.loss).toBe(a.loss);
      expect(b.metrics).toEqual(a.metrics);
      expectClose(b.gradLogprobs, out, 0, 0, 'threads');
    }
    const c = await copoPolicyLossAsync(x.lp, x.old, x.advTok, x.agTok, x.gTok, x.m8, { seqLen: 257 });
    expect(a.gradLogprobs).toBe(out);
    expect(c.loss).toBe(a.loss);
    expectClose(c.gradLogprobs, out, 0, 0, 'async');
  });

  it('rejects bad input with a message naming the argument', () => {
    const x = new Float32Array(6), b = new Float32Array(2);
    expect(() => copoPolicyLoss(x, x, new Float32Array(4), b, b, null, { seqLen: 3 })).toThrow(
      /localAdvantages: expected length 2 \(one per sequence\) or 6 \(one per token\), received length 4/,
    );
    expect(() => copoPolicyLoss(x, x, b, new Float32Array(3), b, null, { seqLen: 3 })).toThrow(/globalAdvantages: expected length 2/);
    expect(() => copoPolicyLoss(x, x, b, b, new Float32Array(1), null, { seqLen: 3 })).toThrow(/gates: expected length 2/);
    expect(() => copoPolicyLoss(x, new Float32Array(5), b, b, b, null, { seqLen: 3 })).toThrow(/oldLogprobs: .*6/);
    expect(() => copoPolicyLoss(x, x, b, b, b, null, { seqLen: 4 })).toThrow(RangeError);
    expect(() => copoPolicyLoss(x, x, b, b, b, null, { seqLen: 3, dualClip: 1 })).toThrow(/options.dualClip: expected a finite number > 1/);
    expect(() => copoPolicyLoss(x, x, b, b, b, null, { seqLen: 3, epsilonLow: 2 })).toThrow(/options.epsilonLow/);
    expect(() => copoPolicyLoss(x, x, b, b, b, null, { seqLen: 3, aggregation: 'mean' as never })).toThrow(/options.aggregation/);
    expect(() => copoPolicyLoss(x, x, b, b, b, 'mask' as never, { seqLen: 3 })).toThrow(/mask: expected a Uint8Array or Float32Array/);
    expect(() => copoPolicyLoss(x, x, b, b, b, null, { seqLen: 3, clip_ratio_c: 3 } as never)).toThrow(TypeError);
    expect(() => copoPolicyLoss(new Float64Array(6) as never, x, b, b, b, null, { seqLen: 3 })).toThrow(/logprobs/);
  });

  it('reports the largest difference vs the references', () => {
    console.log(`copo: largest |kernel - float64 reference|: advantages ${worstAdv.toExponential(2)}, loss/grad ${worstLoss.toExponential(2)}`);
    expect(worstAdv).toBeLessThan(1e-4);
  });
});

