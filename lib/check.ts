// Argument checks shared by every kernel (sharp's is.js style): each throws a TypeError or a
// RangeError that names the argument, what was expected and what was received, before any
// native code runs.

/** A short description of a value for error messages: `Float64Array(12)`, `number 1.5`, `undefined`. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor?.name ?? 'ArrayBufferView';
    return 'length' in value ? `${name}(${(value as unknown as { length: number }).length})` : name;
  }
  if (Array.isArray(value)) return `Array(${value.length})`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${typeof value} ${String(value)}`;
  }
  if (typeof value === 'string') return `string '${value.length > 40 ? value.slice(0, 40) + '...' : value}'`;
  if (typeof value === 'function') return 'function';
  return value.constructor?.name ? `object ${value.constructor.name}` : 'object';
}

/** True when the view's ArrayBuffer has been detached (transferred). Node 20 lacks `.detached`. */
export function isDetached(view: ArrayBufferView): boolean {
  const buf = view.buffer as ArrayBuffer & { detached?: boolean };
  if (typeof buf.detached === 'boolean') return buf.detached;
  if (view.byteLength !== 0 || buf.byteLength !== 0) return false;
  try {
    new Uint8Array(buf);
    return false;
  } catch {
    return true;
  }
}

type TypedArrayCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int32ArrayConstructor
  | Uint16ArrayConstructor
  | Uint8ArrayConstructor;

/** Checks that `value` is a (non-detached) instance of `ctor`; returns it typed. */
export function typedArray<C extends TypedArrayCtor>(value: unknown, name: string, ctor: C): InstanceType<C> {
  if (!(value instanceof ctor)) {
    throw new TypeError(`${name}: expected a ${ctor.name}, received ${describe(value)}`);
  }
  if (isDetached(value)) {
    throw new TypeError(`${name}: expected a ${ctor.name} with a live buffer, received one whose ArrayBuffer is detached`);
  }
  return value as InstanceType<C>;
}

/** An integer in [min, max]. */
export function integer(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${name}: expected an integer, received ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name}: expected an integer in [${min}, ${max}], received ${value}`);
  }
  return value;
}

/** A finite number > 0 whose reciprocal is finite too. */
export function finitePositive(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new TypeError(`${name}: expected a finite positive number, received ${describe(value)}`);
  if (!(value > 0) || !Number.isFinite(value) || !Number.isFinite(1 / value)) {
    throw new RangeError(`${name}: expected a finite positive number, received ${value}`);
  }
  return value;
}

/** A finite number in [min, max] (either bound may be infinite). */
export function finiteIn(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${name}: expected a number, received ${describe(value)}`);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`${name}: expected a finite number in [${min}, ${max}], received ${value}`);
  }
  return value;
}

export function boolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name}: expected a boolean, received ${describe(value)}`);
  return value;
}

/** One of the listed strings. */
export function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new (typeof value === 'string' ? RangeError : TypeError)(
      `${name}: expected one of ${allowed.map((a) => `'${a}'`).join(', ')}, received ${describe(value)}`,
    );
  }
  return value as T;
}

/** The option keys of one op (or the outputs of its `out` object), for the unknown-key check of {@link options}. */
export interface KnownKeys {
  /** The op's name, for messages. */
  readonly op: string;
  /** 'option' (the keys of the options object) or 'output' (the keys of options.out). */
  readonly kind: 'option' | 'output';
  readonly list: readonly string[];
  /** The first key of `o` not in the list whose value is not undefined, or null (straight-line code compiled once per list). */
  readonly unknown: (o: object) => string | null;
  /** The keys of the op's `out` object (set once by openOptions). */
  out?: KnownKeys;
  /**
   * Keys that were options once and moved (a positional argument now, or renamed): the key and the
   * message tail of its TypeError (`options.<key>: <tail>, received ...`).
   */
  moved?: Readonly<Record<string, string>>;
}

/** The known option keys of `op` (kind 'option', the default) or its outputs: every list joined, each key once. */
export function knownKeys(op: string, ...lists: readonly (readonly string[])[]): KnownKeys {
  const list = [...new Set(lists.flat())];
  return { op, kind: 'option', list, unknown: unknownKeyFinder(list) };
}

/** knownKeys with the options that moved (`moved`: key -> the message tail saying where it went). */
export function knownKeysMoved(op: string, moved: Readonly<Record<string, string>>, ...lists: readonly (readonly string[])[]): KnownKeys {
  return { ...knownKeys(op, ...lists), moved };
}

/** The message tail of an option that became a positional argument (`call` shows the new signature). */
export const movedToArgument = (arg: string, call: string) => `expected ${arg} as a positional argument before options, ${call}, not in options`;
/** The message tail of a renamed option. */
export const renamedTo = (name: string, why = '') => `renamed to ${name}${why}: expected ${name} instead`;

/**
 * A function returning the first key of an object outside `list` whose value is not undefined (or
 * null): a for-in loop over a switch of the known keys, generated once from the op's own names
 * (never from user input). A switch on internalized strings is a few pointer comparisons, cheaper
 * than a Set lookup on the small-call path.
 */
function unknownKeyFinder(list: readonly string[]): (o: object) => string | null {
  const cases = list.map((k) => `case ${JSON.stringify(k)}:`).join(' ');
  return new Function('o', `for (const k in o) {\n switch (k) { ${cases} continue; }\n if (o[k] !== undefined) return k;\n}\nreturn null;`) as (
    o: object,
  ) => string | null;
}

/** Levenshtein distance (case-insensitive, '_' and '-' ignored: loss_type ~ lossType). */
function distance(a: string, b: string): number {
  const x = a.toLowerCase().replace(/[_-]/g, ''), y = b.toLowerCase().replace(/[_-]/g, '');
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[y.length];
}

/**
 * What TRL and verl call some of our options (config field names, snake_case), for the hint of the
 * unknown-key TypeError when the edit distance would not find them: each maps to our names in
 * order of preference (the first one the op knows is suggested).
 */
const PEER_NAMES: Readonly<Record<string, readonly string[]>> = {
  epsilon: ['epsilonLow'], // TRL GRPOConfig.epsilon
  cliprange: ['epsilonLow', 'epsilon'], // trlx P3OConfig.cliprange: p3oLoss's epsilon
  clipratio: ['epsilonLow'], // verl actor.clip_ratio
  clipratiolow: ['epsilonLow'],
  clipratiohigh: ['epsilonHigh'],
  clipratioc: ['dualClip'], // verl actor.clip_ratio_c
  losstype: ['lossType', 'aggregation'], // TRL DPOConfig / GRPOConfig.loss_type
  lossaggmode: ['aggregation'], // verl actor.loss_agg_mode
  klcoef: ['beta'],
  kllosscoef: ['beta'], // verl actor.kl_loss_coef
  kllosstype: ['klEstimator', 'estimator'], // verl actor.kl_loss_type
  klpenalty: ['estimator', 'klEstimator'], // verl algorithm.kl_penalty
  ldalpha: ['alpha'], // TRL DPOConfig.ld_alpha
  vllmimportancesamplingmode: ['mode'], // TRL GRPOConfig.vllm_importance_sampling_mode
  advestimator: ['estimator'], // verl algorithm.adv_estimator
  entropycoeff: ['entropyCoef'], // verl actor.entropy_coeff
  scalerewards: ['scale'], // TRL GRPOConfig.scale_rewards
  numgenerations: ['groupSize'], // TRL GRPOConfig.num_generations
  cpoalpha: ['alpha'],
  simpogamma: ['gamma'],
  rpoalpha: ['nllWeight'],
  discopoptau: ['tau'],
  fdivergencetype: ['fDivergence'],
  falphadivergencecoef: ['fAlpha'],
  globalflg: ['gate'], // COPO actor.global_flg
  rewardcoefflg: ['scaleByConsistency'], // COPO actor.reward_coef_flg
  normadvbystdingrpo: ['scaleByStd'], // verl algorithm.norm_adv_by_std_in_grpo
  regularizationfactor: ['mu'], // dynamic-reward-weighting actor.regularization_factor
  cliprangeratio: ['weightClip'], // trlx P3OConfig.cliprange_ratio (p3oLoss surrogate 'trlx')
  scaleq: ['scaleByStd'], // trlx P3OConfig.scale_q
  cliptokenwise: ['clip'], // trlx P3OConfig.clip_tokenwise (p3oLoss clip 'token')
  avgtokenwise: ['normalizeByTokens'], // trlx P3OConfig.avg_tokenwise
};

/** The known key closest to `key`: a TRL / verl name's counterpart, else by edit distance (the first in declaration order on a tie). */
export function closestKey(key: string, known: readonly string[]): string {
  const norm = key.toLowerCase().replace(/[_-]/g, '');
  if (Object.prototype.hasOwnProperty.call(PEER_NAMES, norm)) {
    for (const p of PEER_NAMES[norm]) if (known.includes(p)) return p;
  }
  let best = known[0], d = Infinity;
  for (const k of known) {
    const e = distance(key, k);
    if (e < d) (best = k), (d = e);
  }
  return best;
}

/** True for a plain object: an object literal (prototype Object.prototype, of this realm or another) or a null-prototype object. */
function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto === Object.prototype || proto === null) return true;
  if (Array.isArray(value) || ArrayBuffer.isView(value)) return false;
  // Another realm's Object.prototype (vm contexts): itself without a prototype, its constructor named Object.
  return Object.getPrototypeOf(proto) === null && (proto as { constructor?: { name?: unknown } }).constructor?.name === 'Object';
}

/**
 * The options object (undefined allowed when every option is optional): a plain object, never an
 * array, a TypedArray or a class instance (a TypeError naming `name`). With `known`, every key whose
 * value is not undefined must be one of them (a TypeError naming the key and the closest known one).
 */
export function options<T extends object>(value: unknown, name: string, required: boolean, known?: KnownKeys): Partial<T> {
  if (value === undefined && !required) return {};
  if (typeof value !== 'object' || value === null || !isPlainObject(value)) {
    const what = value !== null && typeof value === 'object' && !Array.isArray(value) && !ArrayBuffer.isView(value) ? 'a plain options object' : 'an options object';
    throw new TypeError(`${name}: expected ${what}, received ${describe(value)}`);
  }
  if (known !== undefined) {
    const k = known.unknown(value);
    if (k !== null) unknownKey(name, k, known, (value as Record<string, unknown>)[k]);
  }
  return value as Partial<T>;
}

function unknownKey(name: string, key: string, known: KnownKeys, value: unknown): never {
  const moved = known.moved !== undefined && Object.prototype.hasOwnProperty.call(known.moved, key) ? known.moved[key] : undefined;
  if (moved !== undefined) {
    throw new TypeError(`${name}.${key}: ${moved}, received ${describe(value)}`);
  }
  throw new TypeError(
    `${name}.${key}: not an ${known.kind} of ${known.op} (did you mean '${closestKey(key, known.list)}'?); ` +
      `expected one of ${known.list.join(', ')}, received an unknown key`,
  );
}

/**
 * The old call shape fn(..., options) where a positional mask now comes before options: an options
 * object in the mask's place (and nothing after it) is a TypeError showing the new call.
 */
export function optionsInMaskPlace(mask: unknown, options: unknown, call: string, name = 'mask'): void {
  if (options === undefined && mask !== null && typeof mask === 'object' && !ArrayBuffer.isView(mask) && isPlainObject(mask)) {
    throw new TypeError(`${name}: expected a mask or null before options (${call}), received an options object in its place`);
  }
}

const INT32_MIN = BigInt(-2147483648), INT32_MAX = BigInt(2147483647);

/**
 * Token ids (targets, labels, group ids) given as a BigInt64Array (onnxruntime's int64): each must
 * fit in int32 (a RangeError naming `name[i]` and the value otherwise), and they are copied into a
 * new Int32Array, which the call reads (an Async call reads the copy, so the caller's array may
 * change meanwhile). Any other value is returned as it is, for the op's own check.
 */
export function int32Ids(value: unknown, name: string): unknown {
  if (!(value instanceof BigInt64Array)) return value;
  if (isDetached(value)) throw new TypeError(`${name}: expected a BigInt64Array with a live buffer, received one whose ArrayBuffer is detached`);
  const n = value.length;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = value[i];
    if (v < INT32_MIN || v > INT32_MAX) throw new RangeError(`${name}[${i}]: expected an id in the int32 range [-2147483648, 2147483647], received ${v}`);
    out[i] = Number(v);
  }
  return out;
}
