// Io: reads the arrays of one call, host TypedArrays or DeviceArrays with the same calls, into the
// slots of the native protocol; and openOptions, the shared start of an op's argument checks.
import { describe, isDetached, options as optionsObject, typedArray } from '../check.js';
import { alloc, DeviceArray, devicePointer, type DeviceDType } from '../cuda.js';

// ---- arrays: one reader for host TypedArrays and DeviceArrays -----------------------------------

/** Element types a slot may hold; 'u16' is a Uint16Array of bf16 or f16 bits (the dtype option says which). */
export type SlotType = 'f32' | 'u16' | 'i32' | 'u8' | 'f64';
const HOST_CTOR = { f32: Float32Array, u16: Uint16Array, i32: Int32Array, u8: Uint8Array, f64: Float64Array } as const;
type TypedArrayCtorOf = (typeof HOST_CTOR)[SlotType];
/** Device dtype -> slot type. */
const DEVICE_SLOT: Record<DeviceDType, SlotType> = { f32: 'f32', bf16: 'u16', f16: 'u16', i32: 'i32', u8: 'u8' };
/** Native slot type codes (native/binding/slots.h SlotType). */
export const SLOT_CODE: Record<SlotType, number> = { f32: 0, u16: 1, i32: 2, u8: 3, f64: 4 };

export interface SlotSpec {
  /** Element types accepted (the first is the one allocated for an output). */
  types: readonly SlotType[];
  /** The shape relation, for the docs and the parity harness (e.g. 'B*T', 'B | B*T', 'N*V'). */
  shape: string;
  /** An output the op writes (allocated when the caller gives none). */
  out?: boolean;
  /** Half-precision slots: which device dtypes (default both 'bf16' and 'f16'). */
  device?: readonly DeviceDType[];
}
export type SlotSpecs = Record<string, SlotSpec>;

/** A host TypedArray or a DeviceArray, as the call's mode says. */
export type Buf = Float32Array | Uint16Array | Int32Array | Uint8Array | Float64Array | DeviceArray;
type HostBuf = Exclude<Buf, DeviceArray>;
const typeNames = (types: readonly SlotType[]) =>
  types.map((t) => HOST_CTOR[t].name).join(types.length > 2 ? ', ' : ' or ');

interface SlotInfo {
  index: number;
  spec: SlotSpec;
}

/** What Io needs of a descriptor's slots, computed once per op. */
export interface SlotLayout<S extends SlotSpecs = SlotSpecs> {
  specs: S;
  names: readonly string[];
  index: ReadonlyMap<string, number>;
  /** Per slot name: its index and spec (one lookup per array read). */
  slots: ReadonlyMap<string, SlotInfo>;
  /** The scalar buffer of sync calls, reused (its values are read out before the call returns). */
  scalars?: Float64Array;
}
export function slotLayout<S extends SlotSpecs>(specs: S): SlotLayout<S> {
  const names = Object.keys(specs);
  const index = new Map<string, number>();
  const slots = new Map<string, SlotInfo>();
  names.forEach((k, i) => {
    index.set(k, i);
    slots.set(k, { index: i, spec: specs[k] });
  });
  return { specs, names, index, slots };
}

type FirstDevice = (obj: object, D: typeof DeviceArray) => number;
const firstDeviceCache = new WeakMap<readonly string[], FirstDevice>();
/** The index of the first key whose value is a DeviceArray, or -1: straight-line code compiled once per key list. */
function firstDevice(keys: readonly string[]): FirstDevice {
  let f = firstDeviceCache.get(keys);
  if (!f) {
    const body = keys.map((k, i) => `if (o[${JSON.stringify(k)}] instanceof D) return ${i};`).join('\n');
    firstDeviceCache.set(keys, (f = new Function('o', 'D', `${body}\nreturn -1;`) as FirstDevice));
  }
  return f;
}

/** Reads the arrays of one call: host TypedArrays or, on the device path, DeviceArrays. */
export class Io<S extends SlotSpecs = SlotSpecs> {
  readonly slots: (Buf | null)[];
  /** DeviceArrays this call allocated (freed if the call fails). */
  readonly allocated: DeviceArray[] = [];
  readonly specs: S;
  private readonly index: ReadonlyMap<string, number>;
  private readonly names: readonly string[];
  private readonly layout: SlotLayout<S>;

  constructor(
    readonly device: boolean,
    layout: SlotLayout<S> | S,
    /** Why a host array is refused on the device path (and vice versa): "the log-probs are a DeviceArray". */
    private readonly mixWhat: string,
    /** An Async call: its buffers must outlive the call, so nothing is reused. */
    readonly async = false,
  ) {
    const l = 'names' in layout && Array.isArray((layout as SlotLayout<S>).names) ? (layout as SlotLayout<S>) : slotLayout(layout as S);
    this.layout = l;
    this.specs = l.specs;
    this.index = l.index;
    this.names = l.names;
    this.slots = new Array<Buf | null>(l.names.length).fill(null);
  }

  private mixText(): string {
    return `${this.mixWhat}; host and device arrays cannot be mixed in one call`;
  }

  /**
   * The Float64Array the kernel writes `n` scalar results into. A sync call reuses the op's own (the
   * result is read out of it before the call returns, and a reused buffer spares the N-API layer
   * moving a new small array off the JS heap on every call); an Async call gets a new one.
   */
  scalars(n: number): Float64Array {
    if (this.async) return new Float64Array(new ArrayBuffer(8 * n));
    let s = this.layout.scalars;
    if (s === undefined || s.length !== n) s = this.layout.scalars = new Float64Array(new ArrayBuffer(8 * n));
    return s;
  }

  /** rejectDevice for obj[k] of every key k, named `${prefix}.${k}` (the name is built only to throw). */
  rejectDevices(obj: unknown, keys: readonly string[], prefix: string): void {
    if (this.device || obj === null || typeof obj !== 'object' || keys.length === 0) return;
    const i = firstDevice(keys)(obj, DeviceArray);
    if (i >= 0) this.rejectDevice((obj as Record<string, unknown>)[keys[i]], `${prefix}.${keys[i]}`);
  }

  /** On the host path, a TypeError when `value` is a DeviceArray. */
  rejectDevice(value: unknown, name: string): void {
    if (!this.device && value instanceof DeviceArray) {
      throw new TypeError(`${name}: expected a host TypedArray (${this.mixWhat.replace('a DeviceArray', 'a host array')}; host and device arrays cannot be mixed in one call), received ${value}`);
    }
  }

  /**
   * The array `value` for slot `slot` (named `name` in messages), of one of the slot's types (or
   * `types`), of length `length` when given. Stored in the slot unless `store` is false.
   */
  read<T extends Buf = Buf>(slot: keyof S & string, value: unknown, name: string, length?: number, types?: readonly SlotType[]): T {
    const info = this.layout.slots.get(slot)!;
    const spec = info.spec;
    const allowed = types ?? spec.types;
    let a: Buf;
    if (this.device) {
      if (!(value instanceof DeviceArray)) {
        throw new TypeError(`${name}: expected a DeviceArray (${this.mixText()}), received ${describe(value)}`);
      }
      const dtypes = (Object.keys(DEVICE_SLOT) as DeviceDType[]).filter(
        (d) => allowed.includes(DEVICE_SLOT[d]) && (DEVICE_SLOT[d] !== 'u16' || (spec.device ?? ['bf16', 'f16']).includes(d)),
      );
      if (!dtypes.includes(value.dtype)) {
        throw new TypeError(`${name}: expected a DeviceArray of dtype ${dtypes.map((d) => `'${d}'`).join(' or ')}, received ${value}`);
      }
      devicePointer(value, name);
      a = value;
    } else {
      // Fast path: the common case is an array of the slot's first type (no allocation here).
      let ctor: TypedArrayCtorOf | undefined;
      for (let i = 0; i < allowed.length; i++) {
        if (value instanceof HOST_CTOR[allowed[i]]) {
          ctor = HOST_CTOR[allowed[i]];
          break;
        }
      }
      if (ctor === undefined) {
        this.rejectDevice(value, name);
        if (allowed.length === 1) typedArray(value, name, HOST_CTOR[allowed[0]]); // throws its message
        throw new TypeError(`${name}: expected a ${typeNames(allowed)}, received ${describe(value)}`);
      }
      a = value as HostBuf;
      if (a.length === 0 && isDetached(a)) typedArray(value, name, ctor); // a detached buffer: throws its message
    }
    if (length !== undefined && a.length !== length) {
      throw new RangeError(`${name}: expected length ${length}, received length ${a.length}`);
    }
    this.slots[info.index] = a;
    return a as T;
  }

  /** Like read, but undefined / null leave the slot empty and give null. */
  optional<T extends Buf = Buf>(slot: keyof S & string, value: unknown, name: string, length?: number, types?: readonly SlotType[]): T | null {
    if (value === undefined || value === null) {
      this.rejectDevice(value, name);
      return null;
    }
    return this.read<T>(slot, value, name, length, types);
  }

  /** The caller's output buffer `given` (checked), else a new one of the slot's first type. */
  out<T extends Buf = Buf>(slot: keyof S & string, given: unknown, name: string, length: number): T {
    if (given !== undefined) return this.read<T>(slot, given, name, length);
    const t = this.specs[slot].types[0];
    let a: Buf;
    if (this.device) {
      if (t !== 'f32') throw new Error(`${name}: only f32 device outputs are allocated`);
      a = alloc('f32', length);
      this.allocated.push(a);
    } else {
      a = new HOST_CTOR[t](length);
    }
    this.slots[this.index.get(slot)!] = a;
    return a as T;
  }

  /** Stores an array the facade made itself (a converted buffer, a packed copy). */
  set(slot: keyof S & string, a: Buf | null): void {
    this.slots[this.index.get(slot)!] = a;
  }

  /** Frees the outputs this call allocated (when it failed). */
  release(): void {
    for (const a of this.allocated) a.free();
  }

  /** The slots as the native protocol wants them. */
  nativeSlots(): unknown[] {
    if (!this.device) return this.slots;
    return this.slots.map((a, i) =>
      a === null ? null : [devicePointer(a as DeviceArray, this.names[i]), a.length, SLOT_CODE[DEVICE_SLOT[(a as DeviceArray).dtype]]],
    );
  }

  /** The DeviceArrays in the slots (held while an Async call runs). */
  deviceArrays(): DeviceArray[] {
    return this.slots.filter((a): a is DeviceArray => a instanceof DeviceArray);
  }
}

/**
 * The options object of a call (optionsObject's check, `required` or not) and its `out` object ({}
 * when absent), after the host path's refusal of DeviceArrays, in this order: `args` (the other
 * positional arrays, [value, name]), the options' arrays `keys` (options.<key>) and the outputs
 * `outs` (options.out.<key>).
 */
export function openOptions(
  io: Io<SlotSpecs>,
  options: unknown,
  required: boolean,
  args: readonly (readonly [unknown, string])[],
  keys: readonly string[],
  outs: readonly string[],
): { opts: Record<string, unknown>; out: Record<string, unknown> } {
  const opts = optionsObject<Record<string, unknown>>(options, 'options', required) as Record<string, unknown>;
  const out = (opts.out ?? {}) as Record<string, unknown>;
  for (let i = 0; i < args.length; i++) io.rejectDevice(args[i][0], args[i][1]);
  io.rejectDevices(opts, keys, 'options');
  io.rejectDevices(out, outs, 'options.out');
  return { opts, out };
}
