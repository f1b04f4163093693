// highEntropyMask: TRL's top_entropy_quantile token mask (GRPOTrainer.get_high_entropy_mask): the
// tokens whose entropy reaches the (1 - topQuantile) quantile of the batch's entropies. Its output
// is the mask to pass to a loss. The kernel: native/kernels/selection.cc; docs/policy.md#highentropymask.
// The quantile is a global order statistic over the batch: this op runs on the CPU only.
import { DeviceArray } from '../cuda.js';
import { defineOp, knownKeys, numIn, openOptions, packOptions, readOptions } from '../op.js';
import type { TokenMask } from '../types.js';
import { LOGPROBS_MIX } from './enums.js';
import { hostMaskCheck } from './policy-loss.js';

export interface HighEntropyMaskOptions {
  /** TRL top_entropy_quantile (rho): keep the top rho of the tokens by entropy, in [0, 1]. 0 keeps the highest only, 1 all. */
  topQuantile: number;
  out?: { mask?: Uint8Array };
}
export interface HighEntropyMaskResult {
  /** (n): 1 where the token counts (mask != 0) and its entropy >= threshold. */
  mask: Uint8Array;
  /** The quantile (torch.quantile, linear, in f32); NaN when no token counts or one of their entropies is NaN. */
  threshold: number;
  /** Tokens kept. */
  count: number;
}

const OPTIONS = { topQuantile: numIn(0, 1, undefined as unknown as number) };
const KEYS = knownKeys('highEntropyMask', Object.keys(OPTIONS), ['out']);

const op = defineOp({
  name: 'highEntropyMask',
  mix: LOGPROBS_MIX,
  slots: {
    entropy: { types: ['f32'], shape: 'n' },
    mask: { types: ['u8', 'f32'], shape: 'n' },
    out: { types: ['u8'], shape: 'n', out: true },
  },
  options: OPTIONS,
  scalars: ['threshold', 'count'],
  prepare(io, ...[entropy, mask, options]: [unknown, unknown, unknown]) {
    if (entropy instanceof DeviceArray) {
      throw new TypeError(`entropy: highEntropyMask runs on the CPU only (its quantile is a batch-wide order statistic), expected a Float32Array, received ${entropy}`);
    }
    const { opts, out } = openOptions(io, options, true, [[mask, 'mask']], [], ['mask'], KEYS);
    const n = io.read('entropy', entropy, 'entropy').length;
    hostMaskCheck(false, mask, 'mask', true);
    io.optional('mask', mask, 'mask', n);
    if (opts.topQuantile === undefined) throw new TypeError('options.topQuantile: expected a number in [0, 1], received undefined');
    const values = readOptions(OPTIONS, opts);
    const res = io.out('out', out.mask, 'options.out.mask', n);
    const sc = io.scalars(2);
    return {
      params: packOptions(OPTIONS, values),
      scalars: sc,
      finish: () => ({ mask: res, threshold: sc[0], count: sc[1] }) as HighEntropyMaskResult,
    };
  },
});

const typed = op.typed<
  [entropy: Float32Array, mask: TokenMask | null, options: HighEntropyMaskOptions],
  HighEntropyMaskResult,
  [entropy: Float32Array, mask: TokenMask | null, options: HighEntropyMaskOptions],
  HighEntropyMaskResult
>();

/**
 * TRL's high-entropy token mask (top_entropy_quantile, "Beyond the 80/20 Rule"): 1 at the tokens with
 * mask != 0 whose entropy is at least the (1 - topQuantile) quantile of those tokens' entropies. Pass
 * the result as the mask of a loss (TRL multiplies the token loss by it). CPU only.
 *
 * @example
 * const { mask: hi } = highEntropyMask(entropy, mask, { topQuantile: 0.2 });
 */
export const highEntropyMask = typed.sync;
/** highEntropyMask on a worker thread; leave its buffers untouched until it settles. */
export const highEntropyMaskAsync = typed.async;
