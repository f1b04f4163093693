// policyLoss: the policy-gradient losses (PPO/GRPO clipped surrogate and its variants) with their
// gradient with respect to the log-probs (docs/policy.md).
//
// logprobs, oldLogprobs, refLogprobs, entropy, mask: (B, T) row-major, T = seqLen; advantages (B) or (B, T).
//   d = logprobs - oldLogprobs,  r = exp(clamp(d, -20, 20))
//   ppo: L = max(-A min(r, delta), -A clip(r, 1 - epsLow, 1 + epsHigh)), dual clip min(L, -c A) for A < 0
//   gspo: r -> s_i exp(l - sg l), log s_i = masked mean of d (clamped above at 10); cispo:
//   -sg(min(r, epsHigh)) A l; sapo: -(4/tau) sigmoid(tau (r - 1)) A; gpg: -A l
//   L = u L (options.tokenWeights u, e.g. rolloutCorrection's weights), then
//   L += beta KL(logprobs - refLogprobs) - entropyCoef H;  loss = sum_t w_t L_t (aggregation weights)
import { describe, finiteIn, finitePositive, integer, oneOf, options as optionsObject } from '../check.js';
import { applyPreset, GRPO_LOSS_TYPES, type GrpoLossType, POLICY_PRESETS, type Preset } from '../presets.js';
import type { DeviceArray } from '../cuda.js';
import { defineOp, enumOf, int, knownKeys, num, numIn, onlyWhen, openOptions, type OptionSpec, packOptions, readOptions } from '../op.js';
import type { TokenMask } from '../types.js';
import { AGGREGATIONS, ESTIMATORS, LOGPROBS_MIX, VARIANTS, type KlEstimator, type LossAggregation, type PolicyVariant } from './enums.js';

export interface PolicyLossOptions {
  /** Tokens per sequence T: every (B, T) array holds B rows of T values. */
  seqLen: number;
  /**
   * TRL's or verl's defaults where they differ from ours (docs/porting.md): 'trl' beta 0 and
   * aggregation 'token-mean' (GRPOConfig), 'verl' dualClip 3 (clip_ratio_c). Explicit options win.
   */
  preset?: Preset;
  /**
   * TRL GRPOConfig.loss_type: 'grpo' (seq-mean-token-mean), 'bnpo' and 'dapo' (token-mean), 'dr_grpo'
   * (seq-mean-token-sum-norm). Sets `aggregation` (not both).
   */
  lossType?: GrpoLossType;
  /** Default 'ppo' (PPO/GRPO clipped surrogate). */
  variant?: PolicyVariant;
  /** Lower clip: the ratio is clipped below at 1 - epsilonLow. Default 0.2 (TRL, verl). */
  epsilonLow?: number;
  /**
   * Upper clip: above at 1 + epsilonHigh. Default 0.2 (DAPO clip-higher uses 0.28). For 'cispo' it
   * is the cap of the detached ratio itself, default 5 (TRL's recommended epsilon_high for CISPO).
   */
  epsilonHigh?: number;
  /** Dual clip c > 1 (verl clip_ratio_c, which verl always applies with 3): for A < 0, L = min(L, -c A). Default off. */
  dualClip?: number;
  /** TRL two-sided clip: the unclipped ratio is capped at delta (> 1). Default off. */
  delta?: number;
  /** Default 'token-mean'; 'seq-mean-token-mean' for 'gspo' and 'sapo' (verl forces it for both). */
  aggregation?: LossAggregation;
  /**
   * Replaces the aggregation's denominator (the token count for 'token-mean', the number of
   * sequences for the seq-mean modes, B * seqLen for 'seq-mean-token-sum-norm'), e.g. the global
   * token count of a step under gradient accumulation (TRL PR #5890).
   */
  normalizer?: number;
  /** Reference-model log-probs (B, T): adds beta * KL per token. */
  refLogprobs?: Float32Array;
  /** KL coefficient. Default 0.001 (verl kl_loss_coef). */
  beta?: number;
  /** Default 'k3' (verl low_var_kl, with its clamps). */
  klEstimator?: KlEstimator;
  /** Per-token entropy (B, T): subtracts entropyCoef * H per token and returns gradEntropy. */
  entropy?: Float32Array;
  /** Entropy bonus coefficient. Default 0 (verl entropy_coeff). */
  entropyCoef?: number;
  /**
   * Per-token weights u (B, T) (e.g. rolloutCorrection's importance weights): the policy term
   * of each token's loss and its gradient are multiplied by u_t, as TRL multiplies per_token_loss by
   * importance_sampling_ratio and verl pg_losses by rollout_is_weights. Unlike an f32 mask it leaves
   * the aggregation's denominator alone, and it does not weight the KL or entropy terms (neither peer
   * does). No gradient flows to it (the peers detach it).
   */
  tokenWeights?: Float32Array;
  /** SAPO temperature for A > 0. Default 1 (TRL sapo_temperature_pos, verl tau_pos). */
  sapoTemperaturePos?: number;
  /** SAPO temperature for A <= 0. Default 1.05 (TRL sapo_temperature_neg, verl tau_neg). */
  sapoTemperatureNeg?: number;
  /** Caller-owned outputs, (B * T) each. */
  out?: { gradLogprobs?: Float32Array; gradEntropy?: Float32Array };
}

export interface PolicyLossMetrics {
  /** Masked tokens with the clipped branch active: clipLowFraction + clipHighFraction. */
  clipFraction: number;
  /** r < 1 - epsilonLow and A < 0 (TRL clip_ratio/low_mean). */
  clipLowFraction: number;
  /** r > 1 + epsilonHigh and A > 0 (TRL clip_ratio/high_mean); cispo: r > epsilonHigh and A > 0. */
  clipHighFraction: number;
  /** Dual clip active, A < 0 (verl pg_clipfrac_lower); 0 without dualClip. */
  dualClipFraction: number;
  /** Masked mean of 0.5 (logprobs - oldLogprobs)^2. */
  approxKl: number;
  /** Masked mean of the KL estimate, when refLogprobs is given. */
  kl?: number;
  /** Masked mean of the entropy, when entropy is given. */
  entropy?: number;
  /** Sum of the mask (the token count for a 0/1 mask). */
  tokenCount: number;
}

export interface PolicyLossResult {
  loss: number;
  /** dLoss/dlogprobs, (B * T); 0 at masked tokens. */
  gradLogprobs: Float32Array;
  /** dLoss/dentropy, (B * T), when entropy is given. */
  gradEntropy?: Float32Array;
  metrics: PolicyLossMetrics;
}

/** policyLoss options when the log-probs are DeviceArrays: every array is a DeviceArray. */
export interface DevicePolicyLossOptions extends Omit<PolicyLossOptions, 'refLogprobs' | 'entropy' | 'tokenWeights' | 'out'> {
  /** f32 DeviceArray (B * T). */
  tokenWeights?: DeviceArray;
  /** f32 DeviceArray (B * T). */
  refLogprobs?: DeviceArray;
  /** f32 DeviceArray (B * T). */
  entropy?: DeviceArray;
  /** Caller-owned f32 DeviceArrays (B * T). */
  out?: { gradLogprobs?: DeviceArray; gradEntropy?: DeviceArray };
}

/** policyLoss on the device: gradients are f32 DeviceArrays (owned by the caller), loss and metrics are downloaded. */
export interface DevicePolicyLossResult {
  loss: number;
  gradLogprobs: DeviceArray<'f32'>;
  gradEntropy?: DeviceArray<'f32'>;
  metrics: PolicyLossMetrics;
}

const gt1 = (v: unknown, k: string) => {
  const x = finiteIn(v, k, -Infinity, Infinity);
  if (!(x > 1)) throw new RangeError(`${k}: expected a finite number > 1, received ${x}`);
  return x;
};
const epsilonHigh: OptionSpec<number> = {
  read(v, name, prev) {
    const cispo = prev.variant === 'cispo';
    const x = v === undefined ? (cispo ? 5 : 0.2) : finiteIn(v, name, 0, Infinity);
    if (cispo && x === 0) throw new RangeError(`${name}: expected a cap > 0 for the cispo ratio, received 0`);
    return x;
  },
  code: (v) => v,
};

/** The scalar options of policyLoss, in packing order (shared with geoMeanPolicyLoss where they apply). */
// Options of some variants only (given with another they would be ignored: a TypeError).
const variantIs = (...vs: PolicyVariant[]) => (p: Readonly<Record<string, unknown>>) => vs.includes(p.variant as PolicyVariant);
const withVariant = (p: Readonly<Record<string, unknown>>) => `variant '${String(p.variant)}'`;
const CLIPPED = "variants 'ppo' and 'gspo'";

const POLICY_TERMS = [['beta', 'refLogprobs'], ['klEstimator', 'refLogprobs'], ['entropyCoef', 'entropy']] as const;
/** The KL options, which apply with refLogprobs only. */
export const KL_TERMS = POLICY_TERMS.slice(0, 2);

/** A TypeError for an option given without the array it applies with (`terms`: [option, array] pairs). */
export function checkTerms(opts: Record<string, unknown>, terms: readonly (readonly [string, string])[]): void {
  for (const [k, arr] of terms) {
    if (opts[k] !== undefined && opts[arr] === undefined) {
      throw new TypeError(`options.${k}: applies with options.${arr} only, expected undefined without it, received ${describe(opts[k])}`);
    }
  }
}

export const POLICY_OPTIONS = {
  seqLen: int(1, 2 ** 31 - 1),
  variant: enumOf(VARIANTS, 'ppo'),
  aggregation: enumOf(AGGREGATIONS, (p) => (p.variant === 'gspo' || p.variant === 'sapo' ? 'seq-mean-token-mean' : 'token-mean')),
  epsilonLow: onlyWhen(CLIPPED, variantIs('ppo', 'gspo'), withVariant, numIn(0, 1, 0.2)),
  epsilonHigh: onlyWhen("variants 'ppo', 'gspo' and 'cispo'", variantIs('ppo', 'gspo', 'cispo'), withVariant, epsilonHigh),
  dualClip: onlyWhen(CLIPPED, variantIs('ppo', 'gspo'), withVariant, num(gt1, 0)),
  delta: onlyWhen(CLIPPED, variantIs('ppo', 'gspo'), withVariant, num(gt1, 0)),
  normalizer: num(finitePositive, 0),
  beta: numIn(-Infinity, Infinity, 0.001),
  klEstimator: enumOf(ESTIMATORS, 'k3'),
  entropyCoef: numIn(-Infinity, Infinity, 0),
  sapoTemperaturePos: onlyWhen("variant 'sapo'", variantIs('sapo'), withVariant, num(finitePositive, 1)),
  sapoTemperatureNeg: onlyWhen("variant 'sapo'", variantIs('sapo'), withVariant, num(finitePositive, 1.05)),
};

export const POLICY_METRICS = [
  'loss', 'clipFraction', 'clipLowFraction', 'clipHighFraction', 'dualClipFraction', 'approxKl', 'kl', 'entropy', 'tokenCount',
] as const;

/** The metrics object of a scalars buffer in POLICY_METRICS order. */
export function policyMetrics(m: Float64Array, kl: boolean, entropy: boolean): PolicyLossMetrics {
  const metrics: PolicyLossMetrics = {
    clipFraction: m[1],
    clipLowFraction: m[2],
    clipHighFraction: m[3],
    dualClipFraction: m[4],
    approxKl: m[5],
    tokenCount: m[8],
  };
  if (kl) metrics.kl = m[6];
  if (entropy) metrics.entropy = m[7];
  return metrics;
}

/** mask: a Uint8Array, a Float32Array of weights or null (the host path's own message). */
export function hostMaskCheck(device: boolean, mask: unknown, name: string, orNull: boolean): void {
  if (device || mask === undefined || mask === null || mask instanceof Uint8Array || mask instanceof Float32Array) return;
  if (typeof (mask as { dtype?: unknown }).dtype === 'string') return; // a DeviceArray: Io names the mix
  throw new TypeError(
    `${name}: expected a Uint8Array${orNull ? ', a Float32Array of weights or null' : ' or a Float32Array of weights'}, received ${describe(mask)}`,
  );
}

type Args = [logprobs: unknown, oldLogprobs: unknown, advantages: unknown, mask: unknown, options: unknown];

const POLICY_OPTION_ARRAYS = ['refLogprobs', 'entropy', 'tokenWeights'] as const;
const POLICY_OUTS = ['gradLogprobs', 'gradEntropy'] as const;
const POLICY_KEYS = knownKeys('policyLoss', Object.keys(POLICY_OPTIONS), POLICY_OPTION_ARRAYS, ['lossType', 'preset', 'out']);

/** TRL's GRPOConfig.loss_type as `lossType`: its aggregation (a TypeError beside an explicit aggregation). */
export function grpoLossType(opts: Record<string, unknown>): Record<string, unknown> {
  if (opts.lossType === undefined) return opts;
  const t = oneOf(opts.lossType, 'options.lossType', Object.keys(GRPO_LOSS_TYPES) as GrpoLossType[]);
  if (opts.aggregation !== undefined) {
    throw new TypeError(`options.lossType: sets the aggregation ('${GRPO_LOSS_TYPES[t]}'), expected undefined beside options.aggregation, received '${t}'`);
  }
  return { ...opts, aggregation: GRPO_LOSS_TYPES[t] };
}

const op = defineOp({
  name: 'policyLoss',
  mix: LOGPROBS_MIX,
  slots: {
    logprobs: { types: ['f32'], shape: 'B*T' },
    oldLogprobs: { types: ['f32'], shape: 'B*T' },
    advantages: { types: ['f32'], shape: 'B | B*T' },
    mask: { types: ['u8', 'f32'], shape: 'B*T' },
    refLogprobs: { types: ['f32'], shape: 'B*T' },
    entropy: { types: ['f32'], shape: 'B*T' },
    tokenWeights: { types: ['f32'], shape: 'B*T' },
    gradLogprobs: { types: ['f32'], shape: 'B*T', out: true },
    gradEntropy: { types: ['f32'], shape: 'B*T', out: true },
  },
  options: POLICY_OPTIONS,
  scalars: POLICY_METRICS,
  prepare(io, ...[logprobs, oldLogprobs, advantages, mask, options]: Args) {
    const { opts: given, out } = openOptions(
      io, options, true, [[oldLogprobs, 'oldLogprobs'], [advantages, 'advantages'], [mask, 'mask']],
      POLICY_OPTION_ARRAYS, POLICY_OUTS, POLICY_KEYS,
    );
    const opts = applyPreset('policyLoss', grpoLossType(given), POLICY_PRESETS);
    const n = io.read('logprobs', logprobs, 'logprobs').length;
    const seqLen = integer(opts.seqLen, 'options.seqLen', 1, 2 ** 31 - 1);
    if (n % seqLen !== 0) {
      throw new RangeError(`options.seqLen: expected a divisor of the length of logprobs (${n}), received ${seqLen}`);
    }
    const batch = n / seqLen;
    io.read('oldLogprobs', oldLogprobs, 'oldLogprobs', n);
    const adv = io.read('advantages', advantages, 'advantages');
    if (adv.length !== batch && adv.length !== n) {
      throw new RangeError(
        `advantages: expected length ${batch} (one per sequence) or ${n} (one per token), received length ${adv.length}`,
      );
    }
    hostMaskCheck(io.device, mask, 'mask', true);
    io.optional('mask', mask, 'mask', n);
    const values = readOptions(POLICY_OPTIONS, opts);
    // The KL and entropy coefficients apply with their arrays only (without them they would be ignored).
    checkTerms(opts, POLICY_TERMS);
    const ref = io.optional('refLogprobs', opts.refLogprobs, 'options.refLogprobs', n);
    const entropy = io.optional('entropy', opts.entropy, 'options.entropy', n);
    io.optional('tokenWeights', opts.tokenWeights, 'options.tokenWeights', n);
    if (opts.out !== undefined) optionsObject(opts.out, 'options.out', true);
    if (!entropy && out.gradEntropy !== undefined) {
      throw new TypeError('options.out.gradEntropy: expected no buffer without options.entropy, received one');
    }
    const gradLogprobs = io.out('gradLogprobs', out.gradLogprobs, 'options.out.gradLogprobs', n);
    const gradEntropy = entropy ? io.out('gradEntropy', out.gradEntropy, 'options.out.gradEntropy', n) : null;
    const scalars = io.scalars(POLICY_METRICS.length);
    return {
      params: packOptions(POLICY_OPTIONS, values),
      scalars,
      finish: () => {
        const result = { loss: scalars[0], gradLogprobs, metrics: policyMetrics(scalars, ref !== null, entropy !== null) } as PolicyLossResult;
        if (gradEntropy) result.gradEntropy = gradEntropy as Float32Array;
        return result;
      },
    };
  },
});

/**
 * policyLoss' result as the call typed it: `gradEntropy` and `metrics.entropy` present when
 * `entropy` was given (E not undefined), `metrics.kl` when `refLogprobs` was (K not undefined).
 */
export type PolicyLossResultOf<R extends { metrics: PolicyLossMetrics }, A, E, K> = Omit<R, 'gradEntropy' | 'metrics'> &
  ([E] extends [undefined] ? { gradEntropy?: A } : undefined extends E ? { gradEntropy?: A } : { gradEntropy: A }) & {
    metrics: Omit<PolicyLossMetrics, 'kl' | 'entropy'> &
      ([K] extends [undefined] ? { kl?: number } : undefined extends K ? { kl?: number } : { kl: number }) &
      ([E] extends [undefined] ? { entropy?: number } : undefined extends E ? { entropy?: number } : { entropy: number });
  };
type Host<F> = [F] extends [Float32Array] ? true : false;
type PolicyOut<F, E, K> = Host<F> extends true
  ? PolicyLossResultOf<PolicyLossResult, Float32Array, E, K>
  : PolicyLossResultOf<DevicePolicyLossResult, DeviceArray<'f32'>, E, K>;
type PolicyLossOptionsOf<F, E, K> = (Host<F> extends true ? PolicyLossOptions : DevicePolicyLossOptions) & { entropy?: E; refLogprobs?: K };
type Arr<F> = Host<F> extends true ? Float32Array : DeviceArray;

/** policyLoss' signature: host or device by the log-probs; requested outputs typed present. */
export interface PolicyLossFn {
  <F extends Float32Array | DeviceArray, E extends Arr<F> | undefined = undefined, K extends Arr<F> | undefined = undefined>(
    logprobs: F,
    oldLogprobs: Arr<F>,
    advantages: Arr<F>,
    mask: (Host<F> extends true ? TokenMask : DeviceArray) | null,
    options: PolicyLossOptionsOf<F, E, K>,
  ): PolicyOut<F, E, K>;
}
/** policyLossAsync's signature (policyLoss' in a Promise). */
export interface PolicyLossAsyncFn {
  <F extends Float32Array | DeviceArray, E extends Arr<F> | undefined = undefined, K extends Arr<F> | undefined = undefined>(
    logprobs: F,
    oldLogprobs: Arr<F>,
    advantages: Arr<F>,
    mask: (Host<F> extends true ? TokenMask : DeviceArray) | null,
    options: PolicyLossOptionsOf<F, E, K>,
  ): Promise<PolicyOut<F, E, K>>;
}

const typed = op.as<PolicyLossFn, PolicyLossAsyncFn>();

/**
 * A policy-gradient loss (PPO/GRPO clipped surrogate and its variants) over padded (B, T)
 * log-probs, with its gradient with respect to the log-probs and the metrics trainers log.
 *
 * With f32 DeviceArrays (mask u8 or f32, or null) it runs on the GPU: the gradients are f32
 * DeviceArrays (owned by the caller: free() them), loss and metrics are downloaded numbers.
 *
 * Arguments:
 * - `logprobs`: current policy log-probs of the sampled tokens, (B * T)
 * - `oldLogprobs`: log-probs of the policy that sampled them, (B * T)
 * - `advantages`: one per sequence (B) or one per token (B * T)
 * - `mask`: 1/0 bytes or f32 weights (B * T), or null for all ones
 * @example
 * const { loss, gradLogprobs, metrics } = policyLoss(lp, oldLp, adv, mask, { seqLen: 512, epsilonHigh: 0.28 });
 */
export const policyLoss = typed.sync;
/** policyLoss on a worker thread; leave its buffers untouched until it settles. */
export const policyLossAsync = typed.async;
