// The logits argument, shared by the ops that read (N, V) logits (lib/logprobs/, lib/divergence/):
// its dtype table, its vocab and dtype options and the one check of the logits array, host or device.
//
// Host logits are a Float32Array (f32) or a Uint16Array of bf16 / f16 bits, the `dtype` option
// saying which; device logits are a DeviceArray whose own dtype the option (when given) must name.
// Both travel in a slot of types ['f32', 'u16'] and the dtype is packed as a param.
import { describe, integer, oneOf } from './check.js';
import { DeviceArray } from './cuda.js';
import { enumOf, int, type Buf, type Io, type SlotSpecs } from './op.js';

export type LogitsDType = 'f32' | 'bf16' | 'f16';
/** Logits: a Float32Array (f32) or a Uint16Array holding bf16 or f16 bit patterns. */
export type Logits = Float32Array | Uint16Array;

/** The dtypes in native code order: f32 = 0, bf16 = 1, f16 = 2 (rk::DType, rkcuda::LogitsDType). */
export const LOGITS_DTYPES: readonly LogitsDType[] = ['f32', 'bf16', 'f16'];
export const MAX_VOCAB = 2 ** 31 - 1;
/** What the device path says when host and device arrays are mixed. */
export const LOGITS_MIX = 'the logits are a DeviceArray';

/**
 * The first params of every logits op: vocab and dtype (packed as its LOGITS_DTYPES index). Read by
 * readLogits, not readOptions: the dtype's default and checks depend on the logits array.
 */
export const LOGITS_OPTIONS = { vocab: int(1, MAX_VOCAB), dtype: enumOf(LOGITS_DTYPES, 'f32') };

export interface LogitsArg {
  logits: Logits | DeviceArray;
  dtype: LogitsDType;
  vocab: number;
}

/**
 * options.vocab, then the logits in slot 'logits' with options.dtype: on the host a Float32Array
 * ('f32', the default) or a Uint16Array ('bf16' / 'f16', required); on the device an f32 / bf16 /
 * f16 DeviceArray whose dtype options.dtype must agree with. The length is checked by logitsRows.
 */
export function readLogits(io: Io<SlotSpecs>, value: unknown, opts: { vocab?: unknown; dtype?: unknown }): LogitsArg {
  const vocab = integer(opts.vocab, 'options.vocab', 1, MAX_VOCAB);
  if (io.device) {
    const logits = io.read<DeviceArray>('logits', value, 'logits');
    const dtype = logits.dtype as LogitsDType;
    if (opts.dtype !== undefined && oneOf(opts.dtype, 'options.dtype', LOGITS_DTYPES) !== dtype) {
      throw new TypeError(`options.dtype: the logits DeviceArray holds '${dtype}' values, received '${opts.dtype}'`);
    }
    return { logits, dtype, vocab };
  }
  let dtype: LogitsDType;
  if (value instanceof Float32Array) {
    dtype = opts.dtype === undefined ? 'f32' : oneOf(opts.dtype, 'options.dtype', LOGITS_DTYPES);
    if (dtype !== 'f32') {
      throw new TypeError(`options.dtype: a Float32Array holds 'f32' logits, received '${dtype}' (bf16/f16 logits go in a Uint16Array)`);
    }
  } else if (value instanceof Uint16Array) {
    if (opts.dtype === undefined) {
      throw new TypeError("options.dtype: a Uint16Array of logits needs dtype 'bf16' or 'f16', received undefined");
    }
    dtype = oneOf(opts.dtype, 'options.dtype', LOGITS_DTYPES);
    if (dtype === 'f32') {
      throw new TypeError("options.dtype: a Uint16Array holds 'bf16' or 'f16' logits, received 'f32' (f32 logits go in a Float32Array)");
    }
  } else {
    throw new TypeError(`logits: expected a Float32Array (f32) or a Uint16Array (bf16/f16), received ${describe(value)}`);
  }
  return { logits: io.read<Logits>('logits', value, 'logits'), dtype, vocab };
}

/** The number of rows: the logits length must be a multiple of vocab. */
export function logitsRows(logits: { length: number }, vocab: number): number {
  if (logits.length % vocab !== 0) {
    throw new RangeError(`logits: expected a length that is a multiple of vocab (${vocab}), received length ${logits.length}`);
  }
  return logits.length / vocab;
}

/** True when a and b (both host or both device arrays) share memory; empty arrays overlap nothing. */
export function overlaps(a: Buf, b: Buf): boolean {
  if (a instanceof DeviceArray || b instanceof DeviceArray) {
    if (!(a instanceof DeviceArray && b instanceof DeviceArray) || a.byteLength === 0 || b.byteLength === 0) return false;
    const a0 = a.ptr, a1 = a0 + BigInt(a.byteLength);
    const b0 = b.ptr, b1 = b0 + BigInt(b.byteLength);
    return a0 < b1 && b0 < a1;
  }
  if (a.buffer !== b.buffer || a.byteLength === 0 || b.byteLength === 0) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/**
 * With inPlace: true the gradient is the logits themselves, stored in `slot`: f32 logits only, and
 * the out buffer `given` (named `outName`; `noBuffer` says what must be absent) absent or the logits.
 */
export function gradientInPlace(
  io: Io<SlotSpecs>, slot: string, l: LogitsArg, logits: unknown, given: unknown, outName: string, noBuffer: string,
): Buf {
  if (l.dtype !== 'f32') {
    throw new TypeError(`options.inPlace: the gradient can overwrite f32 logits only, received dtype '${l.dtype}'`);
  }
  if (given !== undefined && given !== logits) {
    throw new TypeError(`${outName}: expected ${noBuffer} (or the logits themselves) with inPlace: true, received another array`);
  }
  io.set(slot, l.logits);
  return l.logits;
}
