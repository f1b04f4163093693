// maskedWhiten: verl's masked_whiten, (x - mean) / sqrt(var + eps) with the mask-weighted mean and
// (unbiased) variance over every masked-in element; masked-out positions get 0 (docs/advantages.md).
import { options as optionsObject } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { defineOp, flag, knownKeys, numIn, packOptions, readOptions } from '../op.js';
import type { TokenMask } from '../types.js';
import { apart, readMask, rejectDeviceOut } from './checks.js';
import { VALUES_MIX } from './enums.js';

export interface MaskedWhitenOptions {
  /** true (default): zero mean; false: add the mean back (verl shift_mean). */
  shiftMean?: boolean;
  /** Bessel-corrected variance (default true, verl). */
  unbiased?: boolean;
  /** Added to the variance under the square root. Default 1e-8 (verl). */
  eps?: number;
  out?: Float32Array;
}
export interface DeviceMaskedWhitenOptions extends Omit<MaskedWhitenOptions, 'out'> {
  out?: DeviceArray;
}

const WHITEN_OPTIONS = { shiftMean: flag(true), unbiased: flag(true), eps: numIn(0, Infinity, 1e-8) };
const WHITEN_KEYS = knownKeys('maskedWhiten', Object.keys(WHITEN_OPTIONS), ['out']);

const op = defineOp({
  name: 'maskedWhiten',
  mix: VALUES_MIX,
  slots: {
    values: { types: ['f32'], shape: 'n' },
    mask: { types: ['u8', 'f32'], shape: 'n' },
    out: { types: ['f32'], shape: 'n', out: true, inPlace: ['values', 'mask'] },
  },
  options: WHITEN_OPTIONS,
  prepare(io, ...[values, mask, options]: [values: unknown, mask: unknown, options: unknown]) {
    io.rejectDevice(mask, 'mask');
    rejectDeviceOut(io, options);
    const opts = optionsObject<MaskedWhitenOptions>(options, 'options', false, WHITEN_KEYS) as Record<string, unknown>;
    const v = io.read('values', values, 'values');
    const m = readMask(io, mask, v.length);
    const params = packOptions(WHITEN_OPTIONS, readOptions(WHITEN_OPTIONS, opts));
    const out = io.out('out', opts.out, 'options.out', v.length);
    apart(out, 'options.out', v, 'values');
    apart(out, 'options.out', m, 'mask');
    return { params, finish: () => out as Float32Array };
  },
});

const typed = op.typed<
  [values: Float32Array, mask: TokenMask | null, options?: MaskedWhitenOptions],
  Float32Array,
  [values: DeviceArray, mask: DeviceArray | null, options?: DeviceMaskedWhitenOptions],
  DeviceArray<'f32'>
>();

/**
 * verl's `masked_whiten`: `(x - mean) / sqrt(var + 1e-8)` with the mask-weighted mean and unbiased
 * variance over every masked-in element; masked-out positions get 0. `out` may be `values` itself.
 *
 * On DeviceArrays (f32, mask u8 or f32) it runs on the GPU; the result is an f32 DeviceArray.
 *
 * @example
 * const adv = maskedWhiten(advantages, mask);
 */
export const maskedWhiten = typed.sync;
/** maskedWhiten on a worker thread; leave its buffers untouched until it settles. */
export const maskedWhitenAsync = typed.async;
