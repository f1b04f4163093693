// ktoLoss: KTO (unpaired), with the gradient of the mean loss with respect to the policy log-probs
// (docs/preference.md).
//
// policyLogps, refLogps, desirable: (N).  r = logp - ref,  x = beta (r - kl);
//   L = desirableWeight (1 - s(x)) (desirable) or undesirableWeight (1 - s(-x)) (undesirable)
import { finiteIn, finitePositive } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { defineOp, knownKeys, num, openOptions, packOptions, readOptions } from '../op.js';
import { lossOutputs, PREFERENCE_MIX } from './shared.js';
import { applyPreset, KTO_PRESETS } from '../presets.js';

export interface KtoLossOptions {
  /** 1 (nonzero) = desirable, 0 = undesirable, one per example (N). */
  desirable: Uint8Array;
  /** The KL estimate z0 (a constant: no gradient flows through it). TRL passes max(0, mean KL). */
  kl: number;
  /** Reference log-prob sums (N). Absent = 0 (reference-free). */
  refLogps?: Float32Array;
  /** 'trl': KTOConfig's defaults, which are ours (accepted for ported configs). */
  preset?: 'trl';
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
  losses: DeviceArray<'f32'>;
  rewards: DeviceArray<'f32'>;
  grad: DeviceArray<'f32'>;
  metrics: { desirableRewardMean: number; undesirableRewardMean: number };
}

const anyFinite = (v: unknown, k: string) => finiteIn(v, k, -Infinity, Infinity);
const weight = (v: unknown, k: string) => finiteIn(v, k, 0, Infinity);

/** The scalar options of ktoLoss, in checking (and packing) order; kl is required. */
const KTO_OPTIONS = {
  kl: { read: (v: unknown, name: string) => anyFinite(v, name), code: (v: number) => v },
  beta: num(finitePositive, 0.1),
  desirableWeight: num(weight, 1),
  undesirableWeight: num(weight, 1),
};

const KTO_OUTS = ['losses', 'rewards', 'grad'] as const;

const KTO_OPTION_ARRAYS = ['desirable', 'refLogps'] as const;
const KTO_KEYS = knownKeys('ktoLoss', Object.keys(KTO_OPTIONS), KTO_OPTION_ARRAYS, ['preset', 'out']);

const op = defineOp({
  name: 'ktoLoss',
  mix: PREFERENCE_MIX,
  slots: {
    policyLogps: { types: ['f32'], shape: 'N' },
    refLogps: { types: ['f32'], shape: 'N' },
    desirable: { types: ['u8'], shape: 'N' },
    losses: { types: ['f32'], shape: 'N', out: true },
    rewards: { types: ['f32'], shape: 'N', out: true },
    grad: { types: ['f32'], shape: 'N', out: true },
  },
  options: KTO_OPTIONS,
  scalars: ['loss', 'desirableRewardMean', 'undesirableRewardMean'],
  prepare(io, ...[policyLogps, options]: [policyLogps: unknown, options: unknown]) {
    const { opts: given } = openOptions(io, options, true, [], KTO_OPTION_ARRAYS, KTO_OUTS, KTO_KEYS);
    const opts = applyPreset('ktoLoss', given, KTO_PRESETS);
    const n = io.read('policyLogps', policyLogps, 'policyLogps').length;
    if (n < 1) throw new RangeError('policyLogps: expected at least one example, received length 0');
    io.read('desirable', opts.desirable, 'options.desirable', n);
    if (opts.refLogps !== undefined) io.read('refLogps', opts.refLogps, 'options.refLogps', n);
    const values = readOptions(KTO_OPTIONS, opts);
    const metrics = (s: Float64Array) => ({ desirableRewardMean: s[1], undesirableRewardMean: s[2] });
    return { params: packOptions(KTO_OPTIONS, values), ...lossOutputs<KtoLossResult>(io, opts.out, KTO_OUTS, () => n, 3, metrics) };
  },
});

const typed = op.typed<
  [policyLogps: Float32Array, options: KtoLossOptions],
  KtoLossResult,
  [policyLogps: DeviceArray, options: DeviceKtoLossOptions],
  DeviceKtoLossResult
>();

/**
 * KTO (unpaired): with r = logp - ref and x = beta (r - kl), a desirable example costs
 * desirableWeight (1 - s(x)) and an undesirable one undesirableWeight (1 - s(-x)); `loss` is the
 * mean over all examples, `grad` its gradient with respect to `policyLogps`.
 *
 * With DeviceArrays (policyLogps and refLogps f32, desirable u8) it runs on the GPU: losses, rewards and grad
 * are f32 DeviceArrays (owned by the caller), loss and metrics are downloaded.
 *
 * @example
 * const r = ktoLoss(policyLogps, { desirable, refLogps, kl: Math.max(0, klEstimate) });
 */
export const ktoLoss = typed.sync;
/** ktoLoss on a worker thread; leave its buffers untouched until it settles. */
export const ktoLossAsync = typed.async;
