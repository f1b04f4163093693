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

/** Like typedArray, and its length must be `length`. */
export function typedArrayOfLength<C extends TypedArrayCtor>(
  value: unknown,
  name: string,
  ctor: C,
  length: number,
): InstanceType<C> {
  const a = typedArray(value, name, ctor);
  if (a.length !== length) {
    throw new RangeError(`${name}: expected length ${length}, received length ${a.length}`);
  }
  return a;
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

/** The options object (undefined allowed when every option is optional). */
export function options<T extends object>(value: unknown, name: string, required: boolean): Partial<T> {
  if (value === undefined && !required) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${name}: expected an options object, received ${describe(value)}`);
  }
  return value as Partial<T>;
}

/** The caller's `out` buffer when given (checked), else a new Float32Array. */
export function outFloat32(value: unknown, name: string, length: number): Float32Array {
  if (value === undefined) return new Float32Array(length);
  return typedArrayOfLength(value, name, Float32Array, length);
}
