// The short property run of `npm test` (tests/properties.ts): for every export, random valid calls
// against the float64 references (sync, and Async with the same bits), and random invalid mutations
// that must throw a TypeError/RangeError naming the argument. `npm run fuzz` runs the same
// properties 10k times per export (scripts/fuzz.ts); a failure prints the seed to replay it.
import fc from 'fast-check';
import { describe, it } from 'vitest';

import { EXPORTS, invalidProperty, validProperty } from './properties.js';

const RUNS = 15;
// A fixed seed per run of the suite would hide nothing new; a fresh one explores, and fast-check
// prints the seed and path of any counterexample.
describe('property tests over every export', () => {
  for (const spec of EXPORTS) {
    it(`${spec.name}: valid calls match the float64 reference, sync and Async`, async () => {
      await fc.assert(validProperty(spec), { numRuns: RUNS });
    });
    it(`${spec.name}: invalid calls throw a TypeError/RangeError naming the argument`, async () => {
      await fc.assert(invalidProperty(spec), { numRuns: RUNS });
    });
  }
});
