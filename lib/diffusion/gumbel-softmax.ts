// gumbelSoftmax / gumbelSoftmaxBackward: the Gumbel-softmax sample of DRAKES (docs/papers/drakes.md)
// with its straight-through hard form, from a seed, and the gradient with respect to the logits
// that regenerates the same noise from the seed.
//
// logits z: (N, V) row-major (f32, or bf16 / f16 bits in a Uint16Array), e.g. log q of the
// reverse-process transition (unnormalised is fine: the softmax normalises).
//   g_ij = -ln(-ln u_ij), u_ij uniform in (0, 1) from a counter-based generator keyed by (seed, i, j)
//   y_i = softmax((z_i + g_i) / tau),  index_i = argmax_j (z_ij + g_ij),  hard: sample_i = onehot(index_i)
//   backward: dL/dz_ij = y_ij (G_ij - sum_k y_ik G_ik) / tau, G = dL/dsample (straight-through: the
//   gradient of the hard sample passes to the soft one unchanged)
import { finitePositive, options as optionsObject } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { LOGITS_MIX, LOGITS_OPTIONS, logitsRows, overlaps, readLogits, type Logits, type LogitsDType } from '../logits.js';
import { defineOp, flag, int, knownKeys, num, openOptions, type OptionValues, packOptions, readOptions } from '../op.js';

export interface GumbelSoftmaxOptions {
  /** Vocabulary size V: the logits hold N rows of V values. */
  vocab: number;
  /** 'f32' (default for Float32Arrays); Uint16Arrays need 'bf16' or 'f16'. */
  dtype?: LogitsDType;
  /** The Gumbel-softmax temperature tau > 0. Default 1 (DRAKES `--gumbel_temp`). */
  temperature?: number;
  /** The noise key: an integer in [0, 2^53 - 1]. The same seed gives the same noise on every backend and thread count. Default 0. */
  seed?: number;
  /** Write the one-hot of the argmax (the straight-through forward) instead of the soft sample. Default false. */
  hard?: boolean;
  /** Caller-owned outputs: sample (N * V) f32, index (N) i32. */
  out?: { sample?: Float32Array; index?: Int32Array };
}

export interface GumbelSoftmaxResult {
  /** (N * V): the soft sample y, or the one-hot of `index` with `hard: true`. NaN rows where the row has no distribution. */
  sample: Float32Array;
  /** (N): argmax_j (z_j + g_j), the first on ties; -1 where the row has no distribution. */
  index: Int32Array;
}

export interface GumbelSoftmaxBackwardOptions {
  /** Vocabulary size V. */
  vocab: number;
  /** As in gumbelSoftmax. */
  dtype?: LogitsDType;
  /** The temperature of the forward call. Default 1. */
  temperature?: number;
  /** The seed of the forward call. Default 0. */
  seed?: number;
  /** Caller-owned output: gradient (N * V) f32. */
  out?: { gradient?: Float32Array };
}

export interface GumbelSoftmaxBackwardResult {
  /** dL/dlogits, (N * V). */
  gradient: Float32Array;
}

const seedSpec = int(0, Number.MAX_SAFE_INTEGER, 0);
const GUMBEL_OPTIONS = {
  ...LOGITS_OPTIONS,
  temperature: num(finitePositive, 1),
  seed: seedSpec,
  hard: flag(false),
};
const SHAPE = { temperature: GUMBEL_OPTIONS.temperature, seed: seedSpec, hard: GUMBEL_OPTIONS.hard };
const OUTS = ['sample', 'index'] as const;
const KEYS = knownKeys('gumbelSoftmax', Object.keys(GUMBEL_OPTIONS), ['out']);

type Out = { sample?: unknown; index?: unknown };

const fwd = defineOp({
  name: 'gumbelSoftmax',
  mix: LOGITS_MIX,
  slots: {
    logits: { types: ['f32', 'u16'], shape: 'N*V' },
    sample: { types: ['f32'], shape: 'N*V', out: true },
    index: { types: ['i32'], shape: 'N', out: true },
  },
  options: GUMBEL_OPTIONS,
  prepare(io, ...[logits, options]: [logits: unknown, options: unknown]) {
    const { opts } = openOptions(io, options, true, [], [], OUTS, KEYS);
    const l = readLogits(io, logits, opts);
    const rows = logitsRows(l.logits, l.vocab);
    const shape = readOptions(SHAPE, opts);
    const out = (opts.out === undefined ? {} : optionsObject<Out>(opts.out, 'options.out', true)) as Out;
    const sample = io.out('sample', out.sample, 'options.out.sample', l.logits.length);
    if (overlaps(sample, l.logits)) {
      throw new RangeError('options.out.sample: expected a buffer apart from logits, received one that overlaps them');
    }
    const index = io.out('index', out.index, 'options.out.index', rows);
    if (overlaps(index, l.logits) || overlaps(index, sample)) {
      throw new RangeError('options.out.index: expected a buffer apart from logits and the sample, received one that overlaps them');
    }
    const values: OptionValues<typeof GUMBEL_OPTIONS> = { vocab: l.vocab, dtype: l.dtype, ...shape };
    const result = { sample, index } as GumbelSoftmaxResult;
    return { params: packOptions(GUMBEL_OPTIONS, values), finish: () => result };
  },
});

const BACKWARD_OPTIONS = {
  ...LOGITS_OPTIONS,
  temperature: num(finitePositive, 1),
  seed: seedSpec,
};
const BSHAPE = { temperature: BACKWARD_OPTIONS.temperature, seed: seedSpec };
const BKEYS = knownKeys('gumbelSoftmaxBackward', Object.keys(BACKWARD_OPTIONS), ['out']);

const bwd = defineOp({
  name: 'gumbelSoftmaxBackward',
  mix: LOGITS_MIX,
  slots: {
    logits: { types: ['f32', 'u16'], shape: 'N*V' },
    gradSample: { types: ['f32'], shape: 'N*V' },
    gradient: { types: ['f32'], shape: 'N*V', out: true },
  },
  options: BACKWARD_OPTIONS,
  prepare(io, ...[logits, gradSample, options]: [logits: unknown, gradSample: unknown, options: unknown]) {
    const { opts } = openOptions(io, options, true, [[gradSample, 'gradSample']], [], ['gradient'], BKEYS);
    const l = readLogits(io, logits, opts);
    logitsRows(l.logits, l.vocab);
    const gs = io.read('gradSample', gradSample, 'gradSample', l.logits.length);
    const shape = readOptions(BSHAPE, opts);
    const out = (opts.out === undefined ? {} : optionsObject<{ gradient?: unknown }>(opts.out, 'options.out', true)) as { gradient?: unknown };
    const gradient = io.out('gradient', out.gradient, 'options.out.gradient', l.logits.length);
    if (overlaps(gradient, l.logits) || overlaps(gradient, gs)) {
      throw new RangeError('options.out.gradient: expected a buffer apart from logits and gradSample, received one that overlaps them');
    }
    const values: OptionValues<typeof BACKWARD_OPTIONS> = { vocab: l.vocab, dtype: l.dtype, ...shape };
    const result = { gradient } as GumbelSoftmaxBackwardResult;
    return { params: packOptions(BACKWARD_OPTIONS, values), finish: () => result };
  },
});

/** gumbelSoftmax options when the logits are a DeviceArray: the outputs are DeviceArrays (sample f32, index i32). */
export interface DeviceGumbelSoftmaxOptions extends Omit<GumbelSoftmaxOptions, 'out'> {
  /** Caller-owned DeviceArrays: sample (N * V) f32, index (N) i32. */
  out?: { sample?: DeviceArray; index?: DeviceArray };
}
/** gumbelSoftmax's result on the device (owned by the caller: free() them). */
export interface DeviceGumbelSoftmaxResult {
  sample: DeviceArray<'f32'>;
  index: DeviceArray<'i32'>;
}
/** gumbelSoftmaxBackward options when the logits are a DeviceArray (gradSample an f32 DeviceArray). */
export interface DeviceGumbelSoftmaxBackwardOptions extends Omit<GumbelSoftmaxBackwardOptions, 'out'> {
  /** Caller-owned output: gradient (N * V), an f32 DeviceArray. */
  out?: { gradient?: DeviceArray };
}
/** gumbelSoftmaxBackward's result on the device. */
export interface DeviceGumbelSoftmaxBackwardResult {
  gradient: DeviceArray<'f32'>;
}

/** gumbelSoftmax's signature: host or device by the logits. */
export interface GumbelSoftmaxFn {
  (logits: Logits, options: GumbelSoftmaxOptions): GumbelSoftmaxResult;
  (logits: DeviceArray, options: DeviceGumbelSoftmaxOptions): DeviceGumbelSoftmaxResult;
}
/** gumbelSoftmaxAsync's signature. */
export interface GumbelSoftmaxAsyncFn {
  (logits: Logits, options: GumbelSoftmaxOptions): Promise<GumbelSoftmaxResult>;
  (logits: DeviceArray, options: DeviceGumbelSoftmaxOptions): Promise<DeviceGumbelSoftmaxResult>;
}
/** gumbelSoftmaxBackward's signature: host or device by the logits. */
export interface GumbelSoftmaxBackwardFn {
  (logits: Logits, gradSample: Float32Array, options: GumbelSoftmaxBackwardOptions): GumbelSoftmaxBackwardResult;
  (logits: DeviceArray, gradSample: DeviceArray, options: DeviceGumbelSoftmaxBackwardOptions): DeviceGumbelSoftmaxBackwardResult;
}
/** gumbelSoftmaxBackwardAsync's signature. */
export interface GumbelSoftmaxBackwardAsyncFn {
  (logits: Logits, gradSample: Float32Array, options: GumbelSoftmaxBackwardOptions): Promise<GumbelSoftmaxBackwardResult>;
  (logits: DeviceArray, gradSample: DeviceArray, options: DeviceGumbelSoftmaxBackwardOptions): Promise<DeviceGumbelSoftmaxBackwardResult>;
}

const f = fwd.as<GumbelSoftmaxFn, GumbelSoftmaxAsyncFn>();
const b = bwd.as<GumbelSoftmaxBackwardFn, GumbelSoftmaxBackwardAsyncFn>();

/**
 * The Gumbel-softmax sample of each logit row (DRAKES): y = softmax((z + g) / tau) with standard
 * Gumbel noise g drawn from `seed` by a counter-based generator (the same noise on every thread count
 * and backend), and the argmax index; with `hard: true` the sample is the one-hot of the index (the
 * straight-through forward). Reads the logits twice (once with `hard`); no (N, V) temporary.
 *
 * @example
 * const { sample, index } = gumbelSoftmax(logQ, { vocab: 5, temperature: 1, seed: 42, hard: true });
 */
export const gumbelSoftmax = f.sync;
/** gumbelSoftmax on a worker thread; leave its buffers untouched until it settles. */
export const gumbelSoftmaxAsync = f.async;
/**
 * dL/dlogits of gumbelSoftmax from dL/dsample, for the same `seed` and `temperature`: the noise is
 * regenerated, not stored. With `hard: true` forward this is the straight-through gradient.
 */
export const gumbelSoftmaxBackward = b.sync;
/** gumbelSoftmaxBackward on a worker thread; leave its buffers untouched until it settles. */
export const gumbelSoftmaxBackwardAsync = b.async;
