// luspoPolicyLoss: LUSPO (TRL GRPOTrainer loss_type "luspo"), with its gradient with respect to the
// log-probs. The formula: native/core/ops/luspo_policy_loss.h; docs/policy.md#luspopolicyloss.
import type { DeviceArray } from '../cuda.js';
import { finiteIn } from '../check.js';
import { num, numIn } from '../op.js';
import { defineSeqOp } from '../seq-op.js';
import type { TokenMask } from '../types.js';
import { LOGPROBS_MIX } from './enums.js';

export interface LuspoPolicyLossOptions {
  /** Tokens per sequence T. */
  seqLen: number;
  /** The sequence ratio is clipped below at 1 - epsilonLow. Default 0.2 (TRL epsilon). */
  epsilonLow?: number;
  /** ... and above at 1 + epsilonHigh. Default epsilonLow (TRL epsilon_high). */
  epsilonHigh?: number;
  /** TRL two-sided clip: the unclipped ratio is capped at delta (> 1). Default off. */
  delta?: number;
  out?: { gradLogprobs?: Float32Array };
}
export interface LuspoPolicyLossResult {
  /** The mean over sequences of each sequence's clipped GSPO loss times its token count. */
  loss: number;
  /** dLoss/dlogprobs, (B * T); 0 at masked tokens. */
  gradLogprobs: Float32Array;
  metrics: {
    /** Masked mean of [s < 1 - epsilonLow and A < 0] (TRL clip_ratio/low_mean, weighted by tokens). */
    clipFractionLow: number;
    /** Masked mean of [s > 1 + epsilonHigh and A > 0] (TRL clip_ratio/high_mean, weighted by tokens). */
    clipFractionHigh: number;
    /** Masked mean of oldLogprobs - logprobs. */
    ppoKl: number;
    /** Sum of the mask. */
    tokenCount: number;
  };
}
export interface DeviceLuspoPolicyLossOptions extends Omit<LuspoPolicyLossOptions, 'out'> {
  out?: { gradLogprobs?: DeviceArray };
}
export interface DeviceLuspoPolicyLossResult extends Omit<LuspoPolicyLossResult, 'gradLogprobs'> {
  gradLogprobs: DeviceArray<'f32'>;
}

const gt1 = (v: unknown, k: string) => {
  const x = finiteIn(v, k, -Infinity, Infinity);
  if (!(x > 1)) throw new RangeError(`${k}: expected a finite number > 1, received ${x}`);
  return x;
};

const op = defineSeqOp({
  name: 'luspoPolicyLoss',
  op: 'rk::LuspoPolicyLossOp',
  header: 'ops/luspo_policy_loss.h',
  mix: LOGPROBS_MIX,
  inputs: { logprobs: 'B*T', oldLogprobs: 'B*T', advantages: 'B | B*T' },
  grads: ['gradLogprobs'],
  options: {
    epsilonLow: numIn(0, Infinity, 0.2),
    epsilonHigh: numIn(0, Infinity, (prev) => prev.epsilonLow as number),
    delta: num(gt1, 0),
  },
  metrics: ['clipFractionLow', 'clipFractionHigh', 'ppoKl'],
});

const typed = op.typed<
  [logprobs: Float32Array, oldLogprobs: Float32Array, advantages: Float32Array, mask: TokenMask | null, options: LuspoPolicyLossOptions],
  LuspoPolicyLossResult,
  [logprobs: DeviceArray, oldLogprobs: DeviceArray, advantages: DeviceArray, mask: DeviceArray | null, options: DeviceLuspoPolicyLossOptions],
  DeviceLuspoPolicyLossResult
>();

/**
 * LUSPO over padded (B, T) log-probs: GSPO's clipped sequence ratio (the exp of the masked mean
 * log-ratio), each sequence's loss scaled by its token count, then a mean over sequences.
 *
 * With f32 DeviceArrays it runs on the GPU; gradLogprobs is a DeviceArray owned by the caller.
 *
 * Arguments:
 * - `advantages`: one per sequence (B), as TRL; or one per token (B * T), then TRL's mean over every (i, t)
 * @example
 * const { loss, gradLogprobs } = luspoPolicyLoss(lp, oldLp, adv, mask, { seqLen: 512, epsilonLow: 3e-4, epsilonHigh: 4e-4 });
 */
export const luspoPolicyLoss = typed.sync;
/** luspoPolicyLoss on a worker thread; leave its buffers untouched until it settles. */
export const luspoPolicyLossAsync = typed.async;
