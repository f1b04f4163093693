// vespoPolicyLoss: VESPO (TRL GRPOTrainer loss_type "vespo"), with its gradient with respect to the
// log-probs. The formula: native/core/ops/vespo_policy_loss.h; docs/policy.md#vespopolicyloss.
import type { DeviceArray } from '../cuda.js';
import { finitePositive } from '../check.js';
import { enumOf, num, numIn } from '../op.js';
import { defineSeqOp } from '../seq-op.js';
import type { TokenMask } from '../types.js';
import { AGGREGATIONS, LOGPROBS_MIX, type LossAggregation } from './enums.js';

export interface VespoPolicyLossOptions {
  /** Tokens per sequence T. */
  seqLen: number;
  /** Power exponent k of the Gamma weight where A >= 0. Default 2 (TRL vespo_k_pos). */
  kPos?: number;
  /** Decay lambda of the Gamma weight where A >= 0 (at least 1e-4 is used). Default 3 (TRL vespo_lambda_pos). */
  lambdaPos?: number;
  /** k where A < 0. Default 3 (TRL vespo_k_neg). */
  kNeg?: number;
  /** lambda where A < 0. Default 2 (TRL vespo_lambda_neg). */
  lambdaNeg?: number;
  /** Default 'token-mean' (TRL divides by the batch's token count). */
  aggregation?: LossAggregation;
  /** Replaces the aggregation's denominator, as in policyLoss (TRL's num_items_in_batch). Default off. */
  normalizer?: number;
  out?: { gradLogprobs?: Float32Array };
}
export interface VespoPolicyLossResult {
  /** The aggregated -phi * A * logprobs (phi held constant). */
  loss: number;
  /** dLoss/dlogprobs, (B * T); 0 at masked tokens. */
  gradLogprobs: Float32Array;
  metrics: {
    /** Masked mean of the Gamma weight phi (TRL vespo/phi_seq_mean, weighted by tokens). */
    phi: number;
    /** Masked mean of oldLogprobs - logprobs. */
    ppoKl: number;
    /** Sum of the mask. */
    tokenCount: number;
  };
}
export interface DeviceVespoPolicyLossOptions extends Omit<VespoPolicyLossOptions, 'out'> {
  out?: { gradLogprobs?: DeviceArray };
}
export interface DeviceVespoPolicyLossResult extends Omit<VespoPolicyLossResult, 'gradLogprobs'> {
  gradLogprobs: DeviceArray<'f32'>;
}

const op = defineSeqOp({
  name: 'vespoPolicyLoss',
  op: 'rk::VespoPolicyLossOp',
  header: 'ops/vespo_policy_loss.h',
  mix: LOGPROBS_MIX,
  inputs: { logprobs: 'B*T', oldLogprobs: 'B*T', advantages: 'B | B*T' },
  grads: ['gradLogprobs'],
  options: {
    kPos: numIn(0, Infinity, 2),
    lambdaPos: numIn(0, Infinity, 3),
    kNeg: numIn(0, Infinity, 3),
    lambdaNeg: numIn(0, Infinity, 2),
    aggregation: enumOf<LossAggregation>(AGGREGATIONS, 'token-mean'),
    normalizer: num(finitePositive, 0),
  },
  metrics: ['phi', 'ppoKl'],
});

const typed = op.typed<
  [logprobs: Float32Array, oldLogprobs: Float32Array, advantages: Float32Array, mask: TokenMask | null, options: VespoPolicyLossOptions],
  VespoPolicyLossResult,
  [logprobs: DeviceArray, oldLogprobs: DeviceArray, advantages: DeviceArray, mask: DeviceArray | null, options: DeviceVespoPolicyLossOptions],
  DeviceVespoPolicyLossResult
>();

/**
 * VESPO over padded (B, T) log-probs: REINFORCE scaled per sequence by the Gamma weight
 * phi(w) = e^lambda w^k e^(-lambda w) of the sequence ratio w (the exp of the masked summed log-ratio).
 *
 * With f32 DeviceArrays it runs on the GPU; gradLogprobs is a DeviceArray owned by the caller.
 *
 * Arguments:
 * - `advantages`: one per sequence (B) or one per token (B * T; k and lambda then follow each token's sign)
 * @example
 * const { loss, gradLogprobs } = vespoPolicyLoss(lp, oldLp, adv, mask, { seqLen: 512 });
 */
export const vespoPolicyLoss = typed.sync;
/** vespoPolicyLoss on a worker thread; leave its buffers untouched until it settles. */
export const vespoPolicyLossAsync = typed.async;
