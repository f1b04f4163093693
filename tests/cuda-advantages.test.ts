// The advantage kernels on DeviceArrays (lib/advantages/ device path, native/cuda_binding/advantages.cc,
// cuda/advantages.h): device vs the CPU kernel on the same inputs, Async forms, out buffers, host/device
// mixing, bad elements found on the device (the host path's RangeError texts), overlapping outputs.
//
// The device part runs only where a device is visible (a GPU, or the host emulation of cuda/emu
// built as a module and named by REWARD_KERNELS_CUDA_MODULE: see docs/cuda.md). Sizes are small:
// these are O(n) kernels, and the emulation runs one OS thread per CUDA thread.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  klRewards,
  klRewardsAsync,
  maskedWhiten,
  maskedWhitenAsync,
  tokenAdvantages,
  tokenAdvantagesAsync,
  type AdvantageEstimator,
  type AdvantageScale,
  type GroupAdvantagesOptions,
} from '../lib/advantages/index.js';
import { cuda, DeviceArray } from '../lib/cuda.js';
import { expectClose, randint, randn, thrown } from './helpers.js';

const available = cuda.isAvailable();

/** f32 parity bound: 1e-5 relative, absolute floor 1e-6 x the array's largest magnitude. */
function close(actual: Float32Array, expected: Float32Array, label: string): void {
  let m = 0;
  for (const v of expected) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  expectClose(actual, expected, 1e-5, 1e-6 * m + 1e-30, label);
}

const f32 = (a: DeviceArray) => a.download() as Float32Array;

/** Rewards with ties, NaN (missing) entries and a constant group, (n * K). */
function rewardsFor(n: number, K: number, seed: number, binary = false): Float32Array {
  const r = binary ? Float32Array.from(randint(n * K, 2, seed)) : randn(n * K, 1.5, seed);
  if (!binary) {
    for (let i = 3; i < r.length; i += 17) r[i] = NaN;
    for (let i = 0; i < Math.min(8 * K, r.length); i++) r[i] = 0.5; // group 0 constant (zero std)
  }
  return r;
}

describe('advantages without a device', () => {
  it('host calls work without a device and keep their values', () => {
    const r = new Float32Array([1, 2, 3, 5, 0, 0]);
    const { advantages, groupMean, zeroStdGroups } = groupAdvantages(r, { groupSize: 3, scale: 'none' });
    expect(Array.from(advantages)).toEqual([-1, 0, 1, 5 - 5 / 3, -5 / 3, -5 / 3].map(Math.fround));
    expect(Array.from(groupMean)).toEqual([2, 5 / 3].map(Math.fround));
    expect(zeroStdGroups).toBe(0);
    const w = maskedWhiten(new Float32Array([1, 3, 100]), new Uint8Array([1, 1, 0]));
    expect(w[2]).toBe(0);
    expect(w[0]).toBeCloseTo(-1 / Math.sqrt(2 + 1e-8), 6);
  });

  it.skipIf(available)('a host call given a DeviceArray-looking object is still a TypeError naming it', () => {
    // a DeviceArray cannot be constructed without a device; a plain object in its place is rejected
    const fake = { dtype: 'i32', length: 6, ptr: 1n } as unknown as Int32Array;
    const err = thrown(() => groupAdvantages(new Float32Array(6), { groupIds: fake }));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toContain('options.groupIds');
  });
});

describe.skipIf(!available)('advantages on DeviceArrays', () => {
  let prevSmall = 0;
  const live: DeviceArray[] = [];
  const up = <T extends Float32Array | Int32Array | Uint8Array>(x: T) => {
    const a = cuda.upload(x as Float32Array) as DeviceArray;
    live.push(a);
    return a;
  };
  const keep = <T extends DeviceArray>(a: T) => {
    live.push(a);
    return a;
  };
  beforeAll(() => {
    prevSmall = _setSmallPathThreshold(0); // host reference = the C++ CPU kernel, never the TS small path
  });
  afterAll(() => {
    _setSmallPathThreshold(prevSmall);
    for (const a of live) a.free();
  });

  const ESTIMATORS: AdvantageEstimator[] = ['grpo', 'rloo', 'reinforce_pp_baseline', 'opo', 'passk', 'bnpo', 'gpg'];
  const SCALES: AdvantageScale[] = ['group', 'batch', 'none'];

  it('groupAdvantages matches the CPU kernel: every estimator x scale, contiguous groups and group ids', () => {
    const G = 8, n = 8 * 13; // 13 groups of 8
    const lengths = Int32Array.from(randint(n, 50, 7), (x) => x + 1);
    const shuffledIds = Int32Array.from({ length: n }, (_, i) => (i * 5 + 3) % 13);
    for (const estimator of ESTIMATORS) {
      const r = rewardsFor(n, 1, 11, estimator === 'bnpo');
      const dr = up(r);
      for (const scale of estimator === 'grpo' || estimator === 'passk' ? SCALES : (['group'] as AdvantageScale[])) {
        for (const layout of ['size', 'ids'] as const) {
          const base = { estimator, scale };
          const hostOpts: GroupAdvantagesOptions = { ...base, ...(layout === 'size' ? { groupSize: G } : { groupIds: shuffledIds }) };
          if (estimator === 'opo' || estimator === 'reinforce_pp_baseline') hostOpts.lengths = lengths;
          const host = groupAdvantages(r, hostOpts);
          const dev = groupAdvantages(dr, {
            ...base,
            ...(layout === 'size' ? { groupSize: G } : { groupIds: up(shuffledIds) }),
            ...(hostOpts.lengths ? { lengths: up(lengths) } : {}),
          });
          keep(dev.advantages), keep(dev.groupMean), keep(dev.groupStd);
          const label = `${estimator}/${scale}/${layout}`;
          expect(dev.advantages).toBeInstanceOf(DeviceArray);
          expect(dev.numGroups).toBe(host.numGroups);
          expect(dev.zeroStdGroups, label).toBe(host.zeroStdGroups);
          if (estimator !== 'bnpo' && layout === 'size') expect(host.zeroStdGroups, label).toBeGreaterThan(0);
          close(f32(dev.advantages), host.advantages, `${label} advantages`);
          close(f32(dev.groupMean), host.groupMean, `${label} groupMean`);
          close(f32(dev.groupStd), host.groupStd, `${label} groupStd`);
        }
      }
    }
  });

  it('groupAdvantages with K rewards and weights, and GDPO (normalize_then_sum)', () => {
    const n = 6 * 7, K = 3;
    const r = rewardsFor(n, K, 21);
    const dr = up(r);
    const weights = [0.5, -1.25, 2];
    for (const multiReward of ['sum_then_normalize', 'normalize_then_sum'] as const) {
      const opts = { groupSize: 6, numRewards: K, rewardWeights: weights, multiReward };
      const host = groupAdvantages(r, opts);
      const dev = groupAdvantages(dr, opts);
      keep(dev.advantages), keep(dev.groupMean), keep(dev.groupStd);
      expect(dev.groupMean.length).toBe(host.groupMean.length);
      expect(dev.zeroStdGroups).toBe(host.zeroStdGroups);
      close(f32(dev.advantages), host.advantages, `${multiReward} advantages`);
      close(f32(dev.groupMean), host.groupMean, `${multiReward} groupMean`);
      close(f32(dev.groupStd), host.groupStd, `${multiReward} groupStd`);
    }
  });

  it('groupAdvantages: zeroStdGroups is downloaded, out buffers are filled, Async form', async () => {
    const r = new Float32Array([1, 1, 1, 1, 0, 1, 0, 1, 2, 2, 2, 2]);
    const dr = up(r);
    const out = { advantages: keep(cuda.alloc('f32', 12)), groupMean: keep(cuda.alloc('f32', 3)), groupStd: keep(cuda.alloc('f32', 3)) };
    const dev = groupAdvantages(dr, { groupSize: 4, out });
    expect(dev.advantages).toBe(out.advantages);
    expect(dev.groupMean).toBe(out.groupMean);
    expect(dev.zeroStdGroups).toBe(2);
    const host = groupAdvantages(r, { groupSize: 4 });
    close(f32(out.advantages), host.advantages, 'out advantages');
    const a = await groupAdvantagesAsync(dr, { groupSize: 4, estimator: 'rloo' });
    keep(a.advantages), keep(a.groupMean), keep(a.groupStd);
    expect(a.zeroStdGroups).toBe(2);
    close(f32(a.advantages), groupAdvantages(r, { groupSize: 4, estimator: 'rloo' }).advantages, 'async rloo');
    // deterministic: the same call twice gives the same bits
    const b = groupAdvantages(dr, { groupSize: 4, estimator: 'rloo' });
    keep(b.advantages), keep(b.groupMean), keep(b.groupStd);
    expect(Array.from(f32(b.advantages))).toEqual(Array.from(f32(a.advantages)));
  });

  it('ensembleRewards: mean, min and uwo (+ Async, out)', async () => {
    const n = 37, M = 4;
    const r = randn(n * M, 2, 31);
    r[5] = NaN;
    for (let j = 0; j < M; j++) r[10 * M + j] = NaN; // a row of NaN gives NaN
    const dr = up(r);
    for (const method of ['mean', 'min', 'uwo'] as const) {
      const opts = { numModels: M, method, ...(method === 'uwo' ? { lambda: 0.7 } : {}) };
      const host = ensembleRewards(r, opts);
      close(f32(keep(ensembleRewards(dr, opts))), host, method);
      close(f32(keep(await ensembleRewardsAsync(dr, opts))), host, `${method} async`);
    }
    const out = keep(cuda.alloc('f32', n));
    expect(ensembleRewards(dr, { numModels: M, out })).toBe(out);
    close(f32(out), ensembleRewards(r, { numModels: M }), 'out');
  });

  it('gae, discountedReturns and maskedWhiten match the CPU kernel with u8 and f32 masks', async () => {
    const B = 5, T = 23, n = B * T;
    const values = randn(n, 1, 41), rewards = randn(n, 1, 42);
    const u8 = new Uint8Array(n);
    for (let b = 0; b < B; b++) for (let t = 2; t < T - b * 3; t++) u8[b * T + t] = t % 7 === 3 ? 0 : 1;
    const f = Float32Array.from(u8, (x, i) => x * (0.5 + (i % 3)));
    const dv = up(values), dr = up(rewards);
    for (const [mask, kind] of [[u8, 'u8'], [f, 'f32']] as const) {
      const dm = up(mask);
      for (const whiten of [false, true]) {
        const opts = { seqLen: T, gamma: 0.97, lambda: 0.9, whiten };
        const host = gae(values, rewards, mask, opts);
        const dev = gae(dv, dr, dm, opts);
        keep(dev.advantages), keep(dev.returns);
        close(f32(dev.advantages), host.advantages, `gae ${kind} whiten=${whiten} advantages`);
        close(f32(dev.returns), host.returns, `gae ${kind} whiten=${whiten} returns`);
        const asy = await gaeAsync(dv, dr, dm, opts);
        keep(asy.advantages), keep(asy.returns);
        close(f32(asy.advantages), host.advantages, `gaeAsync ${kind}`);
      }
      const hr = discountedReturns(rewards, mask, { seqLen: T, gamma: 0.9 });
      close(f32(keep(discountedReturns(dr, dm, { seqLen: T, gamma: 0.9 }))), hr, `returns ${kind}`);
      close(f32(keep(await discountedReturnsAsync(dr, dm, { seqLen: T, gamma: 0.9 }))), hr, `returns async ${kind}`);
      for (const o of [{}, { shiftMean: false, unbiased: false, eps: 1e-3 }]) {
        const hw = maskedWhiten(values, mask, o);
        close(f32(keep(maskedWhiten(dv, dm, o))), hw, `whiten ${kind} ${JSON.stringify(o)}`);
        close(f32(keep(await maskedWhitenAsync(dv, dm, o))), hw, `whiten async ${kind}`);
      }
    }
    // maskedWhiten in place
    const x = up(values);
    expect(maskedWhiten(x, up(u8), { out: x })).toBe(x);
    close(f32(x), maskedWhiten(values, u8), 'whiten in place');
  });

  it('host and device arrays cannot be mixed: a TypeError naming the argument', () => {
    const n = 8;
    const hr = new Float32Array(n), dr = up(hr);
    const hl = new Int32Array(n).fill(1), dl = up(hl);
    const hm = new Uint8Array(n).fill(1), dm = up(hm);
    const cases: [string, () => unknown][] = [
      ['options.lengths', () => groupAdvantages(dr, { groupSize: 2, estimator: 'opo', lengths: hl as unknown as DeviceArray })],
      ['options.groupIds', () => groupAdvantages(dr, { groupIds: new Int32Array(n) as unknown as DeviceArray })],
      ['options.out.groupMean', () => groupAdvantages(dr, { groupSize: 2, out: { groupMean: new Float32Array(4) as unknown as DeviceArray } })],
      ['options.lengths', () => groupAdvantages(hr, { groupSize: 2, estimator: 'opo', lengths: dl as unknown as Int32Array })],
      ['options.out.advantages', () => groupAdvantages(hr, { groupSize: 2, out: { advantages: up(hr) as unknown as Float32Array } })],
      ['rewards', () => gae(dr, hr as unknown as DeviceArray, dm, { seqLen: 4 })],
      ['mask', () => gae(dr, dr, hm as unknown as DeviceArray, { seqLen: 4 })],
      ['mask', () => gae(hr, hr, dm as unknown as Uint8Array, { seqLen: 4 })],
      ['rewards', () => gae(hr, dr as unknown as Float32Array, hm, { seqLen: 4 })],
      ['mask', () => discountedReturns(dr, hm as unknown as DeviceArray, { seqLen: 4 })],
      ['mask', () => maskedWhiten(hr, dm as unknown as Uint8Array)],
      ['options.out', () => maskedWhiten(hr, hm, { out: up(hr) as unknown as Float32Array })],
      ['options.out', () => ensembleRewards(dr, { numModels: 2, out: new Float32Array(4) as unknown as DeviceArray })],
      ['options.out', () => ensembleRewards(hr, { numModels: 2, out: up(new Float32Array(4)) as unknown as Float32Array })],
    ];
    for (const [name, call] of cases) {
      const err = thrown(call);
      expect(err, name).toBeInstanceOf(TypeError);
      expect(err.message, name).toContain(name);
    }
    // wrong dtypes on the device
    const e1 = thrown(() => groupAdvantages(dr, { groupIds: dr }));
    expect(e1).toBeInstanceOf(TypeError);
    expect(e1.message).toContain('options.groupIds');
    const e2 = thrown(() => maskedWhiten(dr, up(new Int32Array(n))));
    expect(e2).toBeInstanceOf(TypeError);
    expect(e2.message).toContain('mask');
  });

  it('bad elements become the host path RangeError (sync and Async), and overlapping outputs are refused', async () => {
    const n = 12;
    const r = randn(n, 1, 51), dr = up(r);
    // negative length, found on the device
    const lens = new Int32Array(n).fill(3);
    lens[7] = -2;
    const hostErr = thrown(() => groupAdvantages(r, { groupSize: 4, estimator: 'opo', lengths: lens }));
    const devErr = thrown(() => groupAdvantages(dr, { groupSize: 4, estimator: 'opo', lengths: up(lens) }));
    expect(devErr).toBeInstanceOf(RangeError);
    expect(devErr.message).toBe(hostErr.message);
    await expect(groupAdvantagesAsync(dr, { groupSize: 4, estimator: 'opo', lengths: up(lens) })).rejects.toThrow(hostErr.message);
    // group id out of range
    const ids = new Int32Array(n);
    ids[5] = n;
    const hostIds = thrown(() => groupAdvantages(r, { groupIds: ids }));
    const devIds = thrown(() => groupAdvantages(dr, { groupIds: up(ids) }));
    expect(devIds).toBeInstanceOf(RangeError);
    expect(devIds.message).toBe(hostIds.message);
    // bnpo group mean outside [0, 1]
    const big = new Float32Array(n).fill(5);
    const hostB = thrown(() => groupAdvantages(big, { groupSize: 4, estimator: 'bnpo' }));
    const devB = thrown(() => groupAdvantages(up(big), { groupSize: 4, estimator: 'bnpo' }));
    expect(devB).toBeInstanceOf(RangeError);
    expect(devB.message).toBe(hostB.message);
    // negative f32 mask weight in maskedWhiten and gae's whitening
    const m = new Float32Array(n).fill(1);
    m[9] = -1;
    const hostW = thrown(() => maskedWhiten(r, m));
    const devW = thrown(() => maskedWhiten(dr, up(m)));
    expect(devW).toBeInstanceOf(RangeError);
    expect(devW.message).toBe(hostW.message);
    await expect(maskedWhitenAsync(dr, up(m))).rejects.toThrow(hostW.message);
    const devG = thrown(() => gae(dr, dr, up(m), { seqLen: 4, whiten: true }));
    expect(devG).toBeInstanceOf(RangeError);
    expect(devG.message).toBe(hostW.message);
    // overlapping outputs
    const big2 = keep(cuda.alloc('f32', 2 * n));
    const view = cuda.wrap(big2.ptr + 4n, 'f32', n);
    const dv = cuda.wrap(big2.ptr, 'f32', n);
    const ov2 = thrown(() => discountedReturns(dv, up(new Uint8Array(n)), { seqLen: 4, out: view }));
    expect(ov2).toBeInstanceOf(RangeError);
    expect(ov2.message).toContain('options.out');
    const ov3 = thrown(() => gae(dv, dr, up(new Uint8Array(n)), { seqLen: 4, out: { advantages: view } }));
    expect(ov3).toBeInstanceOf(RangeError);
    expect(ov3.message).toContain('options.out.advantages');
  });
});

describe.skipIf(!available)('tokenAdvantages, klRewards and singletonBaseline on DeviceArrays', () => {
  const live: DeviceArray[] = [];
  const up = <T extends Float32Array | Int32Array | Uint8Array>(x: T) => {
    const a = cuda.upload(x as Float32Array) as DeviceArray;
    live.push(a);
    return a;
  };
  afterAll(() => {
    for (const a of live) a.free();
  });
  const B = 9, T = 13, n = B * T;
  const r = randn(n, 1, 1), lp = randn(n, 0.5, 2).map((x) => -Math.abs(x) - 0.01), spi = new Float32Array(n).fill(0.3);
  const isw = randn(n, 0.2, 3).map((x) => 1 + x), base = randn(B, 1, 4), ids = Int32Array.from([0, 1, 2, 0, 1, 2, 0, 3, 3]);
  const um = Uint8Array.from({ length: n }, (_, i) => (i % T < T - (Math.floor(i / T) * 3) % T && i % 7 !== 3 ? 1 : 0));
  const fm = Float32Array.from(um, (v, i) => (v ? 0.5 + (i % 5) / 4 : 0));
  for (const estimator of ['reinforce_plus_plus', 'remax', 'optimal_token_baseline', 'tir_optimal_token_baseline'] as const) {
    for (const kind of ['u8', 'f32', 'null'] as const) {
      it(`tokenAdvantages ${estimator}, mask ${kind}: the device gives the CPU kernel's numbers, sync and Async`, async () => {
        const hm = kind === 'u8' ? um : kind === 'f32' ? fm : null;
        const dm = hm ? up(hm) : null;
        const hostExtra = estimator === 'remax' ? { baselines: base } : estimator === 'reinforce_plus_plus' ? { gamma: 0.9 }
          : { groupIds: ids, logprobs: lp, sumPiSquared: spi, isWeights: isw };
        const devExtra = estimator === 'remax' ? { baselines: up(base) } : estimator === 'reinforce_plus_plus' ? { gamma: 0.9 }
          : { groupIds: up(ids), logprobs: up(lp), sumPiSquared: up(spi), isWeights: up(isw) };
        const want = tokenAdvantages(r, hm, { seqLen: T, estimator, ...hostExtra });
        const got = tokenAdvantages(up(r), dm, { seqLen: T, estimator, ...devExtra });
        live.push(got.advantages, got.returns);
        close(f32(got.advantages), want.advantages, 'advantages');
        close(f32(got.returns), want.returns, 'returns');
        const a = await tokenAdvantagesAsync(up(r), dm, { seqLen: T, estimator, ...devExtra });
        live.push(a.advantages, a.returns);
        expect(Array.from(f32(a.advantages))).toEqual(Array.from(f32(got.advantages)));
      });
    }
  }
  it('tokenAdvantages: a bad f32 mask weight and a bad group id give the host path\'s errors', () => {
    const m = Float32Array.from(fm);
    m[20] = -1;
    const host = thrown(() => tokenAdvantages(r, m, { seqLen: T, estimator: 'reinforce_plus_plus' }));
    const dev = thrown(() => tokenAdvantages(up(r), up(m), { seqLen: T, estimator: 'reinforce_plus_plus' }));
    expect(dev).toBeInstanceOf(RangeError);
    expect(dev.message).toBe(host.message);
  });
  for (const est of ['k1', 'k3', 'abs'] as const) {
    it(`klRewards ${est}: the device gives the CPU kernel's numbers`, async () => {
      const ref = randn(n, 2, 9);
      const want = klRewards(r, lp, ref, fm, { seqLen: T, beta: 0.2, estimator: est });
      const got = klRewards(up(r), up(lp), up(ref), up(fm), { seqLen: T, beta: 0.2, estimator: est });
      live.push(got.rewards);
      close(f32(got.rewards), want.rewards, 'rewards');
      expect(Math.abs(got.klMean - want.klMean)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want.klMean)));
      const a = await klRewardsAsync(up(r), up(lp), up(ref), null, { seqLen: T, beta: 0.2, estimator: est });
      live.push(a.rewards);
      expect(a.klMean).toBeCloseTo(klRewards(r, lp, ref, null, { seqLen: T, beta: 0.2, estimator: est }).klMean, 12);
    });
  }
  it("groupAdvantages singletonBaseline 'self' and gpg on the device", () => {
    const x = randn(40, 1, 5);
    x[0] = x[1] = x[3] = NaN;
    for (const o of [{ estimator: 'grpo' as const, singletonBaseline: 'self' as const }, { estimator: 'gpg' as const, fNorm: 0.5 }]) {
      const want = groupAdvantages(x, { groupSize: 4, ...o });
      const got = groupAdvantages(up(x), { groupSize: 4, ...o });
      live.push(got.advantages, got.groupMean, got.groupStd);
      close(f32(got.advantages), want.advantages, 'advantages');
      close(f32(got.groupMean), want.groupMean, 'groupMean');
    }
  });
});
