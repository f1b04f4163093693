import { afterEach, describe, expect, it } from 'vitest';
import {
  _setSmallPathThreshold,
  discountedReturns,
  discountedReturnsAsync,
  ensembleRewards,
  ensembleRewardsAsync,
  gae,
  gaeAsync,
  groupAdvantages,
  groupAdvantagesAsync,
  maskedWhiten,
  maskedWhitenAsync,
  type AdvantageEstimator,
  type GroupAdvantagesOptions,
} from '../lib/advantages/index.js';
import { defaultNumThreads, setNumThreads, setSimdLevel, simdLevel } from '../lib/runtime.js';
import { expectClose, randint, randn, rng } from './helpers.js';
import {
  betaPdf,
  lgamma,
  refDiscounted,
  refEnsemble,
  refGae,
  refGroupAdvantages,
  refWhiten,
  type RefGroupOptions,
} from './reference/advantages.js';

const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
};
const close = (a: ArrayLike<number>, e: ArrayLike<number>, label: string) => expectClose(a, e, 1e-5, 1e-7 * maxAbs(e) + 1e-35, label);

/** Rewards with the awkward features the issue names: NaN, all-equal groups, ties. */
function rewardsFor(n: number, K: number, seed: number, opts: { nan?: number; equalGroups?: number; G?: number; binary?: boolean; sd?: number; offset?: number } = {}) {
  const r = randn(n * K, opts.sd ?? 1, seed);
  const u = rng(seed + 7);
  if (opts.binary) for (let i = 0; i < r.length; i++) r[i] = u() < 0.4 ? 1 : 0;
  if (opts.offset && !opts.binary) for (let i = 0; i < r.length; i++) r[i] += opts.offset;
  if (opts.G && opts.equalGroups) {
    for (let g = 0; g < opts.equalGroups; g++) for (let j = 0; j < opts.G * K; j++) r[g * opts.G * K + j] = r[g * opts.G * K + (j % K)];
  }
  if (opts.nan) for (let i = 0; i < r.length; i++) if (u() < opts.nan) r[i] = NaN;
  return r;
}

/** Unsorted ids of `groups` groups over n samples, including a group of one (id 0) and a missing id. */
function idsFor(n: number, groups: number, seed: number): Int32Array {
  const ids = randint(n, groups, seed);
  for (let i = 0; i < n; i++) if (ids[i] === 0 || ids[i] === groups - 1) ids[i] = 1 + (i % (groups - 2));
  ids[n - 3] = 0; // the group of one
  // id groups-1 stays empty, ids above it do not exist: numGroups = groups - 1
  return ids;
}

function check(r: Float32Array, o: GroupAdvantagesOptions, label: string) {
  const got = groupAdvantages(r, o);
  const ref = refGroupAdvantages(r, o as RefGroupOptions);
  close(got.advantages, ref.advantages, `${label} advantages`);
  close(got.groupMean, ref.groupMean, `${label} groupMean`);
  close(got.groupStd, ref.groupStd, `${label} groupStd`);
  expect(got.zeroStdGroups, `${label} zeroStdGroups`).toBe(ref.zeroStdGroups);
  expect(got.numGroups).toBe(ref.groupMean.length / (o.multiReward === 'normalize_then_sum' ? o.numRewards ?? 1 : 1));
  return got;
}

afterEach(() => {
  setNumThreads(defaultNumThreads());
  _setSmallPathThreshold(512);
});

const ESTIMATORS: AdvantageEstimator[] = ['grpo', 'rloo', 'reinforce_pp_baseline', 'opo', 'passk', 'bnpo', 'gpg'];

/** The estimators that read `lengths` (the others reject them: they would be ignored). */
const usesLengths = (est: string) => est === 'opo' || est === 'reinforce_pp_baseline';

describe('groupAdvantages against the float64 reference', () => {
  for (const path of ['native', 'small'] as const) {
    for (const est of ESTIMATORS) {
      for (const K of [1, 3]) {
        it(`${est}, K=${K}, groupSize, ${path} path`, () => {
          _setSmallPathThreshold(path === 'native' ? 0 : 1 << 20);
          const G = 7, n = 7 * 23;
          const binary = est === 'bnpo';
          const r = rewardsFor(n, K, 11 + K, { nan: 0.06, equalGroups: 3, G, binary });
          const lengths = randint(n, 300, 5);
          const o: GroupAdvantagesOptions = {
            groupSize: G, estimator: est, numRewards: K, lengths: est === 'opo' || est === 'reinforce_pp_baseline' ? lengths : undefined,
            rewardWeights: K === 3 ? [0.5, -1.25, 2] : undefined, rewardMin: binary && K === 3 ? -3 : undefined, rewardMax: binary && K === 3 ? 3 : undefined,
          };
          const got = check(r, o, `${est} K=${K}`);
          expect(got.zeroStdGroups).toBeGreaterThanOrEqual(est === 'bnpo' ? 0 : 1);
        });
        it(`${est}, K=${K}, unsorted groupIds with a group of one and an empty id, ${path} path`, () => {
          _setSmallPathThreshold(path === 'native' ? 0 : 1 << 20);
          const n = 150;
          const ids = idsFor(n, 13, 3);
          const r = rewardsFor(n, K, 21 + K, { nan: 0.05, binary: est === 'bnpo' });
          if (est === 'passk') ids[n - 3] = 1; // pass@k rejects groups of one
          check(r, {
            groupIds: ids, estimator: est, numRewards: K, lengths: usesLengths(est) ? randint(n, 50, 9) : undefined,
            rewardWeights: K === 3 ? new Float32Array([1, 0.25, 3]) : undefined,
            rewardMin: est === 'bnpo' && K === 3 ? -1 : undefined, rewardMax: est === 'bnpo' && K === 3 ? 5 : undefined,
          }, `${est} ids K=${K}`);
        });
      }
    }
    for (const scale of ['group', 'batch', 'none'] as const) {
      for (const est of ['grpo', 'passk'] as const) {
        it(`${est} scale '${scale}', ${path} path`, () => {
          _setSmallPathThreshold(path === 'native' ? 0 : 1 << 20);
          const r = rewardsFor(96, 1, 33, { nan: 0.03, equalGroups: 1, G: 8 });
          check(r, { groupSize: 8, estimator: est, scale }, `${est} ${scale}`);
          check(r, { groupSize: 8, estimator: est, scale, eps: 1e-6 }, `${est} ${scale} eps 1e-6`);
        });
      }
    }
  }

  it('huge and tiny magnitudes (f32 inputs, double accumulation)', () => {
    for (const [sd, offset] of [[1, 1e6], [1e-20, 0], [1e30, 0], [1e-3, -5e4]] as const) {
      for (const est of ESTIMATORS) {
        const binary = est === 'bnpo';
        const r = rewardsFor(64, 1, 41, { sd, offset, binary });
        if (binary) for (let i = 0; i < r.length; i++) r[i] = offset + sd * r[i];
        const lo = Math.min(...r), hi = Math.max(...r) > lo ? Math.max(...r) : lo + 1;
        const bounds = est === 'bnpo' ? { rewardMin: lo, rewardMax: hi } : {}; // bnpo's options only
        check(r, { groupSize: 16, estimator: est, lengths: usesLengths(est) ? randint(64, 9, 1) : undefined, ...bounds }, `${est} sd ${sd} offset ${offset}`);
      }
    }
  });

  it('K=1 equals K=3 with one nonzero weight (sum_then_normalize)', () => {
    const r3 = rewardsFor(48, 3, 5);
    const r1 = new Float32Array(48);
    for (let i = 0; i < 48; i++) r1[i] = r3[i * 3 + 1];
    const a = groupAdvantages(r3, { groupSize: 6, numRewards: 3, rewardWeights: [0, 1, 0] });
    const b = groupAdvantages(r1, { groupSize: 6 });
    expect(Array.from(a.advantages)).toEqual(Array.from(b.advantages));
  });

  it('hand-checked values: TRL GRPO, RLOO leave-one-out, verl group of one', () => {
    const r = new Float32Array([1, 2, 3, 4]);
    const g = groupAdvantages(r, { groupSize: 4 });
    const sd = Math.sqrt(5 / 3);
    expectClose(g.advantages, [-1.5 / (sd + 1e-4), -0.5 / (sd + 1e-4), 0.5 / (sd + 1e-4), 1.5 / (sd + 1e-4)], 1e-6, 0);
    expectClose(g.groupStd, [sd], 1e-6, 0);
    const l = groupAdvantages(r, { groupSize: 4, estimator: 'rloo' });
    expectClose(l.advantages, [1 - 3, 2 - 8 / 3, 3 - 7 / 3, 4 - 2], 1e-6, 1e-7);
    const one = groupAdvantages(new Float32Array([3, 5]), { groupSize: 1 });
    expectClose(one.advantages, [3 / 1.0001, 5 / 1.0001], 1e-6, 0);
    expect(Array.from(one.groupMean)).toEqual([0, 0]);
    expect(Array.from(one.groupStd)).toEqual([1, 1]);
    const dr = groupAdvantages(r, { groupSize: 2, scale: 'none' });
    expect(Array.from(dr.advantages)).toEqual([-0.5, 0.5, -0.5, 0.5]);
  });

  it('NaN rewards are missing: left out of the statistics, advantage 0', () => {
    const r = new Float32Array([1, NaN, 3, 5, NaN, NaN, NaN, NaN, 2, NaN, NaN, NaN]);
    const a = groupAdvantages(r, { groupSize: 4 });
    const sd = 2; // std of [1, 3, 5]
    expectClose(a.advantages.subarray(0, 4), [-2 / (sd + 1e-4), 0, 0, 2 / (sd + 1e-4)], 1e-6, 0);
    expect(Array.from(a.advantages.subarray(4, 8))).toEqual([0, 0, 0, 0]); // all missing
    expect(Number.isNaN(a.groupMean[1]) && Number.isNaN(a.groupStd[1])).toBe(true);
    expect(a.groupMean[2]).toBe(0); // one valid reward: verl's group of one
    expect(a.advantages[8]).toBeCloseTo(2 / 1.0001, 6);
    // K = 2: a sample keeps the rewards it has (TRL nansum)
    const r2 = new Float32Array([1, NaN, 2, 2, NaN, NaN, 0, 4]);
    const b = groupAdvantages(r2, { groupSize: 4, numRewards: 2 });
    const ref = refGroupAdvantages(r2, { groupSize: 4, numRewards: 2 });
    close(b.advantages, ref.advantages, 'nansum');
    expect(b.advantages[2]).toBe(0);
  });

  it('zeroStdGroups counts groups with >= 2 equal rewards (TRL #3857)', () => {
    const r = new Float32Array([0.1, 0.1, 0.1, 0.1, 1, 0, 1, 0, 7, 7, NaN, 7, 2, NaN, NaN, NaN]);
    const a = groupAdvantages(r, { groupSize: 4 });
    expect(a.zeroStdGroups).toBe(2);
    expect(Array.from(a.advantages.subarray(0, 4))).toEqual([0, 0, 0, 0]); // exactly, though 0.1 * 4 / 4 != 0.1
    expect(a.groupMean[0]).toBe(Math.fround(0.1));
  });

  it('GDPO (normalize_then_sum) against the reference, K = 1 and 3, with NaN', () => {
    for (const path of [0, 1 << 20]) {
      _setSmallPathThreshold(path);
      for (const K of [1, 3]) {
        const r = rewardsFor(120, K, 61 + K, { nan: 0.08, equalGroups: 2, G: 8 });
        check(r, { groupSize: 8, numRewards: K, multiReward: 'normalize_then_sum', rewardWeights: K === 3 ? [1, 2, 0.5] : undefined }, `gdpo K=${K}`);
        check(r, { groupIds: idsFor(120, 17, 8), numRewards: K, multiReward: 'normalize_then_sum' }, `gdpo ids K=${K}`);
      }
    }
  });

  it('GDPO keeps rewards apart where the weighted sum collapses them', () => {
    // Two binary rewards: (1,0) and (0,1) sum to the same total, so sum_then_normalize gives them
    // the same advantage; GDPO normalises each reward first (paper's motivating example).
    const r = new Float32Array([1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0]);
    const sum = groupAdvantages(r, { groupSize: 6, numRewards: 2 });
    expect(sum.advantages[0]).toBe(sum.advantages[1]);
    const gd = groupAdvantages(r, { groupSize: 6, numRewards: 2, multiReward: 'normalize_then_sum', rewardWeights: [2, 1] });
    expect(gd.advantages[0]).not.toBe(gd.advantages[1]);
    expect(gd.groupMean.length).toBe(2);
  });

  it('BNPO: Beta weights from the batch moments, clamp, scaling and alpha = beta = 1 fallbacks', () => {
    expect(lgamma(5)).toBeCloseTo(Math.log(24), 12);
    expect(betaPdf(0.5, 2, 2)).toBeCloseTo(1.5, 12);
    const r = rewardsFor(8 * 16, 1, 3, { binary: true });
    const a = groupAdvantages(r, { groupSize: 8, estimator: 'bnpo' });
    const ref = refGroupAdvantages(r, { groupSize: 8, estimator: 'bnpo' });
    close(a.advantages, ref.advantages, 'bnpo');
    // one group: alpha = beta = 1, the weight is 1 and A = r - p
    const one = groupAdvantages(new Float32Array([1, 0, 0, 1]), { groupSize: 4, estimator: 'bnpo' });
    expect(Array.from(one.advantages)).toEqual([0.5, -0.5, -0.5, 0.5]);
    // every group with the same p: no spread, weight 1 (the reference system divides by zero)
    const same = groupAdvantages(new Float32Array([1, 0, 0, 1, 0, 1]), { groupSize: 2, estimator: 'bnpo' });
    expect(Array.from(same.advantages)).toEqual([0.5, -0.5, -0.5, 0.5, -0.5, 0.5]);
    // rewards in [-2, 8] scaled to [0, 1]
    const s = rewardsFor(40, 1, 4, { sd: 1, offset: 3 });
    check(s, { groupSize: 5, estimator: 'bnpo', rewardMin: -2, rewardMax: 8 }, 'bnpo scaled');
  });

  it('RF++ baseline whitens over tokens when lengths are given (verl masked_whiten)', () => {
    const r = rewardsFor(32, 1, 8);
    const L = randint(32, 40, 2);
    const a = groupAdvantages(r, { groupSize: 4, estimator: 'reinforce_pp_baseline', lengths: L });
    // token-level check: tile y over L_i tokens and whiten with the token reference
    const y: number[] = [], m: number[] = [];
    const ref = refGroupAdvantages(r, { groupSize: 4, estimator: 'grpo', scale: 'none' }).advantages;
    for (let i = 0; i < 32; i++) for (let t = 0; t < 40; t++) {
      y.push(ref[i]);
      m.push(t < L[i] ? 1 : 0);
    }
    const wht = refWhiten(y, m);
    for (let i = 0; i < 32; i++) if (L[i] > 0) expect(a.advantages[i]).toBeCloseTo(wht[i * 40], 5);
  });

  it('small path and native kernel agree bit for bit', () => {
    for (const est of ['grpo', 'rloo', 'opo', 'passk'] as const) {
      for (const scale of ['group', 'batch', 'none'] as const) {
        const r = rewardsFor(240, 2, 17, { nan: 0.05, equalGroups: 2, G: 12 });
        const o: GroupAdvantagesOptions = { groupSize: 12, estimator: est, scale, numRewards: 2, lengths: usesLengths(est) ? randint(240, 99, 3) : undefined, rewardWeights: [1, 0.3] };
        _setSmallPathThreshold(0);
        const a = groupAdvantages(r, o);
        _setSmallPathThreshold(1 << 20);
        const b = groupAdvantages(r, o);
        expect(Array.from(b.advantages), `${est} ${scale}`).toEqual(Array.from(a.advantages));
        expect(Array.from(b.groupMean)).toEqual(Array.from(a.groupMean));
        expect(Array.from(b.groupStd)).toEqual(Array.from(a.groupStd));
        expect(b.zeroStdGroups).toBe(a.zeroStdGroups);
      }
    }
  });

  it('grpo fast path (contiguous, K = 1): AVX2, scalar kernel and small path agree bit for bit', () => {
    for (const G of [1, 2, 3, 4, 7, 16, 33]) {
      for (const scale of ['group', 'none'] as const) {
        const r = rewardsFor(G * 37, 1, G, { nan: 0.05, equalGroups: 4, G });
        const o: GroupAdvantagesOptions = { groupSize: G, scale };
        _setSmallPathThreshold(0);
        const simd = groupAdvantages(r, o);
        setSimdLevel('scalar');
        const scalar = groupAdvantages(r, o);
        setSimdLevel(simdLevel().detected);
        _setSmallPathThreshold(1 << 20);
        const small = groupAdvantages(r, o);
        for (const other of [scalar, small]) {
          expect(Array.from(other.advantages), `G=${G} ${scale}`).toEqual(Array.from(simd.advantages));
          expect(Array.from(other.groupMean)).toEqual(Array.from(simd.groupMean));
          expect(Array.from(other.groupStd)).toEqual(Array.from(simd.groupStd));
          expect(other.zeroStdGroups).toBe(simd.zeroStdGroups);
        }
        const ref = refGroupAdvantages(r, o as RefGroupOptions);
        close(simd.advantages, ref.advantages, `fast path G=${G}`);
        expect(simd.zeroStdGroups).toBe(ref.zeroStdGroups);
      }
    }
  });

  it('results are bit-identical for 1, 2 and 3 threads (large batches)', () => {
    const n = 200_000;
    const r = rewardsFor(n, 1, 99, { nan: 0.01 });
    const r3 = rewardsFor(n, 3, 98, { nan: 0.01 });
    const ids = idsFor(n, 5000, 4);
    const L = randint(n, 100, 6);
    const cases: [Float32Array, GroupAdvantagesOptions][] = [
      [r, { groupSize: 16 }],
      [r, { groupSize: 16, scale: 'batch' }],
      [r, { groupIds: ids, estimator: 'rloo' }],
      [r, { groupSize: 8, estimator: 'reinforce_pp_baseline', lengths: L }],
      [r3, { groupSize: 10, numRewards: 3, multiReward: 'normalize_then_sum' }],
      [rewardsFor(n, 1, 5, { binary: true }), { groupIds: ids, estimator: 'bnpo' }],
    ];
    for (const [x, o] of cases) {
      const res = [1, 2, 3].map((t) => {
        setNumThreads(t);
        return groupAdvantages(x, o);
      });
      for (const k of [1, 2]) {
        expect(Buffer.from(res[k].advantages.buffer).equals(Buffer.from(res[0].advantages.buffer))).toBe(true);
        expect(Buffer.from(res[k].groupStd.buffer).equals(Buffer.from(res[0].groupStd.buffer))).toBe(true);
      }
    }
    // spot-check the big case against the reference
    setNumThreads(3);
    close(groupAdvantages(r, { groupSize: 16, scale: 'batch' }).advantages, refGroupAdvantages(r, { groupSize: 16, scale: 'batch' }).advantages, 'large batch');
  });

  it('empty batches give empty results', () => {
    for (const t of [0, 1 << 20]) {
      _setSmallPathThreshold(t);
      for (const est of ESTIMATORS) {
        const a = groupAdvantages(new Float32Array(0), { groupSize: 4, estimator: est, lengths: usesLengths(est) ? new Int32Array(0) : undefined });
        expect([a.advantages.length, a.groupMean.length, a.zeroStdGroups, a.numGroups]).toEqual([0, 0, 0, 0]);
      }
      expect(groupAdvantages(new Float32Array(0), { groupIds: new Int32Array(0) }).numGroups).toBe(0);
    }
  });

  it('Promise form and out buffers', async () => {
    const r = rewardsFor(64, 1, 3, { equalGroups: 1, G: 8 });
    const out = { advantages: new Float32Array(64), groupMean: new Float32Array(8), groupStd: new Float32Array(8) };
    for (const est of ESTIMATORS) {
      const o = { groupSize: 8, estimator: est, lengths: usesLengths(est) ? randint(64, 9, 2) : undefined, out };
      const sync = groupAdvantages(est === 'bnpo' ? r.map((x) => (x > 0 ? 1 : 0)) : r, o);
      expect(sync.advantages).toBe(out.advantages);
      expect(sync.groupMean).toBe(out.groupMean);
      const syncCopy = Float32Array.from(sync.advantages);
      const asy = await groupAdvantagesAsync(est === 'bnpo' ? r.map((x) => (x > 0 ? 1 : 0)) : r, { ...o, out: undefined });
      expect(Array.from(asy.advantages)).toEqual(Array.from(syncCopy));
      expect(asy.zeroStdGroups).toBe(sync.zeroStdGroups);
    }
    await expect(groupAdvantagesAsync(new Float32Array([5, 6]), { groupSize: 2, estimator: 'bnpo' })).rejects.toThrow(RangeError);
  });
});

describe('groupAdvantages rejects bad input before native code', () => {
  const r = new Float32Array(12);
  const bad: [string, () => unknown, ErrorConstructor, RegExp][] = [
    ['groupSize not dividing n', () => groupAdvantages(r, { groupSize: 5 }), RangeError, /options\.groupSize.*divisor.*12.*5/],
    ['groupSize 0', () => groupAdvantages(r, { groupSize: 0 }), RangeError, /options\.groupSize.*positive integer/],
    ['groupSize 2.5', () => groupAdvantages(r, { groupSize: 2.5 }), RangeError, /options\.groupSize/],
    ['groupSize a string', () => groupAdvantages(r, { groupSize: '4' as unknown as number }), TypeError, /options\.groupSize.*string/],
    ['no groups', () => groupAdvantages(r, {}), TypeError, /options\.groupSize/],
    ['both groupings', () => groupAdvantages(r, { groupSize: 4, groupIds: new Int32Array(12) }), TypeError, /groupSize or groupIds/],
    ['negative group id', () => groupAdvantages(r, { groupIds: Int32Array.from({ length: 12 }, (_, i) => (i === 7 ? -1 : 0)) }), RangeError, /options\.groupIds\[7\].*-1/],
    ['group id >= n', () => groupAdvantages(r, { groupIds: Int32Array.from({ length: 12 }, (_, i) => (i === 2 ? 12 : 0)) }), RangeError, /options\.groupIds\[2\]/],
    ['too-short groupIds', () => groupAdvantages(r, { groupIds: new Int32Array(11) }), RangeError, /options\.groupIds.*length 12.*11/],
    ['groupIds not Int32', () => groupAdvantages(r, { groupIds: new Float32Array(12) as unknown as Int32Array }), TypeError, /options\.groupIds.*Int32Array/],
    ['opo without lengths', () => groupAdvantages(r, { groupSize: 4, estimator: 'opo' }), TypeError, /options\.lengths.*opo/],
    ['negative length', () => groupAdvantages(r, { groupSize: 4, estimator: 'opo', lengths: Int32Array.from({ length: 12 }, (_, i) => -i) }), RangeError, /options\.lengths\[1\]/],
    ['rewardWeights wrong length', () => groupAdvantages(new Float32Array(12), { groupSize: 2, numRewards: 3, rewardWeights: [1, 1] }), RangeError, /options\.rewardWeights.*length 3.*2/],
    ['rewardWeights NaN', () => groupAdvantages(r, { groupSize: 2, rewardWeights: [NaN] }), RangeError, /options\.rewardWeights\[0\]/],
    ['rewardWeights a string', () => groupAdvantages(r, { groupSize: 2, rewardWeights: 'x' as unknown as number[] }), TypeError, /options\.rewardWeights/],
    ['unknown estimator', () => groupAdvantages(r, { groupSize: 4, estimator: 'ppo' as AdvantageEstimator }), RangeError, /options\.estimator.*'grpo'.*'ppo'/],
    ['unknown scale', () => groupAdvantages(r, { groupSize: 4, scale: 'std' as 'group' }), RangeError, /options\.scale/],
    ['unknown multiReward', () => groupAdvantages(r, { groupSize: 4, multiReward: 'gdpo' as 'normalize_then_sum' }), RangeError, /options\.multiReward/],
    ['GDPO with rloo', () => groupAdvantages(r, { groupSize: 4, estimator: 'rloo', multiReward: 'normalize_then_sum' }), RangeError, /options\.multiReward.*rloo/],
    ['rewards a Float64Array', () => groupAdvantages(new Float64Array(12) as unknown as Float32Array, { groupSize: 4 }), TypeError, /rewards: expected a Float32Array.*Float64Array/],
    ['rewards an array', () => groupAdvantages([1, 2] as unknown as Float32Array, { groupSize: 2 }), TypeError, /rewards: expected a Float32Array/],
    ['rewards not a multiple of K', () => groupAdvantages(new Float32Array(10), { groupSize: 1, numRewards: 3 }), RangeError, /rewards.*multiple of numRewards/],
    ['numRewards 0', () => groupAdvantages(r, { groupSize: 1, numRewards: 0 }), RangeError, /options\.numRewards/],
    ['negative eps', () => groupAdvantages(r, { groupSize: 4, eps: -1 }), RangeError, /options\.eps/],
    ['passk with groups of one', () => groupAdvantages(r, { groupSize: 1, estimator: 'passk' }), RangeError, /passk.*at least 2/],
    ['passk with an id group of one', () => groupAdvantages(r, { groupIds: Int32Array.from({ length: 12 }, (_, i) => (i === 0 ? 1 : 0)), estimator: 'passk' }), RangeError, /options\.groupIds.*group 1/],
    ['bnpo rewardMax <= rewardMin', () => groupAdvantages(r, { groupSize: 4, estimator: 'bnpo', rewardMin: 1, rewardMax: 1 }), RangeError, /options\.rewardMax/],
    ['bnpo rewards outside [min, max]', () => groupAdvantages(new Float32Array([2, 3, 0, 1]), { groupSize: 2, estimator: 'bnpo' }), RangeError, /rewards: bnpo.*group 0/],
    ['out of the wrong length', () => groupAdvantages(r, { groupSize: 4, out: { groupMean: new Float32Array(4) } }), RangeError, /options\.out\.groupMean.*length 3.*4/],
    ['options missing', () => groupAdvantages(r, undefined as unknown as GroupAdvantagesOptions), TypeError, /options: expected an options object/],
  ];
  for (const [name, fn, cls, msg] of bad) {
    it(name, () => {
      expect(fn).toThrow(cls);
      expect(fn).toThrow(msg);
    });
  }
});

describe('ensembleRewards', () => {
  it('mean, min and uwo (population variance) with NaN skipped', async () => {
    const M = 5, n = 37;
    const r = randn(n * M, 2, 3);
    r[7] = NaN;
    for (let j = 0; j < M; j++) r[10 * M + j] = NaN;
    for (const method of ['mean', 'min', 'uwo'] as const) {
      const lambda = method === 'uwo' ? { lambda: 0.7 } : {}; // uwo's option only
      const got = ensembleRewards(r, { numModels: M, method, ...lambda });
      close(got, refEnsemble(r, M, method, 0.7), method);
      expect(Number.isNaN(got[10])).toBe(true);
      const asy = await ensembleRewardsAsync(r, { numModels: M, method, ...lambda, out: new Float32Array(n) });
      expect(Array.from(asy)).toEqual(Array.from(got));
    }
    expect(ensembleRewards(new Float32Array([1, 3]), { numModels: 2, method: 'uwo', lambda: 1 })[0]).toBe(1);
  });
  it('rejects bad input', () => {
    expect(() => ensembleRewards(new Float32Array(6), { numModels: 4 })).toThrow(/rewards.*multiple of numModels/);
    expect(() => ensembleRewards(new Float32Array(6), { numModels: 3, method: 'uwo' })).toThrow(TypeError);
    expect(() => ensembleRewards(new Float32Array(6), { numModels: 3, method: 'uwo' })).toThrow(/options\.lambda/);
    expect(() => ensembleRewards(new Float32Array(6), { numModels: 3, method: 'max' as 'min' })).toThrow(RangeError);
    expect(() => ensembleRewards(new Float64Array(6) as unknown as Float32Array, { numModels: 3 })).toThrow(/rewards: expected a Float32Array/);
  });
});

/** [B, T] masks: right padding, left padding, holes (multi-turn observations), an empty row. */
function masksFor(B: number, T: number, seed: number): Uint8Array {
  const u = rng(seed);
  const m = new Uint8Array(B * T);
  for (let b = 0; b < B; b++) {
    const kind = b % 4;
    const len = 1 + Math.floor(u() * (T - 1));
    for (let t = 0; t < T; t++) {
      let on = kind === 0 ? t < len : kind === 1 ? t >= T - len : kind === 2 ? u() < 0.7 : false;
      if (b === 3) on = false;
      m[b * T + t] = on ? 1 : 0;
    }
  }
  return m;
}

describe('token-level kernels', () => {
  const B = 9, T = 37;
  const values = randn(B * T, 1, 1), rewards = randn(B * T, 0.5, 2);
  const mask = masksFor(B, T, 3);

  it('gae matches verl (masked tokens skipped, 0 there) for several gamma and lambda', async () => {
    for (const [gamma, lambda] of [[1, 1], [0.99, 0.95], [0.5, 0]] as const) {
      const got = gae(values, rewards, mask, { seqLen: T, gamma, lambda });
      const ref = refGae(values, rewards, mask, T, gamma, lambda);
      close(got.advantages, ref.advantages, `gae A ${gamma} ${lambda}`);
      close(got.returns, ref.returns, `gae R ${gamma} ${lambda}`);
      const asy = await gaeAsync(values, rewards, mask, { seqLen: T, gamma, lambda });
      expect(Array.from(asy.advantages)).toEqual(Array.from(got.advantages));
    }
    // Float32 mask (nonzero = response token) gives the same
    const fm = Float32Array.from(mask);
    expect(Array.from(gae(values, rewards, fm, { seqLen: T, gamma: 0.9, lambda: 0.8 }).advantages)).toEqual(
      Array.from(gae(values, rewards, mask, { seqLen: T, gamma: 0.9, lambda: 0.8 }).advantages));
  });

  it('gae with whiten: true equals maskedWhiten of the raw advantages; returns are unwhitened', () => {
    const raw = gae(values, rewards, mask, { seqLen: T, lambda: 0.95 });
    const w = gae(values, rewards, mask, { seqLen: T, lambda: 0.95, whiten: true });
    expect(Array.from(w.returns)).toEqual(Array.from(raw.returns));
    close(w.advantages, refWhiten(raw.advantages, mask), 'whitened gae');
  });

  it('discountedReturns matches the definition and equals gae with V = 0, lambda = 1', async () => {
    for (const gamma of [1, 0.9]) {
      const got = discountedReturns(rewards, mask, { seqLen: T, gamma });
      close(got, refDiscounted(rewards, mask, T, gamma), `returns ${gamma}`);
      const g = gae(new Float32Array(B * T), rewards, mask, { seqLen: T, gamma, lambda: 1 });
      expect(Array.from(g.advantages)).toEqual(Array.from(got));
      const out = new Float32Array(B * T);
      expect(await discountedReturnsAsync(rewards, mask, { seqLen: T, gamma, out })).toBe(out);
      expect(Array.from(out)).toEqual(Array.from(got));
    }
  });

  it('maskedWhiten matches verl masked_whiten (u8 mask, f32 weights, shiftMean, in place)', async () => {
    close(maskedWhiten(values, mask), refWhiten(values, mask), 'whiten u8');
    const wts = Float32Array.from(mask, (m, i) => (m ? 0.25 + (i % 3) : 0));
    close(maskedWhiten(values, wts), refWhiten(values, wts), 'whiten f32');
    close(maskedWhiten(values, mask, { shiftMean: false, unbiased: false }), refWhiten(values, mask, false, false), 'whiten no shift');
    const copy = Float32Array.from(values);
    const asy = await maskedWhitenAsync(copy, mask, { out: copy });
    expect(asy).toBe(copy);
    close(copy, refWhiten(values, mask), 'whiten in place');
    // empty mask: zeros; one token: 0 (population variance fallback instead of verl's error)
    expect(Array.from(maskedWhiten(new Float32Array([1, 2]), new Uint8Array(2)))).toEqual([0, 0]);
    expect(Array.from(maskedWhiten(new Float32Array([1, 2]), new Uint8Array([0, 1])))).toEqual([0, 0]);
  });

  it('thread count does not change token-level results', () => {
    const B2 = 600, T2 = 333;
    const v = randn(B2 * T2, 1, 4), r = randn(B2 * T2, 1, 5), m = masksFor(B2, T2, 6);
    const res = [1, 2, 3].map((t) => {
      setNumThreads(t);
      return [gae(v, r, m, { seqLen: T2, lambda: 0.9, whiten: true }).advantages, discountedReturns(r, m, { seqLen: T2 }), maskedWhiten(v, m)];
    });
    for (const k of [1, 2]) for (let j = 0; j < 3; j++) expect(Buffer.from(res[k][j].buffer).equals(Buffer.from(res[0][j].buffer))).toBe(true);
  });

  it('rejects bad input', () => {
    expect(() => gae(values, rewards, mask, { seqLen: 36 })).toThrow(/values: expected a length that is a multiple of seqLen/);
    expect(() => gae(values, rewards.subarray(1), mask, { seqLen: T })).toThrow(/rewards: expected length/);
    expect(() => gae(values, rewards, Array.from(mask) as unknown as Uint8Array, { seqLen: T })).toThrow(TypeError);
    expect(() => gae(values, rewards, mask, { seqLen: T, gamma: 1.5 })).toThrow(/options\.gamma/);
    expect(() => gae(values, rewards, mask, { seqLen: 0 })).toThrow(RangeError);
    expect(() => discountedReturns(rewards, mask.subarray(1), { seqLen: T })).toThrow(/mask: expected length/);
    expect(() => maskedWhiten(values, Float32Array.from(mask, (x) => -x))).toThrow(/mask\[\d+\]: expected a finite weight/);
    expect(() => maskedWhiten(values, mask, { eps: -1 })).toThrow(/options\.eps/);
    const buf = new Float32Array(B * T + 1);
    const shifted = () => maskedWhiten(buf.subarray(0, B * T), mask, { out: buf.subarray(1) });
    expect(shifted).toThrow(RangeError);
    expect(shifted).toThrow(/options\.out: expected values itself/);
    expect(() => gae(values, rewards, mask, { seqLen: T, out: { advantages: values.subarray(0, 0) } })).toThrow(/options\.out\.advantages.*length/);
  });
});

describe('groupAdvantages: gpg (verl compute_gpg_outcome_advantage) and singletonBaseline', () => {
  it('gpg: alpha = n / #nonzero scores, (r - mean) alpha / fNorm; a group of one uses mean 0', () => {
    const r = Float32Array.from([1, 0, 0, 0, /**/ 1, 1, 0, 0, /**/ 0, 0, 0, 0]);
    const got = groupAdvantages(r, { groupSize: 4, estimator: 'gpg', fNorm: 2 });
    const alpha = 12 / 3;
    const want = [0.75, -0.25, -0.25, -0.25, 0.5, 0.5, -0.5, -0.5, 0, 0, 0, 0].map((d) => Math.fround((alpha * d) / 2));
    expect(Array.from(got.advantages)).toEqual(want);
    // every score 0: alpha = n / 1
    const z = groupAdvantages(new Float32Array(6), { groupSize: 3, estimator: 'gpg' });
    expect(Array.from(z.advantages)).toEqual([0, 0, 0, 0, 0, 0]);
    for (const n of [1, 5, 37]) {
      const x = rewardsFor(n * 3, 1, n, { nan: 0.1, binary: true });
      check(x, { groupIds: randint(n * 3, n, n + 1), estimator: 'gpg', fNorm: 0.5 }, `gpg n=${n}`);
    }
  });
  it("gpg's fNorm: only with gpg, a finite number > 0", () => {
    const r = randn(8, 1, 1);
    expect(() => groupAdvantages(r, { groupSize: 4, fNorm: 2 })).toThrow(/^options\.fNorm: applies to estimator 'gpg' only, expected undefined with estimator 'grpo', received number 2/);
    expect(() => groupAdvantages(r, { groupSize: 4, estimator: 'gpg', fNorm: 0 })).toThrow(/^options\.fNorm: expected a finite number > 0, received 0/);
    expect(() => groupAdvantages(r, { groupSize: 4, estimator: 'gpg', fNorm: '1' as never })).toThrow(TypeError);
  });
  for (const est of ['grpo', 'rloo', 'opo', 'reinforce_pp_baseline', 'gpg', 'bnpo'] as const) {
    for (const path of ['native', 'small'] as const) {
      it(`singletonBaseline 'self' (TRL): ${est}, a lone valid reward gets the baseline of its own value, ${path} path`, () => {
        _setSmallPathThreshold(path === 'native' ? 0 : 1 << 20);
        const n = 40, r = rewardsFor(n, 1, 5, { binary: est === 'bnpo' });
        for (let i = 0; i < 4; i++) r[i] = i === 2 ? r[i] : NaN; // group 0: one valid reward
        const ids = idsFor(n, 9, 4); // a group of one too
        for (const o of [{ groupSize: 4 }, { groupIds: ids }] as GroupAdvantagesOptions[]) {
          const opts = { ...o, estimator: est, lengths: usesLengths(est) ? randint(n, 9, 2) : undefined, singletonBaseline: 'self' as const };
          const got = check(r, opts, `${est} self`);
          if (est !== 'reinforce_pp_baseline' && o.groupSize) expect(got.advantages[2]).toBe(0);
          if (o.groupSize) expect(got.groupMean[0]).toBe(r[2]);
          // 'zero' is the default and the verl convention: unchanged results
          const dflt = groupAdvantages(r, { ...opts, singletonBaseline: undefined });
          expect(Array.from(groupAdvantages(r, { ...opts, singletonBaseline: 'zero' }).advantages)).toEqual(Array.from(dflt.advantages));
          if (est === 'grpo' && o.groupSize) expect(dflt.advantages[2]).toBe(Math.fround(r[2] / (1 + 1e-4)));
        }
      });
    }
  }
  it('singletonBaseline: not with passk or normalize_then_sum, one of the names', () => {
    const r = randn(8, 1, 1);
    expect(() => groupAdvantages(r, { groupSize: 4, estimator: 'passk', singletonBaseline: 'self' })).toThrow(/^options\.singletonBaseline: does not apply to estimator 'passk'/);
    expect(() => groupAdvantages(randn(16, 1, 1), { groupSize: 4, numRewards: 2, multiReward: 'normalize_then_sum', singletonBaseline: 'zero' })).toThrow(TypeError);
    expect(() => groupAdvantages(r, { groupSize: 4, singletonBaseline: 'trl' as never })).toThrow(/^options\.singletonBaseline: expected one of 'zero', 'self', received/);
  });
});
