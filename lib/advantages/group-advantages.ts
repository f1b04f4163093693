// groupAdvantages: group-normalised outcome advantages (GRPO family, RLOO, REINFORCE++ baseline,
// OPO, pass@k, BNPO, GDPO); docs/advantages.md.
//
// rewards: (n, K) row-major; groups are contiguous runs of groupSize samples or given by groupIds.
// NaN rewards are missing values (TRL's nanmean/nanstd): left out of every statistic, and a sample
// with no reward gets advantage 0. Small host calls are answered in TypeScript (small-path.ts).
import { describe, finiteIn, int32Ids, oneOf, options as optionsObject } from '../check.js';
import { DeviceArray, upload } from '../cuda.js';
import { defineOp, enumOf, int, knownKeys, numIn, outKeys, packOptions, type OptionSpec } from '../op.js';
import { MAX_INT, optionReader, outsOf, positiveInt, positiveIntOption, rowsOf } from './checks.js';
import {
  ESTIMATORS,
  MULTI,
  REWARDS_MIX,
  SCALES,
  SINGLETON,
  type SingletonBaseline,
  type AdvantageEstimator,
  type AdvantageScale,
  type MultiRewardMode,
} from './enums.js';
import { smallPath, takesSmallPath } from './small-path.js';
import { applyPreset, GROUP_PRESETS, type Preset } from '../presets.js';

export interface GroupAdvantagesOptions {
  /** Contiguous groups of this many samples (the GRPO layout). Give this or `groupIds`. */
  groupSize?: number;
  /** Group of each sample, (n) ids in [0, n), any order, any group sizes (a BigInt64Array is range-checked and copied). */
  groupIds?: Int32Array | BigInt64Array;
  /** 'verl': eps 1e-6 (compute_grpo_outcome_advantage); 'trl': GRPOConfig's defaults, which are ours. Explicit options win. */
  preset?: Preset;
  /** Default 'grpo'. */
  estimator?: AdvantageEstimator;
  /** grpo and passk: divide by the group std (default, TRL/verl), the batch std (TRL 'batch') or nothing ('none', Dr. GRPO). */
  scale?: AdvantageScale;
  /** Added to the std before dividing. Default 1e-4 (TRL; verl uses 1e-6). */
  eps?: number;
  /** K rewards per sample: `rewards` is (n, K) row-major. Default 1. */
  numRewards?: number;
  /** Weight of each reward, (K). Default ones. */
  rewardWeights?: ArrayLike<number>;
  /** How K > 1 rewards combine: weighted sum first (default, TRL) or GDPO's per-reward z-scores ('normalize_then_sum', grpo only). */
  multiReward?: MultiRewardMode;
  /** Response lengths (n) >= 0: required by opo; optional for reinforce_pp_baseline (token-weighted whitening, as verl). */
  lengths?: Int32Array;
  /** bnpo: rewards are mapped to [0, 1] by (r - rewardMin) / (rewardMax - rewardMin). Defaults 0 and 1. */
  rewardMin?: number;
  rewardMax?: number;
  /** gpg: A = alpha (r - mean_g) / fNorm (verl f_norm). A finite number > 0, default 1. */
  fNorm?: number;
  /**
   * A group with exactly one valid reward: 'zero' (default, verl) compares it with 0, so grpo gives
   * r / (1 + eps); 'self' (TRL) compares it with itself, so its advantage is 0. Not with passk or normalize_then_sum.
   */
  singletonBaseline?: SingletonBaseline;
  /** Caller-owned outputs: advantages (n); groupMean and groupStd (numGroups, or numGroups * K with normalize_then_sum). */
  out?: { advantages?: Float32Array; groupMean?: Float32Array; groupStd?: Float32Array };
}

export interface GroupAdvantagesResult {
  /** One advantage per sample, (n). */
  advantages: Float32Array;
  /** The baseline each group's samples were compared with (see docs for each estimator), (numGroups) or (numGroups, K). */
  groupMean: Float32Array;
  /** Unbiased std of each group's rewards (1 for a group of one, as verl), (numGroups) or (numGroups, K). */
  groupStd: Float32Array;
  /** Groups with at least two rewards, all equal: their GRPO signal is zero (TRL #3857). */
  zeroStdGroups: number;
  /** Number of groups: n / groupSize, or max(groupIds) + 1. */
  numGroups: number;
}

/** groupAdvantages on DeviceArrays: `rewards` f32, `groupIds` / `lengths` i32, outputs f32. */
export interface DeviceGroupAdvantagesOptions extends Omit<GroupAdvantagesOptions, 'groupIds' | 'lengths' | 'out'> {
  /**
   * Group of each sample, (n) i32 ids in [0, n). Copied to the host once to find numGroups (max + 1)
   * and to check the ids with the host path's errors (a small synchronising copy).
   */
  groupIds?: DeviceArray;
  /** Response lengths (n) i32 >= 0, checked on the device (a negative one is the host path's RangeError). */
  lengths?: DeviceArray;
  out?: { advantages?: DeviceArray; groupMean?: DeviceArray; groupStd?: DeviceArray };
}
export interface DeviceGroupAdvantagesResult {
  advantages: DeviceArray<'f32'>;
  groupMean: DeviceArray<'f32'>;
  groupStd: DeviceArray<'f32'>;
  /** Downloaded from the device (the call waits for it). */
  zeroStdGroups: number;
  numGroups: number;
}

const multiReward: OptionSpec<MultiRewardMode> = {
  read(v, name, prev) {
    const m = v === undefined ? 'sum_then_normalize' : oneOf(v, name, MULTI);
    if (m === 'normalize_then_sum' && prev.estimator !== 'grpo') {
      throw new RangeError(`${name}: 'normalize_then_sum' (GDPO) is a grpo estimator, received estimator '${prev.estimator}'`);
    }
    return m;
  },
  code: (v) => MULTI.indexOf(v),
  values: MULTI,
};
// bnpo's affine map of the rewards to [0, 1]; given with another estimator it is a TypeError (it
// would be ignored).
function bnpoOnly(v: unknown, name: string, prev: Readonly<Record<string, unknown>>): void {
  if (v !== undefined) {
    throw new TypeError(`${name}: applies to estimator 'bnpo' only, expected undefined with estimator '${prev.estimator as string}', received ${describe(v)}`);
  }
}
const rewardMin: OptionSpec<number> = {
  read(v, name, prev) {
    if (prev.estimator !== 'bnpo') return bnpoOnly(v, name, prev), 0;
    return v === undefined ? 0 : finiteIn(v, name, -Infinity, Infinity);
  },
  code: (v) => v,
};
const rewardMax: OptionSpec<number> = {
  read(v, name, prev) {
    if (prev.estimator !== 'bnpo') return bnpoOnly(v, name, prev), 1;
    const x = v === undefined ? 1 : finiteIn(v, name, -Infinity, Infinity);
    if (!(x > (prev.rewardMin as number))) {
      throw new RangeError(`${name}: expected a number above rewardMin (${prev.rewardMin as number}), received ${x}`);
    }
    return x;
  },
  code: (v) => v,
};

// gpg's f_norm (a TypeError with another estimator: it would be ignored).
const fNorm: OptionSpec<number> = {
  read(v, name, prev) {
    if (prev.estimator !== 'gpg') {
      if (v !== undefined) throw new TypeError(`${name}: applies to estimator 'gpg' only, expected undefined with estimator '${prev.estimator as string}', received ${describe(v)}`);
      return 1;
    }
    const x = v === undefined ? 1 : finiteIn(v, name, -Infinity, Infinity);
    if (!(x > 0)) throw new RangeError(`${name}: expected a finite number > 0, received ${x}`);
    return x;
  },
  code: (v) => v,
};
const singletonBaseline: OptionSpec<SingletonBaseline> = {
  read(v, name, prev) {
    if (v === undefined) return 'zero';
    if (prev.estimator === 'passk' || prev.multiReward === 'normalize_then_sum') {
      const what = prev.estimator === 'passk' ? "estimator 'passk' (a group needs two samples)" : "multiReward 'normalize_then_sum' (a lone reward's z-score is 0, as in TRL)";
      throw new TypeError(`${name}: does not apply to ${what}, expected undefined, received ${describe(v)}`);
    }
    return oneOf(v, name, SINGLETON);
  },
  code: (v) => SINGLETON.indexOf(v),
  values: SINGLETON,
};

/** The scalar options of groupAdvantages in packing order; groupSize and numGroups are set by prepare. */
const GROUP_OPTIONS = {
  numRewards: positiveIntOption(1),
  estimator: enumOf(ESTIMATORS, 'grpo'),
  scale: enumOf(SCALES, 'group'),
  multiReward,
  eps: numIn(0, Infinity, 1e-4),
  /** 0: the groups are given by groupIds. */
  groupSize: int(0, MAX_INT, 0),
  numGroups: int(0, MAX_INT, 0),
  rewardMin,
  rewardMax,
  fNorm,
  singletonBaseline,
};

const GROUP_KEYS = knownKeys(
  'groupAdvantages', Object.keys(GROUP_OPTIONS).filter((k) => k !== 'numGroups'), ['groupIds', 'lengths', 'rewardWeights', 'preset', 'out'],
);
const GROUP_OUTS = outKeys('groupAdvantages', ['advantages', 'groupMean', 'groupStd']);

/** options.rewardWeights: K finite numbers, as doubles (null when not given). */
function rewardWeights(w: unknown, K: number): Float64Array | null {
  if (w === undefined) return null;
  if (!(Array.isArray(w) || w instanceof Float32Array || w instanceof Float64Array)) {
    throw new TypeError(`options.rewardWeights: expected an array of ${K} numbers, received ${describe(w)}`);
  }
  if (w.length !== K) {
    throw new RangeError(`options.rewardWeights: expected length ${K} (numRewards), received length ${w.length}`);
  }
  const weights = new Float64Array(K);
  for (let k = 0; k < K; k++) weights[k] = finiteIn(w[k], `options.rewardWeights[${k}]`, -Infinity, Infinity);
  return weights;
}

const op = defineOp({
  name: 'groupAdvantages',
  mix: REWARDS_MIX,
  slots: {
    rewards: { types: ['f32'], shape: 'n*K' },
    // host: K doubles; device: their 8K bytes, uploaded by prepare (a u8 DeviceArray freed after the call)
    rewardWeights: { types: ['f64', 'u8'], shape: 'K | 8*K' },
    groupIds: { types: ['i32'], shape: 'n' },
    lengths: { types: ['i32'], shape: 'n' },
    advantages: { types: ['f32'], shape: 'n', out: true },
    groupMean: { types: ['f32'], shape: 'G | G*K', out: true },
    groupStd: { types: ['f32'], shape: 'G | G*K', out: true },
  },
  options: GROUP_OPTIONS,
  scalars: ['zeroStdGroups'],
  prepare(io, ...[rewards, options]: [rewards: unknown, options: unknown]) {
    const raw = (options !== null && typeof options === 'object' ? options : {}) as Record<string, unknown>;
    const outs = outsOf(options);
    for (const [v, k] of [
      [raw.groupIds, 'options.groupIds'], [raw.lengths, 'options.lengths'], [outs.advantages, 'options.out.advantages'],
      [outs.groupMean, 'options.out.groupMean'], [outs.groupStd, 'options.out.groupStd'],
    ] as const) io.rejectDevice(v, k);
    const opts = applyPreset('groupAdvantages', optionsObject<GroupAdvantagesOptions>(options, 'options', true, GROUP_KEYS) as Record<string, unknown>, GROUP_PRESETS);
    const r = io.read('rewards', rewards, 'rewards');
    const o = optionReader(GROUP_OPTIONS, opts);
    const K = o.read('numRewards');
    const n = rowsOf(r.length, K, 'numRewards', 'rewards');
    const estimator = o.read('estimator');
    const scale = o.read('scale');
    const multi = o.read('multiReward');
    const eps = o.read('eps');
    const weights = rewardWeights(opts.rewardWeights, K);
    if (io.device && n > MAX_INT) throw new RangeError(`rewards: expected at most ${MAX_INT} samples, received ${n}`);

    let groupSize = 0;
    let ids: Int32Array | null = null; // on the host (downloaded on the device path)
    let numGroups: number;
    if (opts.groupIds !== undefined) {
      if (opts.groupSize !== undefined) {
        throw new TypeError('options.groupSize: expected either groupSize or groupIds, received both');
      }
      const a = io.read('groupIds', io.device ? opts.groupIds : int32Ids(opts.groupIds, 'options.groupIds'), 'options.groupIds', n);
      ids = a instanceof DeviceArray ? (a.download() as Int32Array) : (a as Int32Array);
      let max = -1;
      for (let i = 0; i < n; i++) {
        const g = ids[i];
        if (g < 0 || g >= n) {
          throw new RangeError(`options.groupIds[${i}]: expected a group id in [0, ${n}) (n samples), received ${g}`);
        }
        if (g > max) max = g;
      }
      numGroups = max + 1;
    } else {
      if (opts.groupSize === undefined) {
        throw new TypeError('options.groupSize: expected a positive integer (or options.groupIds), received undefined');
      }
      groupSize = positiveInt(opts.groupSize, 'options.groupSize');
      if (n % groupSize !== 0) {
        throw new RangeError(`options.groupSize: expected a divisor of the number of samples (${n}), received ${groupSize}`);
      }
      numGroups = n / groupSize;
    }
    o.set('groupSize', groupSize);
    o.set('numGroups', numGroups);

    let lengths: Int32Array | null = null; // host only: the device checks its own
    if (opts.lengths !== undefined && estimator !== 'opo' && estimator !== 'reinforce_pp_baseline') {
      throw new TypeError(
        `options.lengths: applies to estimators 'opo' and 'reinforce_pp_baseline' only, expected undefined with estimator '${estimator}', received ${describe(opts.lengths)}`,
      );
    }
    if (opts.lengths !== undefined) {
      const a = io.read('lengths', opts.lengths, 'options.lengths', n);
      if (!(a instanceof DeviceArray)) {
        lengths = a as Int32Array;
        for (let i = 0; i < n; i++) {
          if (lengths[i] < 0) throw new RangeError(`options.lengths[${i}]: expected a length >= 0, received ${lengths[i]}`);
        }
      }
    } else if (estimator === 'opo') {
      throw new TypeError("options.lengths: expected an Int32Array of response lengths for estimator 'opo', received undefined");
    }
    if (estimator === 'passk') {
      if (groupSize === 1) throw new RangeError('options.groupSize: passk needs groups of at least 2 samples, received 1');
      if (ids) {
        const count = new Int32Array(numGroups);
        for (let i = 0; i < n; i++) count[ids[i]]++;
        for (let g = 0; g < numGroups; g++) {
          if (count[g] === 1) throw new RangeError(`options.groupIds: passk needs groups of at least 2 samples, group ${g} has 1`);
        }
      }
    }
    o.read('rewardMin');
    o.read('rewardMax');
    o.read('fNorm');
    const singleton = o.read('singletonBaseline');

    const statLen = multi === 'normalize_then_sum' ? numGroups * K : numGroups;
    const out = (opts.out === undefined ? {} : optionsObject(opts.out, 'options.out', true, GROUP_OUTS)) as Record<string, unknown>;
    const advantages = io.out('advantages', out.advantages, 'options.out.advantages', n);
    const groupMean = io.out('groupMean', out.groupMean, 'options.out.groupMean', statLen);
    const groupStd = io.out('groupStd', out.groupStd, 'options.out.groupStd', statLen);
    let deviceWeights: DeviceArray | null = null;
    if (weights && io.device) {
      deviceWeights = upload(new Uint8Array(weights.buffer));
      io.allocated.push(deviceWeights); // freed if the call fails
      io.set('rewardWeights', deviceWeights);
    } else {
      io.set('rewardWeights', weights);
    }

    const scalars = io.scalars(1);
    const small = !io.device && singleton === 'zero' && takesSmallPath(n, groupSize, estimator, multi);
    return {
      params: small ? null : packOptions(GROUP_OPTIONS, o.values),
      scalars,
      local: small
        ? () => {
            io.checkOverlaps(); // the native path's check (define.ts runs it in io.nativeSlots)
            scalars[0] = smallPath(
              r as Float32Array, K, weights, groupSize, estimator, scale, eps, lengths,
              advantages as Float32Array, groupMean as Float32Array, groupStd as Float32Array,
            );
          }
        : undefined,
      finish: () => {
        deviceWeights?.free();
        return { advantages, groupMean, groupStd, zeroStdGroups: scalars[0], numGroups } as GroupAdvantagesResult;
      },
    };
  },
});

const typed = op.typed<
  [rewards: Float32Array, options: GroupAdvantagesOptions],
  GroupAdvantagesResult,
  [rewards: DeviceArray, options: DeviceGroupAdvantagesOptions],
  DeviceGroupAdvantagesResult
>();

/**
 * Group-relative advantages of one batch of rewards: GRPO (group/batch/no std scaling), RLOO,
 * REINFORCE++ with baseline, OPO, pass@k, BNPO, and GDPO for several rewards.
 *
 * On DeviceArrays (every array a DeviceArray) it runs on the GPU: outputs not given in `out` are
 * allocated f32 DeviceArrays owned by the caller; zeroStdGroups is downloaded. The small-n
 * TypeScript path is never taken there.
 *
 * @example
 * // 4 prompts x 16 completions, TRL GRPO defaults
 * const { advantages, zeroStdGroups } = groupAdvantages(rewards, { groupSize: 16 });
 */
export const groupAdvantages = typed.sync;
/** groupAdvantages on a worker thread; leave its buffers untouched until it settles. */
export const groupAdvantagesAsync = typed.async;
