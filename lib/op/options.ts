// Option specs of the op descriptors: how each scalar option is read (its check and message, its
// default, possibly depending on the options read before it) and packed for the native call. Each
// op's reader and packer are compiled once into straight-line code (docs/design.md).
import { boolean, describe, finiteIn, integer, oneOf } from '../check.js';

// ---- options ----------------------------------------------------------------------------------

/** How one scalar option is read: its check (with the message), its default, and its native code. */
export interface OptionSpec<T> {
  /** Reads the option; `value` is undefined when it was not given. `prev` holds the options read so far. */
  read(value: unknown, name: string, prev: Readonly<Record<string, unknown>>): T;
  /** The number packed for the native call. */
  code(value: T): number;
  /** For enums: the names in code order (exported to the native layout). */
  values?: readonly string[];
  /**
   * The key users write in the options object when it is not the descriptor's own (native) name:
   * preferenceLoss's `loss` param is read from `options.lossType` (TRL's name).
   */
  key?: string;
}

/** `spec` read from the user's key `key` (the descriptor and native layout keep their own name). */
export function userKey<T>(key: string, spec: OptionSpec<T>): OptionSpec<T> {
  return { ...spec, key };
}

/** The keys users write for `specs`, in declaration order (for knownKeys). */
export function optionKeys(specs: OptionSpecs): string[] {
  return Object.keys(specs).map((k) => specs[k].key ?? k);
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
    read: (v, name) => (v === undefined ? dflt : boolean(v, name)),
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
  const readBody = keys.map((key, i) => `o[${k(key)}] = s[${k(key)}].read(v[${k(specs[key].key ?? key)}], n[${i}], o);`).join('\n');
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
  if (!full) c.names.set(prefix, (full = c.keys.map((key) => `${prefix}.${specs[key].key ?? key}`)));
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

/**
 * An option of some modes only: given in another it is a TypeError saying where it applies (it
 * would be ignored); absent, `spec` reads it (its default). `what` names the modes ("loss 'simpo'"),
 * `current` the mode of this call ("loss 'sigmoid'"), from the options read before it.
 */
export function onlyWhen<T>(
  what: string,
  applies: (prev: Readonly<Record<string, unknown>>) => boolean,
  current: (prev: Readonly<Record<string, unknown>>) => string,
  spec: OptionSpec<T>,
): OptionSpec<T> {
  return {
    read(v, name, prev) {
      if (v !== undefined && !applies(prev)) {
        throw new TypeError(`${name}: applies to ${what} only, expected undefined with ${current(prev)}, received ${describe(v)}`);
      }
      return spec.read(v, name, prev);
    },
    code: spec.code,
    values: spec.values,
    key: spec.key,
  };
}
