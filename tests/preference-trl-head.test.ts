// preferenceLoss: the DPO loss types of TRL f2cd577 added after the first port ('sigmoid_norm',
// 'aot', 'aot_unpaired', 'sft'), lists of losses with lossWeights (MPO), and the two conventions of
// ipo / sigmoid_norm under an f-divergence (lengthAverage). Reference: tests/reference/preference.ts.
import { afterAll, describe, expect, it } from 'vitest';
import { ldDpoLogps, ldDpoLogpsAsync, preferenceLoss, preferenceLossAsync, type PreferenceLossOptions } from '../lib/index.js';
import { defaultNumThreads, setNumThreads } from '../lib/runtime.js';
import { centralDiff, expectClose, randn, rng } from './helpers.js';
import { refLdDpoLogps, refPreferenceLoss, type RefPreferenceInputs, type RefPreferenceOptions } from './reference/preference.js';

afterAll(() => setNumThreads(defaultNumThreads()));

const f64 = (a: ArrayLike<number>) => Float64Array.from(a);

interface Pairs {
  chosen: Float32Array;
  rejected: Float32Array;
  refChosen: Float32Array;
  refRejected: Float32Array;
  chosenLengths: Int32Array;
  rejectedLengths: Int32Array;
}

/** P pairs of sequence log-prob sums (lengths 1..64) with log-ratios of a few nats. */
function makePairs(p: number, seed: number, scale = 1): Pairs {
  const r = rng(seed);
  const chosenLengths = new Int32Array(p), rejectedLengths = new Int32Array(p);
  for (let i = 0; i < p; i++) {
    chosenLengths[i] = 1 + Math.floor(r() * 64);
    rejectedLengths[i] = 1 + Math.floor(r() * 64);
  }
  const dw = randn(p, 4 * scale, seed + 3), dl = randn(p, 4 * scale, seed + 4);
  const chosen = new Float32Array(p), rejected = new Float32Array(p), refChosen = new Float32Array(p), refRejected = new Float32Array(p);
  for (let i = 0; i < p; i++) {
    refChosen[i] = -chosenLengths[i] * (0.3 + 2 * r());
    refRejected[i] = -rejectedLengths[i] * (0.3 + 2 * r());
    chosen[i] = refChosen[i] + dw[i];
    rejected[i] = refRejected[i] + dl[i];
  }
  return { chosen, rejected, refChosen, refRejected, chosenLengths, rejectedLengths };
}

interface Case {
  name: string;
  opts: PreferenceLossOptions;
  ref: Omit<RefPreferenceOptions, 'beta'>;
  beta?: number;
  withRef?: boolean;
  lengths?: boolean;
}

const MPO = ['sigmoid', 'bco_pair', 'sft'] as const;
const CASES: Case[] = [
  { name: 'sigmoid_norm', opts: { lossType: 'sigmoid_norm' }, ref: { loss: 'sigmoid_norm' }, lengths: true },
  { name: 'sigmoid_norm beta=1 reference-free', opts: { lossType: 'sigmoid_norm', beta: 1 }, ref: { loss: 'sigmoid_norm' }, beta: 1, withRef: false, lengths: true },
  { name: 'sigmoid_norm forward_kl (score)', opts: { lossType: 'sigmoid_norm', fDivergence: 'forward_kl' }, ref: { loss: 'sigmoid_norm', fDivergence: 'forward_kl' }, lengths: true },
  { name: 'sigmoid_norm js_divergence log_ratio', opts: { lossType: 'sigmoid_norm', fDivergence: 'js_divergence', lengthAverage: 'log_ratio' }, ref: { loss: 'sigmoid_norm', fDivergence: 'js_divergence', lengthAverage: 'log_ratio' }, lengths: true },
  { name: 'ipo forward_kl (score, TRL f2cd577)', opts: { lossType: 'ipo', fDivergence: 'forward_kl' }, ref: { loss: 'ipo', fDivergence: 'forward_kl' }, lengths: true },
  { name: 'ipo js_divergence (score)', opts: { lossType: 'ipo', fDivergence: 'js_divergence', lengthAverage: 'score' }, ref: { loss: 'ipo', fDivergence: 'js_divergence' }, lengths: true },
  { name: 'ipo alpha_divergence 0.5 (score)', opts: { lossType: 'ipo', fDivergence: 'alpha_divergence', fAlpha: 0.5 }, ref: { loss: 'ipo', fDivergence: 'alpha_divergence', fAlpha: 0.5 }, lengths: true },
  { name: 'ipo alpha_divergence 0.5 log_ratio (TRL v0.19-v0.28)', opts: { lossType: 'ipo', fDivergence: 'alpha_divergence', fAlpha: 0.5, lengthAverage: 'log_ratio' }, ref: { loss: 'ipo', fDivergence: 'alpha_divergence', fAlpha: 0.5, lengthAverage: 'log_ratio' }, lengths: true },
  { name: 'aot', opts: { lossType: 'aot' }, ref: { loss: 'aot' } },
  { name: 'aot e=0.1 beta=0.5', opts: { lossType: 'aot', labelSmoothing: 0.1, beta: 0.5 }, ref: { loss: 'aot', labelSmoothing: 0.1 }, beta: 0.5 },
  { name: 'aot reference-free', opts: { lossType: 'aot' }, ref: { loss: 'aot' }, withRef: false },
  { name: 'aot_unpaired', opts: { lossType: 'aot_unpaired' }, ref: { loss: 'aot_unpaired' } },
  { name: 'aot_unpaired e=0.2 beta=0.3', opts: { lossType: 'aot_unpaired', labelSmoothing: 0.2, beta: 0.3 }, ref: { loss: 'aot_unpaired', labelSmoothing: 0.2 }, beta: 0.3 },
  { name: 'sft', opts: { lossType: 'sft' }, ref: { loss: 'sft' }, lengths: true },
  { name: 'sft + nllWeight 0.5', opts: { lossType: 'sft', nllWeight: 0.5 }, ref: { loss: 'sft', nllWeight: 0.5 }, lengths: true },
  { name: 'MPO [sigmoid, bco_pair, sft] [0.8, 0.2, 1]', opts: { lossType: MPO, lossWeights: [0.8, 0.2, 1.0] }, ref: { loss: MPO, lossWeights: [0.8, 0.2, 1.0] }, lengths: true },
  { name: 'list default weights [sigmoid, ipo]', opts: { lossType: ['sigmoid', 'ipo'] }, ref: { loss: ['sigmoid', 'ipo'] }, lengths: true },
  { name: 'list [aot, aot_unpaired, robust] e=0.1', opts: { lossType: ['aot', 'aot_unpaired', 'robust'], lossWeights: [1, -0.5, 2], labelSmoothing: 0.1 }, ref: { loss: ['aot', 'aot_unpaired', 'robust'], lossWeights: [1, -0.5, 2], labelSmoothing: 0.1 } },
  { name: 'list [sigmoid, sigmoid] (repeated entries add)', opts: { lossType: ['sigmoid', 'sigmoid'], lossWeights: [0.25, 0.5] }, ref: { loss: ['sigmoid', 'sigmoid'], lossWeights: [0.25, 0.5] } },
  { name: 'list [ipo, sigmoid_norm, discopop] js_divergence', opts: { lossType: ['ipo', 'sigmoid_norm', 'discopop'], fDivergence: 'js_divergence', tau: 0.2 }, ref: { loss: ['ipo', 'sigmoid_norm', 'discopop'], fDivergence: 'js_divergence', tau: 0.2 }, lengths: true },
  { name: 'list [apo_zero, nca_pair, exo_pair, hinge, sppo_hard, apo_down]', opts: { lossType: ['apo_zero', 'nca_pair', 'exo_pair', 'hinge', 'sppo_hard', 'apo_down'], lossWeights: [1, 2, 3, 0.5, 0.01, 1] }, ref: { loss: ['apo_zero', 'nca_pair', 'exo_pair', 'hinge', 'sppo_hard', 'apo_down'], lossWeights: [1, 2, 3, 0.5, 0.01, 1] } },
];

function native(c: Case, x: Pairs): PreferenceLossOptions {
  return {
    ...c.opts,
    ...(c.withRef !== false ? { refChosenLogps: x.refChosen, refRejectedLogps: x.refRejected } : {}),
    ...(c.lengths ? { chosenLengths: x.chosenLengths, rejectedLengths: x.rejectedLengths } : {}),
  };
}
function refIn(c: Case, x: Pairs, chosen: ArrayLike<number>, rejected: ArrayLike<number>): RefPreferenceInputs {
  return {
    chosen,
    rejected,
    refChosen: c.withRef !== false ? x.refChosen : undefined,
    refRejected: c.withRef !== false ? x.refRejected : undefined,
    chosenLengths: c.lengths ? x.chosenLengths : undefined,
    rejectedLengths: c.lengths ? x.rejectedLengths : undefined,
  };
}
const refOpts = (c: Case): RefPreferenceOptions => ({ ...c.ref, beta: c.beta ?? 0.1 });

/** Largest difference from the reference (losses relative to max(1, |ref|), gradients to max(1, their scale)), per loss (printed for the report). */
const worst: Record<string, number> = {};
afterAll(() => {
  console.log('preference TRL-head worst difference vs the float64 reference:', JSON.stringify(worst));
});

describe('preferenceLoss, TRL f2cd577 loss types: float64 reference and finite differences', () => {
  for (const P of [1, 2, 7, 37]) {
    for (const [k, c] of CASES.entries()) {
      it(`${c.name} (P=${P})`, () => {
        const x = makePairs(P, 300 + 13 * k + P);
        const r = preferenceLoss(x.chosen, x.rejected, native(c, x));
        const e = refPreferenceLoss(refIn(c, x, x.chosen, x.rejected), refOpts(c));
        expectClose(r.losses, e.losses, 1e-5, 1e-6, 'losses');
        expectClose([r.loss], [e.loss], 1e-9, 1e-10, 'loss');
        expectClose(r.chosenRewards, e.chosenRewards, 1e-6, 1e-7, 'chosenRewards');
        expectClose(r.rejectedRewards, e.rejectedRewards, 1e-6, 1e-7, 'rejectedRewards');
        expect(r.metrics.rewardAccuracy).toBeCloseTo(e.rewardAccuracy, 12);
        const cw = f64(x.chosen), cl = f64(x.rejected);
        const fw = (v: Float64Array) => refPreferenceLoss(refIn(c, x, v, cl), refOpts(c)).loss;
        const fl = (v: Float64Array) => refPreferenceLoss(refIn(c, x, cw, v), refOpts(c)).loss;
        const gw = Array.from({ length: P }, (_, i) => centralDiff(fw, cw, i));
        const gl = Array.from({ length: P }, (_, i) => centralDiff(fl, cl, i));
        const scale = Math.max(...gw.map(Math.abs), ...gl.map(Math.abs));
        expect(scale).toBeGreaterThan(0);
        expectClose(r.gradChosen, gw, 1e-5, 1e-7 * scale, 'gradChosen');
        expectClose(r.gradRejected, gl, 1e-5, 1e-7 * scale, 'gradRejected');
        // relative to max(1, |reference|) for the losses, to the gradient scale for the gradients
        const rel = (a: number, b: number, s: number) => Math.abs(a - b) / Math.max(1, s);
        let d = rel(r.loss, e.loss, Math.abs(e.loss));
        for (let i = 0; i < P; i++) {
          d = Math.max(d, rel(r.losses[i], e.losses[i], Math.abs(e.losses[i])), rel(r.gradChosen[i], gw[i], scale), rel(r.gradRejected[i], gl[i], scale));
        }
        const key = String(typeof c.opts.lossType === 'string' ? c.opts.lossType : 'list');
        worst[key] = Math.max(worst[key] ?? 0, d);
      });
    }
  }
});

describe('preferenceLoss, TRL f2cd577 loss types: semantics', () => {
  it('aot pairs the sorted policy log-ratios with the sorted reference log-ratios (a hand-worked batch)', () => {
    // policy log-ratios w - l: [3, -1, 1]; reference rw - rl: [0, 2, -2] -> sorted [-1, 1, 3] vs [-2, 0, 2]
    const chosen = Float32Array.of(-1, -4, -2), rejected = Float32Array.of(-4, -3, -3);
    const refChosen = Float32Array.of(-5, -1, -6), refRejected = Float32Array.of(-5, -3, -4);
    const r = preferenceLoss(chosen, rejected, { lossType: 'aot', beta: 1, refChosenLogps: refChosen, refRejectedLogps: refRejected });
    const sp = (z: number) => Math.log1p(Math.exp(-z)); // -log s(z)
    // every rank has delta 1; pair 1 (log-ratio -1) holds rank 0, pair 2 rank 1, pair 0 rank 2
    expectClose(r.losses, [sp(1), sp(1), sp(1)], 1e-7, 0, 'losses');
    expect(r.loss).toBeCloseTo(sp(1), 12);
    const g = -1 / (1 + Math.exp(1)) / 3;
    expectClose(r.gradChosen, [g, g, g], 1e-6, 0, 'gradChosen');
    expectClose(r.gradRejected, [-g, -g, -g], 1e-6, 0, 'gradRejected');
  });

  it('aot_unpaired sorts chosen and rejected log-ratios separately; a rejected gradient follows its own rank', () => {
    const chosen = Float32Array.of(0, 5), rejected = Float32Array.of(1, -3); // c = [0, 5], rho = [1, -3]
    const r = preferenceLoss(chosen, rejected, { lossType: 'aot_unpaired', beta: 1 });
    // sorted c [0, 5] vs sorted rho [-3, 1]: deltas 3 (rank 0), 4 (rank 1)
    const s = (z: number) => 1 / (1 + Math.exp(-z));
    expectClose(r.losses, [Math.log1p(Math.exp(-3)), Math.log1p(Math.exp(-4))], 1e-7, 0, 'losses');
    // rho_0 = 1 holds rank 1 (delta 4), rho_1 = -3 rank 0 (delta 3)
    expectClose(r.gradRejected, [s(-4) / 2, s(-3) / 2], 1e-6, 0, 'gradRejected');
    expectClose(r.gradChosen, [-s(-3) / 2, -s(-4) / 2], 1e-6, 0, 'gradChosen');
  });

  it('aot ties keep the pair order and NaN sorts last (as torch.sort)', () => {
    const chosen = Float32Array.of(-1, -1, NaN, -2), rejected = Float32Array.of(-2, -2, -2, -2);
    const r = preferenceLoss(chosen, rejected, { lossType: 'aot', beta: 1 });
    expect(Number.isNaN(r.loss)).toBe(true);
    expect(Number.isNaN(r.losses[2])).toBe(true);
    expect(Number.isFinite(r.losses[0]) && Number.isFinite(r.losses[1]) && Number.isFinite(r.losses[3])).toBe(true);
    // log-ratios [1, 1, NaN, 0] against reference 0s: ranks 1, 2, 3, 0
    expectClose([r.losses[0], r.losses[1], r.losses[3]], [Math.log1p(Math.exp(-1)), Math.log1p(Math.exp(-1)), Math.log(2)], 1e-7, 0, 'losses');
  });

  it('sft is the token mean of the chosen completions over the batch, the same for every pair', () => {
    const x = makePairs(9, 5);
    const r = preferenceLoss(x.chosen, x.rejected, { lossType: 'sft', chosenLengths: x.chosenLengths, rejectedLengths: x.rejectedLengths });
    const want = -x.chosen.reduce((a, b) => a + b, 0) / x.chosenLengths.reduce((a, b) => a + b, 0);
    expect(r.loss).toBeCloseTo(want, 9);
    for (const v of r.losses) expect(v).toBeCloseTo(want, 4);
    const tot = x.chosenLengths.reduce((a, b) => a + b, 0);
    for (const g of r.gradChosen) expect(g).toBeCloseTo(-1 / tot, 9);
    for (const g of r.gradRejected) expect(g).toBe(0);
  });

  it('a list equals the weighted sum of its single losses', () => {
    const x = makePairs(23, 8);
    const base = { refChosenLogps: x.refChosen, refRejectedLogps: x.refRejected, chosenLengths: x.chosenLengths, rejectedLengths: x.rejectedLengths };
    const mix = preferenceLoss(x.chosen, x.rejected, { ...base, lossType: [...MPO], lossWeights: [0.8, 0.2, 1.0] });
    const one = MPO.map((l) => preferenceLoss(x.chosen, x.rejected, { ...base, lossType: l }));
    expect(mix.loss).toBeCloseTo(0.8 * one[0].loss + 0.2 * one[1].loss + one[2].loss, 9);
    for (let i = 0; i < 23; i++) {
      expect(mix.gradChosen[i]).toBeCloseTo(0.8 * one[0].gradChosen[i] + 0.2 * one[1].gradChosen[i] + one[2].gradChosen[i], 7);
      expect(mix.gradRejected[i]).toBeCloseTo(0.8 * one[0].gradRejected[i] + 0.2 * one[1].gradRejected[i], 7);
    }
    // rewards are TRL's beta (w - rw) whatever the list
    expectClose(mix.chosenRewards, Array.from(x.chosen, (w, i) => 0.1 * (w - x.refChosen[i])), 1e-6, 1e-7, 'chosenRewards');
  });

  it("lengthAverage changes ipo only under an f-divergence ('score' and 'log_ratio' agree bit for bit under reverse_kl)", () => {
    const x = makePairs(31, 12);
    const base = { lossType: 'ipo' as const, refChosenLogps: x.refChosen, refRejectedLogps: x.refRejected, chosenLengths: x.chosenLengths, rejectedLengths: x.rejectedLengths };
    const a = preferenceLoss(x.chosen, x.rejected, { ...base, lengthAverage: 'score' });
    const b = preferenceLoss(x.chosen, x.rejected, { ...base, lengthAverage: 'log_ratio' });
    expect(Array.from(a.losses)).toEqual(Array.from(b.losses));
    expect(Array.from(a.gradChosen)).toEqual(Array.from(b.gradChosen));
    const c = preferenceLoss(x.chosen, x.rejected, { ...base, fDivergence: 'forward_kl' });
    const d = preferenceLoss(x.chosen, x.rejected, { ...base, fDivergence: 'forward_kl', lengthAverage: 'log_ratio' });
    expect(Math.abs(c.loss - d.loss)).toBeGreaterThan(1e-3);
  });
});

describe('preferenceLoss, TRL f2cd577 loss types: runtime', () => {
  const x = makePairs(9001, 21, 0.5);
  const all = { refChosenLogps: x.refChosen, refRejectedLogps: x.refRejected, chosenLengths: x.chosenLengths, rejectedLengths: x.rejectedLengths };
  const variants: PreferenceLossOptions[] = [
    { ...all, lossType: 'aot' },
    { ...all, lossType: 'aot_unpaired', labelSmoothing: 0.1 },
    { ...all, lossType: 'sft' },
    { ...all, lossType: 'sigmoid_norm', fDivergence: 'js_divergence' },
    { ...all, lossType: ['sigmoid', 'bco_pair', 'sft', 'aot'], lossWeights: [0.8, 0.2, 1, 0.3] },
  ];
  it('gives bit-identical results for 1, 2 and 3 threads', () => {
    for (const o of variants) {
      const runs = [1, 2, 3].map((t) => {
        setNumThreads(t);
        return preferenceLoss(x.chosen, x.rejected, o);
      });
      setNumThreads(defaultNumThreads());
      for (const r of runs.slice(1)) {
        expect(r.loss).toBe(runs[0].loss);
        expect(r.metrics).toEqual(runs[0].metrics);
        for (const k of ['losses', 'gradChosen', 'gradRejected', 'chosenRewards'] as const) {
          expect(Buffer.compare(Buffer.from(r[k].buffer), Buffer.from(runs[0][k].buffer))).toBe(0);
        }
      }
      const e = refPreferenceLoss({ chosen: x.chosen, rejected: x.rejected, refChosen: x.refChosen, refRejected: x.refRejected, chosenLengths: x.chosenLengths, rejectedLengths: x.rejectedLengths },
        { loss: o.lossType!, lossWeights: o.lossWeights, labelSmoothing: o.labelSmoothing, fDivergence: o.fDivergence, beta: 0.1 });
      expectClose([runs[0].loss], [e.loss], 1e-9, 1e-12, 'loss');
    }
  });

  it('has a Promise form and writes into caller-owned out buffers', async () => {
    const o = variants[4];
    const out = {
      losses: new Float32Array(9001), chosenRewards: new Float32Array(9001), rejectedRewards: new Float32Array(9001),
      gradChosen: new Float32Array(9001), gradRejected: new Float32Array(9001),
    };
    const a = preferenceLoss(x.chosen, x.rejected, o);
    const p = preferenceLossAsync(x.chosen, x.rejected, { ...o, out });
    expect(p).toBeInstanceOf(Promise);
    const b = await p;
    expect(b.losses).toBe(out.losses);
    expect(b.gradRejected).toBe(out.gradRejected);
    expect(b.loss).toBe(a.loss);
    expect(Array.from(out.gradChosen)).toEqual(Array.from(a.gradChosen));
  });
});

describe('preferenceLoss, TRL f2cd577 loss types: bad input', () => {
  const x = makePairs(8, 3);
  const ref = { refChosenLogps: x.refChosen, refRejectedLogps: x.refRejected };
  const lens = { chosenLengths: x.chosenLengths, rejectedLengths: x.rejectedLengths };
  const bad: [string, () => unknown, ErrorConstructor, RegExp][] = [
    ['empty list', () => preferenceLoss(x.chosen, x.rejected, { lossType: [] }), RangeError, /options\.lossType: expected a loss name or a non-empty list.*received \[\]/],
    ['unknown loss in a list', () => preferenceLoss(x.chosen, x.rejected, { lossType: ['sigmoid', 'dpo' as never] }), RangeError, /options\.lossType\[1\]: expected one of.*received string 'dpo'/],
    ['reference-free loss in a list', () => preferenceLoss(x.chosen, x.rejected, { lossType: ['sigmoid', 'simpo'] }), RangeError, /options\.lossType\[1\]: a list holds TRL's DPO loss types.*'simpo'/],
    ['lossWeights without a list', () => preferenceLoss(x.chosen, x.rejected, { lossWeights: [1] }), TypeError, /options\.lossWeights: applies to a list of losses only.*'sigmoid'/],
    ['lossWeights of the wrong length', () => preferenceLoss(x.chosen, x.rejected, { lossType: ['sigmoid', 'hinge'], lossWeights: [1] }), RangeError, /options\.lossWeights: expected one weight per loss \(2\), received 1/],
    ['lossWeights not an array', () => preferenceLoss(x.chosen, x.rejected, { lossType: ['sigmoid'], lossWeights: 1 as never }), TypeError, /options\.lossWeights: expected an array/],
    ['lossWeights NaN', () => preferenceLoss(x.chosen, x.rejected, { lossType: ['sigmoid', 'hinge'], lossWeights: [1, NaN] }), RangeError, /options\.lossWeights\[1\]/],
    ['sft without lengths', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'sft', ...ref }), TypeError, /options\.chosenLengths: the SFT loss averages over the chosen completion tokens \(loss 'sft'\)/],
    ['list with sft without lengths', () => preferenceLoss(x.chosen, x.rejected, { lossType: ['sigmoid', 'sft'], ...ref }), TypeError, /options\.chosenLengths:.*'sft' in the list.*\['sigmoid', 'sft'\]/],
    ['sigmoid_norm zero length', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'sigmoid_norm', ...ref, chosenLengths: Int32Array.from(x.chosenLengths, (v, i) => (i === 5 ? 0 : v)), rejectedLengths: x.rejectedLengths }), RangeError, /options\.chosenLengths\[5\]: expected a length >= 1, received 0/],
    ['labelSmoothing with sft', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'sft', ...lens, labelSmoothing: 0.1 }), RangeError, /options\.labelSmoothing: loss 'sft' takes no label smoothing/],
    ['labelSmoothing with a list that takes none', () => preferenceLoss(x.chosen, x.rejected, { lossType: ['hinge', 'sft'], ...lens, labelSmoothing: 0.1 }), RangeError, /options\.labelSmoothing: loss \['hinge', 'sft'\]/],
    ['fDivergence with aot', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'aot', fDivergence: 'forward_kl' }), RangeError, /options\.fDivergence:.*not to loss 'aot'/],
    ['lengthAverage with sigmoid', () => preferenceLoss(x.chosen, x.rejected, { lengthAverage: 'score' }), TypeError, /options\.lengthAverage: applies to loss 'ipo' or 'sigmoid_norm' only.*'sigmoid'/],
    ['unknown lengthAverage', () => preferenceLoss(x.chosen, x.rejected, { lossType: 'ipo', ...ref, ...lens, lengthAverage: 'sum' as never }), RangeError, /options\.lengthAverage: expected one of 'score', 'log_ratio'/],
    ['hidden mix weight key', () => preferenceLoss(x.chosen, x.rejected, { mix_sigmoid: 1 } as never), TypeError, /mix_sigmoid/],
  ];
  for (const [name, fn, cls, re] of bad) {
    it(name, async () => {
      for (const f of [fn, () => (fn as () => unknown)()]) {
        let err: unknown;
        try {
          f();
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(cls);
        expect((err as Error).message).toMatch(re);
      }
    });
  }
  it('the Promise form rejects the same way', async () => {
    await expect(preferenceLossAsync(x.chosen, x.rejected, { lossType: ['sigmoid'], lossWeights: [1, 2] })).rejects.toThrow(RangeError);
  });
});

// ---- ldDpoLogps (LD-DPO, TRL ld_alpha) -------------------------------------------------------------

/** P rows of T tokens: a prompt (mask 0), a completion of random length (maybe 0), padding (mask 0, -inf log-probs). */
function tokens(P: number, T: number, seed: number) {
  const r = rng(seed);
  const mk = () => {
    const x = new Float32Array(P * T), m = new Uint8Array(P * T);
    for (let b = 0; b < P; b++) {
      const start = Math.floor(r() * Math.min(3, T));
      const len = Math.floor(r() * (T - start + 1));
      for (let t = 0; t < T; t++) {
        const on = t >= start && t < start + len;
        m[b * T + t] = on ? 1 : 0;
        x[b * T + t] = on ? -3 * r() - 0.01 : t >= start + len ? -Infinity : -2 * r();
      }
    }
    return { x, m };
  };
  const c = mk(), l = mk();
  return { chosen: c.x, chosenMask: c.m, rejected: l.x, rejectedMask: l.m };
}

describe('ldDpoLogps (LD-DPO): float64 reference (TRL f2cd577) and finite differences', () => {
  for (const [P, T] of [[1, 1], [1, 9], [3, 7], [8, 33], [5, 64]] as const) {
    for (const alpha of [0, 0.3, 1]) {
      it(`P=${P} T=${T} alpha=${alpha}`, () => {
        const x = tokens(P, T, 17 * P + T);
        const r = ldDpoLogps(x.chosen, x.rejected, x.chosenMask, x.rejectedMask, { seqLen: T, alpha, returnWeights: true });
        const e = refLdDpoLogps(x.chosen, x.rejected, x.chosenMask, x.rejectedMask, T, alpha);
        expectClose(r.chosenLogps, e.chosen, 1e-6, 1e-6, 'chosenLogps');
        expectClose(r.rejectedLogps, e.rejected, 1e-6, 1e-6, 'rejectedLogps');
        let d = 0;
        for (let i = 0; i < P; i++) d = Math.max(d, Math.abs(r.chosenLogps[i] - e.chosen[i]) / Math.max(1, Math.abs(e.chosen[i])), Math.abs(r.rejectedLogps[i] - e.rejected[i]) / Math.max(1, Math.abs(e.rejected[i])));
        worst.ldDpoLogps = Math.max(worst.ldDpoLogps ?? 0, d);
        // weights = d logps / d token, against central differences of the reference (finite tokens)
        for (const side of ['chosen', 'rejected'] as const) {
          const base = f64(x[side]);
          const w = side === 'chosen' ? r.chosenWeights! : r.rejectedWeights!;
          for (let k = 0; k < P * T; k++) {
            if (!Number.isFinite(base[k])) {
              expect(w[k]).toBe(0);
              continue;
            }
            const b = Math.floor(k / T);
            const f = (v: Float64Array) => {
              const o = side === 'chosen'
                ? refLdDpoLogps(v, x.rejected, x.chosenMask, x.rejectedMask, T, alpha)
                : refLdDpoLogps(x.chosen, v, x.chosenMask, x.rejectedMask, T, alpha);
              return o[side][b];
            };
            expect(Math.abs(w[k] - centralDiff(f, base, k))).toBeLessThan(1e-6);
          }
        }
      });
    }
  }

  it('alpha = 1 is the masked sum; masks null count every token; masked -inf tokens never leak', () => {
    const x = tokens(6, 11, 5);
    const r = ldDpoLogps(x.chosen, x.rejected, x.chosenMask, x.rejectedMask, { seqLen: 11, alpha: 1 });
    for (let b = 0; b < 6; b++) {
      let s = 0;
      for (let t = 0; t < 11; t++) if (x.chosenMask[b * 11 + t]) s += x.chosen[b * 11 + t];
      expect(r.chosenLogps[b]).toBeCloseTo(s, 5);
      expect(Number.isFinite(r.rejectedLogps[b])).toBe(true);
    }
    const a = Float32Array.of(-1, -2, -3, -4), z = Float32Array.of(-1, -1, -5, -5);
    const n = ldDpoLogps(a, z, null, null, { seqLen: 2, alpha: 0.5 });
    expect(Array.from(n.chosenLogps)).toEqual([-3, -7]);
    // a longer chosen completion: its verbose tail is scaled by alpha (hand-worked)
    const h = ldDpoLogps(Float32Array.of(-1, -2, -4, -8), Float32Array.of(-1, -1, 0, 0), null, Uint8Array.of(1, 1, 0, 0), { seqLen: 4, alpha: 0.25 });
    expect(h.chosenLogps[0]).toBe(-1 - 2 + 0.25 * (-4 - 8));
    expect(h.rejectedLogps[0]).toBe(-2);
  });

  it('chains into preferenceLoss: the token gradient gradChosen[i] * weight matches finite differences of the composed loss', () => {
    const P = 4, T = 9, alpha = 0.4;
    const x = tokens(P, T, 44), ref = tokens(P, T, 45);
    // the reference read through the policy's masks: finite everywhere
    ref.chosen = ref.chosen.map((v) => (Number.isFinite(v) ? v : -1));
    ref.rejected = ref.rejected.map((v) => (Number.isFinite(v) ? v : -1));
    const rc = ldDpoLogps(ref.chosen, ref.rejected, x.chosenMask, x.rejectedMask, { seqLen: T, alpha });
    const ld = ldDpoLogps(x.chosen, x.rejected, x.chosenMask, x.rejectedMask, { seqLen: T, alpha, returnWeights: true });
    const r = preferenceLoss(ld.chosenLogps, ld.rejectedLogps, { refChosenLogps: rc.chosenLogps, refRejectedLogps: rc.rejectedLogps, beta: 0.5 });
    const composed = (v: Float64Array) => {
      const s = refLdDpoLogps(v, x.rejected, x.chosenMask, x.rejectedMask, T, alpha);
      return refPreferenceLoss({ chosen: s.chosen, rejected: s.rejected, refChosen: rc.chosenLogps, refRejected: rc.rejectedLogps }, { loss: 'sigmoid', beta: 0.5 }).loss;
    };
    const base = f64(x.chosen);
    for (let k = 0; k < P * T; k++) {
      if (!Number.isFinite(base[k])) continue;
      const g = r.gradChosen[Math.floor(k / T)] * ld.chosenWeights![k];
      expect(Math.abs(g - centralDiff(composed, base, k))).toBeLessThan(1e-6);
    }
  });

  it('is bit-identical for 1, 2 and 3 threads, has a Promise form and writes into out buffers', async () => {
    const P = 3001, T = 13;
    const x = tokens(P, T, 9);
    const runs = [1, 2, 3].map((t) => {
      setNumThreads(t);
      return ldDpoLogps(x.chosen, x.rejected, x.chosenMask, x.rejectedMask, { seqLen: T, alpha: 0.7, returnWeights: true });
    });
    setNumThreads(defaultNumThreads());
    for (const r of runs.slice(1)) {
      expect(Buffer.compare(Buffer.from(r.chosenLogps.buffer), Buffer.from(runs[0].chosenLogps.buffer))).toBe(0);
      expect(Buffer.compare(Buffer.from(r.rejectedLogps.buffer), Buffer.from(runs[0].rejectedLogps.buffer))).toBe(0);
    }
    const out = { chosenLogps: new Float32Array(P), rejectedLogps: new Float32Array(P), chosenWeights: new Float32Array(P * T), rejectedWeights: new Float32Array(P * T) };
    const p = ldDpoLogpsAsync(x.chosen, x.rejected, x.chosenMask, x.rejectedMask, { seqLen: T, alpha: 0.7, returnWeights: true, out });
    expect(p).toBeInstanceOf(Promise);
    const a = await p;
    expect(a.chosenLogps).toBe(out.chosenLogps);
    expect(a.rejectedWeights).toBe(out.rejectedWeights);
    expect(Array.from(out.rejectedLogps)).toEqual(Array.from(runs[0].rejectedLogps));
    expect(Array.from(out.chosenWeights)).toEqual(Array.from(runs[0].chosenWeights!));
    const plain = ldDpoLogps(x.chosen, x.rejected, x.chosenMask, x.rejectedMask, { seqLen: T, alpha: 0.7 });
    expect(plain.chosenWeights).toBeUndefined();
  });

  const x = tokens(4, 6, 3);
  const bad: [string, () => unknown, ErrorConstructor, RegExp][] = [
    ['alpha missing', () => ldDpoLogps(x.chosen, x.rejected, null, null, { seqLen: 6 } as never), TypeError, /options\.alpha: expected a number in \[0, 1\].*received undefined/],
    ['alpha > 1', () => ldDpoLogps(x.chosen, x.rejected, null, null, { seqLen: 6, alpha: 1.5 }), RangeError, /options\.alpha.*1\.5/],
    ['alpha NaN', () => ldDpoLogps(x.chosen, x.rejected, null, null, { seqLen: 6, alpha: NaN }), RangeError, /options\.alpha/],
    ['seqLen missing', () => ldDpoLogps(x.chosen, x.rejected, null, null, { alpha: 0.5 } as never), TypeError, /options\.seqLen/],
    ['seqLen not a divisor', () => ldDpoLogps(x.chosen, x.rejected, null, null, { seqLen: 7, alpha: 0.5 }), RangeError, /options\.seqLen: expected a divisor of the length of chosenTokenLogps \(24\), received 7/],
    ['empty input', () => ldDpoLogps(new Float32Array(0), new Float32Array(0), null, null, { seqLen: 1, alpha: 0.5 }), RangeError, /options\.seqLen.*\(0\)/],
    ['rejected of another length', () => ldDpoLogps(x.chosen, x.rejected.subarray(1), null, null, { seqLen: 6, alpha: 0.5 }), RangeError, /rejectedTokenLogps: expected length 24, received length 23/],
    ['f32 mask', () => ldDpoLogps(x.chosen, x.rejected, new Float32Array(24) as never, null, { seqLen: 6, alpha: 0.5 }), TypeError, /chosenMask: expected a Uint8Array \(1 = completion token\) or null, received Float32Array/],
    ['mask of another length', () => ldDpoLogps(x.chosen, x.rejected, null, new Uint8Array(5), { seqLen: 6, alpha: 0.5 }), RangeError, /rejectedMask: expected length 24/],
    ['weights buffer without returnWeights', () => ldDpoLogps(x.chosen, x.rejected, null, null, { seqLen: 6, alpha: 0.5, out: { chosenWeights: new Float32Array(24) } }), TypeError, /options\.out\.chosenWeights: expected no buffer without options\.returnWeights/],
    ['out of the wrong length', () => ldDpoLogps(x.chosen, x.rejected, null, null, { seqLen: 6, alpha: 0.5, out: { chosenLogps: new Float32Array(3) } }), RangeError, /options\.out\.chosenLogps: expected length 4, received length 3/],
    ['unknown option', () => ldDpoLogps(x.chosen, x.rejected, null, null, { seqLen: 6, alpha: 0.5, ldAlpha: 1 } as never), TypeError, /ldAlpha/],
  ];
  for (const [name, fn, cls, re] of bad) {
    it(`rejects: ${name}`, async () => {
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
