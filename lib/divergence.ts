// Full-vocabulary divergences between two logit rows (KERNELS.md section 3, `vocabDivergence`).
//
// logits (student), targetLogits (teacher / reference): (N, V) row-major, the same dtype.
//   p = softmax(logits / tau),  q = softmax(targetLogits / tau)
//   forward_kl  KL(q || p)           dD/dz = (p - q) / tau
//   reverse_kl  KL(p || q)           dD/dz = p (log p - log q - D) / tau
//   jsd (beta)  beta KL(q || m) + (1 - beta) KL(p || m),  m = beta q + (1 - beta) p
//                                    dD/dz = (1 - beta) p (log(p / m) - KL(p || m)) / tau
import {
  boolean,
  describe,
  finiteIn,
  finitePositive,
  integer,
  oneOf,
  options as optionsObject,
  outFloat32,
  typedArray,
  typedArrayOfLength,
} from './check.js';
import {
  alloc,
  cudaNative,
  DeviceArray,
  deviceArg,
  devicePointer,
  rejectDevice,
  runDevice,
  runDeviceAsync,
  type DeviceCall,
} from './cuda.js';
import type { Logits, LogitsDType } from './logprobs.js';
import { binding } from './native.js';

export type DivergenceKind = 'forward_kl' | 'reverse_kl' | 'jsd';

export interface VocabDivergenceOptions {
  /** Vocabulary size V: both logit arrays hold N rows of V values. */
  vocab: number;
  /** 'f32' (default for Float32Arrays); Uint16Arrays need 'bf16' or 'f16'. Applies to both inputs. */
  dtype?: LogitsDType;
  /**
   * 'forward_kl' KL(P_target || P), 'reverse_kl' KL(P || P_target), or 'jsd' (generalised
   * Jensen-Shannon with mixture weight `beta`). Default 'jsd' (TRL GKD / Liger JSD).
   */
  divergence?: DivergenceKind;
  /**
   * jsd mixture weight of the target distribution, in [0, 1]: m = beta q + (1 - beta) p. Default
   * 0.5 (TRL `GKDConfig.beta`, Liger `LigerJSD`). As in TRL and Liger, beta = 0 gives forward_kl
   * and beta = 1 reverse_kl. Ignored by the kl kinds.
   */
  beta?: number;
  /** Divides both logit rows before the softmax. Default 1. The gradient includes its 1/tau. */
  temperature?: number;
  /** Per-row labels (N): rows whose label equals `ignoreIndex` give 0 and a zero gradient row. */
  labels?: Int32Array;
  /** The label of ignored rows. Default -100. */
  ignoreIndex?: number;
  /** Per-row mask (N): rows with 0 give 0 and a zero gradient row. */
  mask?: Uint8Array;
  /** Also return dL/dlogits, (N * V) f32. Default false. */
  gradient?: boolean;
  /** dL/dD per row: a number for every row or a Float32Array (N). Default 1 (L = sum_r D_r). */
  gradOutput?: number | Float32Array;
  /** Write the gradient over the (f32) logits themselves. Needs `gradient: true`. Default false. */
  inPlace?: boolean;
  /** Caller-owned outputs: divergence (N), gradient (N * V). */
  out?: { divergence?: Float32Array; gradient?: Float32Array };
}

export interface VocabDivergenceResult {
  /** Divergence per row, (N), in nats. */
  divergence: Float32Array;
  /** dL/dlogits, (N * V), when `gradient: true`. */
  gradient?: Float32Array;
}

/**
 * vocabDivergence options when the logits are a DeviceArray: every array is a DeviceArray (labels
 * i32, mask u8, a per-row gradOutput and the outputs f32), and the outputs are DeviceArrays too.
 */
export interface DeviceVocabDivergenceOptions
  extends Omit<VocabDivergenceOptions, 'labels' | 'mask' | 'gradOutput' | 'out'> {
  /** Per-row labels, an i32 DeviceArray (N): rows whose label equals `ignoreIndex` give 0 and a zero gradient row. */
  labels?: DeviceArray;
  /** Per-row mask, a u8 DeviceArray (N): rows with 0 give 0 and a zero gradient row. */
  mask?: DeviceArray;
  /** dL/dD per row: a number for every row or an f32 DeviceArray (N). Default 1. */
  gradOutput?: number | DeviceArray;
  /** Caller-owned f32 DeviceArrays: divergence (N), gradient (N * V). */
  out?: { divergence?: DeviceArray; gradient?: DeviceArray };
}

/** vocabDivergence's result on the device: f32 DeviceArrays (owned by the caller: free() them). */
export interface DeviceVocabDivergenceResult {
  /** Divergence per row, (N), in nats. */
  divergence: DeviceArray<'f32'>;
  /** dL/dlogits, (N * V), when `gradient: true` (the logits themselves with `inPlace: true`). */
  gradient?: DeviceArray<'f32'>;
}

interface DivergenceBinding {
  vocabDivergence(...args: unknown[]): undefined;
  vocabDivergenceAsync(...args: unknown[]): Promise<undefined>;
}
const native = binding<DivergenceBinding>();

const DTYPE_CODE: Record<LogitsDType, number> = { f32: 0, bf16: 1, f16: 2 };
const KINDS = ['forward_kl', 'reverse_kl', 'jsd'] as const;
const MAX_VOCAB = 2 ** 31 - 1;

function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.buffer !== b.buffer || a.byteLength === 0 || b.byteLength === 0) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

function prepare(logits: unknown, targetLogits: unknown, options: unknown) {
  const opts = optionsObject<VocabDivergenceOptions>(options, 'options', true);
  rejectDevice(targetLogits, 'targetLogits');
  rejectDevice(opts.labels, 'options.labels');
  rejectDevice(opts.mask, 'options.mask');
  rejectDevice(opts.gradOutput, 'options.gradOutput');
  if (opts.out !== null && typeof opts.out === 'object') {
    rejectDevice(opts.out.divergence, 'options.out.divergence');
    rejectDevice(opts.out.gradient, 'options.out.gradient');
  }
  const vocab = integer(opts.vocab, 'options.vocab', 1, MAX_VOCAB);
  let dtype: LogitsDType;
  if (logits instanceof Float32Array) {
    dtype = opts.dtype === undefined ? 'f32' : oneOf(opts.dtype, 'options.dtype', ['f32', 'bf16', 'f16'] as const);
    if (dtype !== 'f32') {
      throw new TypeError(`options.dtype: a Float32Array holds 'f32' logits, received '${dtype}' (bf16/f16 logits go in a Uint16Array)`);
    }
  } else if (logits instanceof Uint16Array) {
    if (opts.dtype === undefined) {
      throw new TypeError("options.dtype: a Uint16Array of logits needs dtype 'bf16' or 'f16', received undefined");
    }
    dtype = oneOf(opts.dtype, 'options.dtype', ['f32', 'bf16', 'f16'] as const);
    if (dtype === 'f32') {
      throw new TypeError("options.dtype: a Uint16Array holds 'bf16' or 'f16' logits, received 'f32' (f32 logits go in a Float32Array)");
    }
  } else {
    throw new TypeError(`logits: expected a Float32Array (f32) or a Uint16Array (bf16/f16), received ${describe(logits)}`);
  }
  const ctor = logits instanceof Float32Array ? Float32Array : Uint16Array;
  typedArray(logits, 'logits', ctor);
  if (!(targetLogits instanceof ctor)) {
    throw new TypeError(`targetLogits: expected a ${ctor.name} like logits (dtype '${dtype}'), received ${describe(targetLogits)}`);
  }
  typedArray(targetLogits, 'targetLogits', ctor);
  if (logits.length % vocab !== 0) {
    throw new RangeError(`logits: expected a length that is a multiple of vocab (${vocab}), received length ${logits.length}`);
  }
  if (targetLogits.length !== logits.length) {
    throw new RangeError(`targetLogits: expected the shape of logits, length ${logits.length} (${logits.length / vocab} x ${vocab}), received length ${targetLogits.length}`);
  }
  const rows = logits.length / vocab;
  const kind = opts.divergence === undefined ? 'jsd' : oneOf(opts.divergence, 'options.divergence', KINDS);
  const beta = opts.beta === undefined ? 0.5 : finiteIn(opts.beta, 'options.beta', 0, 1);
  const temperature = opts.temperature === undefined ? 1 : finitePositive(opts.temperature, 'options.temperature');

  // Row mask: from `mask`, `labels`/`ignoreIndex`, or both (a row counts when both keep it).
  let rowMask: Uint8Array | null = opts.mask === undefined ? null : typedArrayOfLength(opts.mask, 'options.mask', Uint8Array, rows);
  if (opts.ignoreIndex !== undefined && opts.labels === undefined) {
    throw new TypeError('options.ignoreIndex: expected options.labels alongside it, received no labels');
  }
  if (opts.labels !== undefined) {
    const labels = typedArrayOfLength(opts.labels, 'options.labels', Int32Array, rows);
    const ignore = opts.ignoreIndex === undefined ? -100 : integer(opts.ignoreIndex, 'options.ignoreIndex', -(2 ** 31), 2 ** 31 - 1);
    const m = new Uint8Array(rows);
    for (let r = 0; r < rows; r++) m[r] = labels[r] !== ignore && (rowMask === null || rowMask[r] !== 0) ? 1 : 0;
    rowMask = m;
  }

  const wantGrad = opts.gradient === undefined ? false : boolean(opts.gradient, 'options.gradient');
  const inPlace = opts.inPlace === undefined ? false : boolean(opts.inPlace, 'options.inPlace');
  const out = opts.out === undefined ? {} : optionsObject<NonNullable<VocabDivergenceOptions['out']>>(opts.out, 'options.out', true);
  let gradScale = 1;
  let gradRows: Float32Array | null = null;
  if (opts.gradOutput !== undefined) {
    if (!wantGrad) throw new TypeError('options.gradOutput: expected gradient: true alongside it, received gradient: false');
    if (typeof opts.gradOutput === 'number') gradScale = finiteIn(opts.gradOutput, 'options.gradOutput', -Infinity, Infinity);
    else gradRows = typedArrayOfLength(opts.gradOutput, 'options.gradOutput', Float32Array, rows);
  }
  const result: VocabDivergenceResult = { divergence: outFloat32(out.divergence, 'options.out.divergence', rows) };
  if (inPlace && !wantGrad) {
    throw new TypeError('options.inPlace: expected gradient: true alongside it, received gradient: false');
  }
  if (!wantGrad && out.gradient !== undefined) {
    throw new TypeError('options.out.gradient: expected gradient: true alongside it, received gradient: false');
  }
  if (wantGrad) {
    let g: Float32Array;
    if (inPlace) {
      if (dtype !== 'f32') {
        throw new TypeError(`options.inPlace: the gradient can overwrite f32 logits only, received dtype '${dtype}'`);
      }
      if (out.gradient !== undefined && out.gradient !== logits) {
        throw new TypeError('options.out.gradient: expected no buffer (or the logits themselves) with inPlace: true, received another array');
      }
      g = logits as Float32Array;
    } else {
      g = outFloat32(out.gradient, 'options.out.gradient', logits.length);
      if (overlaps(g, logits)) {
        throw new RangeError('options.out.gradient: expected a buffer apart from logits (or inPlace: true), received one that overlaps them');
      }
    }
    if (overlaps(g, targetLogits)) {
      throw new RangeError('options.out.gradient: expected a buffer apart from targetLogits, received one that overlaps them');
    }
    if (overlaps(result.divergence, g)) {
      throw new RangeError('options.out.divergence: expected a buffer apart from the gradient, received one that overlaps it');
    }
    result.gradient = g;
  }
  const args = [
    logits, targetLogits, DTYPE_CODE[dtype], vocab, KINDS.indexOf(kind), beta, temperature, rowMask,
    result.divergence, gradScale, gradRows, result.gradient ?? null,
  ];
  return { args, result };
}

// ---- device path (logits in a DeviceArray; lib/cuda.ts, cuda/divergence.h) --------------------

interface CudaDivergenceBinding {
  vocabDivergence(...args: unknown[]): undefined;
  vocabDivergenceAsync(...args: unknown[]): Promise<undefined>;
}
const cudaDivergence = () => cudaNative('vocabDivergence') as unknown as CudaDivergenceBinding;

/** A prepared device call: its arguments, the arrays it uses, and the outputs it allocated. */

/** True when the device byte ranges of a and b overlap (empty arrays overlap nothing). */
function deviceOverlaps(a: DeviceArray, b: DeviceArray): boolean {
  if (a.byteLength === 0 || b.byteLength === 0) return false;
  const a0 = a.ptr, a1 = a0 + BigInt(a.byteLength);
  const b0 = b.ptr, b1 = b0 + BigInt(b.byteLength);
  return a0 < b1 && b0 < a1;
}

function prepareDevice(logits: DeviceArray, targetLogits: unknown, options: unknown): DeviceCall<DeviceVocabDivergenceResult> {
  const opts = optionsObject<DeviceVocabDivergenceOptions>(options, 'options', true);
  const vocab = integer(opts.vocab, 'options.vocab', 1, MAX_VOCAB);
  deviceArg(logits, 'logits', ['f32', 'bf16', 'f16'], undefined);
  const dtype = logits.dtype as LogitsDType;
  if (opts.dtype !== undefined && oneOf(opts.dtype, 'options.dtype', ['f32', 'bf16', 'f16'] as const) !== dtype) {
    throw new TypeError(`options.dtype: the logits DeviceArray holds '${dtype}' values, received '${opts.dtype}'`);
  }
  if (logits.length % vocab !== 0) {
    throw new RangeError(`logits: expected a length that is a multiple of vocab (${vocab}), received length ${logits.length}`);
  }
  const rows = logits.length / vocab;
  const target = deviceArg(targetLogits, 'targetLogits', [dtype], undefined);
  if (target.length !== logits.length) {
    throw new RangeError(`targetLogits: expected the shape of logits, length ${logits.length} (${rows} x ${vocab}), received length ${target.length}`);
  }
  const kind = opts.divergence === undefined ? 'jsd' : oneOf(opts.divergence, 'options.divergence', KINDS);
  const beta = opts.beta === undefined ? 0.5 : finiteIn(opts.beta, 'options.beta', 0, 1);
  const temperature = opts.temperature === undefined ? 1 : finitePositive(opts.temperature, 'options.temperature');
  const mask = opts.mask === undefined ? null : deviceArg(opts.mask, 'options.mask', ['u8'], rows);
  if (opts.ignoreIndex !== undefined && opts.labels === undefined) {
    throw new TypeError('options.ignoreIndex: expected options.labels alongside it, received no labels');
  }
  const labels = opts.labels === undefined ? null : deviceArg(opts.labels, 'options.labels', ['i32'], rows);
  const ignore = opts.ignoreIndex === undefined ? -100 : integer(opts.ignoreIndex, 'options.ignoreIndex', -(2 ** 31), 2 ** 31 - 1);

  const wantGrad = opts.gradient === undefined ? false : boolean(opts.gradient, 'options.gradient');
  const inPlace = opts.inPlace === undefined ? false : boolean(opts.inPlace, 'options.inPlace');
  const out = opts.out === undefined ? {} : optionsObject<NonNullable<DeviceVocabDivergenceOptions['out']>>(opts.out, 'options.out', true);
  let gradScale = 1;
  let gradRows: DeviceArray | null = null;
  if (opts.gradOutput !== undefined) {
    if (!wantGrad) throw new TypeError('options.gradOutput: expected gradient: true alongside it, received gradient: false');
    if (typeof opts.gradOutput === 'number') gradScale = finiteIn(opts.gradOutput, 'options.gradOutput', -Infinity, Infinity);
    else gradRows = deviceArg(opts.gradOutput, 'options.gradOutput', ['f32'], rows);
  }
  const divOut = out.divergence === undefined ? undefined : deviceArg(out.divergence, 'options.out.divergence', ['f32'], rows);
  if (inPlace && !wantGrad) {
    throw new TypeError('options.inPlace: expected gradient: true alongside it, received gradient: false');
  }
  if (!wantGrad && out.gradient !== undefined) {
    throw new TypeError('options.out.gradient: expected gradient: true alongside it, received gradient: false');
  }
  let gradOut: DeviceArray | undefined;
  if (wantGrad) {
    if (inPlace) {
      if (dtype !== 'f32') {
        throw new TypeError(`options.inPlace: the gradient can overwrite f32 logits only, received dtype '${dtype}'`);
      }
      if (out.gradient !== undefined && out.gradient !== logits) {
        throw new TypeError('options.out.gradient: expected no buffer (or the logits themselves) with inPlace: true, received another array');
      }
      gradOut = logits;
    } else if (out.gradient !== undefined) {
      gradOut = deviceArg(out.gradient, 'options.out.gradient', ['f32'], logits.length);
      if (deviceOverlaps(gradOut, logits)) {
        throw new RangeError('options.out.gradient: expected a buffer apart from logits (or inPlace: true), received one that overlaps them');
      }
    }
    if (gradOut && deviceOverlaps(gradOut, target)) {
      throw new RangeError('options.out.gradient: expected a buffer apart from targetLogits, received one that overlaps them');
    }
  }
  if (divOut) {
    // The divergence is written while other blocks still read the rows: it must not alias them.
    for (const [a, name] of [[logits, 'logits'], [target, 'targetLogits'], [gradOut, 'the gradient']] as const) {
      if (a && deviceOverlaps(divOut, a)) {
        throw new RangeError(`options.out.divergence: expected a buffer apart from ${name}, received one that overlaps ${name === 'the gradient' ? 'it' : 'them'}`);
      }
    }
  }
  // Allocations last: nothing above can throw after memory is taken.
  const allocated: DeviceArray[] = [];
  const make = (a: DeviceArray | undefined, n: number) => {
    if (a) return a as DeviceArray<'f32'>;
    const b = alloc('f32', n);
    allocated.push(b);
    return b;
  };
  const result: DeviceVocabDivergenceResult = { divergence: make(divOut, rows) };
  if (wantGrad) {
    try {
      result.gradient = make(gradOut, logits.length);
    } catch (err) {
      for (const a of allocated) a.free();
      throw err;
    }
  }
  const ptr = devicePointer;
  const args = [
    ptr(logits, 'logits'), logits.length, ptr(target, 'targetLogits'), target.length, DTYPE_CODE[dtype], vocab,
    KINDS.indexOf(kind), beta, temperature,
    mask ? ptr(mask, 'options.mask') : null, rows, labels ? ptr(labels, 'options.labels') : null, rows, ignore,
    result.divergence.ptr, rows, gradScale, gradRows ? ptr(gradRows, 'options.gradOutput') : null, rows,
    result.gradient ? result.gradient.ptr : null, logits.length,
  ];
  const used = [logits, target, result.divergence, ...[mask, labels, gradRows, result.gradient ?? null].filter((a): a is DeviceArray => a !== null)];
  return { args, used, allocated, finish: () => result };
}



// ---- public functions ------------------------------------------------------------------------

/**
 * Per-row divergence between the student's `logits` and `targetLogits` (teacher or reference
 * policy) over the whole vocabulary, and on request its gradient with respect to `logits`. The
 * kl kinds read both rows once (online log-sum-exp of both); jsd reads them twice. No (N, V)
 * temporary is allocated besides the gradient you ask for.
 *
 * With DeviceArrays (both logit tensors of the same dtype f32/bf16/f16, labels i32, mask u8, a
 * per-row gradOutput f32) the kernel runs on the GPU and the divergence and gradient are f32
 * DeviceArrays (owned by the caller: free() them, or let GC do it). The call waits for the device.
 *
 * @example
 * // GKD / on-policy distillation loss with TRL's defaults (jsd, beta 0.5), mean over tokens
 * const { divergence, gradient } = vocabDivergence(student, teacher, {
 *   vocab: 151936, labels, gradient: true, gradOutput: 1 / numTokens,
 * });
 */
export function vocabDivergence(logits: Logits, targetLogits: Logits, options: VocabDivergenceOptions): VocabDivergenceResult;
export function vocabDivergence(
  logits: DeviceArray,
  targetLogits: DeviceArray,
  options: DeviceVocabDivergenceOptions,
): DeviceVocabDivergenceResult;
export function vocabDivergence(
  logits: Logits | DeviceArray,
  targetLogits: Logits | DeviceArray,
  options: VocabDivergenceOptions | DeviceVocabDivergenceOptions,
): VocabDivergenceResult | DeviceVocabDivergenceResult {
  if (logits instanceof DeviceArray) return runDevice(prepareDevice(logits, targetLogits, options), cudaDivergence().vocabDivergence);
  const { args, result } = prepare(logits, targetLogits, options);
  native.vocabDivergence(...args);
  return result;
}

/** vocabDivergence on a worker thread; the buffers must stay untouched until it settles. */
export function vocabDivergenceAsync(
  logits: Logits,
  targetLogits: Logits,
  options: VocabDivergenceOptions,
): Promise<VocabDivergenceResult>;
export function vocabDivergenceAsync(
  logits: DeviceArray,
  targetLogits: DeviceArray,
  options: DeviceVocabDivergenceOptions,
): Promise<DeviceVocabDivergenceResult>;
export async function vocabDivergenceAsync(
  logits: Logits | DeviceArray,
  targetLogits: Logits | DeviceArray,
  options: VocabDivergenceOptions | DeviceVocabDivergenceOptions,
): Promise<VocabDivergenceResult | DeviceVocabDivergenceResult> {
  if (logits instanceof DeviceArray) return runDeviceAsync(prepareDevice(logits, targetLogits, options), cudaDivergence().vocabDivergenceAsync);
  const { args, result } = prepare(logits, targetLogits, options);
  await native.vocabDivergenceAsync(...args);
  return result;
}
