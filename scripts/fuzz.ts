// npm run fuzz: the property tests of tests/properties.ts, long: for every export (sync and Async),
// N random valid calls against the float64 references and N random invalid mutations that must throw
// a TypeError/RangeError naming the argument.
//
//   npx tsx scripts/fuzz.ts [--cases N] [--seed S] [--only name,name]
//
// Prints the count per export; exits 1 at the first counterexample, with the seed and path that
// replay it (--seed S and fast-check's path), after shrinking.
import fc from 'fast-check';

import { EXPORTS, invalidProperty, validProperty } from '../tests/properties.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const cases = Number(arg('cases') ?? 10_000);
if (!Number.isInteger(cases) || cases < 1) throw new RangeError(`--cases: expected a positive integer, received ${arg('cases')}`);
const seed = arg('seed') !== undefined ? Number(arg('seed')) : (Date.now() ^ (process.pid << 8)) >>> 0;
const only = arg('only')?.split(',');
const specs = only ? EXPORTS.filter((s) => only.includes(s.name)) : EXPORTS;
if (only && specs.length !== only.length) throw new RangeError(`--only: unknown export in ${only.join(',')}`);

console.log(`fuzz: ${cases} valid + ${cases} invalid cases per export, ${specs.length} exports (sync and Async), seed ${seed}`);
const t0 = performance.now();
let total = 0;
for (const spec of specs) {
  const t = performance.now();
  const skipped = { valid: 0, invalid: 0 };
  for (const [kind, prop] of [['valid', validProperty(spec)], ['invalid', invalidProperty(spec)]] as const) {
    const res = await fc.check(prop as fc.IAsyncProperty<unknown[]>, { numRuns: cases, seed, endOnFailure: false });
    if (res.failed) {
      console.log(fc.defaultReportMessage(res) ?? '');
      const err = res.errorInstance;
      console.log(`fuzz: the property said: ${err instanceof Error ? err.message : String(err)}`);
      console.log(`fuzz: FAIL ${spec.name} (${kind}) after ${res.numRuns} cases; replay: npx tsx scripts/fuzz.ts --only ${spec.name} --seed ${seed} --cases ${cases}`);
      process.exit(1);
    }
    total += res.numRuns;
    skipped[kind] = res.numSkips;
  }
  console.log(
    `fuzz: ${spec.name.padEnd(22)} ${cases} valid, ${cases} invalid: ok (${((performance.now() - t) / 1000).toFixed(1)} s; ` +
      `${skipped.invalid} drawn mutations did not apply and were redrawn)`,
  );
}
console.log(`fuzz: every property held: ${total} cases over ${specs.length} exports in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
