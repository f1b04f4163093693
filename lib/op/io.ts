// Io: reads the arrays of one call, host TypedArrays or DeviceArrays with the same calls, into the
// slots of the native protocol; and openOptions, the shared start of an op's argument checks.
import { describe, isDetached, knownKeys, type KnownKeys, options as optionsObject, typedArray } from '../check.js';
import { alloc, DeviceArray, devicePointer, type DeviceDType } from '../cuda.js';

// ---- arrays: one reader for host TypedArrays and DeviceArrays -----------------------------------

/** Element types a slot may hold; 'u16' is a Uint16Array of bf16 or f16 bits (the dtype option says which). */
export type SlotType = 'f32' | 'u16' | 'i32' | 'u8' | 'f64';
const HOST_CTOR = { f32: Float32Array, u16: Uint16Array, i32: Int32Array, u8: Uint8Array, f64: Float64Array } as const;
type TypedArrayCtorOf = (typeof HOST_CTOR)[SlotType];
/** Device dtype -> slot type. */
const DEVICE_SLOT: Record<DeviceDType, SlotType> = { f32: 'f32', bf16: 'u16', f16: 'u16', i32: 'i32', u8: 'u8', f64: 'f64' };
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
  /**
   * Outputs the op may write in place: the input slots this output may be exactly (the same bytes;
   * the op checks any further condition itself). Any other overlap of an output with another slot's
   * array is a RangeError before the native call (Io.checkOverlaps).
   */
  inPlace?: readonly string[];
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
  /** Per slot name: its index and spec (one lookup per array read). */
  slots: ReadonlyMap<string, SlotInfo>;
  /** The scalar buffer of sync calls, reused (its values are read out before the call returns). */
  scalars?: Float64Array;
  /** Per slot: bit j set when this output may be exactly slot j's array (SlotSpec.inPlace). */
  inPlace: readonly number[];
  /** Scratch of Io.checkOverlaps: each slot's buffer during the check, null otherwise. */
  buffers: (ArrayBufferLike | null)[];
  /** The arrays of the last host call whose overlap check passed (small fixed-length views only), and its given mask (-1: none). */
  memo: (Buf | null)[];
  memoGiven: number;
  /** All-null slots, copied for each call (cheaper than new Array(n).fill(null)). */
  empty: readonly (Buf | null)[];
  /**
   * The name each slot's array was read under by the latest call (for overlap messages; no
   * allocation per call), and that call's generation: a call started during another's prepare (a
   * getter calling the op again) takes them over, and the earlier call then names slots by slot name.
   */
  slotNames: (string | undefined)[];
  generation: number;
}

/** Arrays up to this many bytes may be remembered by the overlap check's memo (what it retains stays small). */
const MEMO_BYTES = 4096;
export function slotLayout<S extends SlotSpecs>(specs: S): SlotLayout<S> {
  const names = Object.keys(specs);
  const slots = new Map<string, SlotInfo>();
  if (names.length > 31) throw new Error(`slotLayout: at most 31 slots, received ${names.length}`); // Io's bit masks
  names.forEach((k, i) => {
    slots.set(k, { index: i, spec: specs[k] });
  });
  const inPlace = names.map((k) =>
    (specs[k].inPlace ?? []).reduce((m, other) => {
      const o = slots.get(other);
      if (!o) throw new Error(`slotLayout: slot ${k} names an unknown inPlace slot ${other}`);
      return m | (1 << o.index);
    }, 0),
  );
  const none = () => new Array<null>(names.length).fill(null);
  return { specs, names, slots, inPlace, buffers: none(), memo: none(), memoGiven: -1, empty: none(), slotNames: new Array<string | undefined>(names.length), generation: 0 };
}

type FirstDevice = (obj: object, D: typeof DeviceArray) => number;
// Keyed by the names, not by the array: a call site may pass a fresh literal (['mask']) each call.
const firstDeviceCache = new Map<string, FirstDevice>();
/** The index of the first key whose value is a DeviceArray, or -1: straight-line code compiled once per key list. */
function firstDevice(keys: readonly string[]): FirstDevice {
  const id = keys.length === 1 ? keys[0] : keys.join(',');
  let f = firstDeviceCache.get(id);
  if (!f) {
    const body = keys.map((k, i) => `if (o[${JSON.stringify(k)}] instanceof D) return ${i};`).join('\n');
    firstDeviceCache.set(id, (f = new Function('o', 'D', `${body}\nreturn -1;`) as FirstDevice));
  }
  return f;
}

/** Reads the arrays of one call: host TypedArrays or, on the device path, DeviceArrays. */
export class Io<S extends SlotSpecs = SlotSpecs> {
  readonly slots: (Buf | null)[];
  /** DeviceArrays this call allocated (freed if the call fails). */
  readonly allocated: DeviceArray[] = [];
  readonly specs: S;
  private readonly names: readonly string[];
  private readonly layout: SlotLayout<S>;
  /** This call's generation of the layout's slot names (layout.names of a nested call of the same op replace them). */
  private readonly generation: number;
  /** Bit i set: output slot i holds an array the caller gave (or the facade set), checked by checkOverlaps. */
  private given = 0;

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
    this.names = l.names;
    this.slots = l.empty.slice();
    this.generation = ++l.generation;
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
    this.layout.slotNames[info.index] = name;
    if (spec.out) this.given |= 1 << info.index;
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
      if (t !== 'f32' && t !== 'i32') throw new Error(`${name}: only f32 and i32 device outputs are allocated`);
      a = alloc(t, length);
      this.allocated.push(a);
    } else {
      a = new HOST_CTOR[t](length);
    }
    const i = this.layout.slots.get(slot)!.index;
    this.slots[i] = a;
    this.given &= ~(1 << i); // new memory: overlaps nothing
    return a as T;
  }

  /**
   * Stores an array the facade made itself (a converted buffer, a packed copy) or chose (the logits
   * as an in-place gradient), named `name` in overlap messages (default: the slot's name).
   */
  set(slot: keyof S & string, a: Buf | null, name?: string): void {
    const i = this.layout.slots.get(slot)!.index;
    this.slots[i] = a;
    this.layout.slotNames[i] = name;
    if (this.specs[slot].out && a !== null) this.given |= 1 << i;
    else this.given &= ~(1 << i);
  }

  /**
   * Every output holding a caller's array against every other slot's array: overlapping bytes (the
   * same ArrayBuffer or SharedArrayBuffer and intersecting byte ranges; on the device, intersecting
   * pointer ranges) are a RangeError naming both, unless the output's SlotSpec.inPlace allows it to
   * be exactly that input. Run before the native call (nativeSlots) and before a small-input path.
   * No allocation; outputs this call allocated are skipped.
   */
  checkOverlaps(): void {
    let g = this.given;
    if (g === 0) return;
    if (this.device) {
      this.checkDeviceOverlaps();
      return;
    }
    const slots = this.slots as (HostBuf | null)[];
    const m = slots.length;
    const l = this.layout;
    // The same arrays as the last call that passed (a training loop's reused buffers): the same
    // answer, since a view's buffer and byteOffset never change and the memo only holds views of
    // fixed-length buffers (so their byteLength cannot change either, short of a detach, which
    // leaves nothing to overlap).
    if (l.memoGiven === g) {
      let j = 0;
      while (j < m && slots[j] === l.memo[j]) j++;
      if (j === m) return;
    }
    // Each slot's buffer is read once (the getter is the costly part) into a scratch array of the
    // op's own, cleared again before returning (no allocation, nothing retained).
    const bufs = l.buffers;
    for (let j = 0; j < m; j++) {
      const b = slots[j];
      bufs[j] = b === null || b.byteLength === 0 ? null : b.buffer;
    }
    try {
      for (let i = 0; g !== 0; i++, g >>>= 1) {
        if ((g & 1) === 0) continue;
        const buf = bufs[i];
        if (buf === null) continue;
        for (let j = 0; j < m; j++) {
          if (j !== i && bufs[j] === buf) this.checkPair(i, j);
        }
      }
      this.remember(bufs);
    } finally {
      for (let j = 0; j < m; j++) bufs[j] = null;
    }
  }

  /** After a passing check: the call's arrays become the memo when small and of fixed length (else the memo is cleared). */
  private remember(bufs: readonly (ArrayBufferLike | null)[]): void {
    const l = this.layout, slots = this.slots as (HostBuf | null)[];
    let ok = true;
    for (let j = 0; j < slots.length && ok; j++) {
      const b = slots[j], buf = bufs[j] as (ArrayBufferLike & { resizable?: boolean; growable?: boolean }) | null;
      if (b !== null && (b.byteLength > MEMO_BYTES || (buf !== null && (buf.resizable === true || buf.growable === true)))) ok = false;
    }
    for (let j = 0; j < slots.length; j++) l.memo[j] = ok ? slots[j] : null;
    l.memoGiven = ok ? this.given : -1;
  }

  /** Slots i (an output) and j share a buffer: a RangeError when their byte ranges intersect (unless an allowed in-place alias). */
  private checkPair(i: number, j: number): void {
    const a = this.slots[i] as HostBuf, b = this.slots[j] as HostBuf;
    const a0 = a.byteOffset, a1 = a0 + a.byteLength, b0 = b.byteOffset, b1 = b0 + b.byteLength;
    if (b0 >= a1 || a0 >= b1) return; // apart
    if (a0 === b0 && a1 === b1 && (this.layout.inPlace[i] & (1 << j)) !== 0) return;
    throw this.overlapError(i, j);
  }

  private checkDeviceOverlaps(): void {
    const slots = this.slots;
    for (let i = 0; i < slots.length; i++) {
      if ((this.given & (1 << i)) === 0) continue;
      const a = slots[i] as DeviceArray | null;
      if (a === null || a.byteLength === 0) continue;
      const a0 = devicePointer(a, this.nameOf(i)), a1 = a0 + BigInt(a.byteLength);
      for (let j = 0; j < slots.length; j++) {
        const b = slots[j] as DeviceArray | null;
        if (j === i || b === null || b.byteLength === 0) continue;
        const b0 = devicePointer(b, this.nameOf(j)), b1 = b0 + BigInt(b.byteLength);
        if (b0 >= a1 || a0 >= b1) continue;
        if (a0 === b0 && a1 === b1 && (this.layout.inPlace[i] & (1 << j)) !== 0) continue;
        throw this.overlapError(i, j);
      }
    }
  }

  /** The name slot i's array was read under (its slot name if another call of the op has run since). */
  private nameOf(i: number): string {
    return (this.layout.generation === this.generation ? this.layout.slotNames[i] : undefined) ?? this.names[i];
  }

  private overlapError(i: number, j: number): RangeError {
    const out = this.nameOf(i), other = this.nameOf(j);
    const what = this.specs[this.names[j]].out ? 'the output' : 'the input';
    if ((this.layout.inPlace[i] & (1 << j)) !== 0) {
      return new RangeError(`${out}: expected ${other} itself or a buffer apart from it, received a view that overlaps it`);
    }
    return new RangeError(
      `${out}: expected a buffer apart from ${what} ${other}, received one that overlaps it (the same ${this.device ? 'device memory' : 'buffer'})`,
    );
  }

  /** Frees the outputs this call allocated (when it failed). */
  release(): void {
    for (const a of this.allocated) a.free();
  }

  /** The slots as the native protocol wants them. */
  nativeSlots(): unknown[] {
    this.checkOverlaps();
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
  known?: KnownKeys,
): { opts: Record<string, unknown>; out: Record<string, unknown> } {
  const opts = optionsObject<Record<string, unknown>>(options, 'options', required, known) as Record<string, unknown>;
  const out = (opts.out ?? {}) as Record<string, unknown>;
  if (known !== undefined && opts.out !== undefined && typeof out === 'object' && out !== null && !ArrayBuffer.isView(out)) {
    optionsObject(out, 'options.out', true, (known.out ??= outKeys(known.op, outs)));
  }
  for (let i = 0; i < args.length; i++) io.rejectDevice(args[i][0], args[i][1]);
  io.rejectDevices(opts, keys, 'options');
  io.rejectDevices(out, outs, 'options.out');
  return { opts, out };
}

const outKeysCache = new WeakMap<readonly string[], Map<string, KnownKeys>>();
/** The known keys of an op's `out` object (its outputs), built once per op and list. */
export function outKeys(op: string, outs: readonly string[]): KnownKeys {
  let byOp = outKeysCache.get(outs);
  if (!byOp) outKeysCache.set(outs, (byOp = new Map()));
  let k = byOp.get(op);
  if (!k) byOp.set(op, (k = { ...knownKeys(op, outs), kind: 'output' }));
  return k;
}
