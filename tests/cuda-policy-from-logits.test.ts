// policyLossFromLogits on DeviceArrays (cuda/policy_logits.h through native/cuda_binding/policy_logits.cc).
//
// Runs where a CUDA device is visible: a GPU, or the host emulation built as a module and named by
// REWARD_KERNELS_CUDA_MODULE (docs/cuda.md). Against the CPU kernel (every slot filled, so a wiring
// error shows) for f32 and bf16 gradients, f32 / bf16 / f16 logits, in place, GSPO's two passes;
// the device's own contract (log-probs equal the device tokenLogprobs' bits at every row read, loss
// and metrics the device policyLoss' on them); out buffers and the Async form (bit for bit); bad
// targets and mask weights (the host path's RangeError); host/device mixing (TypeError naming the
// argument). CUDA vs CPU parity over the option space is rk_driver cuda-check's (native/driver/parity.cc).
import { describe, expect, it } from 'vitest';
import { cuda, DeviceArray } from '../lib/cuda.js';
import { tokenLogprobs } from '../lib/logprobs/index.js';
import { policyLoss, policyLossFromLogits, policyLossFromLogitsAsync, type PolicyLossFromLogitsOptions } from '../lib/policy/index.js';

/** The options without arrays: the same object serves host and device calls. */
type ScalarOptions = Omit<PolicyLossFromLogitsOptions, 'refLogprobs' | 'tokenWeights' | 'out'>;
import { encodeHalf, expectClose, fromBf16, randn, rejected, rng, thrown } from './helpers.js';
import { uploader } from './cuda-helpers.js';

const available = cuda.isAvailable();

interface Case {
  B: number;
  T: number;
  V: number;
  logits: Float32Array;
  targets: Int32Array;
  old: Float32Array;
  adv: Float32Array;
  advTok: Float32Array;
  mask: Uint8Array;
  weights: Float32Array;
  ref: Float32Array;
}

/** Logits N(0, 3) with some -inf (never at the target), ignored targets, a mask with an empty row 1. */
function makeCase(B: number, T: number, V: number, seed: number): Case {
  const r = rng(seed);
  const n = B * T;
  const logits = randn(n * V, 3, seed + 1);
  const targets = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    targets[i] = Math.floor(r() * V);
    if (i > 0 && r() < 0.1) targets[i] = -100;
    for (let j = 0; j < V; j++) if (j !== targets[i] && r() < 0.02) logits[i * V + j] = -Infinity;
  }
  const mask = new Uint8Array(n);
  const weights = new Float32Array(n);
  for (let b = 0; b < B; b++) {
    const len = b === 1 ? 0 : 1 + Math.floor(r() * T);
    for (let t = 0; t < len; t++) {
      mask[b * T + t] = 1;
      weights[b * T + t] = 0.25 + r();
    }
  }
  // old / ref log-probs near the log-probs (ratios around 1, some clipped)
  const lp = tokenLogprobs(logits, targets, { vocab: V }).logprobs;
  const old = lp.map((x, i) => x + 0.3 * Math.sin(i * 1.7 + seed));
  const ref = lp.map((x, i) => x + 0.5 * Math.cos(i + seed));
  return { B, T, V, logits, targets, old, mask, weights, ref, adv: randn(B, 1, seed + 2), advTok: randn(n, 1, seed + 3) };
}

/** The gradient as numbers: f32 as is, bf16 bits decoded. */
function gradValues(g: Float32Array | Uint16Array): Float64Array {
  return g instanceof Float32Array ? Float64Array.from(g) : Float64Array.from(g, (h) => fromBf16(h));
}

/** Rows the kernel reads: target not ignored, mask weight not 0. */
function readRows(c: Case, weights: boolean): number[] {
  const rows: number[] = [];
  for (let i = 0; i < c.B * c.T; i++) if (c.targets[i] !== -100 && (weights ? c.weights[i] : c.mask[i]) !== 0) rows.push(i);
  return rows;
}

describe.skipIf(!available)('policyLossFromLogits on DeviceArrays', () => {
  it('agrees with the CPU kernel, and its log-probs and metrics are the device tokenLogprobs / policyLoss bits', () => {
    const c = makeCase(3, 7, 1001, 5);
    const { up, track, freeAll } = uploader();
    try {
      const [z, y, old, adv, mask, ref] = [up(c.logits), up(c.targets), up(c.old), up(c.adv), up(c.mask), up(c.ref)];
      const opts: ScalarOptions = {
        vocab: c.V, seqLen: c.T, temperature: 0.8, klEstimator: 'k3', beta: 0.05, entropyCoef: 0.01, dualClip: 3, epsilonHigh: 0.28,
      };
      const host = policyLossFromLogits(c.logits, c.targets, c.old, c.adv, c.mask, { ...opts, refLogprobs: c.ref });
      const dev = policyLossFromLogits(z, y, old, adv, mask, { ...opts, refLogprobs: ref });
      track(dev.gradLogits);
      track(dev.logprobs);
      track(dev.entropy);
      expect(dev.gradLogits).toBeInstanceOf(DeviceArray);
      expect(dev.gradLogits.dtype).toBe('f32');
      expect(dev.gradLogits.length).toBe(c.B * c.T * c.V);
      expect(host.loss).not.toBe(0);
      expect(host.metrics.kl).not.toBe(0);
      const lp = dev.logprobs.download();
      const ent = dev.entropy!.download();
      expectClose(lp, host.logprobs, 1e-5, 1e-6, 'logprobs');
      expectClose(ent, host.entropy!, 1e-5, 1e-6, 'entropy');
      const hg = host.gradLogits as Float32Array;
      let gmax = 0;
      for (const v of hg) gmax = Math.max(gmax, Math.abs(v));
      expect(gmax).toBeGreaterThan(0);
      expectClose(dev.gradLogits.download() as Float32Array, hg, 1e-4, 1e-6 * gmax, 'gradLogits');
      expectClose([dev.loss], [host.loss], 1e-5, 1e-7, 'loss');
      const keys = Object.keys(host.metrics).sort();
      expect(Object.keys(dev.metrics).sort()).toEqual(keys);
      const dm = dev.metrics as unknown as Record<string, number>, hm = host.metrics as unknown as Record<string, number>;
      expectClose(keys.map((k) => dm[k]), keys.map((k) => hm[k]), 1e-5, 1e-7, 'metrics');
      // The device contract: tokenLogprobs' bits at every row read, zeros elsewhere; policyLoss' loss and metrics.
      const sep = tokenLogprobs(z, y, { vocab: c.V, temperature: 0.8, returnEntropy: true });
      track(sep.logprobs);
      track(sep.logsumexp);
      track(sep.entropy);
      const slp = sep.logprobs.download(), sent = sep.entropy!.download();
      const read = new Set(readRows(c, false));
      expect(read.size).toBeGreaterThan(3);
      for (let i = 0; i < c.B * c.T; i++) {
        expect([lp[i], ent[i]], `row ${i}`).toEqual(read.has(i) ? [slp[i], sent[i]] : [0, 0]);
      }
      const pl = policyLoss(dev.logprobs, old, adv, mask, { seqLen: c.T, klEstimator: 'k3', beta: 0.05, entropyCoef: 0.01, dualClip: 3, epsilonHigh: 0.28, refLogprobs: ref, entropy: dev.entropy });
      track(pl.gradLogprobs);
      track(pl.gradEntropy);
      expect(dev.loss).toBe(pl.loss);
      expect(dev.metrics).toEqual(pl.metrics);
    } finally {
      freeAll();
    }
  });

  for (const dtype of ['bf16', 'f16'] as const) {
    it(`${dtype} logits, bf16 gradient (nearest even), f32 weights, per-token advantages, GSPO and PPO`, () => {
      const c = makeCase(4, 5, 4097, 11);
      const { bits } = encodeHalf(c.logits, dtype);
      const { up, track, freeAll } = uploader();
      try {
        const [z, y, old, advTok, w] = [up(bits as unknown as Float32Array, dtype), up(c.targets), up(c.old), up(c.advTok), up(c.weights)];
        for (const variant of ['gspo', 'ppo'] as const) {
          const opts: ScalarOptions = { vocab: c.V, dtype, seqLen: c.T, variant, gradDtype: 'bf16', returnEntropy: true };
          const host = policyLossFromLogits(bits, c.targets, c.old, c.advTok, c.weights, opts);
          const dev = policyLossFromLogits(z, y, old, advTok, w, opts);
          track(dev.gradLogits);
          track(dev.logprobs);
          track(dev.entropy);
          expect(dev.gradLogits.dtype).toBe('bf16');
          expectClose(dev.logprobs.download(), host.logprobs, 1e-5, 1e-6, `${variant} logprobs`);
          const hg = gradValues(host.gradLogits);
          let gmax = 0;
          for (const v of hg) gmax = Math.max(gmax, Math.abs(v));
          expect(gmax).toBeGreaterThan(0);
          // one bf16 rounding apart at most (2^-8 relative)
          expectClose(gradValues(dev.gradLogits.download() as Uint16Array), hg, 2 ** -7, 1e-6 * gmax, `${variant} gradLogits`);
          expectClose([dev.loss], [host.loss], 1e-5, 1e-7, `${variant} loss`);
          expectClose([dev.metrics.tokenCount, dev.metrics.clipFraction], [host.metrics.tokenCount, host.metrics.clipFraction], 1e-6, 1e-7, `${variant} metrics`);
        }
      } finally {
        freeAll();
      }
    });
  }

  it('in place over f32 and bf16 logits: the logits array becomes the gradient', () => {
    const c = makeCase(2, 6, 1031, 17);
    const { bits } = encodeHalf(c.logits, 'bf16');
    const { up, track, freeAll } = uploader();
    try {
      const [y, old, adv, mask] = [up(c.targets), up(c.old), up(c.adv), up(c.mask)];
      const hostF = policyLossFromLogits(c.logits, c.targets, c.old, c.adv, c.mask, { vocab: c.V, seqLen: c.T });
      const zf = up(c.logits);
      const devF = policyLossFromLogits(zf, y, old, adv, mask, { vocab: c.V, seqLen: c.T, inPlace: true });
      track(devF.logprobs);
      expect(devF.gradLogits).toBe(zf);
      const hg = hostF.gradLogits as Float32Array;
      let gmax = 0;
      for (const v of hg) gmax = Math.max(gmax, Math.abs(v));
      expectClose(zf.download() as Float32Array, hg, 1e-4, 1e-6 * gmax, 'f32 in place');
      const hostB = policyLossFromLogits(bits, c.targets, c.old, c.adv, c.mask, { vocab: c.V, dtype: 'bf16', seqLen: c.T, gradDtype: 'bf16' });
      const zb = up(bits as unknown as Float32Array, 'bf16');
      const devB = policyLossFromLogits(zb, y, old, adv, mask, { vocab: c.V, seqLen: c.T, gradDtype: 'bf16', inPlace: true });
      track(devB.logprobs);
      expect(devB.gradLogits).toBe(zb);
      expectClose(gradValues(zb.download() as Uint16Array), gradValues(hostB.gradLogits), 2 ** -7, 1e-6 * gmax, 'bf16 in place');
      // a bf16 gradient cannot overwrite f32 logits
      const err = thrown(() => policyLossFromLogits(zf, y, old, adv, mask, { vocab: c.V, seqLen: c.T, gradDtype: 'bf16', inPlace: true }));
      expect(err).toBeInstanceOf(TypeError);
      expect(err.message).toContain('options.inPlace');
    } finally {
      freeAll();
    }
  });

  it('writes caller-owned out buffers, repeats bit for bit, and the Async form agrees', async () => {
    const c = makeCase(3, 4, 777, 23);
    const n = c.B * c.T;
    const { up, freeAll } = uploader();
    try {
      const [z, y, old, adv, mask] = [up(c.logits), up(c.targets), up(c.old), up(c.adv), up(c.mask)];
      const g = up(new Float32Array(n * c.V).fill(NaN));
      const lp = up(new Float32Array(n).fill(NaN));
      const ent = up(new Float32Array(n).fill(NaN));
      const opts = { vocab: c.V, seqLen: c.T, entropyCoef: 0.02, aggregation: 'seq-mean-token-sum' as const };
      const dev = policyLossFromLogits(z, y, old, adv, mask, { ...opts, out: { gradLogits: g, logprobs: lp, entropy: ent } });
      expect(dev.gradLogits).toBe(g);
      expect(dev.logprobs).toBe(lp);
      expect(dev.entropy).toBe(ent);
      const first = g.download() as Float32Array;
      expect(first.every((x) => Number.isFinite(x))).toBe(true);
      const again = policyLossFromLogits(z, y, old, adv, mask, { ...opts, out: { gradLogits: g, logprobs: lp, entropy: ent } });
      expect(again.loss).toBe(dev.loss);
      expect(Array.from(g.download() as Float32Array)).toEqual(Array.from(first));
      const pending = policyLossFromLogitsAsync(z, y, old, adv, mask, opts);
      expect(() => z.free()).toThrow(/pending Async/);
      const res = await pending;
      try {
        expect(res.loss).toBe(dev.loss);
        expect(res.metrics).toEqual(dev.metrics);
        expect(Array.from(res.gradLogits.download() as Float32Array)).toEqual(Array.from(first));
        expect(Array.from(res.logprobs.download())).toEqual(Array.from(lp.download()));
      } finally {
        res.gradLogits.free();
        res.logprobs.free();
        res.entropy?.free();
      }
    } finally {
      freeAll();
    }
  });

  it('a bad target and a bad f32 mask weight are the host RangeErrors (sync and Async)', async () => {
    const c = makeCase(2, 5, 301, 3);
    c.targets[4] = 301;
    const { up, freeAll } = uploader();
    try {
      const [z, y, old, adv] = [up(c.logits), up(c.targets), up(c.old), up(c.adv)];
      const opts = { vocab: c.V, seqLen: c.T };
      const hostT = thrown(() => policyLossFromLogits(c.logits, c.targets, c.old, c.adv, null, opts));
      expect(hostT).toBeInstanceOf(RangeError);
      const devT = thrown(() => policyLossFromLogits(z, y, old, adv, null, opts));
      expect(devT).toBeInstanceOf(RangeError);
      expect(devT.message).toBe(hostT.message);
      expect(devT.message).toContain('targets[4]');
      const asyncT = await rejected(policyLossFromLogitsAsync(z, y, old, adv, null, opts));
      expect(asyncT.message).toBe(hostT.message);
      c.targets[4] = 0;
      const y2 = up(c.targets);
      c.weights[2] = -0.5;
      const w = up(c.weights);
      const hostW = thrown(() => policyLossFromLogits(c.logits, c.targets, c.old, c.adv, c.weights, opts));
      expect(hostW).toBeInstanceOf(RangeError);
      const devW = thrown(() => policyLossFromLogits(z, y2, old, adv, w, opts));
      expect(devW).toBeInstanceOf(RangeError);
      expect(devW.message).toBe(hostW.message);
      expect(devW.message).toContain('mask[2]');
    } finally {
      freeAll();
    }
  });

  it('host and device arrays cannot be mixed; a bf16 gradient buffer must be bf16', () => {
    const c = makeCase(2, 3, 65, 7);
    const { up, freeAll } = uploader();
    try {
      const [z, y, old, adv] = [up(c.logits), up(c.targets), up(c.old), up(c.adv)];
      const opts = { vocab: c.V, seqLen: c.T };
      const e1 = thrown(() => policyLossFromLogits(z, y, c.old as unknown as DeviceArray, adv, null, opts));
      expect(e1).toBeInstanceOf(TypeError);
      expect(e1.message).toMatch(/^oldLogprobs: expected a DeviceArray/);
      const e2 = thrown(() => policyLossFromLogits(z, y, old, adv, c.mask as unknown as DeviceArray, opts));
      expect(e2).toBeInstanceOf(TypeError);
      expect(e2.message).toMatch(/^mask: expected a DeviceArray/);
      const f16 = up(new Uint16Array(c.B * c.T * c.V) as unknown as Float32Array, 'f16');
      const e3 = thrown(() => policyLossFromLogits(z, y, old, adv, null, { ...opts, gradDtype: 'bf16', out: { gradLogits: f16 } }));
      expect(e3).toBeInstanceOf(TypeError);
      expect(e3.message).toMatch(/^options\.out\.gradLogits: expected a DeviceArray of dtype 'bf16'/);
      const e4 = thrown(() => policyLossFromLogits(c.logits, c.targets, c.old, c.adv, null, { ...opts, refLogprobs: old as unknown as Float32Array }));
      expect(e4).toBeInstanceOf(TypeError);
      expect(e4.message).toMatch(/^options\.refLogprobs: expected a host TypedArray/);
    } finally {
      freeAll();
    }
  });
});
