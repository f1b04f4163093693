// npm run leak: the process's RSS stays flat over many calls of every kernel, sync and Async.
//
//   npx tsx --expose-gc scripts/leak.ts [--calls N] [--bound MiB] [--only name,name]
//
// Per export and form: a small valid call (tests/properties.ts builds it), warmed up, then N calls
// (default 100k; Async ones 64 in flight), after as many warm-up calls; RSS is read after a full GC
// before and after. Fails (exit 1) when RSS grew by more than the bound (default 4 MiB: a leak of 48
// bytes a call over 100k calls would show; what V8 and the allocator keep for reuse settles during
// the warm-up: with a 20k warm-up the first export still showed +17 MiB that the next gave back).
// The advantages' TypeScript small-input path is off, so every call reaches native code.
import fc from 'fast-check';

import { _setSmallPathThreshold } from '../lib/advantages/index.js';
import { EXPORTS } from '../tests/properties.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const calls = Number(arg('calls') ?? 100_000);
const boundMiB = Number(arg('bound') ?? 4);
const only = arg('only')?.split(',');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('leak: run with --expose-gc (npm run leak does)');

const MiB = 1024 * 1024;
const rss = () => {
  gc();
  gc();
  return process.memoryUsage().rss;
};

_setSmallPathThreshold(0);
const specs = only ? EXPORTS.filter((s) => only.includes(s.name)) : EXPORTS;
console.log(`leak: ${calls} calls per export and form, bound ${boundMiB} MiB of RSS growth`);
const t0 = performance.now();
let failed = 0;
for (const spec of specs) {
  const [c] = fc.sample(spec.arb, { numRuns: 1, seed: 42 });
  const { args } = spec.build(c);
  for (const form of ['sync', 'Async'] as const) {
    const run = async (n: number) => {
      if (form === 'sync') {
        for (let i = 0; i < n; i++) spec.sync(...(args as never[]));
      } else {
        const inFlight = 64;
        for (let i = 0; i < n; i += inFlight) {
          const batch: Promise<unknown>[] = [];
          for (let j = 0; j < inFlight && i + j < n; j++) batch.push(spec.async(...(args as never[])));
          await Promise.all(batch);
        }
      }
    };
    await run(calls); // warm-up as long as the measurement: JIT, V8 heap sizing, allocator arenas, worker threads
    const before = rss();
    const t = performance.now();
    await run(calls);
    const after = rss();
    const grew = (after - before) / MiB;
    const ok = grew <= boundMiB;
    if (!ok) failed++;
    console.log(
      `leak: ${(spec.name + (form === 'Async' ? 'Async' : '')).padEnd(27)} RSS ${(before / MiB).toFixed(1)} -> ${(after / MiB).toFixed(1)} MiB ` +
        `(${grew >= 0 ? '+' : ''}${grew.toFixed(2)}) over ${calls} calls, ${((performance.now() - t) / 1000).toFixed(1)} s ${ok ? 'ok' : 'FAIL'}`,
    );
  }
}
console.log(`leak: ${failed === 0 ? 'RSS flat for every export' : `${failed} growing`} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
process.exit(failed === 0 ? 0 : 1);
