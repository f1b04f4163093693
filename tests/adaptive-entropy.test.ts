// AdaptiveEntropyCoef against TRL's adaptive entropy control (GRPOTrainer, use_adaptive_entropy),
// replayed from its update rule over many optimizer steps.
import { describe, expect, it } from 'vitest';

import { AdaptiveEntropyCoef } from '../lib/index.js';
import { randn, rng } from './helpers.js';

/** TRL's controller, as its _compute_loss writes it: apply, accumulate, update at the step boundary. */
function trlReplay(windows: { sum: number; count: number }[][], o: { coef: number; target: number; delta: number; min: number; max: number }) {
  let coef = o.coef, last = Infinity;
  const applied: number[] = [], coefs: number[] = [];
  for (const micro of windows) {
    let s = 0, c = 0;
    for (const mb of micro) {
      applied.push(last <= o.target ? coef : 0);
      s += mb.sum;
      c += mb.count;
    }
    const world = s / Math.max(c, 1);
    coef = world <= o.target ? Math.min(coef + o.delta, o.max) : Math.max(coef - o.delta, o.min);
    last = world;
    coefs.push(coef);
  }
  return { applied, coefs, last };
}

describe('AdaptiveEntropyCoef', () => {
  it('replays TRL over 300 steps of 1 to 4 micro-batches, entropy crossing the target both ways', () => {
    const r = rng(3);
    const windows = Array.from({ length: 300 }, (_, s) =>
      Array.from({ length: 1 + Math.floor(r() * 4) }, () => {
        const count = Math.floor(r() * 50);
        const mean = 0.2 + 0.15 * Math.sin(s / 20) + 0.05 * (r() - 0.5);
        return { sum: mean * count, count };
      }));
    for (const o of [
      { coef: 0, target: 0.2, delta: 0.005, min: 0, max: 1 },
      { coef: 0.05, target: 0.25, delta: 0.01, min: 0.01, max: 0.06 },
    ]) {
      const ref = trlReplay(windows, o);
      const ctl = new AdaptiveEntropyCoef(o);
      const applied: number[] = [], coefs: number[] = [];
      for (const micro of windows) {
        for (const mb of micro) {
          applied.push(ctl.appliedCoef);
          ctl.accumulate(mb.sum, mb.count);
        }
        coefs.push(ctl.step().coef);
      }
      expect(applied).toEqual(ref.applied);
      expect(coefs).toEqual(ref.coefs);
      expect(ctl.state.lastEntropy).toBe(ref.last);
      expect(new Set(coefs).size).toBeGreaterThan(3);
      expect(applied.some((a) => a === 0) && applied.some((a) => a > 0)).toBe(true);
    }
  });

  it('accumulateTokens sums m * H and m in double; step() can take an all-reduced window; state round-trips', () => {
    const H = randn(37, 1, 4).map(Math.abs);
    const m8 = Uint8Array.from({ length: 37 }, (_, i) => (i % 3 ? 1 : 0));
    const mf = Float32Array.from(m8, (v, i) => v * (0.5 + (i % 2)));
    const ctl = new AdaptiveEntropyCoef({ target: 10 });
    ctl.accumulateTokens(H, m8);
    ctl.accumulateTokens(H, mf);
    ctl.accumulateTokens(H, null);
    let s = 0, c = 0;
    for (let i = 0; i < 37; i++) s += m8[i] * H[i] + mf[i] * H[i] + H[i], c += m8[i] + mf[i] + 1;
    expect(ctl.window.entropySum).toBeCloseTo(s, 12);
    expect(ctl.window.tokenCount).toBeCloseTo(c, 12);
    expect(ctl.step({ entropySum: 1, tokenCount: 0 })).toEqual({ coef: 0.005, lastEntropy: 1 }); // count clamped to 1
    expect(ctl.appliedCoef).toBe(0.005);
    expect(ctl.window).toEqual({ entropySum: 0, tokenCount: 0 });
    const again = new AdaptiveEntropyCoef({ target: 10, ...ctl.state });
    expect(again.state).toEqual(ctl.state);
    expect(new AdaptiveEntropyCoef().appliedCoef).toBe(0); // no measurement yet: no bonus
  });

  it('rejects bad input with a message naming the argument', () => {
    expect(() => new AdaptiveEntropyCoef({ delta: -1 })).toThrow(/options.delta: expected a finite number in \[0, Infinity\], received -1/);
    expect(() => new AdaptiveEntropyCoef({ min: 1, max: 0.5 })).toThrow(/options.max: expected a number >= options.min \(1\), received 0.5/);
    expect(() => new AdaptiveEntropyCoef({ target: '1' as never })).toThrow(TypeError);
    expect(() => new AdaptiveEntropyCoef({ coeff: 1 } as never)).toThrow(/options.coeff: not an option/);
    expect(() => new AdaptiveEntropyCoef({ lastEntropy: NaN })).toThrow(/options.lastEntropy/);
    const ctl = new AdaptiveEntropyCoef();
    expect(() => ctl.accumulate(NaN, 1)).toThrow(/entropySum: expected a finite number/);
    expect(() => ctl.accumulate(1, -1)).toThrow(/tokenCount: expected a finite number in \[0, Infinity\]/);
    expect(() => ctl.accumulateTokens(new Float64Array(2) as never, null)).toThrow(/entropy: expected a Float32Array/);
    expect(() => ctl.accumulateTokens(new Float32Array(2), new Uint8Array(3))).toThrow(/mask: expected length 2, received length 3/);
    expect(() => ctl.step({ entropySum: 1 } as never)).toThrow(/window.tokenCount/);
  });
});
