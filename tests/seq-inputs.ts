// Shared inputs of the sequence-op policy loss tests: random (B, T) log-probs, a second set of
// log-probs `scale` away, per-sequence and per-token advantages, and a u8 and an f32 mask; and the
// threads / out / Async check those tests share.
import { expect } from 'vitest';

import { setNumThreads } from '../lib/index.js';
import { expectClose, randn, rng } from './helpers.js';

export function seqInputs(B: number, T: number, seed: number, scale = 0.3) {
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

interface SeqLossResult {
  loss: number;
  gradLogprobs: Float32Array;
}
type SeqLossOptions = { seqLen: number; out?: { gradLogprobs: Float32Array } };
type SeqLoss = (lp: Float32Array, old: Float32Array, adv: Float32Array, mask: Uint8Array, o: SeqLossOptions) => SeqLossResult;

/**
 * A sequence loss gives the same loss and gradient on 1 and 2 threads and in its Async form, and
 * writes options.out.gradLogprobs (64 x 257 tokens, per-token advantages, a u8 mask).
 */
export async function expectThreadsOutAsync(sync: SeqLoss, async: (...a: Parameters<SeqLoss>) => Promise<SeqLossResult>, scale?: number) {
  const { lp, old, advTok, m8 } = seqInputs(64, 257, 11, scale);
  const out = new Float32Array(lp.length).fill(NaN);
  setNumThreads(1);
  const a = sync(lp, old, advTok, m8, { seqLen: 257, out: { gradLogprobs: out } });
  setNumThreads(2);
  const b = sync(lp, old, advTok, m8, { seqLen: 257 });
  const c = await async(lp, old, advTok, m8, { seqLen: 257 });
  expect(a.gradLogprobs).toBe(out);
  expect(b.loss).toBe(a.loss);
  expectClose(b.gradLogprobs, out, 0, 0, 'threads');
  expect(c.loss).toBe(a.loss);
  expectClose(c.gradLogprobs, out, 0, 0, 'async');
}
