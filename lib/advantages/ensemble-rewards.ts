// ensembleRewards: combines M reward models' scores per sample (docs/advantages.md).
//
// rewards: (n, M) row-major.  mean: mean_m r;  min: min_m r;  uwo: mean_m r - lambda var_m r
// (population variance). NaN scores are skipped; a row of NaN gives NaN.
import { describe, finiteIn, options as optionsObject } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { defineOp, enumOf, knownKeys, packOptions, type OptionSpec } from '../op.js';
import { apart, optionReader, positiveIntOption, rowsOf } from './checks.js';
import { METHODS, REWARDS_MIX, type EnsembleMethod } from './enums.js';

export interface EnsembleRewardsOptions {
  /** M reward models: `rewards` is (n, M) row-major. */
  numModels: number;
  /** 'mean' (default), 'min' (worst case, WCO) or 'uwo' (mean - lambda * population variance). */
  method?: EnsembleMethod;
  /** uwo's variance penalty, >= 0; required for 'uwo'. */
  lambda?: number;
  out?: Float32Array;
}
export interface DeviceEnsembleRewardsOptions extends Omit<EnsembleRewardsOptions, 'out'> {
  out?: DeviceArray;
}

// uwo's variance penalty; given with another method it is a TypeError (it would be ignored).
const lambda: OptionSpec<number> = {
  read(v, name, prev) {
    if (prev.method !== 'uwo') {
      if (v === undefined) return 0;
      throw new TypeError(`${name}: applies to method 'uwo' only, expected undefined with method '${prev.method}', received ${describe(v)}`);
    }
    if (v === undefined) throw new TypeError(`${name}: expected a number >= 0 for method 'uwo', received undefined`);
    return finiteIn(v, name, 0, Infinity);
  },
  code: (v) => v,
};

const ENSEMBLE_OPTIONS = { numModels: positiveIntOption(), method: enumOf(METHODS, 'mean'), lambda };
const ENSEMBLE_KEYS = knownKeys('ensembleRewards', Object.keys(ENSEMBLE_OPTIONS), ['out']);

const op = defineOp({
  name: 'ensembleRewards',
  mix: REWARDS_MIX,
  slots: {
    rewards: { types: ['f32'], shape: 'n*M' },
    out: { types: ['f32'], shape: 'n', out: true, inPlace: ['rewards'] },
  },
  options: ENSEMBLE_OPTIONS,
  prepare(io, ...[rewards, options]: [rewards: unknown, options: unknown]) {
    io.rejectDevice((options as { out?: unknown } | null | undefined)?.out, 'options.out');
    const opts = optionsObject<EnsembleRewardsOptions>(options, 'options', true, ENSEMBLE_KEYS) as Record<string, unknown>;
    const r = io.read('rewards', rewards, 'rewards');
    const o = optionReader(ENSEMBLE_OPTIONS, opts);
    const M = o.read('numModels');
    const n = rowsOf(r.length, M, 'numModels', 'rewards');
    o.read('method');
    o.read('lambda');
    const out = io.out('out', opts.out, 'options.out', n);
    // In place (out exactly rewards) only with one model: each row is then read before its own value is written.
    apart(out, 'options.out', r, 'rewards');
    if (out === r && M !== 1) throw new RangeError('options.out: expected a buffer apart from rewards, received rewards');
    return { params: packOptions(ENSEMBLE_OPTIONS, o.values), finish: () => out as Float32Array };
  },
});

const typed = op.typed<
  [rewards: Float32Array, options: EnsembleRewardsOptions],
  Float32Array,
  [rewards: DeviceArray, options: DeviceEnsembleRewardsOptions],
  DeviceArray<'f32'>
>();

/**
 * Combines M reward models' scores per sample: mean, min (worst-case optimisation) or uwo
 * (mean - lambda * population variance), as in "Reward Model Ensembles Help Mitigate
 * Overoptimization". NaN scores are skipped; a row of NaN gives NaN.
 *
 * On an f32 DeviceArray it runs on the GPU; the result is an f32 DeviceArray (options.out, or one owned by the caller).
 *
 * @example
 * const r = ensembleRewards(scores, { numModels: 4, method: 'uwo', lambda: 0.5 });
 */
export const ensembleRewards = typed.sync;
/** ensembleRewards on a worker thread; leave its buffers untouched until it settles. */
export const ensembleRewardsAsync = typed.async;
