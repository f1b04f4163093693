// copoPolicyLoss: COPO's blended dual-clip PPO loss (hijih/copo-code compute_policy_loss_with_global),
// with its gradient with respect to the log-probs. The formula: native/core/ops/copo_policy_loss.h;
// docs/papers/copo.md.
import { finiteIn, finitePositive } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { enumOf, num, numIn } from '../op.js';
import { AGGREGATIONS, LOGPROBS_MIX, type LossAggregation } from '../policy/enums.js';
import { defineSeqOp } from '../seq-op.js';
import type { TokenMask } from '../types.js';

export interface CopoPolicyLossOptions {
  /** Tokens per sequence T. */
  seqLen: number;
  /** The ratio is clipped below at 1 - epsilonLow. Default 0.2 (the COPO run script's clip_ratio_low). */
  epsilonLow?: number;
  /** ... and above at 1 + epsilonHigh. Default 0.2. */
  epsilonHigh?: number;
  /** Dual clip c > 1 for A < 0: min(P, -c A) (verl clip_ratio_c). Default 3, always on as in the code. */
  dualClip?: number;
  /** Default 'token-mean' (compute_policy_loss_with_global's default; the COPO run script uses 'seq-mean-token-mean'). */
  aggregation?: LossAggregation;
  /** Replaces the aggregation's denominator, as in policyLoss. Default off. */
  normalizer?: number;
  out?: { gradLogprobs?: Float32Array };
}
export interface CopoPolicyLossResult {
  /** The aggregated w P(A_local) + (1 - w) P(A_global). */
  loss: number;
  /** dLoss/dlogprobs, (B * T); 0 at masked tokens. */
  gradLogprobs: Float32Array;
  metrics: {
    /** Masked mean of [the clipped branch is the larger] for the local advantages (verl pg_clipfrac). */
    clipFraction: number;
    /** Masked mean of [dual clip fired] (A_local < 0; verl pg_clipfrac_lower). */
    clipFractionLower: number;
    /** clipFraction for the global advantages (COPO global_pg_clipfrac). */
    globalClipFraction: number;
    /** clipFractionLower for the global advantages (COPO global_pg_clipfrac_lower). */
    globalClipFractionLower: number;
    /** Masked mean of oldLogprobs - logprobs (verl ppo_kl). */
    ppoKl: number;
    /** Sum of the mask. */
    tokenCount: number;
  };
}
export interface DeviceCopoPolicyLossOptions extends Omit<CopoPolicyLossOptions, 'out'> {
  out?: { gradLogprobs?: DeviceArray };
}
export interface DeviceCopoPolicyLossResult extends Omit<CopoPolicyLossResult, 'gradLogprobs'> {
  gradLogprobs: DeviceArray<'f32'>;
}

const gt1 = (v: unknown, k: string) => {
  const x = finiteIn(v, k, -Infinity, Infinity);
  if (!(x > 1)) throw new RangeError(`${k}: expected a finite number > 1, received ${x}`);
  return x;
};

const op = defineSeqOp({
  name: 'copoPolicyLoss',
  op: 'rk::CopoPolicyLossOp',
  header: 'ops/copo_policy_loss.h',
  mix: LOGPROBS_MIX,
  inputs: { logprobs: 'B*T', oldLogprobs: 'B*T', localAdvantages: 'B | B*T', globalAdvantages: 'B | B*T', gates: 'B | B*T' },
  grads: ['gradLogprobs'],
  options: {
    epsilonLow: numIn(0, 1, 0.2),
    epsilonHigh: numIn(0, Infinity, 0.2),
    dualClip: num(gt1, 3),
    aggregation: enumOf<LossAggregation>(AGGREGATIONS, 'token-mean'),
    normalizer: num(finitePositive, 0),
  },
  metrics: ['clipFraction', 'clipFractionLower', 'globalClipFraction', 'globalClipFractionLower', 'ppoKl'],
});

const typed = op.typed<
  [
    logprobs: Float32Array, oldLogprobs: Float32Array, localAdvantages: Float32Array, globalAdvantages: Float32Array,
    gates: Float32Array, mask: TokenMask | null, options: CopoPolicyLossOptions,
  ],
  CopoPolicyLossResult,
  [
    logprobs: DeviceArray, oldLogprobs: DeviceArray, localAdvantages: DeviceArray, globalAdvantages: DeviceArray,
    gates: DeviceArray, mask: DeviceArray | null, options: DeviceCopoPolicyLossOptions,
  ],
  DeviceCopoPolicyLossResult
>();

/**
 * COPO's loss over padded (B, T) log-probs: per token, the gate w blends verl's dual-clip PPO term of
 * the local (GRPO) advantage with that of the global (consistency) advantage,
 * w P(A_local) + (1 - w) P(A_global), aggregated as verl's agg_loss. The advantages and gates come
 * from {@link copoAdvantages}.
 *
 * With f32 DeviceArrays it runs on the GPU; gradLogprobs is a DeviceArray owned by the caller.
 *
 * Arguments:
 * - `localAdvantages`, `globalAdvantages`, `gates`: one per sequence (B) or one per token (B * T)
 * @example
 * const adv = copoAdvantages(answerIds, rewards, { groupSize: 8 });
 * const { loss, gradLogprobs } = copoPolicyLoss(lp, oldLp, adv.localAdvantages, adv.globalAdvantages, adv.gates, mask, { seqLen: 512 });
 */
export const copoPolicyLoss = typed.sync;
/** copoPolicyLoss on a worker thread; leave its buffers untouched until it settles. */
export const copoPolicyLossAsync = typed.async;
