// preferenceStrengthLoss: "Secrets of RLHF II" preference strength over an ensemble of M reward
// models, with the adaptive-margin Bradley-Terry loss of the trained reward model, label flipping
// and label smoothing. The formula: native/core/preference_strength.h; docs/papers/secrets-rlhf-2.md.
import { finiteIn } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { defineOp, flag, knownKeys, num, openOptions, packOptions, readOptions } from '../op.js';
import { lossOutputs, PREFERENCE_MIX } from '../preference/shared.js';

export interface PreferenceStrengthLossOptions {
  /** r_m(y_c) of each of the M ensemble reward models, model-major (M * P): model m's scores at [m * P, (m + 1) * P). */
  ensembleChosen: Float32Array;
  /** r_m(y_r), the same layout. */
  ensembleRejected: Float32Array;
  /** Subtract the pair's strength mu (its mean ensemble margin) from the margin: -log s(r_c - r_r - mu). Default true. */
  adaptiveMargin?: boolean;
  /** Swap chosen and rejected where mu < 0 (the ensemble prefers the rejected response). Default true. */
  flipNegative?: boolean;
  /** e: -(1 - e) log s(z) - e log s(-z); in [0, 0.5). Default 0. */
  labelSmoothing?: number;
  /** The std divisor is M - stdCorrection: 1 (Bessel, torch.std's default) or 0 (population). Default 1; M = 1 gives std 0. */
  stdCorrection?: number;
  out?: {
    losses?: Float32Array;
    gradChosen?: Float32Array;
    gradRejected?: Float32Array;
    strengthMean?: Float32Array;
    strengthStd?: Float32Array;
  };
}
export interface PreferenceStrengthLossResult {
  /** Mean of `losses` over the P pairs (in double). */
  loss: number;
  /** Per-pair loss (P). */
  losses: Float32Array;
  /** d loss / d chosenRewards and d loss / d rejectedRewards (P). */
  gradChosen: Float32Array;
  gradRejected: Float32Array;
  /** mu: the mean over the M models of r_m(y_c) - r_m(y_r) (P). */
  strengthMean: Float32Array;
  /** sigma: their standard deviation (P). */
  strengthStd: Float32Array;
  metrics: {
    /** The share of pairs whose label was flipped (mu < 0 with flipNegative). */
    flipFraction: number;
  };
}
export interface DevicePreferenceStrengthLossOptions extends Omit<PreferenceStrengthLossOptions, 'ensembleChosen' | 'ensembleRejected' | 'out'> {
  ensembleChosen: DeviceArray;
  ensembleRejected: DeviceArray;
  out?: {
    losses?: DeviceArray;
    gradChosen?: DeviceArray;
    gradRejected?: DeviceArray;
    strengthMean?: DeviceArray;
    strengthStd?: DeviceArray;
  };
}
export interface DevicePreferenceStrengthLossResult {
  loss: number;
  losses: DeviceArray<'f32'>;
  gradChosen: DeviceArray<'f32'>;
  gradRejected: DeviceArray<'f32'>;
  strengthMean: DeviceArray<'f32'>;
  strengthStd: DeviceArray<'f32'>;
  metrics: { flipFraction: number };
}

/** The scalar options, in packing order. */
const OPTIONS = {
  labelSmoothing: num((v, k) => {
    const e = finiteIn(v, k, 0, 0.5);
    if (e === 0.5) throw new RangeError(`${k}: expected a finite number in [0, 0.5), received 0.5`);
    return e;
  }, 0),
  stdCorrection: num((v, k) => {
    const c = finiteIn(v, k, 0, 1);
    if (c !== 0 && c !== 1) throw new RangeError(`${k}: expected 0 or 1, received ${c}`);
    return c;
  }, 1),
  adaptiveMargin: flag(true),
  flipNegative: flag(true),
};
const OUTS = ['losses', 'gradChosen', 'gradRejected', 'strengthMean', 'strengthStd'] as const;
const ARRAYS = ['ensembleChosen', 'ensembleRejected'] as const;
const KEYS = knownKeys('preferenceStrengthLoss', Object.keys(OPTIONS), ARRAYS, ['out']);

const op = defineOp({
  name: 'preferenceStrengthLoss',
  mix: PREFERENCE_MIX,
  slots: {
    chosenRewards: { types: ['f32'], shape: 'P' },
    rejectedRewards: { types: ['f32'], shape: 'P' },
    ensembleChosen: { types: ['f32'], shape: 'M*P' },
    ensembleRejected: { types: ['f32'], shape: 'M*P' },
    losses: { types: ['f32'], shape: 'P', out: true },
    gradChosen: { types: ['f32'], shape: 'P', out: true },
    gradRejected: { types: ['f32'], shape: 'P', out: true },
    strengthMean: { types: ['f32'], shape: 'P', out: true },
    strengthStd: { types: ['f32'], shape: 'P', out: true },
  },
  options: OPTIONS,
  scalars: ['loss', 'flipFraction'],
  prepare(io, ...[chosenRewards, rejectedRewards, options]: [chosenRewards: unknown, rejectedRewards: unknown, options: unknown]) {
    const { opts } = openOptions(io, options, true, [[rejectedRewards, 'rejectedRewards']], ARRAYS, OUTS, KEYS);
    const P = io.read('chosenRewards', chosenRewards, 'chosenRewards').length;
    if (P < 1) throw new RangeError('chosenRewards: expected at least one pair, received length 0');
    io.read('rejectedRewards', rejectedRewards, 'rejectedRewards', P);
    const n = io.read('ensembleChosen', opts.ensembleChosen, 'options.ensembleChosen').length;
    if (n < P || n % P !== 0) {
      throw new RangeError(`options.ensembleChosen: expected a positive multiple of the pair count (${P}), received length ${n}`);
    }
    io.read('ensembleRejected', opts.ensembleRejected, 'options.ensembleRejected', n);
    const values = readOptions(OPTIONS, opts);
    const metrics = (s: Float64Array) => ({ flipFraction: s[1] });
    return { params: packOptions(OPTIONS, values), ...lossOutputs<PreferenceStrengthLossResult>(io, opts.out, OUTS, () => P, 2, metrics) };
  },
});

const typed = op.typed<
  [chosenRewards: Float32Array, rejectedRewards: Float32Array, options: PreferenceStrengthLossOptions],
  PreferenceStrengthLossResult,
  [chosenRewards: DeviceArray, rejectedRewards: DeviceArray, options: DevicePreferenceStrengthLossOptions],
  DevicePreferenceStrengthLossResult
>();

/**
 * Preference strength ("Secrets of RLHF II") for P pairs scored by an ensemble of M reward models:
 * per pair mu = mean_m d_m and sigma = std_m d_m of the margins d_m = r_m(y_c) - r_m(y_r); the trained
 * reward model's loss -(1 - e) log s(z) - e log s(-z) with z = s (r_c - r_r) - s mu, s = -1 where
 * mu < 0 (flipped label), else 1; gradients wrt its scores `chosenRewards`, `rejectedRewards`.
 *
 * With f32 DeviceArrays it runs on the GPU; the outputs are DeviceArrays owned by the caller.
 *
 * @example
 * const r = preferenceStrengthLoss(rc, rr, { ensembleChosen, ensembleRejected, labelSmoothing: 0.1 });
 */
export const preferenceStrengthLoss = typed.sync;
/** preferenceStrengthLoss on a worker thread; leave its buffers untouched until it settles. */
export const preferenceStrengthLossAsync = typed.async;
