// The facade compiles its per-op readers and callers once (lib/op/define.ts, lib/op/options.ts):
// a repeated call of any export builds no new function. A spec object made afresh in a call
// would miss the compiled cache and compile (and leak) code on every call: this test catches it.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';

import { EXPORTS } from './properties.js';

const Original = globalThis.Function;
afterEach(() => {
  globalThis.Function = Original;
});

/** Runs f with the global Function constructor counted; returns the bodies compiled. */
function compiled(f: () => void): string[] {
  const bodies: string[] = [];
  globalThis.Function = new Proxy(Original, {
    construct(target, args: unknown[]) {
      bodies.push(String(args[args.length - 1]).slice(0, 80));
      return Reflect.construct(target, args);
    },
    apply(target, self, args: unknown[]) {
      bodies.push(String(args[args.length - 1]).slice(0, 80));
      return Reflect.apply(target, self, args);
    },
  });
  try {
    f();
  } finally {
    globalThis.Function = Original;
  }
  return bodies;
}

describe('a repeated call compiles nothing', () => {
  it('counts what it should: a fresh spec compiles', () => {
    expect(compiled(() => new Function('return 1')).length).toBe(1);
  });
  for (const spec of EXPORTS) {
    it(`${spec.name}`, () => {
      const [c] = fc.sample(spec.arb, { numRuns: 1, seed: 11 });
      const run = () => {
        const b = spec.build(c as never);
        const undo = b.before?.();
        try {
          spec.sync(...(b.args as never[]));
        } finally {
          undo?.();
        }
      };
      run();  // the first call compiles the op's reader and caller
      expect(compiled(() => { run(); run(); })).toEqual([]);
    });
  }
});
