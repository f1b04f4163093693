// gatedRewards: G-RA gated reward accumulation, R_b = r_high,b + 1[r_high,b >= threshold] sum_t m_bt r_low,bt
// (docs/papers/g-ra.md).
import { finiteIn, options as optionsObject } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { defineOp, knownKeys, packOptions, type OptionSpec } from '../op.js';
import type { TokenMask } from '../types.js';
import { apart, optionReader, positiveIntOption, readMask, rejectDeviceOut, seqLenArg } from './checks.js';
import { REWARDS_MIX } from './enums.js';

export interface GatedRewardsOptions {
  /** T: `lowRewards` and `mask` are [B, T] row-major. */
  seqLen: number;
  /** The gate Delta: a row's low-level rewards count when its high-level reward is >= threshold. Required. */
  threshold: number;
  /** [B] f32. */
  out?: Float32Array;
}
export interface DeviceGatedRewardsOptions extends Omit<GatedRewardsOptions, 'out'> {
  out?: DeviceArray;
}

const threshold: OptionSpec<number> = { read: (v, name) => finiteIn(v, name, -Infinity, Infinity), code: (v) => v };
const GATED_OPTIONS = { seqLen: positiveIntOption(), threshold };
const GATED_KEYS = knownKeys('gatedRewards', Object.keys(GATED_OPTIONS), ['out']);

type Args = [highRewards: unknown, lowRewards: unknown, mask: unknown, options: unknown];

const op = defineOp({
  name: 'gatedRewards',
  mix: REWARDS_MIX,
  slots: {
    highRewards: { types: ['f32'], shape: 'B' },
    lowRewards: { types: ['f32'], shape: 'B*T' },
    mask: { types: ['u8', 'f32'], shape: 'B*T' },
    out: { types: ['f32'], shape: 'B', out: true, inPlace: ['highRewards'] },
  },
  options: GATED_OPTIONS,
  prepare(io, ...[highRewards, lowRewards, mask, options]: Args) {
    io.rejectDevice(lowRewards, 'lowRewards');
    io.rejectDevice(mask, 'mask');
    rejectDeviceOut(io, options);
    const opts = optionsObject<GatedRewardsOptions>(options, 'options', true, GATED_KEYS) as Record<string, unknown>;
    const h = io.read('highRewards', highRewards, 'highRewards');
    const low = io.read('lowRewards', lowRewards, 'lowRewards');
    const n = low.length;
    const o = optionReader(GATED_OPTIONS, opts);
    const T = o.set('seqLen', seqLenArg(opts.seqLen, n, 'lowRewards'));
    const B = n / T;
    if (h.length !== B) {
      throw new RangeError(`highRewards: expected length ${B} (lowRewards.length / seqLen), received length ${h.length}`);
    }
    const m = readMask(io, mask, n);
    o.read('threshold');
    const out = io.out('out', opts.out, 'options.out', B);
    apart(out, 'options.out', h, 'highRewards');
    apart(out, 'options.out', low, 'lowRewards');
    apart(out, 'options.out', m, 'mask');
    return { params: packOptions(GATED_OPTIONS, o.values), finish: () => out as Float32Array };
  },
});

const typed = op.typed<
  [highRewards: Float32Array, lowRewards: Float32Array, mask: TokenMask | null, options: GatedRewardsOptions],
  Float32Array,
  [highRewards: DeviceArray, lowRewards: DeviceArray, mask: DeviceArray | null, options: DeviceGatedRewardsOptions],
  DeviceArray<'f32'>
>();

/**
 * G-RA gated reward accumulation ("Stabilizing Long-term Multi-turn Reinforcement Learning with
 * Gated Rewards"): per trajectory b, `R_b = r_high,b + 1[r_high,b >= threshold] sum_t m_bt r_low,bt`
 * over the [B, T] low-level (step) rewards, summed in double. A NaN high reward fails the gate.
 *
 * Gradient: `dR_b/dr_low,bt = 1[r_high,b >= threshold] m_bt` and `dR_b/dr_high,b = 1` (the gate is a
 * step: its derivative is 0 away from the threshold and undefined at it).
 *
 * On DeviceArrays (f32, mask u8 or f32) it runs on the GPU; the result is an f32 DeviceArray.
 *
 * @example
 * const R = gatedRewards(outcome, stepRewards, stepMask, { seqLen: 32, threshold: 1 });
 */
export const gatedRewards = typed.sync;
/** gatedRewards on a worker thread; leave its buffers untouched until it settles. */
export const gatedRewardsAsync = typed.async;
