// valueLoss: PPO's clipped value-function loss (verl compute_value_loss), with its gradient with
// respect to the predicted values. The formula: native/core/ops/value_loss.h; docs/policy.md#valueloss.
import { type Preset, VALUE_PRESETS } from '../presets.js';
import type { DeviceArray } from '../cuda.js';
import { enumOf, num, numIn } from '../op.js';
import { finitePositive } from '../check.js';
import { defineSeqOp } from '../seq-op.js';
import type { TokenMask } from '../types.js';
import { AGGREGATIONS, type LossAggregation } from './enums.js';

export interface ValueLossOptions {
  /** Tokens per sequence T: every array holds B rows of T values. */
  seqLen: number;
  /** 'trl': cliprangeValue 0.2 (PPOConfig); 'verl': verl's defaults, which are ours. Explicit options win. */
  preset?: Preset;
  /** Default 'token-mean' (verl loss_agg_mode). */
  aggregation?: LossAggregation;
  /** The new values stay within oldValues +- cliprangeValue. Default 0.5 (verl critic cliprange_value). */
  cliprangeValue?: number;
  /** Replaces the aggregation's denominator, as in policyLoss. Default off. */
  normalizer?: number;
  out?: { gradValues?: Float32Array };
}
export interface ValueLossResult {
  /** 0.5 * the aggregated max(unclipped, clipped) squared error. */
  loss: number;
  /** dLoss/dvalues, (B * T); 0 at masked tokens. */
  gradValues: Float32Array;
  metrics: {
    /** Masked mean of [the clipped squared error is the larger] (verl vf_clipfrac). */
    clipFraction: number;
    /** Sum of the mask. */
    tokenCount: number;
  };
}
export interface DeviceValueLossOptions extends Omit<ValueLossOptions, 'out'> {
  out?: { gradValues?: DeviceArray };
}
export interface DeviceValueLossResult extends Omit<ValueLossResult, 'gradValues'> {
  gradValues: DeviceArray<'f32'>;
}

const op = defineSeqOp({
  name: 'valueLoss',
  op: 'rk::ValueLossOp',
  header: 'ops/value_loss.h',
  mix: 'the values are a DeviceArray',
  inputs: { values: 'B*T', returns: 'B*T', oldValues: 'B*T' },
  grads: ['gradValues'],
  options: {
    aggregation: enumOf<LossAggregation>(AGGREGATIONS, 'token-mean'),
    cliprangeValue: numIn(0, Infinity, 0.5),
    normalizer: num(finitePositive, 0),
  },
  metrics: ['clipFraction'],
  presets: VALUE_PRESETS,
});

const typed = op.typed<
  [values: Float32Array, returns: Float32Array, oldValues: Float32Array, mask: TokenMask | null, options: ValueLossOptions],
  ValueLossResult,
  [values: DeviceArray, returns: DeviceArray, oldValues: DeviceArray, mask: DeviceArray | null, options: DeviceValueLossOptions],
  DeviceValueLossResult
>();

/**
 * PPO's clipped value loss over padded (B, T) values: 0.5 * agg(max((v - R)^2, (clip(v, v_old +- c) - R)^2)).
 *
 * With f32 DeviceArrays it runs on the GPU; gradValues is a DeviceArray owned by the caller.
 *
 * Arguments:
 * - `values`: the value head's predictions (B * T), differentiated
 * - `returns`: the targets (B * T)
 * - `oldValues`: the values at rollout time (B * T), the clip centre
 * - `mask`: 1/0 bytes or f32 weights (B * T), or null
 * @example
 * const { loss, gradValues } = valueLoss(v, returns, oldV, mask, { seqLen: 512 });
 */
export const valueLoss = typed.sync;
/** valueLoss on a worker thread; leave its buffers untouched until it settles. */
export const valueLossAsync = typed.async;
