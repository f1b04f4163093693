// Argument checks shared by the advantages ops (the texts the family has always used): positive
// integers, seqLen, masks, outputs that must not overlap their inputs, and a stepwise option reader
// that keeps the order in which the checks run.
import { describe } from '../check.js';
import { DeviceArray, devicePointer, upload } from '../cuda.js';
import type { Buf, Io, OptionSpec, OptionSpecs, OptionValues, SlotSpec, SlotSpecs } from '../op.js';

export const MAX_INT = 2 ** 31 - 1;

export function positiveInt(v: unknown, name: string): number {
  if (typeof v !== 'number') throw new TypeError(`${name}: expected a positive integer, received ${describe(v)}`);
  if (!Number.isInteger(v) || v < 1 || v > MAX_INT) throw new RangeError(`${name}: expected a positive integer, received ${v}`);
  return v;
}

/** A positive integer option (positiveInt's messages); without a default it is required. */
export const positiveIntOption = (dflt?: number): OptionSpec<number> => ({
  read: (v, name) => (v === undefined && dflt !== undefined ? dflt : positiveInt(v, name)),
  code: (v) => v,
});

/** n / k, the rows of the array `name` of length n, k (options.`option`) values each. */
export function rowsOf(n: number, k: number, option: string, name: string): number {
  if (n % k !== 0) throw new RangeError(`${name}: expected a length that is a multiple of ${option} (${k}), received length ${n}`);
  return n / k;
}

/** options.seqLen, a divisor of the length n of the array `name`. */
export function seqLenArg(seqLen: unknown, n: number, name: string): number {
  const T = positiveInt(seqLen, 'options.seqLen');
  rowsOf(n, T, 'seqLen', name);
  return T;
}

/** On the host path, a TypeError when options.out (one output array) is a DeviceArray; before the options' own checks. */
export function rejectDeviceOut(io: Io<SlotSpecs>, options: unknown): void {
  if (options !== null && typeof options === 'object') io.rejectDevice((options as { out?: unknown }).out, 'options.out');
}

/** The plain `out` object of an options value ({} otherwise), for the mixing checks that run first. */
export function outsOf(options: unknown): Record<string, unknown> {
  if (options === null || typeof options !== 'object') return {};
  const out = (options as { out?: unknown }).out;
  return out !== null && typeof out === 'object' && !(out instanceof DeviceArray) && !ArrayBuffer.isView(out)
    ? (out as Record<string, unknown>)
    : {};
}

/** The `mask` slot: 1/0 bytes or f32 weights of length n (host: a Uint8Array or a Float32Array). */
export function readMask<S extends SlotSpecs & { mask: SlotSpec }>(io: Io<S>, mask: unknown, n: number): Buf {
  if (mask === null) {
    // every token counts: a mask of ones, made here (on the device: uploaded, freed by GC)
    const ones = new Uint8Array(n).fill(1);
    const m: Buf = io.device ? upload(ones) : ones;
    if (io.device) io.allocated.push(m as DeviceArray);
    io.set('mask', m, 'mask');
    return m;
  }
  if (io.device) {
    if (mask instanceof DeviceArray && mask.dtype !== 'u8' && mask.dtype !== 'f32') {
      throw new TypeError(`mask: expected a DeviceArray of dtype 'u8' or 'f32', received ${mask}`);
    }
  } else if (!(mask instanceof Uint8Array || mask instanceof Float32Array)) {
    io.rejectDevice(mask, 'mask');
    throw new TypeError(`mask: expected a Uint8Array, a Float32Array or null, received ${describe(mask)}`);
  }
  return io.read('mask', mask, 'mask', n);
}

/** An output may be an input itself (in place: the same bytes) or apart from it, never a shifted view of it. */
export function apart(out: Buf, outName: string, input: Buf, inName: string): void {
  if (out === input) return;
  if (out instanceof DeviceArray || input instanceof DeviceArray) {
    const o = out as DeviceArray, i = input as DeviceArray;
    if (o.length === 0 || i.length === 0) return;
    const a0 = devicePointer(o, outName), a1 = a0 + BigInt(o.byteLength);
    const b0 = devicePointer(i, inName), b1 = b0 + BigInt(i.byteLength);
    if (a0 === b0 && o.byteLength === i.byteLength) return; // the same memory (e.g. wrapped twice)
    if (a0 < b1 && b0 < a1) throw overlap(outName, inName);
    return;
  }
  if (out.buffer !== input.buffer) return;
  const a0 = out.byteOffset, a1 = a0 + out.byteLength, b0 = input.byteOffset, b1 = b0 + input.byteLength;
  if (a0 === b0 && a1 === b1) return; // the same bytes through another view: in place
  if (a0 < b1 && b0 < a1) throw overlap(outName, inName);
}

const overlap = (outName: string, inName: string) =>
  new RangeError(`${outName}: expected ${inName} itself or a buffer apart from it, received a view that overlaps it`);

/**
 * Reads the options of `specs` one at a time, in the order the op's checks run (some checks of
 * arrays come between them), into `values` for packOptions. `set` stores a value the op computed.
 */
export function optionReader<S extends OptionSpecs>(specs: S, opts: Record<string, unknown>) {
  const values: Record<string, unknown> = {};
  return {
    values: values as OptionValues<S>,
    read<K extends keyof S & string>(key: K): OptionValues<S>[K] {
      values[key] = specs[key].read(opts[key], `options.${key}`, values);
      return values[key] as OptionValues<S>[K];
    },
    set<K extends keyof S & string>(key: K, value: OptionValues<S>[K]): OptionValues<S>[K] {
      values[key] = value;
      return value;
    },
  };
}
