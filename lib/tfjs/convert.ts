// Tensor / array conversions for the tfjs adapter, and the pool of gradient buffers.
//
// Reading: a tensor's dataSync() is, on the cpu backend, the tensor's own storage. The adapter only
// ever reads it (never `inPlace`), and copies before changing anything (e.g. masked targets).
// Writing: on the cpu backend (and webgl before upload) tf.tensor(typedArray) keeps the array itself
// as the tensor's storage, so a pooled gradient buffer handed to tf is reused only once tf has
// released every tensor that shares its data (checked through the engine's tensor registry).

import * as tf from '@tensorflow/tfjs-core';

/** Tensor, typed array or plain array: a constant input (no gradient flows into it). */
export type Constant = tf.Tensor | ArrayLike<number>;
/** Integer ids: also a BigInt64Array (onnxruntime's int64), range-checked. */
export type IntConstant = Constant | BigInt64Array;
/** A token mask: 1/0 (or true/false), or non-negative weights; `null` = every token counts. */
export type MaskInput = tf.Tensor | ArrayLike<number> | ArrayLike<boolean>;

export function isTensor(x: unknown): x is tf.Tensor {
  return x instanceof tf.Tensor;
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (isTensor(x)) return `a ${x.dtype} tensor of shape [${x.shape.join(', ')}]`;
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name}(${(x as unknown as ArrayLike<number>).length})`;
  if (Array.isArray(x)) return `an array of ${x.length}`;
  return typeof x;
}

export function requireTensor(x: unknown, name: string, rank?: readonly number[]): tf.Tensor {
  if (!isTensor(x)) throw new TypeError(`${name}: expected a tf.Tensor, got ${describe(x)}`);
  if (x.isDisposed) throw new TypeError(`${name}: the tensor is disposed`);
  if (x.dtype !== 'float32') throw new TypeError(`${name}: expected a float32 tensor, got ${x.dtype}`);
  if (rank && !rank.includes(x.rank)) {
    throw new RangeError(`${name}: expected a tensor of rank ${rank.join(' or ')}, got shape [${x.shape.join(', ')}]`);
  }
  return x;
}

function checkLength(n: number, length: number | readonly number[], name: string, x: unknown): void {
  const ok = typeof length === 'number' ? n === length : length.includes(n);
  if (!ok) {
    const want = typeof length === 'number' ? `${length}` : length.join(' or ');
    throw new RangeError(`${name}: expected ${want} elements, got ${describe(x)}`);
  }
}

function isArrayLike(x: unknown): x is ArrayLike<unknown> {
  return Array.isArray(x) || (ArrayBuffer.isView(x) && !(x instanceof DataView));
}

/** A Float32Array view of a constant (read-only: may be a tensor's storage or the caller's array). */
export function readF32(x: unknown, name: string, length: number | readonly number[]): Float32Array {
  let a: Float32Array;
  if (isTensor(x)) {
    const d = x.dataSync();
    a = d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
  } else if (x instanceof Float32Array) {
    a = x;
  } else if (isArrayLike(x) && !(x instanceof BigInt64Array) && !(x instanceof BigUint64Array)) {
    a = Float32Array.from(x as ArrayLike<number>);
  } else {
    throw new TypeError(`${name}: expected a tf.Tensor, a typed array or a number array, got ${describe(x)}`);
  }
  checkLength(a.length, length, name, x);
  return a;
}

/** An Int32Array of integer ids (a copy unless it already is one); BigInt64Array ids are range-checked. */
export function readI32(x: unknown, name: string, length: number): Int32Array {
  let a: Int32Array;
  if (isTensor(x)) {
    const d = x.dataSync();
    a = d instanceof Int32Array ? d : Int32Array.from(d as ArrayLike<number>);
    if (!(d instanceof Int32Array)) checkIntegers(d as ArrayLike<number>, a, name);
  } else if (x instanceof Int32Array) {
    a = x;
  } else if (x instanceof BigInt64Array) {
    a = new Int32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      if (v < -2147483648n || v > 2147483647n) throw new RangeError(`${name}[${i}]: expected an int32 id, got ${v}`);
      a[i] = Number(v);
    }
  } else if (isArrayLike(x) && !(x instanceof BigUint64Array)) {
    const src = x as ArrayLike<number>;
    a = Int32Array.from(src);
    checkIntegers(src, a, name);
  } else {
    throw new TypeError(`${name}: expected integer ids (a tf.Tensor, Int32Array, BigInt64Array or number array), got ${describe(x)}`);
  }
  checkLength(a.length, length, name, x);
  return a;
}

function checkIntegers(src: ArrayLike<number>, a: Int32Array, name: string): void {
  for (let i = 0; i < src.length; i++) {
    if (src[i] !== a[i]) throw new RangeError(`${name}[${i}]: expected an int32 id, got ${src[i]}`);
  }
}

/**
 * A mask as the core wants it: a Uint8Array when every value is 0/1 (or boolean), else a
 * Float32Array of weights. `binary` tells which.
 */
export function readMask(x: unknown, name: string, length: number): { mask: Uint8Array | Float32Array; binary: boolean } | null {
  if (x === null || x === undefined) return null;
  let src: ArrayLike<number | boolean>;
  if (isTensor(x)) src = x.dataSync() as ArrayLike<number>;
  else if (isArrayLike(x) && !(x instanceof BigInt64Array) && !(x instanceof BigUint64Array)) src = x as ArrayLike<number | boolean>;
  else throw new TypeError(`${name}: expected a tf.Tensor, a typed array, a number or boolean array, or null, got ${describe(x)}`);
  checkLength(src.length, length, name, x);
  let binary = true;
  for (let i = 0; i < src.length; i++) {
    const v = +src[i]!;
    if (v !== 0 && v !== 1) {
      binary = false;
      break;
    }
  }
  if (binary) {
    const m = new Uint8Array(src.length);
    for (let i = 0; i < src.length; i++) m[i] = +src[i]!;
    return { mask: m, binary };
  }
  const w = Float32Array.from(src as ArrayLike<number>);
  for (let i = 0; i < w.length; i++) {
    if (!(w[i]! >= 0) || !Number.isFinite(w[i]!)) throw new RangeError(`${name}[${i}]: expected a finite weight >= 0, got ${w[i]}`);
  }
  return { mask: w, binary };
}

// ---- gradient buffer pool ------------------------------------------------------------------------

interface PoolEntry {
  buf: Float32Array;
  /** The data id of the tensor made from `buf` while tf may still hold it; null when free. */
  dataId: object | null;
}

/** Per size, at most this many buffers are kept (more live gradients than that are not pooled). */
const PER_SIZE = 4;
const pool = new Map<number, PoolEntry[]>();

function engineHolds(dataId: object): boolean {
  // tf.engine().state.tensorInfo maps a data id to its backend while any tensor uses it. Should a
  // tfjs version lack it, every buffer counts as held (no reuse: correct, only slower).
  const state = (tf.engine() as unknown as { state?: { tensorInfo?: WeakMap<object, unknown> } }).state;
  return state?.tensorInfo?.has(dataId) ?? true;
}

/**
 * Backends whose write() copies the values at once (the pooled buffer is free again at once).
 * cpu keeps the array itself, webgl and tfjs-node keep it until the first use: those are tracked.
 */
const COPYING_BACKENDS = new Set(['wasm']);

/**
 * A tensor of `shape` filled by `fill` from a pooled Float32Array(n). The buffer is reused for a
 * later gradient only once tf has released every tensor that shares its data.
 */
export function pooledTensor(n: number, shape: number[], fill: (buf: Float32Array) => void): tf.Tensor {
  let list = pool.get(n);
  if (!list) pool.set(n, (list = []));
  let entry = list.find((e) => e.dataId === null || !engineHolds(e.dataId));
  if (!entry) {
    entry = { buf: new Float32Array(n), dataId: null };
    if (list.length < PER_SIZE) list.push(entry);
  }
  entry.dataId = null;
  fill(entry.buf);
  const t = tf.tensor(entry.buf, shape, 'float32');
  if (!COPYING_BACKENDS.has(tf.getBackend())) entry.dataId = t.dataId as object;
  return t;
}

/** Drops every pooled gradient buffer (they are reallocated on the next backward). */
export function clearGradientPool(): void {
  pool.clear();
}

/** Pooled bytes, by buffer length (for tests and diagnostics). */
export function gradientPoolStats(): { buffers: number; bytes: number } {
  let buffers = 0;
  let bytes = 0;
  for (const list of pool.values()) {
    buffers += list.length;
    for (const e of list) bytes += e.buf.byteLength;
  }
  return { buffers, bytes };
}
