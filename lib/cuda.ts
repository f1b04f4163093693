// CUDA device arrays and the CUDA addon (docs/cuda.md).
//
// The CUDA kernels live in a second native module, build/Release/cuda/reward_kernels_cuda.node, built
// from source where the CUDA toolkit is installed (CUDA_BUILD_COMMAND in lib/native.ts builds it beside
// the CPU addon when nvcc is found; the prebuilt binary on npm is CPU only). It is loaded on the first
// call of a `cuda.*` function, never at import: CPU-only users pay nothing for it.
//
// A DeviceArray is a typed pointer into device memory: dtype, length, and the pointer as a bigint.
// Every kernel accepts DeviceArrays (its first array argument decides; hypervolumeMetaReward's
// `current`, as its rewards may be null): it then runs on the device and returns DeviceArrays
// (scalars as numbers); host and device arrays cannot be mixed in one call.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, integer, isDetached, oneOf } from './check.js';
import { CUDA_BUILD_COMMAND } from './native.js';

/**
 * Element types of device arrays. bf16 and f16 travel to and from the host as Uint16Array bit
 * patterns; f64 (Float64Array) holds the few double inputs of hypervolumeMetaReward.
 */
export type DeviceDType = 'f32' | 'bf16' | 'f16' | 'i32' | 'u8' | 'f64';

/** The host TypedArray that holds a dtype's elements. */
export type HostArrayOf<D extends DeviceDType> = D extends 'f32'
  ? Float32Array
  : D extends 'i32'
    ? Int32Array
    : D extends 'u8'
      ? Uint8Array
      : D extends 'f64'
        ? Float64Array
        : Uint16Array;

/** A host TypedArray that can be uploaded. */
export type HostArray = Float32Array | Uint16Array | Int32Array | Uint8Array | Float64Array;

/** One CUDA device, as `cuda.devices()` lists it. */
export interface CudaDevice {
  /** CUDA device index. */
  index: number;
  /** Marketing name, e.g. 'NVIDIA H100 80GB HBM3'. */
  name: string;
  /** Global memory in bytes. */
  totalMemory: number;
  /** Compute capability as 'major.minor', e.g. '9.0'. */
  computeCapability: string;
  /** Number of streaming multiprocessors. */
  multiprocessors: number;
}

/** What `cuda.status()` reports; never throws. */
export interface CudaStatus {
  /** The CUDA module was found and loaded. */
  built: boolean;
  /** Where the facade looks for the CUDA module. */
  modulePath: string;
  /** Number of visible CUDA devices (0 without a driver or a device). */
  deviceCount: number;
  /** Why the module could not be loaded, or the CUDA error name from cudaGetDeviceCount; '' when fine. */
  error: string;
  /** CUDA runtime version the module was built with (e.g. 13000), 0 when unknown. */
  runtimeVersion: number;
  /** CUDA version the installed driver supports (e.g. 13000), 0 when there is no driver. */
  driverVersion: number;
}

interface NativeStatus {
  deviceCount: number;
  error: string;
  errorText: string;
  runtimeVersion: number;
  driverVersion: number;
  emulated: boolean;
}

/** The CUDA addon's functions (native/cuda_binding/). @internal */
export interface CudaNative {
  status(): NativeStatus;
  device(index: number): { name: string; totalMemory: number; major: number; minor: number; multiprocessors: number };
  malloc(bytes: number): bigint;
  free(ptr: bigint): undefined;
  upload(ptr: bigint, source: HostArray): undefined;
  download(out: HostArray, ptr: bigint): undefined;
  copy(dst: bigint, src: bigint, bytes: number): undefined;
  synchronize(): undefined;
  [kernel: string]: unknown;
}

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/**
 * Where the CUDA module is loaded from: `<package>/build/Release/cuda/reward_kernels_cuda.node`, or
 * the file named by the environment variable REWARD_KERNELS_CUDA_MODULE (for tests and custom builds).
 */
export const cudaModulePath: string =
  process.env.REWARD_KERNELS_CUDA_MODULE || path.join(packageRoot, 'build', 'Release', 'cuda', 'reward_kernels_cuda.node');

interface LoadState {
  native: CudaNative | null;
  status: NativeStatus | null;
  loadError: string;
}
let state: LoadState | undefined;

function probe(): LoadState {
  if (state) return state;
  if (!fs.existsSync(cudaModulePath)) {
    state = { native: null, status: null, loadError: `not built (no ${cudaModulePath})` };
    return state;
  }
  try {
    const native = createRequire(import.meta.url)(cudaModulePath) as CudaNative;
    state = { native, status: native.status(), loadError: '' };
  } catch (err) {
    state = { native: null, status: null, loadError: `failed to load ${cudaModulePath}: ${err instanceof Error ? err.message : String(err)}` };
  }
  return state;
}

function cudaVersion(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

/** An Error with a `code` ('RK_CUDA_NOT_BUILT' or 'RK_CUDA_NO_DEVICE'). */
function unavailable(what: string): Error {
  const s = probe();
  let err: Error & { code?: string };
  if (!s.native) {
    err = new Error(
      `reward-kernels: ${what} needs CUDA, but this install was built without it: the CUDA module is ${s.loadError}. ` +
        'The prebuilt binary is CPU only; build from source where the CUDA toolkit (nvcc 12 or newer), CMake >= 3.18 ' +
        `and a C++17 compiler are installed: run \`${CUDA_BUILD_COMMAND}\` in your project, which builds ` +
        'node_modules/reward-kernels/build/Release/cuda/reward_kernels_cuda.node beside the CPU addon ' +
        '(see docs/cuda.md).',
    );
    err.code = 'RK_CUDA_NOT_BUILT';
  } else {
    const st = s.status!;
    const why = st.error ? `cudaGetDeviceCount: ${st.error} (${st.errorText})` : 'cudaGetDeviceCount found 0 devices';
    const rt = st.runtimeVersion ? `CUDA ${cudaVersion(st.runtimeVersion)}` : 'its CUDA version';
    err = new Error(
      `reward-kernels: ${what} needs a CUDA device, and none is available: ${why}. ` +
        `The CUDA module is built; it needs an NVIDIA GPU (compute capability 8.0 or newer) and a driver that supports ${rt}` +
        (st.driverVersion ? ` (this driver supports CUDA ${cudaVersion(st.driverVersion)})` : ' (no NVIDIA driver was found)') +
        '; check `nvidia-smi` and CUDA_VISIBLE_DEVICES.',
    );
    err.code = 'RK_CUDA_NO_DEVICE';
  }
  return err;
}

/** The loaded CUDA module with at least one device, else the clear Error. @internal */
export function cudaNative(what = 'this call'): CudaNative {
  const s = probe();
  if (!s.native || !s.status || s.status.deviceCount < 1) throw unavailable(what);
  return s.native;
}

const BYTES: Record<DeviceDType, number> = { f32: 4, bf16: 2, f16: 2, i32: 4, u8: 1, f64: 8 };
const DTYPES = ['f32', 'bf16', 'f16', 'i32', 'u8', 'f64'] as const;
const MAX_LENGTH = 2 ** 50;

function hostCtor(dtype: DeviceDType) {
  switch (dtype) {
    case 'f32': return Float32Array;
    case 'i32': return Int32Array;
    case 'u8': return Uint8Array;
    case 'f64': return Float64Array;
    default: return Uint16Array;
  }
}

// Owned device memory is freed when its DeviceArray is garbage-collected without free().
const finalizer = new FinalizationRegistry<bigint>((ptr) => {
  try {
    state?.native?.free(ptr);
  } catch {
    // a finalizer cannot report; the process may be tearing down the CUDA context
  }
});

const CONSTRUCT = Symbol('DeviceArray');
// Set by DeviceArray's static block: module-private access to its private fields.
let pointerOfImpl: (a: DeviceArray, name: string) => bigint;
let holdImpl: (arrays: readonly DeviceArray[], delta: 1 | -1) => void;

/**
 * A typed array in CUDA device memory. Create one with `cuda.upload`, `cuda.alloc` or `cuda.wrap`.
 * `free()` releases owned memory now (garbage collection frees it otherwise); any use after `free()`
 * throws. All work runs on CUDA's current device (device 0 unless the process changed it).
 */
export class DeviceArray<D extends DeviceDType = DeviceDType> {
  /** Element type. */
  readonly dtype: D;
  /** Number of elements. */
  readonly length: number;
  /** True for memory allocated by this package (freed by free() or the finalizer); false for `cuda.wrap`. */
  readonly owned: boolean;
  #ptr: bigint;
  #freed = false;
  #pending = 0;

  /** @internal Use cuda.upload, cuda.alloc or cuda.wrap. */
  constructor(token: symbol, ptr: bigint, dtype: D, length: number, owned: boolean) {
    if (token !== CONSTRUCT) throw new TypeError('DeviceArray: create one with cuda.upload, cuda.alloc or cuda.wrap');
    this.#ptr = ptr;
    this.dtype = dtype;
    this.length = length;
    this.owned = owned;
    if (owned && ptr !== 0n) finalizer.register(this, ptr, this);
  }

  /** Size in bytes. */
  get byteLength(): number {
    return this.length * BYTES[this.dtype];
  }

  /** The device address as a bigint (to hand to other CUDA libraries). Throws after free(). */
  get ptr(): bigint {
    this.#live('ptr');
    return this.#ptr;
  }

  /** True once free() was called. */
  get freed(): boolean {
    return this.#freed;
  }

  /**
   * Copies the array to the host (waits for the device work queued before it). `out`, when given,
   * must be the matching TypedArray (Float32Array for f32, Uint16Array for bf16/f16, Int32Array for
   * i32, Uint8Array for u8, Float64Array for f64) of the same length.
   */
  download(out?: HostArrayOf<D>): HostArrayOf<D> {
    this.#live('download');
    const Ctor = hostCtor(this.dtype);
    let dst: HostArray;
    if (out === undefined) {
      dst = new Ctor(this.length);
    } else {
      if (!(out instanceof Ctor)) throw new TypeError(`out: expected a ${Ctor.name} for dtype '${this.dtype}', received ${describe(out)}`);
      if (isDetached(out)) throw new TypeError('out: its ArrayBuffer is detached');
      if (out.length !== this.length) throw new RangeError(`out: expected length ${this.length}, received length ${out.length}`);
      dst = out;
    }
    if (this.length > 0) cudaNative('DeviceArray.download').download(dst, this.#ptr);
    return dst as HostArrayOf<D>;
  }

  /** Copies a host TypedArray of the matching type and the same length into this array. */
  copyFrom(source: HostArrayOf<D>): this {
    this.#live('copyFrom');
    const Ctor = hostCtor(this.dtype);
    if (!(source instanceof Ctor)) throw new TypeError(`source: expected a ${Ctor.name} for dtype '${this.dtype}', received ${describe(source)}`);
    if (isDetached(source)) throw new TypeError('source: its ArrayBuffer is detached');
    if (source.length !== this.length) throw new RangeError(`source: expected length ${this.length}, received length ${source.length}`);
    if (this.length > 0) cudaNative('DeviceArray.copyFrom').upload(this.#ptr, source);
    return this;
  }

  /**
   * Releases the device memory now (owned arrays; a wrapped pointer is only forgotten, never freed).
   * Idempotent. Throws while a pending Async kernel call uses the array.
   */
  free(): void {
    if (this.#freed) return;
    if (this.#pending > 0) throw new Error(`${this}: free() while a pending Async call uses it; await it first`);
    this.#freed = true;
    if (this.owned && this.#ptr !== 0n) {
      finalizer.unregister(this);
      cudaNative('DeviceArray.free').free(this.#ptr);
    }
  }

  toString(): string {
    return `DeviceArray(${this.dtype}, ${this.length}${this.#freed ? ', freed' : ''})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  #live(what: string): void {
    if (this.#freed) throw new Error(`${what}: ${this} was used after free()`);
  }

  static {
    pointerOfImpl = (a, name) => {
      if (a.#freed) throw new Error(`${name}: ${a} was used after free()`);
      return a.#ptr;
    };
    holdImpl = (arrays, delta) => {
      for (const a of arrays) a.#pending += delta;
    };
  }
}

/** @internal The pointer of a kernel argument named `name`; a clear Error after free(). */
export function devicePointer(a: DeviceArray, name: string): bigint {
  return pointerOfImpl(a, name);
}

/** @internal Marks arrays as used by a pending Async call (+1) or done (-1); free() refuses meanwhile. */
export function holdDeviceArrays(arrays: readonly DeviceArray[], delta: 1 | -1): void {
  holdImpl(arrays, delta);
}

function dtypeArg(value: unknown, name: string): DeviceDType {
  return oneOf(value, name, DTYPES);
}

function lengthArg(value: unknown, name: string): number {
  return integer(value, name, 0, MAX_LENGTH);
}

/** True when the CUDA module is built and loads and at least one CUDA device is visible. Never throws. */
export function isAvailable(): boolean {
  try {
    const s = probe();
    return !!s.native && !!s.status && s.status.deviceCount > 0;
  } catch {
    return false;
  }
}

/** Module and driver state, for diagnostics. Never throws. */
export function status(): CudaStatus {
  const s = probe();
  return {
    built: !!s.native,
    modulePath: cudaModulePath,
    deviceCount: s.status?.deviceCount ?? 0,
    error: s.native ? (s.status?.error ?? '') : s.loadError,
    runtimeVersion: s.status?.runtimeVersion ?? 0,
    driverVersion: s.status?.driverVersion ?? 0,
  };
}

/** The visible CUDA devices; [] without the CUDA module, a driver or a device. Never throws. */
export function devices(): CudaDevice[] {
  if (!isAvailable()) return [];
  const native = state!.native!;
  const list: CudaDevice[] = [];
  for (let i = 0; i < state!.status!.deviceCount; i++) {
    try {
      const d = native.device(i);
      list.push({
        index: i,
        name: d.name,
        totalMemory: d.totalMemory,
        computeCapability: `${d.major}.${d.minor}`,
        multiprocessors: d.multiprocessors,
      });
    } catch {
      // a device that cannot be queried is left out
    }
  }
  return list;
}

/** Allocates `length` elements of `dtype` on the device (contents undefined). */
export function alloc<D extends DeviceDType>(dtype: D, length: number): DeviceArray<D> {
  const dt = dtypeArg(dtype, 'dtype') as D;
  const n = lengthArg(length, 'length');
  const native = cudaNative('cuda.alloc');
  const ptr = n === 0 ? 0n : native.malloc(n * BYTES[dt]);
  return new DeviceArray(CONSTRUCT, ptr, dt, n, true);
}

/** The dtype a host array uploads as: f32 / i32 / u8 / f64 from its type, bf16 or f16 (required) for a Uint16Array. */
function uploadDType(source: unknown, dtype: unknown): DeviceDType {
  const given = dtype === undefined ? undefined : dtypeArg(dtype, 'options.dtype');
  let natural: DeviceDType[];
  if (source instanceof Float32Array) natural = ['f32'];
  else if (source instanceof Int32Array) natural = ['i32'];
  else if (source instanceof Uint8Array) natural = ['u8'];
  else if (source instanceof Uint16Array) natural = ['bf16', 'f16'];
  else if (source instanceof Float64Array) natural = ['f64'];
  else {
    throw new TypeError(`source: expected a Float32Array, Uint16Array (bf16/f16 bits), Int32Array, Uint8Array or Float64Array, received ${describe(source)}`);
  }
  if (given === undefined) {
    if (natural.length > 1) throw new TypeError("options.dtype: a Uint16Array needs dtype 'bf16' or 'f16', received undefined");
    return natural[0];
  }
  if (!natural.includes(given)) {
    throw new TypeError(`options.dtype: a ${(source as HostArray).constructor.name} uploads as ${natural.map((d) => `'${d}'`).join(' or ')}, received '${given}'`);
  }
  return given;
}

/**
 * Copies a host TypedArray to new device memory. Float32Array -> 'f32', Int32Array -> 'i32',
 * Uint8Array -> 'u8', Float64Array -> 'f64'; a Uint16Array holds bf16 or f16 bits and needs `dtype`.
 */
export function upload(source: Float32Array, options?: { dtype?: 'f32' }): DeviceArray<'f32'>;
export function upload(source: Int32Array, options?: { dtype?: 'i32' }): DeviceArray<'i32'>;
export function upload(source: Uint8Array, options?: { dtype?: 'u8' }): DeviceArray<'u8'>;
export function upload(source: Float64Array, options?: { dtype?: 'f64' }): DeviceArray<'f64'>;
export function upload<D extends 'bf16' | 'f16'>(source: Uint16Array, options: { dtype: D }): DeviceArray<D>;
export function upload(source: HostArray, options?: { dtype?: DeviceDType }): DeviceArray;
export function upload(source: HostArray, options?: { dtype?: DeviceDType }): DeviceArray {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new TypeError(`options: expected an object, received ${describe(options)}`);
  }
  const dtype = uploadDType(source, options?.dtype);
  if (isDetached(source)) throw new TypeError('source: its ArrayBuffer is detached');
  cudaNative('cuda.upload');
  const a = alloc(dtype, source.length);
  try {
    if (source.length > 0) cudaNative('cuda.upload').upload(a.ptr, source);
  } catch (err) {
    a.free();
    throw err;
  }
  return a;
}

/**
 * Wraps an existing device pointer (from another CUDA library in this process) without copying.
 * The memory is not owned: free() and garbage collection never release it, and it must outlive
 * every use of the DeviceArray. `length` is trusted: it must not exceed the allocation.
 */
export function wrap<D extends DeviceDType>(ptr: bigint, dtype: D, length: number): DeviceArray<D> {
  if (typeof ptr !== 'bigint') throw new TypeError(`ptr: expected a bigint device address, received ${describe(ptr)}`);
  const dt = dtypeArg(dtype, 'dtype') as D;
  const n = lengthArg(length, 'length');
  if (ptr < 0n || ptr >= 2n ** 64n) throw new RangeError(`ptr: expected a 64-bit unsigned address, received ${ptr}`);
  if (ptr === 0n && n > 0) throw new RangeError(`ptr: expected a non-null address for ${n} elements, received 0n`);
  if (ptr % BigInt(BYTES[dt]) !== 0n) {
    throw new RangeError(`ptr: expected an address aligned to ${BYTES[dt]} bytes for dtype '${dt}', received 0x${ptr.toString(16)}`);
  }
  cudaNative('cuda.wrap');
  return new DeviceArray(CONSTRUCT, ptr, dt, n, false);
}

/** Waits for all device work queued so far (cudaDeviceSynchronize). */
export function synchronize(): void {
  cudaNative('cuda.synchronize').synchronize();
}

/** The CUDA entry points, exported from the package as `cuda`. */
export const cuda = { isAvailable, status, devices, upload, alloc, wrap, synchronize } as const;

/** @internal A kernel argument that must be a live DeviceArray of one of `dtypes` and (optionally) `length`. */
export function deviceArg(
  value: unknown,
  name: string,
  dtypes: readonly DeviceDType[],
  length: number | undefined,
  why = 'the logits are a DeviceArray; host and device arrays cannot be mixed in one call',
): DeviceArray {
  if (!(value instanceof DeviceArray)) {
    throw new TypeError(`${name}: expected a DeviceArray (${why}), received ${describe(value)}`);
  }
  if (!dtypes.includes(value.dtype)) {
    throw new TypeError(`${name}: expected a DeviceArray of dtype ${dtypes.map((d) => `'${d}'`).join(' or ')}, received ${value}`);
  }
  devicePointer(value, name);
  if (length !== undefined && value.length !== length) {
    throw new RangeError(`${name}: expected length ${length}, received length ${value.length}`);
  }
  return value;
}
