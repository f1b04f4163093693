// defineOp: the sync and Async, host and device entry points of an op descriptor, and the one
// native protocol both addons share:  op(params, scalars, ...slots)
//   params  Float64Array of the packed scalar options (declaration order; enums as their index)
//   scalars Float64Array the kernel writes its scalar results into (declaration order)
//   slots   one argument per declared slot in declaration order: a TypedArray or null on the host;
//           [pointer: bigint, length: number, dtype code] or null on the device
import { cudaNative, DeviceArray, holdDeviceArrays } from '../cuda.js';
import { binding } from '../native.js';
import type { OptionSpecs } from './options.js';
import { Io, slotLayout, type SlotSpecs } from './io.js';

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

type Tail<T extends readonly unknown[]> = T extends readonly [unknown, ...infer R] ? R : never;

/**
 * An entry point's call signature, host and device in one: the first array argument decides which
 * (a DeviceArray there selects the device arguments and result). One signature rather than two
 * overloads, so that a mistake in a host call is reported against the host signature alone (with
 * overloads TypeScript lists the DeviceArray one too). Labelled tuples keep the parameter names in
 * editor hints.
 * @inline
 */
export interface Entry<HA extends readonly [unknown, ...unknown[]], HR, DA extends readonly [unknown, ...unknown[]], DR> {
  <F extends HA[0] | DA[0]>(first: F, ...rest: [F] extends [HA[0]] ? Tail<HA> : Tail<DA>): [F] extends [HA[0]] ? HR : DR;
}

/** The public sync and Async entry points of an op, each stated once by its host and device signatures. */
export interface TypedOp<HA extends readonly [unknown, ...unknown[]], HR, DA extends readonly [unknown, ...unknown[]], DR> {
  sync: Entry<HA, HR, DA, DR>;
  async: Entry<HA, Promise<HR>, DA, Promise<DR>>;
}

/** What defineOp returns: the untyped entry points, the descriptor, and their public typing. */
export interface DefinedOp<S extends SlotSpecs, O extends OptionSpecs, A extends unknown[], R> {
  sync: (...args: A) => R;
  async: (...args: A) => Promise<R>;
  descriptor: OpDescriptor<S, O, A, R>;
  /** sync and async typed by the host arguments and result, and the device arguments and result. */
  typed<HA extends readonly [unknown, ...unknown[]], HR, DA extends readonly [unknown, ...unknown[]], DR>(): TypedOp<HA, HR, DA, DR>;
  /** sync and async as the caller types them (an op whose result depends on its options). */
  as<Sync, Async>(): { sync: Sync; async: Async };
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
  const typed = <HA extends readonly [unknown, ...unknown[]], HR, DA extends readonly [unknown, ...unknown[]], DR>() =>
    ({ sync, async }) as unknown as TypedOp<HA, HR, DA, DR>;
  const as = <Sync, Async>() => ({ sync, async }) as unknown as { sync: Sync; async: Async };
  return { sync, async, descriptor: d, typed, as };
}

