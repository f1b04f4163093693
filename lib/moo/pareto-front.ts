// paretoFront: the non-dominated points of a batch (maximisation), botorch's
// is_non_dominated(Y, deduplicate=False) as OP-GFN uses it. The formula: native/core/moo.h
// (pareto_dominated); docs/papers/op-gfn.md.
import type { DeviceArray } from '../cuda.js';
import { defineOp, int, knownKeys, openOptions, packOptions, readOptions } from '../op.js';

export interface ParetoFrontOptions {
  /** K, the objectives per point: `points` holds B rows of K values (row-major). */
  numObjectives: number;
  out?: { front?: Uint8Array };
}
export interface ParetoFrontResult {
  /** (B): 1 where no other point is >= in every objective and > in one, else 0. */
  front: Uint8Array;
  /** The number of points on the front. */
  count: number;
}
export interface DeviceParetoFrontOptions extends Omit<ParetoFrontOptions, 'out'> {
  out?: { front?: DeviceArray };
}
export interface DeviceParetoFrontResult {
  front: DeviceArray<'u8'>;
  count: number;
}

const OPTIONS = { numObjectives: int(1, 2 ** 31 - 1) };
const KEYS = knownKeys('paretoFront', Object.keys(OPTIONS), ['out']);

const op = defineOp({
  name: 'paretoFront',
  mix: 'the points are a DeviceArray',
  slots: {
    points: { types: ['f32'], shape: 'B*K' },
    front: { types: ['u8'], shape: 'B', out: true },
  },
  options: OPTIONS,
  scalars: ['count'],
  prepare(io, ...[points, options]: [unknown, unknown]) {
    const { opts, out } = openOptions(io, options, true, [], [], ['front'], KEYS);
    const n = io.read('points', points, 'points').length;
    const values = readOptions(OPTIONS, opts);
    const K = values.numObjectives;
    if (n % K !== 0 || n === 0) {
      throw new RangeError(`options.numObjectives: expected a divisor of the length of points (${n}, at least one point), received ${K}`);
    }
    const front = io.out('front', out.front, 'options.out.front', n / K);
    const sc = io.scalars(1);
    return { params: packOptions(OPTIONS, values), scalars: sc, finish: () => ({ front, count: sc[0] }) };
  },
});

const typed = op.typed<
  [points: Float32Array, options: ParetoFrontOptions],
  ParetoFrontResult,
  [points: DeviceArray, options: DeviceParetoFrontOptions],
  DeviceParetoFrontResult
>();

/**
 * The Pareto front of B points with K objectives each (larger is better in every objective): 1 for a
 * point that no other point dominates (>= everywhere, > somewhere). Duplicates do not dominate each
 * other, so every copy of a front point is on the front; a point with a NaN objective is never
 * dominated and dominates nothing (every comparison with NaN is false), as botorch. O(B^2 K).
 *
 * With a DeviceArray it runs on the GPU.
 *
 * @example
 * const { front, count } = paretoFront(objectives, { numObjectives: 2 });
 */
export const paretoFront = typed.sync;
/** paretoFront on a worker thread; leave its buffers untouched until it settles. */
export const paretoFrontAsync = typed.async;
