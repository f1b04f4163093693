// tokenAdvantages: verl's token-level advantage estimators (core_algos.py) on padded (B, T) tensors:
// reinforce_plus_plus (discounted returns with verl's reset after a masked token, then
// masked_whiten), remax (reward-to-go minus a per-sequence greedy baseline), optimal_token_baseline
// and tir_optimal_token_baseline (a per-token baseline weighted by the cumulative path variance);
// docs/advantages.md. No gradient: verl computes them under torch.no_grad.
import { describe, oneOf, options as optionsObject } from '../check.js';
import { DeviceArray } from '../cuda.js';
import { defineOp, flag, int, knownKeys, numIn, outKeys, packOptions, type OptionSpec } from '../op.js';
import type { TokenMask } from '../types.js';
import { hostMaskCheck } from '../policy/policy-loss.js';
import { apart, MAX_INT, optionReader, outsOf, positiveInt, positiveIntOption, seqLenArg } from './checks.js';
import { VALUES_MIX } from './enums.js';

export type TokenAdvantageEstimator =
  | 'reinforce_plus_plus'
  | 'remax'
  | 'optimal_token_baseline'
  | 'tir_optimal_token_baseline';
/** In native code order (rk::TokenEstimator, native/core/token_advantages.h). */
export const TOKEN_ESTIMATORS: readonly TokenAdvantageEstimator[] = [
  'reinforce_plus_plus', 'remax', 'optimal_token_baseline', 'tir_optimal_token_baseline',
];
const OTB: readonly TokenAdvantageEstimator[] = ['optimal_token_baseline', 'tir_optimal_token_baseline'];

export interface TokenAdvantagesOptions {
  /** T, the padded sequence length: rewards and mask are (B, T) row-major. */
  seqLen: number;
  estimator: TokenAdvantageEstimator;
  /** reinforce_plus_plus: the discount (verl algorithm.gamma). Default 1. */
  gamma?: number;
  /** remax: the reward of each sequence's greedy decode, (B). Required. */
  baselines?: Float32Array;
  /** optimal_token_baseline(s): contiguous groups of this many sequences (or groupIds). */
  groupSize?: number;
  /** optimal_token_baseline(s): the group (prompt) of each sequence, (B) ids in [0, B). */
  groupIds?: Int32Array;
  /** optimal_token_baseline(s): the rollout log-probs of the sampled tokens (verl old_log_probs), (B, T). Required. */
  logprobs?: Float32Array;
  /** optimal_token_baseline(s): sum over the vocabulary of pi^2 at each token, (B, T). Required. */
  sumPiSquared?: Float32Array;
  /** optimal_token_baseline(s): rollout importance weights rho (verl rollout_is_weights), (B, T); W is scaled by rho^2. */
  isWeights?: Float32Array;
  /** optimal_token_baseline(s): zero the baseline of a group's single longest sequence beyond the second longest. Default false (optimal_token_baseline), true (tir), as verl. */
  handleZeroTail?: boolean;
  /** optimal_token_baseline(s): added to the baseline's denominator. Default 1e-8 (verl). */
  eps?: number;
  out?: { advantages?: Float32Array; returns?: Float32Array };
}
export interface TokenAdvantagesResult {
  /** (B, T); 0 at masked tokens (remax: the returns there, as verl). */
  advantages: Float32Array;
  /** (B, T): verl's returns (reward-to-go; reinforce_plus_plus: the discounted returns with the reset). */
  returns: Float32Array;
}
export interface DeviceTokenAdvantagesOptions
  extends Omit<TokenAdvantagesOptions, 'baselines' | 'groupIds' | 'logprobs' | 'sumPiSquared' | 'isWeights' | 'out'> {
  baselines?: DeviceArray;
  /** i32 ids, copied to the host once to find the number of groups and check them. */
  groupIds?: DeviceArray;
  logprobs?: DeviceArray;
  sumPiSquared?: DeviceArray;
  isWeights?: DeviceArray;
  out?: { advantages?: DeviceArray; returns?: DeviceArray };
}
export interface DeviceTokenAdvantagesResult {
  advantages: DeviceArray<'f32'>;
  returns: DeviceArray<'f32'>;
}

/** An option of some estimators only: given with another it is a TypeError (it would be ignored). */
function only<T>(which: readonly TokenAdvantageEstimator[], spec: OptionSpec<T>, off: T): OptionSpec<T> {
  return {
    read(v, name, prev) {
      const est = prev.estimator as TokenAdvantageEstimator;
      if (which.includes(est)) return spec.read(v, name, prev);
      if (v !== undefined) throw inapplicable(name, which, est, v);
      return off;
    },
    code: spec.code,
  };
}
const inapplicable = (name: string, which: readonly TokenAdvantageEstimator[], est: string, v: unknown) =>
  new TypeError(
    `${name}: applies to estimator ${which.map((w) => `'${w}'`).join(' and ')} only, expected undefined with estimator '${est}', received ${describe(v)}`,
  );

const estimator: OptionSpec<TokenAdvantageEstimator> = {
  read: (v, name) => oneOf(v, name, TOKEN_ESTIMATORS),
  code: (v) => TOKEN_ESTIMATORS.indexOf(v),
  values: TOKEN_ESTIMATORS,
};

const TOKEN_OPTIONS = {
  seqLen: positiveIntOption(),
  estimator,
  gamma: only(['reinforce_plus_plus'], numIn(0, 1, 1), 1),
  /** 0: the groups are given by groupIds. Set by prepare. */
  groupSize: int(0, MAX_INT, 0),
  numGroups: int(0, MAX_INT, 0),
  handleZeroTail: only(OTB, flag(false), false),
  eps: only(OTB, numIn(0, Infinity, 1e-8), 1e-8),
};
const ARRAYS = ['baselines', 'groupIds', 'logprobs', 'sumPiSquared', 'isWeights'] as const;
const TOKEN_KEYS = knownKeys(
  'tokenAdvantages', Object.keys(TOKEN_OPTIONS).filter((k) => k !== 'numGroups'), ARRAYS, ['out'],
);
const TOKEN_OUTS = outKeys('tokenAdvantages', ['advantages', 'returns']);

type Args = [rewards: unknown, mask: unknown, options: unknown];

const op = defineOp({
  name: 'tokenAdvantages',
  mix: VALUES_MIX,
  slots: {
    rewards: { types: ['f32'], shape: 'B*T' },
    mask: { types: ['u8', 'f32'], shape: 'B*T' },
    baselines: { types: ['f32'], shape: 'B' },
    groupIds: { types: ['i32'], shape: 'B' },
    logprobs: { types: ['f32'], shape: 'B*T' },
    sumPiSquared: { types: ['f32'], shape: 'B*T' },
    isWeights: { types: ['f32'], shape: 'B*T' },
    advantages: { types: ['f32'], shape: 'B*T', out: true },
    returns: { types: ['f32'], shape: 'B*T', out: true },
  },
  options: TOKEN_OPTIONS,
  prepare(io, ...[rewards, mask, options]: Args) {
    const outs = outsOf(options);
    const raw = (options !== null && typeof options === 'object' ? options : {}) as Record<string, unknown>;
    io.rejectDevice(mask, 'mask');
    io.rejectDevices(raw, ARRAYS, 'options');
    io.rejectDevices(outs, ['advantages', 'returns'], 'options.out');
    const opts = optionsObject<TokenAdvantagesOptions>(options, 'options', true, TOKEN_KEYS) as Record<string, unknown>;
    const r = io.read('rewards', rewards, 'rewards');
    const n = r.length;
    const o = optionReader(TOKEN_OPTIONS, opts);
    const T = o.set('seqLen', seqLenArg(opts.seqLen, n, 'rewards'));
    const B = n / T;
    hostMaskCheck(io.device, mask, 'mask', true);
    io.optional('mask', mask, 'mask', n);
    const est = o.read('estimator');
    o.read('gamma');
    const otb = OTB.includes(est);
    const arrays: Record<(typeof ARRAYS)[number], readonly TokenAdvantageEstimator[]> = {
      baselines: ['remax'], groupIds: OTB, logprobs: OTB, sumPiSquared: OTB, isWeights: OTB,
    };
    for (const k of ARRAYS) if (opts[k] !== undefined && !arrays[k].includes(est)) throw inapplicable(`options.${k}`, arrays[k], est, opts[k]);
    if (opts.groupSize !== undefined && !otb) throw inapplicable('options.groupSize', OTB, est, opts.groupSize);
    if (est === 'remax') io.read('baselines', need(opts.baselines, 'options.baselines', est), 'options.baselines', B);
    let groupSize = 0, numGroups = 0;
    if (otb) {
      io.read('logprobs', need(opts.logprobs, 'options.logprobs', est), 'options.logprobs', n);
      io.read('sumPiSquared', need(opts.sumPiSquared, 'options.sumPiSquared', est), 'options.sumPiSquared', n);
      io.optional('isWeights', opts.isWeights, 'options.isWeights', n);
      if (opts.groupIds !== undefined) {
        if (opts.groupSize !== undefined) throw new TypeError('options.groupSize: expected either groupSize or groupIds, received both');
        const a = io.read('groupIds', opts.groupIds, 'options.groupIds', B);
        const ids = a instanceof DeviceArray ? (a.download() as Int32Array) : (a as Int32Array);
        let max = -1;
        for (let i = 0; i < B; i++) {
          const g = ids[i];
          if (g < 0 || g >= B) throw new RangeError(`options.groupIds[${i}]: expected a group id in [0, ${B}) (B sequences), received ${g}`);
          if (g > max) max = g;
        }
        numGroups = max + 1;
      } else {
        if (opts.groupSize === undefined) {
          throw new TypeError(`options.groupSize: expected a positive integer (or options.groupIds) for estimator '${est}', received undefined`);
        }
        groupSize = positiveInt(opts.groupSize, 'options.groupSize');
        if (B % groupSize !== 0) {
          throw new RangeError(`options.groupSize: expected a divisor of the number of sequences (${B}), received ${groupSize}`);
        }
        numGroups = B / groupSize;
      }
    }
    o.set('groupSize', groupSize);
    o.set('numGroups', numGroups);
    if (est === 'tir_optimal_token_baseline' && opts.handleZeroTail === undefined) o.set('handleZeroTail', true);
    else o.read('handleZeroTail');
    o.read('eps');
    const out = (opts.out === undefined ? {} : optionsObject(opts.out, 'options.out', true, TOKEN_OUTS)) as Record<string, unknown>;
    const advantages = io.out('advantages', out.advantages, 'options.out.advantages', n);
    const returns = io.out('returns', out.returns, 'options.out.returns', n);
    if (advantages === returns || (advantages instanceof DeviceArray && n > 0 && advantages.ptr === (returns as DeviceArray).ptr)) {
      throw new RangeError('options.out.returns: expected a buffer apart from out.advantages, received the same one');
    }
    apart(returns, 'options.out.returns', advantages, 'options.out.advantages');
    return { params: packOptions(TOKEN_OPTIONS, o.values), finish: () => ({ advantages, returns }) as TokenAdvantagesResult };
  },
});

function need(v: unknown, name: string, est: string): unknown {
  if (v === undefined) throw new TypeError(`${name}: expected a Float32Array for estimator '${est}', received undefined`);
  return v;
}

const typed = op.typed<
  [rewards: Float32Array, mask: TokenMask | null, options: TokenAdvantagesOptions],
  TokenAdvantagesResult,
  [rewards: DeviceArray, mask: DeviceArray | null, options: DeviceTokenAdvantagesOptions],
  DeviceTokenAdvantagesResult
>();

/**
 * verl's token-level advantage estimators on padded [B, T] token rewards: `reinforce_plus_plus`
 * (discounted returns, then masked whitening), `remax` (reward-to-go minus a greedy baseline per
 * sequence), `optimal_token_baseline` and `tir_optimal_token_baseline` (a per-token baseline
 * weighted by the cumulative path variance, per prompt group). No gradient (verl computes them
 * without one). `mask` is 1/0 bytes, f32 weights or null (every token counts).
 *
 * On DeviceArrays (f32; mask u8 or f32; groupIds i32) it runs on the GPU.
 *
 * @example
 * const { advantages } = tokenAdvantages(tokenRewards, mask, { seqLen: 512, estimator: 'reinforce_plus_plus', gamma: 1 });
 */
export const tokenAdvantages = typed.sync;
/** tokenAdvantages on a worker thread; leave its buffers untouched until it settles. */
export const tokenAdvantagesAsync = typed.async;
