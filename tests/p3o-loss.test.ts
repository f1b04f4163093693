// p3oLoss (Pairwise PPO) against a float64 reference written from its formula, its gradients against
// central finite differences, both clip modes, masks, bad input, threads, Async, out.
import { describe, expect, it } from 'vitest';

import { p3oLoss, p3oLossAsync, setNumThreads } from '../lib/index.js';
import { centralDiff, randn } from './helpers.js';
import { refP3o, refP3oTrlx, type P3oTrlxRefOptions } from './reference/pairwise.js';

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

type P3oOut = { loss: number; metrics: { clipFraction: number }; gradLogprobs1: Float32Array; gradLogprobs2: Float32Array };
/** runs[0] wrote into `out`; every other run (thread counts, the Async form) gives its bits exactly. */
function expectSameRuns(runs: P3oOut[], async: P3oOut, out: { gradLogprobs1: Float32Array; gradLogprobs2: Float32Array }) {
  expect(runs[0].gradLogprobs1).toBe(out.gradLogprobs1);
  expect(runs[0].gradLogprobs2).toBe(out.gradLogprobs2);
  for (const r of [...runs.slice(1), async]) {
    expect(r.loss).toBe(runs[0].loss);
    expect(r.metrics.clipFraction).toBe(runs[0].metrics.clipFraction);
    for (const k of ['gradLogprobs1', 'gradLogprobs2'] as const) {
      expect(Buffer.from(r[k].buffer).equals(Buffer.from(runs[0][k].buffer))).toBe(true);
    }
  }
}

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
      expectSameRuns(runs, c, out);
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

// ---- surrogate 'trlx': the authors' code (thwu1/trlx 124f2cec, AccelerateP3OTrainer.p3o_loss) ----

function trlxInputs(B: number, T: number, seed: number, sd = 0.3, scale = 1) {
  const x = inputs(B, T, seed, sd, scale);
  const e1 = randn(B * T, 0.5 / Math.sqrt(T), seed + 7), e2 = randn(B * T, 0.5 / Math.sqrt(T), seed + 8);
  const ref1 = x.old1.map((v, i) => v + e1[i]), ref2 = x.old2.map((v, i) => v + e2[i]);
  return { ...x, ref1, ref2 };
}
type TX = ReturnType<typeof trlxInputs>;
type TrlxOpts = Omit<P3oTrlxRefOptions, 'clip'> & { clip?: 'joint' | 'token' };

function runTrlx(x: TX, m1: Uint8Array | null, m2: Uint8Array | null, T: number, o: TrlxOpts = {}) {
  return p3oLoss(x.lp1, x.lp2, x.old1, x.old2, x.r1, x.r2, m1, m2, { seqLen: T, surrogate: 'trlx', refLogprobs1: x.ref1, refLogprobs2: x.ref2, ...o });
}
function refTrlx(x: TX, m1: Uint8Array | null, m2: Uint8Array | null, T: number, o: TrlxOpts = {}) {
  return refP3oTrlx(x.lp1, x.lp2, x.old1, x.old2, x.ref1, x.ref2, x.r1, x.r2, m1, m2, T, o);
}

const TRLX_OPTS: TrlxOpts[] = [
  {},
  { beta: 0, weightClip: 1.2, epsilon: 0.05 },
  { normalizeByTokens: false, beta: 0.3 },
  { scaleByStd: true, epsilon: 1.5 },
  { clip: 'token' },
  { clip: 'token', scaleByStd: true, weightClip: 1, epsilon: 0.01 },
];

describe("p3oLoss, surrogate 'trlx'", () => {
  let worst = 0, worstLoss = 0;
  for (const [B, T] of [[1, 1], [1, 13], [7, 5], [33, 17], [129, 3]] as const) {
    it(`matches the float64 reference of the code's formula, B = ${B}, T = ${T}, both clips, masks and none`, () => {
      const x = trlxInputs(B, T, B * 13 + T);
      for (const o of TRLX_OPTS) {
        if (o.scaleByStd && B < 2) continue;
        if (o.normalizeByTokens === false && o.clip === 'token') continue;
        for (const [m1, m2] of [[null, null], [x.m1, x.m2], [x.m1, null]] as const) {
          const got = runTrlx(x, m1, m2, T, o);
          const ref = refTrlx(x, m1, m2, T, o);
          const dl = Math.abs(got.loss - ref.loss) / Math.max(1, Math.abs(ref.loss));
          expect(dl, JSON.stringify(o)).toBeLessThanOrEqual(1e-12);
          const e = Math.max(relErr(got.gradLogprobs1, ref.grad1, 1e-12), relErr(got.gradLogprobs2, ref.grad2, 1e-12));
          expect(e, JSON.stringify(o)).toBeLessThan(1e-6);
          expect(got.metrics.clipFraction).toBe(ref.clipFraction);
          worst = Math.max(worst, e);
          worstLoss = Math.max(worstLoss, dl);
        }
      }
    });
  }
  it('reports its largest difference from the reference', () => {
    console.log(`p3oLoss trlx vs the float64 reference: gradients ${worst.toExponential(2)} relative, loss ${worstLoss.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-6);
    expect(worstLoss).toBeLessThanOrEqual(1e-12);
  });

  it("hand-worked example of the code's computation, step by step (two pairs of two tokens)", () => {
    // Inputs (exact in f32). Pair 0: no mask. Pair 1: response 2's second token is padding.
    const lp1 = Float32Array.of(-1, -2, -0.5, -1), old1 = Float32Array.of(-1.25, -2, -0.5, -1.5), ref1 = Float32Array.of(-1.5, -2.5, -1, -1);
    const lp2 = Float32Array.of(-3, -0.5, -2, 7), old2 = Float32Array.of(-3, -0.75, -1.5, 0), ref2 = Float32Array.of(-2.5, -1, -2, 0);
    const r1 = Float32Array.of(1, 2), r2 = Float32Array.of(0, 0);
    const m1 = Uint8Array.of(1, 1, 1, 1), m2 = Uint8Array.of(1, 1, 1, 0);
    const o = { seqLen: 2, surrogate: 'trlx', refLogprobs1: ref1, refLogprobs2: ref2, beta: 0.1, weightClip: 1.5, epsilon: 0.2 } as const;
    // logratio_i = sum_t m (l - ref); old_logratio_i = sum_t m (old - ref)
    //   pair 0: L1 = 0.5 + 0.5 = 1,  O1 = 0.25 + 0.5 = 0.75,  L2 = -0.5 + 0.5 = 0,  O2 = -0.5 + 0.25 = -0.25
    //   pair 1: L1 = 0.5 + 0 = 0.5,  O1 = 0.5 - 0.5 = 0,      L2 = 0 (token 2 masked), O2 = -1.5 + 2 = 0.5
    // q = r1 - r2 - kl_coef (L1 - L2): pair 0: 1 - 0.1 * 1 = 0.9;  pair 1: 2 - 0.1 * 0.5 = 1.95
    // ratio = exp((L1 - O1) + (L2 - O2)): pair 0: exp(0.25 + 0.25) = 1.6487 -> clamped to c = 1.5;  pair 1: exp(0.5 - 0.5) = 1
    const q = [0.9, 1.95], w = [1.5, 1];
    // joint clip: D = L1 - L2, bounds (O1 - O2) -+ 0.2
    //   pair 0: D = 1, bounds [0.8, 1.2] -> clamp(D) = 1: loss1 = loss1_clip = -0.9 * 1.5 * 1 = -1.35 (not clipped, d/dD = -1.35)
    //   pair 1: D = 0.5, bounds [-0.7, -0.3] -> clamp(D) = -0.3: loss1 = -1.95 * 0.5 = -0.975, loss1_clip = -1.95 * -0.3 = 0.585 > loss1:
    //           clipped, max = 0.585, and no gradient (the clamp is saturated)
    // avg_tokenwise (the default): n = 4 + 3 = 7 counted tokens, loss = (-1.35 + 0.585) / 7
    const j = p3oLoss(lp1, lp2, old1, old2, r1, r2, m1, m2, o);
    expect(j.loss).toBeCloseTo((-q[0] * w[0] * 1 + q[1] * w[1] * 0.3) / 7, 12);
    expect(j.metrics.clipFraction).toBe(0.5);
    const g = -1.35 / 7; // dL/dD of pair 0; dD/dl1 = m1, dD/dl2 = -m2
    for (const [got, want] of [[j.gradLogprobs1, [g, g, 0, 0]], [j.gradLogprobs2, [-g, -g, 0, 0]]] as const) {
      for (let i = 0; i < 4; i++) expect(got[i]).toBeCloseTo(want[i], 7);
    }
    // avg_tokenwise off: mean over the 2 pairs / 2
    const jm = p3oLoss(lp1, lp2, old1, old2, r1, r2, m1, m2, { ...o, normalizeByTokens: false });
    expect(jm.loss).toBeCloseTo((-1.35 + 0.585) / 2 / 2, 12);
    expect(jm.gradLogprobs1[0]).toBeCloseTo(-1.35 / 4, 7);
    // clip_tokenwise: weights W = -q w (pair 0: -1.35, pair 1: -1.95); x = l m, clamped to old -+ 0.2
    //   pair 0, response 1: x = -1: a = W x = 1.35, b = W * clamp(-1, -1.45, -1.05) = 1.4175 > a: clipped, no gradient
    //                       x = -2: a = b = 2.7 (inside), gradient W
    //           response 2 (weights -W = 1.35): x = -3: a = b = -4.05, gradient 1.35;
    //                       x = -0.5: a = -0.675, b = 1.35 * -0.55 = -0.7425 < a: max = a, gradient 1.35
    //   pair 1, response 1: x = -0.5: a = b = 0.975, gradient -1.95;  x = -1: a = 1.95, b = -1.95 * -1.3 = 2.535: clipped
    //           response 2 (1.95): x = -2: a = -3.9, b = 1.95 * -1.7 = -3.315: clipped;  token 2 masked (0)
    // loss = (1.4175 + 2.7 - 4.05 - 0.675 + 0.975 + 2.535 - 3.315) / 7, clipfrac = 3 / 7
    const t = p3oLoss(lp1, lp2, old1, old2, r1, r2, m1, m2, { ...o, clip: 'token' });
    expect(t.loss).toBeCloseTo((1.4175 + 2.7 - 4.05 - 0.675 + 0.975 + 2.535 - 3.315) / 7, 12);
    expect(t.metrics.clipFraction).toBeCloseTo(3 / 7, 15);
    for (const [got, want] of [[t.gradLogprobs1, [0, -1.35, -1.95, 0]], [t.gradLogprobs2, [1.35, 1.35, 0, 0]]] as const) {
      for (let i = 0; i < 4; i++) expect(got[i]).toBeCloseTo(want[i] / 7, 7);
    }
    // scale_q: q / torch.std(q) (unbiased): mean 1.425, std = sqrt(2 * 0.525^2 / 1) = 0.742462...
    const sd = Math.sqrt(2 * 0.525 ** 2);
    const s = p3oLoss(lp1, lp2, old1, old2, r1, r2, m1, m2, { ...o, scaleByStd: true });
    expect(s.loss).toBeCloseTo(((-q[0] / sd) * 1.5 + (q[1] / sd) * 0.3) / 7, 12);
    expect(s.gradLogprobs1[0]).toBeCloseTo((-(q[0] / sd) * 1.5) / 7, 7);
    // the float64 reference agrees with every step above
    const x = { lp1, lp2, old1, old2, ref1, ref2, r1, r2 } as unknown as TX;
    for (const [got, opt] of [[j, {}], [jm, { normalizeByTokens: false }], [t, { clip: 'token' }], [s, { scaleByStd: true }]] as const) {
      const ref = refTrlx(x, m1, m2, 2, { beta: 0.1, weightClip: 1.5, epsilon: 0.2, ...opt });
      expect(got.loss).toBeCloseTo(ref.loss, 12);
      expect(got.metrics.clipFraction).toBe(ref.clipFraction);
    }
  });

  it('gradients agree with central finite differences of the reference (q and w detached), away from the clamp kinks', () => {
    let checked = 0, skipped = 0;
    for (const [B, T] of [[1, 1], [3, 5], [4, 9]] as const) {
      const x = trlxInputs(B, T, 90 + T, 0.4);
      for (const o of [{}, { clip: 'token' }, { scaleByStd: true, normalizeByTokens: false }, { clip: 'token', scaleByStd: true, epsilon: 0.05 }] as TrlxOpts[]) {
        if (o.scaleByStd && B < 2) continue;
        for (const [m1, m2] of [[null, null], [x.m1, x.m2]] as const) {
          const got = runTrlx(x, m1, m2, T, o);
          const base = refTrlx(x, m1, m2, T, o);
          const frozen = { q: base.q, w: base.w };
          const eps = o.epsilon ?? 0.2;
          // a kink: the joint clip's bounds (per pair) or a token's clamp bounds, within 1e-4
          const near = (i: number) => {
            const b = Math.floor(i / T);
            let L1 = 0, L2 = 0, O1 = 0, O2 = 0;
            for (let t = b * T; t < (b + 1) * T; t++) {
              const a = m1 ? m1[t] : 1, d = m2 ? m2[t] : 1;
              L1 += (x.lp1[t] - x.ref1[t]) * a, L2 += (x.lp2[t] - x.ref2[t]) * d, O1 += (x.old1[t] - x.ref1[t]) * a, O2 += (x.old2[t] - x.ref2[t]) * d;
            }
            const D = L1 - L2, dO = O1 - O2;
            if (o.clip !== 'token') return Math.abs(Math.abs(D - dO) - eps) < 1e-4;
            return Math.abs(Math.abs(x.lp1[i] - x.old1[i]) - eps) < 1e-4 || Math.abs(Math.abs(x.lp2[i] - x.old2[i]) - eps) < 1e-4;
          };
          const a = Float64Array.from(x.lp1), c = Float64Array.from(x.lp2);
          for (let i = 0; i < B * T; i++) {
            if (near(i)) {
              skipped++;
              continue;
            }
            const f1 = centralDiff((v) => refP3oTrlx(v, x.lp2, x.old1, x.old2, x.ref1, x.ref2, x.r1, x.r2, m1, m2, T, o, frozen).loss, a, i);
            const f2 = centralDiff((v) => refP3oTrlx(x.lp1, v, x.old1, x.old2, x.ref1, x.ref2, x.r1, x.r2, m1, m2, T, o, frozen).loss, c, i);
            expect(got.gradLogprobs1[i]).toBeCloseTo(f1, 6);
            expect(got.gradLogprobs2[i]).toBeCloseTo(f2, 6);
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(20 * Math.max(1, skipped));
  });

  it('clips some pairs and tokens and not others, clamps some weights, and masked tokens get no gradient', () => {
    const x = trlxInputs(200, 9, 5, 0.8);
    for (const clip of ['joint', 'token'] as const) {
      const r = runTrlx(x, x.m1, x.m2, 9, { clip, epsilon: 0.1, weightClip: 1.5 });
      expect(r.metrics.clipFraction).toBeGreaterThan(0.05);
      expect(r.metrics.clipFraction).toBeLessThan(0.95);
      for (let i = 0; i < x.m1.length; i++) {
        if (!x.m1[i]) expect(r.gradLogprobs1[i]).toBe(0);
        if (!x.m2[i]) expect(r.gradLogprobs2[i]).toBe(0);
      }
      const w = refTrlx(x, x.m1, x.m2, 9, { clip, epsilon: 0.1, weightClip: 1.5 }).w;
      expect(w.filter((v) => v === 1.5 || v === 1 / 1.5).length).toBeGreaterThan(5);
      expect(w.filter((v) => v < 1.5 && v > 1 / 1.5).length).toBeGreaterThan(5);
    }
  });

  it("defaults are the code's: clip 'joint', epsilon 0.2, beta 0.05, weightClip 10, avg_tokenwise on, scale_q off", () => {
    const x = trlxInputs(11, 6, 21);
    const d = runTrlx(x, x.m1, x.m2, 6);
    const e = runTrlx(x, x.m1, x.m2, 6, { clip: 'joint', epsilon: 0.2, beta: 0.05, weightClip: 10, normalizeByTokens: true, scaleByStd: false });
    expect(d.loss).toBe(e.loss);
    expect(Buffer.from(d.gradLogprobs1.buffer).equals(Buffer.from(e.gradLogprobs1.buffer))).toBe(true);
    // and differs from the ratio surrogate on the same inputs
    expect(p3oLoss(x.lp1, x.lp2, x.old1, x.old2, x.r1, x.r2, x.m1, x.m2, { seqLen: 6, clip: 'joint' }).loss).not.toBe(d.loss);
  });

  it('every token masked: loss 0 and zero gradients (the code divides 0 by 0)', () => {
    const x = trlxInputs(3, 4, 8);
    const z = new Uint8Array(12);
    for (const clip of ['joint', 'token'] as const) {
      const r = runTrlx(x, z, z, 4, { clip });
      expect(r.loss).toBe(0);
      expect(r.metrics.clipFraction).toBe(0);
      expect(r.gradLogprobs1.every((v) => v === 0) && r.gradLogprobs2.every((v) => v === 0)).toBe(true);
    }
  });

  it('large and tiny rewards stay finite and match', () => {
    for (const scale of [1e-6, 1e4]) {
      const x = trlxInputs(19, 7, 3, 0.3, scale);
      for (const o of [{}, { clip: 'token' }, { scaleByStd: true }] as TrlxOpts[]) {
        const got = runTrlx(x, x.m1, x.m2, 7, o);
        const ref = refTrlx(x, x.m1, x.m2, 7, o);
        expect(Number.isFinite(got.loss)).toBe(true);
        expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-12 * Math.max(1e-300, Math.abs(ref.loss)) + 1e-300);
        expect(relErr(got.gradLogprobs1, ref.grad1, 1e-30)).toBeLessThan(1e-6);
        expect(relErr(got.gradLogprobs2, ref.grad2, 1e-30)).toBeLessThan(1e-6);
      }
    }
  });

  it('is bit-identical for 1, 2 and 3 threads, writes out, and the Async form agrees', async () => {
    const B = 3001, T = 13;
    const x = trlxInputs(B, T, 9, 0.5);
    for (const o of [{}, { clip: 'token' }, { scaleByStd: true, normalizeByTokens: false }] as TrlxOpts[]) {
      const out = { gradLogprobs1: new Float32Array(B * T), gradLogprobs2: new Float32Array(B * T) };
      const runs = [];
      for (const t of [1, 2, 3]) {
        setNumThreads(t);
        runs.push(runTrlx(x, x.m1, x.m2, T, { ...o, ...(t === 1 ? { out } : {}) } as TrlxOpts));
      }
      const c = await p3oLossAsync(x.lp1, x.lp2, x.old1, x.old2, x.r1, x.r2, x.m1, x.m2, { seqLen: T, surrogate: 'trlx', refLogprobs1: x.ref1, refLogprobs2: x.ref2, ...o });
      setNumThreads(2);
      expectSameRuns(runs, c, out);
    }
  });

  it('reference log-probs in SharedArrayBuffer views give the same result; an output over one is a RangeError naming both', () => {
    const x = trlxInputs(5, 7, 44);
    const shared = (v: Float32Array) => {
      const s = new Float32Array(new SharedArrayBuffer(v.byteLength));
      s.set(v);
      return s;
    };
    const want = runTrlx(x, x.m1, x.m2, 7);
    const got = runTrlx({ ...x, ref1: shared(x.ref1), ref2: shared(x.ref2) } as unknown as TX, x.m1, x.m2, 7);
    expect(got.loss).toBe(want.loss);
    expect(Array.from(got.gradLogprobs2)).toEqual(Array.from(want.gradLogprobs2));
    expect(() => runTrlx(x, x.m1, x.m2, 7, { out: { gradLogprobs1: x.ref2 } } as never)).toThrow(
      /^options\.out\.gradLogprobs1: expected a buffer apart from the input options\.refLogprobs2/,
    );
  });

  it('rejects bad input with a message naming the argument', async () => {
    const a = new Float32Array(6), r = new Float32Array(2);
    const t = { seqLen: 3, surrogate: 'trlx', refLogprobs1: a, refLogprobs2: a } as const;
    const call = (o: object, m1: Uint8Array | null = null) => () => p3oLoss(a, a, a, a, r, r, m1, null, o as never);
    expect(call({ seqLen: 3, surrogate: 'trlx' })).toThrow(TypeError);
    expect(call({ seqLen: 3, surrogate: 'trlx' })).toThrow(/^options\.refLogprobs1: expected a Float32Array of the reference policy's log-probs \(6\) with surrogate 'trlx', received undefined/);
    expect(call({ ...t, refLogprobs2: null })).toThrow(/^options\.refLogprobs2: expected a Float32Array/);
    expect(call({ ...t, refLogprobs2: new Float32Array(5) })).toThrow(RangeError);
    expect(call({ ...t, refLogprobs2: new Float32Array(5) })).toThrow(/^options\.refLogprobs2: expected length 6, received length 5/);
    expect(call({ ...t, refLogprobs1: new Float64Array(6) })).toThrow(/^options\.refLogprobs1: expected a Float32Array/);
    expect(call({ seqLen: 3, refLogprobs1: a })).toThrow(/^options\.refLogprobs1: applies to surrogate 'trlx' only, expected undefined with surrogate 'ratio'/);
    expect(call({ seqLen: 3, beta: 0.1 })).toThrow(/^options\.beta: applies to surrogate 'trlx' only, expected undefined with surrogate 'ratio', received number 0\.1/);
    expect(call({ seqLen: 3, weightClip: 2 })).toThrow(/^options\.weightClip: applies to surrogate 'trlx' only/);
    expect(call({ seqLen: 3, scaleByStd: true })).toThrow(/^options\.scaleByStd: applies to surrogate 'trlx' only/);
    expect(call({ seqLen: 3, normalizeByTokens: true })).toThrow(/^options\.normalizeByTokens: applies to surrogate 'trlx' with clip 'joint' only/);
    expect(call({ ...t, clip: 'token', normalizeByTokens: false })).toThrow(/^options\.normalizeByTokens: applies to surrogate 'trlx' with clip 'joint' only, expected undefined with surrogate 'trlx' with clip 'token'/);
    expect(call({ ...t, surrogate: 'code' })).toThrow(RangeError);
    expect(call({ ...t, surrogate: 'code' })).toThrow(/^options\.surrogate: expected one of 'ratio', 'trlx', received string 'code'/);
    expect(call({ ...t, clip: 'separate' })).toThrow(/^options\.clip: expected 'joint' or 'token' with surrogate 'trlx' \(its code has no separate clip\), received string 'separate'/);
    expect(call({ seqLen: 3, clip: 'token' })).toThrow(RangeError);
    expect(call({ seqLen: 3, clip: 'token' })).toThrow(/^options\.clip: 'token' applies to surrogate 'trlx' only; expected one of 'separate', 'joint' with surrogate 'ratio', received string 'token'/);
    expect(call({ ...t, clip: 'both' })).toThrow(/^options\.clip: expected one of 'joint', 'token', received string 'both'/);
    expect(call({ ...t, weightClip: 0.5 })).toThrow(RangeError);
    expect(call({ ...t, weightClip: 0.5 })).toThrow(/^options\.weightClip: expected a finite number in \[1, Infinity\], received 0\.5/);
    expect(call({ ...t, weightClip: Infinity })).toThrow(/^options\.weightClip/);
    expect(call({ ...t, beta: -0.1 })).toThrow(/^options\.beta: expected a finite number in \[0, Infinity\], received -0\.1/);
    expect(call({ ...t, beta: '0.1' })).toThrow(TypeError);
    expect(call({ ...t, epsilon: -0.1 })).toThrow(/^options\.epsilon: expected a finite number in \[0, Infinity\]/);
    expect(call({ ...t, scaleByStd: 1 })).toThrow(/^options\.scaleByStd: expected a boolean, received/);
    expect(call({ seqLen: 3, epsilon: 1.5 })).toThrow(/^options\.epsilon: expected a finite number in \[0, 0\.999999\]/);
    // the code's log-space clip range may exceed 1
    expect(Number.isFinite(p3oLoss(a, a, a, a, r, r, null, null, { ...t, epsilon: 1.5 }).loss)).toBe(true);
    // scale_q needs two pairs (torch.std of one value is NaN)
    const one = new Float32Array(3), r1 = new Float32Array(1);
    expect(() => p3oLoss(one, one, one, one, r1, r1, null, null, { ...t, refLogprobs1: one, refLogprobs2: one, scaleByStd: true })).toThrow(
      /^options\.scaleByStd: expected at least 2 pairs \(q is divided by its unbiased std over the pairs\), received 1 pair/,
    );
    await expect(p3oLossAsync(a, a, a, a, r, r, null, null, { seqLen: 3, surrogate: 'trlx' } as never)).rejects.toThrow(/^options\.refLogprobs1/);
    await expect(p3oLossAsync(a, a, a, a, r, r, null, null, { ...t, weightClip: 0 })).rejects.toThrow(/^options\.weightClip/);
  });
});
