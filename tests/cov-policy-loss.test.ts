// clipCovPolicyLoss / klCovPolicyLoss (verl clip_cov / kl_cov) against a float64 reference written from
// their formulas (the same selection, recomputed), and their gradients against central finite
// differences with the selection held still.
import { describe, expect, it } from 'vitest';

import { clipCovPolicyLoss, clipCovPolicyLossAsync, klCovPolicyLoss, klCovPolicyLossAsync, setNumThreads } from '../lib/index.js';
import { centralDiff, expectClose } from './helpers.js';
import { refCovPolicyLoss, refSelectionKey, type RefCovOptions } from './reference/selection.js';
import type { RefAggregation } from './reference/seq-ops.js';
import { seqInputs } from './seq-inputs.js';

interface CovOut { loss: number; gradLogprobs: Float32Array; selected: Uint8Array }
type CovFn = (lp: Float32Array, old: Float32Array, adv: Float32Array, mask: Uint8Array | Float32Array | null, o: object) => CovOut;
type CovFnAsync = (lp: Float32Array, old: Float32Array, adv: Float32Array, mask: Uint8Array | Float32Array | null, o: object) => Promise<CovOut>;
const AGGS: RefAggregation[] = ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum', 'seq-mean-token-sum-norm'];
const SIZES = [[1, 1], [3, 7], [5, 129], [17, 33], [2, 1031]] as const;

function call(o: RefCovOptions, lp: Float32Array, old: Float32Array, adv: Float32Array, mask: Uint8Array | Float32Array | null, T: number) {
  const common = { seqLen: T, ...(o.aggregation ? { aggregation: o.aggregation } : {}), ...(o.normalizer ? { normalizer: o.normalizer } : {}) };
  if (o.mode === 'clip-cov') {
    const r = clipCovPolicyLoss(lp, old, adv, mask, {
      ...common, epsilonLow: o.epsilonLow, epsilonHigh: o.epsilonHigh, clipCovRatio: o.ratio, clipCovLb: o.lb, clipCovUb: o.ub, seed: o.seed,
    });
    return { ...r, fraction: r.metrics.clipFraction };
  }
  const r = klCovPolicyLoss(lp, old, adv, mask, { ...common, klCovRatio: o.ratio, ppoKlCoef: o.klCoef });
  return { ...r, fraction: r.metrics.selectedFraction };
}

const CLIP_OPTS: RefCovOptions[] = [
  { mode: 'clip-cov' },
  { mode: 'clip-cov', ratio: 0.05, lb: 0.5, ub: 3, seed: 7, epsilonLow: 0.1, epsilonHigh: 0.28 },
  { mode: 'clip-cov', ratio: 0.3, lb: -1, ub: 10, seed: 2 ** 52 + 3 },
  { mode: 'clip-cov', ratio: 1, lb: -100, ub: 100, seed: 1 },
];
const KL_OPTS: RefCovOptions[] = [
  { mode: 'kl-cov' },
  { mode: 'kl-cov', ratio: 0.05, klCoef: 0.5 },
  { mode: 'kl-cov', ratio: 0.3, klCoef: 2 },
  { mode: 'kl-cov', ratio: 1, klCoef: -1 },
];

for (const [label, OPTS] of [['clipCovPolicyLoss', CLIP_OPTS], ['klCovPolicyLoss', KL_OPTS]] as const) {
  describe(label, () => {
    for (const [B, T] of SIZES) {
      it(`matches the float64 reference, ${B}x${T}, advantage shapes, every mask kind, aggregation and option`, () => {
        const { lp, old, advSeq, advTok, m8, mf } = seqInputs(B, T, B * 10 + T, 0.3);
        let selectedSomewhere = 0;
        for (const adv of [advSeq, advTok]) {
          for (const mask of [null, m8, mf]) {
            for (const base of OPTS) {
              for (const aggregation of AGGS) {
                const o = { ...base, aggregation, ...(aggregation === 'seq-mean-token-sum' ? { normalizer: 37 } : {}) };
                const got = call(o, lp, old, adv, mask, T);
                const ref = refCovPolicyLoss(lp, old, adv, mask, T, o);
                expect(Array.from(got.selected)).toEqual(Array.from(ref.selected));
                expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-10 * Math.max(1, Math.abs(ref.loss)));
                expect(got.fraction).toBeCloseTo(ref.fraction, 12);
                expect(got.metrics.ppoKl).toBeCloseTo(ref.ppoKl, 10);
                expect(got.metrics.selectedCount).toBe(ref.selectedCount);
                expect(got.metrics.candidateCount).toBe(ref.candidateCount);
                expect(got.metrics.tokenCount).toBe(ref.tokenCount);
                selectedSomewhere += ref.selectedCount;
              }
            }
          }
        }
        if (B * T > 1) expect(selectedSomewhere).toBeGreaterThan(0);
      });
    }

    it('gradient agrees with central finite differences of the reference, the selection held still', () => {
      for (const [B, T] of [[2, 5], [1, 1], [4, 9]] as const) {
        const { lp, old, advSeq, advTok, mf } = seqInputs(B, T, 99 + T, 0.3);
        for (const adv of [advSeq, advTok]) {
          for (const base of OPTS) {
            for (const aggregation of AGGS) {
              const o = { ...base, aggregation };
              const got = call(o, lp, old, adv, mf, T);
              const f = (x: Float64Array) => refCovPolicyLoss(x, old, adv, mf, T, o, got.selected).loss;
              const x = Float64Array.from(lp);
              for (let i = 0; i < x.length; i++) {
                const d = lp[i] - old[i], r = Math.exp(d), eLo = o.epsilonLow ?? 0.2, eHi = o.epsilonHigh ?? eLo;
                if (Math.abs(r - (1 - eLo)) < 1e-4 || Math.abs(r - (1 + eHi)) < 1e-4 || Math.abs(d) < 1e-5) continue; // a kink
                const fd = centralDiff(f, x, i);
                expect(Math.abs(got.gradLogprobs[i] - fd)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(fd)));
              }
            }
          }
        }
      }
    });
  });
}

describe('clipCovPolicyLoss and klCovPolicyLoss', () => {
  it("clip_cov's choice is the documented counter-based one: candidates with the smallest SplitMix64 keys; the seed changes it", () => {
    const { lp, old, advTok, m8 } = seqInputs(8, 64, 3, 0.05);
    const o = { seqLen: 64, clipCovRatio: 0.02, clipCovLb: -100, clipCovUb: 100 };
    const a = clipCovPolicyLoss(lp, old, advTok, m8, { ...o, seed: 1 });
    const b = clipCovPolicyLoss(lp, old, advTok, m8, { ...o, seed: 2 });
    const a2 = clipCovPolicyLoss(lp, old, advTok, m8, { ...o, seed: 1 });
    expect(a.metrics.selectedCount).toBe(Math.floor(0.02 * a.metrics.tokenCount));
    expect(Array.from(a2.selected)).toEqual(Array.from(a.selected));
    expect(Array.from(b.selected)).not.toEqual(Array.from(a.selected));
    expect(refSelectionKey(0, 0)).toBe(0xe220a8397b1dcdafn); // SplitMix64's first output from state 0
  });

  it("kl_cov selects the tokens of largest covariance; selected tokens' loss gains coef |d|", () => {
    const lp = Float32Array.from([-1, -2, -3, -4, -5, -6]), old = lp.map((x) => x + 0.1);
    const adv = Float32Array.from([3, 0, 0, 0, 0, -3]);
    const r = klCovPolicyLoss(lp, old, adv, null, { seqLen: 3, klCovRatio: 0.34, ppoKlCoef: 2 });
    // covariances: (A - 0)(lp + 3.5): 7.5 at 0, 7.5 at 5, 0 elsewhere; k = floor(6 * 0.34) = 2
    expect(Array.from(r.selected)).toEqual([1, 0, 0, 0, 0, 1]);
    const ref = refCovPolicyLoss(lp, old, adv, null, 3, { mode: 'kl-cov', ratio: 0.34, klCoef: 2 });
    expect(r.loss).toBeCloseTo(ref.loss, 12);
  });

  it('an all-masked batch selects nothing; tiny and large magnitudes', () => {
    const { lp, old, advSeq } = seqInputs(3, 11, 5, 0.2);
    const zero = new Uint8Array(33);
    for (const o of [CLIP_OPTS[1], KL_OPTS[1]]) {
      const got = call(o, lp, old, advSeq, zero, 11);
      expect(got.metrics.selectedCount).toBe(0);
      expect(got.loss).toBe(0);
      expect(got.gradLogprobs.every((g) => g === 0)).toBe(true);
      for (const s of [1e-6, 1e3]) {
        const adv = advSeq.map((x) => x * s);
        const g2 = call(o, lp, old, adv, null, 11), r2 = refCovPolicyLoss(lp, old, adv, null, 11, o);
        expect(Array.from(g2.selected)).toEqual(Array.from(r2.selected));
        expect(Math.abs(g2.loss - r2.loss)).toBeLessThanOrEqual(1e-10 * Math.max(1e-6, Math.abs(r2.loss)));
      }
    }
  });

  it('is the same for 1 and 2 threads, writes out, and the Async forms agree', async () => {
    const { lp, old, advTok, m8 } = seqInputs(64, 257, 11, 0.1);
    for (const [sync, async] of [[clipCovPolicyLoss, clipCovPolicyLossAsync], [klCovPolicyLoss, klCovPolicyLossAsync]] as unknown as [CovFn, CovFnAsync][]) {
      const out = { gradLogprobs: new Float32Array(lp.length).fill(NaN), selected: new Uint8Array(lp.length).fill(9) };
      setNumThreads(1);
      const a = sync(lp, old, advTok, m8, { seqLen: 257, out });
      setNumThreads(2);
      const b = sync(lp, old, advTok, m8, { seqLen: 257 });
      const c = await async(lp, old, advTok, m8, { seqLen: 257 });
      expect(a.gradLogprobs).toBe(out.gradLogprobs);
      expect(a.selected).toBe(out.selected);
      expect(b.loss).toBe(a.loss);
      expectClose(b.gradLogprobs, out.gradLogprobs, 0, 0, 'threads');
      expect(c.loss).toBe(a.loss);
      expect(Array.from(c.selected)).toEqual(Array.from(a.selected));
    }
  });

  it('rejects bad input with a message naming the argument', () => {
    const x = new Float32Array(6);
    for (const fn of [clipCovPolicyLoss, klCovPolicyLoss] as unknown as CovFn[]) {
      expect(() => fn(x, x, new Float32Array(4), null, { seqLen: 3 })).toThrow(
        /advantages: expected length 2 \(one per sequence\) or 6 \(one per token\), received length 4/,
      );
      expect(() => fn(x, new Float32Array(5), x, null, { seqLen: 3 })).toThrow(/oldLogprobs: expected length 6, received length 5/);
      expect(() => fn(x, x, x, null, { seqLen: 4 })).toThrow(/options.seqLen: expected a divisor/);
      expect(() => fn(x, x, x, 'm' as never, { seqLen: 3 })).toThrow(/mask: expected a Uint8Array, a Float32Array of weights or null/);
      expect(() => fn(x, x, x, Float32Array.from([1, 1, -1, 1, 1, 1]), { seqLen: 3 })).toThrow(/mask\[2\]: expected a finite weight >= 0/);
      expect(() => fn(x, x, x, null, { seqLen: 3, aggregation: 'x' as never })).toThrow(/options.aggregation/);
      expect(() => fn(x, x, x, null, { seqLen: 3, nope: 1 } as never)).toThrow(/options.nope: not an option/);
      expect(() => fn(x, x, x, null, { seqLen: 3, out: { selected: new Float32Array(6) as never } })).toThrow(/options.out.selected/);
    }
    expect(() => clipCovPolicyLoss(x, x, x, null, { seqLen: 3, clipCovRatio: 0 })).toThrow(/options.clipCovRatio: expected a finite number in \(0, 1\], received 0/);
    expect(() => clipCovPolicyLoss(x, x, x, null, { seqLen: 3, seed: 1.5 })).toThrow(/options.seed/);
    expect(() => clipCovPolicyLoss(x, x, x, null, { seqLen: 3, seed: -1 })).toThrow(/options.seed/);
    expect(() => klCovPolicyLoss(x, x, x, null, { seqLen: 3, klCovRatio: 2 })).toThrow(/options.klCovRatio/);
    expect(() => klCovPolicyLoss(x, x, x, null, { seqLen: 3, ppoKlCoef: NaN })).toThrow(/options.ppoKlCoef/);
  });
});
