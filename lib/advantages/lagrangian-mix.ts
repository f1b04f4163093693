// lagrangianMix: Constrained RLHF's mix of K reward-model advantages with the KL advantage,
// A_mix = (K - sum_i sigmoid(xi_i)) A_KL + sum_i sigmoid(xi_i) A_i, with dL/dxi from an upstream
// gradient; and lagrangeMultiplierUpdate, the multipliers' gradient step (docs/papers/constrained-rlhf.md).
import { describe, finiteIn, options as optionsObject } from '../check.js';
import { DeviceArray } from '../cuda.js';
import { defineOp, knownKeys, outKeys, packOptions } from '../op.js';
import { apart, optionReader, outsOf, positiveIntOption, rowsOf } from './checks.js';
import { REWARDS_MIX } from './enums.js';

export interface LagrangianMixOptions {
  /** K reward models: `advantages` is [K, N] row-major (model i's N advantages contiguous). */
  numRewards: number;
  /** [N] f32, the gradient of the loss wrt A_mix: when given, the result's gradXi is dL/dxi. */
  gradMixed?: Float32Array;
  out?: { mixed?: Float32Array; gradXi?: Float32Array };
}
export interface LagrangianMixResult {
  /** [N] A_mix. */
  mixed: Float32Array;
  /** [K] dL/dxi_i = sigmoid'(xi_i) sum_n gradMixed_n (A_i,n - A_KL,n); null without gradMixed. */
  gradXi: Float32Array | null;
}
export interface DeviceLagrangianMixOptions extends Omit<LagrangianMixOptions, 'out' | 'gradMixed'> {
  gradMixed?: DeviceArray;
  out?: { mixed?: DeviceArray; gradXi?: DeviceArray };
}
export interface DeviceLagrangianMixResult {
  mixed: DeviceArray<'f32'>;
  gradXi: DeviceArray<'f32'> | null;
}

const MIX_OPTIONS = { numRewards: positiveIntOption() };
const MIX_KEYS = knownKeys('lagrangianMix', Object.keys(MIX_OPTIONS), ['gradMixed', 'out']);
const MIX_OUTS = outKeys('lagrangianMix', ['mixed', 'gradXi']);

type Args = [advantages: unknown, klAdvantages: unknown, xi: unknown, options: unknown];

const op = defineOp({
  name: 'lagrangianMix',
  mix: REWARDS_MIX,
  slots: {
    advantages: { types: ['f32'], shape: 'K*N' },
    klAdvantages: { types: ['f32'], shape: 'N' },
    xi: { types: ['f32'], shape: 'K' },
    gradMixed: { types: ['f32'], shape: 'N' },
    mixed: { types: ['f32'], shape: 'N', out: true, inPlace: ['klAdvantages'] },
    gradXi: { types: ['f32'], shape: 'K', out: true },
  },
  options: MIX_OPTIONS,
  prepare(io, ...[advantages, klAdvantages, xi, options]: Args) {
    const outs = outsOf(options);
    const g0 = options !== null && typeof options === 'object' ? (options as { gradMixed?: unknown }).gradMixed : undefined;
    for (const [v, k] of [
      [klAdvantages, 'klAdvantages'], [xi, 'xi'], [g0, 'options.gradMixed'], [outs.mixed, 'options.out.mixed'], [outs.gradXi, 'options.out.gradXi'],
    ] as const) io.rejectDevice(v, k);
    const opts = optionsObject<LagrangianMixOptions>(options, 'options', true, MIX_KEYS) as Record<string, unknown>;
    const a = io.read('advantages', advantages, 'advantages');
    const o = optionReader(MIX_OPTIONS, opts);
    const K = o.read('numRewards');
    const N = rowsOf(a.length, K, 'numRewards', 'advantages');
    const kl = io.read('klAdvantages', klAdvantages, 'klAdvantages', N);
    const x = io.read('xi', xi, 'xi', K);
    const g = io.optional('gradMixed', opts.gradMixed, 'options.gradMixed', N);
    const out = (opts.out === undefined ? {} : optionsObject(opts.out, 'options.out', true, MIX_OUTS)) as Record<string, unknown>;
    if (g === null && out.gradXi !== undefined) {
      throw new TypeError(`options.out.gradXi: applies with options.gradMixed only, expected undefined, received ${describe(out.gradXi)}`);
    }
    const mixed = io.out('mixed', out.mixed, 'options.out.mixed', N);
    const gradXi = g === null ? null : io.out('gradXi', out.gradXi, 'options.out.gradXi', K);
    for (const [inp, name] of [[a, 'advantages'], [kl, 'klAdvantages'], [x, 'xi'], [g, 'options.gradMixed']] as const) {
      if (inp === null) continue;
      apart(mixed, 'options.out.mixed', inp, name);
      if (gradXi !== null) apart(gradXi, 'options.out.gradXi', inp, name);
    }
    if (gradXi !== null) apart(gradXi, 'options.out.gradXi', mixed, 'options.out.mixed');
    if (gradXi !== null && gradXi === mixed) {
      throw new RangeError('options.out.gradXi: expected a buffer apart from out.mixed, received the same one');
    }
    return { params: packOptions(MIX_OPTIONS, o.values), finish: () => ({ mixed, gradXi }) as LagrangianMixResult };
  },
});

const typed = op.typed<
  [advantages: Float32Array, klAdvantages: Float32Array, xi: Float32Array, options: LagrangianMixOptions],
  LagrangianMixResult,
  [advantages: DeviceArray, klAdvantages: DeviceArray, xi: DeviceArray, options: DeviceLagrangianMixOptions],
  DeviceLagrangianMixResult
>();

/**
 * Constrained RLHF's Lagrangian mix of K reward-model advantages ("Confronting Reward Model
 * Overoptimization with Constrained RLHF", Moskovitz et al. 2023): with `lambda_i = sigmoid(xi_i)`,
 * `A_mix = (K - sum_i lambda_i) A_KL + sum_i lambda_i A_i` per element, in double.
 *
 * Gradients: `dA_mix/dA_i = lambda_i`, `dA_mix/dA_KL = K - sum_i lambda_i` (constants: the gradient
 * wrt the advantages is gradMixed scaled by them), and, given `options.gradMixed` (dL/dA_mix),
 * `gradXi_i = sigmoid'(xi_i) sum_n gradMixed_n (A_i,n - A_KL,n)`, summed in fixed chunks in double.
 * `out.mixed` may be `klAdvantages` (in place).
 *
 * On DeviceArrays (every array f32 on the device) it runs on the GPU.
 *
 * @example
 * const { mixed } = lagrangianMix(rmAdvantages, klAdvantages, xi, { numRewards: 2 });
 */
export const lagrangianMix = typed.sync;
/** lagrangianMix on a worker thread; leave its buffers untouched until it settles. */
export const lagrangianMixAsync = typed.async;

export interface LagrangeMultiplierUpdateOptions {
  /** The multipliers' learning rate, a finite number >= 0. */
  lr: number;
  /** Where to write the new xi (may be xi itself); default a new array of xi's type. */
  out?: Float32Array | Float64Array;
}
const UPDATE_KEYS = knownKeys('lagrangeMultiplierUpdate', ['lr', 'out']);

/**
 * The multipliers' gradient step of Constrained RLHF: `xi_i - lr sigmoid'(xi_i) (J_i - theta_i)`,
 * with `J_i` the i-th reward model's value (e.g. its mean return over the batch) and `theta_i` its
 * threshold: a satisfied constraint (J > theta) lowers its multiplier. In double; a plain function
 * (K scalars), like adaptiveKlCoef. The paper's code steps with SGD momentum 0.9 and clips the
 * gradient norm; this is the plain step (docs/papers/constrained-rlhf.md).
 */
export function lagrangeMultiplierUpdate<X extends Float32Array | Float64Array>(
  xi: X,
  values: ArrayLike<number>,
  thresholds: ArrayLike<number>,
  options: LagrangeMultiplierUpdateOptions,
): X {
  if (!(xi instanceof Float32Array || xi instanceof Float64Array)) {
    throw new TypeError(`xi: expected a Float32Array or a Float64Array, received ${describe(xi)}`);
  }
  const K = xi.length;
  for (const [arr, name] of [[values, 'values'], [thresholds, 'thresholds']] as const) {
    if (arr === null || typeof arr !== 'object' || typeof (arr as ArrayLike<number>).length !== 'number') {
      throw new TypeError(`${name}: expected an array of ${K} numbers, received ${describe(arr)}`);
    }
    if (arr.length !== K) throw new RangeError(`${name}: expected length ${K} (xi.length), received length ${arr.length}`);
  }
  const opts = optionsObject<LagrangeMultiplierUpdateOptions>(options, 'options', true, UPDATE_KEYS) as unknown as Record<string, unknown>;
  const lr = finiteIn(opts.lr, 'options.lr', 0, Infinity);
  let out: Float32Array | Float64Array;
  if (opts.out === undefined) out = new (xi.constructor as Float32ArrayConstructor | Float64ArrayConstructor)(K);
  else {
    const o = opts.out;
    if (!(o instanceof xi.constructor)) {
      throw new TypeError(`options.out: expected a ${xi.constructor.name} (xi's type), received ${describe(o)}`);
    }
    if ((o as Float32Array).length !== K) throw new RangeError(`options.out: expected length ${K}, received length ${(o as Float32Array).length}`);
    out = o as Float32Array | Float64Array;
  }
  const J = new Float64Array(K), th = new Float64Array(K);
  for (let i = 0; i < K; i++) {
    J[i] = finiteIn(values[i], `values[${i}]`, -Infinity, Infinity);
    th[i] = finiteIn(thresholds[i], `thresholds[${i}]`, -Infinity, Infinity);
    if (!Number.isFinite(xi[i])) throw new RangeError(`xi[${i}]: expected a finite number, received ${xi[i]}`);
  }
  for (let i = 0; i < K; i++) {
    const x = xi[i];
    const s = x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
    const sn = -x >= 0 ? 1 / (1 + Math.exp(x)) : Math.exp(-x) / (1 + Math.exp(-x));
    out[i] = x - lr * s * sn * (J[i] - th[i]);
  }
  return out as X;
}
