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
import {
  alloc,
  cudaNative,
  DeviceArray,
  deviceArg,
  devicePointer,
  rejectDevice,
  runDevice,
  runDeviceAsync,
  type DeviceCall,
} from './cuda.js';
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

/** A host call given a DeviceArray anywhere is a TypeError naming it. */
function rejectHostMix(args: [unknown, string][]): void {
  for (const [v, name] of args) rejectDevice(v, name);
}

function optionalNumber(value: unknown, name: string, dflt: number, check: (v: unknown, n: string) => number): number {
  return value === undefined ? dflt : check(value, name);
}

/** The scalar options as the binding's params array (the same checks for host and device arrays). */
function policyParams(opts: Partial<PolicyLossOptions> | Partial<DevicePolicyLossOptions>): Float64Array {
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
  const beta = optionalNumber(opts.beta, 'options.beta', 0.001, (v, k) => finiteIn(v, k, -Infinity, Infinity));
  const klEstimator = opts.klEstimator === undefined ? 'k3' : oneOf(opts.klEstimator, 'options.klEstimator', ESTIMATORS);
  const entropyCoef = optionalNumber(opts.entropyCoef, 'options.entropyCoef', 0, (v, k) => finiteIn(v, k, -Infinity, Infinity));
  const tauPos = optionalNumber(opts.sapoTemperaturePos, 'options.sapoTemperaturePos', 1, finitePositive);
  const tauNeg = optionalNumber(opts.sapoTemperatureNeg, 'options.sapoTemperatureNeg', 1.05, finitePositive);
  return new Float64Array([
    VARIANTS.indexOf(variant), AGGREGATIONS.indexOf(aggregation), epsilonLow, epsilonHigh, dualClip, delta,
    normalizer, beta, ESTIMATOR_CODE[klEstimator], entropyCoef, tauPos, tauNeg,
  ]);
}

function policyArgs(logprobs: unknown, oldLogprobs: unknown, advantages: unknown, mask: unknown, options: unknown) {
  const opts = optionsObject<PolicyLossOptions>(options, 'options', true);
  rejectHostMix([
    [oldLogprobs, 'oldLogprobs'], [advantages, 'advantages'], [mask, 'mask'], [opts.refLogprobs, 'options.refLogprobs'],
    [opts.entropy, 'options.entropy'], [(opts.out as Record<string, unknown> | undefined)?.gradLogprobs, 'options.out.gradLogprobs'],
    [(opts.out as Record<string, unknown> | undefined)?.gradEntropy, 'options.out.gradEntropy'],
  ]);
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
  const params = policyParams(opts);
  const ref = opts.refLogprobs === undefined ? null : typedArrayOfLength(opts.refLogprobs, 'options.refLogprobs', Float32Array, n);
  const entropy = opts.entropy === undefined ? null : typedArrayOfLength(opts.entropy, 'options.entropy', Float32Array, n);
  const out = opts.out === undefined ? {} : optionsObject<NonNullable<PolicyLossOptions['out']>>(opts.out, 'options.out', true);
  const gradLogprobs = outFloat32(out.gradLogprobs, 'options.out.gradLogprobs', n);
  let gradEntropy: Float32Array | null = null;
  if (entropy) gradEntropy = outFloat32(out.gradEntropy, 'options.out.gradEntropy', n);
  else if (out.gradEntropy !== undefined) {
    throw new TypeError('options.out.gradEntropy: expected no buffer without options.entropy, received one');
  }
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
 *
 * With f32 DeviceArrays (mask u8 or f32, or null) it runs on the GPU (cuda/policy.h): the gradients are f32
 * DeviceArrays (owned by the caller: free() them), loss and metrics are downloaded numbers. Every array must
 * then be a DeviceArray (TypeError naming it otherwise); a bad f32 mask weight is found on the device and is
 * the host path's RangeError (the call then waits for the device).
 */
export function policyLoss(
  logprobs: Float32Array,
  oldLogprobs: Float32Array,
  advantages: Float32Array,
  mask: TokenMask | null,
  options: PolicyLossOptions,
): PolicyLossResult;
export function policyLoss(
  logprobs: DeviceArray,
  oldLogprobs: DeviceArray,
  advantages: DeviceArray,
  mask: DeviceArray | null,
  options: DevicePolicyLossOptions,
): DevicePolicyLossResult;
export function policyLoss(
  logprobs: Float32Array | DeviceArray,
  oldLogprobs: Float32Array | DeviceArray,
  advantages: Float32Array | DeviceArray,
  mask: TokenMask | DeviceArray | null,
  options: PolicyLossOptions | DevicePolicyLossOptions,
): PolicyLossResult | DevicePolicyLossResult {
  if (logprobs instanceof DeviceArray) {
    return runDevice(devicePolicyArgs(logprobs, oldLogprobs, advantages, mask, options), cudaPolicy('policyLoss').policyLoss);
  }
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
): Promise<PolicyLossResult>;
export async function policyLossAsync(
  logprobs: DeviceArray,
  oldLogprobs: DeviceArray,
  advantages: DeviceArray,
  mask: DeviceArray | null,
  options: DevicePolicyLossOptions,
): Promise<DevicePolicyLossResult>;
export async function policyLossAsync(
  logprobs: Float32Array | DeviceArray,
  oldLogprobs: Float32Array | DeviceArray,
  advantages: Float32Array | DeviceArray,
  mask: TokenMask | DeviceArray | null,
  options: PolicyLossOptions | DevicePolicyLossOptions,
): Promise<PolicyLossResult | DevicePolicyLossResult> {
  if (logprobs instanceof DeviceArray) {
    return runDeviceAsync(devicePolicyArgs(logprobs, oldLogprobs, advantages, mask, options), cudaPolicy('policyLossAsync').policyLossAsync);
  }
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
  rejectHostMix([
    [refLogprobs, 'refLogprobs'], [opts.mask, 'options.mask'],
    [(opts.out as Record<string, unknown> | undefined)?.kl, 'options.out.kl'],
    [(opts.out as Record<string, unknown> | undefined)?.grad, 'options.out.grad'],
  ]);
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
 *
 * With f32 DeviceArrays (mask u8 or f32) it runs on the GPU: kl and grad are f32 DeviceArrays (owned by the
 * caller), mean is downloaded.
 */
export function klPenalty(logprobs: Float32Array, refLogprobs: Float32Array, options?: KlPenaltyOptions): KlPenaltyResult;
export function klPenalty(logprobs: DeviceArray, refLogprobs: DeviceArray, options?: DeviceKlPenaltyOptions): DeviceKlPenaltyResult;
export function klPenalty(
  logprobs: Float32Array | DeviceArray,
  refLogprobs: Float32Array | DeviceArray,
  options?: KlPenaltyOptions | DeviceKlPenaltyOptions,
): KlPenaltyResult | DeviceKlPenaltyResult {
  if (logprobs instanceof DeviceArray) return runDevice(deviceKlArgs(logprobs, refLogprobs, options), cudaPolicy('klPenalty').klPenalty);
  const { args, finish } = klArgs(logprobs, refLogprobs, options);
  native.klPenalty(...args);
  return finish();
}

/** klPenalty on a worker thread; the input buffers must stay untouched until it settles. */
export async function klPenaltyAsync(
  logprobs: Float32Array,
  refLogprobs: Float32Array,
  options?: KlPenaltyOptions,
): Promise<KlPenaltyResult>;
export async function klPenaltyAsync(
  logprobs: DeviceArray,
  refLogprobs: DeviceArray,
  options?: DeviceKlPenaltyOptions,
): Promise<DeviceKlPenaltyResult>;
export async function klPenaltyAsync(
  logprobs: Float32Array | DeviceArray,
  refLogprobs: Float32Array | DeviceArray,
  options?: KlPenaltyOptions | DeviceKlPenaltyOptions,
): Promise<KlPenaltyResult | DeviceKlPenaltyResult> {
  if (logprobs instanceof DeviceArray) {
    return runDeviceAsync(deviceKlArgs(logprobs, refLogprobs, options), cudaPolicy('klPenaltyAsync').klPenaltyAsync);
  }
  const { args, finish } = klArgs(logprobs, refLogprobs, options);
  await native.klPenaltyAsync(...args);
  return finish();
}

// ---- device path (logprobs in a DeviceArray; lib/cuda.ts, cuda/policy.h) ------------------------

/** policyLoss options when the log-probs are DeviceArrays: every array is a DeviceArray. */
export interface DevicePolicyLossOptions extends Omit<PolicyLossOptions, 'refLogprobs' | 'entropy' | 'out'> {
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

/** klPenalty options when the log-probs are DeviceArrays. */
export interface DeviceKlPenaltyOptions extends Omit<KlPenaltyOptions, 'mask' | 'out'> {
  /** u8 (1/0) or f32 (weights) DeviceArray of length n. */
  mask?: DeviceArray;
  /** Caller-owned f32 DeviceArrays (n each). */
  out?: { kl?: DeviceArray; grad?: DeviceArray };
}

/** klPenalty on the device: kl and grad are f32 DeviceArrays (owned by the caller), mean is downloaded. */
export interface DeviceKlPenaltyResult {
  kl: DeviceArray<'f32'>;
  grad: DeviceArray<'f32'>;
  mean: number;
}

interface CudaPolicyBinding {
  policyLoss(...args: unknown[]): undefined;
  policyLossAsync(...args: unknown[]): Promise<undefined>;
  klPenalty(...args: unknown[]): undefined;
  klPenaltyAsync(...args: unknown[]): Promise<undefined>;
}
const cudaPolicy = (what: string) => cudaNative(what) as unknown as CudaPolicyBinding;

/** A prepared device call: its arguments, the arrays it uses, the outputs it allocated, and its result. */

const MIX = 'the log-probs are a DeviceArray; host and device arrays cannot be mixed in one call';
const f32Arg = (v: unknown, name: string, n: number) => deviceArg(v, name, ['f32'], n, MIX) as DeviceArray<'f32'>;

/** mask (u8 or f32 DeviceArray of length n, or null/undefined) as [pointer, length, kind]. */
function deviceMask(mask: unknown, name: string, n: number): { array: DeviceArray | null; kind: number } {
  if (mask === undefined || mask === null) return { array: null, kind: 0 };
  const m = deviceArg(mask, name, ['u8', 'f32'], n, MIX);
  return { array: m, kind: m.dtype === 'u8' ? 1 : 2 };
}

/** Caller-owned output `given` (checked) or a fresh f32 DeviceArray recorded in `allocated`. */
function outOrAlloc(given: unknown, name: string, n: number, allocated: DeviceArray[]): DeviceArray<'f32'> {
  if (given !== undefined) return f32Arg(given, name, n);
  const a = alloc('f32', n);
  allocated.push(a);
  return a;
}

const ptrOf = (a: DeviceArray | null, name: string) => (a ? devicePointer(a, name) : null);

function devicePolicyArgs(
  logprobs: DeviceArray,
  oldLogprobs: unknown,
  advantages: unknown,
  mask: unknown,
  options: unknown,
): DeviceCall<DevicePolicyLossResult> {
  const opts = optionsObject<DevicePolicyLossOptions>(options, 'options', true);
  const lp = deviceArg(logprobs, 'logprobs', ['f32'], undefined, MIX);
  const n = lp.length;
  const seqLen = integer(opts.seqLen, 'options.seqLen', 1, 2 ** 31 - 1);
  if (n % seqLen !== 0) {
    throw new RangeError(`options.seqLen: expected a divisor of the length of logprobs (${n}), received ${seqLen}`);
  }
  const batch = n / seqLen;
  const old = f32Arg(oldLogprobs, 'oldLogprobs', n);
  const adv = deviceArg(advantages, 'advantages', ['f32'], undefined, MIX);
  if (adv.length !== batch && adv.length !== n) {
    throw new RangeError(
      `advantages: expected length ${batch} (one per sequence) or ${n} (one per token), received length ${adv.length}`,
    );
  }
  const m = deviceMask(mask, 'mask', n);
  const params = policyParams(opts);
  const ref = opts.refLogprobs === undefined ? null : f32Arg(opts.refLogprobs, 'options.refLogprobs', n);
  const entropy = opts.entropy === undefined ? null : f32Arg(opts.entropy, 'options.entropy', n);
  const out = opts.out === undefined ? {} : optionsObject<NonNullable<DevicePolicyLossOptions['out']>>(opts.out, 'options.out', true);
  if (!entropy && out.gradEntropy !== undefined) {
    throw new TypeError('options.out.gradEntropy: expected no buffer without options.entropy, received one');
  }
  const allocated: DeviceArray[] = [];
  const gradLogprobs = outOrAlloc(out.gradLogprobs, 'options.out.gradLogprobs', n, allocated);
  let gradEntropy: DeviceArray<'f32'> | null = null;
  try {
    if (entropy) gradEntropy = outOrAlloc(out.gradEntropy, 'options.out.gradEntropy', n, allocated);
  } catch (err) {
    for (const a of allocated) a.free();
    throw err;
  }
  const metrics = new Float64Array(9);
  const args = [
    devicePointer(lp, 'logprobs'), n, devicePointer(old, 'oldLogprobs'), n, devicePointer(adv, 'advantages'), adv.length,
    ptrOf(m.array, 'mask'), n, m.kind, ptrOf(ref, 'options.refLogprobs'), n, ptrOf(entropy, 'options.entropy'), n,
    seqLen, params, devicePointer(gradLogprobs, 'options.out.gradLogprobs'), n,
    ptrOf(gradEntropy, 'options.out.gradEntropy'), n, metrics,
  ];
  const used = [lp, old, adv, gradLogprobs, ...[m.array, ref, entropy, gradEntropy].filter((a): a is DeviceArray => a !== null)];
  const finish = (): DevicePolicyLossResult => {
    const result: DevicePolicyLossResult = {
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
  return { args, used, allocated, finish };
}

function deviceKlArgs(logprobs: DeviceArray, refLogprobs: unknown, options: unknown): DeviceCall<DeviceKlPenaltyResult> {
  const opts = optionsObject<DeviceKlPenaltyOptions>(options, 'options', false);
  const lp = deviceArg(logprobs, 'logprobs', ['f32'], undefined, MIX);
  const n = lp.length;
  const ref = f32Arg(refLogprobs, 'refLogprobs', n);
  const estimator = opts.estimator === undefined ? 'k3' : oneOf(opts.estimator, 'options.estimator', ESTIMATORS);
  const m = deviceMask(opts.mask, 'options.mask', n);
  const out = opts.out === undefined ? {} : optionsObject<NonNullable<DeviceKlPenaltyOptions['out']>>(opts.out, 'options.out', true);
  const allocated: DeviceArray[] = [];
  let kl: DeviceArray<'f32'>, grad: DeviceArray<'f32'>;
  try {
    kl = outOrAlloc(out.kl, 'options.out.kl', n, allocated);
    grad = outOrAlloc(out.grad, 'options.out.grad', n, allocated);
  } catch (err) {
    for (const a of allocated) a.free();
    throw err;
  }
  const mean = new Float64Array(1);
  const args = [
    devicePointer(lp, 'logprobs'), n, devicePointer(ref, 'refLogprobs'), n, ptrOf(m.array, 'options.mask'), n, m.kind,
    ESTIMATOR_CODE[estimator], devicePointer(kl, 'options.out.kl'), n, devicePointer(grad, 'options.out.grad'), n, mean,
  ];
  const used = [lp, ref, kl, grad, ...(m.array ? [m.array] : [])];
  return { args, used, allocated, finish: () => ({ kl, grad, mean: mean[0] }) };
}


