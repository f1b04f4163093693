// preferenceLoss / ktoLoss / tokenWeightedDpoLoss on DeviceArrays (cuda/preference.h through
// native/cuda_binding/preference.cc).
//
// Runs where a CUDA device is visible: a GPU, or the host emulation built as a module and named by
// REWARD_KERNELS_CUDA_MODULE (docs/cuda.md). One numeric smoke check per op against the CPU kernel
// (every slot filled, so a wiring error shows), then out buffers, the Async forms, bad lengths (the
// host path's RangeError) and host/device mixing (TypeError naming the argument). CUDA vs CPU parity
// over every loss and modifier is rk_driver cuda-check's (native/driver/parity.cc).
import { describe, expect, it } from 'vitest';
import { cuda, DeviceArray } from '../lib/cuda.js';
import {
  ktoLoss,
  ktoLossAsync,
  ldDpoLogps,
  ldDpoLogpsAsync,
  preferenceLoss,
  preferenceLossAsync,
  tokenWeightedDpoLoss,
  tokenWeightedDpoLossAsync,
} from '../lib/preference/index.js';
import { expectClose, randn, rejected, rng, thrown } from './helpers.js';

const available = cuda.isAvailable();

function uploader() {
  const made: DeviceArray[] = [];
  const up = (a: Float32Array | Uint8Array | Int32Array): DeviceArray => {
    const d = cuda.upload(a as Float32Array);
    made.push(d);
    return d;
  };
  const track = (...ds: (DeviceArray | undefined)[]) => ds.forEach((d) => d && made.push(d));
  const freeAll = () => made.forEach((d) => d.free());
  return { up, track, freeAll };
}

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

function sameArrays(dev: Record<string, unknown>, host: Record<string, unknown>, keys: string[], label: string) {
  for (const k of keys) {
    const h = host[k] as Float32Array;
    const d = dev[k] as DeviceArray;
    expect(d, `${label} ${k}`).toBeInstanceOf(DeviceArray);
    expect(d.dtype).toBe('f32');
    expectClose(d.download() as Float32Array, h, 1e-5, 1e-6 * maxAbs(h) + 1e-12, `${label} ${k}`);
  }
}

function sameScalars(dev: Record<string, number>, host: Record<string, number>, label: string) {
  const keys = Object.keys(host).sort();
  expect(Object.keys(dev).sort()).toEqual(keys);
  expectClose(keys.map((k) => dev[k]), keys.map((k) => host[k]), 1e-5, 1e-9, `${label} ${keys.join(',')}`);
}

const PAIR_KEYS = ['losses', 'chosenRewards', 'rejectedRewards', 'gradChosen', 'gradRejected'];

function pairs(P: number, seed: number) {
  const r = rng(seed);
  const chosen = randn(P, 20, seed).map((x) => -Math.abs(x) - 5);
  const rejected = randn(P, 20, seed + 1).map((x) => -Math.abs(x) - 5);
  const refChosen = chosen.map((x, i) => x + 3 * Math.sin(i + seed));
  const refRejected = rejected.map((x, i) => x + 3 * Math.cos(i * 1.3 + seed));
  const chosenLengths = Int32Array.from({ length: P }, () => 1 + Math.floor(r() * 300));
  const rejectedLengths = Int32Array.from({ length: P }, () => 1 + Math.floor(r() * 300));
  const margin = randn(P, 0.5, seed + 2);
  const prob = Float32Array.from({ length: P }, () => r());
  return { chosen, rejected, refChosen, refRejected, chosenLengths, rejectedLengths, margin, prob };
}

describe.skipIf(!available)('preferenceLoss on DeviceArrays', () => {
  it('smoke: agrees with the CPU kernel (sigmoid with refs, lengths and NLL; bt with margin and probability arrays)', () => {
    const P = 37;
    const c = pairs(P, 7);
    const { up, track, freeAll } = uploader();
    try {
      const d = {
        chosen: up(c.chosen), rejected: up(c.rejected), refChosen: up(c.refChosen), refRejected: up(c.refRejected),
        chosenLengths: up(c.chosenLengths), rejectedLengths: up(c.rejectedLengths), margin: up(c.margin), prob: up(c.prob),
      };
      const calls: [string, Record<string, unknown>, Record<string, unknown>][] = [
        [
          'sigmoid',
          { lossType: 'sigmoid', nllWeight: 0.3, fDivergence: 'alpha_divergence', fAlpha: 0.7, refChosenLogps: c.refChosen, refRejectedLogps: c.refRejected, chosenLengths: c.chosenLengths, rejectedLengths: c.rejectedLengths },
          { lossType: 'sigmoid', nllWeight: 0.3, fDivergence: 'alpha_divergence', fAlpha: 0.7, refChosenLogps: d.refChosen, refRejectedLogps: d.refRejected, chosenLengths: d.chosenLengths, rejectedLengths: d.rejectedLengths },
        ],
        ['bt', { lossType: 'bt', margin: c.margin, preferenceProb: c.prob }, { lossType: 'bt', margin: d.margin, preferenceProb: d.prob }],
      ];
      for (const [label, hostOpts, devOpts] of calls) {
        const host = preferenceLoss(c.chosen, c.rejected, hostOpts);
        const dev = preferenceLoss(d.chosen, d.rejected, devOpts);
        track(dev.losses, dev.chosenRewards, dev.rejectedRewards, dev.gradChosen, dev.gradRejected);
        expect(Number.isFinite(host.loss), label).toBe(true);
        sameArrays(dev as never, host as never, PAIR_KEYS, label);
        expectClose([dev.loss], [host.loss], 1e-5, 1e-9, `${label} loss`);
        sameScalars(dev.metrics, host.metrics, label);
      }
    } finally {
      freeAll();
    }
  });

  it('writes out buffers, repeats bit for bit, and the Async form agrees', async () => {
    const P = 300;
    const c = pairs(P, 13);
    const { up, freeAll } = uploader();
    try {
      const [ch, rj, rc, rr] = [up(c.chosen), up(c.rejected), up(c.refChosen), up(c.refRejected)];
      const outs = Object.fromEntries(PAIR_KEYS.map((k) => [k, up(new Float32Array(P).fill(NaN))]));
      const host = preferenceLoss(c.chosen, c.rejected, { lossType: 'robust', labelSmoothing: 0.2, refChosenLogps: c.refChosen, refRejectedLogps: c.refRejected });
      const dev = preferenceLoss(ch, rj, { lossType: 'robust', labelSmoothing: 0.2, refChosenLogps: rc, refRejectedLogps: rr, out: outs });
      for (const k of PAIR_KEYS) expect((dev as unknown as Record<string, unknown>)[k]).toBe(outs[k]);
      sameArrays(dev as never, host as never, PAIR_KEYS, 'out');
      const first = outs.gradChosen.download();
      const pending = preferenceLossAsync(ch, rj, { lossType: 'robust', labelSmoothing: 0.2, refChosenLogps: rc, refRejectedLogps: rr });
      expect(() => ch.free()).toThrow(/pending Async/);
      const a = await pending;
      try {
        expect(a.loss).toBe(dev.loss);
        expect(a.metrics).toEqual(dev.metrics);
        expect(Array.from(a.gradChosen.download())).toEqual(Array.from(first));
      } finally {
        for (const k of PAIR_KEYS) ((a as unknown as Record<string, DeviceArray>)[k]).free();
      }
    } finally {
      freeAll();
    }
  });

  it('a length < 1 where the loss uses it is the host RangeError (sync and Async)', async () => {
    const P = 50;
    const c = pairs(P, 17);
    const { up, freeAll } = uploader();
    try {
      for (const [which, idx] of [['chosenLengths', 31], ['rejectedLengths', 9]] as const) {
        const lw = c.chosenLengths.slice(), ll = c.rejectedLengths.slice();
        (which === 'chosenLengths' ? lw : ll)[idx] = which === 'chosenLengths' ? 0 : -4;
        const hostErr = thrown(() => preferenceLoss(c.chosen, c.rejected, { lossType: 'simpo', chosenLengths: lw, rejectedLengths: ll }));
        expect(hostErr).toBeInstanceOf(RangeError);
        const [ch, rj, dlw, dll] = [up(c.chosen), up(c.rejected), up(lw), up(ll)];
        const devErr = thrown(() => preferenceLoss(ch, rj, { lossType: 'simpo', chosenLengths: dlw, rejectedLengths: dll }));
        expect(devErr).toBeInstanceOf(RangeError);
        expect(devErr.message).toBe(hostErr.message);
        expect(devErr.message).toContain(`options.${which}[${idx}]`);
        const asyncErr = await rejected(preferenceLossAsync(ch, rj, { lossType: 'simpo', chosenLengths: dlw, rejectedLengths: dll }));
        expect(asyncErr).toBeInstanceOf(RangeError);
        expect(asyncErr.message).toBe(hostErr.message);
      }
    } finally {
      freeAll();
    }
  });

  it('host and device arrays cannot be mixed; dtypes, lengths and option rules are checked', () => {
    const P = 8;
    const c = pairs(P, 19);
    const { up, freeAll } = uploader();
    try {
      const [ch, rj, rc, lw] = [up(c.chosen), up(c.rejected), up(c.refChosen), up(c.chosenLengths)];
      const cases: [() => unknown, ErrorConstructor, string][] = [
        [() => preferenceLoss(ch, c.rejected as unknown as DeviceArray), TypeError, 'rejectedLogps'],
        [() => preferenceLoss(ch, rj, { refChosenLogps: c.refChosen as unknown as DeviceArray, refRejectedLogps: rc }), TypeError, 'options.refChosenLogps'],
        [() => preferenceLoss(ch, rj, { lossType: 'simpo', chosenLengths: c.chosenLengths as unknown as DeviceArray, rejectedLengths: lw }), TypeError, 'options.chosenLengths'],
        [() => preferenceLoss(ch, rj, { lossType: 'simpo', chosenLengths: lw }), TypeError, 'options.rejectedLengths'],
        [() => preferenceLoss(ch, rj, { lossType: 'simpo', chosenLengths: rc, rejectedLengths: lw }), TypeError, 'options.chosenLengths'],
        [() => preferenceLoss(ch, rj, { out: { losses: new Float32Array(P) as unknown as DeviceArray } }), TypeError, 'options.out.losses'],
        [() => preferenceLoss(ch, rj, { out: { gradRejected: up(new Float32Array(P + 1)) } }), RangeError, 'options.out.gradRejected'],
        [() => preferenceLoss(ch, up(new Float32Array(P - 1))), RangeError, 'rejectedLogps'],
        [() => preferenceLoss(ch, rj, { refChosenLogps: rc }), TypeError, 'options.refRejectedLogps'],
        [() => preferenceLoss(ch, rj, { lossType: 'bt', preferenceProb: new Float32Array(P) as unknown as DeviceArray }), TypeError, 'options.preferenceProb'],
        [() => preferenceLoss(ch, rj, { lossType: 'sigmoid', margin: 0.5 }), TypeError, 'options.margin'],
        [() => preferenceLoss(ch, rj, { beta: -1 }), RangeError, 'options.beta'],
        [() => preferenceLoss(c.chosen, rj as unknown as Float32Array), TypeError, 'rejectedLogps'],
        [() => preferenceLoss(c.chosen, c.rejected, { out: { losses: up(new Float32Array(P)) as unknown as Float32Array } }), TypeError, 'options.out.losses'],
      ];
      for (const [call, Cls, name] of cases) {
        const err = thrown(call);
        expect(err, name).toBeInstanceOf(Cls);
        expect(err.message, name).toContain(name);
      }
    } finally {
      freeAll();
    }
  });
});

describe.skipIf(!available)('ktoLoss on DeviceArrays', () => {
  it('matches the CPU kernel, with and without ref, out buffers, Async, mixing', async () => {
    const N = 777;
    const r = rng(3);
    const logp = randn(N, 10, 5).map((x) => -Math.abs(x));
    const ref = logp.map((x, i) => x + Math.sin(i));
    const desirable = Uint8Array.from({ length: N }, () => (r() < 0.4 ? 1 : 0));
    const { up, track, freeAll } = uploader();
    try {
      const [dl, dr, dd] = [up(logp), up(ref), up(desirable)];
      for (const withRef of [false, true]) {
        const opts = { kl: 0.3, beta: 0.2, desirableWeight: 1.3, undesirableWeight: 0.8 };
        const host = ktoLoss(logp, { ...opts, desirable, refLogps: withRef ? ref : undefined });
        const dev = ktoLoss(dl, { ...opts, desirable: dd, refLogps: withRef ? dr : undefined });
        track(dev.losses, dev.rewards, dev.grad);
        sameArrays(dev as never, host as never, ['losses', 'rewards', 'grad'], `kto ref=${withRef}`);
        expectClose([dev.loss], [host.loss], 1e-5, 1e-9, 'kto loss');
        sameScalars(dev.metrics, host.metrics, 'kto');
      }
      // all undesirable: the desirable mean is NaN on both
      const none = new Uint8Array(N);
      const hostNone = ktoLoss(logp, { kl: 0, desirable: none });
      const devNone = ktoLoss(dl, { kl: 0, desirable: up(none) });
      track(devNone.losses, devNone.rewards, devNone.grad);
      expect(hostNone.metrics.desirableRewardMean).toBeNaN();
      expect(devNone.metrics.desirableRewardMean).toBeNaN();
      expectClose([devNone.metrics.undesirableRewardMean], [hostNone.metrics.undesirableRewardMean], 1e-5, 1e-9, 'kto undesirable mean');

      const grad = up(new Float32Array(N).fill(NaN));
      const withOut = ktoLoss(dl, { kl: 0.1, desirable: dd, out: { grad } });
      track(withOut.losses, withOut.rewards);
      expect(withOut.grad).toBe(grad);
      const a = await ktoLossAsync(dl, { kl: 0.1, desirable: dd });
      track(a.losses, a.rewards, a.grad);
      expect(a.loss).toBe(withOut.loss);
      expect(Array.from(a.grad.download())).toEqual(Array.from(grad.download()));

      const cases: [() => unknown, ErrorConstructor, string][] = [
        [() => ktoLoss(dl, { kl: 0, desirable: desirable as unknown as DeviceArray }), TypeError, 'options.desirable'],
        [() => ktoLoss(dl, { kl: 0, desirable: dl }), TypeError, 'options.desirable'],
        [() => ktoLoss(dl, { kl: 0, desirable: dd, refLogps: ref as unknown as DeviceArray }), TypeError, 'options.refLogps'],
        [() => ktoLoss(dl, { kl: 0, desirable: up(new Uint8Array(N - 1)) }), RangeError, 'options.desirable'],
        [() => ktoLoss(dl, { kl: NaN, desirable: dd }), RangeError, 'options.kl'],
        [() => ktoLoss(logp, { kl: 0, desirable: dd as unknown as Uint8Array }), TypeError, 'options.desirable'],
      ];
      for (const [call, Cls, name] of cases) {
        const err = thrown(call);
        expect(err, name).toBeInstanceOf(Cls);
        expect(err.message, name).toContain(name);
      }
    } finally {
      freeAll();
    }
  });
});

describe.skipIf(!available)('tokenWeightedDpoLoss on DeviceArrays', () => {
  it('matches the CPU kernel with u8 and f32 masks, out buffers, Async, mixing', async () => {
    const B = 5, T = 300, nt = B * T;
    const r = rng(29);
    const cw = randn(nt, 1, 1).map((x) => -Math.abs(x));
    const cl = randn(nt, 1, 2).map((x) => -Math.abs(x));
    const host0 = {
      refChosenLogps: cw.map((x, i) => x + 0.3 * Math.sin(i)),
      refRejectedLogps: cl.map((x, i) => x + 0.3 * Math.cos(i)),
      chosenTokenRewards: randn(nt, 1, 3),
      rejectedTokenRewards: randn(nt, 1, 4),
    };
    const mu8w = Uint8Array.from({ length: nt }, (_, i) => (i % T < 20 + ((i / T) | 0) * 50 ? 1 : 0));
    const mu8l = Uint8Array.from({ length: nt }, (_, i) => (i % T < 250 - ((i / T) | 0) * 30 ? 1 : 0));
    const mf32w = Float32Array.from(mu8w, (m) => m * (0.5 + r()));
    const mf32l = Float32Array.from(mu8l, (m) => m * (0.5 + r()));
    const { up, track, freeAll } = uploader();
    try {
      const [dcw, dcl] = [up(cw), up(cl)];
      const dev0 = {
        refChosenLogps: up(host0.refChosenLogps),
        refRejectedLogps: up(host0.refRejectedLogps),
        chosenTokenRewards: up(host0.chosenTokenRewards),
        rejectedTokenRewards: up(host0.rejectedTokenRewards),
      };
      for (const [mw, ml] of [[mu8w, mu8l], [mf32w, mf32l]] as const) {
        const label = `tgdpo ${mw.constructor.name}`;
        const host = tokenWeightedDpoLoss(cw, cl, mw, ml, { seqLen: T, ...host0, beta: 0.2, alpha: 0.7 });
        const dev = tokenWeightedDpoLoss(dcw, dcl, up(mw), up(ml), { seqLen: T, ...dev0, beta: 0.2, alpha: 0.7 });
        track(dev.losses, dev.chosenRewards, dev.rejectedRewards, dev.gradChosen, dev.gradRejected);
        expect(dev.losses.length).toBe(B);
        expect(dev.gradChosen.length).toBe(nt);
        sameArrays(dev as never, host as never, PAIR_KEYS, label);
        expectClose([dev.loss], [host.loss], 1e-5, 1e-9, `${label} loss`);
        sameScalars(dev.metrics, host.metrics, label);
      }
      const dmw = up(mu8w), dml = up(mu8l);
      const losses = up(new Float32Array(B).fill(NaN));
      const s = tokenWeightedDpoLoss(dcw, dcl, dmw, dml, { seqLen: T, ...dev0, out: { losses } });
      track(s.chosenRewards, s.rejectedRewards, s.gradChosen, s.gradRejected);
      expect(s.losses).toBe(losses);
      const a = await tokenWeightedDpoLossAsync(dcw, dcl, dmw, dml, { seqLen: T, ...dev0 });
      track(a.losses, a.chosenRewards, a.rejectedRewards, a.gradChosen, a.gradRejected);
      expect(a.loss).toBe(s.loss);
      expect(Array.from(a.gradRejected.download())).toEqual(Array.from(s.gradRejected.download()));

      const cases: [() => unknown, ErrorConstructor, string][] = [
        [() => tokenWeightedDpoLoss(dcw, cl as unknown as DeviceArray, dmw, dml, { seqLen: T, ...dev0 }), TypeError, 'rejectedLogps'],
        [() => tokenWeightedDpoLoss(dcw, dcl, dmw, dml, { seqLen: T, ...dev0, chosenTokenRewards: host0.chosenTokenRewards as unknown as DeviceArray }), TypeError, 'options.chosenTokenRewards'],
        [() => tokenWeightedDpoLoss(dcw, dcl, dmw, up(mf32l), { seqLen: T, ...dev0 }), TypeError, 'rejectedMask'],
        [() => tokenWeightedDpoLoss(dcw, dcl, dmw, dml, { seqLen: T, ...dev0, out: { gradChosen: up(new Float32Array(B)) } }), RangeError, 'options.out.gradChosen'],
        [() => tokenWeightedDpoLoss(dcw, dcl, dmw, dml, { seqLen: 7, ...dev0 }), RangeError, 'chosenLogps'],
        [() => tokenWeightedDpoLoss(cw, cl, dmw as unknown as Uint8Array, mu8l, { seqLen: T, ...host0 }), TypeError, 'chosenMask'],
      ];
      for (const [call, Cls, name] of cases) {
        const err = thrown(call);
        expect(err, name).toBeInstanceOf(Cls);
        expect(err.message, name).toContain(name);
      }
    } finally {
      freeAll();
    }
  });
});

describe('preference device path without a device', () => {
  it.skipIf(available)('the host API is unaffected', () => {
    const r = preferenceLoss(new Float32Array([-1]), new Float32Array([-2]), { lossType: 'bt' });
    expectClose([r.loss], [Math.log1p(Math.exp(-1))], 1e-6, 0, 'bt loss');
  });
});

describe.skipIf(!available)('TRL f2cd577 loss types and ldDpoLogps on DeviceArrays', () => {
  it('smoke: sigmoid_norm, aot, aot_unpaired, sft and the MPO list agree with the CPU kernel', () => {
    const P = 41;
    const c = pairs(P, 23);
    const { up, track, freeAll } = uploader();
    try {
      const d = {
        chosen: up(c.chosen), rejected: up(c.rejected), refChosen: up(c.refChosen), refRejected: up(c.refRejected),
        chosenLengths: up(c.chosenLengths), rejectedLengths: up(c.rejectedLengths),
      };
      const variants: Record<string, unknown>[] = [
        { lossType: 'sigmoid_norm', fDivergence: 'js_divergence' },
        { lossType: 'ipo', fDivergence: 'forward_kl', lengthAverage: 'score' },
        { lossType: 'aot', labelSmoothing: 0.1 },
        { lossType: 'aot_unpaired' },
        { lossType: 'sft' },
        { lossType: ['sigmoid', 'bco_pair', 'sft', 'aot', 'aot_unpaired'], lossWeights: [0.8, 0.2, 1, 0.5, 0.25] },
      ];
      for (const v of variants) {
        const label = JSON.stringify(v.lossType);
        const host = preferenceLoss(c.chosen, c.rejected, { ...v, refChosenLogps: c.refChosen, refRejectedLogps: c.refRejected, chosenLengths: c.chosenLengths, rejectedLengths: c.rejectedLengths });
        const dev = preferenceLoss(d.chosen, d.rejected, { ...v, refChosenLogps: d.refChosen, refRejectedLogps: d.refRejected, chosenLengths: d.chosenLengths, rejectedLengths: d.rejectedLengths });
        track(dev.losses, dev.chosenRewards, dev.rejectedRewards, dev.gradChosen, dev.gradRejected);
        expect(Number.isFinite(host.loss), label).toBe(true);
        sameArrays(dev as never, host as never, PAIR_KEYS, label);
        expectClose([dev.loss], [host.loss], 1e-5, 1e-9, `${label} loss`);
      }
    } finally {
      freeAll();
    }
  });

  it('ldDpoLogps: agrees with the CPU kernel (masks, weights), and the Async form', async () => {
    const P = 7, T = 19;
    const r = rng(5);
    const x = randn(P * T, 1, 3).map((v) => -Math.abs(v)), y = randn(P * T, 1, 4).map((v) => -Math.abs(v));
    const mx = Uint8Array.from({ length: P * T }, () => (r() < 0.7 ? 1 : 0)), my = Uint8Array.from({ length: P * T }, () => (r() < 0.5 ? 1 : 0));
    const { up, track, freeAll } = uploader();
    try {
      const host = ldDpoLogps(x, y, mx, my, { seqLen: T, alpha: 0.3, returnWeights: true });
      const dev = ldDpoLogps(up(x), up(y), up(mx), up(my), { seqLen: T, alpha: 0.3, returnWeights: true });
      track(dev.chosenLogps, dev.rejectedLogps, dev.chosenWeights, dev.rejectedWeights);
      sameArrays(dev as never, host as never, ['chosenLogps', 'rejectedLogps', 'chosenWeights', 'rejectedWeights'], 'ldDpoLogps');
      const a = await ldDpoLogpsAsync(up(x), up(y), null, null, { seqLen: T, alpha: 0.3 });
      track(a.chosenLogps, a.rejectedLogps);
      expect(a.chosenWeights).toBeUndefined();
      const h2 = ldDpoLogps(x, y, null, null, { seqLen: T, alpha: 0.3 });
      sameArrays(a as never, h2 as never, ['chosenLogps', 'rejectedLogps'], 'ldDpoLogps no masks');
      expect(thrown(() => ldDpoLogps(up(x), y as never, null, null, { seqLen: T, alpha: 0.3 })).message).toMatch(/^rejectedTokenLogps/);
    } finally {
      freeAll();
    }
  });
});
