// p3oLoss (Pairwise PPO) against a float64 reference written from its formula, its gradients against
// central finite differences, both clip modes, masks, bad input, threads, Async, out.
import { describe, expect, it } from 'vitest';

import { p3oLoss, p3oLossAsync, setNumThreads } from '../lib/index.js';
import { centralDiff, randn } from './helpers.js';
import { refP3o } from './reference/pairwise.js';

function inputs(B: number, T: number, seed: number, sd = 0.3, scale = 1) {
  const old1 = randn(B * T, 2, seed), old2 = randn(B * T, 2, seed + 1);
  const d1 = randn(B * T, sd / Math.sqrt(T), seed + 2), d2 = randn(B * T, sd / Math.sqrt(T), seed + 3);
  const lp1 = old1.map((v, i) => v + d1[i]), lp2 = old2.map((v, i) => v + d2[i]);
  const r1 = randn(B, scale, seed + 4), r2 = randn(B, scale, seed + 5);
  const u = randn(2 * B * T, 1, seed + 6);
  const m1 = Uint8Array.from({ length: B * T }, (_, i) => (u[i] > -0.5 ? 1 : 0));
  const m2 = Uint8Array.from({ length: B * T }, (_, i) => (u[B * T + i] > -0.5 ? 1 : 0));
  return { lp1, lp2, old1, old2, r1, r2, m1, m2 };
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-8): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), floor));
  return worst;
}

const CLIPS = ['separate', 'joint'] as const;

describe('p3oLoss', () => {
  for (const [B, T] of [[1, 1], [1, 13], [7, 5], [33, 17], [129, 3]] as const) {
    it(`matches the float64 reference, B = ${B}, T = ${T}, both clips, masks and none`, () => {
      const x = inputs(B, T, B * 11 + T);
      for (const clip of CLIPS) {
        for (const [m1, m2] of [[null, null], [x.m1, x.m2], [x.m1, null]] as const) {
          for (const epsilon of [0.2, 0.05]) {
            const got = p3oLoss(x.lp1, x.lp2, x.old1, x.old2, x.r1, x.r2, m1, m2, { seqLen: T, clip, epsilon });
            const ref = refP3o(x.lp1, x.lp2, x.old1, x.old2, x.r1, x.r2, m1, m2, T, clip, epsilon);
            expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(ref.loss)));
            expect(relErr(got.gradLogprobs1, ref.grad1)).toBeLessThan(1e-6);
            expect(relErr(got.gradLogprobs2, ref.grad2)).toBeLessThan(1e-6);
            expect(got.metrics.clipFraction).toBe(ref.clipFraction);
          }
        }
      }
    });
  }

  it('clips some ratios and not others, and masked tokens get no gradient', () => {
    const x = inputs(200, 9, 5, 0.5);
    for (const clip of CLIPS) {
      const r = p3oLoss(x.lp1, x.lp2, x.old1, x.old2, x.r1, x.r2, x.m1, x.m2, { seqLen: 9, clip });
      expect(r.metrics.clipFraction).toBeGreaterThan(0.05);
      expect(r.metrics.clipFraction).toBeLessThan(0.95);
      for (let i = 0; i < x.m1.length; i++) {
        if (!x.m1[i]) expect(r.gradLogprobs1[i]).toBe(0);
        if (!x.m2[i]) expect(r.gradLogprobs2[i]).toBe(0);
      }
    }
  });

  it('hand values: separate and joint on one pair of one token', () => {
    const l1 = Float32Array.from([Math.log(1.5)]), l2 = Float32Array.from([Math.log(0.9)]), z = new Float32Array(1);
    const r1 = Float32Array.from([2]), r2 = Float32Array.from([0]);
    // separate: A1 = 1, rho1 = 1.5 -> clipped at 1.2: -1.2; A2 = -1, rho2 = 0.9 inside: +0.9
    const s = p3oLoss(l1, l2, z, z, r1, r2, null, null, { seqLen: 1 });
    expect(s.loss).toBeCloseTo(-1.2 + 0.9, 6);
    expect(s.gradLogprobs1[0]).toBe(0);
    expect(s.gradLogprobs2[0]).toBeCloseTo(0.9, 6);
    expect(s.metrics.clipFraction).toBe(0.5);
    // joint: rho = 1.5 / 0.9 > 1.2, A = 2 -> clipped: -2.4
    const j = p3oLoss(l1, l2, z, z, r1, r2, null, null, { seqLen: 1, clip: 'joint' });
    expect(j.loss).toBeCloseTo(-2.4, 6);
    expect(j.gradLogprobs1[0]).toBe(0);
    expect(j.metrics.clipFraction).toBe(1);
    // below the clip the joint loss is -rho A, dL/dl1 = -rho A = -dL/dl2
    const k = p3oLoss(l1, l2, z, z, r2, r1, null, null, { seqLen: 1, clip: 'joint', epsilon: 0.9 });
    expect(k.loss).toBeCloseTo((1.5 / 0.9) * 2, 5);
    expect(k.gradLogprobs1[0]).toBeCloseTo((1.5 / 0.9) * 2, 5);
    expect(k.gradLogprobs2[0]).toBeCloseTo(-(1.5 / 0.9) * 2, 5);
  });

  it('gradients agree with central finite differences of the reference', () => {
    for (const [B, T] of [[1, 1], [3, 5], [4, 9]] as const) {
      const x = inputs(B, T, 70 + T, 0.4);
      for (const clip of CLIPS) {
        for (const [m1, m2] of [[null, null], [x.m1, x.m2]] as const) {
          const got = p3oLoss(x.lp1, x.lp2, x.old1, x.old2, x.r1, x.r2, m1, m2, { seqLen: T, clip });
          const a = Float64Array.from(x.lp1), b = Float64Array.from(x.lp2);
          for (let i = 0; i < B * T; i++) {
            const f1 = centralDiff((v) => refP3o(v, x.lp2, x.old1, x.old2, x.r1, x.r2, m1, m2, T, clip).loss, a, i);
            const f2 = centralDiff((v) => refP3o(x.lp1, v, x.old1, x.old2, x.r1, x.r2, m1, m2, T, clip).loss, b, i);
            expect(got.gradLogprobs1[i]).toBeCloseTo(f1, 6);
            expect(got.gradLogprobs2[i]).toBeCloseTo(f2, 6);
          }
        }
      }
    }
  });

  it('large and tiny rewards stay finite and match', () => {
    for (const scale of [1e-6, 1e4]) {
      const x = inputs(19, 7, 3, 0.3, scale);
      for (const clip of CLIPS) {
        const got = p3oLoss(x.lp1, x.lp2, x.old1, x.old2, x.r1, x.r2, x.m1, x.m2, { seqLen: 7, clip });
        const ref = refP3o(x.lp1, x.lp2, x.old1, x.old2, x.r1, x.r2, x.m1, x.m2, 7, clip);
        expect(Number.isFinite(got.loss)).toBe(true);
        expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(ref.loss)));
        expect(relErr(got.gradLogprobs1, ref.grad1, 1e-30)).toBeLessThan(1e-6);
        expect(relErr(got.gradLogprobs2, ref.grad2, 1e-30)).toBeLessThan(1e-6);
      }
    }
  });

  it('is bit-identical for 1, 2 and 3 threads, writes out, and the Async form agrees', async () => {
    const B = 3001, T = 13;
    const x = inputs(B, T, 9, 0.5);
    for (const clip of CLIPS) {
      const out = { gradLogprobs1: new Float32Array(B * T), gradLogprobs2: new Float32Array(B * T) };
      const runs = [];
      for (const t of [1, 2, 3]) {
        setNumThreads(t);
        runs.push(p3oLoss(x.lp1, x.lp2, x.old1, x.old2, x.r1, x.r2, x.m1, x.m2, { seqLen: T, clip, out: t === 1 ? out : undefined }));
      }
      const c = await p3oLossAsync(x.lp1, x.lp2, x.old1, x.old2, x.r1, x.r2, x.m1, x.m2, { seqLen: T, clip });
      setNumThreads(2);
      expect(runs[0].gradLogprobs1).toBe(out.gradLogprobs1);
      expect(runs[0].gradLogprobs2).toBe(out.gradLogprobs2);
      for (const r of [...runs.slice(1), c]) {
        expect(r.loss).toBe(runs[0].loss);
        expect(r.metrics.clipFraction).toBe(runs[0].metrics.clipFraction);
        for (const k of ['gradLogprobs1', 'gradLogprobs2'] as const) {
          expect(Buffer.from(r[k].buffer).equals(Buffer.from(runs[0][k].buffer))).toBe(true);
        }
      }
    }
  });

  it('rejects bad input with a message naming the argument', async () => {
    const a = new Float32Array(6), r = new Float32Array(2);
    const ok = { seqLen: 3 };
    expect(() => p3oLoss(a, a, a, a, r, r, null, null, { seqLen: 4 })).toThrow(/options.seqLen: expected a divisor of the length of logprobs1 \(6\), received 4/);
    expect(() => p3oLoss(a, new Float32Array(5), a, a, r, r, null, null, ok)).toThrow(/logprobs2: expected length 6, received length 5/);
    expect(() => p3oLoss(a, a, a, new Float32Array(3), r, r, null, null, ok)).toThrow(/oldLogprobs2/);
    expect(() => p3oLoss(a, a, a, a, new Float32Array(3), r, null, null, ok)).toThrow(/rewards1: expected length 2, received length 3/);
    expect(() => p3oLoss(a, a, a, a, r, new Float32Array(1), null, null, ok)).toThrow(/rewards2/);
    expect(() => p3oLoss(a, a, a, a, r, r, new Uint8Array(5), null, ok)).toThrow(/mask1/);
    expect(() => p3oLoss(a, a, a, a, r, r, null, new Float32Array(6) as never, ok)).toThrow(/mask2: expected a Uint8Array/);
    expect(() => p3oLoss(new Float32Array(0), a, a, a, r, r, null, null, ok)).toThrow(/seqLen|logprobs1/);
    expect(() => p3oLoss(a, a, a, a, r, r, null, null, {} as never)).toThrow(/options.seqLen/);
    expect(() => p3oLoss(a, a, a, a, r, r, null, null, { seqLen: 3, clip: 'both' as never })).toThrow(/options.clip/);
    expect(() => p3oLoss(a, a, a, a, r, r, null, null, { seqLen: 3, epsilon: 1 })).toThrow(/options.epsilon/);
    expect(() => p3oLoss(a, a, a, a, r, r, null, null, { seqLen: 3, epsilon: -0.1 })).toThrow(/options.epsilon/);
    expect(() => p3oLoss(a, a, a, a, r, r, null, null, { seqLen: 3, beta: 1 } as never)).toThrow(/beta/);
    expect(() => p3oLoss(a, a, a, a, r, r, null, null, { seqLen: 3, out: { gradLogprobs1: new Float32Array(5) } })).toThrow(/options.out.gradLogprobs1/);
    await expect(p3oLossAsync(a, a, a, a, r, r, null, null, { seqLen: 3, epsilon: 2 })).rejects.toThrow(/options.epsilon/);
  });
});
