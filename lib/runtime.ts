// Process-wide settings of the CPU kernels: the thread pool and the SIMD level.
import { integer, oneOf } from './check.js';
import { binding } from './native.js';

interface RuntimeBinding {
  setNumThreads(n: number): void;
  getNumThreads(): number;
  defaultNumThreads(): number;
  simdInfo(): { active: SimdLevel; detected: SimdLevel };
  setSimd(level: number): boolean;
  readBandwidth(bytes: number, reps: number): number;
}
const native = binding<RuntimeBinding>();

export type SimdLevel = 'scalar' | 'avx2' | 'avx512';
const LEVELS: readonly SimdLevel[] = ['scalar', 'avx2', 'avx512'];

/**
 * Sets how many threads the CPU kernels use (the calling thread included). Results are
 * identical for every thread count. Default: the machine's available parallelism.
 */
export function setNumThreads(threads: number): void {
  native.setNumThreads(integer(threads, 'threads', 1, 1024));
}

/** The number of threads the CPU kernels use. */
export function getNumThreads(): number {
  return native.getNumThreads();
}

/** The machine's available parallelism (the default thread count). */
export function defaultNumThreads(): number {
  return native.defaultNumThreads();
}

/** The SIMD level in use and the best one this CPU supports. */
export function simdLevel(): { active: SimdLevel; detected: SimdLevel } {
  return native.simdInfo();
}

/**
 * Lowers (or restores) the SIMD level of every kernel, e.g. to compare paths. Throws a RangeError
 * when the CPU lacks the level. The environment variable RK_SIMD does the same at start-up.
 */
export function setSimdLevel(level: SimdLevel): void {
  const l = oneOf(level, 'level', LEVELS);
  if (!native.setSimd(LEVELS.indexOf(l))) {
    throw new RangeError(`level: expected a level this CPU supports (up to '${native.simdInfo().detected}'), received '${l}'`);
  }
}

/**
 * Measures the machine's streaming-read bandwidth in GB/s (1e9 B/s) with all kernel threads:
 * the ceiling that memory-bound kernels are compared against.
 */
export function measureReadBandwidth(bytes = 512 * 1024 * 1024, reps = 5): number {
  return native.readBandwidth(integer(bytes, 'bytes', 1 << 20, 2 ** 34), integer(reps, 'reps', 1, 1000));
}
