// geoMeanPolicyLoss (GMPO) against a float64 reference written from its formula (verl
// compute_policy_loss_geo_mean), and its gradient against central finite differences.
import { describe, expect, it } from 'vitest';

import { geoMeanPolicyLoss, geoMeanPolicyLossAsync, setNumThreads } from '../lib/index.js';
import { centralDiff, expectClose, randn, rng } from './helpers.js';
import { refGeoMean } from './reference/seq-ops.js';

function inputs(B: number, T: number, seed: number, scale = 0.3) {
  const n = B * T;
  const lp = randn(n, 1, seed).map((x) => x - 2);
  const noise = randn(n, 1, seed + 1);
  const old = lp.map((x, i) => x + scale * noise[i]);
  const advSeq = randn(B, 1, seed + 2);
  const advTok = randn(n, 1, seed + 3);
  const r = rng(seed + 4);
  const m8 = new Uint8Array(n).map(() => (r() < 0.8 ? 1 : 0));
  const mf = new Float32Array(n).map((_, i) => (m8[i] ? 0.5 + (i % 3) : 0));
  return { lp, old, advSeq, advTok, m8, mf };
}

describe('geoMeanPolicyLoss', () => {
  for (const [B, T] of [[1, 1], [3, 7], [5, 129], [17, 33], [2, 1031]] as const) {
    it(`matches the float64 reference, ${B}x${T}, per-sequence and per-token advantages, every mask kind`, () => {
      const { lp, old, advSeq, advTok, m8, mf } = inputs(B, T, B * 10 + T);
      for (const adv of [advSeq, advTok]) {
        for (const mask of [null, m8, mf]) {
          for (const [eLo, eHi] of [[0.2, 0.2], [0.4, 0.28]]) {
            const got = geoMeanPolicyLoss(lp, old, adv, mask, { seqLen: T, epsilonLow: eLo, epsilonHigh: eHi });
            const ref = refGeoMean(lp, old, adv, mask, T, eLo, eHi);
            expect(got.loss).toBeCloseTo(ref.loss, 10);
            expect(got.metrics.clipFraction).toBeCloseTo(ref.clipFraction, 12);
            expect(got.metrics.clipFractionLower).toBeCloseTo(ref.clipFractionLower, 12);
            expect(got.metrics.ppoKl).toBeCloseTo(ref.ppoKl, 9);
            expect(got.metrics.tokenCount).toBe(ref.tokenCount);
          }
        }
      }
    });
  }

  it('gradient agrees with central finite differences of the reference', () => {
    for (const [B, T] of [[2, 5], [1, 1], [4, 9]] as const) {
      const { lp, old, advSeq, advTok, mf } = inputs(B, T, 99 + T);
      for (const adv of [advSeq, advTok]) {
        const got = geoMeanPolicyLoss(lp, old, adv, mf, { seqLen: T, epsilonLow: 0.2, epsilonHigh: 0.3 });
        const f = (x: Float64Array) => refGeoMean(x, old, adv, mf, T, 0.2, 0.3).loss;
        const x = Float64Array.from(lp);
        const fd = new Float64Array(x.length);
        for (let i = 0; i < x.length; i++) {
          const d = lp[i] - old[i];
          if (Math.abs(d + 0.2) < 1e-4 || Math.abs(d - 0.3) < 1e-4) continue; // at a clamp edge
          fd[i] = centralDiff(f, x, i);
          expect(got.gradLogprobs[i]).toBeCloseTo(fd[i], 6);
        }
      }
    }
  });

  it('large and tiny log-ratios, -inf-free extremes, an all-masked row', () => {
    const B = 3, T = 11;
    const { lp, advSeq } = inputs(B, T, 5);
    for (const s of [1e-7, 30]) {
      const old = lp.map((x, i) => x + s * ((i % 5) - 2));
      const mask = new Uint8Array(B * T).fill(1);
      mask.fill(0, T, 2 * T);
      const got = geoMeanPolicyLoss(lp, old, advSeq, mask, { seqLen: T });
      const ref = refGeoMean(lp, old, advSeq, mask, T, 0.2, 0.2);
      expect(got.loss).toBeCloseTo(ref.loss, 10);
      for (let t = T; t < 2 * T; t++) expect(got.gradLogprobs[t]).toBe(0);
    }
  });

  it('is the same for 1 and 2 threads, writes out, and the Async form agrees', async () => {
    const { lp, old, advTok, m8 } = inputs(64, 257, 11);
    const out = new Float32Array(lp.length).fill(NaN);
    setNumThreads(1);
    const a = geoMeanPolicyLoss(lp, old, advTok, m8, { seqLen: 257, out: { gradLogprobs: out } });
    setNumThreads(2);
    const b = geoMeanPolicyLoss(lp, old, advTok, m8, { seqLen: 257 });
    const c = await geoMeanPolicyLossAsync(lp, old, advTok, m8, { seqLen: 257 });
    expect(a.gradLogprobs).toBe(out);
    expect(b.loss).toBe(a.loss);
    expectClose(b.gradLogprobs, out, 0, 0, 'threads');
    expect(c.loss).toBe(a.loss);
  });

  it('rejects bad input with a message naming the argument', () => {
    const x = new Float32Array(6);
    expect(() => geoMeanPolicyLoss(x, x, new Float32Array(4), null, { seqLen: 3 })).toThrow(
      /advantages: expected length 2 \(one per sequence\) or 6 \(one per token\), received length 4/,
    );
    expect(() => geoMeanPolicyLoss(x, x, x, null, { seqLen: 0 })).toThrow(/options.seqLen: expected an integer in \[1, 2147483647\], received 0/);
    expect(() => geoMeanPolicyLoss(x, x, x, null, {} as never)).toThrow(TypeError);
    expect(() => geoMeanPolicyLoss(x, x, x, 'mask' as never, { seqLen: 3 })).toThrow(/mask: expected a Uint8Array or Float32Array, received string 'mask'/);
    expect(() => geoMeanPolicyLoss(x, x, x, null, { seqLen: 3, epsilonHigh: NaN })).toThrow(/options.epsilonHigh: expected a finite number/);
  });
});
