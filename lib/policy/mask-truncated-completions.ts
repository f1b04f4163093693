// maskTruncatedCompletions: TRL's mask_truncated_completions (GRPOTrainer): a completion whose last
// token is neither EOS nor the pad token was cut at the length limit, and leaves the loss. The
// formula: native/core/truncation.h; docs/policy.md#masktruncatedcompletions.
import type { DeviceArray } from '../cuda.js';
import { defineOp, int, knownKeys, openOptions, packOptions, readOptions } from '../op.js';
import type { TokenMask } from '../types.js';
import { hostMaskCheck } from './policy-loss.js';

export interface MaskTruncatedCompletionsOptions {
  /** Tokens per completion T. */
  seqLen: number;
  /** The EOS token id. */
  eosTokenId: number;
  /** The pad token id (also ends a completion, as in TRL). Default none. */
  padTokenId?: number;
  out?: { mask?: Float32Array; truncated?: Float32Array };
}
export interface MaskTruncatedCompletionsResult {
  /** (B * T): the mask's weight (1 without a mask) in a complete row, 0 in a truncated one. */
  mask: Float32Array;
  /** (B): 1 for a truncated completion, else 0. */
  truncated: Float32Array;
}
export interface DeviceMaskTruncatedCompletionsOptions extends Omit<MaskTruncatedCompletionsOptions, 'out'> {
  out?: { mask?: DeviceArray; truncated?: DeviceArray };
}
export interface DeviceMaskTruncatedCompletionsResult {
  mask: DeviceArray<'f32'>;
  truncated: DeviceArray<'f32'>;
}

const OPTIONS = {
  seqLen: int(1, 2 ** 31 - 1),
  eosTokenId: int(0, 2 ** 31 - 1),
  padTokenId: int(-1, 2 ** 31 - 1, -1),
};
const OUTS = ['mask', 'truncated'] as const;
const KEYS = knownKeys('maskTruncatedCompletions', Object.keys(OPTIONS), ['out']);

const op = defineOp({
  name: 'maskTruncatedCompletions',
  mix: 'the completion ids are a DeviceArray',
  slots: {
    completionIds: { types: ['i32'], shape: 'B*T' },
    mask: { types: ['u8', 'f32'], shape: 'B*T' },
    out: { types: ['f32'], shape: 'B*T', out: true },
    truncated: { types: ['f32'], shape: 'B', out: true },
  },
  options: OPTIONS,
  scalars: [],
  prepare(io, ...[ids, mask, options]: [unknown, unknown, unknown]) {
    const { opts, out } = openOptions(io, options, true, [[mask, 'mask']], [], OUTS, KEYS);
    const n = io.read('completionIds', ids, 'completionIds').length;
    const values = readOptions(OPTIONS, opts);
    const T = values.seqLen;
    if (n % T !== 0) throw new RangeError(`options.seqLen: expected a divisor of the length of completionIds (${n}), received ${T}`);
    hostMaskCheck(io.device, mask, 'mask', true);
    io.optional('mask', mask, 'mask', n);
    const res = io.out('out', out.mask, 'options.out.mask', n);
    const truncated = io.out('truncated', out.truncated, 'options.out.truncated', n / T);
    return { params: packOptions(OPTIONS, values), scalars: null, finish: () => ({ mask: res, truncated }) };
  },
});

const typed = op.typed<
  [completionIds: Int32Array, mask: TokenMask | null, options: MaskTruncatedCompletionsOptions],
  MaskTruncatedCompletionsResult,
  [completionIds: DeviceArray, mask: DeviceArray | null, options: DeviceMaskTruncatedCompletionsOptions],
  DeviceMaskTruncatedCompletionsResult
>();

/**
 * TRL's mask_truncated_completions: the completion mask with every truncated completion (its last
 * token, the last one with mask != 0, is neither eosTokenId nor padTokenId) zeroed, and the flags.
 * Pass the mask to the loss (TRL also leaves these tokens out of its token counts).
 *
 * With DeviceArrays (i32 ids, u8 / f32 mask) it runs on the GPU.
 *
 * @example
 * const { mask: loss_mask } = maskTruncatedCompletions(ids, mask, { seqLen: 512, eosTokenId: 2, padTokenId: 0 });
 */
export const maskTruncatedCompletions = typed.sync;
/** maskTruncatedCompletions on a worker thread; leave its buffers untouched until it settles. */
export const maskTruncatedCompletionsAsync = typed.async;
