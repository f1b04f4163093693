// The op descriptor: one declaration per op from which the facade's validation of options, the
// packing of the native call, the sync / Async and host / device entry points and the typed native
// interface all come. The native layout of each op (its slots, packed parameters and scalar results,
// with the enum codes) is generated from the same descriptors into native/binding/layout.gen.h by
// scripts/gen-layout.ts, so the C++ decoding shared by the CPU and CUDA addons reads named offsets,
// never hand-counted indices (docs/design.md).
//
// One native protocol for both addons:  op(params, scalars, ...slots)
//   params  Float64Array of the packed scalar options (declaration order; enums as their index)
//   scalars Float64Array the kernel writes its scalar results into (declaration order)
//   slots   one argument per declared slot in declaration order: a TypedArray or null on the host;
//           [pointer: bigint, length: number, dtype code] or null on the device
import { describe, finiteIn, integer, isDetached, oneOf, options as optionsObject, typedArray } from './check.js';
import {
  alloc,
  cudaNative,
  DeviceArray,
  devicePointer,
  holdDeviceArrays,
  type DeviceDType,
} from './cuda.js';
import { binding } from './native.js';

// ---- options ----------------------------------------------------------------------------------

/** How one scalar option is read: its check (with the message), its default, and its native code. */
export interface OptionSpec<T> {
  /** Reads the option; `value` is undefined when it was not given. `prev` holds the options read so far. */
  read(value: unknown, name: string, prev: Readonly<Record<string, unknown>>): T;
  /** The number packed for the native call. */
  code(value: T): number;
  /** For enums: the names in code order (exported to the native layout). */
  values?: readonly string[];
}

type Default<T> = T | ((prev: Readonly<Record<string, unknown>>) => T);
const resolve = <T>(d: Default<T>, prev: Readonly<Record<string, unknown>>): T =>
  typeof d === 'function' ? (d as (p: Readonly<Record<string, unknown>>) => T)(prev) : d;

/** A number option read by `check` (one of lib/check.ts's), defaulting to `dflt`. */
const identity = (v: number) => v;

export function num(check: (v: unknown, name: string) => number, dflt: Default<number>): OptionSpec<number> {
  return {
    read: (v, name, prev) => (v === undefined ? resolve(dflt, prev) : check(v, name)),
    code: identity,
  };
}

/** An integer in [min, max]; without a default it is required (integer()'s TypeError when absent). */
export function int(min: number, max: number, dflt?: Default<number>): OptionSpec<number> {
  return {
    read: (v, name, prev) => (v === undefined && dflt !== undefined ? resolve(dflt, prev) : integer(v, name, min, max)),
    code: identity,
  };
}

/** A finite number in [min, max]. */
export const numIn = (min: number, max: number, dflt: Default<number>) =>
  num((v, k) => finiteIn(v, k, min, max), dflt);

/** One of `values` (packed as its index), defaulting to `dflt`. */
export function enumOf<T extends string>(values: readonly T[], dflt: Default<T>): OptionSpec<T> {
  return {
    read: (v, name, prev) => (v === undefined ? resolve(dflt, prev) : oneOf(v, name, values)),
    code: (v) => values.indexOf(v),
    values,
  };
}

/** A boolean option (packed as 0/1). */
export function flag(dflt: boolean): OptionSpec<boolean> {
  return {
    read: (v, name) => {
      if (v === undefined) return dflt;
      if (typeof v !== 'boolean') throw new TypeError(`${name}: expected a boolean, received ${describe(v)}`);
      return v;
    },
    code: (v) => (v ? 1 : 0),
  };
}

export type OptionSpecs = Record<string, OptionSpec<unknown>>;
export type OptionValues<S extends OptionSpecs> = { [K in keyof S]: S[K] extends OptionSpec<infer T> ? T : never };

type Reader = (specs: OptionSpecs, opts: Record<string, unknown>, names: readonly string[]) => Record<string, unknown>;
type Packer = (specs: OptionSpecs, values: Record<string, unknown>, p: Float64Array) => Float64Array;

interface SpecCache {
  keys: string[];
  names: Map<string, string[]>;
  /** The packed params, reused by every call: the native side copies them at the call, before any work. */
  packed: Float64Array;
  /** readOptions and packOptions for these specs, compiled once (one call site per option). */
  read: Reader;
  pack: Packer;
}
const keyCache = new WeakMap<object, SpecCache>();

// The per-op reader and packer are generated once from the descriptor's own option names (never
// from user input): straight-line code with one call site per option, so each stays monomorphic
// and the small-call cost is what the checks themselves cost.
function compile(specs: OptionSpecs, keys: string[]): { read: Reader; pack: Packer } {
  const k = (key: string) => JSON.stringify(key);
  const readBody = keys.map((key, i) => `o[${k(key)}] = s[${k(key)}].read(v[${k(key)}], n[${i}], o);`).join('\n');
  const packBody = keys
    .map((key, i) =>
      specs[key].code === (identity as unknown) ? `p[${i}] = o[${k(key)}];` : `p[${i}] = s[${k(key)}].code(o[${k(key)}]);`,
    )
    .join('\n');
  return {
    read: new Function('s', 'v', 'n', `const o = {};\n${readBody}\nreturn o;`) as Reader,
    pack: new Function('s', 'o', 'p', `${packBody}\nreturn p;`) as Packer,
  };
}

function keysOf(specs: OptionSpecs): SpecCache {
  let c = keyCache.get(specs);
  if (!c) {
    const keys = Object.keys(specs);
    c = { keys, names: new Map(), packed: new Float64Array(keys.length), ...compile(specs, keys) };
    keyCache.set(specs, c);
  }
  return c;
}

/** Reads every declared option of `opts` in declaration order (`prefix.name` in messages). */
export function readOptions<S extends OptionSpecs>(specs: S, opts: Record<string, unknown>, prefix = 'options'): OptionValues<S> {
  const c = keysOf(specs);
  let full = c.names.get(prefix);
  if (!full) c.names.set(prefix, (full = c.keys.map((key) => `${prefix}.${key}`)));
  return c.read(specs, opts, full) as OptionValues<S>;
}

/**
 * The packed params of `values` in declaration order. The buffer is the op's own and is rewritten by
 * its next call: every native decoder (native/binding/ops/) copies the params into its argument
 * struct when called, before any work starts (also for Async calls), so nothing reads it later.
 */
export function packOptions<S extends OptionSpecs>(specs: S, values: OptionValues<S>): Float64Array {
  const c = keysOf(specs);
  return c.pack(specs, values as Record<string, unknown>, c.packed);
}

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

// ---- the descriptor and its entry points ------------------------------------------------------

/** What an op's prepare returns: the packed params, the scalar buffer and how to build the result. */
export interface Prepared<R> {
  params?: Float64Array | null;
  scalars?: Float64Array | null;
  /** The result, read after the native call (scalars filled). */
  finish(): R;
  /** When set, the call is answered in TypeScript without native code (small-input path). */
  local?: () => void;
}

/** The typed native entry point every op shares (CPU and CUDA addons alike). */
export type NativeOp = (params: Float64Array | null, scalars: Float64Array | null, ...slots: unknown[]) => undefined;
export type NativeOpAsync = (params: Float64Array | null, scalars: Float64Array | null, ...slots: unknown[]) => Promise<undefined>;

export interface OpDescriptor<S extends SlotSpecs, O extends OptionSpecs, A extends unknown[], R> {
  /** The exported name; the native functions are `name` and `name + 'Async'`. */
  name: string;
  /** The arrays of the native call, in slot order. */
  slots: S;
  /** The scalar options packed into params, in order. */
  options: O;
  /** Names of the scalar results, in order. */
  scalars?: readonly string[];
  /** Which positional argument decides host or device (a DeviceArray there means the device path). */
  deviceArg?: number;
  /** For mixing errors: "the log-probs are a DeviceArray". */
  mix: string;
  /** Validates the arguments (messages naming them), fills io's slots and packs the call. */
  prepare(io: Io<S>, ...args: A): Prepared<R>;
  /**
   * A sequence op (native/core/seq_op.h): its formula struct and header under native/core/. The
   * native entry points (CPU and CUDA) are then generated; no binding or kernel file is written.
   */
  seq?: { op: string; header: string };
}

/** Every descriptor, by name (read by scripts/gen-layout.ts and the tests). */
export const registry: OpDescriptor<SlotSpecs, OptionSpecs, never[], unknown>[] = [];

interface CpuOps {
  [name: string]: NativeOp | NativeOpAsync;
}

/**
 * An entry point's two call signatures: the host one, and the device one (picked when the arrays
 * are DeviceArrays). Labelled tuples keep the parameter names in editor hints.
 */
export interface Overloads<HA extends unknown[], HR, DA extends unknown[], DR> {
  (...args: HA): HR;
  (...args: DA): DR;
}

/** The public sync and Async entry points of an op, each stated once by its host and device signatures. */
export interface TypedOp<HA extends unknown[], HR, DA extends unknown[], DR> {
  sync: Overloads<HA, HR, DA, DR>;
  async: Overloads<HA, Promise<HR>, DA, Promise<DR>>;
}

/** What defineOp returns: the untyped entry points, the descriptor, and their public typing. */
export interface DefinedOp<S extends SlotSpecs, O extends OptionSpecs, A extends unknown[], R> {
  sync: (...args: A) => R;
  async: (...args: A) => Promise<R>;
  descriptor: OpDescriptor<S, O, A, R>;
  /** sync and async typed by the host arguments and result, and the device arguments and result. */
  typed<HA extends unknown[], HR, DA extends unknown[], DR>(): TypedOp<HA, HR, DA, DR>;
}

/** The sync and Async entry points of a descriptor (host and device). */
export function defineOp<S extends SlotSpecs, O extends OptionSpecs, A extends unknown[], R>(
  d: OpDescriptor<S, O, A, R>,
): DefinedOp<S, O, A, R> {
  registry.push(d as unknown as OpDescriptor<SlotSpecs, OptionSpecs, never[], unknown>);
  const at = d.deviceArg ?? 0;
  let cpuOps: CpuOps | undefined;
  const cpu = () => (cpuOps ??= binding<CpuOps>());
  const syncName = d.name;
  const asyncName = `${d.name}Async`;
  const layout = slotLayout(d.slots);
  // A fixed-arity caller (params, scalars, then every slot): a direct call, no spread per call.
  const call = new Function(
    'f', 'p', 's', 'a',
    `return f(p, s${layout.names.map((_, i) => `, a[${i}]`).join('')});`,
  ) as (f: NativeOp | NativeOpAsync, p: Float64Array | null, s: Float64Array | null, a: unknown[]) => undefined | Promise<undefined>;
  let cpuSync: NativeOp | undefined, cpuAsync: NativeOpAsync | undefined;
  // Reads the call's arrays (host or device by args[at]); what prepare allocated is freed when it throws.
  const prepare = (io: Io<S>, args: A): Prepared<R> => {
    try {
      return d.prepare(io, ...args);
    } catch (err) {
      io.release();
      throw err;
    }
  };
  const sync = (...args: A): R => {
    const device = args[at] instanceof DeviceArray;
    const io = new Io(device, layout, d.mix, false);
    const p = prepare(io, args);
    if (p.local) {
      p.local();
      return p.finish();
    }
    const fn = device ? (cudaNative(syncName)[syncName] as NativeOp) : (cpuSync ??= cpu()[syncName] as NativeOp);
    try {
      call(fn, p.params ?? null, p.scalars ?? null, io.nativeSlots());
    } catch (err) {
      io.release();
      throw err;
    }
    return p.finish();
  };
  const async = async (...args: A): Promise<R> => {
    const device = args[at] instanceof DeviceArray;
    const io = new Io(device, layout, d.mix, true);
    const p = prepare(io, args);
    if (p.local) {
      p.local();
      return p.finish();
    }
    const fn = device ? (cudaNative(asyncName)[asyncName] as NativeOpAsync) : (cpuAsync ??= cpu()[asyncName] as NativeOpAsync);
    // The DeviceArrays stay referenced (and free() refuses) until the Promise settles.
    const held = io.deviceArrays();
    holdDeviceArrays(held, 1);
    try {
      await call(fn, p.params ?? null, p.scalars ?? null, io.nativeSlots());
    } catch (err) {
      holdDeviceArrays(held, -1);
      io.release();
      throw err;
    }
    holdDeviceArrays(held, -1);
    return p.finish();
  };
  const typed = <HA extends unknown[], HR, DA extends unknown[], DR>() => ({ sync, async }) as unknown as TypedOp<HA, HR, DA, DR>;
  return { sync, async, descriptor: d, typed };
}

export { describe, integer, optionsObject };
export type { HostBuf };
