// copoAdvantages and copoPolicyLoss on DeviceArrays (the numbers over every option are the parity
// harness's, rk_driver cuda-check): the slot wiring, groupIds on the host or the device, out buffers
// and Async. Skipped without a device (or the emulated addon, scripts/cuda-emu-addon.sh).
import { describe, expect, it } from 'vitest';
import { cuda } from '../lib/cuda.js';
import { copoAdvantages, copoAdvantagesAsync, copoPolicyLoss, copoPolicyLossAsync } from '../lib/index.js';
import { expectClose, randn, rng } from './helpers.js';

const available = cuda.isAvailable();
const KEYS = ['entropy', 'globalRewards', 'localAdvantages', 'globalAdvantages', 'gates'] as const;

describe.skipIf(!available)('COPO on DeviceArrays', () => {
  const Q = 5, G = 7, n = Q * G, r = rng(77);
  const answers = Int32Array.from({ length: n }, () => Math.floor(r() * 3) - 1);
  const rewards = Float32Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0));
  const ids = Int32Array.from({ length: n }, (_, i) => (i * 3 + (i >> 2)) % Q);

  it('copoAdvantages gives the host numbers: groupSize, host and device groupIds, out, Async', async () => {
    const [da, dr] = [cuda.upload(answers), cuda.upload(rewards)];
    const gates = cuda.alloc('f32', n);
    const host = copoAdvantages(answers, rewards, { groupSize: G, gate: 'soft-with-zero' });
    const dev = copoAdvantages(da, dr, { groupSize: G, gate: 'soft-with-zero', out: { gates } });
    expect(dev.gates).toBe(gates);
    for (const k of KEYS) expectClose(dev[k].download(), host[k], 1e-6, 1e-7, k);
    const hostIds = copoAdvantages(answers, rewards, { groupIds: ids });
    for (const gid of [ids, cuda.upload(ids)]) {
      const d = await copoAdvantagesAsync(da, dr, { groupIds: gid });
      expect(d.numGroups).toBe(Q);
      for (const k of KEYS) expectClose(d[k].download(), hostIds[k], 1e-6, 1e-7, k);
    }
  });

  it('copoPolicyLoss gives the host numbers, into caller-owned out, sync and Async', async () => {
    const B = 3, T = 5, m = B * T;
    const a = randn(m, 1, 301).map((x) => x - 2), b = a.map((x, i) => x + 0.3 * Math.sin(i));
    const al = randn(B, 1, 305), ag = randn(m, 1, 306), w = Float32Array.from([0.2, 0.9, 0.5]);
    const mask = new Float32Array(m).map(() => (r() < 0.8 ? 0.5 + r() : 0));
    const host = copoPolicyLoss(a, b, al, ag, w, mask, { seqLen: T, aggregation: 'seq-mean-token-mean' });
    const out = cuda.alloc('f32', m);
    const args = [cuda.upload(a), cuda.upload(b), cuda.upload(al), cuda.upload(ag), cuda.upload(w), cuda.upload(mask)] as const;
    const d1 = copoPolicyLoss(...args, { seqLen: T, aggregation: 'seq-mean-token-mean', out: { gradLogprobs: out } });
    const d2 = await copoPolicyLossAsync(...args, { seqLen: T, aggregation: 'seq-mean-token-mean' });
    expect(d1.gradLogprobs).toBe(out);
    for (const d of [d1, d2]) {
      expect(d.loss).toBeCloseTo(host.loss, 12);
      expect(d.metrics).toEqual(host.metrics);
      expectClose(d.gradLogprobs.download(), host.gradLogprobs, 1e-6, 1e-9, 'gradLogprobs');
    }
  });
});
