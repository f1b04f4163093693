// Token log-probs over a vocabulary (KERNELS.md section 1).
//
// logits: (N, V) row-major as f32 (Float32Array) or bf16/f16 (Uint16Array + dtype); targets: (N) Int32.
//   z' = z / tau,  lse = log sum_j exp(z'_j),  logp = z'_y - lse,  H = lse - sum_j p_j z'_j
//   dL/dz_j = (1/tau) ( g (1[j=y] - p_j) - h p_j (z'_j - lse + H) ),  g = dL/dlogp, h = dL/dH
import {
  boolean,
  describe,
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
import { binding } from './native.js';

export type LogitsDType = 'f32' | 'bf16' | 'f16';
/** Logits: a Float32Array (f32) or a Uint16Array holding bf16 or f16 bit patterns. */
export type Logits = Float32Array | Uint16Array;

export interface TokenLogprobsOptions {
  /** Vocabulary size V: logits hold N rows of V values. */
  vocab: number;
  /** 'f32' (default for a Float32Array); a Uint16Array needs 'bf16' or 'f16'. */
  dtype?: LogitsDType;
  /** Divides the logits before the softmax. Default 1. */
  temperature?: number;
  /** Also return the entropy of each row's distribution. Default false. */
  entropy?: boolean;
  /** Rows whose target equals this give logp = 0, entropy = 0, logsumexp = 0. Default -100. */
  ignoreIndex?: number;
  /** Caller-owned outputs (length N each), so a training loop allocates nothing. */
  out?: { logprobs?: Float32Array; logsumexp?: Float32Array; entropy?: Float32Array };
}

export interface TokenLogprobsResult {
  /** log p(target) per row, (N). */
  logprobs: Float32Array;
  /** log sum_j exp(z_j / tau) per row, (N): reusable by the backward pass. */
  logsumexp: Float32Array;
  /** Entropy per row, (N), when `entropy: true`. */
  entropy?: Float32Array;
}

export interface TokenLogprobsBackwardOptions {
  vocab: number;
  dtype?: LogitsDType;
  temperature?: number;
  ignoreIndex?: number;
  /** dL/dH per row (N) when the loss uses the entropy. */
  gradEntropy?: Float32Array;
  /** The forward pass's logsumexp: skips the statistics pass (one read of the logits instead of two). */
  logsumexp?: Float32Array;
  /** The forward pass's entropy: needed with gradEntropy for the one-read path. */
  entropy?: Float32Array;
  /** Write the gradient over the (f32) logits themselves. Default false. */
  inPlace?: boolean;
  /** Caller-owned gradient buffer, (N * V). */
  out?: Float32Array;
}

/** tokenLogprobs options when the logits are a DeviceArray: outputs are DeviceArrays too. */
export interface DeviceTokenLogprobsOptions extends Omit<TokenLogprobsOptions, 'out'> {
  /** Caller-owned f32 DeviceArrays of length N. */
  out?: { logprobs?: DeviceArray; logsumexp?: DeviceArray; entropy?: DeviceArray };
}

/** tokenLogprobs' result on the device: f32 DeviceArrays of length N (owned by the caller: free() them). */
export interface DeviceTokenLogprobsResult {
  logprobs: DeviceArray<'f32'>;
  logsumexp: DeviceArray<'f32'>;
  entropy?: DeviceArray<'f32'>;
}

/** tokenLogprobsBackward options when the logits are a DeviceArray: every array is an f32 DeviceArray. */
export interface DeviceTokenLogprobsBackwardOptions
  extends Omit<TokenLogprobsBackwardOptions, 'gradEntropy' | 'logsumexp' | 'entropy' | 'out'> {
  gradEntropy?: DeviceArray;
  logsumexp?: DeviceArray;
  entropy?: DeviceArray;
  out?: DeviceArray;
}

interface LogprobsBinding {
  tokenLogprobs(...args: unknown[]): undefined;
  tokenLogprobsAsync(...args: unknown[]): Promise<undefined>;
  tokenLogprobsBackward(...args: unknown[]): undefined;
  tokenLogprobsBackwardAsync(...args: unknown[]): Promise<undefined>;
}
const native = binding<LogprobsBinding>();

const DTYPE_CODE: Record<LogitsDType, number> = { f32: 0, bf16: 1, f16: 2 };
const MAX_VOCAB = 2 ** 31 - 1;

interface Common {
  logits: Logits;
  dtype: LogitsDType;
  vocab: number;
  rows: number;
  targets: Int32Array;
  temperature: number;
  ignoreIndex: number;
}

/** temperature and ignoreIndex, the same checks for host and device logits. */
function checkScalars(opts: Partial<CommonOptions>): { temperature: number; ignoreIndex: number } {
  const temperature = opts.temperature === undefined ? 1 : finitePositive(opts.temperature, 'options.temperature');
  const ignoreIndex = opts.ignoreIndex === undefined ? -100 : integer(opts.ignoreIndex, 'options.ignoreIndex', -(2 ** 31), MAX_VOCAB);
  return { temperature, ignoreIndex };
}

/** Validates logits, dtype, vocab, targets, temperature and ignoreIndex. */
type CommonOptions = Pick<TokenLogprobsOptions, 'vocab' | 'dtype' | 'temperature' | 'ignoreIndex'>;

function checkCommon(logits: unknown, targets: unknown, opts: Partial<CommonOptions>): Common {
  rejectDevice(targets, 'targets');
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
  typedArray(logits, 'logits', logits instanceof Float32Array ? Float32Array : Uint16Array);
  if (logits.length % vocab !== 0) {
    throw new RangeError(`logits: expected a length that is a multiple of vocab (${vocab}), received length ${logits.length}`);
  }
  const rows = logits.length / vocab;
  const t = typedArrayOfLength(targets, 'targets', Int32Array, rows);
  const { temperature, ignoreIndex } = checkScalars(opts);
  for (let r = 0; r < rows; r++) {
    const y = t[r];
    if (y !== ignoreIndex && (y < 0 || y >= vocab)) {
      throw new RangeError(`targets[${r}]: expected an id in [0, ${vocab}) or ignoreIndex (${ignoreIndex}), received ${y}`);
    }
  }
  return { logits, dtype, vocab, rows, targets: t, temperature, ignoreIndex };
}

function forwardArgs(logits: unknown, targets: unknown, options: unknown) {
  const opts = optionsObject<TokenLogprobsOptions>(options, 'options', true);
  const c = checkCommon(logits, targets, opts);
  const wantEntropy = opts.entropy === undefined ? false : boolean(opts.entropy, 'options.entropy');
  const out = opts.out === undefined ? {} : optionsObject<NonNullable<TokenLogprobsOptions['out']>>(opts.out, 'options.out', true);
  rejectDevice(out.logprobs, 'options.out.logprobs');
  rejectDevice(out.logsumexp, 'options.out.logsumexp');
  rejectDevice(out.entropy, 'options.out.entropy');
  const result: TokenLogprobsResult = {
    logprobs: outFloat32(out.logprobs, 'options.out.logprobs', c.rows),
    logsumexp: outFloat32(out.logsumexp, 'options.out.logsumexp', c.rows),
  };
  if (wantEntropy) result.entropy = outFloat32(out.entropy, 'options.out.entropy', c.rows);
  const args = [
    c.logits, DTYPE_CODE[c.dtype], c.vocab, c.targets, c.temperature, c.ignoreIndex,
    result.logprobs, result.logsumexp, result.entropy ?? null,
  ];
  return { args, result };
}

function backwardArgs(logits: unknown, targets: unknown, gradLogprobs: unknown, options: unknown) {
  const opts = optionsObject<TokenLogprobsBackwardOptions>(options, 'options', true);
  const c = checkCommon(logits, targets, opts);
  const n = c.rows;
  for (const [v, name] of [
    [gradLogprobs, 'gradLogprobs'], [opts.gradEntropy, 'options.gradEntropy'], [opts.logsumexp, 'options.logsumexp'],
    [opts.entropy, 'options.entropy'], [opts.out, 'options.out'],
  ] as const) rejectDevice(v, name);
  const g = typedArrayOfLength(gradLogprobs, 'gradLogprobs', Float32Array, n);
  const opt = (v: unknown, name: string) => (v === undefined ? null : typedArrayOfLength(v, name, Float32Array, n));
  const gradEntropy = opt(opts.gradEntropy, 'options.gradEntropy');
  const lse = opt(opts.logsumexp, 'options.logsumexp');
  const entropy = opt(opts.entropy, 'options.entropy');
  const inPlace = opts.inPlace === undefined ? false : boolean(opts.inPlace, 'options.inPlace');
  let out: Float32Array;
  if (inPlace) {
    if (c.dtype !== 'f32') {
      throw new TypeError(`options.inPlace: the gradient can overwrite f32 logits only, received dtype '${c.dtype}'`);
    }
    if (opts.out !== undefined && opts.out !== logits) {
      throw new TypeError('options.out: expected no out buffer (or the logits themselves) with inPlace: true, received another array');
    }
    out = c.logits as Float32Array;
  } else {
    out = outFloat32(opts.out, 'options.out', c.logits.length);
    if (out.buffer === c.logits.buffer && out !== c.logits) {
      const a0 = out.byteOffset, a1 = a0 + out.byteLength;
      const b0 = c.logits.byteOffset, b1 = b0 + c.logits.byteLength;
      if (a0 < b1 && b0 < a1) throw new RangeError('options.out: expected a buffer apart from logits (or inPlace: true), received one that overlaps them');
    }
  }
  const args = [
    c.logits, DTYPE_CODE[c.dtype], c.vocab, c.targets, c.temperature, c.ignoreIndex,
    g, gradEntropy, lse, entropy, out,
  ];
  return { args, out };
}

// ---- device path (logits in a DeviceArray; lib/cuda.ts, cuda/logprobs.h) ----------------------

interface CudaLogprobsBinding {
  tokenLogprobs(...args: unknown[]): undefined;
  tokenLogprobsAsync(...args: unknown[]): Promise<undefined>;
  tokenLogprobsBackward(...args: unknown[]): undefined;
  tokenLogprobsBackwardAsync(...args: unknown[]): Promise<undefined>;
}

const ptr = devicePointer;

/** A prepared device call: its arguments, the arrays it uses, and the outputs it allocated. */

/** Logits (f32/bf16/f16 DeviceArray), dtype, vocab, targets (i32 DeviceArray), temperature, ignoreIndex. */
function checkDeviceCommon(logits: DeviceArray, targets: unknown, opts: Partial<CommonOptions>) {
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
  const t = deviceArg(targets, 'targets', ['i32'], rows);
  const { temperature, ignoreIndex } = checkScalars(opts);
  return { dtype, vocab, rows, targets: t, temperature, ignoreIndex };
}

function deviceForward(logits: DeviceArray, targets: unknown, options: unknown): DeviceCall<DeviceTokenLogprobsResult> {
  const opts = optionsObject<DeviceTokenLogprobsOptions>(options, 'options', true);
  const c = checkDeviceCommon(logits, targets, opts);
  const wantEntropy = opts.entropy === undefined ? false : boolean(opts.entropy, 'options.entropy');
  const out = opts.out === undefined ? {} : optionsObject<NonNullable<DeviceTokenLogprobsOptions['out']>>(opts.out, 'options.out', true);
  const n = c.rows;
  const given = (v: unknown, name: string) => (v === undefined ? undefined : deviceArg(v, name, ['f32'], n));
  const logp = given(out.logprobs, 'options.out.logprobs');
  const lse = given(out.logsumexp, 'options.out.logsumexp');
  const ent = wantEntropy ? given(out.entropy, 'options.out.entropy') : undefined;
  const allocated: DeviceArray[] = [];
  const make = (a: DeviceArray | undefined) => {
    if (a) return a as DeviceArray<'f32'>;
    const b = alloc('f32', n);
    allocated.push(b);
    return b;
  };
  const result: DeviceTokenLogprobsResult = { logprobs: make(logp), logsumexp: make(lse) };
  if (wantEntropy) result.entropy = make(ent);
  const args = [
    ptr(logits, 'logits'), logits.length, DTYPE_CODE[c.dtype], c.vocab, ptr(c.targets, 'targets'), n,
    c.temperature, c.ignoreIndex,
    result.logprobs.ptr, n, result.logsumexp.ptr, n, result.entropy ? result.entropy.ptr : null, n,
  ];
  const used = [logits, c.targets, result.logprobs, result.logsumexp, ...(result.entropy ? [result.entropy] : [])];
  return { args, used, allocated, finish: () => result };
}

function deviceBackward(logits: DeviceArray, targets: unknown, gradLogprobs: unknown, options: unknown): DeviceCall<DeviceArray<'f32'>> {
  const opts = optionsObject<DeviceTokenLogprobsBackwardOptions>(options, 'options', true);
  const c = checkDeviceCommon(logits, targets, opts);
  const n = c.rows;
  const g = deviceArg(gradLogprobs, 'gradLogprobs', ['f32'], n);
  const opt = (v: unknown, name: string) => (v === undefined ? null : deviceArg(v, name, ['f32'], n));
  const gradEntropy = opt(opts.gradEntropy, 'options.gradEntropy');
  const lse = opt(opts.logsumexp, 'options.logsumexp');
  const entropy = opt(opts.entropy, 'options.entropy');
  const inPlace = opts.inPlace === undefined ? false : boolean(opts.inPlace, 'options.inPlace');
  const allocated: DeviceArray[] = [];
  let out: DeviceArray<'f32'>;
  if (inPlace) {
    if (c.dtype !== 'f32') {
      throw new TypeError(`options.inPlace: the gradient can overwrite f32 logits only, received dtype '${c.dtype}'`);
    }
    if (opts.out !== undefined && opts.out !== logits) {
      throw new TypeError('options.out: expected no out buffer (or the logits themselves) with inPlace: true, received another array');
    }
    out = logits as DeviceArray<'f32'>;
  } else if (opts.out !== undefined) {
    out = deviceArg(opts.out, 'options.out', ['f32'], logits.length) as DeviceArray<'f32'>;
    const a0 = out.ptr, a1 = a0 + BigInt(out.byteLength);
    const b0 = logits.ptr, b1 = b0 + BigInt(logits.byteLength);
    const sameF32 = a0 === b0 && c.dtype === 'f32';
    if (logits.length > 0 && a0 < b1 && b0 < a1 && !sameF32) {
      throw new RangeError('options.out: expected a buffer apart from logits (or inPlace: true), received one that overlaps them');
    }
  } else {
    out = alloc('f32', logits.length);
    allocated.push(out);
  }
  const p = (a: DeviceArray | null, name: string) => (a ? ptr(a, name) : null);
  const args = [
    ptr(logits, 'logits'), logits.length, DTYPE_CODE[c.dtype], c.vocab, ptr(c.targets, 'targets'), n,
    c.temperature, c.ignoreIndex,
    ptr(g, 'gradLogprobs'), n, p(gradEntropy, 'options.gradEntropy'), n, p(lse, 'options.logsumexp'), n,
    p(entropy, 'options.entropy'), n, out.ptr, out.length,
  ];
  const used = [logits, c.targets, g, out, ...[gradEntropy, lse, entropy].filter((a): a is DeviceArray => a !== null)];
  return { args, used, allocated, finish: () => out };
}



const cudaLogprobs = () => cudaNative('tokenLogprobs') as unknown as CudaLogprobsBinding;

// ---- public functions ------------------------------------------------------------------------

/**
 * Log-probability of each row's target token under softmax(logits / temperature), in one pass
 * over the logits, with the row's logsumexp and (optionally) entropy.
 *
 * With DeviceArrays (logits f32/bf16/f16 by their dtype, targets i32, outputs f32) the kernel runs
 * on the GPU and the results are DeviceArrays (owned by the caller: free() them, or let GC do it).
 * Targets are checked on the device: a bad one is the same RangeError as on the host, and the call
 * waits for the device to know (the Async form waits on a worker thread).
 *
 * @example
 * const { logprobs, entropy } = tokenLogprobs(logits, targets, { vocab: 32000, entropy: true });
 */
export function tokenLogprobs(logits: Logits, targets: Int32Array, options: TokenLogprobsOptions): TokenLogprobsResult;
export function tokenLogprobs(logits: DeviceArray, targets: DeviceArray, options: DeviceTokenLogprobsOptions): DeviceTokenLogprobsResult;
export function tokenLogprobs(
  logits: Logits | DeviceArray,
  targets: Int32Array | DeviceArray,
  options: TokenLogprobsOptions | DeviceTokenLogprobsOptions,
): TokenLogprobsResult | DeviceTokenLogprobsResult {
  if (logits instanceof DeviceArray) {
    const call = deviceForward(logits, targets, options);
    return runDevice(call, cudaLogprobs().tokenLogprobs);
  }
  const { args, result } = forwardArgs(logits, targets, options);
  native.tokenLogprobs(...args);
  return result;
}

/** tokenLogprobs on a worker thread; the input buffers must stay untouched until it settles. */
export function tokenLogprobsAsync(logits: Logits, targets: Int32Array, options: TokenLogprobsOptions): Promise<TokenLogprobsResult>;
export function tokenLogprobsAsync(
  logits: DeviceArray,
  targets: DeviceArray,
  options: DeviceTokenLogprobsOptions,
): Promise<DeviceTokenLogprobsResult>;
export async function tokenLogprobsAsync(
  logits: Logits | DeviceArray,
  targets: Int32Array | DeviceArray,
  options: TokenLogprobsOptions | DeviceTokenLogprobsOptions,
): Promise<TokenLogprobsResult | DeviceTokenLogprobsResult> {
  if (logits instanceof DeviceArray) {
    const call = deviceForward(logits, targets, options);
    return runDeviceAsync(call, cudaLogprobs().tokenLogprobsAsync);
  }
  const { args, result } = forwardArgs(logits, targets, options);
  await native.tokenLogprobsAsync(...args);
  return result;
}

/**
 * Gradient of a loss with respect to the logits, (N * V) f32, given dL/dlogp per row (and
 * optionally dL/dH). Pass the forward pass's `logsumexp` (and `entropy` when `gradEntropy` is
 * given) to read the logits once instead of twice. `inPlace: true` overwrites f32 logits.
 *
 * With DeviceArrays (every array on the device, f32 except the logits and the i32 targets) the
 * kernel runs on the GPU and the gradient is a DeviceArray.
 *
 * Precision: with `logsumexp` given, p_j is exp(z_j/tau - lse) with lse stored in f32, so its
 * relative error grows like |lse| * 6e-8; for |logits / tau| in the thousands, leave
 * `logsumexp` out and the kernel recomputes the row statistics exactly.
 */
export function tokenLogprobsBackward(
  logits: Logits,
  targets: Int32Array,
  gradLogprobs: Float32Array,
  options: TokenLogprobsBackwardOptions,
): Float32Array;
export function tokenLogprobsBackward(
  logits: DeviceArray,
  targets: DeviceArray,
  gradLogprobs: DeviceArray,
  options: DeviceTokenLogprobsBackwardOptions,
): DeviceArray<'f32'>;
export function tokenLogprobsBackward(
  logits: Logits | DeviceArray,
  targets: Int32Array | DeviceArray,
  gradLogprobs: Float32Array | DeviceArray,
  options: TokenLogprobsBackwardOptions | DeviceTokenLogprobsBackwardOptions,
): Float32Array | DeviceArray<'f32'> {
  if (logits instanceof DeviceArray) {
    const call = deviceBackward(logits, targets, gradLogprobs, options);
    return runDevice(call, cudaLogprobs().tokenLogprobsBackward);
  }
  const { args, out } = backwardArgs(logits, targets, gradLogprobs, options);
  native.tokenLogprobsBackward(...args);
  return out;
}

/** tokenLogprobsBackward on a worker thread; the buffers must stay untouched until it settles. */
export function tokenLogprobsBackwardAsync(
  logits: Logits,
  targets: Int32Array,
  gradLogprobs: Float32Array,
  options: TokenLogprobsBackwardOptions,
): Promise<Float32Array>;
export function tokenLogprobsBackwardAsync(
  logits: DeviceArray,
  targets: DeviceArray,
  gradLogprobs: DeviceArray,
  options: DeviceTokenLogprobsBackwardOptions,
): Promise<DeviceArray<'f32'>>;
export async function tokenLogprobsBackwardAsync(
  logits: Logits | DeviceArray,
  targets: Int32Array | DeviceArray,
  gradLogprobs: Float32Array | DeviceArray,
  options: TokenLogprobsBackwardOptions | DeviceTokenLogprobsBackwardOptions,
): Promise<Float32Array | DeviceArray<'f32'>> {
  if (logits instanceof DeviceArray) {
    const call = deviceBackward(logits, targets, gradLogprobs, options);
    return runDeviceAsync(call, cudaLogprobs().tokenLogprobsBackwardAsync);
  }
  const { args, out } = backwardArgs(logits, targets, gradLogprobs, options);
  await native.tokenLogprobsBackwardAsync(...args);
  return out;
}
