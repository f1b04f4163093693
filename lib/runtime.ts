// Process-wide settings of the CPU kernels: the thread pool and the SIMD level; the memory-bandwidth
// and exponential-throughput probes the benchmarks compare the kernels against.
import fs from 'node:fs';
import os from 'node:os';
import { boolean, integer, knownKeys, oneOf, options as optionsObject } from './check.js';
import { binding } from './native.js';

interface RuntimeBinding {
  setNumThreads(n: number): void;
  getNumThreads(): number;
  defaultNumThreads(): number;
  simdInfo(): { active: SimdLevel; detected: SimdLevel };
  setSimd(level: number): boolean;
  readBandwidthSamples(bytes: number, reps: number, kind: 0): Float64Array;
  bandwidthSamples(bytes: number, reps: number, kind: 0 | 1): Float64Array;
  expThroughputSamples(reps: number): Float64Array;
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

const GiB = 1024 ** 3;

/**
 * The size of the last-level (L3) cache in bytes, read from
 * /sys/devices/system/cpu/cpu0/cache/index* (Linux); null where it cannot be read.
 */
export function lastLevelCacheBytes(): number | null {
  const dir = '/sys/devices/system/cpu/cpu0/cache';
  try {
    let best: number | null = null;
    for (const d of fs.readdirSync(dir)) {
      if (!d.startsWith('index')) continue;
      const level = Number(fs.readFileSync(`${dir}/${d}/level`, 'utf8').trim());
      const m = /^(\d+)([KMG]?)/.exec(fs.readFileSync(`${dir}/${d}/size`, 'utf8').trim());
      if (level !== 3 || !m) continue;
      const bytes = Number(m[1]) * ({ '': 1, K: 1024, M: 1024 ** 2, G: GiB } as Record<string, number>)[m[2]];
      best = Math.max(best ?? 0, bytes);
    }
    return best;
  } catch {
    return null;
  }
}

/**
 * The default footprint of the bandwidth probe: 4x the L3 cache (so that at most a quarter of a
 * pass can be served from it), at least 512 MiB; 1 GiB where the L3 size is unknown; at most
 * 4 GiB and an eighth of the machine's memory.
 */
export function defaultProbeBytes(): number {
  const l3 = lastLevelCacheBytes();
  const want = l3 === null ? GiB : Math.max(4 * l3, GiB / 2);
  const cap = Math.min(4 * GiB, Math.floor(os.totalmem() / 8));
  return Math.max(1 << 20, Math.floor(Math.min(want, cap) / (1 << 20)) * (1 << 20));
}

/** Rates of the passes of one probe, GB/s (1e9 B/s). */
export interface BandwidthStats {
  /** The median pass: the figure to compare kernels against. */
  median: number;
  min: number;
  max: number;
  /** (max - min) / median: the run-to-run spread of the passes. */
  spread: number;
  /** Every timed pass, in order. */
  samples: number[];
}

export interface BandwidthOptions {
  /** Footprint of the probe in bytes, in [1 MiB, 16 GiB]. Default: defaultProbeBytes(). */
  bytes?: number;
  /** Timed passes (after the buffer is touched once), in [1, 1000]. Default 9. */
  reps?: number;
  /** Also measure the copy bandwidth. Default false. */
  copy?: boolean;
}

export interface BandwidthMeasurement {
  /** The footprint used, bytes. */
  bytes: number;
  /** One streaming read of a `bytes` buffer per pass. */
  read: BandwidthStats;
  /**
   * With `copy: true`: a streaming read of a bytes/2 source plus a streaming (non-temporal) write of
   * a bytes/2 destination per pass, counted as bytes read + written.
   */
  copy?: BandwidthStats;
}

const BANDWIDTH_KEYS = knownKeys('measureBandwidth', ['bytes', 'reps', 'copy']);

function stats(samples: Float64Array): BandwidthStats {
  const s = Array.from(samples);
  const sorted = [...s].sort((a, b) => a - b);
  const m = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
  const min = sorted[0], max = sorted[sorted.length - 1];
  return { median, min, max, spread: (max - min) / median, samples: s };
}

/**
 * Measures the machine's memory bandwidth with all kernel threads: `reps` timed passes over a
 * buffer several times the L3 cache (allocated and touched once), reported as the median pass with
 * its spread. The read figure is the ceiling of the memory-bound kernels (log-probs, divergences).
 */
export function measureBandwidth(options?: BandwidthOptions): BandwidthMeasurement {
  const o = optionsObject<BandwidthOptions>(options, 'options', false, BANDWIDTH_KEYS);
  const bytes = o.bytes === undefined ? defaultProbeBytes() : integer(o.bytes, 'bytes', 1 << 20, 2 ** 34);
  const reps = o.reps === undefined ? 9 : integer(o.reps, 'reps', 1, 1000);
  const copy = o.copy === undefined ? false : boolean(o.copy, 'copy');
  const result: BandwidthMeasurement = { bytes, read: stats(native.bandwidthSamples(bytes, reps, 0)) };
  if (copy) result.copy = stats(native.bandwidthSamples(bytes, reps, 1));
  return result;
}

export interface ExpThroughputOptions {
  /** Timed passes (after one untimed pass), in [1, 1000]. Default 9. */
  reps?: number;
}

export interface ExpThroughputMeasurement extends BandwidthStats {
  /** The SIMD level the probe ran (the active one: setSimdLevel chooses it). */
  simd: SimdLevel;
  /** The kernel threads that ran it, each over its own logits. */
  threads: number;
}

const EXP_KEYS = knownKeys('measureExpThroughput', ['reps']);

/**
 * Measures the compute ceiling of the log-prob forward, in G elements/s (1e9 logits per second) over
 * all kernel threads: each thread runs the forward's own chunk kernel (max pass, then 2^u and their
 * sum, f32, at the active SIMD level) over 64 KiB of logits that stay in its core's cache, so no
 * memory traffic limits it. A memory-bound kernel's ceiling is the read bandwidth (measureBandwidth);
 * the forward's is the lower of that and this.
 */
export function measureExpThroughput(options?: ExpThroughputOptions): ExpThroughputMeasurement {
  const o = optionsObject<ExpThroughputOptions>(options, 'options', false, EXP_KEYS);
  const reps = o.reps === undefined ? 9 : integer(o.reps, 'reps', 1, 1000);
  const threads = getNumThreads();
  const simd = simdLevel().active;
  return { ...stats(native.expThroughputSamples(reps)), simd, threads };
}

/**
 * Measures the machine's streaming-read bandwidth in GB/s (1e9 B/s) with all kernel threads: the
 * median of `reps` passes over a `bytes` buffer (default: defaultProbeBytes(), several times the L3
 * cache). measureBandwidth() gives the spread and the copy bandwidth too.
 */
export function measureReadBandwidth(bytes?: number, reps = 5): number {
  const b = bytes === undefined ? defaultProbeBytes() : integer(bytes, 'bytes', 1 << 20, 2 ** 34);
  return stats(native.readBandwidthSamples(b, integer(reps, 'reps', 1, 1000), 0)).median;
}
