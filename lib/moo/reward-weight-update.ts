// rewardWeightUpdate: the gradient-based mirror-descent update of the objective weights of "Learning
// to Optimize Multi-Objective Alignment Through Dynamic Reward Weighting" (its code:
// verl/trainer/ppo/ray_trainer_optimization.py). The formula: native/core/moo.h (gram_lane,
// weight_update); docs/papers/dynamic-reward-weighting.md.
import type { DeviceArray } from '../cuda.js';
import { defineOp, describe, knownKeys, num, openOptions, packOptions, readOptions } from '../op.js';
import { finiteIn, finitePositive } from '../check.js';

export interface RewardWeightUpdateOptions {
  /** The policy's current learning rate (the code's lr_t). Required. */
  lr: number;
  /** The regularisation factor mu (the code's regularization_factor). Default 1e-5. */
  mu?: number;
  out?: { weights?: Float32Array; scores?: Float32Array; gram?: Float32Array };
}
export interface RewardWeightUpdateResult {
  /** (K): the new weights, softmax(log w + lr s / mu). */
  weights: Float32Array;
  /** (K): s = (G G^T) 1, the gradient influences. */
  scores: Float32Array;
  /** (K * K): G G^T, row-major. */
  gram: Float32Array;
}
export interface DeviceRewardWeightUpdateOptions extends Omit<RewardWeightUpdateOptions, 'out'> {
  out?: { weights?: DeviceArray; scores?: DeviceArray; gram?: DeviceArray };
}
export interface DeviceRewardWeightUpdateResult {
  weights: DeviceArray<'f32'>;
  scores: DeviceArray<'f32'>;
  gram: DeviceArray<'f32'>;
}

/** The most objectives (the CUDA update runs on one thread). */
export const MAX_OBJECTIVES = 64;
const OPTIONS = {
  lr: num((v, k) => finiteIn(v, k, -Infinity, Infinity), undefined as unknown as number),
  mu: num(finitePositive, 1e-5),
};
const OUTS = ['weights', 'scores', 'gram'] as const;
const KEYS = knownKeys('rewardWeightUpdate', Object.keys(OPTIONS), ['out']);

const op = defineOp({
  name: 'rewardWeightUpdate',
  mix: 'the gradients are a DeviceArray',
  slots: {
    grads: { types: ['f32'], shape: 'K*P' },
    weights: { types: ['f32'], shape: 'K' },
    newWeights: { types: ['f32'], shape: 'K', out: true },
    scores: { types: ['f32'], shape: 'K', out: true },
    gram: { types: ['f32'], shape: 'K*K', out: true },
  },
  options: OPTIONS,
  scalars: [],
  prepare(io, ...[grads, weights, options]: [unknown, unknown, unknown]) {
    const { opts, out } = openOptions(io, options, true, [[weights, 'weights']], [], OUTS, KEYS);
    const n = io.read('grads', grads, 'grads').length;
    const w = io.read('weights', weights, 'weights');
    const K = w.length;
    if (K < 1 || K > MAX_OBJECTIVES) throw new RangeError(`weights: expected 1 to ${MAX_OBJECTIVES} objectives, received length ${K}`);
    if (n % K !== 0 || n === 0) throw new RangeError(`grads: expected a nonzero multiple of K = ${K} (the length of weights) values, received length ${n}`);
    if (w instanceof Float32Array) {
      let sum = 0;
      for (let i = 0; i < K; i++) {
        if (!(w[i] >= 0) || !Number.isFinite(w[i])) throw new RangeError(`weights: expected finite weights >= 0, received ${w[i]} at index ${i}`);
        sum += w[i];
      }
      if (!(sum > 0)) throw new RangeError('weights: expected a positive sum, received all zeros');
    }
    if (opts.lr === undefined) throw new TypeError(`options.lr: expected a number (the policy's learning rate), received ${describe(opts.lr)}`);
    const values = readOptions(OPTIONS, opts);
    const newWeights = io.out('newWeights', out.weights, 'options.out.weights', K);
    const scores = io.out('scores', out.scores, 'options.out.scores', K);
    const gram = io.out('gram', out.gram, 'options.out.gram', K * K);
    return { params: packOptions(OPTIONS, values), scalars: null, finish: () => ({ weights: newWeights, scores, gram }) };
  },
});

const typed = op.typed<
  [grads: Float32Array, weights: Float32Array, options: RewardWeightUpdateOptions],
  RewardWeightUpdateResult,
  [grads: DeviceArray, weights: DeviceArray, options: DeviceRewardWeightUpdateOptions],
  DeviceRewardWeightUpdateResult
>();

/**
 * The mirror-descent update of K objective weights from the K x P matrix G of per-objective policy
 * gradients (row k: the flattened gradient of objective k's loss): s = (G G^T) 1,
 * w' = softmax(log w + lr s / mu). Start from w = 1/K. The Gram product is computed in double over
 * fixed chunks of columns (threaded; the same bits for every thread count and on the GPU).
 *
 * @example
 * const { weights: next } = rewardWeightUpdate(grads, weights, { lr: 1e-6 });
 */
export const rewardWeightUpdate = typed.sync;
/** rewardWeightUpdate on a worker thread; leave its buffers untouched until it settles. */
export const rewardWeightUpdateAsync = typed.async;
