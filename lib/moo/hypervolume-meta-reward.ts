// hypervolumeMetaReward: the hypervolume-guided meta-reward of "Learning to Optimize Multi-Objective
// Alignment Through Dynamic Reward Weighting" (its code: verl/utils/reward_score/dynamic_math/
// hypervolumn_contribution.py compute_score, used by verl/trainer/ppo/ray_trainer_vanilla.py). The
// formula: native/core/moo.h (hypervolume, hv_scalars); docs/papers/dynamic-reward-weighting.md.
// On the host or on the device (f64 DeviceArrays for the points): the device path is for pipelines
// that keep the rewards on the GPU, not for speed (the hypervolume is one GPU thread's work).
import type { DeviceArray } from '../cuda.js';
import { defineOp, knownKeys, openOptions } from '../op.js';

export interface HypervolumeMetaRewardOptions {
  /** (K): 1 where an objective is maximised, 0 where it is minimised (the code's `maximize`). Default: all maximised. */
  maximize?: Uint8Array;
  out?: { rewards?: Float32Array };
}
export interface HypervolumeMetaRewardResult {
  /** The rewards times metaReward (null when rewards is null). */
  rewards: Float32Array | null;
  /** 0.5 + 1.5 tanh(hvContribution). */
  metaReward: number;
  /** max(0, hypervolume - hypervolumeBefore): the contribution of `current`. */
  hvContribution: number;
  /** The hypervolume of front and current above the reference. */
  hypervolume: number;
  /** The hypervolume of front alone. */
  hypervolumeBefore: number;
}
export interface DeviceHypervolumeMetaRewardOptions {
  /** (K) u8 DeviceArray, as on the host. */
  maximize?: DeviceArray;
  out?: { rewards?: DeviceArray };
}
export interface DeviceHypervolumeMetaRewardResult extends Omit<HypervolumeMetaRewardResult, 'rewards'> {
  /** The rewards times metaReward (null when rewards is null). */
  rewards: DeviceArray<'f32'> | null;
}

/** The most objectives (the hypervolume's slicing depth). */
export const MAX_HV_OBJECTIVES = 8;
const KEYS = knownKeys('hypervolumeMetaReward', ['maximize', 'out']);

function finiteAll(a: Float64Array, name: string): void {
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new RangeError(`${name}: expected finite values, received ${a[i]} at index ${i}`);
  }
}

const op = defineOp({
  name: 'hypervolumeMetaReward',
  mix: 'current is a DeviceArray',
  deviceArg: 1,
  slots: {
    rewards: { types: ['f32'], shape: 'N' },
    current: { types: ['f64'], shape: 'K' },
    front: { types: ['f64'], shape: 'M*K' },
    reference: { types: ['f64'], shape: 'K' },
    maximize: { types: ['u8'], shape: 'K' },
    out: { types: ['f32'], shape: 'N', out: true },
  },
  options: {},
  scalars: ['metaReward', 'hvContribution', 'hypervolume', 'hypervolumeBefore'],
  prepare(io, ...[rewards, current, front, reference, options]: [unknown, unknown, unknown, unknown, unknown]) {
    const { opts, out } = openOptions(io, options, false, [[rewards, 'rewards'], [front, 'front'], [reference, 'reference']], ['maximize'], ['rewards'], KEYS);
    const r = io.optional<Float32Array | DeviceArray>('rewards', rewards, 'rewards');
    const cur = io.read<Float64Array | DeviceArray>('current', current, 'current');
    const K = cur.length;
    if (K < 1 || K > MAX_HV_OBJECTIVES) throw new RangeError(`current: expected 1 to ${MAX_HV_OBJECTIVES} objectives, received length ${K}`);
    const f = io.read<Float64Array | DeviceArray>('front', front, 'front');
    if (f.length % K !== 0) throw new RangeError(`front: expected a multiple of K = ${K} (the length of current) values, received length ${f.length}`);
    const ref = io.read<Float64Array | DeviceArray>('reference', reference, 'reference', K);
    if (!io.device) {
      // the device checks its own (the same message, the value read back)
      finiteAll(cur as Float64Array, 'current');
      finiteAll(f as Float64Array, 'front');
      finiteAll(ref as Float64Array, 'reference');
    }
    io.optional('maximize', opts.maximize, 'options.maximize', K);
    if (out.rewards !== undefined && r === null) throw new TypeError('options.out.rewards: expected undefined without rewards (null), received an array');
    const res = r === null ? null : io.out<Float32Array | DeviceArray>('out', out.rewards, 'options.out.rewards', r.length);
    const sc = io.scalars(4);
    return {
      params: null,
      scalars: sc,
      finish: () => ({ rewards: res, metaReward: sc[0], hvContribution: sc[1], hypervolume: sc[2], hypervolumeBefore: sc[3] }),
    };
  },
});

/** hypervolumeMetaReward's signature: host arrays, or DeviceArrays (f32 rewards, f64 points, u8 maximize). */
export interface HypervolumeMetaRewardFn {
  (rewards: DeviceArray | null, current: DeviceArray, front: DeviceArray, reference: DeviceArray, options?: DeviceHypervolumeMetaRewardOptions): DeviceHypervolumeMetaRewardResult;
  (rewards: Float32Array | null, current: Float64Array, front: Float64Array, reference: Float64Array, options?: HypervolumeMetaRewardOptions): HypervolumeMetaRewardResult;
}
/** hypervolumeMetaRewardAsync's signature (hypervolumeMetaReward's in a Promise). */
export interface HypervolumeMetaRewardAsyncFn {
  (rewards: DeviceArray | null, current: DeviceArray, front: DeviceArray, reference: DeviceArray, options?: DeviceHypervolumeMetaRewardOptions): Promise<DeviceHypervolumeMetaRewardResult>;
  (rewards: Float32Array | null, current: Float64Array, front: Float64Array, reference: Float64Array, options?: HypervolumeMetaRewardOptions): Promise<HypervolumeMetaRewardResult>;
}
const typed = op.as<HypervolumeMetaRewardFn, HypervolumeMetaRewardAsyncFn>();

/**
 * The hypervolume-guided meta-reward: the exact hypervolume (the code's recursive slicing, any
 * K <= 8) of the Pareto buffer `front` (M points of K objectives, M may be 0) with and without the
 * model's current validation point, above `reference` (the first validation point, the code's
 * buffer[0]); the contribution dHV = max(0, with - without); metaReward = 0.5 + 1.5 tanh(dHV); and the
 * rewards multiplied by it. Append `current` to the buffer when hvContribution > 0 (as the code does).
 * With DeviceArrays (`current` decides: f64 points, f32 rewards, u8 maximize) it runs on the GPU,
 * for pipelines that keep the rewards there; the scalars come back as numbers.
 *
 * @example
 * const { rewards: scaled, hvContribution } = hypervolumeMetaReward(rewards, current, front, reference);
 */
export const hypervolumeMetaReward = typed.sync;
/** hypervolumeMetaReward on a worker thread; leave its buffers untouched until it settles. */
export const hypervolumeMetaRewardAsync = typed.async;
