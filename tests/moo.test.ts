// The multi-objective family (lib/moo/): paretoFront, rewardWeightUpdate, hypervolumeMetaReward,
// trajectoryBalanceLoss, orderPreservingLoss against the float64 references of tests/reference/moo.ts.
import { afterAll, describe, expect, it } from 'vitest';

import {
  hypervolumeMetaReward,
  hypervolumeMetaRewardAsync,
  orderPreservingLoss,
  orderPreservingLossAsync,
  paretoFront,
  paretoFrontAsync,
  rewardWeightUpdate,
  rewardWeightUpdateAsync,
  setNumThreads,
  trajectoryBalanceLoss,
  trajectoryBalanceLossAsync,
} from '../lib/index.js';
import { centralDiff, expectClose, randn, rng } from './helpers.js';
import {
  bruteHypervolume,
  refHvMetaReward,
  refHypervolume,
  refOpLoss,
  refParetoFront,
  refRewardWeightUpdate,
  refStepGrads,
  refTbLoss,
} from './reference/moo.js';

afterAll(() => setNumThreads(2));

/** B points of K objectives; `levels` > 0 quantises them (ties and duplicates), and a few rows are copies. */
function points(B: number, K: number, seed: number, levels = 0): Float32Array {
  const p = randn(B * K, 1, seed);
  if (levels > 0) for (let i = 0; i < p.length; i++) p[i] = Math.round(p[i] * levels) / levels;
  const r = rng(seed + 1);
  for (let b = 1; b < B; b++) if (r() < 0.2) p.copyWithin(b * K, (b - 1) * K, b * K);
  return p;
}

// Worst relative error against the references, over every comparison below (reported by the last test).
let worst = 0;
function track(got: ArrayLike<number>, ref: ArrayLike<number>, floor: number) {
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]) / Math.max(Math.abs(ref[i]), floor));
}

describe('paretoFront', () => {
  for (const K of [1, 2, 3, 5]) {
    for (const B of [1, 2, 7, 33, 130]) {
      it(`matches botorch's rule, B=${B} K=${K}, continuous and tied values`, () => {
        for (const levels of [0, 2]) {
          const p = points(B, K, B * 10 + K + levels, levels);
          const got = paretoFront(p, { numObjectives: K });
          const ref = refParetoFront(p, K);
          expect(Array.from(got.front)).toEqual(Array.from(ref));
          expect(got.count).toBe(ref.reduce((a, x) => a + x, 0));
          expect(got.count).toBeGreaterThanOrEqual(1);
        }
      });
    }
  }

  it('keeps every copy of a duplicated front point, drops a dominated copy, and a tie in one objective dominates', () => {
    const p = new Float32Array([1, 2, 1, 2, 2, 1, 0.5, 0.5, 0.5, 0.5, 1, 1.5, 1, 1]);
    expect(Array.from(paretoFront(p, { numObjectives: 2 }).front)).toEqual([1, 1, 1, 0, 0, 0, 0]);
    // K = 1: every copy of the maximum.
    expect(Array.from(paretoFront(new Float32Array([3, 1, 3, -2]), { numObjectives: 1 }).front)).toEqual([1, 0, 1, 0]);
  });

  it('a NaN point is never dominated and dominates nothing (botorch comparisons)', () => {
    const p = new Float32Array([NaN, 0, 1, 1, 0, 0]);
    expect(Array.from(paretoFront(p, { numObjectives: 2 }).front)).toEqual([1, 1, 0]);
  });

  it('is the same for 1, 2 and 3 threads, writes out, and the Async form agrees', async () => {
    const p = points(700, 3, 9, 4);
    const runs = [1, 2, 3].map((t) => {
      setNumThreads(t);
      return paretoFront(p, { numObjectives: 3 }).front;
    });
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
    const out = new Uint8Array(700).fill(7);
    const got = await paretoFrontAsync(p, { numObjectives: 3, out: { front: out } });
    expect(got.front).toBe(out);
    expect(out).toEqual(runs[0]);
  });

  it('rejects bad input naming the argument', () => {
    expect(() => paretoFront(new Float32Array(5), { numObjectives: 2 })).toThrow(/options.numObjectives: expected a divisor/);
    expect(() => paretoFront(new Float32Array(0), { numObjectives: 1 })).toThrow(RangeError);
    expect(() => paretoFront(new Float64Array(4) as unknown as Float32Array, { numObjectives: 2 })).toThrow(/^points: expected a Float32Array/);
    expect(() => paretoFront(new Float32Array(4), { numObjectives: 0 })).toThrow(/options.numObjectives/);
    expect(() => paretoFront(new Float32Array(4), {} as never)).toThrow(/options.numObjectives/);
    expect(() => paretoFront(new Float32Array(4), { numObjectives: 2, out: { front: new Uint8Array(3) } })).toThrow(/options.out.front/);
  });
});

describe('rewardWeightUpdate', () => {
  for (const K of [1, 2, 3, 5]) {
    for (const P of [1, 7, 8193, 20011]) {
      it(`matches the float64 update, K=${K} P=${P}`, () => {
        const G = randn(K * P, 1e-3, K * 100 + P);
        const w = new Float32Array(K).fill(1 / K);
        const lr = 1e-6 * (1 + K);
        const got = rewardWeightUpdate(G, w, { lr });
        const ref = refRewardWeightUpdate(G, w, lr, 1e-5);
        const gmax = Math.max(...ref.gram.map(Math.abs));
        expectClose(got.gram, ref.gram, 1e-6, 1e-7 * gmax, 'gram');
        expectClose(got.scores, ref.scores, 1e-6, 1e-7 * gmax * K, 'scores');
        expectClose(got.weights, ref.weights, 1e-6, 1e-7, 'weights');
        track(got.gram, ref.gram, 1e-7 * gmax);
        track(got.weights, ref.weights, 1e-7);
        expect(got.weights.reduce((a, x) => a + x, 0)).toBeCloseTo(1, 6);
      });
    }
  }

  it('large and tiny magnitudes, a zero weight, uneven weights, mu given', () => {
    for (const scale of [1e-20, 1e15]) {
      const K = 3, P = 999;
      const G = randn(K * P, scale, 77);
      const w = new Float32Array([0.6, 0, 0.4]);
      const lr = 1e-5 / (scale * scale * P);
      const got = rewardWeightUpdate(G, w, { lr, mu: 2e-5 });
      const ref = refRewardWeightUpdate(G, w, lr, 2e-5);
      const gmax = Math.max(...ref.gram.map(Math.abs));
      expectClose(got.gram, ref.gram, 1e-6, 1e-7 * gmax, `gram ${scale}`);
      expectClose(got.weights, ref.weights, 1e-6, 1e-7, `weights ${scale}`);
      expect(got.weights[1]).toBe(0);
    }
  });

  it('K x P = 4 x 10^5: the same bits for 1, 2 and 3 threads; Async and out agree', async () => {
    const G = randn(4 * 100003, 1e-2, 3);
    const w = new Float32Array([0.1, 0.2, 0.3, 0.4]);
    const runs = [1, 2, 3].map((t) => {
      setNumThreads(t);
      return rewardWeightUpdate(G, w, { lr: 1e-7 });
    });
    for (const r of runs.slice(1)) {
      expect(r.gram).toEqual(runs[0].gram);
      expect(r.weights).toEqual(runs[0].weights);
    }
    const out = { weights: new Float32Array(4), scores: new Float32Array(4), gram: new Float32Array(16) };
    const a = await rewardWeightUpdateAsync(G, w, { lr: 1e-7, out });
    expect(a.weights).toBe(out.weights);
    expect(a.gram).toEqual(runs[0].gram);
    expect(a.scores).toEqual(runs[0].scores);
  });

  it('rejects bad input naming the argument', () => {
    const G = new Float32Array(6), w = new Float32Array([0.5, 0.5]);
    expect(() => rewardWeightUpdate(G, w, {} as never)).toThrow(/^options.lr: expected a number/);
    expect(() => rewardWeightUpdate(G, w, { lr: NaN })).toThrow(/^options.lr/);
    expect(() => rewardWeightUpdate(G, w, { lr: 1, mu: 0 })).toThrow(/^options.mu/);
    expect(() => rewardWeightUpdate(new Float32Array(5), w, { lr: 1 })).toThrow(/^grads: expected a nonzero multiple of K = 2/);
    expect(() => rewardWeightUpdate(G, new Float32Array([0.5, -0.1]), { lr: 1 })).toThrow(/^weights: expected finite weights >= 0, received -0.1/);
    expect(() => rewardWeightUpdate(G, new Float32Array(2), { lr: 1 })).toThrow(/^weights: expected a positive sum/);
    expect(() => rewardWeightUpdate(G, new Float32Array(0), { lr: 1 })).toThrow(/^weights: expected 1 to 64/);
    expect(() => rewardWeightUpdate(G, w, { lr: 1, out: { gram: new Float32Array(3) } })).toThrow(/^options.out.gram/);
  });
});

describe('hypervolumeMetaReward', () => {
  const asRows = (a: ArrayLike<number>, K: number) => Array.from({ length: a.length / K }, (_, i) => Array.from(a).slice(i * K, i * K + K));

  for (const K of [1, 2, 3, 5]) {
    for (const M of [0, 1, 4, 9]) {
      it(`matches the code's recursive slicing, K=${K} M=${M}, maximise and minimise`, () => {
        const r = rng(K * 31 + M);
        const q = (x: number) => Math.round(x * 4) / 4; // ties between points
        const front = Float64Array.from({ length: M * K }, () => q(r() * 2));
        const current = Float64Array.from({ length: K }, () => q(r() * 2));
        const reference = Float64Array.from({ length: K }, () => q(r() * 0.5));
        const maximize = Uint8Array.from({ length: K }, (_, k) => (k % 3 === 1 ? 0 : 1));
        const rewards = randn(13, 1, K + M);
        const got = hypervolumeMetaReward(rewards, current, front, reference, { maximize });
        const ref = refHvMetaReward(asRows(front, K), Array.from(current), Array.from(reference), Array.from(maximize, (x) => x === 1));
        expect(got.hypervolumeBefore).toBeCloseTo(ref.without, 12);
        expect(got.hypervolume).toBeCloseTo(ref.withCur, 12);
        expect(got.hvContribution).toBeCloseTo(ref.contribution, 12);
        expect(got.metaReward).toBeCloseTo(ref.meta, 12);
        expectClose(got.rewards!, Array.from(rewards, (x) => x * ref.meta), 1e-6, 0, 'rewards');
        worst = Math.max(worst, Math.abs(got.hypervolume - ref.withCur) / Math.max(Math.abs(ref.withCur), 1e-12));
      });
    }
  }

  it('is the dominated volume when every point is above the reference (brute force on the grid)', () => {
    for (const K of [1, 2, 3]) {
      const r = rng(K);
      const pts = Array.from({ length: 6 }, () => Array.from({ length: K }, () => Math.round(r() * 8) / 4));
      const ref = new Array<number>(K).fill(-0.25);
      expect(refHypervolume(pts, ref)).toBeCloseTo(bruteHypervolume(pts, ref), 12);
      const got = hypervolumeMetaReward(null, Float64Array.from(pts[5]), Float64Array.from(pts.slice(0, 5).flat()), Float64Array.from(ref));
      expect(got.hypervolume).toBeCloseTo(bruteHypervolume(pts, ref), 12);
      expect(got.rewards).toBeNull();
    }
  });

  it('a dominated current point contributes 0 (meta-reward 0.5); an empty front measures current alone', () => {
    const f = Float64Array.of(2, 2);
    const got = hypervolumeMetaReward(Float32Array.of(4), Float64Array.of(1, 1), f, Float64Array.of(0, 0));
    expect(got.hvContribution).toBe(0);
    expect(got.metaReward).toBe(0.5);
    expect(got.rewards![0]).toBe(2);
    const alone = hypervolumeMetaReward(null, Float64Array.of(3, 2), new Float64Array(0), Float64Array.of(1, 1));
    expect(alone.hypervolume).toBe(2);
    expect(alone.hypervolumeBefore).toBe(0);
    expect(alone.metaReward).toBeCloseTo(0.5 + 1.5 * Math.tanh(2), 14);
    // The code's quirk: a point below the reference in the last objective gives a negative volume (clamped contribution).
    const below = hypervolumeMetaReward(null, Float64Array.of(3, 0.5), new Float64Array(0), Float64Array.of(1, 1));
    expect(below.hypervolume).toBe(-1);
    expect(below.hvContribution).toBe(0);
  });

  it('Async and out agree with the sync form', async () => {
    const rewards = randn(1000, 1, 4), out = new Float32Array(1000);
    const args = [Float64Array.of(0.9, 0.2, 0.4), Float64Array.of(0.5, 0.5, 0.5, 0.8, 0.1, 0.3), Float64Array.of(0, 0, 0)] as const;
    const a = hypervolumeMetaReward(rewards, ...args);
    const b = await hypervolumeMetaRewardAsync(rewards, ...args, { out: { rewards: out } });
    expect(b.rewards).toBe(out);
    expect(out).toEqual(a.rewards);
    expect(b.metaReward).toBe(a.metaReward);
  });

  it('the same bits for 1, 2 and 3 threads (rewards over several chunks)', () => {
    const rewards = randn(50001, 1, 9);
    const args = [Float64Array.of(0.9, 0.2, 0.4), Float64Array.of(0.5, 0.5, 0.5, 0.8, 0.1, 0.3), Float64Array.of(0, 0, 0)] as const;
    const runs = [1, 2, 3].map((t) => {
      setNumThreads(t);
      return hypervolumeMetaReward(rewards, ...args);
    });
    for (const r of runs.slice(1)) {
      expect(r.metaReward).toBe(runs[0].metaReward);
      expect(r.rewards).toEqual(runs[0].rewards);
    }
    expect(runs[0].rewards![50000]).toBe(Math.fround(rewards[50000] * runs[0].metaReward));
  });

  it('rejects bad input naming the argument', () => {
    const c = Float64Array.of(1, 1), f = Float64Array.of(0.5, 0.5), ref = Float64Array.of(0, 0);
    expect(() => hypervolumeMetaReward(null, Float64Array.of(1, NaN), f, ref)).toThrow(/^current: expected finite values, received NaN at index 1/);
    expect(() => hypervolumeMetaReward(null, c, Float64Array.of(0.5), ref)).toThrow(/^front: expected a multiple of K = 2/);
    expect(() => hypervolumeMetaReward(null, c, f, Float64Array.of(0))).toThrow(/^reference: /);
    expect(() => hypervolumeMetaReward(null, new Float64Array(9), f, ref)).toThrow(/^current: expected 1 to 8 objectives/);
    expect(() => hypervolumeMetaReward(null, new Float32Array(2) as unknown as Float64Array, f, ref)).toThrow(/^current: expected a Float64Array/);
    expect(() => hypervolumeMetaReward(null, c, f, ref, { maximize: new Uint8Array(3) })).toThrow(/^options.maximize/);
    expect(() => hypervolumeMetaReward(null, c, f, ref, { out: { rewards: new Float32Array(1) } })).toThrow(/^options.out.rewards/);
  });
});

describe('trajectoryBalanceLoss and orderPreservingLoss', () => {
  function inputs(B: number, T: number, seed: number, scale = 1) {
    const n = B * T;
    const lpf = randn(n, scale, seed).map((x) => -Math.abs(x)), lpb = randn(n, scale, seed + 1).map((x) => -Math.abs(x));
    const r = rng(seed + 2);
    const m8 = new Uint8Array(n).map(() => (r() < 0.75 ? 1 : 0));
    const mf = Float32Array.from(m8, (m, i) => (m ? 0.5 + (i % 3) : 0));
    const logR = randn(B, 2 * scale, seed + 3), zRow = randn(B, scale, seed + 4), zOne = Float32Array.of(0.3 * scale);
    return { lpf, lpb, m8, mf, logR, zRow, zOne };
  }
  const shapes = [[1, 1], [3, 7], [17, 33], [5, 129], [64, 3]] as const;

  for (const [B, T] of shapes) {
    it(`trajectoryBalanceLoss matches the reference, ${B}x${T}, every mask kind, shared and per-row logZ`, () => {
      for (const scale of [1, 1e-3, 30]) {
        const d = inputs(B, T, B * 13 + T, scale);
        for (const mask of [null, d.m8, d.mf]) {
          for (const z of [d.zOne, d.zRow]) {
            const got = trajectoryBalanceLoss(d.lpf, d.lpb, d.logR, z, mask, { seqLen: T });
            const ref = refTbLoss(d.lpf, d.lpb, d.logR, z, mask, T);
            const g = refStepGrads(ref.g, mask, T, z.length);
            const gmax = Math.max(...ref.g.map(Math.abs));
            expect(got.loss).toBeCloseTo(ref.loss, 10 - Math.log10(Math.max(1, ref.loss)));
            expectClose(got.residuals, ref.residuals, 1e-6, 1e-7 * Math.max(...ref.residuals.map(Math.abs)), 'residuals');
            expectClose(got.gradLogPF, g.pf, 1e-6, 1e-7 * gmax * 3, 'gradLogPF');
            expectClose(got.gradLogPB, g.pb, 1e-6, 1e-7 * gmax * 3, 'gradLogPB');
            expectClose(got.gradLogZ, g.z, 1e-6, 1e-7 * gmax * B, 'gradLogZ');
            track(got.gradLogPF, g.pf, 1e-7 * gmax * 3);
            worst = Math.max(worst, Math.abs(got.loss - ref.loss) / Math.max(ref.loss, 1e-12));
          }
        }
      }
    });

    it(`orderPreservingLoss matches the reference, ${B}x${T}, K = 1, 2, 3, 5 with ties, every mask kind`, () => {
      for (const K of [1, 2, 3, 5]) {
        const d = inputs(B, T, B * 17 + T + K);
        const obj = points(B, K, B + K, 2);
        for (const mask of [null, d.m8, d.mf]) {
          for (const z of [d.zOne, d.zRow]) {
            const got = orderPreservingLoss(d.lpf, d.lpb, obj, z, mask, { seqLen: T, numObjectives: K });
            const ref = refOpLoss(d.lpf, d.lpb, obj, z, mask, T, K);
            const g = refStepGrads(ref.g, mask, T, z.length);
            expect(Array.from(got.front)).toEqual(Array.from(ref.front));
            expect(got.frontSize).toBe(ref.nf);
            expect(got.loss).toBeCloseTo(ref.loss, 9);
            expectClose(got.logRewardHat, ref.r, 1e-6, 1e-6, 'logRewardHat');
            expectClose(got.gradLogPF, g.pf, 1e-6, 1e-7, 'gradLogPF');
            expectClose(got.gradLogPB, g.pb, 1e-6, 1e-7, 'gradLogPB');
            expectClose(got.gradLogZ, g.z, 1e-6, 1e-7, 'gradLogZ');
            track(got.gradLogPF, g.pf, 1e-7);
            worst = Math.max(worst, Math.abs(got.loss - ref.loss) / Math.max(Math.abs(ref.loss), 1e-12));
          }
        }
      }
    });
  }

  it('the gradients are the central finite differences of the float64 losses', () => {
    const B = 6, T = 5, K = 2;
    const d = inputs(B, T, 99);
    const obj = points(B, K, 5);
    for (const mask of [null, d.mf]) {
      const tb = trajectoryBalanceLoss(d.lpf, d.lpb, d.logR, d.zRow, mask, { seqLen: T });
      const op = orderPreservingLoss(d.lpf, d.lpb, obj, d.zRow, mask, { seqLen: T, numObjectives: K });
      const x = new Float64Array([...d.lpf, ...d.lpb, ...d.zRow]);
      const split = (v: Float64Array) => [v.subarray(0, B * T), v.subarray(B * T, 2 * B * T), v.subarray(2 * B * T)] as const;
      const fTb = (v: Float64Array) => { const [a, b, z] = split(v); return refTbLoss(a, b, d.logR, z, mask, T).loss; };
      const fOp = (v: Float64Array) => { const [a, b, z] = split(v); return refOpLoss(a, b, obj, z, mask, T, K).loss; };
      const gTb = [...tb.gradLogPF, ...tb.gradLogPB, ...tb.gradLogZ], gOp = [...op.gradLogPF, ...op.gradLogPB, ...op.gradLogZ];
      for (let i = 0; i < x.length; i++) {
        expect(gTb[i]).toBeCloseTo(centralDiff(fTb, x, i), 4);
        expect(gOp[i]).toBeCloseTo(centralDiff(fOp, x, i), 5);
      }
    }
  });

  it('a shared logZ cancels in the order-preserving loss; -inf steps under a 0 mask do not count', () => {
    const d = inputs(4, 3, 1);
    const obj = points(4, 2, 2);
    const op = orderPreservingLoss(d.lpf, d.lpb, obj, d.zOne, null, { seqLen: 3, numObjectives: 2 });
    expect(Math.abs(op.gradLogZ[0])).toBeLessThan(1e-6);
    const lpf = d.lpf.slice(), m = new Uint8Array(12).fill(1);
    lpf[4] = -Infinity;
    m[4] = 0;
    const tb = trajectoryBalanceLoss(lpf, d.lpb, d.logR, d.zRow, m, { seqLen: 3 });
    expect(Number.isFinite(tb.loss)).toBe(true);
    expect(tb.gradLogPF[4]).toBe(0);
  });

  it('the same bits for 1, 2 and 3 threads; Async and out agree', async () => {
    const B = 301, T = 37, K = 3;
    const d = inputs(B, T, 8);
    const obj = points(B, K, 3, 2);
    const runs = [1, 2, 3].map((t) => {
      setNumThreads(t);
      return [trajectoryBalanceLoss(d.lpf, d.lpb, d.logR, d.zOne, d.mf, { seqLen: T }), orderPreservingLoss(d.lpf, d.lpb, obj, d.zRow, d.m8, { seqLen: T, numObjectives: K })] as const;
    });
    for (const [tb, op] of runs.slice(1)) {
      expect(tb.loss).toBe(runs[0][0].loss);
      expect(tb.gradLogPF).toEqual(runs[0][0].gradLogPF);
      expect(tb.gradLogZ).toEqual(runs[0][0].gradLogZ);
      expect(op.loss).toBe(runs[0][1].loss);
      expect(op.gradLogPB).toEqual(runs[0][1].gradLogPB);
    }
    const out = { residuals: new Float32Array(B), gradLogZ: new Float32Array(1), gradLogPF: new Float32Array(B * T), gradLogPB: new Float32Array(B * T) };
    const a = await trajectoryBalanceLossAsync(d.lpf, d.lpb, d.logR, d.zOne, d.mf, { seqLen: T, out });
    expect(a.gradLogPF).toBe(out.gradLogPF);
    expect(a.loss).toBe(runs[0][0].loss);
    expect(out.gradLogPF).toEqual(runs[0][0].gradLogPF);
    const b = await orderPreservingLossAsync(d.lpf, d.lpb, obj, d.zRow, d.m8, { seqLen: T, numObjectives: K });
    expect(b.loss).toBe(runs[0][1].loss);
    expect(b.front).toEqual(runs[0][1].front);
  });

  it('rejects bad input naming the argument', () => {
    const d = inputs(3, 4, 1);
    const obj = new Float32Array(6);
    expect(() => trajectoryBalanceLoss(d.lpf, d.lpb, d.logR, d.zRow, null, { seqLen: 5 })).toThrow(/^options.seqLen: expected a divisor/);
    expect(() => trajectoryBalanceLoss(d.lpf, d.lpb.subarray(1), d.logR, d.zRow, null, { seqLen: 4 })).toThrow(/^logPB/);
    expect(() => trajectoryBalanceLoss(d.lpf, d.lpb, d.logR.subarray(1), d.zRow, null, { seqLen: 4 })).toThrow(/^logReward/);
    expect(() => trajectoryBalanceLoss(d.lpf, d.lpb, d.logR, new Float32Array(2), null, { seqLen: 4 })).toThrow(/^logZ: expected length 3 \(one per trajectory\) or 1/);
    expect(() => trajectoryBalanceLoss(d.lpf, d.lpb, d.logR, d.zRow, new Int32Array(12) as never, { seqLen: 4 })).toThrow(/^mask: expected a Uint8Array/);
    expect(() => trajectoryBalanceLoss(d.lpf, d.lpb, d.logR, d.zRow, null, { seqLen: 4, out: { gradLogZ: new Float32Array(1) } })).toThrow(/^options.out.gradLogZ/);
    expect(() => orderPreservingLoss(d.lpf, d.lpb, obj, d.zRow, null, { seqLen: 4, numObjectives: 3 })).toThrow(/^objectives/);
    expect(() => orderPreservingLoss(d.lpf, d.lpb, obj, d.zRow, null, { seqLen: 4 } as never)).toThrow(/^options.numObjectives/);
  });

  it('reports the largest relative difference against the references', () => {
    // Printed for the record; the per-test tolerances above are what holds it.
    console.log(`moo: largest relative difference vs the float64 references ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
  });
});
