// highEntropyMask (TRL get_high_entropy_mask, top_entropy_quantile) against a float64 reference of
// torch.quantile's linear interpolation (in f32, as torch computes it for f32 entropies).
import { describe, expect, it } from 'vitest';

import { highEntropyMask, highEntropyMaskAsync, setNumThreads } from '../lib/index.js';
import { randn, rng } from './helpers.js';
import { refHighEntropyMask } from './reference/selection.js';

function inputs(n: number, seed: number) {
  const entropy = randn(n, 1.5, seed).map((x) => Math.abs(x));
  const r = rng(seed + 1);
  const m8 = new Uint8Array(n).map(() => (r() < 0.7 ? 1 : 0));
  const mf = new Float32Array(n).map((_, i) => (m8[i] ? 0.5 + (i % 3) : 0));
  return { entropy, m8, mf };
}

describe('highEntropyMask', () => {
  for (const n of [1, 2, 7, 129, 1031, 33 * 17]) {
    it(`matches the reference, n = ${n}, every mask kind and quantile`, () => {
      const { entropy, m8, mf } = inputs(n, n);
      for (const mask of [null, m8, mf]) {
        for (const q of [0, 1e-3, 0.2, 0.5, 0.77, 1]) {
          const got = highEntropyMask(entropy, mask, { topQuantile: q });
          const ref = refHighEntropyMask(entropy, mask, q);
          expect(Array.from(got.mask)).toEqual(Array.from(ref.mask));
          expect(got.threshold).toBe(ref.threshold);
          expect(got.count).toBe(ref.count);
          if (ref.count > 0 && q === 1) expect(got.count).toBe(mask ? Array.from(mask).filter((v) => v !== 0).length : n);
        }
      }
    });
  }

  it('keeps the top fraction, ties included; 0 keeps the highest, 1 keeps every counted token', () => {
    const e = Float32Array.from([0.5, 3, 1, 2, 2, 0.1, 9, 4, 0, 7]);
    const mask = Uint8Array.from([1, 1, 1, 1, 1, 1, 0, 1, 1, 1]);
    expect(Array.from(highEntropyMask(e, mask, { topQuantile: 0 }).mask)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(highEntropyMask(e, mask, { topQuantile: 1 }).count).toBe(9);
    // 9 counted values sorted: 0 0.1 0.5 1 2 2 3 4 7; 0.5 quantile: rank 4 -> 2 (both 2s kept)
    const half = highEntropyMask(e, mask, { topQuantile: 0.5 });
    expect(half.threshold).toBe(2);
    expect(Array.from(half.mask)).toEqual([0, 1, 0, 1, 1, 0, 0, 1, 0, 1]);
    // 0.3 kept: the 0.7 quantile, rank 5.6 -> lerp(2, 3, 0.6) = 2.6
    expect(highEntropyMask(e, mask, { topQuantile: 0.3 }).threshold).toBeCloseTo(2.6, 6);
  });

  it('no counted token or a NaN entropy: nothing kept, threshold NaN; large and tiny entropies', () => {
    const e = Float32Array.from([1, 2, 3]);
    const none = highEntropyMask(e, new Uint8Array(3), { topQuantile: 0.5 });
    expect(none.count).toBe(0);
    expect(none.threshold).toBeNaN();
    const nan = highEntropyMask(Float32Array.from([1, NaN, 3]), null, { topQuantile: 0.5 });
    expect(nan.count).toBe(0);
    expect(Array.from(nan.mask)).toEqual([0, 0, 0]);
    const masked = highEntropyMask(Float32Array.from([1, NaN, 3]), Uint8Array.from([1, 0, 1]), { topQuantile: 0.5 });
    expect(Array.from(masked.mask)).toEqual([0, 0, 1]);
    for (const s of [1e-30, 1e30]) {
      const { entropy } = inputs(50, 3);
      const x = entropy.map((v) => v * s);
      expect(Array.from(highEntropyMask(x, null, { topQuantile: 0.2 }).mask)).toEqual(Array.from(refHighEntropyMask(x, null, 0.2).mask));
    }
  });

  it('is the same for 1 and 2 threads, writes out, and the Async form agrees', async () => {
    const { entropy, m8 } = inputs(64 * 257, 5);
    const out = new Uint8Array(entropy.length).fill(7);
    setNumThreads(1);
    const a = highEntropyMask(entropy, m8, { topQuantile: 0.2, out: { mask: out } });
    setNumThreads(2);
    const b = highEntropyMask(entropy, m8, { topQuantile: 0.2 });
    const c = await highEntropyMaskAsync(entropy, m8, { topQuantile: 0.2 });
    expect(a.mask).toBe(out);
    expect(Array.from(b.mask)).toEqual(Array.from(out));
    expect(Array.from(c.mask)).toEqual(Array.from(out));
    expect(c.threshold).toBe(a.threshold);
  });

  it('rejects bad input with a message naming the argument', () => {
    const e = new Float32Array(4);
    expect(() => highEntropyMask(e, null, {} as never)).toThrow(/options.topQuantile: expected a number in \[0, 1\], received undefined/);
    expect(() => highEntropyMask(e, null, { topQuantile: 1.5 })).toThrow(/options.topQuantile/);
    expect(() => highEntropyMask(e, null, { topQuantile: NaN })).toThrow(/options.topQuantile/);
    expect(() => highEntropyMask(e, new Uint8Array(3), { topQuantile: 0.2 })).toThrow(/mask: expected length 4, received length 3/);
    expect(() => highEntropyMask(e, Float32Array.from([1, -1, 0, 0]), { topQuantile: 0.2 })).toThrow(/mask\[1\]: expected a finite weight >= 0/);
    expect(() => highEntropyMask([1, 2] as never, null, { topQuantile: 0.2 })).toThrow(/entropy: expected a Float32Array/);
    expect(() => highEntropyMask(e, null, { topQuantile: 0.2, q: 1 } as never)).toThrow(/options.q: not an option/);
    expect(() => highEntropyMask(e, null, { topQuantile: 0.2, out: { mask: new Uint8Array(2) } })).toThrow(/options.out.mask: expected length 4/);
  });
});
