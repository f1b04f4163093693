// policyLoss / klPenalty on DeviceArrays (cuda/policy.h through native/cuda_binding/policy.cc).
//
// Runs where a CUDA device is visible: a GPU, or the host emulation built as a module and named by
// REWARD_KERNELS_CUDA_MODULE (docs/cuda.md). One numeric smoke check per op against the CPU kernel
// (every slot filled, so a wiring error shows), then out buffers, the Async forms, bad mask weights
// (the host path's RangeError) and host/device mixing (TypeError naming the argument). CUDA vs CPU
// parity over the option space is rk_driver cuda-check's (native/driver/parity.cc).
import { describe, expect, it } from 'vitest';
import { cuda, DeviceArray } from '../lib/cuda.js';
import {
  geoMeanPolicyLoss,
  geoMeanPolicyLossAsync,
  klPenalty,
  klPenaltyAsync,
  policyLoss,
  policyLossAsync,
  rolloutCorrection,
  rolloutCorrectionAsync,
  type KlEstimator,
  type PolicyLossResult,
  type DevicePolicyLossResult,
  valueLoss,
  valueLossAsync,
} from '../lib/policy/index.js';
import { expectClose, randn, rejected, rng, thrown } from './helpers.js';
import { uploader } from './cuda-helpers.js';

const available = cuda.isAvailable();

interface Case {
  B: number;
  T: number;
  logprobs: Float32Array;
  old: Float32Array;
  adv: Float32Array;
  advTok: Float32Array;
  mask: Uint8Array;
  weights: Float32Array;
  ref: Float32Array;
  entropy: Float32Array;
}

function makeCase(B: number, T: number, seed: number): Case {
  const r = rng(seed);
  const n = B * T;
  const logprobs = randn(n, 1, seed + 1).map((x) => -Math.abs(x) - 0.1);
  const old = logprobs.map((x, i) => x + 0.3 * Math.sin(i * 1.7 + seed));
  const mask = new Uint8Array(n);
  const weights = new Float32Array(n);
  for (let b = 0; b < B; b++) {
    const len = b === 1 ? 0 : 1 + Math.floor(r() * T); // row 1 empty
    for (let t = 0; t < len; t++) {
      mask[b * T + t] = 1;
      weights[b * T + t] = 0.25 + r();
    }
  }
  // garbage under the mask must stay out of the loss and gradient
  for (let i = 0; i < n; i++) if (!mask[i] && i % 3 === 0) old[i] = NaN;
  return {
    B, T, logprobs, old, mask, weights,
    adv: randn(B, 1, seed + 2),
    advTok: randn(n, 1, seed + 3),
    ref: logprobs.map((x, i) => x + 0.5 * Math.cos(i + seed)),
    entropy: randn(n, 1, seed + 4).map((x) => Math.abs(x)),
  };
}

function sameResult(dev: DevicePolicyLossResult, host: PolicyLossResult, label: string) {
  const g = dev.gradLogprobs.download();
  let gmax = 0;
  for (const v of host.gradLogprobs) gmax = Math.max(gmax, Math.abs(v));
  expectClose(g, host.gradLogprobs, 1e-5, 1e-6 * gmax + 1e-12, `${label} gradLogprobs`);
  expectClose([dev.loss], [host.loss], 1e-5, 1e-7, `${label} loss`);
  const keys = Object.keys(host.metrics).sort();
  expect(Object.keys(dev.metrics).sort(), label).toEqual(keys);
  const m = dev.metrics as unknown as Record<string, number>;
  const hm = host.metrics as unknown as Record<string, number>;
  expectClose(keys.map((k) => m[k]), keys.map((k) => hm[k]), 1e-5, 1e-7, `${label} metrics ${keys.join(',')}`);
  expect(dev.gradEntropy === undefined, label).toBe(host.gradEntropy === undefined);
  if (host.gradEntropy) expectClose(dev.gradEntropy!.download(), host.gradEntropy, 1e-6, 0, `${label} gradEntropy`);
}

describe.skipIf(!available)('policyLoss on DeviceArrays', () => {
  it('smoke: agrees with the CPU kernel (f32 weights, per-token advantages, ref log-probs, entropy, dual clip)', () => {
    const c = makeCase(3, 70, 5);
    const { up, track, freeAll } = uploader();
    try {
      const [lp, old, advTok, w, ref, ent] = [up(c.logprobs), up(c.old), up(c.advTok), up(c.weights), up(c.ref), up(c.entropy)];
      const opts = { seqLen: c.T, variant: 'ppo' as const, aggregation: 'seq-mean-token-mean' as const, klEstimator: 'k3' as const, beta: 0.05, entropyCoef: 0.01, dualClip: 3 };
      const host = policyLoss(c.logprobs, c.old, c.advTok, c.weights, { ...opts, refLogprobs: c.ref, entropy: c.entropy });
      const dev = policyLoss(lp, old, advTok, w, { ...opts, refLogprobs: ref, entropy: ent });
      track(dev.gradLogprobs);
      track(dev.gradEntropy);
      expect(dev.gradLogprobs).toBeInstanceOf(DeviceArray);
      expect(dev.gradLogprobs.dtype).toBe('f32');
      expect(host.loss).not.toBe(0);
      expect(host.metrics.kl).not.toBe(0);
      sameResult(dev, host, 'smoke');
    } finally {
      freeAll();
    }
  });

  it('writes caller-owned out buffers, repeats bit for bit, and the Async form agrees', async () => {
    const c = makeCase(4, 53, 23);
    const { up, freeAll } = uploader();
    try {
      const [lp, old, adv, mask, ent] = [up(c.logprobs), up(c.old), up(c.adv), up(c.mask), up(c.entropy)];
      const gl = up(new Float32Array(c.B * c.T).fill(NaN));
      const ge = up(new Float32Array(c.B * c.T).fill(NaN));
      const opts = { seqLen: c.T, entropyCoef: 0.02, epsilonHigh: 0.28 };
      const host = policyLoss(c.logprobs, c.old, c.adv, c.mask, { ...opts, entropy: c.entropy });
      const dev = policyLoss(lp, old, adv, mask, { ...opts, entropy: ent, out: { gradLogprobs: gl, gradEntropy: ge } });
      expect(dev.gradLogprobs).toBe(gl);
      expect(dev.gradEntropy).toBe(ge);
      sameResult(dev, host, 'out');
      const first = gl.download();
      const again = policyLoss(lp, old, adv, mask, { ...opts, entropy: ent, out: { gradLogprobs: gl, gradEntropy: ge } });
      expect(again.loss).toBe(dev.loss);
      expect(Array.from(gl.download())).toEqual(Array.from(first));
      const pending = policyLossAsync(lp, old, adv, mask, { ...opts, entropy: ent });
      expect(() => lp.free()).toThrow(/pending Async/);
      const asyncRes = await pending;
      try {
        expect(asyncRes.loss).toBe(dev.loss);
        expect(asyncRes.metrics).toEqual(dev.metrics);
        expect(Array.from(asyncRes.gradLogprobs.download())).toEqual(Array.from(first));
      } finally {
        asyncRes.gradLogprobs.free();
        asyncRes.gradEntropy?.free();
      }
    } finally {
      freeAll();
    }
  });

  it('an empty batch gives zeros like the CPU', () => {
    const e = new Float32Array(0);
    const { up, freeAll } = uploader();
    try {
      const host = policyLoss(e, e, e, null, { seqLen: 4 });
      const dev = policyLoss(up(e), up(e), up(e), null, { seqLen: 4 });
      expect(dev.gradLogprobs.length).toBe(0);
      expect(dev.loss).toBe(host.loss);
      expect(dev.metrics).toEqual(host.metrics);
      dev.gradLogprobs.free();
    } finally {
      freeAll();
    }
  });

  it('a bad f32 mask weight is the host RangeError (sync and Async)', async () => {
    const c = makeCase(2, 40, 3);
    c.weights[47] = -0.5;
    c.weights[61] = NaN;
    const { up, freeAll } = uploader();
    try {
      const [lp, old, adv, w] = [up(c.logprobs), up(c.old), up(c.adv), up(c.weights)];
      const hostErr = thrown(() => policyLoss(c.logprobs, c.old, c.adv, c.weights, { seqLen: c.T }));
      expect(hostErr).toBeInstanceOf(RangeError);
      const devErr = thrown(() => policyLoss(lp, old, adv, w, { seqLen: c.T }));
      expect(devErr).toBeInstanceOf(RangeError);
      expect(devErr.message).toBe(hostErr.message);
      expect(devErr.message).toContain('mask[47]');
      const asyncErr = await rejected(policyLossAsync(lp, old, adv, w, { seqLen: c.T }));
      expect(asyncErr).toBeInstanceOf(RangeError);
      expect(asyncErr.message).toBe(hostErr.message);
    } finally {
      freeAll();
    }
  });

  it('host and device arrays cannot be mixed; dtypes and lengths are checked', () => {
    const c = makeCase(2, 8, 9);
    const { up, freeAll } = uploader();
    try {
      const [lp, old, adv, mask] = [up(c.logprobs), up(c.old), up(c.adv), up(c.mask)];
      const cases: [() => unknown, ErrorConstructor, string][] = [
        [() => policyLoss(lp, c.old as unknown as DeviceArray, adv, mask, { seqLen: 8 }), TypeError, 'oldLogprobs'],
        [() => policyLoss(lp, old, c.adv as unknown as DeviceArray, mask, { seqLen: 8 }), TypeError, 'advantages'],
        [() => policyLoss(lp, old, adv, c.mask as unknown as DeviceArray, { seqLen: 8 }), TypeError, 'mask'],
        [() => policyLoss(lp, old, adv, mask, { seqLen: 8, refLogprobs: c.ref as unknown as DeviceArray }), TypeError, 'options.refLogprobs'],
        [() => policyLoss(lp, old, adv, mask, { seqLen: 8, entropy: c.entropy as unknown as DeviceArray }), TypeError, 'options.entropy'],
        [() => policyLoss(lp, old, adv, mask, { seqLen: 8, out: { gradLogprobs: new Float32Array(16) as unknown as DeviceArray } }), TypeError, 'options.out.gradLogprobs'],
        [() => policyLoss(c.logprobs, old as unknown as Float32Array, c.adv, c.mask, { seqLen: 8 }), TypeError, 'oldLogprobs'],
        [() => policyLoss(c.logprobs, c.old, c.adv, mask as unknown as Uint8Array, { seqLen: 8 }), TypeError, 'mask'],
        [() => policyLoss(c.logprobs, c.old, c.adv, c.mask, { seqLen: 8, entropy: up(c.entropy) as unknown as Float32Array }), TypeError, 'options.entropy'],
        [() => policyLoss(lp, mask, adv, mask, { seqLen: 8 }), TypeError, 'oldLogprobs'],
        [() => policyLoss(lp, old, up(new Float32Array(3)), mask, { seqLen: 8 }), RangeError, 'advantages'],
        [() => policyLoss(lp, old, adv, up(new Uint8Array(15)), { seqLen: 8 }), RangeError, 'mask'],
        [() => policyLoss(lp, old, adv, mask, { seqLen: 7 }), RangeError, 'options.seqLen'],
        [() => policyLoss(lp, old, adv, mask, { seqLen: 8, epsilonLow: 2 }), RangeError, 'options.epsilonLow'],
        [() => policyLoss(lp, old, adv, mask, { seqLen: 8, out: { gradEntropy: up(new Float32Array(16)) } }), TypeError, 'options.out.gradEntropy'],
      ];
      for (const [call, Cls, name] of cases) {
        const err = thrown(call);
        expect(err, name).toBeInstanceOf(Cls);
        expect(err.message, name).toContain(name);
      }
      const gone = up(c.old);
      gone.free();
      expect(thrown(() => policyLoss(lp, gone, adv, mask, { seqLen: 8 })).message).toMatch(/oldLogprobs.*after free/);
    } finally {
      freeAll();
    }
  });
});

describe.skipIf(!available)('klPenalty on DeviceArrays', () => {
  it('smoke: agrees with the CPU kernel (k2, u8 mask)', () => {
    const c = makeCase(3, 70, 31);
    const { up, freeAll } = uploader();
    try {
      const [lp, ref, mask] = [up(c.logprobs), up(c.ref), up(c.mask)];
      const host = klPenalty(c.logprobs, c.ref, c.mask, { estimator: 'k2' });
      const dev = klPenalty(lp, ref, mask, { estimator: 'k2' });
      try {
        expectClose(dev.kl.download(), host.kl, 1e-5, 1e-7, 'kl');
        expectClose(dev.grad.download(), host.grad, 1e-5, 1e-7, 'grad');
        expect(host.mean).not.toBe(0);
        expectClose([dev.mean], [host.mean], 1e-5, 1e-9, 'mean');
      } finally {
        dev.kl.free();
        dev.grad.free();
      }
    } finally {
      freeAll();
    }
  });

  it('out buffers, the Async form, a bad weight, and mixing', async () => {
    const c = makeCase(2, 50, 41);
    const { up, freeAll } = uploader();
    try {
      const [lp, ref, w] = [up(c.logprobs), up(c.ref), up(c.weights)];
      const kl = up(new Float32Array(100).fill(NaN));
      const grad = up(new Float32Array(100).fill(NaN));
      const host = klPenalty(c.logprobs, c.ref, c.weights, { estimator: 'k3+' });
      const dev = klPenalty(lp, ref, w, { estimator: 'k3+', out: { kl, grad } });
      expect(dev.kl).toBe(kl);
      expect(dev.grad).toBe(grad);
      expectClose(kl.download(), host.kl, 1e-5, 1e-7, 'kl');
      expectClose(grad.download(), host.grad, 1e-5, 1e-7, 'grad');
      const a = await klPenaltyAsync(lp, ref, w, { estimator: 'k3+' });
      expect(a.mean).toBe(dev.mean);
      expect(Array.from(a.kl.download())).toEqual(Array.from(kl.download()));
      a.kl.free();
      a.grad.free();

      c.weights[77] = -Infinity;
      w.copyFrom(c.weights);
      const hostErr = thrown(() => klPenalty(c.logprobs, c.ref, c.weights));
      const devErr = thrown(() => klPenalty(lp, ref, w));
      expect(devErr).toBeInstanceOf(RangeError);
      expect(devErr.message).toBe(hostErr.message);
      expect(devErr.message).toContain('mask[77]');
      const asyncErr = await rejected(klPenaltyAsync(lp, ref, w));
      expect(asyncErr.message).toBe(hostErr.message);

      const mix: [() => unknown, ErrorConstructor, string][] = [
        [() => klPenalty(lp, c.ref as unknown as DeviceArray), TypeError, 'refLogprobs'],
        [() => klPenalty(lp, ref, c.mask as unknown as DeviceArray), TypeError, 'mask'],
        [() => klPenalty(lp, ref, null, { out: { kl: new Float32Array(100) as unknown as DeviceArray } }), TypeError, 'options.out.kl'],
        [() => klPenalty(c.logprobs, ref as unknown as Float32Array), TypeError, 'refLogprobs'],
        [() => klPenalty(c.logprobs, c.ref, w as unknown as Float32Array), TypeError, 'mask'],
        [() => klPenalty(lp, up(new Float32Array(99))), RangeError, 'refLogprobs'],
        [() => klPenalty(lp, ref, null, { out: { grad: up(new Float32Array(3)) } }), RangeError, 'options.out.grad'],
        [() => klPenalty(lp, ref, null, { estimator: 'k4' as KlEstimator }), RangeError, 'options.estimator'],
      ];
      for (const [call, Cls, name] of mix) {
        const err = thrown(call);
        expect(err, name).toBeInstanceOf(Cls);
        expect(err.message, name).toContain(name);
      }
    } finally {
      freeAll();
    }
  });
});

describe.skipIf(!available)('sequence ops (valueLoss, geoMeanPolicyLoss) on DeviceArrays', () => {
  // The numbers over every option are the parity harness's (rk_driver cuda-check); here: the slot
  // wiring, out buffers, Async, and the device-found mask error.
  const B = 3, T = 5, n = B * T;
  const a = randn(n, 1, 201), b = randn(n, 1, 202), c = randn(n, 1, 203);
  const r = rng(204);
  const mask = new Float32Array(n).map(() => (r() < 0.8 ? 0.5 + r() : 0));

  it('valueLoss: the same numbers as the host path, into caller-owned out, sync and Async', async () => {
    const host = valueLoss(a, b, c, mask, { seqLen: T, cliprangeValue: 0.3, aggregation: 'seq-mean-token-mean' });
    const [da, db, dc, dm] = [a, b, c, mask].map((x) => cuda.upload(x));
    const out = cuda.alloc('f32', n);
    const dev = valueLoss(da, db, dc, dm, { seqLen: T, cliprangeValue: 0.3, aggregation: 'seq-mean-token-mean', out: { gradValues: out } });
    expect(dev.gradValues).toBe(out);
    expect(dev.loss).toBeCloseTo(host.loss, 12);
    expect(dev.metrics.clipFraction).toBeCloseTo(host.metrics.clipFraction, 12);
    expectClose(out.download(), host.gradValues, 1e-6, 1e-9, 'gradValues');
    const asy = await valueLossAsync(da, db, dc, dm, { seqLen: T, cliprangeValue: 0.3, aggregation: 'seq-mean-token-mean' });
    expect(asy.loss).toBe(dev.loss);
    for (const x of [da, db, dc, dm, out, asy.gradValues]) x.free();
  });

  it('geoMeanPolicyLoss: per-sequence advantages, a u8 mask, and a bad f32 weight is the host RangeError', async () => {
    const adv = randn(B, 1, 205);
    const m8 = new Uint8Array(n).map((_, i) => (i % 4 ? 1 : 0));
    const host = geoMeanPolicyLoss(a, b, adv, m8, { seqLen: T, epsilonLow: 0.3 });
    const [da, db, dadv, dm] = [cuda.upload(a), cuda.upload(b), cuda.upload(adv), cuda.upload(m8)];
    const dev = await geoMeanPolicyLossAsync(da, db, dadv, dm, { seqLen: T, epsilonLow: 0.3 });
    expect(dev.loss).toBeCloseTo(host.loss, 12);
    expectClose(dev.gradLogprobs.download(), host.gradLogprobs, 1e-6, 1e-9, 'gradLogprobs');
    const bad = cuda.upload(mask.map((x, i) => (i === 7 ? -2 : x)));
    expect(() => geoMeanPolicyLoss(da, db, dadv, bad, { seqLen: T })).toThrow(/mask\[7\]: expected a finite weight >= 0, received -2/);
    expect(() => geoMeanPolicyLoss(da, b as never, dadv, dm, { seqLen: T })).toThrow(/oldLogprobs: expected a DeviceArray \(the log-probs are a DeviceArray/);
    for (const x of [da, db, dadv, dm, bad, dev.gradLogprobs]) x.free();
  });
});

describe('policy device path without a device', () => {
  it.skipIf(available)('the host API is unaffected', () => {
    const r = klPenalty(new Float32Array([-1, -2]), new Float32Array([-1.5, -2]), null, { estimator: 'k1' });
    expectClose(r.kl, [0.5, 0], 1e-7, 0, 'kl');
    expect(r.mean).toBeCloseTo(0.25, 7);
  });
});

describe.skipIf(!available)('rolloutCorrection and policyLoss tokenWeights on DeviceArrays', () => {
  // The numbers over every option are the parity harness's (rk_driver cuda-check): the slot wiring,
  // out buffers, Async, the device-found mask error, and the hand-off to policyLoss.
  it('the host numbers, caller-owned out, Async, and the weights and mask fed to policyLoss', async () => {
    const c = makeCase(4, 33, 301);
    const { up, track, freeAll } = uploader();
    try {
      const old = c.logprobs.map((x, i) => x + 0.2 * Math.sin(i));
      const o = { seqLen: c.T, mode: 'sequence_truncate' as const, batchNormalize: true, offPolicyMaskThreshold: 0.01, rejection: { token_k1: [0.7, 1.4] as [number, number], seq_mean_k3: 0.05 } };
      const host = rolloutCorrection(old, c.logprobs, c.adv, c.weights, o);
      const [dOld, dLp, dAdv, dW] = [up(old), up(c.logprobs), up(c.adv), up(c.weights)];
      const outW = track(cuda.alloc('f32', c.B * c.T)), outM = track(cuda.alloc('f32', c.B * c.T));
      const dev = rolloutCorrection(dOld, dLp, dAdv, dW, { ...o, out: { weights: outW, mask: outM } });
      expect(dev.weights).toBe(outW);
      expect(dev.mask).toBe(outM);
      expectClose(outW.download(), host.weights!, 1e-6, 0, 'weights');
      expect(Array.from(outM.download())).toEqual(Array.from(host.mask));
      const keys = Object.keys(host.metrics).sort();
      expect(Object.keys(dev.metrics).sort()).toEqual(keys);
      const hm = host.metrics as unknown as Record<string, number>, dm = dev.metrics as unknown as Record<string, number>;
      expectClose(keys.map((k) => dm[k]), keys.map((k) => hm[k]), 1e-9, 1e-9, 'metrics');
      const asy = await rolloutCorrectionAsync(dOld, dLp, dAdv, dW, o);
      track(asy.weights);
      track(asy.mask);
      expect(asy.metrics).toEqual(dev.metrics);
      const hl = policyLoss(c.logprobs, old, c.adv, host.mask, { seqLen: c.T, tokenWeights: host.weights });
      const dl = policyLoss(dLp, dOld, dAdv, outM, { seqLen: c.T, tokenWeights: outW });
      track(dl.gradLogprobs);
      sameResult(dl, hl, 'tokenWeights');
      const bad = up(c.weights.map((x, i) => (i === 7 ? -2 : x)));
      expect(() => rolloutCorrection(dOld, dLp, dAdv, bad, o)).toThrow(/mask\[7\]: expected a finite weight >= 0, received -2/);
      expect(() => rolloutCorrection(dOld, c.logprobs as never, dAdv, dW, o)).toThrow(/^rolloutLogprobs: expected a DeviceArray/);
    } finally {
      freeAll();
    }
  });
});
