// klRewards: the KL penalty in the token reward (verl apply_kl_penalty, and compute_rewards with
// estimator 'k1' and no mask), and adaptiveKlCoef, verl's AdaptiveKLController.update; docs/advantages.md.
//
// scores, logprobs, refLogprobs, mask: (B, T) row-major.  kl_t = estimate(logprobs_t - refLogprobs_t) w_t,
// rewards_t = scores_t - beta kl_t, klMean = mean_b (sum_t kl_t w_t / (sum_t w_t + 1e-8)).
import { finiteIn, options as optionsObject } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { defineOp, enumOf, knownKeys, packOptions } from '../op.js';
import { ESTIMATORS, type KlEstimator } from '../policy/enums.js';
import { hostMaskCheck } from '../policy/policy-loss.js';
import type { TokenMask } from '../types.js';
import { apart, optionReader, positiveIntOption, rejectDeviceOut, seqLenArg } from './checks.js';
import { VALUES_MIX } from './enums.js';

export interface KlRewardsOptions {
  /** T, the padded sequence length. */
  seqLen: number;
  /** The KL coefficient (verl kl_ctrl.value: a fixed kl_coef, or the adaptive controller's current value). Required. */
  beta: number;
  /** Default 'k1' (verl kl_penalty 'kl'); 'k3+' gives k3's value (the straight-through gradient plays no part in a reward). */
  estimator?: KlEstimator;
  out?: Float32Array;
}
export interface KlRewardsResult {
  /** scores - beta * kl, (B, T). */
  rewards: Float32Array;
  /** The mean over sequences of each sequence's masked mean KL (verl actor/reward_kl_penalty). */
  klMean: number;
}
export interface DeviceKlRewardsOptions extends Omit<KlRewardsOptions, 'out'> {
  out?: DeviceArray;
}
export interface DeviceKlRewardsResult {
  rewards: DeviceArray<'f32'>;
  /** Downloaded from the device (the call waits for it). */
  klMean: number;
}

const beta = {
  read: (v: unknown, name: string) => finiteIn(v, name, -Infinity, Infinity),
  code: (v: number) => v,
};
const KL_OPTIONS = { seqLen: positiveIntOption(), estimator: enumOf(ESTIMATORS, 'k1'), beta };
const KL_KEYS = knownKeys('klRewards', Object.keys(KL_OPTIONS), ['out']);

type Args = [scores: unknown, logprobs: unknown, refLogprobs: unknown, mask: unknown, options: unknown];

const op = defineOp({
  name: 'klRewards',
  mix: VALUES_MIX,
  slots: {
    scores: { types: ['f32'], shape: 'B*T' },
    logprobs: { types: ['f32'], shape: 'B*T' },
    refLogprobs: { types: ['f32'], shape: 'B*T' },
    mask: { types: ['u8', 'f32'], shape: 'B*T' },
    rewards: { types: ['f32'], shape: 'B*T', out: true, inPlace: ['scores'] },
  },
  options: KL_OPTIONS,
  scalars: ['klMean'],
  prepare(io, ...[scores, logprobs, refLogprobs, mask, options]: Args) {
    io.rejectDevice(logprobs, 'logprobs');
    io.rejectDevice(refLogprobs, 'refLogprobs');
    io.rejectDevice(mask, 'mask');
    rejectDeviceOut(io, options);
    const opts = optionsObject<KlRewardsOptions>(options, 'options', true, KL_KEYS) as Record<string, unknown>;
    const s = io.read('scores', scores, 'scores');
    const n = s.length;
    const o = optionReader(KL_OPTIONS, opts);
    o.set('seqLen', seqLenArg(opts.seqLen, n, 'scores'));
    const lp = io.read('logprobs', logprobs, 'logprobs', n);
    const ref = io.read('refLogprobs', refLogprobs, 'refLogprobs', n);
    hostMaskCheck(io.device, mask, 'mask', true);
    const m = io.optional('mask', mask, 'mask', n);
    o.read('estimator');
    o.read('beta');
    const out = io.out('rewards', opts.out, 'options.out', n);
    apart(out, 'options.out', s, 'scores');
    for (const [a, name] of [[lp, 'logprobs'], [ref, 'refLogprobs']] as const) {
      if (out === a) throw new RangeError(`options.out: expected a buffer apart from ${name}, received ${name} itself`);
      apart(out, 'options.out', a, name);
    }
    if (m) apart(out, 'options.out', m, 'mask');
    const scalars = io.scalars(1);
    return {
      params: packOptions(KL_OPTIONS, o.values),
      scalars,
      finish: () => ({ rewards: out, klMean: scalars[0] }) as KlRewardsResult,
    };
  },
});

const typed = op.typed<
  [scores: Float32Array, logprobs: Float32Array, refLogprobs: Float32Array, mask: TokenMask | null, options: KlRewardsOptions],
  KlRewardsResult,
  [scores: DeviceArray, logprobs: DeviceArray, refLogprobs: DeviceArray, mask: DeviceArray | null, options: DeviceKlRewardsOptions],
  DeviceKlRewardsResult
>();

/**
 * The KL penalty in the token reward (verl `apply_kl_penalty`): `rewards = scores - beta * kl * mask`
 * with kl one of k1, abs, k2, k3 of `logprobs - refLogprobs`, and `klMean`, the batch mean of each
 * sequence's masked mean KL (what verl feeds its KL controller). verl's `compute_rewards` is
 * estimator 'k1' with `mask` null. No gradient (verl shapes the reward without one). `out` may be `scores`.
 *
 * @example
 * const { rewards, klMean } = klRewards(scores, oldLogprobs, refLogprobs, mask, { seqLen: 512, beta: coef });
 * coef = adaptiveKlCoef(coef, klMean, { targetKl: 6, horizon: 10000, nSteps: batchSize });
 */
export const klRewards = typed.sync;
/** klRewards on a worker thread; leave its buffers untouched until it settles. */
export const klRewardsAsync = typed.async;

export interface AdaptiveKlOptions {
  /** verl kl_ctrl.target_kl. A finite number > 0. */
  targetKl: number;
  /** verl kl_ctrl.horizon. A finite number > 0. */
  horizon: number;
  /** The steps this update covers (verl passes the batch size). A finite number >= 0. */
  nSteps: number;
}

const ADAPTIVE_KEYS = knownKeys('adaptiveKlCoef', ['targetKl', 'horizon', 'nSteps']);

/**
 * verl's `AdaptiveKLController.update` (Ziegler et al. 2019): the next KL coefficient
 * `coef * (1 + clip(currentKl / targetKl - 1, -0.2, 0.2) * nSteps / horizon)`, in double in verl's
 * order (the same bits as its Python floats). The fixed controller is the identity: keep `coef`.
 */
export function adaptiveKlCoef(coef: number, currentKl: number, options: AdaptiveKlOptions): number {
  const c = finiteIn(coef, 'coef', -Infinity, Infinity);
  const kl = finiteIn(currentKl, 'currentKl', -Infinity, Infinity);
  const opts = optionsObject<AdaptiveKlOptions>(options, 'options', true, ADAPTIVE_KEYS) as unknown as Record<string, unknown>;
  const target = positive(opts.targetKl, 'options.targetKl');
  const horizon = positive(opts.horizon, 'options.horizon');
  const nSteps = finiteIn(opts.nSteps, 'options.nSteps', 0, Infinity);
  const err = Math.min(0.2, Math.max(-0.2, kl / target - 1));
  const mult = 1 + (err * nSteps) / horizon;
  return c * mult;
}

function positive(v: unknown, name: string): number {
  const x = finiteIn(v, name, -Infinity, Infinity);
  if (!(x > 0)) throw new RangeError(`${name}: expected a finite number > 0, received ${x}`);
  return x;
}
