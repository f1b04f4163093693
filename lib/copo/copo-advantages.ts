// copoAdvantages: COPO's consistency-aware advantages (hijih/copo-code compute_score_global and
// compute_grpo_outcome_advantage_with_global, and the gates of compute_policy_loss_with_global):
// per prompt the entropy of its answers' histogram, the global reward and its batch z-score, the
// local (GRPO) advantages and the entropy gate. The formulas: native/core/copo.h; docs/papers/copo.md.
import { int32Ids } from '../check.js';
import { DeviceArray, upload } from '../cuda.js';
import { defineOp, enumOf, flag, int, knownKeys, num, numIn, openOptions, packOptions, readOptions } from '../op.js';
import { finiteIn } from '../check.js';
import { positiveInt } from '../advantages/checks.js';

/** COPO's gate modes (its global_flg values): the weight w of the local loss, 1 - w of the global one. */
export type CopoGate =
  | 'only-soft'
  | 'soft-with-forced'
  | 'soft-with-zero'
  | 'only-forced'
  | 'only-zero'
  | 'no-global'
  | 'only-global';
const COPO_GATES: readonly CopoGate[] = [
  'only-soft', 'soft-with-forced', 'soft-with-zero', 'only-forced', 'only-zero', 'no-global', 'only-global',
];

export interface CopoAdvantagesOptions {
  /** Contiguous groups of this many samples (one prompt each). Give this or `groupIds`. */
  groupSize?: number;
  /** Prompt of each sample, (n) ids in [0, n), every id up to the largest used (a BigInt64Array is range-checked and copied). */
  groupIds?: Int32Array | BigInt64Array;
  /** R = passRate * (1 - lambda H) when true (default, the paper); R = passRate when false (the code's reward_coef_flg, off in its run_copo.sh). */
  scaleByConsistency?: boolean;
  /** Divide the local and global advantages by their std (+ eps). Default true (verl norm_adv_by_std_in_grpo). */
  scaleByStd?: boolean;
  /** Added to both stds. Default 1e-6 (the code's epsilon). */
  eps?: number;
  /** The gate's slope k in sigmoid(k (H - b)). Default 20 (run_copo.sh uses 5). */
  softBlendingK?: number;
  /** The gate's centre b, in bits. Default 0.5 (run_copo.sh uses 1). */
  softBlendingB?: number;
  /** How the gate is formed (the code's global_flg). Default 'only-soft' (run_copo.sh: 'soft-with-zero'). */
  gate?: CopoGate;
  /** Caller-owned outputs. */
  out?: {
    entropy?: Float32Array; globalRewards?: Float32Array; localAdvantages?: Float32Array;
    globalAdvantages?: Float32Array; gates?: Float32Array;
  };
}
export interface CopoAdvantagesResult {
  /** Entropy in bits of each prompt's answer histogram, (numGroups). */
  entropy: Float32Array;
  /** Each prompt's global reward R, (numGroups). */
  globalRewards: Float32Array;
  /** GRPO advantage of each sample within its prompt, (n). */
  localAdvantages: Float32Array;
  /** The batch z-score of its prompt's R, per sample, (n). */
  globalAdvantages: Float32Array;
  /** The weight of the local loss per sample, (n): 1 - gate weighs the global loss. */
  gates: Float32Array;
  numGroups: number;
}
/** copoAdvantages on DeviceArrays: `answerIds` i32, `rewards` f32 (groupIds i32 on the host or the device). */
export interface DeviceCopoAdvantagesOptions extends Omit<CopoAdvantagesOptions, 'groupIds' | 'out'> {
  /** Prompt of each sample, (n) i32: copied to the host once to build the groups (a small synchronising copy). */
  groupIds?: DeviceArray | Int32Array;
  out?: {
    entropy?: DeviceArray; globalRewards?: DeviceArray; localAdvantages?: DeviceArray;
    globalAdvantages?: DeviceArray; gates?: DeviceArray;
  };
}
export interface DeviceCopoAdvantagesResult {
  entropy: DeviceArray<'f32'>;
  globalRewards: DeviceArray<'f32'>;
  localAdvantages: DeviceArray<'f32'>;
  globalAdvantages: DeviceArray<'f32'>;
  gates: DeviceArray<'f32'>;
  numGroups: number;
}

const MAX_INT = 2 ** 31 - 1;
const OPTIONS = {
  /** 0: the groups are given by groupIds (set by prepare). */
  groupSize: int(0, MAX_INT, 0),
  numGroups: int(0, MAX_INT, 0),
  eps: numIn(0, Infinity, 1e-6),
  softBlendingK: num((v, k) => finiteIn(v, k, -Infinity, Infinity), 20),
  softBlendingB: num((v, k) => finiteIn(v, k, -Infinity, Infinity), 0.5),
  gate: enumOf<CopoGate>(COPO_GATES, 'only-soft'),
  scaleByConsistency: flag(true),
  scaleByStd: flag(true),
};
const OUTS = ['entropy', 'globalRewards', 'localAdvantages', 'globalAdvantages', 'gates'] as const;
const KEYS = knownKeys('copoAdvantages', Object.keys(OPTIONS).filter((k) => k !== 'numGroups'), ['groupIds', 'out']);

/** The samples grouped by id, each group in sample order (a stable counting sort), and the offsets. */
function groupsOf(ids: Int32Array, n: number): { order: Int32Array; offsets: Int32Array; numGroups: number } {
  let max = -1;
  for (let i = 0; i < n; i++) {
    const g = ids[i];
    if (!(g >= 0 && g < n)) throw new RangeError(`options.groupIds[${i}]: expected a group id in [0, ${n}) (n samples), received ${g}`);
    if (g > max) max = g;
  }
  const Q = max + 1;
  const offsets = new Int32Array(Q + 1);
  for (let i = 0; i < n; i++) offsets[ids[i] + 1]++;
  for (let g = 0; g < Q; g++) {
    if (offsets[g + 1] === 0) throw new RangeError(`options.groupIds: expected every id up to the largest (${max}) to be used, group ${g} has no sample`);
    offsets[g + 1] += offsets[g];
  }
  const next = offsets.slice(0, Q);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[next[ids[i]]++] = i;
  return { order, offsets, numGroups: Q };
}

const op = defineOp({
  name: 'copoAdvantages',
  mix: 'the answer ids are a DeviceArray',
  slots: {
    answerIds: { types: ['i32'], shape: 'n' },
    rewards: { types: ['f32'], shape: 'n' },
    groupOrder: { types: ['i32'], shape: 'n' },
    groupOffsets: { types: ['i32'], shape: 'G+1' },
    entropy: { types: ['f32'], shape: 'G', out: true },
    globalRewards: { types: ['f32'], shape: 'G', out: true },
    localAdvantages: { types: ['f32'], shape: 'n', out: true },
    globalAdvantages: { types: ['f32'], shape: 'n', out: true },
    gates: { types: ['f32'], shape: 'n', out: true },
  },
  options: OPTIONS,
  scalars: [],
  prepare(io, ...[answerIds, rewards, options]: [unknown, unknown, unknown]) {
    const { opts, out } = openOptions(io, options, true, [[rewards, 'rewards']], ['groupIds'], OUTS, KEYS);
    const a = io.read('answerIds', io.device ? answerIds : int32Ids(answerIds, 'answerIds'), 'answerIds');
    const n = a.length;
    io.read('rewards', rewards, 'rewards', n);
    let numGroups: number;
    let groupSize = 0;
    let uploaded: DeviceArray[] = [];
    if (opts.groupIds !== undefined) {
      if (opts.groupSize !== undefined) throw new TypeError('options.groupSize: expected either groupSize or groupIds, received both');
      let ids: Int32Array;
      if (opts.groupIds instanceof DeviceArray) {
        if (opts.groupIds.dtype !== 'i32') throw new TypeError(`options.groupIds: expected a DeviceArray of dtype 'i32', received ${opts.groupIds}`);
        if (opts.groupIds.length !== n) throw new RangeError(`options.groupIds: expected length ${n} (answerIds), received length ${opts.groupIds.length}`);
        ids = opts.groupIds.download() as Int32Array;
      } else {
        const g = int32Ids(opts.groupIds, 'options.groupIds');
        if (!(g instanceof Int32Array)) throw new TypeError(`options.groupIds: expected an Int32Array or a BigInt64Array, received ${Object.prototype.toString.call(g).slice(8, -1)}`);
        if (g.length !== n) throw new RangeError(`options.groupIds: expected length ${n} (answerIds), received length ${g.length}`);
        ids = g;
      }
      const grp = groupsOf(ids, n);
      numGroups = grp.numGroups;
      if (io.device) {
        const o = upload(grp.order), f = upload(grp.offsets);
        io.allocated.push(o, f); // freed if the call fails
        uploaded = [o, f];
        io.set('groupOrder', o);
        io.set('groupOffsets', f);
      } else {
        io.set('groupOrder', grp.order);
        io.set('groupOffsets', grp.offsets);
      }
    } else {
      if (opts.groupSize === undefined) throw new TypeError('options.groupSize: expected a positive integer (or options.groupIds), received undefined');
      groupSize = positiveInt(opts.groupSize, 'options.groupSize');
      if (n % groupSize !== 0) throw new RangeError(`options.groupSize: expected a divisor of the number of samples (${n}), received ${groupSize}`);
      numGroups = n / groupSize;
    }
    const values = readOptions(OPTIONS, { ...opts, groupSize, numGroups });
    const res = {
      entropy: io.out('entropy', out.entropy, 'options.out.entropy', numGroups),
      globalRewards: io.out('globalRewards', out.globalRewards, 'options.out.globalRewards', numGroups),
      localAdvantages: io.out('localAdvantages', out.localAdvantages, 'options.out.localAdvantages', n),
      globalAdvantages: io.out('globalAdvantages', out.globalAdvantages, 'options.out.globalAdvantages', n),
      gates: io.out('gates', out.gates, 'options.out.gates', n),
    };
    return { params: packOptions(OPTIONS, values), scalars: null, finish: () => {
      for (const d of uploaded) d.free();
      return { ...res, numGroups };
    } };
  },
});

const typed = op.typed<
  [answerIds: Int32Array | BigInt64Array, rewards: Float32Array, options: CopoAdvantagesOptions],
  CopoAdvantagesResult,
  [answerIds: DeviceArray, rewards: DeviceArray, options: DeviceCopoAdvantagesOptions],
  DeviceCopoAdvantagesResult
>();

/**
 * COPO's advantages for G sampled answers per prompt: per prompt q the entropy H_q (bits) of the
 * histogram of its final answers (`answerIds`, any Int32 label per distinct answer), the global reward
 * R_q = mean reward * (1 - lambda_G H_q) with lambda_G = (1 - 1/G) / log2 G, its z-score over the
 * prompts of the batch, the local GRPO advantages, and the gate w = sigmoid(k (H_q - b)) (or a mode's
 * variant) that {@link copoPolicyLoss} blends them with.
 *
 * With DeviceArrays (i32 answer ids, f32 rewards) it runs on the GPU.
 *
 * @example
 * const { localAdvantages, globalAdvantages, gates } = copoAdvantages(answerIds, rewards, { groupSize: 8 });
 */
export const copoAdvantages = typed.sync;
/** copoAdvantages on a worker thread; leave its buffers untouched until it settles. */
export const copoAdvantagesAsync = typed.async;
