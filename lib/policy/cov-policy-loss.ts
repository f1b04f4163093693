// clipCovPolicyLoss and klCovPolicyLoss: verl's Clip-Cov and KL-Cov policy losses (compute_policy_loss_
// clip_cov / _kl_cov), each a batch-wide selection of tokens by the covariance of advantage and log-prob,
// then the loss those tokens switch, with its gradient with respect to the log-probs. The formulas:
// native/core/selection.h; the kernel: native/kernels/selection.cc; docs/policy.md#clipcovpolicyloss.
// The selection is a global order statistic over the batch: these ops run on the CPU only.
import { finitePositive } from '../check.js';
import { DeviceArray } from '../cuda.js';
import { defineOp, enumOf, int, knownKeys, num, numIn, type OptionSpec, openOptions, packOptions, readOptions } from '../op.js';
import type { TokenMask } from '../types.js';
import { AGGREGATIONS, LOGPROBS_MIX, type LossAggregation } from './enums.js';
import { hostMaskCheck } from './policy-loss.js';

interface CovCommonOptions {
  /** Tokens per sequence T. */
  seqLen: number;
  /** Default 'token-mean' (verl loss_agg_mode). */
  aggregation?: LossAggregation;
  /** Replaces the aggregation's denominator, as in policyLoss. Default off. */
  normalizer?: number;
  out?: { gradLogprobs?: Float32Array; selected?: Uint8Array };
}
export interface ClipCovPolicyLossOptions extends CovCommonOptions {
  /** The ratio is clipped below at 1 - epsilonLow. Default 0.2 (verl clip_ratio_low / clip_ratio). */
  epsilonLow?: number;
  /** ... and above at 1 + epsilonHigh. Default epsilonLow (verl clip_ratio_high). */
  epsilonHigh?: number;
  /** At most max(floor(clipCovRatio * mask sum), 1) tokens lose their gradient. Default 2e-4 (verl clip_cov_ratio). */
  clipCovRatio?: number;
  /** Candidates have covariance in (clipCovLb, clipCovUb). Default 1 (verl clip_cov_lb). */
  clipCovLb?: number;
  /** Default 5 (verl clip_cov_ub). */
  clipCovUb?: number;
  /** Seed of the counter-based random choice among the candidates (an integer in [0, 2^53)). Default 0. */
  seed?: number;
}
export interface KlCovPolicyLossOptions extends CovCommonOptions {
  /** The top max(floor(klCovRatio * valid tokens), 1) tokens by covariance get the KL term. Default 2e-4 (verl kl_cov_ratio). */
  klCovRatio?: number;
  /** Coefficient of |logprobs - oldLogprobs| on the selected tokens. Default 1 (verl ppo_kl_coef). */
  ppoKlCoef?: number;
}
interface CovResult {
  /** The aggregated loss. */
  loss: number;
  /** dLoss/dlogprobs, (B * T); 0 at masked tokens. */
  gradLogprobs: Float32Array;
  /** (B * T): 1 at the tokens the selection switched. */
  selected: Uint8Array;
}
export interface ClipCovPolicyLossResult extends CovResult {
  metrics: {
    /** Masked mean of [selected] (verl pg_clipfrac). */
    clipFraction: number;
    /** Masked mean of oldLogprobs - logprobs (verl ppo_kl). */
    ppoKl: number;
    /** Tokens selected, and the candidates they were drawn from. */
    selectedCount: number;
    candidateCount: number;
    /** Sum of the mask. */
    tokenCount: number;
  };
}
export interface KlCovPolicyLossResult extends CovResult {
  metrics: {
    /** Masked mean of [selected]. */
    selectedFraction: number;
    /** Masked mean of |logprobs - oldLogprobs| (verl ppo_kl, which is the absolute value here). */
    ppoKl: number;
    /** Tokens selected, and the tokens with mask > 0 they were ranked among. */
    selectedCount: number;
    candidateCount: number;
    /** Sum of the mask. */
    tokenCount: number;
  };
}

const SLOTS = {
  logprobs: { types: ['f32'], shape: 'B*T' },
  oldLogprobs: { types: ['f32'], shape: 'B*T' },
  advantages: { types: ['f32'], shape: 'B | B*T' },
  mask: { types: ['u8', 'f32'], shape: 'B*T' },
  gradLogprobs: { types: ['f32'], shape: 'B*T', out: true },
  selected: { types: ['u8'], shape: 'B*T', out: true },
} as const;
const OUTS = ['gradLogprobs', 'selected'] as const;
const SCALARS = ['loss', 'fraction', 'ppoKl', 'selectedCount', 'candidateCount', 'tokenCount'] as const;
const COMMON = {
  seqLen: int(1, 2 ** 31 - 1),
  aggregation: enumOf<LossAggregation>(AGGREGATIONS, 'token-mean'),
  normalizer: num(finitePositive, 0),
};
const ratioIn = (dflt: number) => num((v, k) => {
  const x = numIn(0, 1, 0).read(v, k, {}) as number;
  if (!(x > 0)) throw new RangeError(`${k}: expected a finite number in (0, 1], received ${x}`);
  return x;
}, dflt);

function covOp<O extends Record<string, OptionSpec<unknown>>>(name: string, options: O, fraction: string) {
  const keys = knownKeys(name, Object.keys(options), ['out']);
  return defineOp({
    name,
    mix: LOGPROBS_MIX,
    slots: SLOTS,
    options,
    scalars: SCALARS,
    prepare(io, ...[logprobs, oldLogprobs, advantages, mask, options_]: [unknown, unknown, unknown, unknown, unknown]) {
      if (logprobs instanceof DeviceArray) {
        throw new TypeError(`logprobs: ${name} runs on the CPU only (its selection is a batch-wide order statistic), expected a Float32Array, received ${logprobs}`);
      }
      const { opts, out } = openOptions(io, options_, true, [[oldLogprobs, 'oldLogprobs'], [advantages, 'advantages'], [mask, 'mask']], [], OUTS, keys);
      const n = io.read('logprobs', logprobs, 'logprobs').length;
      const seqLen = COMMON.seqLen.read(opts.seqLen, 'options.seqLen', {});
      if (n % seqLen !== 0) throw new RangeError(`options.seqLen: expected a divisor of the length of logprobs (${n}), received ${seqLen}`);
      const batch = n / seqLen;
      io.read('oldLogprobs', oldLogprobs, 'oldLogprobs', n);
      const a = io.read('advantages', advantages, 'advantages');
      if (a.length !== batch && a.length !== n) {
        throw new RangeError(`advantages: expected length ${batch} (one per sequence) or ${n} (one per token), received length ${a.length}`);
      }
      hostMaskCheck(false, mask, 'mask', true);
      io.optional('mask', mask, 'mask', n);
      const values = readOptions(options, opts);
      const grad = io.out('gradLogprobs', out.gradLogprobs, 'options.out.gradLogprobs', n);
      const selected = io.out('selected', out.selected, 'options.out.selected', n);
      const sc = io.scalars(SCALARS.length);
      return {
        params: packOptions(options, values),
        scalars: sc,
        finish: () => ({
          loss: sc[0], gradLogprobs: grad, selected,
          metrics: { [fraction]: sc[1], ppoKl: sc[2], selectedCount: sc[3], candidateCount: sc[4], tokenCount: sc[5] },
        }),
      };
    },
  });
}

const clipCov = covOp('clipCovPolicyLoss', {
  ...COMMON,
  epsilonLow: numIn(0, Infinity, 0.2),
  epsilonHigh: numIn(0, Infinity, (prev) => prev.epsilonLow as number),
  clipCovRatio: ratioIn(2e-4),
  clipCovLb: numIn(-Infinity, Infinity, 1),
  clipCovUb: numIn(-Infinity, Infinity, 5),
  seed: int(0, Number.MAX_SAFE_INTEGER, 0),
}, 'clipFraction');

const klCov = covOp('klCovPolicyLoss', {
  ...COMMON,
  klCovRatio: ratioIn(2e-4),
  ppoKlCoef: numIn(-Infinity, Infinity, 1),
}, 'selectedFraction');

const clipTyped = clipCov.typed<
  [logprobs: Float32Array, oldLogprobs: Float32Array, advantages: Float32Array, mask: TokenMask | null, options: ClipCovPolicyLossOptions],
  ClipCovPolicyLossResult,
  [logprobs: Float32Array, oldLogprobs: Float32Array, advantages: Float32Array, mask: TokenMask | null, options: ClipCovPolicyLossOptions],
  ClipCovPolicyLossResult
>();
const klTyped = klCov.typed<
  [logprobs: Float32Array, oldLogprobs: Float32Array, advantages: Float32Array, mask: TokenMask | null, options: KlCovPolicyLossOptions],
  KlCovPolicyLossResult,
  [logprobs: Float32Array, oldLogprobs: Float32Array, advantages: Float32Array, mask: TokenMask | null, options: KlCovPolicyLossOptions],
  KlCovPolicyLossResult
>();

/**
 * Clip-Cov (verl clip_cov) over padded (B, T) log-probs: the PPO clipped loss (no dual clip), where a
 * random set of tokens whose advantage/log-prob covariance lies in (clipCovLb, clipCovUb) is dropped
 * from the gradient. The random choice is counter-based (docs/policy.md#clipcovpolicyloss): the
 * same seed gives the same tokens. CPU only.
 *
 * Arguments:
 * - `advantages`: one per sequence (B) or one per token (B * T)
 * @example
 * const { loss, gradLogprobs, selected } = clipCovPolicyLoss(lp, oldLp, adv, mask, { seqLen: 512, seed: step });
 */
export const clipCovPolicyLoss = clipTyped.sync;
/** clipCovPolicyLoss on a worker thread; leave its buffers untouched until it settles. */
export const clipCovPolicyLossAsync = clipTyped.async;

/**
 * KL-Cov (verl kl_cov) over padded (B, T) log-probs: -A r, plus ppoKlCoef |log r| on the tokens
 * with the largest advantage/log-prob covariance (the top klCovRatio of the tokens). CPU only.
 *
 * Arguments:
 * - `advantages`: one per sequence (B) or one per token (B * T)
 * @example
 * const { loss, gradLogprobs } = klCovPolicyLoss(lp, oldLp, adv, mask, { seqLen: 512, klCovRatio: 2e-3 });
 */
export const klCovPolicyLoss = klTyped.sync;
/** klCovPolicyLoss on a worker thread; leave its buffers untouched until it settles. */
export const klCovPolicyLossAsync = klTyped.async;
