// preferenceStrengthLoss ("Secrets of RLHF II" preference strength) against a float64 reference written
// from its formula, its gradients against central finite differences, bad input, threads, Async.
import { describe, expect, it } from 'vitest';

import { preferenceStrengthLoss, preferenceStrengthLossAsync, setNumThreads } from '../lib/index.js';
import { centralDiff, randn } from './helpers.js';
import { refPreferenceStrength } from './reference/pairwise.js';

function inputs(P: number, M: number, seed: number, scale = 1) {
  const rc = randn(P, 2 * scale, seed), rr = randn(P, 2 * scale, seed + 1);
  const base = randn(P, 1, seed + 2);
  const noise = randn(M * P, 1, seed + 3);
  const ec = new Float32Array(M * P).map((_, k) => scale * (base[k % P] + 0.5 * noise[k]));
  const er = randn(M * P, 0.3 * scale, seed + 4);
  return { rc, rr, ec, er };
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-8): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), floor));
  return worst;
}

const VARIANTS = [
  {},
  { labelSmoothing: 0.1 },
  { adaptiveMargin: false },
  { flipNegative: false },
  { adaptiveMargin: false, flipNegative: false, labelSmoothing: 0.3 },
  { stdCorrection: 0 },
] as const;

describe('preferenceStrengthLoss', () => {
  for (const [P, M] of [[1, 1], [1, 10], [7, 3], [33, 10], [1001, 5]] as const) {
    it(`matches the float64 reference, P = ${P}, M = ${M}, every option`, () => {
      const x = inputs(P, M, P * 7 + M);
      for (const v of VARIANTS) {
        const got = preferenceStrengthLoss(x.rc, x.rr, { ensembleChosen: x.ec, ensembleRejected: x.er, ...v });
        const ref = refPreferenceStrength(x.rc, x.rr, x.ec, x.er, v);
        expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-12 * Math.max(1, ref.loss));
        expect(relErr(got.losses, ref.losses)).toBeLessThan(1e-6);
        expect(relErr(got.gradChosen, ref.gradChosen)).toBeLessThan(1e-6);
        expect(relErr(got.gradRejected, ref.gradRejected)).toBeLessThan(1e-6);
        expect(relErr(got.strengthMean, ref.mean, 1e-6)).toBeLessThan(1e-6);
        expect(relErr(got.strengthStd, ref.std, 1e-6)).toBeLessThan(1e-6);
        expect(got.metrics.flipFraction).toBe(ref.flipFraction);
      }
    });
  }

  it('flips exactly the pairs with a negative mean margin, and smoothing 0 is plain BT with margin mu', () => {
    const rc = Float32Array.from([1, 1, 1]), rr = Float32Array.from([0, 0, 0]);
    // M = 2 models, model-major: margins (2, 0.5) -> mu 1.25; (-1, -3) -> mu -2; (0, 0) -> mu 0
    const ec = Float32Array.from([2, -1, 0, 0.5, -3, 0]), er = new Float32Array(6);
    const r = preferenceStrengthLoss(rc, rr, { ensembleChosen: ec, ensembleRejected: er });
    expect(Array.from(r.strengthMean)).toEqual([1.25, -2, 0]);
    expect(r.strengthStd[0]).toBeCloseTo(Math.sqrt(((2 - 1.25) ** 2 + (0.5 - 1.25) ** 2) / 1), 6);
    expect(r.metrics.flipFraction).toBeCloseTo(1 / 3, 15);
    const sp = (x: number) => Math.log1p(Math.exp(x));
    expect(r.losses[0]).toBeCloseTo(sp(-(1 - 1.25)), 6); // -log s(1 - 1.25)
    expect(r.losses[1]).toBeCloseTo(sp(-(-1 - 2)), 6); // flipped: z = -(1) - (-1)(-2) = -3
    expect(r.losses[2]).toBeCloseTo(Math.log1p(Math.exp(-1)), 6);
  });

  it('gradients agree with central finite differences of the reference', () => {
    for (const [P, M] of [[1, 1], [5, 4], [9, 10]] as const) {
      const x = inputs(P, M, 40 + P);
      for (const v of VARIANTS) {
        const got = preferenceStrengthLoss(x.rc, x.rr, { ensembleChosen: x.ec, ensembleRejected: x.er, ...v });
        const c = Float64Array.from(x.rc), r = Float64Array.from(x.rr);
        for (let i = 0; i < P; i++) {
          expect(got.gradChosen[i]).toBeCloseTo(centralDiff((a) => refPreferenceStrength(a, x.rr, x.ec, x.er, v).loss, c, i), 7);
          expect(got.gradRejected[i]).toBeCloseTo(centralDiff((a) => refPreferenceStrength(x.rc, a, x.ec, x.er, v).loss, r, i), 7);
        }
      }
    }
  });

  it('large and tiny scores stay finite and match', () => {
    for (const scale of [1e-6, 1e3]) {
      const x = inputs(17, 6, 3, scale);
      for (const v of VARIANTS) {
        const got = preferenceStrengthLoss(x.rc, x.rr, { ensembleChosen: x.ec, ensembleRejected: x.er, ...v });
        const ref = refPreferenceStrength(x.rc, x.rr, x.ec, x.er, v);
        expect(Number.isFinite(got.loss)).toBe(true);
        expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-12 * Math.max(1, ref.loss));
        expect(relErr(got.gradChosen, ref.gradChosen, 1e-20)).toBeLessThan(1e-6);
      }
    }
  });

  it('is bit-identical for 1, 2 and 3 threads, writes out, and the Async form agrees', async () => {
    const x = inputs(4097, 10, 9);
    const out = { losses: new Float32Array(4097), strengthStd: new Float32Array(4097) };
    const runs = [];
    for (const t of [1, 2, 3]) {
      setNumThreads(t);
      runs.push(preferenceStrengthLoss(x.rc, x.rr, { ensembleChosen: x.ec, ensembleRejected: x.er, labelSmoothing: 0.05, out: t === 1 ? out : undefined }));
    }
    const c = await preferenceStrengthLossAsync(x.rc, x.rr, { ensembleChosen: x.ec, ensembleRejected: x.er, labelSmoothing: 0.05 });
    setNumThreads(2);
    expect(runs[0].losses).toBe(out.losses);
    expect(runs[0].strengthStd).toBe(out.strengthStd);
    for (const r of [...runs.slice(1), c]) {
      expect(r.loss).toBe(runs[0].loss);
      for (const k of ['losses', 'gradChosen', 'gradRejected', 'strengthMean', 'strengthStd'] as const) {
        expect(Buffer.from(r[k].buffer).equals(Buffer.from(runs[0][k].buffer))).toBe(true);
      }
    }
  });

  it('rejects bad input with a message naming the argument', async () => {
    const p = new Float32Array(3), e = new Float32Array(6);
    expect(() => preferenceStrengthLoss(p, new Float32Array(2), { ensembleChosen: e, ensembleRejected: e })).toThrow(/rejectedRewards: expected length 3, received length 2/);
    expect(() => preferenceStrengthLoss(p, p, { ensembleChosen: new Float32Array(7), ensembleRejected: e })).toThrow(
      /options.ensembleChosen: expected a positive multiple of the pair count \(3\), received length 7/,
    );
    expect(() => preferenceStrengthLoss(p, p, { ensembleChosen: e, ensembleRejected: new Float32Array(3) })).toThrow(/options.ensembleRejected/);
    expect(() => preferenceStrengthLoss(new Float32Array(0), p, { ensembleChosen: e, ensembleRejected: e })).toThrow(/chosenRewards/);
    expect(() => preferenceStrengthLoss(p, p, { ensembleChosen: e, ensembleRejected: e, labelSmoothing: 0.5 })).toThrow(/options.labelSmoothing: expected a finite number in \[0, 0.5\), received 0.5/);
    expect(() => preferenceStrengthLoss(p, p, { ensembleChosen: e, ensembleRejected: e, stdCorrection: 0.5 })).toThrow(/options.stdCorrection: expected 0 or 1, received 0.5/);
    expect(() => preferenceStrengthLoss(p, p, { ensembleChosen: e, ensembleRejected: e, adaptiveMargin: 1 as never })).toThrow(/options.adaptiveMargin/);
    expect(() => preferenceStrengthLoss(p, p, { ensembleChosen: e } as never)).toThrow(/options.ensembleRejected/);
    expect(() => preferenceStrengthLoss(p, p, { ensembleChosen: e, ensembleRejected: e, margin: 1 } as never)).toThrow(/margin/);
    await expect(preferenceStrengthLossAsync(p, p, { ensembleChosen: e, ensembleRejected: e, labelSmoothing: -1 })).rejects.toThrow(/options.labelSmoothing/);
  });
});
