// DNO's soft-label Bradley-Terry loss is preferenceLoss 'bt' with preferenceProb on the inputs
// eta (l - l_t): the loss and, by the chain rule, its gradients wrt the raw log-probs, against a float64
// reference of DNO's formula (docs/papers/dno.md). No separate op is exported for it.
import { describe, expect, it } from 'vitest';

import { preferenceLoss, preferenceLossAsync } from '../lib/index.js';
import { centralDiff, randn, rng } from './helpers.js';
import { refDnoSoftBt } from './reference/pairwise.js';

function inputs(P: number, seed: number, scale = 1) {
  const l1 = randn(P, 30, seed).map((x) => x - 200), l2 = randn(P, 30, seed + 1).map((x) => x - 200);
  const d1 = randn(P, scale, seed + 2), d2 = randn(P, scale, seed + 3);
  const lt1 = l1.map((x, i) => x - d1[i]), lt2 = l2.map((x, i) => x - d2[i]);
  const r = rng(seed + 4);
  const p = new Float32Array(P).map((_, i) => (i % 7 === 0 ? 1 : i % 7 === 1 ? 0 : r()));
  return { l1, lt1, l2, lt2, p };
}

/** DNO through preferenceLoss: chosen = eta (l1 - lt1), rejected = eta (l2 - lt2), both f32. */
function viaBt(x: ReturnType<typeof inputs>, eta: number) {
  const chosen = Float32Array.from(x.l1, (v, i) => eta * (v - x.lt1[i]));
  const rejected = Float32Array.from(x.l2, (v, i) => eta * (v - x.lt2[i]));
  return { chosen, rejected, r: preferenceLoss(chosen, rejected, { lossType: 'bt', preferenceProb: x.p }) };
}

describe('DNO soft-label Bradley-Terry = preferenceLoss bt + preferenceProb', () => {
  for (const P of [1, 7, 33, 1001]) {
    for (const eta of [0.1, 1, 5]) {
      it(`loss and gradients match DNO's formula in float64, P = ${P}, eta = ${eta}`, () => {
        const x = inputs(P, P + Math.round(eta * 10));
        const { r } = viaBt(x, eta);
        const ref = refDnoSoftBt(x.l1, x.lt1, x.l2, x.lt2, x.p, eta);
        // The only rounding: eta (l - l_t) stored as f32 (relative 6e-8 of each term).
        expect(Math.abs(r.loss - ref.loss)).toBeLessThanOrEqual(1e-6 * Math.max(1, ref.loss));
        for (let i = 0; i < P; i++) {
          expect(Math.abs(r.losses[i] - ref.losses[i])).toBeLessThanOrEqual(2e-6 * Math.max(1, ref.losses[i]));
          // dL/dl1 = eta dL/dchosen, dL/dl2 = eta dL/drejected (chain rule through the f32 inputs)
          const tol = 2e-6 * Math.max(eta / P, Math.abs(ref.gradL1[i]));
          expect(Math.abs(eta * r.gradChosen[i] - ref.gradL1[i])).toBeLessThanOrEqual(tol);
          expect(Math.abs(eta * r.gradRejected[i] - ref.gradL2[i])).toBeLessThanOrEqual(tol);
        }
      });
    }
  }

  it("the reference's gradient is the finite difference of its loss (dL/dz = s(z) - p per pair, times eta)", () => {
    const x = inputs(5, 3, 0.5);
    const eta = 2;
    const ref = refDnoSoftBt(x.l1, x.lt1, x.l2, x.lt2, x.p, eta);
    const l1 = Float64Array.from(x.l1), l2 = Float64Array.from(x.l2);
    for (let i = 0; i < 5; i++) {
      expect(centralDiff((v) => refDnoSoftBt(v, x.lt1, x.l2, x.lt2, x.p, eta).loss, l1, i)).toBeCloseTo(ref.gradL1[i], 7);
      expect(centralDiff((v) => refDnoSoftBt(x.l1, x.lt1, v, x.lt2, x.p, eta).loss, l2, i)).toBeCloseTo(ref.gradL2[i], 7);
    }
  });

  it('hard labels p = 1 reduce to DPO sigmoid with beta = eta; p = 1/2 gives log 2 at z = 0', () => {
    const x = inputs(9, 21);
    x.p.fill(1);
    const eta = 0.7;
    const { r } = viaBt(x, eta);
    const dpo = preferenceLoss(x.l1, x.l2, { lossType: 'sigmoid', beta: eta, refChosenLogps: x.lt1, refRejectedLogps: x.lt2 });
    expect(Math.abs(r.loss - dpo.loss)).toBeLessThanOrEqual(1e-5 * Math.max(1, dpo.loss));
    const zero = preferenceLoss(new Float32Array(3), new Float32Array(3), { lossType: 'bt', preferenceProb: new Float32Array(3).fill(0.5) });
    expect(zero.loss).toBeCloseTo(Math.LN2, 12);
    for (const g of zero.gradChosen) expect(g).toBe(0);
  });

  it('extreme margins stay finite and the Async form agrees', async () => {
    const x = inputs(6, 8, 400);
    const { chosen, rejected, r } = viaBt(x, 3);
    const ref = refDnoSoftBt(x.l1, x.lt1, x.l2, x.lt2, x.p, 3);
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(Math.abs(r.loss - ref.loss)).toBeLessThanOrEqual(1e-6 * Math.max(1, ref.loss));
    const a = await preferenceLossAsync(chosen, rejected, { lossType: 'bt', preferenceProb: x.p });
    expect(a.loss).toBe(r.loss);
  });
});
