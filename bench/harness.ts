// Shared benchmark plumbing: timing, rows, progress and tables. Each kernel family has a
// bench/<family>.bench.ts whose default export `run(ctx)` returns its rows (and may export a
// `chart: ChartSpec`); bench/run.ts runs them, prints the tables and writes the result files.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rng } from '../tests/rng.js';
import type { ChartSpec } from './chart.js';

export { rng };
export type { ChartSpec };

export const benchDir = path.dirname(fileURLToPath(import.meta.url));

export interface BenchContext {
  /** Streaming-read bandwidth of this machine, GB/s: the median pass of the probe (measureBandwidth) in this run. */
  readBandwidthGBs: number;
  /** Threads used by the native kernels (and offered to peers that take a thread count). */
  threads: number;
  /** Fewer repetitions and smaller peers (for a smoke run). */
  quick: boolean;
  /** Copy bandwidth (a streaming read plus a streaming write, counted as bytes moved), GB/s, same probe. */
  copyBandwidthGBs?: number;
}

export interface BenchRow {
  /** The operation, e.g. 'tokenLogprobs forward'. */
  op: string;
  /** The shape or case, e.g. 'N=1024 V=151936 f32'. */
  shape: string;
  /** Who computed it: 'reward-kernels', 'pure TS', 'onnxruntime-node', ... */
  impl: string;
  /** Median wall time of one call, ms. */
  ms: number;
  /** Bytes that must be read per call (for GB/s), when meaningful. */
  bytes?: number;
  /** Elements processed per call (for elements/s), when meaningful. */
  elements?: number;
  /** Free text: peak RSS growth, threads, what a peer could not do. */
  note?: string;
  /** Set on the rows of a size sweep (e.g. 'V'): drawn in the family's chart, kept in the JSON,
   * left out of the printed tables. */
  sweep?: string;
}

export interface BenchSection {
  family: string;
  rows: BenchRow[];
  /** How to draw the family's chart (else the module's exported `chart`, else chosen from the rows). */
  chart?: ChartSpec;
}

// Progress: bench/run.ts installs a sink that shows the family, the case named by the last
// progress() call, the timings done and the elapsed time on stderr.
export interface ProgressEvent {
  /** A new case (what is being timed now). */
  label?: string;
  /** One timing finished. */
  tick?: boolean;
}
let progressSink: ((e: ProgressEvent) => void) | null = null;

/** Installs (or with null removes) the receiver of progress events. */
export function setProgressSink(sink: ((e: ProgressEvent) => void) | null): void {
  progressSink = sink;
}

/** Names the case a family is about to time (shown on stderr while it runs). */
export function progress(label: string): void {
  progressSink?.({ label });
}

function tick(): void {
  progressSink?.({ tick: true });
}

/** Median of `reps` timed calls (after `warmup` untimed ones), in ms; `prep` runs untimed before each call. */
export function timeSync(fn: () => unknown, reps = 7, warmup = 1, prep?: () => void): number {
  for (let i = 0; i < warmup; i++) {
    prep?.();
    fn();
  }
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    prep?.();
    const a = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - a) / 1e6);
  }
  tick();
  return median(t);
}

export async function timeAsync(fn: () => Promise<unknown>, reps = 7, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const a = process.hrtime.bigint();
    await fn();
    t.push(Number(process.hrtime.bigint() - a) / 1e6);
  }
  tick();
  return median(t);
}

/** For calls too short to time one at a time: median over batches of `inner` calls, ms per call. */
export function timeSmall(fn: () => unknown, inner = 1000, reps = 9): number {
  return timeSync(() => {
    for (let i = 0; i < inner; i++) fn();
  }, reps, 1) / inner;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Fills an array with normal(0, sd) values. */
export function fillNormal(a: Float32Array, sd: number, seed: number): Float32Array {
  const r = rng(seed);
  for (let i = 0; i < a.length; i += 2) {
    const u = Math.max(r(), 1e-12), v = r();
    const m = sd * Math.sqrt(-2 * Math.log(u));
    a[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < a.length) a[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return a;
}

/** Peak resident set size so far, MiB (process.resourceUsage().maxRSS is in KiB). */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export function formatRow(r: BenchRow, ctx: BenchContext): string[] {
  const gbs = r.bytes ? r.bytes / r.ms / 1e6 : undefined;
  const eps = r.elements ? r.elements / r.ms / 1e6 : undefined;
  return [
    r.op,
    r.shape,
    r.impl,
    r.ms < 0.01 ? `${(r.ms * 1000).toFixed(2)} us` : `${r.ms.toFixed(r.ms < 10 ? 3 : 1)} ms`,
    gbs === undefined ? '' : gbs.toFixed(2),
    gbs === undefined ? '' : `${((100 * gbs) / ctx.readBandwidthGBs).toFixed(0)}%`,
    eps === undefined ? '' : eps.toFixed(3),
    r.note ?? '',
  ];
}

export const HEADER = ['op', 'shape', 'impl', 'median', 'GB/s', '% read bw', 'Gelem/s', 'note'];

export function markdownTable(rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(HEADER), line(HEADER.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A plain table with aligned columns (numbers right-aligned), for a terminal. */
export function textTable(rows: string[][], header = HEADER): string {
  const all = [header, ...rows];
  const width = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const numeric = header.map((_, c) => rows.length > 0 && rows.every((r) => !r[c] || /^[\d.]+( ?(ms|us|%))?$/.test(r[c])));
  const line = (r: string[]) =>
    r.map((cell, c) => (numeric[c] ? (cell ?? '').padStart(width[c]) : (cell ?? '').padEnd(width[c]))).join('  ').trimEnd();
  return [line(header), width.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
