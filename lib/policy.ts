// Policy-gradient losses and KL estimators (KERNELS.md section 3).
//
// logprobs, oldLogprobs, refLogprobs, entropy, mask: (B, T) row-major, T = seqLen; advantages (B) or (B, T).
//   d = logprobs - oldLogprobs,  r = exp(clamp(d, -20, 20))
//   ppo: L = max(-A min(r, delta), -A clip(r, 1 - epsLow, 1 + epsHigh)), dual clip min(L, -c A) for A < 0
//   gspo: r -> s_i exp(l - sg l), log s_i = masked mean of d (clamped above at 10); cispo:
//   -sg(min(r, epsHigh)) A l; sapo: -(4/tau) sigmoid(tau (r - 1)) A; gpg: -A l
//   L += beta KL(logprobs - refLogprobs) - entropyCoef H;  loss = sum_t w_t L_t (aggregation weights)
import {
  describe,
  finiteIn,
  finitePositive,
  integer,
  oneOf,
  options as optionsObject,
  outFloat32,
  typedArray,
  typedArrayOfLength,
} from './check.js';
import { binding } from './native.js';
import type { TokenMask } from './types.js';

export type PolicyVariant = 'ppo' | 'gspo' | 'cispo' | 'sapo' | 'gpg';
export type LossAggregation =
  | 'token-mean'
  | 'seq-mean-token-mean'
  | 'seq-mean-token-sum'
  | 'seq-mean-token-sum-norm';
export type KlEstimator = 'k1' | 'k2' | 'k3' | 'abs' | 'k3+';
export type { TokenMask } from './types.js';

const VARIANTS: readonly PolicyVariant[] = ['ppo', 'gspo', 'cispo', 'sapo', 'gpg'];
const AGGREGATIONS: readonly LossAggregation[] = [
  'token-mean',
  'seq-mean-token-mean',
  'seq-mean-token-sum',
  'seq-mean-token-sum-norm',
];
const ESTIMATORS: readonly KlEstimator[] = ['k1', 'k2', 'k3', 'abs', 'k3+'];
// The native codes (policy.h): KlEstimator { K1, K2, K3, Abs, K3Plus }.
const ESTIMATOR_CODE: Record<KlEstimator, number> = { k1: 0, k2: 1, k3: 2, abs: 3, 'k3+': 4 };

export interface PolicyLossOptions {
  /** Tokens per sequence T: every (B, T) array holds B rows of T values. */
  seqLen: number;
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

interface PolicyBinding {
  policyLoss(...args: unknown[]): undefined;
  policyLossAsync(...args: unknown[]): Promise<undefined>;
  klPenalty(...args: unknown[]): undefined;
  klPenaltyAsync(...args: unknown[]): Promise<undefined>;
}
const native = binding<PolicyBinding>();

function checkMask(mask: unknown, n: number): TokenMask | null {
  if (mask === undefined || mask === null) return null;
  if (mask instanceof Uint8Array) return typedArrayOfLength(mask, 'mask', Uint8Array, n);
  if (mask instanceof Float32Array) return typedArrayOfLength(mask, 'mask', Float32Array, n);
  throw new TypeError(`mask: expected a Uint8Array, a Float32Array of weights or null, received ${describe(mask)}`);
}

function optionalNumber(value: unknown, name: string, dflt: number, check: (v: unknown, n: string) => number): number {
  return value === undefined ? dflt : check(value, name);
}

function policyArgs(logprobs: unknown, oldLogprobs: unknown, advantages: unknown, mask: unknown, options: unknown) {
  const opts = optionsObject<PolicyLossOptions>(options, 'options', true);
  const lp = typedArray(logprobs, 'logprobs', Float32Array);
  const n = lp.length;
  const seqLen = integer(opts.seqLen, 'options.seqLen', 1, 2 ** 31 - 1);
  if (n % seqLen !== 0) {
    throw new RangeError(`options.seqLen: expected a divisor of the length of logprobs (${n}), received ${seqLen}`);
  }
  const batch = n / seqLen;
  const old = typedArrayOfLength(oldLogprobs, 'oldLogprobs', Float32Array, n);
  const adv = typedArray(advantages, 'advantages', Float32Array);
  if (adv.length !== batch && adv.length !== n) {
    throw new RangeError(
      `advantages: expected length ${batch} (one per sequence) or ${n} (one per token), received length ${adv.length}`,
    );
  }
  const m = checkMask(mask, n);
  const variant = opts.variant === undefined ? 'ppo' : oneOf(opts.variant, 'options.variant', VARIANTS);
  const aggregation =
    opts.aggregation === undefined
      ? variant === 'gspo' || variant === 'sapo'
        ? 'seq-mean-token-mean'
        : 'token-mean'
      : oneOf(opts.aggregation, 'options.aggregation', AGGREGATIONS);
  const epsilonLow = optionalNumber(opts.epsilonLow, 'options.epsilonLow', 0.2, (v, k) => finiteIn(v, k, 0, 1));
  const epsilonHigh = optionalNumber(opts.epsilonHigh, 'options.epsilonHigh', variant === 'cispo' ? 5 : 0.2, (v, k) =>
    finiteIn(v, k, 0, Infinity),
  );
  if (variant === 'cispo' && epsilonHigh === 0) {
    throw new RangeError('options.epsilonHigh: expected a cap > 0 for the cispo ratio, received 0');
  }
  const gt1 = (v: unknown, k: string) => {
    const x = finiteIn(v, k, -Infinity, Infinity);
    if (!(x > 1)) throw new RangeError(`${k}: expected a finite number > 1, received ${x}`);
    return x;
  };
  const dualClip = optionalNumber(opts.dualClip, 'options.dualClip', 0, gt1);
  const delta = optionalNumber(opts.delta, 'options.delta', 0, gt1);
  const normalizer = optionalNumber(opts.normalizer, 'options.normalizer', 0, finitePositive);
  const ref = opts.refLogprobs === undefined ? null : typedArrayOfLength(opts.refLogprobs, 'options.refLogprobs', Float32Array, n);
  const beta = optionalNumber(opts.beta, 'options.beta', 0.001, (v, k) => finiteIn(v, k, -Infinity, Infinity));
  const klEstimator = opts.klEstimator === undefined ? 'k3' : oneOf(opts.klEstimator, 'options.klEstimator', ESTIMATORS);
  const entropy = opts.entropy === undefined ? null : typedArrayOfLength(opts.entropy, 'options.entropy', Float32Array, n);
  const entropyCoef = optionalNumber(opts.entropyCoef, 'options.entropyCoef', 0, (v, k) => finiteIn(v, k, -Infinity, Infinity));
  const tauPos = optionalNumber(opts.sapoTemperaturePos, 'options.sapoTemperaturePos', 1, finitePositive);
  const tauNeg = optionalNumber(opts.sapoTemperatureNeg, 'options.sapoTemperatureNeg', 1.05, finitePositive);
  const out = opts.out === undefined ? {} : optionsObject<NonNullable<PolicyLossOptions['out']>>(opts.out, 'options.out', true);
  const gradLogprobs = outFloat32(out.gradLogprobs, 'options.out.gradLogprobs', n);
  let gradEntropy: Float32Array | null = null;
  if (entropy) gradEntropy = outFloat32(out.gradEntropy, 'options.out.gradEntropy', n);
  else if (out.gradEntropy !== undefined) {
    throw new TypeError('options.out.gradEntropy: expected no buffer without options.entropy, received one');
  }
  const params = new Float64Array([
    VARIANTS.indexOf(variant), AGGREGATIONS.indexOf(aggregation), epsilonLow, epsilonHigh, dualClip, delta,
    normalizer, beta, ESTIMATOR_CODE[klEstimator], entropyCoef, tauPos, tauNeg,
  ]);
  const metrics = new Float64Array(9);
  const args = [lp, old, adv, m, ref, entropy, seqLen, params, gradLogprobs, gradEntropy, metrics];
  const finish = (): PolicyLossResult => {
    const result: PolicyLossResult = {
      loss: metrics[0],
      gradLogprobs,
      metrics: {
        clipFraction: metrics[1],
        clipLowFraction: metrics[2],
        clipHighFraction: metrics[3],
        dualClipFraction: metrics[4],
        approxKl: metrics[5],
        tokenCount: metrics[8],
      },
    };
    if (ref) result.metrics.kl = metrics[6];
    if (entropy) {
      result.metrics.entropy = metrics[7];
      result.gradEntropy = gradEntropy!;
    }
    return result;
  };
  return { args, finish };
}

/**
 * A policy-gradient loss (PPO/GRPO clipped surrogate and its variants) over padded (B, T)
 * log-probs, with its gradient with respect to the log-probs and the metrics trainers log.
 *
 * @param logprobs current policy log-probs of the sampled tokens, (B * T)
 * @param oldLogprobs log-probs of the policy that sampled them, (B * T)
 * @param advantages one per sequence (B) or one per token (B * T)
 * @param mask 1/0 bytes or f32 weights (B * T), or null for all ones
 * @example
 * const { loss, gradLogprobs, metrics } = policyLoss(lp, oldLp, adv, mask, { seqLen: 512, epsilonHigh: 0.28 });
 */
export function policyLoss(
  logprobs: Float32Array,
  oldLogprobs: Float32Array,
  advantages: Float32Array,
  mask: TokenMask | null,
  options: PolicyLossOptions,
): PolicyLossResult {
  const { args, finish } = policyArgs(logprobs, oldLogprobs, advantages, mask, options);
  native.policyLoss(...args);
  return finish();
}

/** policyLoss on a worker thread; the input buffers must stay untouched until it settles. */
export async function policyLossAsync(
  logprobs: Float32Array,
  oldLogprobs: Float32Array,
  advantages: Float32Array,
  mask: TokenMask | null,
  options: PolicyLossOptions,
): Promise<PolicyLossResult> {
  const { args, finish } = policyArgs(logprobs, oldLogprobs, advantages, mask, options);
  await native.policyLossAsync(...args);
  return finish();
}

export interface KlPenaltyOptions {
  /** Default 'k3' (verl low_var_kl with its clamps). */
  estimator?: KlEstimator;
  /** 1/0 bytes or f32 weights: masked-out elements give 0 and a zero gradient; `mean` is weighted. */
  mask?: TokenMask;
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

function klArgs(logprobs: unknown, refLogprobs: unknown, options: unknown) {
  const opts = optionsObject<KlPenaltyOptions>(options, 'options', false);
  const lp = typedArray(logprobs, 'logprobs', Float32Array);
  const n = lp.length;
  const ref = typedArrayOfLength(refLogprobs, 'refLogprobs', Float32Array, n);
  const estimator = opts.estimator === undefined ? 'k3' : oneOf(opts.estimator, 'options.estimator', ESTIMATORS);
  let mask: TokenMask | null = null;
  if (opts.mask !== undefined) {
    if (opts.mask instanceof Uint8Array) mask = typedArrayOfLength(opts.mask, 'options.mask', Uint8Array, n);
    else if (opts.mask instanceof Float32Array) mask = typedArrayOfLength(opts.mask, 'options.mask', Float32Array, n);
    else throw new TypeError(`options.mask: expected a Uint8Array or a Float32Array of weights, received ${describe(opts.mask)}`);
  }
  const out = opts.out === undefined ? {} : optionsObject<NonNullable<KlPenaltyOptions['out']>>(opts.out, 'options.out', true);
  const kl = outFloat32(out.kl, 'options.out.kl', n);
  const grad = outFloat32(out.grad, 'options.out.grad', n);
  const mean = new Float64Array(1);
  const args = [lp, ref, mask, ESTIMATOR_CODE[estimator], kl, grad, mean];
  return { args, finish: (): KlPenaltyResult => ({ kl, grad, mean: mean[0] }) };
}

/**
 * Elementwise KL estimate between the policy and a reference from per-token log-probs, with its
 * gradient with respect to `logprobs`: k1 = d, abs = |d|, k2 = d^2/2, k3 = exp(-d) + d - 1 (verl's
 * clamps), k3+ = k3's value with k2's gradient, where d = logprobs - refLogprobs.
 *
 * @example
 * const { kl, grad, mean } = klPenalty(logprobs, refLogprobs, { estimator: 'k3+', mask });
 */
export function klPenalty(logprobs: Float32Array, refLogprobs: Float32Array, options?: KlPenaltyOptions): KlPenaltyResult {
  const { args, finish } = klArgs(logprobs, refLogprobs, options);
  native.klPenalty(...args);
  return finish();
}

/** klPenalty on a worker thread; the input buffers must stay untouched until it settles. */
export async function klPenaltyAsync(
  logprobs: Float32Array,
  refLogprobs: Float32Array,
  options?: KlPenaltyOptions,
): Promise<KlPenaltyResult> {
  const { args, finish } = klArgs(logprobs, refLogprobs, options);
  await native.klPenaltyAsync(...args);
  return finish();
}
