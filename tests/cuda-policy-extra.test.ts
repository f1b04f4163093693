// reinforcePolicyLoss, luspoPolicyLoss, vespoPolicyLoss and maskTruncatedCompletions on DeviceArrays
// (the numbers over every option are the parity harness's, rk_driver cuda-check): the slot wiring,
// out buffers and Async; and the CPU-only ops' TypeError for a DeviceArray. Skipped without a device.
import { describe, expect, it } from 'vitest';
import { cuda } from '../lib/cuda.js';
import {
  clipCovPolicyLoss,
  highEntropyMask,
  klCovPolicyLoss,
  luspoPolicyLoss,
  luspoPolicyLossAsync,
  maskTruncatedCompletions,
  maskTruncatedCompletionsAsync,
  reinforcePolicyLoss,
  vespoPolicyLoss,
} from '../lib/index.js';
import { expectClose, randn, rng } from './helpers.js';

const available = cuda.isAvailable();

describe.skipIf(!available)('reinforce / luspo / vespo / maskTruncatedCompletions on DeviceArrays', () => {
  const B = 3, T = 5, n = B * T;
  const a = randn(n, 1, 301).map((x) => x - 2), b = a.map((x, i) => x + 0.05 * Math.sin(i));
  const r = rng(304);
  const mask = new Float32Array(n).map(() => (r() < 0.8 ? 0.5 + r() : 0));
  const adv = randn(B, 1, 305);

  it('the sequence ops give the host numbers, into caller-owned out, sync and Async', async () => {
    const [da, db, dadv, dm] = [cuda.upload(a), cuda.upload(b), cuda.upload(adv), cuda.upload(mask)];
    const out = cuda.alloc('f32', n);
    const calls = [
      [reinforcePolicyLoss(a, b, adv, mask, { seqLen: T }), reinforcePolicyLoss(da, db, dadv, dm, { seqLen: T, out: { gradLogprobs: out } })],
      [luspoPolicyLoss(a, b, adv, mask, { seqLen: T, epsilonLow: 0.01 }), await luspoPolicyLossAsync(da, db, dadv, dm, { seqLen: T, epsilonLow: 0.01 })],
      [vespoPolicyLoss(a, b, adv, mask, { seqLen: T }), vespoPolicyLoss(da, db, dadv, dm, { seqLen: T })],
    ] as const;
    expect(calls[0][1].gradLogprobs).toBe(out);
    for (const [host, dev] of calls) {
      expect(dev.loss).toBeCloseTo(host.loss, 12);
      expectClose(dev.gradLogprobs.download(), host.gradLogprobs, 1e-6, 1e-9, 'gradLogprobs');
    }
    for (const x of [da, db, dadv, dm, calls[1][1].gradLogprobs, calls[2][1].gradLogprobs, out]) x.free();
  });

  it('maskTruncatedCompletions gives the host mask and flags', async () => {
    const ids = Int32Array.from({ length: n }, (_, i) => (i % 7 === 4 ? 2 : 3 + (i % 5)));
    const host = maskTruncatedCompletions(ids, mask, { seqLen: T, eosTokenId: 2, padTokenId: 0 });
    const [di, dm] = [cuda.upload(ids), cuda.upload(mask)];
    const dev = await maskTruncatedCompletionsAsync(di, dm, { seqLen: T, eosTokenId: 2, padTokenId: 0 });
    expectClose(dev.mask.download(), host.mask, 0, 0, 'mask');
    expectClose(dev.truncated.download(), host.truncated, 0, 0, 'truncated');
    const none = maskTruncatedCompletions(di, null, { seqLen: T, eosTokenId: 2 });
    expectClose(none.truncated.download(), maskTruncatedCompletions(ids, null, { seqLen: T, eosTokenId: 2 }).truncated, 0, 0, 'no mask');
    for (const x of [di, dm, dev.mask, dev.truncated, none.mask, none.truncated]) x.free();
  });

  it('the CPU-only ops name the DeviceArray in a TypeError', () => {
    const da = cuda.upload(a);
    expect(() => clipCovPolicyLoss(da as never, b, adv, null, { seqLen: T })).toThrow(/logprobs: clipCovPolicyLoss runs on the CPU only/);
    expect(() => klCovPolicyLoss(da as never, b, adv, null, { seqLen: T })).toThrow(/logprobs: klCovPolicyLoss runs on the CPU only/);
    expect(() => highEntropyMask(da as never, null, { topQuantile: 0.2 })).toThrow(/entropy: highEntropyMask runs on the CPU only/);
    da.free();
  });
});
