// tokenAdvantages (verl reinforce_plus_plus, remax, optimal_token_baseline, tir_optimal_token_baseline),
// klRewards (verl apply_kl_penalty / compute_rewards) and adaptiveKlCoef against the float64
// references of tests/reference/advantages.ts. None has a gradient (verl computes them under no_grad),
// so there is no finite-difference check here.
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import {
  adaptiveKlCoef,
  discountedReturns,
  klRewards,
  klRewardsAsync,
  maskedWhiten,
  tokenAdvantages,
  tokenAdvantagesAsync,
  type TokenAdvantageEstimator,
  type TokenAdvantagesOptions,
} from '../lib/index.js';
import { defaultNumThreads, setNumThreads } from '../lib/runtime.js';
import { expectClose, randint, randn, rng } from './helpers.js';
import {
  refKlRewards,
  refOtb,
  refReinforcePP,
  refRemax,
  refTirOtb,
} from './reference/advantages.js';

const worst: Record<string, number> = {};
const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
};
/** f32 outputs against float64: 1e-5 relative plus 1e-7 of the array's scale; records the largest difference. */
function close(a: ArrayLike<number>, e: ArrayLike<number>, label: string, op: string) {
  expectClose(a, e, 1e-5, 1e-7 * maxAbs(e) + 1e-35, label);
  let d = 0;
  for (let i = 0; i < e.length; i++) if (Number.isFinite(e[i])) d = Math.max(d, Math.abs(a[i] - e[i]) / Math.max(1, Math.abs(e[i])));
  worst[op] = Math.max(worst[op] ?? 0, d);
}
afterEach(() => setNumThreads(defaultNumThreads()));
afterAll(() => console.log('largest |got - ref| / max(1, |ref|):', JSON.stringify(worst)));

type MaskKind = 'u8' | 'f32' | 'null' | 'mid';
/** Right-padded rows of random lengths (some 0 and some full); 'mid': holes in the middle too (multi-turn). */
function maskOf(B: number, T: number, kind: MaskKind, seed: number): Uint8Array | Float32Array | null {
  if (kind === 'null') return null;
  const u = rng(seed);
  const m = kind === 'f32' ? new Float32Array(B * T) : new Uint8Array(B * T);
  for (let b = 0; b < B; b++) {
    const L = b === 0 ? T : b === 1 && B > 2 ? 0 : Math.floor(u() * (T + 1));
    for (let t = 0; t < L; t++) m[b * T + t] = kind === 'f32' ? (u() < 0.2 ? 0.25 + u() : 1) : kind === 'mid' && u() < 0.25 ? 0 : 1;
  }
  return m;
}
const SHAPES: [number, number][] = [[1, 1], [1, 13], [3, 1], [7, 13], [6, 37], [11, 5]];
const KINDS: MaskKind[] = ['u8', 'f32', 'null', 'mid'];

describe('tokenAdvantages: reinforce_plus_plus', () => {
  for (const [B, T] of SHAPES) {
    for (const kind of KINDS) {
      for (const gamma of [1, 0.9, 0]) {
        it(`B=${B} T=${T} mask ${kind} gamma ${gamma}`, () => {
          const r = randn(B * T, 1, B * 100 + T).map((x, i) => (i % 3 === 0 ? x * 1e3 : x));
          const m = maskOf(B, T, kind, B + T);
          const got = tokenAdvantages(r, m, { seqLen: T, estimator: 'reinforce_plus_plus', gamma });
          const e = refReinforcePP(r, m, T, gamma);
          close(got.returns, e.returns, 'returns', 'reinforce_plus_plus');
          close(got.advantages, e.advantages, 'advantages', 'reinforce_plus_plus');
        });
      }
    }
  }
  it('right-padded 0/1 mask: bit for bit maskedWhiten(discountedReturns) at response tokens', () => {
    const B = 9, T = 17, r = randn(B * T, 1, 5), m = maskOf(B, T, 'u8', 6) as Uint8Array;
    const got = tokenAdvantages(r, m, { seqLen: T, estimator: 'reinforce_plus_plus', gamma: 0.95 });
    const ret = discountedReturns(r, m, { seqLen: T, gamma: 0.95 });
    const adv = maskedWhiten(ret, m);
    for (let i = 0; i < B * T; i++) if (m[i]) expect(got.returns[i]).toBe(ret[i]);
    expect(Array.from(got.advantages)).toEqual(Array.from(adv));
  });
  it('a masked token inside a row stops the recursion (verl resets; discountedReturns skips it)', () => {
    const r = Float32Array.from([1, 2, 3, 4]), m = Uint8Array.from([1, 0, 1, 1]);
    const got = tokenAdvantages(r, m, { seqLen: 4, estimator: 'reinforce_plus_plus', gamma: 1 });
    expect(Array.from(got.returns)).toEqual([1, 9, 7, 4]); // G_1 = 2 + 7 is kept, then reset: G_0 = 1 + 0
    expect(Array.from(discountedReturns(r, m, { seqLen: 4 }))).toEqual([8, 0, 7, 4]);
  });
  it('every token masked: advantages 0', () => {
    const got = tokenAdvantages(randn(6, 1, 1), new Uint8Array(6), { seqLen: 3, estimator: 'reinforce_plus_plus' });
    expect(Array.from(got.advantages)).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe('tokenAdvantages: remax', () => {
  for (const [B, T] of SHAPES) {
    for (const kind of KINDS) {
      it(`B=${B} T=${T} mask ${kind}`, () => {
        const r = randn(B * T, 2, B * 7 + T), base = randn(B, 3, T);
        const m = maskOf(B, T, kind, B * T);
        const got = tokenAdvantages(r, m, { seqLen: T, estimator: 'remax', baselines: base });
        const e = refRemax(r, m, T, base);
        close(got.returns, e.returns, 'returns', 'remax');
        close(got.advantages, e.advantages, 'advantages', 'remax');
      });
    }
  }
  it('an outcome reward on the last token: A_t = R - baseline over the response', () => {
    const r = Float32Array.from([0, 0, 1, 0, 0, 0, 0.5, 0]), m = Uint8Array.from([1, 1, 1, 0, 1, 1, 1, 1]);
    const got = tokenAdvantages(r, m, { seqLen: 4, estimator: 'remax', baselines: Float32Array.from([0.25, 1]) });
    expect(Array.from(got.advantages)).toEqual([0.75, 0.75, 0.75, 0, -0.5, -0.5, -0.5, -1]);
  });
});

function otbCase(B: number, T: number, kind: MaskKind, seed: number, G: number) {
  const r = randn(B * T, 1, seed).map((x, i) => (i % 4 === 0 ? x : 0));
  const m = maskOf(B, T, kind, seed + 1);
  // a valid distribution's pieces: pi_t in (0, 1], sum pi^2 in [pi_t^2, 1]
  const u = rng(seed + 2);
  const logprobs = new Float32Array(B * T), spi = new Float32Array(B * T);
  for (let i = 0; i < B * T; i++) {
    const p = 0.02 + 0.97 * u();
    logprobs[i] = Math.log(p);
    spi[i] = p * p + (1 - p * p) * u() * 0.5;
  }
  const ids = randint(B, G, seed + 3);
  return { r, m, logprobs, spi, ids, isw: randn(B * T, 0.3, seed + 4).map((x) => 1 + x) };
}

describe('tokenAdvantages: optimal_token_baseline and tir_optimal_token_baseline', () => {
  for (const est of ['optimal_token_baseline', 'tir_optimal_token_baseline'] as const) {
    const ref = est === 'optimal_token_baseline' ? refOtb : refTirOtb;
    for (const [B, T] of SHAPES) {
      for (const kind of KINDS) {
        for (const variant of ['ids', 'size', 'is', 'tail'] as const) {
          it(`${est} B=${B} T=${T} mask ${kind} ${variant}`, () => {
            const G = Math.max(1, Math.floor(B / 3));
            const c = otbCase(B, T, kind, B * 31 + T, G);
            const size = variant === 'size' ? (B % 3 === 0 ? 3 : 1) : 0;
            const groupIds = size ? Int32Array.from({ length: B }, (_, b) => Math.floor(b / size)) : c.ids;
            const opts: TokenAdvantagesOptions = {
              seqLen: T, estimator: est, logprobs: c.logprobs, sumPiSquared: c.spi,
              ...(size ? { groupSize: size } : { groupIds }),
              ...(variant === 'is' ? { isWeights: c.isw, eps: 1e-3 } : {}),
              ...(variant === 'tail' ? { handleZeroTail: est === 'optimal_token_baseline' } : {}),
            };
            const got = tokenAdvantages(c.r, c.m, opts);
            const e = ref(c.r, c.m, T, {
              groupIds, logprobs: c.logprobs, sumPiSquared: c.spi, isWeights: variant === 'is' ? c.isw : undefined,
              handleZeroTail: variant === 'tail' ? est === 'optimal_token_baseline' : est !== 'optimal_token_baseline',
              eps: variant === 'is' ? 1e-3 : 1e-8,
            });
            close(got.returns, e.returns, 'returns', est);
            close(got.advantages, e.advantages, 'advantages', est);
          });
        }
      }
    }
    it(`${est}: the zero tail zeroes the baseline of the single longest member beyond the second longest`, () => {
      const T = 6, r = Float32Array.from([0, 0, 1, 0, 0, 0, /**/ 0, 0, 0, 0, 0, 2, /**/ 0, 0, 1, 0, 0, 0]);
      const m = Uint8Array.from([1, 1, 1, 0, 0, 0, /**/ 1, 1, 1, 1, 1, 1, /**/ 1, 1, 1, 0, 0, 0]);
      const lp = new Float32Array(18).fill(Math.log(0.5)), spi = new Float32Array(18).fill(0.5);
      const base = { seqLen: T, estimator: est, groupSize: 3, logprobs: lp, sumPiSquared: spi };
      const on = tokenAdvantages(r, m, { ...base, handleZeroTail: true });
      const off = tokenAdvantages(r, m, { ...base, handleZeroTail: false });
      // w_t = 1 - 2 * 0.5 + 0.5 = 0.5: the longest row's tokens 3..5 see only itself in the baseline (B = its own return - eps share)
      for (const t of [3, 4, 5]) expect(on.advantages[6 + t]).toBe(2);
      for (const t of [3, 4, 5]) expect(Math.abs(off.advantages[6 + t])).toBeLessThan(1e-6);
      // the first three tokens are shared: the same either way
      for (const t of [0, 1, 2]) expect(on.advantages[t]).toBe(off.advantages[t]);
    });
    it(`${est}: a group of one has no baseline (advantage = return)`, () => {
      const c = otbCase(3, 5, 'u8', 9, 3);
      const got = tokenAdvantages(c.r, c.m, { seqLen: 5, estimator: est, groupSize: 1, logprobs: c.logprobs, sumPiSquared: c.spi });
      for (let i = 0; i < 15; i++) expect(got.advantages[i]).toBe(c.m![i] ? got.returns[i] : 0);
    });
  }
});

describe('tokenAdvantages: threads, Async, out, errors', () => {
  const B = 1500, T = 64;
  const ests: TokenAdvantageEstimator[] = ['reinforce_plus_plus', 'remax', 'optimal_token_baseline', 'tir_optimal_token_baseline'];
  const c = otbCase(B, T, 'mid', 77, 200);
  const optsFor = (estimator: TokenAdvantageEstimator): TokenAdvantagesOptions =>
    estimator === 'reinforce_plus_plus' ? { seqLen: T, estimator, gamma: 0.99 }
      : estimator === 'remax' ? { seqLen: T, estimator, baselines: randn(B, 1, 3) }
        : { seqLen: T, estimator, groupIds: c.ids, logprobs: c.logprobs, sumPiSquared: c.spi, isWeights: c.isw };
  for (const est of ests) {
    it(`${est}: the same bits on 1, 2 and 3 threads; Async and out give the same`, async () => {
      setNumThreads(1);
      const one = tokenAdvantages(c.r, c.m, optsFor(est));
      for (const t of [2, 3]) {
        setNumThreads(t);
        const got = tokenAdvantages(c.r, c.m, optsFor(est));
        expect(Buffer.from(got.advantages.buffer).equals(Buffer.from(one.advantages.buffer))).toBe(true);
        expect(Buffer.from(got.returns.buffer).equals(Buffer.from(one.returns.buffer))).toBe(true);
      }
      const out = { advantages: new Float32Array(B * T), returns: new Float32Array(B * T) };
      const a = await tokenAdvantagesAsync(c.r, c.m, { ...optsFor(est), out });
      expect(a.advantages).toBe(out.advantages);
      expect(Array.from(a.advantages)).toEqual(Array.from(one.advantages));
      expect(Array.from(a.returns)).toEqual(Array.from(one.returns));
    });
  }
  const r = randn(12, 1, 1), m = new Uint8Array(12).fill(1);
  const cases: [string, () => unknown, RegExp, ErrorConstructor][] = [
    ['no estimator', () => tokenAdvantages(r, m, { seqLen: 4 } as never), /^options\.estimator: expected one of 'reinforce_plus_plus'/, TypeError],
    ['unknown estimator', () => tokenAdvantages(r, m, { seqLen: 4, estimator: 'gae' as never }), /^options\.estimator: expected one of .* received "gae"|^options\.estimator: expected one of .* received 'gae'|^options\.estimator/, RangeError],
    ['seqLen not a divisor', () => tokenAdvantages(r, m, { seqLen: 5, estimator: 'remax', baselines: r }), /^rewards: expected a length that is a multiple of seqLen \(5\)/, RangeError],
    ['remax without baselines', () => tokenAdvantages(r, m, { seqLen: 4, estimator: 'remax' }), /^options\.baselines: expected a Float32Array for estimator 'remax', received undefined/, TypeError],
    ['baselines of the wrong length', () => tokenAdvantages(r, m, { seqLen: 4, estimator: 'remax', baselines: new Float32Array(4) }), /^options\.baselines: expected length 3/, RangeError],
    ['gamma with remax', () => tokenAdvantages(r, m, { seqLen: 4, estimator: 'remax', baselines: new Float32Array(3), gamma: 0.9 }), /^options\.gamma: applies to estimator 'reinforce_plus_plus' only/, TypeError],
    ['baselines with reinforce_plus_plus', () => tokenAdvantages(r, m, { seqLen: 4, estimator: 'reinforce_plus_plus', baselines: new Float32Array(3) }), /^options\.baselines: applies to estimator 'remax' only/, TypeError],
    ['gamma above 1', () => tokenAdvantages(r, m, { seqLen: 4, estimator: 'reinforce_plus_plus', gamma: 1.5 }), /^options\.gamma: expected a finite number in \[0, 1\], received 1\.5/, RangeError],
    ['otb without groups', () => tokenAdvantages(r, m, { seqLen: 4, estimator: 'optimal_token_baseline', logprobs: r, sumPiSquared: r }), /^options\.groupSize: expected a positive integer \(or options\.groupIds\)/, TypeError],
    ['otb without logprobs', () => tokenAdvantages(r, m, { seqLen: 4, estimator: 'optimal_token_baseline', groupSize: 3, sumPiSquared: r }), /^options\.logprobs: expected a Float32Array/, TypeError],
    ['otb groupSize not a divisor', () => tokenAdvantages(r, m, { seqLen: 4, estimator: 'optimal_token_baseline', groupSize: 2, logprobs: r, sumPiSquared: r }), /^options\.groupSize: expected a divisor of the number of sequences \(3\), received 2/, RangeError],
    ['otb group id out of range', () => tokenAdvantages(r, m, { seqLen: 4, estimator: 'tir_optimal_token_baseline', groupIds: Int32Array.from([0, 3, 1]), logprobs: r, sumPiSquared: r }), /^options\.groupIds\[1\]: expected a group id in \[0, 3\)/, RangeError],
    ['both groupSize and groupIds', () => tokenAdvantages(r, m, { seqLen: 4, estimator: 'optimal_token_baseline', groupSize: 3, groupIds: new Int32Array(3), logprobs: r, sumPiSquared: r }), /^options\.groupSize: expected either groupSize or groupIds/, TypeError],
    ['eps with remax', () => tokenAdvantages(r, m, { seqLen: 4, estimator: 'remax', baselines: new Float32Array(3), eps: 1 }), /^options\.eps: applies to estimator 'optimal_token_baseline' and 'tir_optimal_token_baseline' only/, TypeError],
    ['a mask of the wrong type', () => tokenAdvantages(r, new Int32Array(12) as never, { seqLen: 4, estimator: 'reinforce_plus_plus' }), /^mask: expected a Uint8Array, a Float32Array of weights or null/, TypeError],
    ['a negative mask weight', () => tokenAdvantages(r, Float32Array.from({ length: 12 }, (_, i) => (i === 7 ? -1 : 1)), { seqLen: 4, estimator: 'reinforce_plus_plus' }), /^mask\[7\]/, RangeError],
    ['out.returns is out.advantages', () => { const o = new Float32Array(12); return tokenAdvantages(r, m, { seqLen: 4, estimator: 'reinforce_plus_plus', out: { advantages: o, returns: o } }); }, /^options\.out\.returns: expected a buffer apart from out\.advantages/, RangeError],
    ['an unknown option', () => tokenAdvantages(r, m, { seqLen: 4, estimator: 'reinforce_plus_plus', lambda: 1 } as never), /^options\.lambda/, TypeError],
  ];
  for (const [label, call, msg, type] of cases) {
    it(`bad input: ${label}`, async () => {
      expect(call).toThrow(msg);
      expect(call).toThrow(type);
    });
  }
  it('the Async form rejects with the same error', async () => {
    await expect(tokenAdvantagesAsync(r, m, { seqLen: 4, estimator: 'remax' })).rejects.toThrow(/^options\.baselines/);
  });
});

describe('klRewards', () => {
  const ESTS = ['k1', 'k2', 'k3', 'abs', 'k3+'] as const;
  for (const [B, T] of SHAPES) {
    for (const kind of KINDS) {
      for (const est of ESTS) {
        it(`B=${B} T=${T} mask ${kind} ${est}`, () => {
          const n = B * T, scores = randn(n, 1, n + 1);
          const lp = randn(n, 1, n + 2).map((x) => x - 2), ref = randn(n, 1, n + 3).map((x, i) => (i % 5 === 0 ? x - 30 : x - 2));
          const m = maskOf(B, T, kind, n + 4);
          const beta = 0.05 + B * 0.01;
          const got = klRewards(scores, lp, ref, m, { seqLen: T, beta, estimator: est });
          const e = refKlRewards(scores, lp, ref, m, T, beta, est);
          close(got.rewards, e.rewards, 'rewards', 'klRewards');
          expect(Math.abs(got.klMean - e.klMean)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(e.klMean)));
          worst.klMeanAbs = Math.max(worst.klMeanAbs ?? 0, Math.abs(got.klMean - e.klMean));
        });
      }
    }
  }
  it("verl compute_rewards is estimator 'k1' without a mask: scores - beta (logprobs - ref)", () => {
    const scores = Float32Array.from([1, 0, -1, 2]), lp = Float32Array.from([-1, -2, -0.5, -3]), ref = Float32Array.from([-1.5, -2, -1, -2]);
    const got = klRewards(scores, lp, ref, null, { seqLen: 2, beta: 0.5 });
    expect(Array.from(got.rewards)).toEqual([0.75, 0, -1.25, 2.5]);
    expect(got.klMean).toBeCloseTo(((0.5 + 0) / (2 + 1e-8) + (0.5 - 1) / (2 + 1e-8)) / 2, 15);
  });
  it('threads, Async, out in place', async () => {
    const B = 3000, T = 33, n = B * T, s = randn(n, 1, 1), lp = randn(n, 1, 2), ref = randn(n, 1, 3), m = maskOf(B, T, 'f32', 4);
    setNumThreads(1);
    const one = klRewards(s, lp, ref, m, { seqLen: T, beta: 0.1, estimator: 'k3' });
    setNumThreads(3);
    const three = klRewards(s, lp, ref, m, { seqLen: T, beta: 0.1, estimator: 'k3' });
    expect(three.klMean).toBe(one.klMean);
    expect(Buffer.from(three.rewards.buffer).equals(Buffer.from(one.rewards.buffer))).toBe(true);
    const inPlace = Float32Array.from(s);
    const a = await klRewardsAsync(inPlace, lp, ref, m, { seqLen: T, beta: 0.1, estimator: 'k3', out: inPlace });
    expect(a.rewards).toBe(inPlace);
    expect(a.klMean).toBe(one.klMean);
    expect(Array.from(inPlace)).toEqual(Array.from(one.rewards));
  });
  const s = randn(6, 1, 1), lp = randn(6, 1, 2);
  const cases: [string, () => unknown, RegExp, ErrorConstructor][] = [
    ['no beta', () => klRewards(s, lp, lp, null, { seqLen: 3 } as never), /^options\.beta: expected a number, received undefined/, TypeError],
    ['beta NaN', () => klRewards(s, lp, lp, null, { seqLen: 3, beta: Number.NaN }), /^options\.beta: expected a finite number/, RangeError],
    ['refLogprobs short', () => klRewards(s, lp, new Float32Array(5), null, { seqLen: 3, beta: 1 }), /^refLogprobs: expected length 6/, RangeError],
    ['bad estimator', () => klRewards(s, lp, lp, null, { seqLen: 3, beta: 1, estimator: 'low_var_kl' as never }), /^options\.estimator: expected one of 'k1'/, RangeError],
    ['out is logprobs', () => klRewards(s, lp, lp, null, { seqLen: 3, beta: 1, out: lp }), /^options\.out: expected a buffer apart from logprobs/, RangeError],
    ['a negative mask weight', () => klRewards(s, lp, lp, Float32Array.from([1, 1, -2, 1, 1, 1]), { seqLen: 3, beta: 1 }), /^mask\[2\]/, RangeError],
    ['no seqLen', () => klRewards(s, lp, lp, null, { beta: 1 } as never), /^options\.seqLen: expected a positive integer, received undefined/, TypeError],
  ];
  for (const [label, call, msg, type] of cases) {
    it(`bad input: ${label}`, () => {
      expect(call).toThrow(msg);
      expect(call).toThrow(type);
    });
  }
});

describe('adaptiveKlCoef (verl AdaptiveKLController.update)', () => {
  it('the clipped proportional update, in verl order', () => {
    const o = { targetKl: 6, horizon: 10000, nSteps: 256 };
    expect(adaptiveKlCoef(0.2, 6, o)).toBe(0.2);
    expect(adaptiveKlCoef(0.2, 3, o)).toBe(0.2 * (1 + (-0.2 * 256) / 10000)); // clipped below
    expect(adaptiveKlCoef(0.2, 6.6, o)).toBe(0.2 * (1 + ((6.6 / 6 - 1) * 256) / 10000));
    expect(adaptiveKlCoef(0.2, 100, o)).toBe(0.2 * (1 + (0.2 * 256) / 10000)); // clipped above
    // 50 steps of a constant KL above target compound
    let c = 0.1;
    for (let i = 0; i < 50; i++) c = adaptiveKlCoef(c, 12, { targetKl: 6, horizon: 100, nSteps: 10 });
    expect(c).toBeCloseTo(0.1 * 1.02 ** 50, 12);
  });
  it('bad input', () => {
    expect(() => adaptiveKlCoef(0.1, 1, { targetKl: 0, horizon: 1, nSteps: 1 })).toThrow(/^options\.targetKl: expected a finite number > 0, received 0/);
    expect(() => adaptiveKlCoef(0.1, 1, { targetKl: 1, horizon: -1, nSteps: 1 })).toThrow(RangeError);
    expect(() => adaptiveKlCoef(0.1, Number.NaN, { targetKl: 1, horizon: 1, nSteps: 1 })).toThrow(/^currentKl: expected a finite number/);
    expect(() => adaptiveKlCoef('0.1' as never, 1, { targetKl: 1, horizon: 1, nSteps: 1 })).toThrow(TypeError);
    expect(() => adaptiveKlCoef(0.1, 1, { targetKl: 1, horizon: 1 } as never)).toThrow(/^options\.nSteps: expected a number, received undefined/);
    expect(() => adaptiveKlCoef(0.1, 1, { targetKl: 1, horizon: 1, nSteps: 1, kl: 2 } as never)).toThrow(/^options\.kl/);
  });
});
