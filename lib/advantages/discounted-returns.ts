// discountedReturns: G_t = sum_k gamma^k r_{t+k} over the response tokens of each row of a padded
// (B, T) tensor (masked tokens are skipped and get 0); docs/advantages.md.
import { options as optionsObject } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { defineOp, knownKeys, numIn, packOptions } from '../op.js';
import type { TokenMask } from '../types.js';
import { apart, optionReader, positiveIntOption, readMask, rejectDeviceOut, seqLenArg } from './checks.js';
import { REWARDS_MIX } from './enums.js';

export interface DiscountedReturnsOptions {
  seqLen: number;
  /** Default 1. */
  gamma?: number;
  out?: Float32Array;
}
export interface DeviceDiscountedReturnsOptions extends Omit<DiscountedReturnsOptions, 'out'> {
  out?: DeviceArray;
}

const DISCOUNTED_OPTIONS = { seqLen: positiveIntOption(), gamma: numIn(0, 1, 1) };
const DISCOUNTED_KEYS = knownKeys('discountedReturns', Object.keys(DISCOUNTED_OPTIONS), ['out']);

const op = defineOp({
  name: 'discountedReturns',
  mix: REWARDS_MIX,
  slots: {
    rewards: { types: ['f32'], shape: 'B*T' },
    mask: { types: ['u8', 'f32'], shape: 'B*T' },
    out: { types: ['f32'], shape: 'B*T', out: true, inPlace: ['rewards', 'mask'] },
  },
  options: DISCOUNTED_OPTIONS,
  prepare(io, ...[rewards, mask, options]: [rewards: unknown, mask: unknown, options: unknown]) {
    io.rejectDevice(mask, 'mask');
    rejectDeviceOut(io, options);
    const opts = optionsObject<DiscountedReturnsOptions>(options, 'options', true, DISCOUNTED_KEYS) as Record<string, unknown>;
    const r = io.read('rewards', rewards, 'rewards');
    const n = r.length;
    const o = optionReader(DISCOUNTED_OPTIONS, opts);
    o.set('seqLen', seqLenArg(opts.seqLen, n, 'rewards'));
    const m = readMask(io, mask, n);
    o.read('gamma');
    const out = io.out('out', opts.out, 'options.out', n);
    apart(out, 'options.out', r, 'rewards');
    apart(out, 'options.out', m, 'mask');
    return { params: packOptions(DISCOUNTED_OPTIONS, o.values), finish: () => out as Float32Array };
  },
});

const typed = op.typed<
  [rewards: Float32Array, mask: TokenMask | null, options: DiscountedReturnsOptions],
  Float32Array,
  [rewards: DeviceArray, mask: DeviceArray | null, options: DeviceDiscountedReturnsOptions],
  DeviceArray<'f32'>
>();

/**
 * Discounted returns `G_t = sum_k gamma^k r_{t+k}` over the response tokens of each row of a
 * padded [B, T] tensor (masked tokens are skipped and get 0).
 *
 * On DeviceArrays (f32, mask u8 or f32) it runs on the GPU; the result is an f32 DeviceArray.
 *
 * @example
 * const returns = discountedReturns(tokenRewards, mask, { seqLen: 512, gamma: 0.99 });
 */
export const discountedReturns = typed.sync;
/** discountedReturns on a worker thread; leave its buffers untouched until it settles. */
export const discountedReturnsAsync = typed.async;
