// discountedCumsum: the masked discounted reverse cumulative sum G_t = sum_{s>=t} gamma^(s-t) m_s x_s
// over every position of a padded (B, T) tensor, and its adjoint (docs/papers/subpo.md).
import { options as optionsObject } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { defineOp, flag, knownKeys, numIn, packOptions } from '../op.js';
import type { TokenMask } from '../types.js';
import { apart, optionReader, positiveIntOption, readMask, rejectDeviceOut, seqLenArg } from './checks.js';
import { REWARDS_MIX } from './enums.js';

export interface DiscountedCumsumOptions {
  /** T: `values` and `mask` are [B, T] row-major. */
  seqLen: number;
  /** Discount in [0, 1]. Default 1. */
  gamma?: number;
  /**
   * false (default): the reverse sum `G_t = sum_{s>=t} gamma^(s-t) m_s x_s`. true: its adjoint (the
   * vector-Jacobian product), the forward sum `y_s = m_s sum_{t<=s} gamma^(s-t) x_t`: pass the
   * gradient wrt G as `values` to get the gradient wrt x.
   */
  adjoint?: boolean;
  out?: Float32Array;
}
export interface DeviceDiscountedCumsumOptions extends Omit<DiscountedCumsumOptions, 'out'> {
  out?: DeviceArray;
}

const CUMSUM_OPTIONS = { seqLen: positiveIntOption(), gamma: numIn(0, 1, 1), adjoint: flag(false) };
const CUMSUM_KEYS = knownKeys('discountedCumsum', Object.keys(CUMSUM_OPTIONS), ['out']);

const op = defineOp({
  name: 'discountedCumsum',
  mix: REWARDS_MIX,
  slots: {
    values: { types: ['f32'], shape: 'B*T' },
    mask: { types: ['u8', 'f32'], shape: 'B*T' },
    out: { types: ['f32'], shape: 'B*T', out: true, inPlace: ['values'] },
  },
  options: CUMSUM_OPTIONS,
  prepare(io, ...[values, mask, options]: [values: unknown, mask: unknown, options: unknown]) {
    io.rejectDevice(mask, 'mask');
    rejectDeviceOut(io, options);
    const opts = optionsObject<DiscountedCumsumOptions>(options, 'options', true, CUMSUM_KEYS) as Record<string, unknown>;
    const v = io.read('values', values, 'values');
    const n = v.length;
    const o = optionReader(CUMSUM_OPTIONS, opts);
    o.set('seqLen', seqLenArg(opts.seqLen, n, 'values'));
    const m = readMask(io, mask, n);
    o.read('gamma');
    o.read('adjoint');
    const out = io.out('out', opts.out, 'options.out', n);
    apart(out, 'options.out', v, 'values');
    apart(out, 'options.out', m, 'mask');
    return { params: packOptions(CUMSUM_OPTIONS, o.values), finish: () => out as Float32Array };
  },
});

const typed = op.typed<
  [values: Float32Array, mask: TokenMask | null, options: DiscountedCumsumOptions],
  Float32Array,
  [values: DeviceArray, mask: DeviceArray | null, options: DeviceDiscountedCumsumOptions],
  DeviceArray<'f32'>
>();

/**
 * The masked discounted reverse cumulative sum `G_t = sum_{s>=t} gamma^(s-t) m_s x_s` of each row
 * of a padded [B, T] tensor, written at every position (step-level returns, SubPO's marginal-gain
 * sums). The discount is positional: a masked position adds nothing but the discount runs over
 * it. `discountedReturns` instead skips masked positions (its discount counts response tokens
 * only) and writes 0 there; the two agree on the unmasked positions of a row whose unmasked tokens
 * are contiguous, and for any mask when gamma = 1 (docs/papers/subpo.md).
 *
 * With `adjoint: true` it computes the gradient: `y_s = m_s sum_{t<=s} gamma^(s-t) x_t`.
 *
 * @example
 * const G = discountedCumsum(stepRewards, mask, { seqLen: 64, gamma: 0.9 });
 * const dRewards = discountedCumsum(dG, mask, { seqLen: 64, gamma: 0.9, adjoint: true });
 */
export const discountedCumsum = typed.sync;
/** discountedCumsum on a worker thread; leave its buffers untouched until it settles. */
export const discountedCumsumAsync = typed.async;
