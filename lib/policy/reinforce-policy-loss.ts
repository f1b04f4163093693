// reinforcePolicyLoss: verl's REINFORCE loss (compute_policy_loss_reinforce), with its gradient with
// respect to the log-probs. The formula: native/core/ops/reinforce_policy_loss.h;
// docs/policy.md#reinforcepolicyloss.
import type { DeviceArray } from '../cuda.js';
import { finitePositive } from '../check.js';
import { enumOf, num } from '../op.js';
import { defineSeqOp } from '../seq-op.js';
import type { TokenMask } from '../types.js';
import { AGGREGATIONS, LOGPROBS_MIX, type LossAggregation } from './enums.js';

export interface ReinforcePolicyLossOptions {
  /** Tokens per sequence T. */
  seqLen: number;
  /** Default 'seq-mean-token-sum' (verl compute_policy_loss_reinforce's default loss_agg_mode). */
  aggregation?: LossAggregation;
  /** Replaces the aggregation's denominator, as in policyLoss. Default off. */
  normalizer?: number;
  out?: { gradLogprobs?: Float32Array };
}
export interface ReinforcePolicyLossResult {
  /** The aggregated -A * logprobs. */
  loss: number;
  /** dLoss/dlogprobs, (B * T); 0 at masked tokens. */
  gradLogprobs: Float32Array;
  metrics: {
    /** Masked mean of rolloutLogprobs - logprobs (verl actor/ppo_kl). */
    ppoKl: number;
    /** Sum of the mask. */
    tokenCount: number;
  };
}
export interface DeviceReinforcePolicyLossOptions extends Omit<ReinforcePolicyLossOptions, 'out'> {
  out?: { gradLogprobs?: DeviceArray };
}
export interface DeviceReinforcePolicyLossResult extends Omit<ReinforcePolicyLossResult, 'gradLogprobs'> {
  gradLogprobs: DeviceArray<'f32'>;
}

const op = defineSeqOp({
  name: 'reinforcePolicyLoss',
  op: 'rk::ReinforcePolicyLossOp',
  header: 'ops/reinforce_policy_loss.h',
  mix: LOGPROBS_MIX,
  inputs: { logprobs: 'B*T', rolloutLogprobs: 'B*T', advantages: 'B | B*T' },
  grads: ['gradLogprobs'],
  options: {
    aggregation: enumOf<LossAggregation>(AGGREGATIONS, 'seq-mean-token-sum'),
    normalizer: num(finitePositive, 0),
  },
  metrics: ['ppoKl'],
});

const typed = op.typed<
  [logprobs: Float32Array, rolloutLogprobs: Float32Array, advantages: Float32Array, mask: TokenMask | null, options: ReinforcePolicyLossOptions],
  ReinforcePolicyLossResult,
  [logprobs: DeviceArray, rolloutLogprobs: DeviceArray, advantages: DeviceArray, mask: DeviceArray | null, options: DeviceReinforcePolicyLossOptions],
  DeviceReinforcePolicyLossResult
>();

/**
 * REINFORCE over padded (B, T) log-probs: the aggregated -A * logprobs, no ratio and no clipping
 * (verl's bypass-mode "reinforce" loss). rolloutLogprobs only feed the ppoKl metric.
 *
 * With f32 DeviceArrays it runs on the GPU; gradLogprobs is a DeviceArray owned by the caller.
 *
 * Arguments:
 * - `advantages`: one per sequence (B) or one per token (B * T)
 * @example
 * const { loss, gradLogprobs } = reinforcePolicyLoss(lp, rolloutLp, adv, mask, { seqLen: 512 });
 */
export const reinforcePolicyLoss = typed.sync;
/** reinforcePolicyLoss on a worker thread; leave its buffers untouched until it settles. */
export const reinforcePolicyLossAsync = typed.async;
