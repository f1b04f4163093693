// Shared inputs of the sequence-op policy loss tests: random (B, T) log-probs, a second set of
// log-probs `scale` away, per-sequence and per-token advantages, and a u8 and an f32 mask.
import { randn, rng } from './helpers.js';

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
