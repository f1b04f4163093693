// rolloutCorrection against its float64 reference (tests/reference/rollout-correction.ts): every
// mode, bound, batch normalisation, the off-policy mask, every rejection criterion, awkward sizes,
// thread-count determinism, the Promise form, out buffers, the policyLoss hand-off, and bad input.
import { afterAll, describe, expect, it } from 'vitest';
import {
  defaultNumThreads,
  policyLoss,
  rolloutCorrection,
  rolloutCorrectionAsync,
  setNumThreads,
  type RolloutCorrectionOptions,
  type RolloutCorrectionResult,
} from '../lib/index.js';
import { expectClose, randn, rng } from './helpers.js';
import { refPolicyLoss } from './reference/policy.js';
import { refRolloutCorrection, type RcCriterion, type RcMode, type RefRcOptions } from './reference/rollout-correction.js';

afterAll(() => setNumThreads(defaultNumThreads()));

const MODES: RcMode[] = ['token_truncate', 'token_mask', 'sequence_truncate', 'sequence_mask', 'none'];
const CRITERIA: RcCriterion[] = [
  'token_k1', 'token_k2', 'token_k3', 'seq_sum_k1', 'seq_sum_k2', 'seq_sum_k3',
  'seq_mean_k1', 'seq_mean_k2', 'seq_mean_k3', 'seq_max_k2', 'seq_max_k3',
];

interface Case {
  B: number;
  T: number;
  trainer: Float32Array;
  rollout: Float32Array;
  advRow: Float32Array;
  advTok: Float32Array;
  mask: Uint8Array | Float32Array | null;
}

/**
 * Log-probs in (-6, 0); rollout = trainer + noise of scale `spread` (a few tokens far off, beyond
 * the +-20 safety bound when `extreme`); right-padded masks with one empty row (B > 1).
 */
function makeCase(B: number, T: number, seed: number, o: { mask?: 'u8' | 'f32' | 'none'; spread?: number; extreme?: boolean } = {}): Case {
  const n = B * T, r = rng(seed), noise = randn(n, 1, seed + 1);
  const trainer = new Float32Array(n), rollout = new Float32Array(n);
  const spread = o.spread ?? 0.15;
  for (let i = 0; i < n; i++) {
    trainer[i] = -6 * r() - 1e-3;
    let dd = spread * noise[i];
    if (i % 11 === 4) dd *= 8;
    if (o.extreme && i % 13 === 6) dd = i % 2 ? 25 : -30;
    rollout[i] = trainer[i] - dd;
  }
  let mask: Uint8Array | Float32Array | null = null;
  if (o.mask !== 'none') {
    mask = o.mask === 'f32' ? new Float32Array(n) : new Uint8Array(n);
    for (let b = 0; b < B; b++) {
      const len = B > 1 && b === 1 ? 0 : 1 + Math.floor(r() * T);
      for (let t = 0; t < len; t++) mask[b * T + t] = o.mask === 'f32' ? 0.25 + r() : 1;
    }
  }
  return { B, T, trainer, rollout, advRow: randn(B, 1, seed + 2), advTok: randn(n, 1, seed + 3), mask };
}

let worstWeight = 0;
let worstMetric = 0;

function check(c: Case, opts: Omit<RolloutCorrectionOptions, 'seqLen'>, adv: Float32Array | null = null): RolloutCorrectionResult {
  const got = rolloutCorrection(c.trainer, c.rollout, adv, c.mask, { seqLen: c.T, ...opts });
  const ro: RefRcOptions = {
    seqLen: c.T,
    mode: opts.mode ?? 'token_truncate',
    clipMin: opts.clipMin ?? 0,
    clipMax: opts.clipMax === undefined ? 2 : opts.clipMax,
    batchNormalize: opts.batchNormalize ?? false,
    offPolicyMaskThreshold: opts.offPolicyMaskThreshold,
    rejection: (opts.rejection ?? {}) as RefRcOptions['rejection'],
  };
  const want = refRolloutCorrection(c.trainer, c.rollout, adv, c.mask, ro);
  const label = JSON.stringify(opts);
  if (want.weights) {
    expect(got.weights, label).toBeInstanceOf(Float32Array);
    expectClose(got.weights!, want.weights, 2e-7, 1e-30, `${label} weights`);
    for (let i = 0; i < want.weights.length; i++) {
      const e = want.weights[i];
      if (e !== 0) worstWeight = Math.max(worstWeight, Math.abs(got.weights![i] - e) / Math.abs(e));
    }
  } else {
    expect(got.weights, label).toBeUndefined();
  }
  expect(Array.from(got.mask), `${label} mask`).toEqual(Array.from(want.mask, (x) => Math.fround(x)));
  expect(Object.keys(got.metrics).sort(), `${label} metric names`).toEqual(Object.keys(want.metrics).sort());
  const names = Object.keys(want.metrics);
  const g = names.map((k) => (got.metrics as unknown as Record<string, number>)[k]);
  const w = names.map((k) => want.metrics[k]);
  for (let k = 0; k < names.length; k++) {
    // isStd is verl's sqrt(E[c^2] - E[c]^2): it cancels when the spread is tiny (sqrt(eps) * E[c] absolute)
    expectClose([g[k]], [w[k]], 1e-9, names[k] === 'isStd' ? 1e-7 : 1e-12, `${label} metrics.${names[k]}`);
    if (Number.isFinite(w[k]) && w[k] !== 0 && names[k] !== 'isStd') worstMetric = Math.max(worstMetric, Math.abs(g[k] - w[k]) / Math.abs(w[k]));
  }
  return got;
}

describe('rolloutCorrection vs the float64 reference', () => {
  const cases = [
    makeCase(5, 37, 1),
    makeCase(4, 29, 2, { mask: 'f32', spread: 0.4 }),
    makeCase(3, 23, 3, { mask: 'none', extreme: true }),
    makeCase(1, 1, 4),
    makeCase(1, 53, 5, { spread: 0.05 }),
    makeCase(7, 1, 6, { mask: 'none' }),
    makeCase(3, 2051, 7, { spread: 0.02 }),
  ];

  it('every mode with the default and explicit clip bounds, and batch normalisation', () => {
    let truncated = 0, zeroed = 0;
    for (const c of cases) for (const mode of MODES) {
      check(c, { mode });
      if (mode === 'none') continue;
      const r = check(c, { mode, clipMin: 0.5, clipMax: 3 });
      for (const x of r.weights!) {
        if (x === 3 || x === 0.5) truncated++;
        if (x === 0) zeroed++;
      }
      check(c, { mode, clipMax: null });
      check(c, { mode, clipMin: 0.9, clipMax: null });
      check(c, { mode, batchNormalize: true });
      check(c, { mode, clipMin: 0.8, clipMax: 1.25, batchNormalize: true });
    }
    expect(truncated).toBeGreaterThan(0);
    expect(zeroed).toBeGreaterThan(0);
  });

  it('the off-policy sequence mask (TRL off_policy_mask_threshold), per-sequence and per-token advantages', () => {
    let masked = 0;
    for (const c of cases) for (const mode of MODES) for (const delta of [0, 0.01, -0.05, 0.5]) {
      const r = check(c, { mode, offPolicyMaskThreshold: delta }, c.advRow);
      masked += r.metrics.offPolicyMaskedFraction!;
      check(c, mode === 'none' ? { mode, offPolicyMaskThreshold: delta } : { mode, offPolicyMaskThreshold: delta, clipMax: 3 }, c.advTok);
    }
    expect(masked).toBeGreaterThan(0);
  });

  it('every rejection criterion alone, with one and two bounds, and all together', () => {
    let rejected = 0;
    for (const c of cases) {
      for (const k of CRITERIA) {
        const thr = k.startsWith('token') ? (k === 'token_k1' ? 1.3 : 0.02) : k.startsWith('seq_sum') ? (k === 'seq_sum_k1' ? 2 : 0.3) : k.startsWith('seq_mean') ? (k === 'seq_mean_k1' ? 1.02 : 0.01) : 0.05;
        const r = check(c, { mode: 'none', rejection: { [k]: thr } });
        rejected += r.metrics.rsMaskedFraction!;
        if (k.endsWith('k1')) check(c, { mode: 'token_truncate', rejection: { [k]: [0.9, 1.5] } });
      }
      check(c, {
        mode: 'sequence_truncate',
        offPolicyMaskThreshold: 0.01,
        rejection: { token_k1: [0.5, 2], token_k3: 0.5, seq_sum_k2: 1, seq_mean_k3: 0.05, seq_max_k2: 0.3, seq_mean_k1: 1.1 },
      }, c.advRow);
    }
    expect(rejected).toBeGreaterThan(0);
  });

  it('records the largest differences from the reference', () => {
    // weights are f32 roundings of the double result (2^-24 relative); metrics are double sums
    expect(worstWeight).toBeLessThan(2e-7);
    expect(worstMetric).toBeLessThan(1e-9);
    console.log(`rolloutCorrection vs float64 reference: weights max rel ${worstWeight.toExponential(2)}, metrics max rel ${worstMetric.toExponential(2)}`);
  });
});

describe('rolloutCorrection exact values (the peers\' formulas by hand)', () => {
  // Two sequences of three tokens, the last token of row 1 padding.
  const trainer = new Float32Array([-1, -1, -1, -2, -2, -2]);
  const rollout = new Float32Array([-1.5, -0.5, -1, -2.25, -2.25, -9]);
  const mask = new Uint8Array([1, 1, 1, 1, 1, 0]);
  const e = Math.exp;

  it('TRL token_truncate / token_mask with clip_max 1.5 (default clip_min: none)', () => {
    const tt = rolloutCorrection(trainer, rollout, null, mask, { seqLen: 3, mode: 'token_truncate', clipMax: 1.5 });
    expectClose(tt.weights!, [1.5, e(-0.5), 1, e(0.25), e(0.25), 0], 1e-7, 0, 'token_truncate');
    const tm = rolloutCorrection(trainer, rollout, null, mask, { seqLen: 3, mode: 'token_mask', clipMax: 1.5 });
    expectClose(tm.weights!, [0, e(-0.5), 1, e(0.25), e(0.25), 0], 1e-7, 0, 'token_mask');
    expect(tt.mask).toEqual(new Float32Array([1, 1, 1, 1, 1, 0]));
  });

  it('TRL sequence_mask (its default) with clip_max 3: row 0 (ratio 1) kept, row 1 (e^0.5) kept, then masked with clip_max 1.5', () => {
    const s3 = rolloutCorrection(trainer, rollout, null, mask, { seqLen: 3, mode: 'sequence_mask', clipMax: 3 });
    expectClose(s3.weights!, [1, 1, 1, e(0.5), e(0.5), 0], 1e-7, 0, 'sequence_mask 3');
    const s15 = rolloutCorrection(trainer, rollout, null, mask, { seqLen: 3, mode: 'sequence_mask', clipMax: 1.5 });
    expectClose(s15.weights!, [1, 1, 1, 0, 0, 0], 0, 0, 'sequence_mask 1.5');
    expectClose([s15.metrics.isRatioMin!, s15.metrics.isRatioMean!, s15.metrics.isRatioMax!], [0, 0.5, 1], 1e-12, 0, 'TRL ratio stats');
  });

  it('verl sequence level with batch normalisation: mean over the two sequences', () => {
    const r = rolloutCorrection(trainer, rollout, null, mask, { seqLen: 3, mode: 'sequence_truncate', batchNormalize: true });
    // verl: the mean over non-empty sequences of each one's masked mean (sum w m / (sum m + 1e-8))
    const mean = (3 / (3 + 1e-8) + (2 * e(0.5)) / (2 + 1e-8)) / 2;
    expectClose([r.metrics.isBatchNormFactor!], [mean], 1e-12, 0, 'factor');
    expectClose(r.weights!, [1 / mean, 1 / mean, 1 / mean, e(0.5) / mean, e(0.5) / mean, 0], 1e-6, 0, 'normalised');
  });

  it('DeepSeek-V3.2 off-policy mask: row 1 has mean(rollout - trainer) = -0.25, row 0 = 0', () => {
    const adv = new Float32Array([-1, -1]);
    const keepAll = rolloutCorrection(trainer, rollout, adv, mask, { seqLen: 3, mode: 'none', offPolicyMaskThreshold: 0 });
    expect(keepAll.weights).toEqual(new Float32Array([1, 1, 1, 1, 1, 0]));
    const drop = rolloutCorrection(trainer, rollout, adv, mask, { seqLen: 3, mode: 'none', offPolicyMaskThreshold: -0.1 });
    expect(drop.weights).toEqual(new Float32Array([0, 0, 0, 1, 1, 0]));
    const pos = rolloutCorrection(trainer, rollout, new Float32Array([0, 1]), mask, { seqLen: 3, mode: 'none', offPolicyMaskThreshold: -0.1 });
    expect(pos.weights).toEqual(new Float32Array([1, 1, 1, 1, 1, 0]));
  });

  it('verl rejection: token_k1 [0.7, 1.5] (on rollout/trainer ratios) rejects tokens 0 and 1', () => {
    const r = rolloutCorrection(trainer, rollout, null, mask, { seqLen: 3, mode: 'none', rejection: { token_k1: [0.7, 1.5] } });
    expect(r.mask).toEqual(new Float32Array([0, 0, 1, 1, 1, 0]));
    expectClose([r.metrics.rsMaskedFraction!, r.metrics.rsSeqMaskedFraction!], [2 / (5 + 1e-8), 0.5], 1e-12, 0, 'rs metrics');
  });

  it('verl off-policy metrics', () => {
    const r = rolloutCorrection(trainer, rollout, null, mask, { seqLen: 3, mode: 'none' });
    const den = 5 + 1e-8;
    expectClose([r.metrics.kl], [(-0.5 + 0.5 + 0 - 0.25 - 0.25) / den], 1e-9, 0, 'kl');
    expectClose([r.metrics.logpDiffMean, r.metrics.logpDiffMax], [(0.5 + 0.5 + 0 + 0.25 + 0.25) / 5, 0.5], 1e-9, 0, 'TRL logp difference');
    expect(r.metrics.tokenCount).toBe(5);
  });
});

describe('rolloutCorrection determinism, Promise form, out buffers and the policyLoss hand-off', () => {
  it('does not depend on the thread count', () => {
    const c = makeCase(301, 67, 9, { spread: 0.3 });
    const o: RolloutCorrectionOptions = { seqLen: c.T, mode: 'sequence_truncate', batchNormalize: true, offPolicyMaskThreshold: 0.01, rejection: { token_k3: 0.1, seq_mean_k1: 1.05 } };
    setNumThreads(1);
    const one = rolloutCorrection(c.trainer, c.rollout, c.advRow, c.mask, o);
    setNumThreads(4);
    const four = rolloutCorrection(c.trainer, c.rollout, c.advRow, c.mask, o);
    setNumThreads(defaultNumThreads());
    expect(four.weights).toEqual(one.weights);
    expect(four.mask).toEqual(one.mask);
    expect(four.metrics).toEqual(one.metrics);
  });

  it('the Promise form and caller-owned out buffers give the sync result', async () => {
    const c = makeCase(6, 41, 10);
    const o: RolloutCorrectionOptions = { seqLen: c.T, mode: 'token_mask', clipMin: 0.8, clipMax: 1.2 };
    const sync = rolloutCorrection(c.trainer, c.rollout, null, c.mask, o);
    const w = new Float32Array(c.B * c.T).fill(9), m = new Float32Array(c.B * c.T).fill(9);
    const p = await rolloutCorrectionAsync(c.trainer, c.rollout, null, c.mask, { ...o, out: { weights: w, mask: m } });
    expect(p.weights).toBe(w);
    expect(p.mask).toBe(m);
    expect(w).toEqual(sync.weights);
    expect(m).toEqual(sync.mask);
    expect(p.metrics).toEqual(sync.metrics);
  });

  it('its weights and mask feed policyLoss as TRL and verl apply them', () => {
    const c = makeCase(4, 19, 11, { spread: 0.3 });
    const rc = rolloutCorrection(c.trainer, c.rollout, c.advRow, c.mask, { seqLen: c.T, mode: 'token_truncate', offPolicyMaskThreshold: 0.02, rejection: { seq_max_k2: 0.2 } });
    const lp = Float32Array.from(c.trainer, (x, i) => x + 0.05 * Math.sin(i));
    const got = policyLoss(lp, c.trainer, c.advRow, rc.mask, { seqLen: c.T, tokenWeights: rc.weights });
    const want = refPolicyLoss(lp, c.trainer, c.advRow, rc.mask, {
      seqLen: c.T, variant: 'ppo', aggregation: 'token-mean', epsilonLow: 0.2, epsilonHigh: 0.2, beta: 0, klEstimator: 'k3',
      entropyCoef: 0, tauPos: 1, tauNeg: 1.05, tokenWeights: rc.weights,
    });
    expectClose([got.loss], [want.loss], 1e-5, 1e-7, 'loss');
    expectClose(got.gradLogprobs, want.grad, 1e-5, 1e-9, 'grad');
  });
});

describe('rolloutCorrection bad input names the argument', () => {
  const c = makeCase(2, 5, 12);
  const call = (patch: Record<string, unknown>, opts: Record<string, unknown> = {}) => () =>
    rolloutCorrection(
      (patch.trainer ?? c.trainer) as Float32Array,
      (patch.rollout ?? c.rollout) as Float32Array,
      ('adv' in patch ? patch.adv : null) as Float32Array | null,
      ('mask' in patch ? patch.mask : c.mask) as Uint8Array,
      { seqLen: 5, ...opts } as RolloutCorrectionOptions,
    );

  it('lengths and types of the arrays', () => {
    expect(call({ rollout: new Float32Array(9) })).toThrow(RangeError);
    expect(call({ rollout: new Float32Array(9) })).toThrow(/^rolloutLogprobs: expected length 10/);
    expect(call({ trainer: new Float64Array(10) })).toThrow(TypeError);
    expect(call({ trainer: new Float64Array(10) })).toThrow(/^trainerLogprobs: expected a Float32Array/);
    expect(call({ mask: new Uint8Array(3) })).toThrow(/^mask: expected length 10/);
    expect(call({ mask: new Int32Array(10) })).toThrow(/^mask: expected a Uint8Array, a Float32Array of weights or null/);
    expect(call({ adv: new Float32Array(3) }, { offPolicyMaskThreshold: 0.1 })).toThrow(/^advantages: expected length 2 \(one per sequence\) or 10/);
    expect(call({}, { out: { weights: new Float32Array(4) } })).toThrow(/^options.out.weights: expected length 10/);
    expect(call({}, { out: { mask: new Uint8Array(10) } })).toThrow(/^options.out.mask/);
    expect(call({}, { seqLen: 3 })).toThrow(/^options.seqLen: expected a divisor of the length of trainerLogprobs \(10\), received 3/);
  });

  it('advantages go with offPolicyMaskThreshold only', () => {
    expect(call({}, { offPolicyMaskThreshold: 0.1 })).toThrow(TypeError);
    expect(call({}, { offPolicyMaskThreshold: 0.1 })).toThrow(/^advantages: expected a Float32Array with options.offPolicyMaskThreshold/);
    expect(call({ adv: new Float32Array(2) })).toThrow(/^advantages: expected null without options.offPolicyMaskThreshold/);
    expect(call({ adv: new Float32Array(2) }, { offPolicyMaskThreshold: NaN })).toThrow(/^options.offPolicyMaskThreshold: expected a finite number/);
    expect(call({ adv: new Float32Array(2) }, { offPolicyMaskThreshold: '0.1' })).toThrow(TypeError);
  });

  it('options: mode, bounds, rejection criteria and thresholds', () => {
    expect(call({}, { mode: 'sequence' })).toThrow(RangeError);
    expect(call({}, { mode: 'sequence' })).toThrow(/^options.mode: expected one of 'token_truncate', 'token_mask', 'sequence_truncate', 'sequence_mask', 'none'/);
    expect(call({}, { clipMax: 0 })).toThrow(/^options.clipMax: expected a finite number > 0, received 0/);
    expect(call({}, { clipMax: '3' })).toThrow(TypeError);
    expect(call({}, { clipMin: -1 })).toThrow(/^options.clipMin: expected a finite number >= 0/);
    expect(call({}, { clipMin: 3, clipMax: 2 })).toThrow(/^options.clipMin: expected a value <= options.clipMax \(2\), received 3/);
    expect(call({}, { mode: 'none', clipMax: 3 })).toThrow(/^options.clipMax: applies to modes other than 'none' only/);
    expect(call({}, { mode: 'none', batchNormalize: true })).toThrow(/^options.batchNormalize/);
    expect(call({}, { batchNormalize: 1 })).toThrow(/^options.batchNormalize/);
    expect(call({}, { rejection: 'token_k1' })).toThrow(/^options.rejection: expected an object/);
    expect(call({}, { rejection: { token_k4: 1 } })).toThrow(RangeError);
    expect(call({}, { rejection: { token_k4: 1 } })).toThrow(/^options.rejection.token_k4: expected a criterion among 'token_k1'/);
    expect(call({}, { rejection: { token_k2: [0.1, 1] } })).toThrow(/^options.rejection.token_k2: expected one upper bound/);
    expect(call({}, { rejection: { token_k1: [0.5] } })).toThrow(/^options.rejection.token_k1: expected \[lower, upper\]/);
    expect(call({}, { rejection: { token_k1: [0, 2] } })).toThrow(/^options.rejection.token_k1\[0\]: expected a finite number > 0/);
    expect(call({}, { rejection: { seq_max_k3: -1 } })).toThrow(/^options.rejection.seq_max_k3: expected a finite number > 0/);
    expect(call({}, { clipmax: 3 })).toThrow(/clipmax/);
    expect(call({}, { token_k1_lower: 3 })).toThrow(/token_k1_lower/);
    expect(call({}, { mode: 'none', out: { weights: new Float32Array(10) } })).toThrow(/^options.out.weights: expected no buffer/);
  });

  it('f32 mask weights that are negative or not finite (checked natively, nothing written)', () => {
    for (const bad of [-1, NaN, Infinity]) {
      const w = new Float32Array(10).fill(1);
      w[7] = bad;
      const out = new Float32Array(10).fill(5);
      expect(call({ mask: w }, { out: { weights: out } })).toThrow(RangeError);
      expect(call({ mask: w })).toThrow(/mask\[7\]: expected a finite weight >= 0/);
      expect(out.every((x) => x === 5)).toBe(true);
    }
  });
});

describe('rolloutCorrection edge shapes', () => {
  it('an empty batch and an all-masked batch give finite metrics (verl raises on the latter)', () => {
    const e = new Float32Array(0);
    const r0 = rolloutCorrection(e, e, null, null, { seqLen: 4, mode: 'sequence_truncate', batchNormalize: true });
    expect(r0.weights!.length).toBe(0);
    expect(r0.mask.length).toBe(0);
    expect(Object.values(r0.metrics).every((x) => x === 0)).toBe(true);
    const z = new Float32Array(6).fill(-1);
    const r1 = rolloutCorrection(z, z, null, new Uint8Array(6), { seqLen: 3, rejection: { token_k2: 0.1 } });
    expect(Array.from(r1.weights!)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Object.values(r1.metrics).every(Number.isFinite)).toBe(true);
    expect(r1.metrics.tokenCount).toBe(0);
    expect(r1.metrics.isEffSampleSize).toBe(0);
    check({ B: 2, T: 3, trainer: z, rollout: z, advRow: new Float32Array(2), advTok: new Float32Array(6), mask: new Uint8Array(6) }, { mode: 'token_mask' });
  });
});
