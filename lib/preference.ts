// Preference losses (KERNELS.md section 4): the DPO family, SimPO, CPO, ORPO, reward-model
// (Bradley-Terry) training, f-DPO, KTO and token-weighted DPO (TGDPO), each with the gradient of
// the mean loss with respect to the policy log-probs.
//
// chosenLogps, rejectedLogps: (P) sequence log-prob sums;  c = chosen - refChosen,
// rho = rejected - refRejected,  x = beta (f(c) - f(rho));  e.g. sigmoid (DPO / cDPO):
//   L = -(1-e) log s(x) - e log s(-x),  loss = mean_i L_i,  dloss/dchosen_i = dL_i/dc_i / P.
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

/** The preference losses of {@link preferenceLoss}. */
export type PreferenceLossType =
  | 'sigmoid'
  | 'robust'
  | 'hinge'
  | 'ipo'
  | 'exo_pair'
  | 'nca_pair'
  | 'bco_pair'
  | 'sppo_hard'
  | 'apo_zero'
  | 'apo_down'
  | 'discopop'
  | 'simpo'
  | 'cpo'
  | 'orpo'
  | 'bt';

/** f-DPO divergences: which f'(u) replaces the log-ratio (TRL `f_divergence_type`). */
export type FDivergence = 'reverse_kl' | 'forward_kl' | 'js_divergence' | 'alpha_divergence';

const LOSSES: readonly PreferenceLossType[] = [
  'sigmoid', 'robust', 'hinge', 'ipo', 'exo_pair', 'nca_pair', 'bco_pair', 'sppo_hard',
  'apo_zero', 'apo_down', 'discopop', 'simpo', 'cpo', 'orpo', 'bt',
];
const FDIVS: readonly FDivergence[] = ['reverse_kl', 'forward_kl', 'js_divergence', 'alpha_divergence'];
/** Losses with no reference model (reference log-probs are rejected). */
const REFERENCE_FREE: ReadonlySet<PreferenceLossType> = new Set(['simpo', 'cpo', 'orpo', 'bt']);
/** Losses that use labelSmoothing. */
const SMOOTHED: ReadonlySet<PreferenceLossType> = new Set(['sigmoid', 'robust', 'exo_pair', 'simpo', 'cpo', 'bt']);
/** Losses built on x = beta (f(c) - f(rho)), where fDivergence applies. */
const F_DIVERGENCE: ReadonlySet<PreferenceLossType> = new Set(['sigmoid', 'robust', 'hinge', 'ipo', 'exo_pair', 'discopop']);

export interface PreferenceLossOptions {
  /** Which loss. Default 'sigmoid' (DPO). */
  loss?: PreferenceLossType;
  /** Reference-model sequence log-prob sums (P); both or neither. Absent = reference-free (0). */
  refChosenLogps?: Float32Array;
  refRejectedLogps?: Float32Array;
  /**
   * Completion lengths (P), >= 1; required by the length-averaged losses ('ipo', 'simpo', 'orpo'),
   * by 'cpo' with alpha != 0 and by nllWeight != 0. The kernel divides by them itself.
   */
  chosenLengths?: Int32Array;
  rejectedLengths?: Int32Array;
  /** Inverse temperature / KL weight. Default 0.1 (TRL, Liger); 2.0 for 'simpo' (SimPO paper). Unused by 'bt'. */
  beta?: number;
  /** Label-smoothing e in [0, 0.5): cDPO for 'sigmoid', 'robust', 'exo_pair' (0 means 1e-3), 'simpo', 'cpo', 'bt'. Default 0. */
  labelSmoothing?: number;
  /** SimPO target margin gamma (the logits are beta (avg_w - avg_l) - gamma). Default 0.5. */
  gamma?: number;
  /** CPO weight of the chosen NLL term (TRL `cpo_alpha`). Default 1.0. */
  alpha?: number;
  /** DiscoPOP temperature (TRL `discopop_tau`). Default 0.05. */
  tau?: number;
  /** 'bt' only: margin subtracted from the reward difference; a number or one per pair (P). Default 0. */
  margin?: number | Float32Array;
  /** 'bt' only: soft labels q in [0, 1] (P): L = -(q log s(d) + (1-q) log s(-d)). */
  preferenceProb?: Float32Array;
  /** RPO: adds nllWeight * (-chosen / chosenLength) per pair (TRL `rpo_alpha`). Default 0. */
  nllWeight?: number;
  /** f-DPO divergence ('sigmoid', 'robust', 'hinge', 'ipo', 'exo_pair', 'discopop'). Default 'reverse_kl'. */
  fDivergence?: FDivergence;
  /** Coefficient of 'alpha_divergence' (> 0). Default 1.0 (TRL). */
  fAlpha?: number;
  /** Caller-owned outputs, (P) each. */
  out?: {
    losses?: Float32Array;
    chosenRewards?: Float32Array;
    rejectedRewards?: Float32Array;
    gradChosen?: Float32Array;
    gradRejected?: Float32Array;
  };
}

export interface PreferenceLossResult {
  /** Mean of `losses` (computed in double). */
  loss: number;
  /** Per-pair losses (P). */
  losses: Float32Array;
  /** Implicit rewards (P): beta c for the DPO family, beta avg/sum log-prob for SimPO/CPO/ORPO, the rewards for 'bt'. */
  chosenRewards: Float32Array;
  rejectedRewards: Float32Array;
  /** d loss / d chosenLogps (P), loss being the mean. */
  gradChosen: Float32Array;
  /** d loss / d rejectedLogps (P). */
  gradRejected: Float32Array;
  metrics: {
    /** Share of pairs whose chosen reward exceeds the rejected reward. */
    rewardAccuracy: number;
    /** Mean of chosenRewards - rejectedRewards. */
    rewardMargin: number;
  };
}

interface PreferenceBinding {
  preferenceLoss(...args: unknown[]): undefined;
  preferenceLossAsync(...args: unknown[]): Promise<undefined>;
  ktoLoss(...args: unknown[]): undefined;
  ktoLossAsync(...args: unknown[]): Promise<undefined>;
  tokenWeightedDpoLoss(...args: unknown[]): undefined;
  tokenWeightedDpoLossAsync(...args: unknown[]): Promise<undefined>;
}
const native = binding<PreferenceBinding>();

const MAX_LEN = 2 ** 31 - 1;

// Scratch for the sync forms (JS runs one sync call at a time); the Promise forms allocate their own.
const SYNC_PARAMS = new Float64Array(10);
const SYNC_KTO_PARAMS = new Float64Array(4);
const SYNC_STATS = new Float64Array(3);

/** A host call given a DeviceArray anywhere is a TypeError naming it. */
function rejectHostMix(second: unknown, secondName: string, opts: object, keys: string[], outKeys: string[]): void {
  if (secondName) rejectDevice(second, secondName);
  const o = opts as Record<string, unknown>;
  for (const k of keys) rejectDevice(o[k], `options.${k}`);
  const out = o.out;
  if (out !== null && typeof out === 'object') {
    for (const k of outKeys) rejectDevice((out as Record<string, unknown>)[k], `options.out.${k}`);
  }
}

function labelSmoothingOf(v: unknown): number {
  if (v === undefined) return 0;
  const e = finiteIn(v, 'options.labelSmoothing', 0, 0.5);
  if (e >= 0.5) {
    throw new RangeError(`options.labelSmoothing: expected a number in [0, 0.5) (0.5 would divide by 1 - 2e), received ${e}`);
  }
  return e;
}

function lengthsOf(v: unknown, name: string, n: number, loss: string, why: string): Int32Array {
  if (v === undefined) {
    throw new TypeError(`${name}: ${why} (loss '${loss}'), expected an Int32Array of length ${n}, received undefined`);
  }
  const a = typedArrayOfLength(v, name, Int32Array, n);
  for (let i = 0; i < n; i++) {
    if (a[i] < 1) throw new RangeError(`${name}[${i}]: expected a length >= 1, received ${a[i]}`);
  }
  return a;
}

/** The scalar options of preferenceLoss (the same checks for host and device arrays). */
function preferenceScalars(opts: Partial<PreferenceLossOptions> | Partial<DevicePreferenceLossOptions>, loss: PreferenceLossType) {
  const beta = opts.beta === undefined ? (loss === 'simpo' ? 2.0 : 0.1) : finitePositive(opts.beta, 'options.beta');
  const e = labelSmoothingOf(opts.labelSmoothing);
  if (e > 0 && !SMOOTHED.has(loss)) {
    throw new RangeError(`options.labelSmoothing: loss '${loss}' takes no label smoothing, expected 0, received ${e}`);
  }
  const gamma = opts.gamma === undefined ? 0.5 : finiteIn(opts.gamma, 'options.gamma', -Infinity, Infinity);
  const alpha = opts.alpha === undefined ? 1.0 : finiteIn(opts.alpha, 'options.alpha', 0, Infinity);
  const tau = opts.tau === undefined ? 0.05 : finitePositive(opts.tau, 'options.tau');
  const nllWeight = opts.nllWeight === undefined ? 0 : finiteIn(opts.nllWeight, 'options.nllWeight', 0, Infinity);
  if (nllWeight !== 0 && loss === 'bt') {
    throw new RangeError(`options.nllWeight: loss 'bt' compares rewards, not log-probs, expected 0, received ${nllWeight}`);
  }
  const fDivergence = opts.fDivergence === undefined ? 'reverse_kl' : oneOf(opts.fDivergence, 'options.fDivergence', FDIVS);
  if (fDivergence !== 'reverse_kl' && !F_DIVERGENCE.has(loss)) {
    throw new RangeError(`options.fDivergence: applies to ${[...F_DIVERGENCE].map((l) => `'${l}'`).join(', ')}, not to loss '${loss}'; received '${fDivergence}'`);
  }
  const fAlpha = opts.fAlpha === undefined ? 1.0 : finitePositive(opts.fAlpha, 'options.fAlpha');
  return { beta, e, gamma, alpha, tau, nllWeight, fDivergence, fAlpha };
}

function preferenceArgs(chosenLogps: unknown, rejectedLogps: unknown, options: unknown, sync: boolean) {
  const opts = optionsObject<PreferenceLossOptions>(options, 'options', false);
  rejectHostMix(rejectedLogps, 'rejectedLogps', opts, [
    'refChosenLogps', 'refRejectedLogps', 'chosenLengths', 'rejectedLengths', 'margin', 'preferenceProb',
  ], ['losses', 'chosenRewards', 'rejectedRewards', 'gradChosen', 'gradRejected']);
  const loss = opts.loss === undefined ? 'sigmoid' : oneOf(opts.loss, 'options.loss', LOSSES);
  const chosen = typedArray(chosenLogps, 'chosenLogps', Float32Array);
  const n = chosen.length;
  if (n < 1) throw new RangeError('chosenLogps: expected at least one pair, received length 0');
  const rejected = typedArrayOfLength(rejectedLogps, 'rejectedLogps', Float32Array, n);

  let refc: Float32Array | null = null, refr: Float32Array | null = null;
  if (opts.refChosenLogps !== undefined || opts.refRejectedLogps !== undefined) {
    if (REFERENCE_FREE.has(loss)) {
      const name = opts.refChosenLogps !== undefined ? 'options.refChosenLogps' : 'options.refRejectedLogps';
      throw new TypeError(`${name}: loss '${loss}' is reference-free, expected undefined, received ${describe(opts.refChosenLogps ?? opts.refRejectedLogps)}`);
    }
    if (opts.refChosenLogps === undefined || opts.refRejectedLogps === undefined) {
      const missing = opts.refChosenLogps === undefined ? 'options.refChosenLogps' : 'options.refRejectedLogps';
      throw new TypeError(`${missing}: expected both reference arrays or neither, received undefined`);
    }
    refc = typedArrayOfLength(opts.refChosenLogps, 'options.refChosenLogps', Float32Array, n);
    refr = typedArrayOfLength(opts.refRejectedLogps, 'options.refRejectedLogps', Float32Array, n);
  }

  const { beta, e, gamma, alpha, tau, nllWeight, fDivergence, fAlpha } = preferenceScalars(opts, loss);

  let marginScalar = 0;
  let marginArr: Float32Array | null = null;
  let prob: Float32Array | null = null;
  if (opts.margin !== undefined || opts.preferenceProb !== undefined) {
    if (loss !== 'bt') {
      const name = opts.margin !== undefined ? 'options.margin' : 'options.preferenceProb';
      throw new TypeError(`${name}: only loss 'bt' takes it, expected undefined with loss '${loss}', received ${describe(opts.margin ?? opts.preferenceProb)}`);
    }
    if (typeof opts.margin === 'number') marginScalar = finiteIn(opts.margin, 'options.margin', -Infinity, Infinity);
    else if (opts.margin !== undefined) marginArr = typedArrayOfLength(opts.margin, 'options.margin', Float32Array, n);
    if (opts.preferenceProb !== undefined) {
      if (e > 0) {
        throw new RangeError(`options.labelSmoothing: soft labels (preferenceProb) replace label smoothing, expected 0, received ${e}`);
      }
      prob = typedArrayOfLength(opts.preferenceProb, 'options.preferenceProb', Float32Array, n);
      for (let i = 0; i < n; i++) {
        if (!(prob[i] >= 0 && prob[i] <= 1)) {
          throw new RangeError(`options.preferenceProb[${i}]: expected a probability in [0, 1], received ${prob[i]}`);
        }
      }
    }
  }

  let lw: Int32Array | null = null, ll: Int32Array | null = null;
  const why = loss === 'ipo' || loss === 'simpo' || loss === 'orpo'
    ? 'the loss averages log-probs over the completion lengths'
    : loss === 'cpo' && alpha !== 0
      ? 'the CPO NLL term (alpha != 0) divides by the chosen length'
      : nllWeight !== 0
        ? 'the NLL term (nllWeight != 0) divides by the chosen length'
        : null;
  if (why !== null) {
    lw = lengthsOf(opts.chosenLengths, 'options.chosenLengths', n, loss, why);
    ll = lengthsOf(opts.rejectedLengths, 'options.rejectedLengths', n, loss, why);
  } else {
    if (opts.chosenLengths !== undefined) lw = lengthsOf(opts.chosenLengths, 'options.chosenLengths', n, loss, '');
    if (opts.rejectedLengths !== undefined) ll = lengthsOf(opts.rejectedLengths, 'options.rejectedLengths', n, loss, '');
  }

  const out = optionsObject<NonNullable<PreferenceLossOptions['out']>>(opts.out, 'options.out', false);
  const result = {
    losses: outFloat32(out.losses, 'options.out.losses', n),
    chosenRewards: outFloat32(out.chosenRewards, 'options.out.chosenRewards', n),
    rejectedRewards: outFloat32(out.rejectedRewards, 'options.out.rejectedRewards', n),
    gradChosen: outFloat32(out.gradChosen, 'options.out.gradChosen', n),
    gradRejected: outFloat32(out.gradRejected, 'options.out.gradRejected', n),
  };
  const params = sync ? SYNC_PARAMS : new Float64Array(10);
  params[0] = LOSSES.indexOf(loss);
  params[1] = beta;
  params[2] = e;
  params[3] = gamma;
  params[4] = alpha;
  params[5] = tau;
  params[6] = marginScalar;
  params[7] = FDIVS.indexOf(fDivergence);
  params[8] = fAlpha;
  params[9] = nllWeight;
  const stats = sync ? SYNC_STATS : new Float64Array(3);
  const args = [
    chosen, rejected, refc, refr, lw, ll, marginArr, prob, params,
    result.losses, result.chosenRewards, result.rejectedRewards, result.gradChosen, result.gradRejected, stats,
  ];
  const finish = (): PreferenceLossResult => ({
    loss: stats[0],
    ...result,
    metrics: { rewardAccuracy: stats[1], rewardMargin: stats[2] },
  });
  return { args, finish };
}

/**
 * A preference loss over P pairs of sequence log-prob sums, with the implicit rewards, the
 * metrics trainers log and the gradients of the mean loss with respect to `chosenLogps` and
 * `rejectedLogps`. All arithmetic is in double; every loss stays finite for log-ratios of
 * magnitude up to 1e3.
 *
 * @example
 * const r = preferenceLoss(policyChosen, policyRejected, {
 *   refChosenLogps: refChosen, refRejectedLogps: refRejected, beta: 0.1,
 * });
 * // r.loss, r.gradChosen, r.gradRejected, r.metrics.rewardAccuracy
 *
 * With f32 DeviceArrays (lengths i32) it runs on the GPU (cuda/preference.h): the per-pair arrays are f32
 * DeviceArrays (owned by the caller: free() them), loss and metrics are downloaded numbers. Every array must
 * then be a DeviceArray (TypeError naming it otherwise). Lengths are checked on the device where the loss
 * uses them (a length < 1 is the host path's RangeError; the call then waits for the device); lengths the
 * loss does not use, and preferenceProb values, are not checked there.
 */
export function preferenceLoss(
  chosenLogps: Float32Array,
  rejectedLogps: Float32Array,
  options?: PreferenceLossOptions,
): PreferenceLossResult;
export function preferenceLoss(
  chosenLogps: DeviceArray,
  rejectedLogps: DeviceArray,
  options?: DevicePreferenceLossOptions,
): DevicePreferenceLossResult;
export function preferenceLoss(
  chosenLogps: Float32Array | DeviceArray,
  rejectedLogps: Float32Array | DeviceArray,
  options?: PreferenceLossOptions | DevicePreferenceLossOptions,
): PreferenceLossResult | DevicePreferenceLossResult {
  if (chosenLogps instanceof DeviceArray) {
    return runDevice(devicePreferenceArgs(chosenLogps, rejectedLogps, options), cudaPref('preferenceLoss').preferenceLoss);
  }
  const { args, finish } = preferenceArgs(chosenLogps, rejectedLogps, options, true);
  native.preferenceLoss(...args);
  return finish();
}

/** preferenceLoss on a worker thread; the input buffers must stay untouched until it settles. */
export async function preferenceLossAsync(
  chosenLogps: Float32Array,
  rejectedLogps: Float32Array,
  options?: PreferenceLossOptions,
): Promise<PreferenceLossResult>;
export async function preferenceLossAsync(
  chosenLogps: DeviceArray,
  rejectedLogps: DeviceArray,
  options?: DevicePreferenceLossOptions,
): Promise<DevicePreferenceLossResult>;
export async function preferenceLossAsync(
  chosenLogps: Float32Array | DeviceArray,
  rejectedLogps: Float32Array | DeviceArray,
  options?: PreferenceLossOptions | DevicePreferenceLossOptions,
): Promise<PreferenceLossResult | DevicePreferenceLossResult> {
  if (chosenLogps instanceof DeviceArray) {
    return runDeviceAsync(devicePreferenceArgs(chosenLogps, rejectedLogps, options), cudaPref('preferenceLossAsync').preferenceLossAsync);
  }
  const { args, finish } = preferenceArgs(chosenLogps, rejectedLogps, options, false);
  await native.preferenceLossAsync(...args);
  return finish();
}

// ---------------------------------------------------------------------------------------------
// KTO

export interface KtoLossOptions {
  /** 1 (nonzero) = desirable, 0 = undesirable, one per example (N). */
  desirable: Uint8Array;
  /** The KL estimate z0 (a constant: no gradient flows through it). TRL passes max(0, mean KL). */
  kl: number;
  /** Reference log-prob sums (N). Absent = 0 (reference-free). */
  refLogps?: Float32Array;
  /** Default 0.1 (TRL KTOConfig). */
  beta?: number;
  /** Weight of desirable examples. Default 1.0. */
  desirableWeight?: number;
  /** Weight of undesirable examples. Default 1.0. */
  undesirableWeight?: number;
  out?: { losses?: Float32Array; rewards?: Float32Array; grad?: Float32Array };
}

export interface KtoLossResult {
  /** Mean of `losses` over all N examples. */
  loss: number;
  /** Weighted per-example losses (N). */
  losses: Float32Array;
  /** beta (logp - ref) (N). */
  rewards: Float32Array;
  /** d loss / d policyLogps (N). */
  grad: Float32Array;
  metrics: {
    /** Mean reward of the desirable examples (NaN when there are none). */
    desirableRewardMean: number;
    /** Mean reward of the undesirable examples (NaN when there are none). */
    undesirableRewardMean: number;
  };
}

function ktoArgs(policyLogps: unknown, options: unknown, sync: boolean) {
  const opts = optionsObject<KtoLossOptions>(options, 'options', true);
  rejectHostMix(undefined, '', opts, ['desirable', 'refLogps'], ['losses', 'rewards', 'grad']);
  const logp = typedArray(policyLogps, 'policyLogps', Float32Array);
  const n = logp.length;
  if (n < 1) throw new RangeError('policyLogps: expected at least one example, received length 0');
  const desirable = typedArrayOfLength(opts.desirable, 'options.desirable', Uint8Array, n);
  const ref = opts.refLogps === undefined ? null : typedArrayOfLength(opts.refLogps, 'options.refLogps', Float32Array, n);
  const kl = finiteIn(opts.kl, 'options.kl', -Infinity, Infinity);
  const beta = opts.beta === undefined ? 0.1 : finitePositive(opts.beta, 'options.beta');
  const wd = opts.desirableWeight === undefined ? 1 : finiteIn(opts.desirableWeight, 'options.desirableWeight', 0, Infinity);
  const wu = opts.undesirableWeight === undefined ? 1 : finiteIn(opts.undesirableWeight, 'options.undesirableWeight', 0, Infinity);
  const out = optionsObject<NonNullable<KtoLossOptions['out']>>(opts.out, 'options.out', false);
  const result = {
    losses: outFloat32(out.losses, 'options.out.losses', n),
    rewards: outFloat32(out.rewards, 'options.out.rewards', n),
    grad: outFloat32(out.grad, 'options.out.grad', n),
  };
  const stats = sync ? SYNC_STATS : new Float64Array(3);
  const params = sync ? SYNC_KTO_PARAMS : new Float64Array(4);
  params[0] = beta;
  params[1] = kl;
  params[2] = wd;
  params[3] = wu;
  const args = [logp, ref, desirable, params, result.losses, result.rewards, result.grad, stats];
  const finish = (): KtoLossResult => ({
    loss: stats[0],
    ...result,
    metrics: { desirableRewardMean: stats[1], undesirableRewardMean: stats[2] },
  });
  return { args, finish };
}

/**
 * KTO (unpaired): with r = logp - ref and x = beta (r - kl), a desirable example costs
 * desirableWeight (1 - s(x)) and an undesirable one undesirableWeight (1 - s(-x)); `loss` is the
 * mean over all examples, `grad` its gradient with respect to `policyLogps`.
 *
 * @example
 * const r = ktoLoss(policyLogps, { desirable, refLogps, kl: Math.max(0, klEstimate) });
 *
 * With DeviceArrays (policyLogps and refLogps f32, desirable u8) it runs on the GPU: losses, rewards and grad
 * are f32 DeviceArrays (owned by the caller), loss and metrics are downloaded.
 */
export function ktoLoss(policyLogps: Float32Array, options: KtoLossOptions): KtoLossResult;
export function ktoLoss(policyLogps: DeviceArray, options: DeviceKtoLossOptions): DeviceKtoLossResult;
export function ktoLoss(
  policyLogps: Float32Array | DeviceArray,
  options: KtoLossOptions | DeviceKtoLossOptions,
): KtoLossResult | DeviceKtoLossResult {
  if (policyLogps instanceof DeviceArray) return runDevice(deviceKtoArgs(policyLogps, options), cudaPref('ktoLoss').ktoLoss);
  const { args, finish } = ktoArgs(policyLogps, options, true);
  native.ktoLoss(...args);
  return finish();
}

/** ktoLoss on a worker thread; the input buffers must stay untouched until it settles. */
export async function ktoLossAsync(policyLogps: Float32Array, options: KtoLossOptions): Promise<KtoLossResult>;
export async function ktoLossAsync(policyLogps: DeviceArray, options: DeviceKtoLossOptions): Promise<DeviceKtoLossResult>;
export async function ktoLossAsync(
  policyLogps: Float32Array | DeviceArray,
  options: KtoLossOptions | DeviceKtoLossOptions,
): Promise<KtoLossResult | DeviceKtoLossResult> {
  if (policyLogps instanceof DeviceArray) {
    return runDeviceAsync(deviceKtoArgs(policyLogps, options), cudaPref('ktoLossAsync').ktoLossAsync);
  }
  const { args, finish } = ktoArgs(policyLogps, options, false);
  await native.ktoLossAsync(...args);
  return finish();
}

// ---------------------------------------------------------------------------------------------
// Token-weighted DPO (TGDPO)

export interface TokenWeightedDpoOptions {
  /** T: every per-token array holds B rows of T tokens (padded, row-major). */
  seqLen: number;
  /** Reference per-token log-probs of the chosen / rejected completions (B * T). */
  refChosenLogps: Float32Array;
  refRejectedLogps: Float32Array;
  /** Token rewards rw_t, rl_t (B * T), e.g. a token-level reward model's log-ratio (TGDPO). */
  chosenTokenRewards: Float32Array;
  rejectedTokenRewards: Float32Array;
  /** Masks (B * T): Uint8Array (1 = response token) or Float32Array weights; both of one type. */
  chosenMask: Uint8Array | Float32Array;
  rejectedMask: Uint8Array | Float32Array;
  /** Default 0.1. */
  beta?: number;
  /** Token-reward guidance strength. Default 0.5 (TGDPO). */
  alpha?: number;
  out?: {
    losses?: Float32Array;
    chosenRewards?: Float32Array;
    rejectedRewards?: Float32Array;
    gradChosen?: Float32Array;
    gradRejected?: Float32Array;
  };
}

export interface TokenWeightedDpoResult {
  /** Mean of `losses` over the B pairs. */
  loss: number;
  /** -log s(z) per pair (B). */
  losses: Float32Array;
  /** sum_t m beta (1 + alpha beta rw_t) (logp - ref)_t per pair (B). */
  chosenRewards: Float32Array;
  /** sum_t m beta (1 - alpha beta rl_t) (logp - ref)_t per pair (B); z = chosen - rejected. */
  rejectedRewards: Float32Array;
  /** d loss / d chosenLogps (B * T). */
  gradChosen: Float32Array;
  /** d loss / d rejectedLogps (B * T). */
  gradRejected: Float32Array;
  metrics: { rewardAccuracy: number; rewardMargin: number };
}

function tgdpoArgs(chosenLogps: unknown, rejectedLogps: unknown, options: unknown, sync: boolean) {
  const opts = optionsObject<TokenWeightedDpoOptions>(options, 'options', true);
  rejectHostMix(rejectedLogps, 'rejectedLogps', opts, [
    'refChosenLogps', 'refRejectedLogps', 'chosenTokenRewards', 'rejectedTokenRewards', 'chosenMask', 'rejectedMask',
  ], ['losses', 'chosenRewards', 'rejectedRewards', 'gradChosen', 'gradRejected']);
  const seqLen = integer(opts.seqLen, 'options.seqLen', 1, MAX_LEN);
  const chosen = typedArray(chosenLogps, 'chosenLogps', Float32Array);
  if (chosen.length === 0 || chosen.length % seqLen !== 0) {
    throw new RangeError(`chosenLogps: expected a positive length that is a multiple of seqLen (${seqLen}), received length ${chosen.length}`);
  }
  const nt = chosen.length, batch = nt / seqLen;
  const rejected = typedArrayOfLength(rejectedLogps, 'rejectedLogps', Float32Array, nt);
  const refc = typedArrayOfLength(opts.refChosenLogps, 'options.refChosenLogps', Float32Array, nt);
  const refr = typedArrayOfLength(opts.refRejectedLogps, 'options.refRejectedLogps', Float32Array, nt);
  const tw = typedArrayOfLength(opts.chosenTokenRewards, 'options.chosenTokenRewards', Float32Array, nt);
  const tl = typedArrayOfLength(opts.rejectedTokenRewards, 'options.rejectedTokenRewards', Float32Array, nt);
  let mw: Uint8Array | Float32Array;
  if (opts.chosenMask instanceof Float32Array) mw = typedArrayOfLength(opts.chosenMask, 'options.chosenMask', Float32Array, nt);
  else if (opts.chosenMask instanceof Uint8Array) mw = typedArrayOfLength(opts.chosenMask, 'options.chosenMask', Uint8Array, nt);
  else throw new TypeError(`options.chosenMask: expected a Uint8Array or a Float32Array, received ${describe(opts.chosenMask)}`);
  const ml = typedArrayOfLength(opts.rejectedMask, 'options.rejectedMask', mw instanceof Float32Array ? Float32Array : Uint8Array, nt);
  const beta = opts.beta === undefined ? 0.1 : finitePositive(opts.beta, 'options.beta');
  const alpha = opts.alpha === undefined ? 0.5 : finiteIn(opts.alpha, 'options.alpha', -Infinity, Infinity);
  const out = optionsObject<NonNullable<TokenWeightedDpoOptions['out']>>(opts.out, 'options.out', false);
  const result = {
    losses: outFloat32(out.losses, 'options.out.losses', batch),
    chosenRewards: outFloat32(out.chosenRewards, 'options.out.chosenRewards', batch),
    rejectedRewards: outFloat32(out.rejectedRewards, 'options.out.rejectedRewards', batch),
    gradChosen: outFloat32(out.gradChosen, 'options.out.gradChosen', nt),
    gradRejected: outFloat32(out.gradRejected, 'options.out.gradRejected', nt),
  };
  const stats = sync ? SYNC_STATS : new Float64Array(3);
  const args = [
    batch, seqLen, chosen, rejected, refc, refr, tw, tl, mw, ml, beta, alpha,
    result.losses, result.chosenRewards, result.rejectedRewards, result.gradChosen, result.gradRejected, stats,
  ];
  const finish = (): TokenWeightedDpoResult => ({
    loss: stats[0],
    ...result,
    metrics: { rewardAccuracy: stats[1], rewardMargin: stats[2] },
  });
  return { args, finish };
}

/**
 * Token-weighted DPO (TGDPO) over B pairs of per-token log-probs (B * T, padded with masks):
 * z = sum_t m beta (1 + alpha beta rw_t) (logp - ref)_w,t - sum_t m beta (1 - alpha beta rl_t)
 * (logp - ref)_l,t, L = -log s(z); returns the mean loss and its per-token gradients.
 *
 * @example
 * const r = tokenWeightedDpoLoss(chosenTok, rejectedTok, {
 *   seqLen: T, refChosenLogps, refRejectedLogps, chosenTokenRewards, rejectedTokenRewards,
 *   chosenMask, rejectedMask,
 * });
 *
 * With DeviceArrays (f32; masks both u8 or both f32) it runs on the GPU: the outputs are f32 DeviceArrays
 * (owned by the caller), loss and metrics are downloaded.
 */
export function tokenWeightedDpoLoss(
  chosenLogps: Float32Array,
  rejectedLogps: Float32Array,
  options: TokenWeightedDpoOptions,
): TokenWeightedDpoResult;
export function tokenWeightedDpoLoss(
  chosenLogps: DeviceArray,
  rejectedLogps: DeviceArray,
  options: DeviceTokenWeightedDpoOptions,
): DeviceTokenWeightedDpoResult;
export function tokenWeightedDpoLoss(
  chosenLogps: Float32Array | DeviceArray,
  rejectedLogps: Float32Array | DeviceArray,
  options: TokenWeightedDpoOptions | DeviceTokenWeightedDpoOptions,
): TokenWeightedDpoResult | DeviceTokenWeightedDpoResult {
  if (chosenLogps instanceof DeviceArray) {
    return runDevice(deviceTgdpoArgs(chosenLogps, rejectedLogps, options), cudaPref('tokenWeightedDpoLoss').tokenWeightedDpoLoss);
  }
  const { args, finish } = tgdpoArgs(chosenLogps, rejectedLogps, options, true);
  native.tokenWeightedDpoLoss(...args);
  return finish();
}

/** tokenWeightedDpoLoss on a worker thread; the input buffers must stay untouched until it settles. */
export async function tokenWeightedDpoLossAsync(
  chosenLogps: Float32Array,
  rejectedLogps: Float32Array,
  options: TokenWeightedDpoOptions,
): Promise<TokenWeightedDpoResult>;
export async function tokenWeightedDpoLossAsync(
  chosenLogps: DeviceArray,
  rejectedLogps: DeviceArray,
  options: DeviceTokenWeightedDpoOptions,
): Promise<DeviceTokenWeightedDpoResult>;
export async function tokenWeightedDpoLossAsync(
  chosenLogps: Float32Array | DeviceArray,
  rejectedLogps: Float32Array | DeviceArray,
  options: TokenWeightedDpoOptions | DeviceTokenWeightedDpoOptions,
): Promise<TokenWeightedDpoResult | DeviceTokenWeightedDpoResult> {
  if (chosenLogps instanceof DeviceArray) {
    return runDeviceAsync(
      deviceTgdpoArgs(chosenLogps, rejectedLogps, options),
      cudaPref('tokenWeightedDpoLossAsync').tokenWeightedDpoLossAsync,
    );
  }
  const { args, finish } = tgdpoArgs(chosenLogps, rejectedLogps, options, false);
  await native.tokenWeightedDpoLossAsync(...args);
  return finish();
}

// ---- device path (first array a DeviceArray; lib/cuda.ts, cuda/preference.h) ----------------------

type F32Device = DeviceArray<'f32'>;

/** preferenceLoss options when the log-probs are DeviceArrays: every array is a DeviceArray. */
export interface DevicePreferenceLossOptions
  extends Omit<PreferenceLossOptions, 'refChosenLogps' | 'refRejectedLogps' | 'chosenLengths' | 'rejectedLengths' | 'margin' | 'preferenceProb' | 'out'> {
  /** f32 DeviceArrays (P); both or neither. */
  refChosenLogps?: DeviceArray;
  refRejectedLogps?: DeviceArray;
  /** i32 DeviceArrays (P); checked (>= 1) on the device where the loss uses them. */
  chosenLengths?: DeviceArray;
  rejectedLengths?: DeviceArray;
  /** 'bt': a number or an f32 DeviceArray (P). */
  margin?: number | DeviceArray;
  /** 'bt': f32 DeviceArray (P) of probabilities (not range-checked on the device). */
  preferenceProb?: DeviceArray;
  /** Caller-owned f32 DeviceArrays (P each). */
  out?: {
    losses?: DeviceArray;
    chosenRewards?: DeviceArray;
    rejectedRewards?: DeviceArray;
    gradChosen?: DeviceArray;
    gradRejected?: DeviceArray;
  };
}

/** preferenceLoss on the device: arrays are f32 DeviceArrays (owned by the caller), loss and metrics are downloaded. */
export interface DevicePreferenceLossResult {
  loss: number;
  losses: F32Device;
  chosenRewards: F32Device;
  rejectedRewards: F32Device;
  gradChosen: F32Device;
  gradRejected: F32Device;
  metrics: { rewardAccuracy: number; rewardMargin: number };
}

/** ktoLoss options when the log-probs are a DeviceArray. */
export interface DeviceKtoLossOptions extends Omit<KtoLossOptions, 'desirable' | 'refLogps' | 'out'> {
  /** u8 DeviceArray (N): nonzero = desirable. */
  desirable: DeviceArray;
  /** f32 DeviceArray (N). */
  refLogps?: DeviceArray;
  out?: { losses?: DeviceArray; rewards?: DeviceArray; grad?: DeviceArray };
}

export interface DeviceKtoLossResult {
  loss: number;
  losses: F32Device;
  rewards: F32Device;
  grad: F32Device;
  metrics: { desirableRewardMean: number; undesirableRewardMean: number };
}

/** tokenWeightedDpoLoss options when the log-probs are DeviceArrays. */
export interface DeviceTokenWeightedDpoOptions
  extends Omit<TokenWeightedDpoOptions, 'refChosenLogps' | 'refRejectedLogps' | 'chosenTokenRewards' | 'rejectedTokenRewards' | 'chosenMask' | 'rejectedMask' | 'out'> {
  /** f32 DeviceArrays (B * T). */
  refChosenLogps: DeviceArray;
  refRejectedLogps: DeviceArray;
  chosenTokenRewards: DeviceArray;
  rejectedTokenRewards: DeviceArray;
  /** u8 or f32 DeviceArrays (B * T), both of one dtype. */
  chosenMask: DeviceArray;
  rejectedMask: DeviceArray;
  out?: {
    losses?: DeviceArray;
    chosenRewards?: DeviceArray;
    rejectedRewards?: DeviceArray;
    gradChosen?: DeviceArray;
    gradRejected?: DeviceArray;
  };
}

export interface DeviceTokenWeightedDpoResult {
  loss: number;
  losses: F32Device;
  chosenRewards: F32Device;
  rejectedRewards: F32Device;
  gradChosen: F32Device;
  gradRejected: F32Device;
  metrics: { rewardAccuracy: number; rewardMargin: number };
}

interface CudaPreferenceBinding {
  preferenceLoss(...args: unknown[]): undefined;
  preferenceLossAsync(...args: unknown[]): Promise<undefined>;
  ktoLoss(...args: unknown[]): undefined;
  ktoLossAsync(...args: unknown[]): Promise<undefined>;
  tokenWeightedDpoLoss(...args: unknown[]): undefined;
  tokenWeightedDpoLossAsync(...args: unknown[]): Promise<undefined>;
}
const cudaPref = (what: string) => cudaNative(what) as unknown as CudaPreferenceBinding;

/** A prepared device call: its arguments, the arrays it uses, the outputs it allocated, and its result. */

const MIX = 'the log-probs are a DeviceArray; host and device arrays cannot be mixed in one call';
const f32Dev = (v: unknown, name: string, n: number) => deviceArg(v, name, ['f32'], n, MIX) as F32Device;
const ptrOf = (a: DeviceArray | null, name: string) => (a ? devicePointer(a, name) : null);

/** Allocates (or checks) the f32 outputs named in `spec`; frees what it allocated when a check fails. */
function deviceOutputs<K extends string>(out: Record<string, unknown>, spec: [K, number][], allocated: DeviceArray[]): Record<K, F32Device> {
  const result = {} as Record<K, F32Device>;
  try {
    for (const [k, len] of spec) {
      if (out[k] !== undefined) result[k] = f32Dev(out[k], `options.out.${k}`, len);
      else {
        const a = alloc('f32', len);
        allocated.push(a);
        result[k] = a;
      }
    }
  } catch (err) {
    for (const a of allocated) a.free();
    allocated.length = 0;
    throw err;
  }
  return result;
}

const PAIR_OUTS = ['losses', 'chosenRewards', 'rejectedRewards', 'gradChosen', 'gradRejected'] as const;

function devicePreferenceArgs(chosenLogps: DeviceArray, rejectedLogps: unknown, options: unknown): DeviceCall<DevicePreferenceLossResult> {
  const opts = optionsObject<DevicePreferenceLossOptions>(options, 'options', false);
  const loss = opts.loss === undefined ? 'sigmoid' : oneOf(opts.loss, 'options.loss', LOSSES);
  const chosen = deviceArg(chosenLogps, 'chosenLogps', ['f32'], undefined, MIX);
  const n = chosen.length;
  if (n < 1) throw new RangeError('chosenLogps: expected at least one pair, received length 0');
  const rejected = f32Dev(rejectedLogps, 'rejectedLogps', n);

  let refc: DeviceArray | null = null, refr: DeviceArray | null = null;
  if (opts.refChosenLogps !== undefined || opts.refRejectedLogps !== undefined) {
    if (REFERENCE_FREE.has(loss)) {
      const name = opts.refChosenLogps !== undefined ? 'options.refChosenLogps' : 'options.refRejectedLogps';
      throw new TypeError(`${name}: loss '${loss}' is reference-free, expected undefined, received ${describe(opts.refChosenLogps ?? opts.refRejectedLogps)}`);
    }
    if (opts.refChosenLogps === undefined || opts.refRejectedLogps === undefined) {
      const missing = opts.refChosenLogps === undefined ? 'options.refChosenLogps' : 'options.refRejectedLogps';
      throw new TypeError(`${missing}: expected both reference arrays or neither, received undefined`);
    }
    refc = f32Dev(opts.refChosenLogps, 'options.refChosenLogps', n);
    refr = f32Dev(opts.refRejectedLogps, 'options.refRejectedLogps', n);
  }
  const { beta, e, gamma, alpha, tau, nllWeight, fDivergence, fAlpha } = preferenceScalars(opts, loss);

  let marginScalar = 0;
  let marginArr: DeviceArray | null = null;
  let prob: DeviceArray | null = null;
  if (opts.margin !== undefined || opts.preferenceProb !== undefined) {
    if (loss !== 'bt') {
      const name = opts.margin !== undefined ? 'options.margin' : 'options.preferenceProb';
      throw new TypeError(`${name}: only loss 'bt' takes it, expected undefined with loss '${loss}', received ${describe(opts.margin ?? opts.preferenceProb)}`);
    }
    if (typeof opts.margin === 'number') marginScalar = finiteIn(opts.margin, 'options.margin', -Infinity, Infinity);
    else if (opts.margin !== undefined) marginArr = f32Dev(opts.margin, 'options.margin', n);
    if (opts.preferenceProb !== undefined) {
      if (e > 0) {
        throw new RangeError(`options.labelSmoothing: soft labels (preferenceProb) replace label smoothing, expected 0, received ${e}`);
      }
      prob = f32Dev(opts.preferenceProb, 'options.preferenceProb', n);
    }
  }

  const why = loss === 'ipo' || loss === 'simpo' || loss === 'orpo'
    ? 'the loss averages log-probs over the completion lengths'
    : loss === 'cpo' && alpha !== 0
      ? 'the CPO NLL term (alpha != 0) divides by the chosen length'
      : nllWeight !== 0
        ? 'the NLL term (nllWeight != 0) divides by the chosen length'
        : null;
  const lengths = (v: unknown, name: string): DeviceArray | null => {
    if (v === undefined) {
      if (why === null) return null;
      throw new TypeError(`${name}: ${why} (loss '${loss}'), expected an i32 DeviceArray of length ${n}, received undefined`);
    }
    return deviceArg(v, name, ['i32'], n, MIX);
  };
  const lw = lengths(opts.chosenLengths, 'options.chosenLengths');
  const ll = lengths(opts.rejectedLengths, 'options.rejectedLengths');

  const out = optionsObject<Record<string, unknown>>(opts.out, 'options.out', false);
  const allocated: DeviceArray[] = [];
  const r = deviceOutputs(out, PAIR_OUTS.map((k) => [k, n] as [typeof k, number]), allocated);
  const params = new Float64Array([
    LOSSES.indexOf(loss), beta, e, gamma, alpha, tau, marginScalar, FDIVS.indexOf(fDivergence), fAlpha, nllWeight,
  ]);
  const stats = new Float64Array(3);
  const args = [
    devicePointer(chosen, 'chosenLogps'), n, devicePointer(rejected, 'rejectedLogps'), n,
    ptrOf(refc, 'options.refChosenLogps'), n, ptrOf(refr, 'options.refRejectedLogps'), n,
    ptrOf(lw, 'options.chosenLengths'), n, ptrOf(ll, 'options.rejectedLengths'), n,
    ptrOf(marginArr, 'options.margin'), n, ptrOf(prob, 'options.preferenceProb'), n, params,
    ...PAIR_OUTS.flatMap((k) => [devicePointer(r[k], `options.out.${k}`), n]), stats,
  ];
  const used = [chosen, rejected, ...PAIR_OUTS.map((k) => r[k]), ...[refc, refr, lw, ll, marginArr, prob].filter((a): a is DeviceArray => a !== null)];
  const finish = (): DevicePreferenceLossResult => ({ loss: stats[0], ...r, metrics: { rewardAccuracy: stats[1], rewardMargin: stats[2] } });
  return { args, used, allocated, finish };
}

function deviceKtoArgs(policyLogps: DeviceArray, options: unknown): DeviceCall<DeviceKtoLossResult> {
  const opts = optionsObject<DeviceKtoLossOptions>(options, 'options', true);
  const logp = deviceArg(policyLogps, 'policyLogps', ['f32'], undefined, MIX);
  const n = logp.length;
  if (n < 1) throw new RangeError('policyLogps: expected at least one example, received length 0');
  const desirable = deviceArg(opts.desirable, 'options.desirable', ['u8'], n, MIX);
  const ref = opts.refLogps === undefined ? null : f32Dev(opts.refLogps, 'options.refLogps', n);
  const kl = finiteIn(opts.kl, 'options.kl', -Infinity, Infinity);
  const beta = opts.beta === undefined ? 0.1 : finitePositive(opts.beta, 'options.beta');
  const wd = opts.desirableWeight === undefined ? 1 : finiteIn(opts.desirableWeight, 'options.desirableWeight', 0, Infinity);
  const wu = opts.undesirableWeight === undefined ? 1 : finiteIn(opts.undesirableWeight, 'options.undesirableWeight', 0, Infinity);
  const out = optionsObject<Record<string, unknown>>(opts.out, 'options.out', false);
  const allocated: DeviceArray[] = [];
  const r = deviceOutputs(out, [['losses', n], ['rewards', n], ['grad', n]], allocated);
  const stats = new Float64Array(3);
  const args = [
    devicePointer(logp, 'policyLogps'), n, ptrOf(ref, 'options.refLogps'), n, devicePointer(desirable, 'options.desirable'), n,
    new Float64Array([beta, kl, wd, wu]),
    devicePointer(r.losses, 'options.out.losses'), n, devicePointer(r.rewards, 'options.out.rewards'), n,
    devicePointer(r.grad, 'options.out.grad'), n, stats,
  ];
  const used = [logp, desirable, r.losses, r.rewards, r.grad, ...(ref ? [ref] : [])];
  const finish = (): DeviceKtoLossResult => ({
    loss: stats[0],
    ...r,
    metrics: { desirableRewardMean: stats[1], undesirableRewardMean: stats[2] },
  });
  return { args, used, allocated, finish };
}

function deviceTgdpoArgs(chosenLogps: DeviceArray, rejectedLogps: unknown, options: unknown): DeviceCall<DeviceTokenWeightedDpoResult> {
  const opts = optionsObject<DeviceTokenWeightedDpoOptions>(options, 'options', true);
  const seqLen = integer(opts.seqLen, 'options.seqLen', 1, MAX_LEN);
  const chosen = deviceArg(chosenLogps, 'chosenLogps', ['f32'], undefined, MIX);
  if (chosen.length === 0 || chosen.length % seqLen !== 0) {
    throw new RangeError(`chosenLogps: expected a positive length that is a multiple of seqLen (${seqLen}), received length ${chosen.length}`);
  }
  const nt = chosen.length, batch = nt / seqLen;
  const rejected = f32Dev(rejectedLogps, 'rejectedLogps', nt);
  const refc = f32Dev(opts.refChosenLogps, 'options.refChosenLogps', nt);
  const refr = f32Dev(opts.refRejectedLogps, 'options.refRejectedLogps', nt);
  const tw = f32Dev(opts.chosenTokenRewards, 'options.chosenTokenRewards', nt);
  const tl = f32Dev(opts.rejectedTokenRewards, 'options.rejectedTokenRewards', nt);
  const mw = deviceArg(opts.chosenMask, 'options.chosenMask', ['u8', 'f32'], nt, MIX);
  const ml = deviceArg(opts.rejectedMask, 'options.rejectedMask', [mw.dtype], nt, MIX);
  const beta = opts.beta === undefined ? 0.1 : finitePositive(opts.beta, 'options.beta');
  const alpha = opts.alpha === undefined ? 0.5 : finiteIn(opts.alpha, 'options.alpha', -Infinity, Infinity);
  const out = optionsObject<Record<string, unknown>>(opts.out, 'options.out', false);
  const allocated: DeviceArray[] = [];
  const r = deviceOutputs(
    out,
    [['losses', batch], ['chosenRewards', batch], ['rejectedRewards', batch], ['gradChosen', nt], ['gradRejected', nt]],
    allocated,
  );
  const stats = new Float64Array(3);
  const args = [
    batch, seqLen, devicePointer(chosen, 'chosenLogps'), nt, devicePointer(rejected, 'rejectedLogps'), nt,
    devicePointer(refc, 'options.refChosenLogps'), nt, devicePointer(refr, 'options.refRejectedLogps'), nt,
    devicePointer(tw, 'options.chosenTokenRewards'), nt, devicePointer(tl, 'options.rejectedTokenRewards'), nt,
    devicePointer(mw, 'options.chosenMask'), nt, devicePointer(ml, 'options.rejectedMask'), nt, mw.dtype === 'f32', beta, alpha,
    ...PAIR_OUTS.flatMap((k) => [devicePointer(r[k], `options.out.${k}`), r[k].length]), stats,
  ];
  const used = [chosen, rejected, refc, refr, tw, tl, mw, ml, ...PAIR_OUTS.map((k) => r[k])];
  const finish = (): DeviceTokenWeightedDpoResult => ({ loss: stats[0], ...r, metrics: { rewardAccuracy: stats[1], rewardMargin: stats[2] } });
  return { args, used, allocated, finish };
}


