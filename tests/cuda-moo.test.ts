// hypervolumeMetaReward on DeviceArrays (the numbers over more shapes are the parity harness's,
// rk_driver cuda-check): f64 points, f32 rewards and a u8 maximize on the device give the host's
// scalars and rewards; null rewards, an empty front, out buffers, Async; a value that is not finite
// is found on the device and named as on the host; host and device arrays cannot be mixed. Skipped
// without a device (or the emulated addon, scripts/cuda-emu-addon.sh).
import { describe, expect, it } from 'vitest';
import { cuda, type DeviceArray } from '../lib/cuda.js';
import { hypervolumeMetaReward, hypervolumeMetaRewardAsync } from '../lib/index.js';
import { expectClose, randn, rng } from './helpers.js';

const available = cuda.isAvailable();

/** |a - b| within 1e-12 of max(1, |b|): the device may contract a product and a sum into one FMA. */
function near(a: number, b: number, what: string) {
  expect(Math.abs(a - b), `${what}: ${a} vs ${b}`).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(b)));
}

describe.skipIf(!available)('hypervolumeMetaReward on DeviceArrays', () => {
  const q = (x: number) => Math.round(x * 4) / 4; // ties between points

  for (const [K, M, n] of [[1, 0, 1], [2, 1, 13], [3, 4, 1000], [5, 9, 257], [8, 6, 3]] as const) {
    it(`gives the host numbers, K=${K} M=${M} n=${n}, maximise and minimise`, () => {
      const r = rng(K * 31 + M);
      const front = Float64Array.from({ length: M * K }, () => q(r() * 2));
      const current = Float64Array.from({ length: K }, () => q(r() * 2));
      const reference = Float64Array.from({ length: K }, () => q(r() * 0.5));
      const maximize = Uint8Array.from({ length: K }, (_, k) => (k % 3 === 1 ? 0 : 1));
      const rewards = randn(n, 1, K + M);
      const host = hypervolumeMetaReward(rewards, current, front, reference, { maximize });
      const dev = hypervolumeMetaReward(cuda.upload(rewards), cuda.upload(current), cuda.upload(front), cuda.upload(reference), {
        maximize: cuda.upload(maximize),
      });
      near(dev.hypervolume, host.hypervolume, 'hypervolume');
      near(dev.hypervolumeBefore, host.hypervolumeBefore, 'hypervolumeBefore');
      near(dev.hvContribution, host.hvContribution, 'hvContribution');
      near(dev.metaReward, host.metaReward, 'metaReward');
      expect(dev.rewards!.dtype).toBe('f32');
      expectClose(dev.rewards!.download(), host.rewards!, 1e-6, 0, 'rewards');
    });
  }

  it('null rewards, an empty front, no maximize; out and Async agree with the sync form', async () => {
    const cur = cuda.upload(Float64Array.of(3, 2)), ref = cuda.upload(Float64Array.of(1, 1));
    const alone = hypervolumeMetaReward(null, cur, cuda.alloc('f64', 0), ref);
    expect(alone.rewards).toBeNull();
    expect(alone.hypervolume).toBe(2);
    expect(alone.hypervolumeBefore).toBe(0);
    near(alone.metaReward, 0.5 + 1.5 * Math.tanh(2), 'metaReward');
    // a dominated current point: contribution 0, meta-reward 0.5 exactly, rewards halved
    const dominated = hypervolumeMetaReward(cuda.upload(Float32Array.of(4, -3)), cuda.upload(Float64Array.of(1, 1)), cuda.upload(Float64Array.of(2, 2)), cuda.upload(Float64Array.of(0, 0)));
    expect(dominated.hvContribution).toBe(0);
    expect(dominated.metaReward).toBe(0.5);
    expect(Array.from(dominated.rewards!.download())).toEqual([2, -1.5]);
    const rewards = randn(1000, 1, 4);
    const args = [cuda.upload(Float64Array.of(0.9, 0.2, 0.4)), cuda.upload(Float64Array.of(0.5, 0.5, 0.5, 0.8, 0.1, 0.3)), cuda.upload(Float64Array.of(0, 0, 0))] as const;
    const host = hypervolumeMetaReward(rewards, Float64Array.of(0.9, 0.2, 0.4), Float64Array.of(0.5, 0.5, 0.5, 0.8, 0.1, 0.3), Float64Array.of(0, 0, 0));
    const dr = cuda.upload(rewards), out = cuda.alloc('f32', 1000);
    const a = hypervolumeMetaReward(dr, ...args);
    const b = await hypervolumeMetaRewardAsync(dr, ...args, { out: { rewards: out } });
    expect(b.rewards).toBe(out);
    expect(out.download()).toEqual(a.rewards!.download());
    expect(b.metaReward).toBe(a.metaReward);
    expect(b.hypervolume).toBe(a.hypervolume);
    near(a.hypervolume, host.hypervolume, 'hypervolume');
    expectClose(a.rewards!.download(), host.rewards!, 1e-6, 0, 'rewards');
  });

  it('a value that is not finite is found on the device and named as on the host', async () => {
    const c = Float64Array.of(1, 1), f = Float64Array.of(0.5, 0.5, 0.7, 0.2), ref = Float64Array.of(0, 0);
    const bad: [Float64Array, Float64Array, Float64Array, RegExp][] = [
      [Float64Array.of(1, NaN), f, ref, /^current: expected finite values, received NaN at index 1$/],
      [c, Float64Array.of(0.5, 0.5, 0.7, -Infinity), ref, /^front: expected finite values, received -Infinity at index 3$/],
      [c, f, Float64Array.of(0, Infinity), /^reference: expected finite values, received Infinity at index 1$/],
    ];
    for (const [cur, fr, rf, want] of bad) {
      expect(() => hypervolumeMetaReward(null, cur, fr, rf)).toThrow(want);
      const dev = [cuda.upload(cur), cuda.upload(fr), cuda.upload(rf)] as const;
      expect(() => hypervolumeMetaReward(cuda.upload(Float32Array.of(1)), ...dev)).toThrow(want);
      await expect(hypervolumeMetaRewardAsync(null, ...dev)).rejects.toThrow(want);
      expect(() => hypervolumeMetaReward(null, ...dev)).toThrow(RangeError);
    }
  });

  it('checks dtypes, lengths and mixing before the device runs', () => {
    const c = cuda.upload(Float64Array.of(1, 1)), f = cuda.upload(Float64Array.of(0.5, 0.5)), ref = cuda.upload(Float64Array.of(0, 0));
    const c32 = cuda.upload(Float32Array.of(1, 1));
    expect(() => hypervolumeMetaReward(null, c32, f, ref)).toThrow(/^current: expected a DeviceArray of dtype 'f64', received DeviceArray\(f32, 2\)/);
    expect(() => hypervolumeMetaReward(cuda.upload(Float64Array.of(1)), c, f, ref)).toThrow(/^rewards: expected a DeviceArray of dtype 'f32'/);
    expect(() => hypervolumeMetaReward(null, c, f, cuda.upload(Float64Array.of(0)))).toThrow(/^reference: expected length 2/);
    expect(() => hypervolumeMetaReward(null, c, cuda.upload(Float64Array.of(0.5)), ref)).toThrow(/^front: expected a multiple of K = 2/);
    expect(() => hypervolumeMetaReward(null, c, f, ref, { maximize: cuda.upload(Uint8Array.of(1)) })).toThrow(/^options.maximize: expected length 2/);
    expect(() => hypervolumeMetaReward(null, c, f, ref, { maximize: Uint8Array.of(1, 0) as unknown as DeviceArray })).toThrow(
      /^options.maximize: expected a DeviceArray \(current is a DeviceArray; host and device arrays cannot be mixed in one call\)/,
    );
    expect(() => hypervolumeMetaReward(Float32Array.of(1) as unknown as DeviceArray, c, f, ref)).toThrow(/^rewards: expected a DeviceArray/);
    expect(() => hypervolumeMetaReward(null, c, Float64Array.of(0.5, 0.5) as unknown as DeviceArray, ref)).toThrow(/^front: expected a DeviceArray/);
    // the host path (current a Float64Array) refuses DeviceArrays the other way round
    expect(() => hypervolumeMetaReward(cuda.upload(Float32Array.of(1)) as unknown as Float32Array, Float64Array.of(1, 1), Float64Array.of(0.5, 0.5), Float64Array.of(0, 0))).toThrow(
      /^rewards: expected a host TypedArray \(current is a host array; host and device arrays cannot be mixed in one call\)/,
    );
    expect(() => hypervolumeMetaReward(null, Float64Array.of(1, 1), f as unknown as Float64Array, Float64Array.of(0, 0))).toThrow(/^front: expected a host TypedArray/);
    const out = cuda.alloc('f32', 2), dr = cuda.upload(Float32Array.of(1, 2));
    expect(() => hypervolumeMetaReward(dr, c, f, ref, { out: { rewards: dr } })).toThrow(/^options.out.rewards: expected a buffer apart from the input rewards/);
    expect(hypervolumeMetaReward(dr, c, f, ref, { out: { rewards: out } }).rewards).toBe(out);
  });
});
