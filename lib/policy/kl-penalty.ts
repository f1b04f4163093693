// klPenalty: the elementwise KL estimators between the policy and a reference, with the gradient
// with respect to the policy's log-probs (docs/policy.md).
//
// logprobs, refLogprobs, mask: (n).  d = logprobs - refLogprobs
//   k1 = d, abs = |d|, k2 = d^2/2, k3 = exp(-d) + d - 1 (verl's clamps), k3+ = k3's value with k2's gradient
import { options as optionsObject } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { defineOp, enumOf, knownKeysMoved, movedToArgument, openOptions, packOptions, readOptions } from '../op.js';
import type { TokenMask } from '../types.js';
import { ESTIMATORS, LOGPROBS_MIX, type KlEstimator } from './enums.js';
import { hostMaskCheck } from './policy-loss.js';
import { optionsInMaskPlace } from '../check.js';

export interface KlPenaltyOptions {
  /** Default 'k3' (verl low_var_kl with its clamps). */
  estimator?: KlEstimator;
  /** Caller-owned outputs (n each). */
  out?: { kl?: Float32Array; grad?: Float32Array };
}

export interface KlPenaltyResult {
  /** The estimate per element. */
  kl: Float32Array;
  /** Its derivative with respect to logprobs (k3+: k2's gradient, d). */
  grad: Float32Array;
  /** The mask-weighted mean of kl (0 when the mask sums to 0). */
  mean: number;
}

/** klPenalty options when the log-probs are DeviceArrays. */
export interface DeviceKlPenaltyOptions extends Omit<KlPenaltyOptions, 'out'> {
  /** Caller-owned f32 DeviceArrays (n each). */
  out?: { kl?: DeviceArray; grad?: DeviceArray };
}

/** klPenalty on the device: kl and grad are f32 DeviceArrays (owned by the caller), mean is downloaded. */
export interface DeviceKlPenaltyResult {
  kl: DeviceArray<'f32'>;
  grad: DeviceArray<'f32'>;
  mean: number;
}

const KL_OPTIONS = { estimator: enumOf(ESTIMATORS, 'k3') };

const KL_OUTS = ['kl', 'grad'] as const;
const KL_CALL = 'klPenalty(logprobs, refLogprobs, mask, options)';
const KL_KEYS = knownKeysMoved('klPenalty', { mask: movedToArgument('the mask', KL_CALL) }, Object.keys(KL_OPTIONS), ['out']);

const op = defineOp({
  name: 'klPenalty',
  mix: LOGPROBS_MIX,
  slots: {
    logprobs: { types: ['f32'], shape: 'n' },
    refLogprobs: { types: ['f32'], shape: 'n' },
    mask: { types: ['u8', 'f32'], shape: 'n' },
    kl: { types: ['f32'], shape: 'n', out: true },
    grad: { types: ['f32'], shape: 'n', out: true },
  },
  options: KL_OPTIONS,
  scalars: ['mean'],
  prepare(io, ...[logprobs, refLogprobs, mask, options]: [logprobs: unknown, refLogprobs: unknown, mask: unknown, options: unknown]) {
    optionsInMaskPlace(mask, options, KL_CALL);
    const { opts, out } = openOptions(io, options, false, [[refLogprobs, 'refLogprobs'], [mask, 'mask']], [], KL_OUTS, KL_KEYS);
    const n = io.read('logprobs', logprobs, 'logprobs').length;
    io.read('refLogprobs', refLogprobs, 'refLogprobs', n);
    const values = readOptions(KL_OPTIONS, opts);
    hostMaskCheck(io.device, mask, 'mask', true);
    io.optional('mask', mask, 'mask', n);
    if (opts.out !== undefined) optionsObject(opts.out, 'options.out', true);
    const kl = io.out('kl', out.kl, 'options.out.kl', n);
    const grad = io.out('grad', out.grad, 'options.out.grad', n);
    const scalars = io.scalars(1);
    return {
      params: packOptions(KL_OPTIONS, values),
      scalars,
      finish: () => ({ kl, grad, mean: scalars[0] }) as KlPenaltyResult,
    };
  },
});

const typed = op.typed<
  [logprobs: Float32Array, refLogprobs: Float32Array, mask?: TokenMask | null, options?: KlPenaltyOptions],
  KlPenaltyResult,
  [logprobs: DeviceArray, refLogprobs: DeviceArray, mask?: DeviceArray | null, options?: DeviceKlPenaltyOptions],
  DeviceKlPenaltyResult
>();

/**
 * Elementwise KL estimate between the policy and a reference from per-token log-probs, with its
 * gradient with respect to `logprobs`: k1 = d, abs = |d|, k2 = d^2/2, k3 = exp(-d) + d - 1 (verl's
 * clamps), k3+ = k3's value with k2's gradient, where d = logprobs - refLogprobs.
 *
 * `mask` (1/0 bytes or f32 weights, or null / absent: every element counts): masked-out elements
 * give 0 and a zero gradient; `mean` is weighted by it.
 *
 * With f32 DeviceArrays it runs on the GPU: kl and grad are f32 DeviceArrays (owned by the caller), mean is downloaded.
 *
 * @example
 * const { kl, grad, mean } = klPenalty(logprobs, refLogprobs, mask, { estimator: 'k3+' });
 */
export const klPenalty = typed.sync;
/** klPenalty on a worker thread; leave its buffers untouched until it settles. */
export const klPenaltyAsync = typed.async;
