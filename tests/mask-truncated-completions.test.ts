// maskTruncatedCompletions (TRL mask_truncated_completions) against a reference written from TRL's rule.
import { describe, expect, it } from 'vitest';

import { maskTruncatedCompletions, maskTruncatedCompletionsAsync, setNumThreads } from '../lib/index.js';
import { expectClose, rng } from './helpers.js';
import { refMaskTruncated } from './reference/policy-extra.js';

function inputs(B: number, T: number, seed: number) {
  const r = rng(seed);
  const ids = new Int32Array(B * T), m8 = new Uint8Array(B * T);
  for (let b = 0; b < B; b++) {
    const len = Math.floor(r() * (T + 1)); // 0 .. T tokens
    for (let t = 0; t < T; t++) {
      ids[b * T + t] = t < len ? 3 + Math.floor(r() * 5) : 0; // padding with 0
      m8[b * T + t] = t < len ? 1 : 0;
    }
    if (len > 0 && r() < 0.5) ids[b * T + len - 1] = 2; // ended by EOS
  }
  const mf = Float32Array.from(m8, (m, i) => (m ? 0.5 + (i % 3) : 0));
  return { ids, m8, mf };
}

describe('maskTruncatedCompletions', () => {
  for (const [B, T] of [[1, 1], [3, 7], [5, 129], [17, 33], [2, 1031]] as const) {
    it(`matches the reference, ${B}x${T}, every mask kind, with and without a pad id`, () => {
      const { ids, m8, mf } = inputs(B, T, B * 7 + T);
      for (const mask of [null, m8, mf]) {
        for (const pad of [undefined, 0, 2]) {
          const got = maskTruncatedCompletions(ids, mask, { seqLen: T, eosTokenId: 2, ...(pad !== undefined ? { padTokenId: pad } : {}) });
          const ref = refMaskTruncated(ids, mask, T, 2, pad ?? -1);
          expectClose(got.mask, ref.mask, 0, 0, 'mask');
          expectClose(got.truncated, ref.truncated, 0, 0, 'truncated');
        }
      }
    });
  }

  it('cuts a row whose last token is not EOS; keeps one ending in EOS or pad, and an empty one', () => {
    const ids = Int32Array.from([5, 6, 7, 5, 2, 0, 5, 6, 0, 0, 0, 0]);
    const mask = Uint8Array.from([1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0]);
    const got = maskTruncatedCompletions(ids, mask, { seqLen: 3, eosTokenId: 2, padTokenId: 0 });
    expect(Array.from(got.truncated)).toEqual([1, 0, 0, 0]);
    expect(Array.from(got.mask)).toEqual([0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0]);
    const noPad = maskTruncatedCompletions(ids, mask, { seqLen: 3, eosTokenId: 2 });
    expect(Array.from(noPad.truncated)).toEqual([1, 0, 1, 0]);
    expect(Array.from(maskTruncatedCompletions(ids, null, { seqLen: 3, eosTokenId: 2 }).truncated)).toEqual([1, 1, 1, 1]);
  });

  it('is the same for 1 and 2 threads, writes out, and the Async form agrees', async () => {
    const { ids, mf } = inputs(64, 257, 1);
    const out = { mask: new Float32Array(ids.length).fill(NaN), truncated: new Float32Array(64).fill(NaN) };
    setNumThreads(1);
    const a = maskTruncatedCompletions(ids, mf, { seqLen: 257, eosTokenId: 2, out });
    setNumThreads(2);
    const b = maskTruncatedCompletions(ids, mf, { seqLen: 257, eosTokenId: 2 });
    const c = await maskTruncatedCompletionsAsync(ids, mf, { seqLen: 257, eosTokenId: 2 });
    expect(a.mask).toBe(out.mask);
    expect(a.truncated).toBe(out.truncated);
    expectClose(b.mask, out.mask, 0, 0, 'threads');
    expectClose(c.mask, out.mask, 0, 0, 'async');
    expectClose(c.truncated, out.truncated, 0, 0, 'async');
  });

  it('rejects bad input with a message naming the argument', () => {
    const ids = new Int32Array(6);
    expect(() => maskTruncatedCompletions(new Float32Array(6) as never, null, { seqLen: 3, eosTokenId: 2 })).toThrow(/completionIds: expected an? Int32Array, received Float32Array/);
    expect(() => maskTruncatedCompletions(ids, null, { seqLen: 4, eosTokenId: 2 })).toThrow(/options.seqLen: expected a divisor of the length of completionIds \(6\), received 4/);
    expect(() => maskTruncatedCompletions(ids, null, { seqLen: 3 } as never)).toThrow(/options.eosTokenId/);
    expect(() => maskTruncatedCompletions(ids, null, { seqLen: 3, eosTokenId: -1 })).toThrow(/options.eosTokenId: expected an integer in \[0, 2147483647\], received -1/);
    expect(() => maskTruncatedCompletions(ids, null, { seqLen: 3, eosTokenId: 2, padTokenId: 1.5 })).toThrow(/options.padTokenId/);
    expect(() => maskTruncatedCompletions(ids, new Uint8Array(5), { seqLen: 3, eosTokenId: 2 })).toThrow(/mask: expected length 6, received length 5/);
    expect(() => maskTruncatedCompletions(ids, 'm' as never, { seqLen: 3, eosTokenId: 2 })).toThrow(/mask: expected a Uint8Array/);
    expect(() => maskTruncatedCompletions(ids, null, { seqLen: 3, eosTokenId: 2, out: { truncated: new Float32Array(3) } })).toThrow(/options.out.truncated: expected length 2, received length 3/);
    expect(() => maskTruncatedCompletions(ids, null, { seqLen: 3, eosTokenId: 2, eos: 1 } as never)).toThrow(/options.eos: not an option/);
  });
});
