// geoMeanPolicyLoss: GMPO, the geometric-mean policy objective (verl compute_policy_loss_geo_mean),
// with its gradient with respect to the log-probs. The formula: native/core/ops/geo_mean_policy_loss.h;
// docs/policy.md#geomeanpolicyloss.
import type { DeviceArray } from '../cuda.js';
import { numIn } from '../op.js';
import { defineSeqOp } from '../seq-op.js';
import type { TokenMask } from '../types.js';
import { LOGPROBS_MIX } from './enums.js';

export interface GeoMeanPolicyLossOptions {
  /** Tokens per sequence T. */
  seqLen: number;
  /** Token log-ratios are clamped below at -epsilonLow. Default 0.2 (verl clip_ratio; the GMPO paper uses 0.4). */
  epsilonLow?: number;
  /** ... and above at epsilonHigh. Default 0.2. */
  epsilonHigh?: number;
  out?: { gradLogprobs?: Float32Array };
}
export interface GeoMeanPolicyLossResult {
  /** The mean over sequences of -A_i exp(S_i). */
  loss: number;
  /** dLoss/dlogprobs, (B * T); 0 at masked tokens. */
  gradLogprobs: Float32Array;
  metrics: {
    /** Masked mean of [the log-ratio was clamped and A > 0] (verl pg_clipfrac). */
    clipFraction: number;
    /** The same with A < 0 (verl pg_clipfrac_lower). */
    clipFractionLower: number;
    /** Masked mean of oldLogprobs - logprobs (verl ppo_kl). */
    ppoKl: number;
    /** Sum of the mask. */
    tokenCount: number;
  };
}
export interface DeviceGeoMeanPolicyLossOptions extends Omit<GeoMeanPolicyLossOptions, 'out'> {
  out?: { gradLogprobs?: DeviceArray };
}
export interface DeviceGeoMeanPolicyLossResult extends Omit<GeoMeanPolicyLossResult, 'gradLogprobs'> {
  gradLogprobs: DeviceArray<'f32'>;
}

const op = defineSeqOp({
  name: 'geoMeanPolicyLoss',
  op: 'rk::GeoMeanPolicyLossOp',
  header: 'ops/geo_mean_policy_loss.h',
  mix: LOGPROBS_MIX,
  inputs: { logprobs: 'B*T', oldLogprobs: 'B*T', advantages: 'B | B*T' },
  grads: ['gradLogprobs'],
  options: { epsilonLow: numIn(0, Infinity, 0.2), epsilonHigh: numIn(0, Infinity, 0.2) },
  metrics: ['clipFraction', 'clipFractionLower', 'ppoKl'],
});

const typed = op.typed<
  [logprobs: Float32Array, oldLogprobs: Float32Array, advantages: Float32Array, mask: TokenMask | null, options: GeoMeanPolicyLossOptions],
  GeoMeanPolicyLossResult,
  [logprobs: DeviceArray, oldLogprobs: DeviceArray, advantages: DeviceArray, mask: DeviceArray | null, options: DeviceGeoMeanPolicyLossOptions],
  DeviceGeoMeanPolicyLossResult
>();

/**
 * GMPO over padded (B, T) log-probs: per sequence, the geometric mean of the token ratios with
 * each log-ratio clamped to [-epsilonLow, epsilonHigh] on the advantage's side.
 *
 * With f32 DeviceArrays it runs on the GPU; gradLogprobs is a DeviceArray owned by the caller.
 *
 * Arguments:
 * - `advantages`: one per sequence (B) or one per token (B * T; their masked mean per sequence is used)
 * @example
 * const { loss, gradLogprobs } = geoMeanPolicyLoss(lp, oldLp, adv, mask, { seqLen: 512, epsilonLow: 0.4, epsilonHigh: 0.4 });
 */
export const geoMeanPolicyLoss = typed.sync;
/** geoMeanPolicyLoss on a worker thread; leave its buffers untouched until it settles. */
export const geoMeanPolicyLossAsync = typed.async;
