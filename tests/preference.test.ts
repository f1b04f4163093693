import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ktoLoss,
  ktoLossAsync,
  preferenceLoss,
  preferenceLossAsync,
  tokenWeightedDpoLoss,
  tokenWeightedDpoLossAsync,
  type PreferenceLossOptions,
} from '../lib/preference/index.js';
import { defaultNumThreads, setNumThreads, setSimdLevel, simdLevel, type SimdLevel } from '../lib/runtime.js';
import { centralDiff, expectClose, randn, rng } from './helpers.js';
import {
  refKtoLoss,
  refPreferenceLoss,
  refTokenWeightedDpo,
  type RefPreferenceInputs,
  type RefPreferenceOptions,
} from './reference/preference.js';

const DETECTED = simdLevel().detected;
const ALL_LEVELS: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
/** Every SIMD level this CPU runs, best first (the vectorised sigmoid/simpo/cpo/bt path has one build per level). */
const LEVELS = ALL_LEVELS.slice(0, ALL_LEVELS.indexOf(DETECTED) + 1).reverse();
afterAll(() => {
  setNumThreads(defaultNumThreads());
  setSimdLevel(DETECTED);
});

const f64 = (a: ArrayLike<number>) => Float64Array.from(a);

interface Pairs {
  chosen: Float32Array;
  rejected: Float32Array;
  refChosen: Float32Array;
  refRejected: Float32Array;
  chosenLengths: Int32Array;
  rejectedLengths: Int32Array;
}

/** Log-prob sums of P pairs: negative, lengths 1..64, log-ratios of a few nats. */
function makePairs(p: number, seed: number): Pairs {
  const r = rng(seed);
  const chosenLengths = new Int32Array(p), rejectedLengths = new Int32Array(p);
  for (let i = 0; i < p; i++) {
    chosenLengths[i] = 1 + Math.floor(r() * 64);
    rejectedLengths[i] = 1 + Math.floor(r() * 64);
  }
  const nw = randn(p, 1, seed + 1), nl = randn(p, 1, seed + 2), dw = randn(p, 4, seed + 3), dl = randn(p, 4, seed + 4);
  const chosen = new Float32Array(p), rejected = new Float32Array(p), refChosen = new Float32Array(p), refRejected = new Float32Array(p);
  for (let i = 0; i < p; i++) {
    // average log-prob in about (-3, -0.05): valid for ORPO's log(1 - e^a)
    refChosen[i] = -chosenLengths[i] * (0.3 + 2 * r());
    refRejected[i] = -rejectedLengths[i] * (0.3 + 2 * r());
    chosen[i] = Math.min(refChosen[i] + dw[i] + nw[i], -0.05 * chosenLengths[i]);
    rejected[i] = Math.min(refRejected[i] + dl[i] + nl[i], -0.05 * rejectedLengths[i]);
  }
  return { chosen, rejected, refChosen, refRejected, chosenLengths, rejectedLengths };
}

interface Case {
  name: string;
  opts: PreferenceLossOptions;
  refOpts: RefPreferenceOptions;
  withRef: boolean;
  lengths: boolean;
  extra?: (x: Pairs) => Partial<PreferenceLossOptions>;
}

const CASES: Case[] = [
  { name: 'sigmoid (DPO)', opts: {}, refOpts: { loss: 'sigmoid', beta: 0.1 }, withRef: true, lengths: false },
  { name: 'sigmoid cDPO e=0.1', opts: { labelSmoothing: 0.1 }, refOpts: { loss: 'sigmoid', beta: 0.1, labelSmoothing: 0.1 }, withRef: true, lengths: false },
  { name: 'sigmoid reference-free beta=0.5', opts: { beta: 0.5 }, refOpts: { loss: 'sigmoid', beta: 0.5 }, withRef: false, lengths: false },
  { name: 'sigmoid cDPO reference-free e=0.25', opts: { labelSmoothing: 0.25 }, refOpts: { loss: 'sigmoid', beta: 0.1, labelSmoothing: 0.25 }, withRef: false, lengths: false },
  { name: 'robust e=0.3 reference-free', opts: { lossType: 'robust', labelSmoothing: 0.3 }, refOpts: { loss: 'robust', beta: 0.1, labelSmoothing: 0.3 }, withRef: false, lengths: false },
  { name: 'robust e=0', opts: { lossType: 'robust' }, refOpts: { loss: 'robust', beta: 0.1 }, withRef: true, lengths: false },
  { name: 'robust e=0.2', opts: { lossType: 'robust', labelSmoothing: 0.2 }, refOpts: { loss: 'robust', beta: 0.1, labelSmoothing: 0.2 }, withRef: true, lengths: false },
  { name: 'hinge', opts: { lossType: 'hinge', beta: 0.3 }, refOpts: { loss: 'hinge', beta: 0.3 }, withRef: true, lengths: false },
  { name: 'ipo', opts: { lossType: 'ipo' }, refOpts: { loss: 'ipo', beta: 0.1 }, withRef: true, lengths: true },
  { name: 'ipo reference-free', opts: { lossType: 'ipo', beta: 0.5 }, refOpts: { loss: 'ipo', beta: 0.5 }, withRef: false, lengths: true },
  { name: 'exo_pair e=0 (1e-3)', opts: { lossType: 'exo_pair' }, refOpts: { loss: 'exo_pair', beta: 0.1 }, withRef: true, lengths: false },
  { name: 'exo_pair e=0.1', opts: { lossType: 'exo_pair', labelSmoothing: 0.1 }, refOpts: { loss: 'exo_pair', beta: 0.1, labelSmoothing: 0.1 }, withRef: true, lengths: false },
  { name: 'nca_pair', opts: { lossType: 'nca_pair' }, refOpts: { loss: 'nca_pair', beta: 0.1 }, withRef: true, lengths: false },
  { name: 'bco_pair', opts: { lossType: 'bco_pair', beta: 0.2 }, refOpts: { loss: 'bco_pair', beta: 0.2 }, withRef: true, lengths: false },
  { name: 'sppo_hard', opts: { lossType: 'sppo_hard' }, refOpts: { loss: 'sppo_hard', beta: 0.1 }, withRef: true, lengths: false },
  { name: 'apo_zero', opts: { lossType: 'apo_zero' }, refOpts: { loss: 'apo_zero', beta: 0.1 }, withRef: true, lengths: false },
  { name: 'apo_down', opts: { lossType: 'apo_down', beta: 0.4 }, refOpts: { loss: 'apo_down', beta: 0.4 }, withRef: true, lengths: false },
  { name: 'discopop', opts: { lossType: 'discopop' }, refOpts: { loss: 'discopop', beta: 0.1, tau: 0.05 }, withRef: true, lengths: false },
  { name: 'discopop tau=0.5 beta=0.5', opts: { lossType: 'discopop', tau: 0.5, beta: 0.5 }, refOpts: { loss: 'discopop', beta: 0.5, tau: 0.5 }, withRef: true, lengths: false },
  { name: 'simpo defaults (beta 2, gamma 0.5)', opts: { lossType: 'simpo' }, refOpts: { loss: 'simpo', beta: 2, gamma: 0.5 }, withRef: false, lengths: true },
  { name: 'simpo e=0.1 gamma=1', opts: { lossType: 'simpo', labelSmoothing: 0.1, gamma: 1, beta: 2.5 }, refOpts: { loss: 'simpo', beta: 2.5, gamma: 1, labelSmoothing: 0.1 }, withRef: false, lengths: true },
  { name: 'cpo alpha=1', opts: { lossType: 'cpo' }, refOpts: { loss: 'cpo', beta: 0.1, alpha: 1 }, withRef: false, lengths: true },
  { name: 'cpo alpha=0 e=0.1 (no lengths)', opts: { lossType: 'cpo', alpha: 0, labelSmoothing: 0.1 }, refOpts: { loss: 'cpo', beta: 0.1, alpha: 0, labelSmoothing: 0.1 }, withRef: false, lengths: false },
  { name: 'orpo', opts: { lossType: 'orpo' }, refOpts: { loss: 'orpo', beta: 0.1 }, withRef: false, lengths: true },
  { name: 'orpo beta=1', opts: { lossType: 'orpo', beta: 1 }, refOpts: { loss: 'orpo', beta: 1 }, withRef: false, lengths: true },
  { name: 'bt', opts: { lossType: 'bt' }, refOpts: { loss: 'bt', beta: 0.1 }, withRef: false, lengths: false },
  { name: 'bt e=0.05 margin 0.5', opts: { lossType: 'bt', labelSmoothing: 0.05, margin: 0.5 }, refOpts: { loss: 'bt', beta: 0.1, labelSmoothing: 0.05 }, withRef: false, lengths: false },
  { name: 'bt per-pair margin', opts: { lossType: 'bt' }, refOpts: { loss: 'bt', beta: 0.1 }, withRef: false, lengths: false, extra: (x) => ({ margin: randn(x.chosen.length, 1, 77) }) },
  { name: 'bt soft labels', opts: { lossType: 'bt' }, refOpts: { loss: 'bt', beta: 0.1 }, withRef: false, lengths: false, extra: (x) => ({ preferenceProb: Float32Array.from(randn(x.chosen.length, 1, 78), (v) => 1 / (1 + Math.exp(-v))) }) },
  { name: 'sigmoid + RPO nllWeight=0.7', opts: { nllWeight: 0.7 }, refOpts: { loss: 'sigmoid', beta: 0.1, nllWeight: 0.7 }, withRef: true, lengths: true },
  { name: 'simpo + nllWeight=0.3', opts: { lossType: 'simpo', nllWeight: 0.3 }, refOpts: { loss: 'simpo', beta: 2, nllWeight: 0.3 }, withRef: false, lengths: true },
  { name: 'sigmoid forward_kl', opts: { fDivergence: 'forward_kl' }, refOpts: { loss: 'sigmoid', beta: 0.1, fDivergence: 'forward_kl' }, withRef: true, lengths: false },
  { name: 'sigmoid js_divergence e=0.1', opts: { fDivergence: 'js_divergence', labelSmoothing: 0.1 }, refOpts: { loss: 'sigmoid', beta: 0.1, labelSmoothing: 0.1, fDivergence: 'js_divergence' }, withRef: true, lengths: false },
  { name: 'sigmoid alpha_divergence 0.5', opts: { fDivergence: 'alpha_divergence', fAlpha: 0.5 }, refOpts: { loss: 'sigmoid', beta: 0.1, fDivergence: 'alpha_divergence', fAlpha: 0.5 }, withRef: true, lengths: false },
  { name: 'ipo js_divergence', opts: { lossType: 'ipo', fDivergence: 'js_divergence' }, refOpts: { loss: 'ipo', beta: 0.1, fDivergence: 'js_divergence' }, withRef: true, lengths: true },
  { name: 'hinge alpha_divergence default', opts: { lossType: 'hinge', fDivergence: 'alpha_divergence' }, refOpts: { loss: 'hinge', beta: 0.1, fDivergence: 'alpha_divergence' }, withRef: true, lengths: false },
];

function nativeOpts(c: Case, x: Pairs): PreferenceLossOptions {
  return {
    ...c.opts,
    ...(c.withRef ? { refChosenLogps: x.refChosen, refRejectedLogps: x.refRejected } : {}),
    ...(c.lengths ? { chosenLengths: x.chosenLengths, rejectedLengths: x.rejectedLengths } : {}),
    ...(c.extra ? c.extra(x) : {}),
  };
}

function refInputs(c: Case, x: Pairs, o: PreferenceLossOptions, chosen: ArrayLike<number>, rejected: ArrayLike<number>): RefPreferenceInputs {
  return {
    chosen,
    rejected,
    refChosen: c.withRef ? x.refChosen : undefined,
    refRejected: c.withRef ? x.refRejected : undefined,
    chosenLengths: c.lengths ? x.chosenLengths : undefined,
    rejectedLengths: c.lengths ? x.rejectedLengths : undefined,
    margin: o.margin,
    preferenceProb: o.preferenceProb,
  };
}

for (const level of LEVELS) describe(`preferenceLoss matches the float64 reference and finite differences (SIMD ${level})`, () => {
  beforeAll(() => setSimdLevel(level));
  afterAll(() => setSimdLevel(DETECTED));
  const P = 37;
  for (const [k, c] of CASES.entries()) {
    it(c.name, () => {
      const x = makePairs(P, 100 + 7 * k);
      const o = nativeOpts(c, x);
      const r = preferenceLoss(x.chosen, x.rejected, o);
      const e = refPreferenceLoss(refInputs(c, x, o, x.chosen, x.rejected), c.refOpts);
      expectClose(r.losses, e.losses, 1e-5, 1e-7, 'losses');
      expectClose([r.loss], [e.loss], 1e-9, 1e-12, 'loss');
      expectClose(r.chosenRewards, e.chosenRewards, 1e-6, 1e-7, 'chosenRewards');
      expectClose(r.rejectedRewards, e.rejectedRewards, 1e-6, 1e-7, 'rejectedRewards');
      expect(r.metrics.rewardAccuracy).toBeCloseTo(e.rewardAccuracy, 12);
      expectClose([r.metrics.rewardMargin], [e.rewardMargin], 1e-9, 1e-12, 'rewardMargin');
      // the loss varies across pairs: the test would notice a constant output
      expect(Math.max(...r.losses) - Math.min(...r.losses)).toBeGreaterThan(1e-6);
      // gradients of the mean loss against central differences of the float64 reference
      const cw = f64(x.chosen), cl = f64(x.rejected);
      const fw = (v: Float64Array) => refPreferenceLoss(refInputs(c, x, o, v, cl), c.refOpts).loss;
      const fl = (v: Float64Array) => refPreferenceLoss(refInputs(c, x, o, cw, v), c.refOpts).loss;
      const gw = Array.from({ length: P }, (_, i) => centralDiff(fw, cw, i));
      const gl = Array.from({ length: P }, (_, i) => centralDiff(fl, cl, i));
      const scale = Math.max(...gw.map(Math.abs), ...gl.map(Math.abs));
      expect(scale).toBeGreaterThan(0);
      expectClose(r.gradChosen, gw, 1e-5, 1e-7 * scale, 'gradChosen');
      expectClose(r.gradRejected, gl, 1e-5, 1e-7 * scale, 'gradRejected');
    });
  }
});

for (const level of LEVELS) describe(`preferenceLoss at extreme log-ratios (|c|, |rho| up to 1e3) (SIMD ${level})`, () => {
  beforeAll(() => setSimdLevel(level));
  afterAll(() => setSimdLevel(DETECTED));
  // every combination of chosen/rejected log-ratio in {-1e3, -30, 0, 30, 1e3}
  const vals = [-1000, -30, 0, 30, 1000];
  const P = vals.length * vals.length;
  const base = new Float32Array(P).fill(-1200);
  const chosen = new Float32Array(P), rejected = new Float32Array(P);
  vals.forEach((a, i) => vals.forEach((b, j) => {
    chosen[i * vals.length + j] = base[0] + a;
    rejected[i * vals.length + j] = base[0] + b;
  }));
  const lens = new Int32Array(P).fill(1);
  // ORPO needs avg log-probs < 0: there use avg in {-2e3, -1e3, -1, -1e-3, -1e-6}
  const ovals = [-2000, -1000, -1, -1e-3, -1e-6];
  const oc = new Float32Array(P), or = new Float32Array(P);
  ovals.forEach((a, i) => ovals.forEach((b, j) => {
    oc[i * ovals.length + j] = a;
    or[i * ovals.length + j] = b;
  }));
  for (const c of CASES) {
    it(c.name, () => {
      const isOrpo = c.refOpts.loss === 'orpo';
      const cw = isOrpo ? oc : c.withRef ? chosen : Float32Array.from(chosen, (v) => v - base[0]);
      const cl = isOrpo ? or : c.withRef ? rejected : Float32Array.from(rejected, (v) => v - base[0]);
      const x: Pairs = { chosen: cw, rejected: cl, refChosen: base, refRejected: base, chosenLengths: lens, rejectedLengths: lens };
      const o = nativeOpts(c, x);
      const r = preferenceLoss(cw, cl, o);
      const e = refPreferenceLoss(refInputs(c, x, o, cw, cl), c.refOpts);
      for (const a of [r.losses, r.gradChosen, r.gradRejected, r.chosenRewards, r.rejectedRewards]) {
        for (const v of a) expect(Number.isFinite(v)).toBe(true);
      }
      expect(Number.isFinite(r.loss)).toBe(true);
      expectClose(r.losses, e.losses, 1e-5, 1e-6, 'losses');
      expectClose([r.loss], [e.loss], 1e-6, 1e-6, 'loss');
    });
  }
});

for (const level of LEVELS) describe(`preferenceLoss propagates NaN (SIMD ${level})`, () => {
  beforeAll(() => setSimdLevel(level));
  afterAll(() => setSimdLevel(DETECTED));
  for (const c of CASES) {
    it(c.name, () => {
      const x = makePairs(19, 500);
      x.chosen[4] = NaN;
      const r = preferenceLoss(x.chosen, x.rejected, nativeOpts(c, x));
      expect(r.losses[4]).toBeNaN();
      expect(r.gradChosen[4]).toBeNaN();
      expect(r.gradRejected[4]).toBeNaN();
      expect(r.loss).toBeNaN();
      // the other pairs are untouched
      for (let i = 0; i < 19; i++) if (i !== 4) expect(Number.isFinite(r.losses[i]) && Number.isFinite(r.gradChosen[i])).toBe(true);
    });
  }
  it('+-Infinity log-probs give infinite or finite losses, never NaN, in sigmoid and simpo', () => {
    const chosen = Float32Array.of(-Infinity, -10, -5, -7, -3, -2, -1, -9, -4);
    const rejected = Float32Array.of(-10, -Infinity, -6, -8, -2, -3, -1, -9, -4);
    const lens = new Int32Array(9).fill(3);
    for (const o of [{}, { labelSmoothing: 0.1 }, { lossType: 'simpo' as const, chosenLengths: lens, rejectedLengths: lens }]) {
      const r = preferenceLoss(chosen, rejected, o);
      expect(r.losses[0]).toBe(Infinity);
      expect(r.losses[1]).toBe('labelSmoothing' in o ? Infinity : 0);
      for (const v of [...r.gradChosen, ...r.gradRejected]) expect(Number.isFinite(v)).toBe(true);
    }
  });
});

describe('preferenceLoss runtime behaviour', () => {
  it('gives bit-identical results for 1, 2 and 3 threads', () => {
    const x = makePairs(20011, 5);
    for (const loss of ['sigmoid', 'simpo', 'discopop'] as const) {
      const o: PreferenceLossOptions = loss === 'simpo'
        ? { lossType: loss, chosenLengths: x.chosenLengths, rejectedLengths: x.rejectedLengths }
        : { lossType: loss, refChosenLogps: x.refChosen, refRejectedLogps: x.refRejected };
      const runs = [1, 2, 3].map((t) => {
        setNumThreads(t);
        return preferenceLoss(x.chosen, x.rejected, o);
      });
      setNumThreads(defaultNumThreads());
      for (const r of runs.slice(1)) {
        expect(r.loss).toBe(runs[0].loss);
        expect(r.metrics).toEqual(runs[0].metrics);
        expect(Buffer.compare(Buffer.from(r.gradChosen.buffer), Buffer.from(runs[0].gradChosen.buffer))).toBe(0);
        expect(Buffer.compare(Buffer.from(r.losses.buffer), Buffer.from(runs[0].losses.buffer))).toBe(0);
      }
      const e = refPreferenceLoss({ chosen: x.chosen, rejected: x.rejected, refChosen: loss === 'simpo' ? undefined : x.refChosen, refRejected: loss === 'simpo' ? undefined : x.refRejected, chosenLengths: x.chosenLengths, rejectedLengths: x.rejectedLengths }, { loss, beta: loss === 'simpo' ? 2 : 0.1 });
      expectClose([runs[0].loss], [e.loss], 1e-9, 0, 'loss');
    }
  });

  it('has a Promise form with the same results', async () => {
    const x = makePairs(50, 9);
    const o = { refChosenLogps: x.refChosen, refRejectedLogps: x.refRejected, labelSmoothing: 0.1 };
    const a = preferenceLoss(x.chosen, x.rejected, o);
    const p = preferenceLossAsync(x.chosen, x.rejected, o);
    expect(p).toBeInstanceOf(Promise);
    const b = await p;
    expect(b.loss).toBe(a.loss);
    expect(Array.from(b.gradRejected)).toEqual(Array.from(a.gradRejected));
    expect(b.metrics).toEqual(a.metrics);
  });

  it('writes into caller-owned out buffers', () => {
    const x = makePairs(13, 11);
    const out = {
      losses: new Float32Array(13), chosenRewards: new Float32Array(13), rejectedRewards: new Float32Array(13),
      gradChosen: new Float32Array(13), gradRejected: new Float32Array(13),
    };
    const r = preferenceLoss(x.chosen, x.rejected, { refChosenLogps: x.refChosen, refRejectedLogps: x.refRejected, out });
    expect(r.losses).toBe(out.losses);
    expect(r.gradChosen).toBe(out.gradChosen);
    expect(r.gradRejected).toBe(out.gradRejected);
    expect(r.chosenRewards).toBe(out.chosenRewards);
    const fresh = preferenceLoss(x.chosen, x.rejected, { refChosenLogps: x.refChosen, refRejectedLogps: x.refRejected });
    expect(Array.from(out.gradChosen)).toEqual(Array.from(fresh.gradChosen));
    expect(() => preferenceLoss(x.chosen, x.rejected, { out: { losses: new Float32Array(12) } })).toThrow(/options\.out\.losses.*13.*12/);
  });

  it('rewardAccuracy and rewardMargin are the share and mean difference of the rewards', () => {
    const chosen = Float32Array.of(-1, -5, -3, -2), rejected = Float32Array.of(-2, -4, -3, -10);
    const r = preferenceLoss(chosen, rejected, { beta: 1 });
    expect(r.metrics.rewardAccuracy).toBe(0.5); // pairs 0 and 3
    expect(r.metrics.rewardMargin).toBeCloseTo((1 - 1 + 0 + 8) / 4, 12);
    expect(r.loss).toBeCloseTo((Math.log1p(Math.exp(-1)) + Math.log1p(Math.exp(1)) + Math.log(2) + Math.log1p(Math.exp(-8))) / 4, 12);
  });
});

describe('preferenceLoss rejects bad input, naming the argument', () => {
  const x = makePairs(8, 3);
  const ref = { refChosenLogps: x.refChosen, refRejectedLogps: x.refRejected };
  const lens = { chosenLengths: x.chosenLengths, rejectedLengths: x.rejectedLengths };
  const bad: [string, () => unknown, ErrorConstructor, RegExp][] = [
    ['unknown loss', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'dpo' as never }), RangeError, /options\.lossType.*'sigmoid'.*received string 'dpo'/],
    ['loss not a string', () => preferenceLoss(x.chosen, x.rejected, { lossType: 3 as never }), TypeError, /options\.lossType/],
    ['chosenLogps not a Float32Array', () => preferenceLoss(Float64Array.from(x.chosen) as never, x.rejected), TypeError, /chosenLogps: expected a Float32Array, received Float64Array\(8\)/],
    ['empty input', () => preferenceLoss(new Float32Array(0), new Float32Array(0)), RangeError, /chosenLogps.*at least one/],
    ['mismatched rejectedLogps', () => preferenceLoss(x.chosen, x.rejected.subarray(1)), RangeError, /rejectedLogps: expected length 8, received length 7/],
    ['mismatched refChosenLogps', () => preferenceLoss(x.chosen, x.rejected, { ...ref, refChosenLogps: new Float32Array(9) }), RangeError, /options\.refChosenLogps: expected length 8/],
    ['one reference array only', () => preferenceLoss(x.chosen, x.rejected, { refChosenLogps: x.refChosen }), TypeError, /options\.refRejectedLogps: expected both/],
    ['reference with a reference-free loss', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'simpo', ...ref, ...lens }), TypeError, /options\.refChosenLogps: loss 'simpo' is reference-free/],
    ['missing lengths for ipo', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'ipo', ...ref }), TypeError, /options\.chosenLengths:.*'ipo'.*Int32Array.*received undefined/],
    ['missing lengths for simpo', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'simpo', chosenLengths: x.chosenLengths }), TypeError, /options\.rejectedLengths:.*'simpo'/],
    ['missing lengths for orpo', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'orpo' }), TypeError, /options\.chosenLengths:.*'orpo'/],
    ['missing lengths for cpo NLL', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'cpo' }), TypeError, /options\.chosenLengths:.*CPO NLL/],
    ['missing lengths for nllWeight', () => preferenceLoss(x.chosen, x.rejected, { ...ref, nllWeight: 1 }), TypeError, /options\.chosenLengths:.*nllWeight/],
    ['mismatched lengths', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'ipo', ...ref, chosenLengths: new Int32Array(7).fill(1), rejectedLengths: x.rejectedLengths }), RangeError, /options\.chosenLengths: expected length 8, received length 7/],
    ['zero length', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'simpo', chosenLengths: x.chosenLengths, rejectedLengths: Int32Array.from(x.rejectedLengths, (v, i) => (i === 3 ? 0 : v)) }), RangeError, /options\.rejectedLengths\[3\]: expected a length >= 1, received 0/],
    ['lengths not Int32Array', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'ipo', ...ref, chosenLengths: new Float32Array(8) as never, rejectedLengths: x.rejectedLengths }), TypeError, /options\.chosenLengths: expected a Int32Array/],
    ['beta 0', () => preferenceLoss(x.chosen, x.rejected, { beta: 0 }), RangeError, /options\.beta: expected a finite positive number, received 0/],
    ['beta negative', () => preferenceLoss(x.chosen, x.rejected, { beta: -0.1 }), RangeError, /options\.beta.*-0\.1/],
    ['beta NaN', () => preferenceLoss(x.chosen, x.rejected, { beta: NaN }), RangeError, /options\.beta/],
    ['beta string', () => preferenceLoss(x.chosen, x.rejected, { beta: '0.1' as never }), TypeError, /options\.beta/],
    ['labelSmoothing negative', () => preferenceLoss(x.chosen, x.rejected, { labelSmoothing: -0.01 }), RangeError, /options\.labelSmoothing/],
    ['labelSmoothing 0.5 for robust', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'robust', labelSmoothing: 0.5 }), RangeError, /options\.labelSmoothing: expected a number in \[0, 0\.5\).*received 0\.5/],
    ['labelSmoothing 0.5 for sigmoid', () => preferenceLoss(x.chosen, x.rejected, { labelSmoothing: 0.5 }), RangeError, /options\.labelSmoothing/],
    ['labelSmoothing 0.7', () => preferenceLoss(x.chosen, x.rejected, { labelSmoothing: 0.7 }), RangeError, /options\.labelSmoothing.*0\.7/],
    ['labelSmoothing with hinge', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'hinge', labelSmoothing: 0.1 }), RangeError, /options\.labelSmoothing: loss 'hinge'/],
    ['unknown fDivergence', () => preferenceLoss(x.chosen, x.rejected, { fDivergence: 'kl' as never }), RangeError, /options\.fDivergence/],
    ['fDivergence with simpo', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'simpo', ...lens, fDivergence: 'js_divergence' }), RangeError, /options\.fDivergence:.*'simpo'/],
    ['fAlpha 0', () => preferenceLoss(x.chosen, x.rejected, { fDivergence: 'alpha_divergence', fAlpha: 0 }), RangeError, /options\.fAlpha/],
    ['tau 0', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'discopop', tau: 0 }), RangeError, /options\.tau/],
    ['negative nllWeight', () => preferenceLoss(x.chosen, x.rejected, { nllWeight: -1, ...lens }), RangeError, /options\.nllWeight/],
    ['margin with sigmoid', () => preferenceLoss(x.chosen, x.rejected, { margin: 1 }), TypeError, /options\.margin: only loss 'bt'/],
    ['preferenceProb out of [0, 1]', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'bt', preferenceProb: new Float32Array(8).fill(1.5) }), RangeError, /options\.preferenceProb\[0\].*1\.5/],
    ['preferenceProb with labelSmoothing', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'bt', labelSmoothing: 0.1, preferenceProb: new Float32Array(8) }), RangeError, /options\.labelSmoothing: soft labels/],
    ['options not an object', () => preferenceLoss(x.chosen, x.rejected, 3 as never), TypeError, /options: expected an options object/],
  ];
  for (const [name, fn, cls, re] of bad) {
    it(name, () => {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(cls);
      expect((err as Error).message).toMatch(re);
    });
  }
});

describe('ktoLoss', () => {
  const N = 41;
  const logp = randn(N, 3, 21), ref = randn(N, 3, 22);
  const desirable = Uint8Array.from({ length: N }, (_, i) => (i % 3 === 0 ? 0 : 1));
  for (const [name, o] of [
    ['defaults, referenced', { kl: 0.2, refLogps: ref }],
    ['weights 1.33 / 0.7, beta 0.5', { kl: 0.05, refLogps: ref, beta: 0.5, desirableWeight: 1.33, undesirableWeight: 0.7 }],
    ['reference-free', { kl: 0, beta: 0.3 }],
  ] as const) {
    it(`matches the reference and finite differences: ${name}`, () => {
      const r = ktoLoss(logp, { ...o, desirable });
      const e = refKtoLoss(logp, o.refLogps, desirable, { beta: 0.1, ...o });
      expectClose(r.losses, e.losses, 1e-5, 1e-7, 'losses');
      expectClose(r.rewards, e.rewards, 1e-6, 1e-7, 'rewards');
      expectClose([r.loss, r.metrics.desirableRewardMean, r.metrics.undesirableRewardMean], [e.loss, e.desirableRewardMean, e.undesirableRewardMean], 1e-9, 1e-12, 'scalars');
      const x = f64(logp);
      const g = Array.from({ length: N }, (_, i) => centralDiff((v) => refKtoLoss(v, o.refLogps, desirable, { beta: 0.1, ...o }).loss, x, i));
      expectClose(r.grad, g, 1e-5, 1e-9, 'grad');
    });
  }
  it('stays finite at log-ratios of +-1e3 and reports NaN means when a class is empty', () => {
    const lp = Float32Array.of(1000, -1000, 1000, -1000);
    const r = ktoLoss(lp, { kl: 0, desirable: Uint8Array.of(1, 1, 1, 1) });
    const e = refKtoLoss(lp, undefined, [1, 1, 1, 1], { beta: 0.1, kl: 0 });
    for (const v of [...r.losses, ...r.grad]) expect(Number.isFinite(v)).toBe(true);
    expectClose(r.losses, e.losses, 1e-5, 1e-7, 'losses');
    expect(r.metrics.undesirableRewardMean).toBeNaN();
    expect(r.metrics.desirableRewardMean).toBeCloseTo(0, 6);
  });
  it('has a Promise form and out buffers', async () => {
    const out = { losses: new Float32Array(N), rewards: new Float32Array(N), grad: new Float32Array(N) };
    const a = ktoLoss(logp, { kl: 0.1, desirable, refLogps: ref });
    const b = await ktoLossAsync(logp, { kl: 0.1, desirable, refLogps: ref, out });
    expect(b.grad).toBe(out.grad);
    expect(b.loss).toBe(a.loss);
    expect(Array.from(b.grad)).toEqual(Array.from(a.grad));
  });
  it('is bit-identical across thread counts', () => {
    const n = 30001;
    const lp = randn(n, 3, 31), d = Uint8Array.from({ length: n }, (_, i) => i & 1);
    const runs = [1, 2, 3].map((t) => {
      setNumThreads(t);
      return ktoLoss(lp, { kl: 0.1, desirable: d });
    });
    setNumThreads(defaultNumThreads());
    for (const r of runs) {
      expect(r.loss).toBe(runs[0].loss);
      expect(r.metrics).toEqual(runs[0].metrics);
    }
  });
  it('rejects bad input', () => {
    expect(() => ktoLoss(logp, { kl: 0 } as never)).toThrow(TypeError);
    expect(() => ktoLoss(logp, { kl: 0 } as never)).toThrow(/options\.desirable/);
    expect(() => ktoLoss(logp, { kl: 0, desirable: new Uint8Array(3) })).toThrow(/options\.desirable: expected length 41, received length 3/);
    expect(() => ktoLoss(logp, { desirable } as never)).toThrow(/options\.kl/);
    expect(() => ktoLoss(logp, { kl: 0, desirable, beta: 0 })).toThrow(RangeError);
    expect(() => ktoLoss(logp, { kl: 0, desirable, beta: 0 })).toThrow(/options\.beta/);
    expect(() => ktoLoss(logp, { kl: 0, desirable, refLogps: new Float32Array(40) })).toThrow(/options\.refLogps: expected length 41/);
    expect(() => ktoLoss(logp, { kl: 0, desirable, desirableWeight: -1 })).toThrow(/options\.desirableWeight/);
  });
});

describe('tokenWeightedDpoLoss (TGDPO)', () => {
  const B = 5, T = 7, NT = B * T;
  const r = rng(41);
  const mk = (seed: number, sd: number) => randn(NT, sd, seed);
  const chosen = mk(1, 1), rejected = mk(2, 1), refChosen = mk(3, 1), refRejected = mk(4, 1);
  const chosenTokenRewards = mk(5, 2), rejectedTokenRewards = mk(6, 2);
  const lensW = Array.from({ length: B }, () => 1 + Math.floor(r() * T));
  const lensL = Array.from({ length: B }, () => 1 + Math.floor(r() * T));
  const maskU8 = (lens: number[]) => Uint8Array.from({ length: NT }, (_, i) => (i % T < lens[Math.floor(i / T)] ? 1 : 0));
  const chosenMask = maskU8(lensW), rejectedMask = maskU8(lensL);
  const base = { seqLen: T, refChosenLogps: refChosen, refRejectedLogps: refRejected, chosenTokenRewards, rejectedTokenRewards };
  const refIn = (cw: ArrayLike<number>, cl: ArrayLike<number>, mw: ArrayLike<number>, ml: ArrayLike<number>) => ({
    chosen: cw, rejected: cl, refChosen, refRejected, chosenTokenRewards, rejectedTokenRewards, chosenMask: mw, rejectedMask: ml,
  });
  for (const [name, mw, ml, beta, alpha] of [
    ['u8 masks, defaults', chosenMask, rejectedMask, 0.1, 0.5],
    ['f32 weights, beta 0.5 alpha 1', Float32Array.from(chosenMask, (m, i) => m * (0.5 + (i % 3) / 4)), Float32Array.from(rejectedMask, (m) => m * 0.8), 0.5, 1],
  ] as const) {
    it(`matches the reference and finite differences: ${name}`, () => {
      const opts = { ...base, ...(beta === 0.1 ? {} : { beta, alpha }) };
      const res = tokenWeightedDpoLoss(chosen, rejected, mw, ml, opts);
      const e = refTokenWeightedDpo(refIn(chosen, rejected, mw, ml), T, beta, alpha);
      expectClose(res.losses, e.losses, 1e-5, 1e-7, 'losses');
      expectClose(res.chosenRewards, e.chosenRewards, 1e-5, 1e-7, 'chosenRewards');
      expectClose(res.rejectedRewards, e.rejectedRewards, 1e-5, 1e-7, 'rejectedRewards');
      expectClose([res.loss], [e.loss], 1e-9, 1e-12, 'loss');
      let acc = 0, margin = 0;
      for (let b = 0; b < B; b++) {
        acc += e.chosenRewards[b] > e.rejectedRewards[b] ? 1 : 0;
        margin += e.chosenRewards[b] - e.rejectedRewards[b];
      }
      expect(res.metrics.rewardAccuracy).toBeCloseTo(acc / B, 12);
      expect(res.metrics.rewardMargin).toBeCloseTo(margin / B, 9);
      const cw = f64(chosen), cl = f64(rejected);
      const gw = Array.from({ length: NT }, (_, i) => centralDiff((v) => refTokenWeightedDpo(refIn(v, cl, mw, ml), T, beta, alpha).loss, cw, i));
      const gl = Array.from({ length: NT }, (_, i) => centralDiff((v) => refTokenWeightedDpo(refIn(cw, v, mw, ml), T, beta, alpha).loss, cl, i));
      expectClose(res.gradChosen, gw, 1e-5, 1e-9, 'gradChosen');
      expectClose(res.gradRejected, gl, 1e-5, 1e-9, 'gradRejected');
      // padded tokens get exactly zero gradient
      for (let i = 0; i < NT; i++) if (mw[i] === 0) expect(res.gradChosen[i]).toBe(0);
    });
  }
  it('stays finite for token log-ratios of +-1e3', () => {
    const big = Float32Array.from({ length: NT }, (_, i) => (i % 2 ? 1000 : -1000));
    const zeros = new Float32Array(NT);
    const o = { ...base, refChosenLogps: zeros, refRejectedLogps: zeros };
    const res = tokenWeightedDpoLoss(big, Float32Array.from(big, (v) => -v), chosenMask, rejectedMask, o);
    const e = refTokenWeightedDpo({ ...refIn(big, Float32Array.from(big, (v) => -v), chosenMask, rejectedMask), refChosen: zeros, refRejected: zeros }, T, 0.1, 0.5);
    for (const v of [...res.losses, ...res.gradChosen, ...res.gradRejected]) expect(Number.isFinite(v)).toBe(true);
    expectClose(res.losses, e.losses, 1e-5, 1e-6, 'losses');
  });
  it('has a Promise form, out buffers and thread-count independence', async () => {
    const out = { gradChosen: new Float32Array(NT), losses: new Float32Array(B) };
    const opts = base;
    const a = tokenWeightedDpoLoss(chosen, rejected, chosenMask, rejectedMask, opts);
    const b = await tokenWeightedDpoLossAsync(chosen, rejected, chosenMask, rejectedMask, { ...opts, out });
    expect(b.gradChosen).toBe(out.gradChosen);
    expect(b.losses).toBe(out.losses);
    expect(b.loss).toBe(a.loss);
    expect(Array.from(b.gradRejected)).toEqual(Array.from(a.gradRejected));
    const Bb = 3001, Tt = 9;
    const big = { seqLen: Tt, refChosenLogps: randn(Bb * Tt, 1, 1), refRejectedLogps: randn(Bb * Tt, 1, 2), chosenTokenRewards: randn(Bb * Tt, 1, 3), rejectedTokenRewards: randn(Bb * Tt, 1, 4) };
    const ones = new Uint8Array(Bb * Tt).fill(1);
    const cw = randn(Bb * Tt, 1, 5), cl = randn(Bb * Tt, 1, 6);
    const runs = [1, 2, 3].map((t) => {
      setNumThreads(t);
      return tokenWeightedDpoLoss(cw, cl, ones, t === 2 ? null : ones, big); // null: every token counts
    });
    setNumThreads(defaultNumThreads());
    for (const r2 of runs) {
      expect(r2.loss).toBe(runs[0].loss);
      expect(r2.metrics).toEqual(runs[0].metrics);
    }
  });
  it('rejects bad input', () => {
    const opts = base;
    const cm = chosenMask, rm = rejectedMask;
    expect(() => tokenWeightedDpoLoss(chosen.subarray(1), rejected, cm, rm, opts)).toThrow(RangeError);
    expect(() => tokenWeightedDpoLoss(chosen.subarray(1), rejected, cm, rm, opts)).toThrow(/chosenLogps: expected a positive length that is a multiple of seqLen \(7\)/);
    expect(() => tokenWeightedDpoLoss(chosen, rejected.subarray(T), cm, rm, opts)).toThrow(/rejectedLogps: expected length 35, received length 28/);
    expect(() => tokenWeightedDpoLoss(chosen, rejected, cm, new Float32Array(NT), { ...opts })).toThrow(/^rejectedMask: expected a Uint8Array/);
    expect(() => tokenWeightedDpoLoss(chosen, rejected, [1, 2] as never, rm, { ...opts })).toThrow(/^chosenMask: expected a Uint8Array, a Float32Array or null, received Array\(2\)/);
    expect(() => tokenWeightedDpoLoss(chosen, rejected, cm, rm, { ...opts, beta: -1 })).toThrow(/options\.beta/);
    expect(() => tokenWeightedDpoLoss(chosen, rejected, cm, rm, { ...opts, seqLen: 0 })).toThrow(/options\.seqLen/);
    expect(() => tokenWeightedDpoLoss(chosen, rejected, cm, rm, { ...opts, chosenTokenRewards: undefined as never })).toThrow(/options\.chosenTokenRewards/);
    // the old call shape: masks in options, or options in the masks' place
    expect(() => tokenWeightedDpoLoss(chosen, rejected, cm, rm, { ...opts, chosenMask: cm } as never)).toThrow(
      /^options\.chosenMask: expected the chosen mask as a positional argument before options, tokenWeightedDpoLoss\(chosenLogps, rejectedLogps, chosenMask, rejectedMask, options\), not in options/,
    );
    expect(() => (tokenWeightedDpoLoss as (...a: unknown[]) => unknown)(chosen, rejected, { ...opts, chosenMask: cm, rejectedMask: rm })).toThrow(
      /^chosenMask: expected a mask or null before options/,
    );
  });
});
