// rolloutCorrection: off-policy / rollout correction between the trainer's recomputed log-probs and
// the rollout engine's (TRL vllm_importance_sampling_mode and off_policy_mask_threshold; verl
// rollout_corr_helper). The formulas: native/core/rollout_correction.h; docs/policy.md#rolloutcorrection.
//
// trainerLogprobs, rolloutLogprobs, mask: (B, T); advantages (B) or (B, T), or null.
//   d = trainer - rollout (per token), S_i = sum_t m d (per sequence)
//   weights: w0 = exp(clamp(d, -20, 20)) (token modes) or exp(clamp(S_i, -20, 20)) (sequence modes),
//     truncate: clamp(w0, clipMin, clipMax); mask: w0 where clipMin <= w0 <= clipMax, else 0;
//     batchNormalize: divided by their mean; times the off-policy mask [A >= 0 or -S_i / max(sum m, 1) <= delta]
//   mask: m where every rejection criterion passes, else 0
import { describe, options as optionsObject } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { defineOp, enumOf, flag, int, knownKeys, num, onlyWhen, openOptions, type OptionSpec, packOptions, readOptions } from '../op.js';
import type { TokenMask } from '../types.js';
import { LOGPROBS_MIX } from './enums.js';
import { hostMaskCheck } from './policy-loss.js';

/** TRL's vllm_importance_sampling_mode values, plus 'none' (no importance weights). */
export type RolloutCorrectionMode = 'token_truncate' | 'token_mask' | 'sequence_truncate' | 'sequence_mask' | 'none';
/** verl's rollout_rs options. */
export type RolloutRejectionCriterion =
  | 'token_k1' | 'token_k2' | 'token_k3'
  | 'seq_sum_k1' | 'seq_sum_k2' | 'seq_sum_k3'
  | 'seq_mean_k1' | 'seq_mean_k2' | 'seq_mean_k3'
  | 'seq_max_k2' | 'seq_max_k3';

export const RC_MODES: readonly RolloutCorrectionMode[] = ['token_truncate', 'token_mask', 'sequence_truncate', 'sequence_mask', 'none'];
export const RC_CRITERIA: readonly RolloutRejectionCriterion[] = [
  'token_k1', 'token_k2', 'token_k3', 'seq_sum_k1', 'seq_sum_k2', 'seq_sum_k3',
  'seq_mean_k1', 'seq_mean_k2', 'seq_mean_k3', 'seq_max_k2', 'seq_max_k3',
];

/**
 * verl's rollout_rs / rollout_rs_threshold as one object: criterion -> threshold. A k1 criterion takes
 * the ratio bounds [lower, upper] (verl "lower_upper") or one upper bound (lower = 1 / upper); the
 * others one upper bound. verl rollout_rs: "token_k1,seq_mean_k3", rollout_rs_threshold: "0.5_2.0,0.01"
 * is { token_k1: [0.5, 2], seq_mean_k3: 0.01 }.
 */
export type RolloutRejection = Partial<Record<RolloutRejectionCriterion, number | readonly [number, number]>>;

export interface RolloutCorrectionOptions {
  /** Tokens per sequence T. */
  seqLen: number;
  /**
   * Importance weights: TRL vllm_importance_sampling_mode (TRL's default is 'sequence_mask'); verl
   * rollout_is 'token' / 'sequence' is 'token_truncate' / 'sequence_truncate'; 'none': no weights
   * (verl rollout_is null). Default 'token_truncate' (verl).
   */
  mode?: RolloutCorrectionMode;
  /** Lower bound C_min (TRL vllm_importance_sampling_clip_min). Default none. */
  clipMin?: number;
  /**
   * Upper bound C_max (TRL vllm_importance_sampling_clip_max, default 3 there; verl
   * rollout_is_threshold). null: none (TRL's clip_max=None). Default 2 (verl).
   */
  clipMax?: number | null;
  /** verl rollout_is_batch_normalize: divide the weights by their mean. Default false. */
  batchNormalize?: boolean;
  /**
   * TRL off_policy_mask_threshold (DeepSeek-V3.2 off-policy sequence masking, delta): a token's weight
   * is zeroed when its advantage is < 0 and its sequence's mean of rollout - trainer log-probs is
   * > delta. Needs advantages. Default off.
   */
  offPolicyMaskThreshold?: number;
  /** verl rejection sampling (rollout_rs with rollout_rs_threshold). Default none. */
  rejection?: RolloutRejection;
  /** Caller-owned outputs, (B * T) each. */
  out?: { weights?: Float32Array; mask?: Float32Array };
}

export interface RolloutCorrectionMetrics {
  /** verl rollout_is_* (mode not 'none'): on the weights before truncation w0, thresholds clipMax and clipMin (or 1 / clipMax). */
  isMean?: number;
  isMax?: number;
  isMin?: number;
  isFractionHigh?: number;
  isFractionLow?: number;
  isStd?: number;
  isEffSampleSize?: number;
  isSeqMean?: number;
  isSeqStd?: number;
  isSeqMax?: number;
  isSeqMin?: number;
  isSeqMaxDeviation?: number;
  isSeqFractionHigh?: number;
  isSeqFractionLow?: number;
  /** verl rollout_is_batch_norm_factor (batchNormalize). */
  isBatchNormFactor?: number;
  /** TRL sampling/importance_sampling_ratio/{min,mean,max} (mode not 'none'): of the final weights. */
  isRatioMin?: number;
  isRatioMean?: number;
  isRatioMax?: number;
  /** TRL sampling/sampling_logp_difference/{mean,max}: |trainer - rollout| over unmasked tokens. */
  logpDiffMean: number;
  logpDiffMax: number;
  /** verl compute_offpolicy_metrics. */
  trainingPpl: number;
  trainingLogPpl: number;
  kl: number;
  k3Kl: number;
  rolloutPpl: number;
  rolloutLogPpl: number;
  logPplDiff: number;
  logPplAbsDiff: number;
  logPplDiffMax: number;
  logPplDiffMin: number;
  pplRatio: number;
  chi2Token: number;
  chi2Seq: number;
  /** verl rollout_rs_masked_fraction and rollout_rs_seq_masked_fraction (with rejection). */
  rsMaskedFraction?: number;
  rsSeqMaskedFraction?: number;
  /** Masked mean of the tokens the off-policy mask zeroes (with offPolicyMaskThreshold). */
  offPolicyMaskedFraction?: number;
  /** Sum of the mask. */
  tokenCount: number;
}

export interface RolloutCorrectionResult {
  /**
   * Per-token weights (B * T) for policyLoss options.tokenWeights: the importance weights times the
   * off-policy mask; 0 at masked tokens. Absent with mode 'none' and no offPolicyMaskThreshold.
   */
  weights?: Float32Array;
  /** The mask for policyLoss's mask argument (B * T): m where every rejection criterion passes, else 0. */
  mask: Float32Array;
  metrics: RolloutCorrectionMetrics;
}

export interface DeviceRolloutCorrectionOptions extends Omit<RolloutCorrectionOptions, 'out'> {
  out?: { weights?: DeviceArray; mask?: DeviceArray };
}
export interface DeviceRolloutCorrectionResult extends Omit<RolloutCorrectionResult, 'weights' | 'mask'> {
  weights?: DeviceArray<'f32'>;
  mask: DeviceArray<'f32'>;
}

const notNone = (p: Readonly<Record<string, unknown>>) => p.mode !== 'none';
const withMode = (p: Readonly<Record<string, unknown>>) => `mode '${String(p.mode)}'`;
const WEIGHTED = "modes other than 'none'";

const positive = (v: unknown, name: string): number => {
  if (typeof v !== 'number') throw new TypeError(`${name}: expected a finite number > 0, received ${describe(v)}`);
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`${name}: expected a finite number > 0, received ${v}`);
  return v;
};

const clipMax: OptionSpec<number> = {
  read: (v, name) => (v === undefined ? 2 : v === null ? 0 : positive(v, name)),
  code: (v) => v,
};
const clipMin: OptionSpec<number> = {
  read(v, name, prev) {
    if (v === undefined) return 0;
    if (typeof v !== 'number') throw new TypeError(`${name}: expected a finite number >= 0, received ${describe(v)}`);
    if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${name}: expected a finite number >= 0, received ${v}`);
    const hi = prev.clipMax as number;
    if (hi > 0 && v > hi) throw new RangeError(`${name}: expected a value <= options.clipMax (${hi}), received ${v}`);
    return v;
  },
  code: (v) => v,
};
const threshold: OptionSpec<number> = {
  read(v, name) {
    if (v === undefined) return NaN;
    if (typeof v !== 'number') throw new TypeError(`${name}: expected a finite number, received ${describe(v)}`);
    if (!Number.isFinite(v)) throw new RangeError(`${name}: expected a finite number, received ${v}`);
    return v;
  },
  code: (v) => v,
};

type Bounds = Partial<Record<RolloutRejectionCriterion, readonly [number, number]>>;
const rejection: OptionSpec<Bounds> = {
  read(v, name) {
    if (v === undefined) return {};
    if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) {
      throw new TypeError(`${name}: expected an object of criterion: threshold, received ${describe(v)}`);
    }
    const out: Bounds = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined) continue;
      const key = `${name}.${k}`;
      if (!(RC_CRITERIA as readonly string[]).includes(k)) {
        throw new RangeError(`${key}: expected a criterion among ${RC_CRITERIA.map((c) => `'${c}'`).join(', ')}, received '${k}'`);
      }
      const k1 = k.endsWith('k1');
      if (Array.isArray(x)) {
        if (!k1) throw new TypeError(`${key}: expected one upper bound (a number), received ${describe(x)}`);
        if (x.length !== 2) throw new RangeError(`${key}: expected [lower, upper], received an array of length ${x.length}`);
        out[k as RolloutRejectionCriterion] = [positive(x[0], `${key}[0]`), positive(x[1], `${key}[1]`)];
      } else {
        const hi = positive(x, key);
        out[k as RolloutRejectionCriterion] = k1 ? [1 / hi, hi] : [0, hi];
      }
    }
    return out;
  },
  code: (v) => Object.keys(v).length,
};

// The rejection bounds as packed params: per criterion its lower and upper bound (NaN when off).
const boundSpec = (c: RolloutRejectionCriterion, k: 0 | 1): OptionSpec<number> => ({
  read: (_v, _name, prev) => (prev.rejection as Bounds)[c]?.[k] ?? NaN,
  code: (v) => v,
});
const BOUND_OPTIONS: Record<string, OptionSpec<number>> = {};
for (const c of RC_CRITERIA) {
  BOUND_OPTIONS[`${c}_lower`] = boundSpec(c, 0);
  BOUND_OPTIONS[`${c}_upper`] = boundSpec(c, 1);
}

export const RC_OPTIONS = {
  seqLen: int(1, 2 ** 31 - 1),
  mode: enumOf(RC_MODES, 'token_truncate'),
  clipMax: onlyWhen(WEIGHTED, notNone, withMode, clipMax),
  clipMin: onlyWhen(WEIGHTED, notNone, withMode, clipMin),
  batchNormalize: onlyWhen(WEIGHTED, notNone, withMode, flag(false)),
  offPolicyMaskThreshold: threshold,
  rejection,
  ...BOUND_OPTIONS,
};
const PUBLIC_OPTIONS = ['seqLen', 'mode', 'clipMax', 'clipMin', 'batchNormalize', 'offPolicyMaskThreshold', 'rejection'];

export const RC_METRICS = [
  'isMean', 'isMax', 'isMin', 'isFractionHigh', 'isFractionLow', 'isStd', 'isEffSampleSize',
  'isSeqMean', 'isSeqStd', 'isSeqMax', 'isSeqMin', 'isSeqMaxDeviation', 'isSeqFractionHigh', 'isSeqFractionLow',
  'isBatchNormFactor', 'isRatioMin', 'isRatioMean', 'isRatioMax', 'logpDiffMean', 'logpDiffMax',
  'trainingPpl', 'trainingLogPpl', 'kl', 'k3Kl', 'rolloutPpl', 'rolloutLogPpl', 'logPplDiff', 'logPplAbsDiff',
  'logPplDiffMax', 'logPplDiffMin', 'pplRatio', 'chi2Token', 'chi2Seq', 'rsMaskedFraction', 'rsSeqMaskedFraction',
  'offPolicyMaskedFraction', 'tokenCount',
] as const;
const IS_METRICS = RC_METRICS.slice(0, 14);

const RC_OUTS = ['weights', 'mask'] as const;
const RC_KEYS = knownKeys('rolloutCorrection', PUBLIC_OPTIONS, ['out']);

type Args = [trainerLogprobs: unknown, rolloutLogprobs: unknown, advantages: unknown, mask: unknown, options: unknown];

const op = defineOp({
  name: 'rolloutCorrection',
  mix: LOGPROBS_MIX,
  slots: {
    trainerLogprobs: { types: ['f32'], shape: 'B*T' },
    rolloutLogprobs: { types: ['f32'], shape: 'B*T' },
    advantages: { types: ['f32'], shape: 'B | B*T' },
    mask: { types: ['u8', 'f32'], shape: 'B*T' },
    weights: { types: ['f32'], shape: 'B*T', out: true },
    keptMask: { types: ['f32'], shape: 'B*T', out: true },
  },
  options: RC_OPTIONS,
  scalars: RC_METRICS,
  prepare(io, ...[trainer, rollout, advantages, mask, options]: Args) {
    const { opts, out } = openOptions(
      io, options, true, [[rollout, 'rolloutLogprobs'], [advantages, 'advantages'], [mask, 'mask']], [], RC_OUTS, RC_KEYS,
    );
    const n = io.read('trainerLogprobs', trainer, 'trainerLogprobs').length;
    const seqLen = RC_OPTIONS.seqLen.read(opts.seqLen, 'options.seqLen', {});
    if (n % seqLen !== 0) {
      throw new RangeError(`options.seqLen: expected a divisor of the length of trainerLogprobs (${n}), received ${seqLen}`);
    }
    const batch = n / seqLen;
    io.read('rolloutLogprobs', rollout, 'rolloutLogprobs', n);
    const adv = io.optional('advantages', advantages, 'advantages');
    if (adv && adv.length !== batch && adv.length !== n) {
      throw new RangeError(`advantages: expected length ${batch} (one per sequence) or ${n} (one per token), received length ${adv.length}`);
    }
    hostMaskCheck(io.device, mask, 'mask', true);
    io.optional('mask', mask, 'mask', n);
    const values = readOptions(RC_OPTIONS, opts);
    const opsm = !Number.isNaN(values.offPolicyMaskThreshold);
    if (opsm && !adv) {
      throw new TypeError('advantages: expected a Float32Array with options.offPolicyMaskThreshold (the off-policy mask reads the advantage sign), received null');
    }
    if (!opsm && adv) {
      throw new TypeError(`advantages: expected null without options.offPolicyMaskThreshold (they would be ignored), received ${describe(advantages)}`);
    }
    if (opts.out !== undefined) optionsObject(opts.out, 'options.out', true);
    const hasWeights = values.mode !== 'none' || opsm;
    if (!hasWeights && out.weights !== undefined) {
      throw new TypeError("options.out.weights: expected no buffer with mode 'none' and no offPolicyMaskThreshold (no weights are computed), received one");
    }
    const weights = hasWeights ? io.out('weights', out.weights, 'options.out.weights', n) : null;
    const kept = io.out('keptMask', out.mask, 'options.out.mask', n);
    const scalars = io.scalars(RC_METRICS.length);
    const isOn = values.mode !== 'none';
    const rs = Object.keys(values.rejection).length > 0;
    return {
      params: packOptions(RC_OPTIONS, values),
      scalars,
      finish: () => {
        const metrics: Record<string, number> = {};
        RC_METRICS.forEach((k, i) => {
          if (!isOn && ((IS_METRICS as readonly string[]).includes(k) || k.startsWith('isRatio'))) return;
          if (k === 'isBatchNormFactor' && !(isOn && values.batchNormalize)) return;
          if (k.startsWith('rs') && !rs) return;
          if (k === 'offPolicyMaskedFraction' && !opsm) return;
          metrics[k] = scalars[i];
        });
        const result: Record<string, unknown> = { mask: kept, metrics };
        if (weights) result.weights = weights;
        return result as unknown as RolloutCorrectionResult;
      },
    };
  },
});

const typed = op.typed<
  [trainerLogprobs: Float32Array, rolloutLogprobs: Float32Array, advantages: Float32Array | null, mask: TokenMask | null, options: RolloutCorrectionOptions],
  RolloutCorrectionResult,
  [trainerLogprobs: DeviceArray, rolloutLogprobs: DeviceArray, advantages: DeviceArray | null, mask: DeviceArray | null, options: DeviceRolloutCorrectionOptions],
  DeviceRolloutCorrectionResult
>();

/**
 * Off-policy / rollout correction over padded (B, T) log-probs: importance weights (TRL
 * vllm_importance_sampling_mode, verl rollout_is), TRL's off-policy sequence mask, verl's rejection
 * mask, and the mismatch metrics both log. The weights feed policyLoss options.tokenWeights and the
 * mask its mask argument. Nothing here is differentiated (the peers detach it all).
 *
 * With f32 DeviceArrays it runs on the GPU; weights and mask are DeviceArrays owned by the caller.
 *
 * Arguments:
 * - `trainerLogprobs`: the trainer's log-probs of the sampled tokens (TRL old_per_token_logps, verl old_log_probs), (B * T)
 * - `rolloutLogprobs`: the rollout engine's (TRL sampling_per_token_logps, verl rollout_log_probs), (B * T)
 * - `advantages`: (B) or (B * T) with offPolicyMaskThreshold, else null
 * - `mask`: 1/0 bytes or f32 weights (B * T), or null for all ones
 * @example
 * const rc = rolloutCorrection(oldLp, vllmLp, null, mask, { seqLen: 512, mode: 'sequence_mask', clipMax: 3 });
 * const { loss } = policyLoss(lp, oldLp, adv, rc.mask, { seqLen: 512, tokenWeights: rc.weights });
 */
export const rolloutCorrection = typed.sync;
/** rolloutCorrection on a worker thread; leave its buffers untouched until it settles. */
export const rolloutCorrectionAsync = typed.async;
