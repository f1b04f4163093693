// DRAKES ops (lib/diffusion/): gumbelSoftmax, gumbelSoftmaxBackward and drakesKl against the float64
// references of tests/reference/drakes.ts, gradients against central finite differences, bad
// inputs, determinism across thread counts.
import { afterEach, describe, expect, it } from 'vitest';
import {
  drakesKl,
  drakesKlAsync,
  gumbelSoftmax,
  gumbelSoftmaxAsync,
  gumbelSoftmaxBackward,
  gumbelSoftmaxBackwardAsync,
} from '../lib/diffusion/index.js';
import { vocabDivergence } from '../lib/divergence/index.js';
import { defaultNumThreads, setNumThreads } from '../lib/runtime.js';
import { centralDiff, encodeHalf, expectClose, randn } from './helpers.js';
import { drakesKlRef, gumbelNoise, gumbelSoftmaxBackwardRef, gumbelSoftmaxRef, logRn } from './reference/drakes.js';

afterEach(() => setNumThreads(defaultNumThreads()));

const SIZES: Array<[number, number]> = [[1, 1], [1, 17], [13, 5], [3, 1031], [2, 4097], [1, 32000]];

function withNegInf(z: Float32Array, every: number): Float32Array {
  for (let i = 0; i < z.length; i += every) z[i] = -Infinity;
  return z;
}

describe('the counter-based Gumbel noise', () => {
  it('the reference logarithm agrees with Math.log to 5e-14 over 40 decades', () => {
    let worst = 0;
    for (let i = 0; i < 20000; i++) {
      const x = 10 ** (-20 + (40 * i) / 20000) * (1 + (i % 7) / 10);
      worst = Math.max(worst, Math.abs(logRn(x) - Math.log(x)) / Math.max(1e-300, Math.abs(Math.log(x))));
    }
    expect(worst).toBeLessThan(5e-14);
  });

  it('is standard Gumbel: mean ~ Euler gamma, variance ~ pi^2/6', () => {
    let s = 0, s2 = 0;
    const n = 40000;
    for (let i = 0; i < n; i++) {
      const g = gumbelNoise(3, i >> 8, i & 255);
      s += g;
      s2 += g * g;
    }
    const mean = s / n, v = s2 / n - mean * mean;
    expect(Math.abs(mean - 0.5772156649)).toBeLessThan(0.02);
    expect(Math.abs(v - Math.PI ** 2 / 6)).toBeLessThan(0.05);
  });

  it('the argmax frequencies follow softmax(z) (the Gumbel-max trick)', () => {
    const v = 4, n = 20000;
    const row = [0, Math.log(2), Math.log(3), -Infinity];
    const z = new Float32Array(n * v);
    for (let r = 0; r < n; r++) z.set(row, r * v);
    const { index } = gumbelSoftmax(z, { vocab: v, seed: 11, hard: true });
    const counts = [0, 0, 0, 0];
    for (const k of index) counts[k]++;
    expect(counts[3]).toBe(0);
    expect(Math.abs(counts[0] / n - 1 / 6)).toBeLessThan(0.015);
    expect(Math.abs(counts[1] / n - 2 / 6)).toBeLessThan(0.015);
    expect(Math.abs(counts[2] / n - 3 / 6)).toBeLessThan(0.015);
  });
});

describe('gumbelSoftmax', () => {
  for (const [n, v] of SIZES) {
    for (const tau of [1, 0.37, 4]) {
      it(`N=${n} V=${v} tau=${tau}: the sample and the index match the float64 reference`, () => {
        const z = withNegInf(randn(n * v, 2, n * 131 + v), 7);
        const seed = 1000 + n + v;
        const res = gumbelSoftmax(z, { vocab: v, temperature: tau, seed });
        const ref = gumbelSoftmaxRef(z, v, tau, seed);
        expectClose(res.sample, ref.y, 1e-5, 1e-9, 'sample');
        expect(Array.from(res.index)).toEqual(Array.from(ref.index));
        const hard = gumbelSoftmax(z, { vocab: v, temperature: tau, seed, hard: true });
        expect(Array.from(hard.index)).toEqual(Array.from(ref.index));
        for (let r = 0; r < n; r++) {
          for (let j = 0; j < v; j++) expect(hard.sample[r * v + j]).toBe(ref.index[r] < 0 ? NaN : j === ref.index[r] ? 1 : 0);
        }
      });
    }
  }

  it('large and tiny magnitudes', () => {
    for (const scale of [1e4, 1e-6]) {
      const v = 19, n = 5;
      const z = randn(n * v, scale, 5);
      const res = gumbelSoftmax(z, { vocab: v, seed: 9 });
      const ref = gumbelSoftmaxRef(z, v, 1, 9);
      expectClose(res.sample, ref.y, 1e-5, 1e-9, `scale ${scale}`);
      expect(Array.from(res.index)).toEqual(Array.from(ref.index));
    }
  });

  it('bf16 and f16 logits read as their decoded values', () => {
    for (const dtype of ['bf16', 'f16'] as const) {
      const v = 53, n = 4;
      const { bits, decoded } = encodeHalf(withNegInf(randn(n * v, 3, 8), 11), dtype);
      const res = gumbelSoftmax(bits, { vocab: v, dtype, seed: 5, temperature: 0.5 });
      const ref = gumbelSoftmaxRef(decoded, v, 0.5, 5);
      expectClose(res.sample, ref.y, 1e-5, 1e-9, dtype);
      expect(Array.from(res.index)).toEqual(Array.from(ref.index));
    }
  });

  it('rows with no distribution: all -inf, a NaN or +inf give NaN and index -1', () => {
    const v = 3;
    const z = new Float32Array([-Infinity, -Infinity, -Infinity, 0, NaN, 1, 0, Infinity, 1, 0, 1, 2]);
    const res = gumbelSoftmax(z, { vocab: v, seed: 1 });
    expect(Array.from(res.index.slice(0, 3))).toEqual([-1, -1, -1]);
    for (let i = 0; i < 9; i++) expect(res.sample[i]).toBeNaN();
    expect(res.index[3]).toBeGreaterThanOrEqual(0);
    const g = gumbelSoftmaxBackward(z, new Float32Array(12).fill(1), { vocab: v, seed: 1 });
    for (let i = 0; i < 9; i++) expect(g.gradient[i]).toBeNaN();
  });

  it('the same seed gives the same sample; another seed another; independent of the thread count', () => {
    const v = 1031, n = 37;
    const z = randn(n * v, 1, 3);
    setNumThreads(1);
    const a = gumbelSoftmax(z, { vocab: v, seed: 77 });
    const ga = gumbelSoftmaxBackward(z, randn(n * v, 1, 4), { vocab: v, seed: 77 });
    for (const t of [2, 3]) {
      setNumThreads(t);
      const b = gumbelSoftmax(z, { vocab: v, seed: 77 });
      expect(Buffer.from(b.sample.buffer).equals(Buffer.from(a.sample.buffer))).toBe(true);
      expect(Array.from(b.index)).toEqual(Array.from(a.index));
      const gb = gumbelSoftmaxBackward(z, randn(n * v, 1, 4), { vocab: v, seed: 77 });
      expect(Buffer.from(gb.gradient.buffer).equals(Buffer.from(ga.gradient.buffer))).toBe(true);
    }
    const c = gumbelSoftmax(z, { vocab: v, seed: 78 });
    expect(Array.from(c.index)).not.toEqual(Array.from(a.index));
  });

  it('Async and out buffers give the same bits', async () => {
    const v = 29, n = 6;
    const z = randn(n * v, 1, 12);
    const a = gumbelSoftmax(z, { vocab: v, seed: 4, temperature: 0.8 });
    const sample = new Float32Array(n * v), index = new Int32Array(n);
    const b = await gumbelSoftmaxAsync(z, { vocab: v, seed: 4, temperature: 0.8, out: { sample, index } });
    expect(b.sample).toBe(sample);
    expect(b.index).toBe(index);
    expect(Array.from(sample)).toEqual(Array.from(a.sample));
    expect(Array.from(index)).toEqual(Array.from(a.index));
    const gs = randn(n * v, 1, 13);
    const g1 = gumbelSoftmaxBackward(z, gs, { vocab: v, seed: 4, temperature: 0.8 });
    const gradient = new Float32Array(n * v);
    const g2 = await gumbelSoftmaxBackwardAsync(z, gs, { vocab: v, seed: 4, temperature: 0.8, out: { gradient } });
    expect(g2.gradient).toBe(gradient);
    expect(Array.from(gradient)).toEqual(Array.from(g1.gradient));
  });
});

describe('gumbelSoftmaxBackward', () => {
  for (const [n, v] of SIZES) {
    it(`N=${n} V=${v}: matches the float64 reference`, () => {
      const z = withNegInf(randn(n * v, 2, n + 7 * v), 5);
      const gs = randn(n * v, 1, n + v);
      for (const tau of [1, 0.3]) {
        const res = gumbelSoftmaxBackward(z, gs, { vocab: v, seed: 21, temperature: tau });
        const ref = gumbelSoftmaxBackwardRef(z, gs, v, tau, 21);
        let scale = 0;
        for (const x of ref) scale = Math.max(scale, Math.abs(x));
        expectClose(res.gradient, ref, 1e-5, 1e-6 * scale + 1e-12, `tau ${tau}`);
      }
    });
  }

  it('is the finite-difference gradient of L = sum G * y (the straight-through backward)', () => {
    const v = 11, n = 3, tau = 0.6, seed = 99;
    const z = randn(n * v, 1.5, 31);
    z[4] = -Infinity;
    const gs = randn(n * v, 1, 32);
    const L = (x: Float64Array) => {
      const { y } = gumbelSoftmaxRef(x, v, tau, seed);
      let s = 0;
      for (let i = 0; i < y.length; i++) s += gs[i] * y[i];
      return s;
    };
    const res = gumbelSoftmaxBackward(z, gs, { vocab: v, seed, temperature: tau });
    const x = Float64Array.from(z);
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i])) {
        expect(res.gradient[i]).toBe(0);
        continue;
      }
      expect(Math.abs(res.gradient[i] - centralDiff(L, x, i, 1e-6))).toBeLessThan(2e-6);
    }
  });

  it('the hard sample with the backward is the straight-through estimator: the value is one-hot, the gradient the soft one', () => {
    const v = 7, z = randn(v, 1, 41);
    const hard = gumbelSoftmax(z, { vocab: v, seed: 2, hard: true });
    const soft = gumbelSoftmax(z, { vocab: v, seed: 2 });
    let arg = 0;
    for (let j = 1; j < v; j++) if (soft.sample[j] > soft.sample[arg]) arg = j;
    expect(hard.index[0]).toBe(arg);
    const gs = randn(v, 1, 42);
    const g = gumbelSoftmaxBackward(z, gs, { vocab: v, seed: 2 });
    expectClose(g.gradient, gumbelSoftmaxBackwardRef(z, gs, v, 1, 2), 1e-5, 1e-8, 'st');
  });
});

describe('drakesKl', () => {
  for (const [n, v] of SIZES) {
    it(`N=${n} V=${v}: kl and both gradients match the float64 reference, with and without a mask`, () => {
      const z = withNegInf(randn(n * v, 2, 3 * n + v), 9);
      const zo = randn(n * v, 2, 5 * n + v);
      const mask = new Uint8Array(n).map((_, i) => (i % 3 === 1 ? 0 : 1));
      const mc = new Float32Array(n).map((_, i) => 0.1 + 0.8 * ((i * 0.37) % 1));
      const go = randn(n, 1, 17);
      for (const [m, moveChance, gradOutput] of [[null, 0.3, 1], [mask, mc, go]] as const) {
        const res = drakesKl(z, zo, m, { vocab: v, moveChance, gradOutput, returnGradient: true, returnOldGradient: true });
        const ref = drakesKlRef(z, zo, v, m, moveChance, gradOutput);
        expectClose(res.kl, ref.kl, 1e-5, 1e-6, 'kl');
        let s1 = 0, s2 = 0;
        for (let i = 0; i < ref.grad.length; i++) { s1 = Math.max(s1, Math.abs(ref.grad[i])); s2 = Math.max(s2, Math.abs(ref.gradOld[i])); }
        expectClose(res.gradient, ref.grad, 1e-5, 2e-6 * s1 + 1e-12, 'gradient');
        expectClose(res.oldGradient, ref.gradOld, 1e-5, 2e-6 * s2 + 1e-12, 'oldGradient');
      }
    });
  }

  it('rows over 2^20 logits (their exponentials made again in each pass, not kept) and a KL of 5e-9 match the float64 reference', () => {
    const v = 2 ** 20 + 13, n = 2;
    const z = withNegInf(randn(n * v, 2, 91), 11), zo = randn(n * v, 2, 92);
    const res = drakesKl(z, zo, null, { vocab: v, moveChance: 0.4, returnGradient: true, returnOldGradient: true });
    const ref = drakesKlRef(z, zo, v, null, 0.4);
    expectClose(res.kl, ref.kl, 1e-5, 1e-6, 'kl');
    let s1 = 0, s2 = 0;
    for (let i = 0; i < ref.grad.length; i++) { s1 = Math.max(s1, Math.abs(ref.grad[i])); s2 = Math.max(s2, Math.abs(ref.gradOld[i])); }
    expectClose(res.gradient, ref.grad, 1e-5, 2e-6 * s1 + 1e-12, 'gradient');
    expectClose(res.oldGradient, ref.gradOld, 1e-5, 2e-6 * s2 + 1e-12, 'oldGradient');
    // nearly equal rows: the KL is a small difference of large terms; the double passes keep it to
    // 1e-5 of itself (f32 arithmetic would not)
    const w = 32000;
    const a = randn(w, 3, 93), d = randn(w, 1e-4, 94);
    const b = a.map((x, i) => x + d[i]);
    const small = drakesKl(a, b, null, { vocab: w, moveChance: 1 });
    const want = drakesKlRef(a, b, w, null, 1).kl[0];
    expect(want).toBeGreaterThan(1e-10);
    expect(want).toBeLessThan(1e-7);
    expect(Math.abs(small.kl[0] - want) / want).toBeLessThan(1e-5);
  });

  it('large and tiny magnitudes, bf16 and f16', () => {
    for (const scale of [300, 1e-6]) {
      const v = 23, n = 4;
      const z = randn(n * v, scale, 1), zo = randn(n * v, scale, 2);
      const res = drakesKl(z, zo, null, { vocab: v, moveChance: 0.5, returnGradient: true });
      const ref = drakesKlRef(z, zo, v, null, 0.5);
      expectClose(res.kl, ref.kl, 1e-5, 1e-9 + 1e-12 * scale * scale, `kl ${scale}`);
      let s = 0;
      for (const x of ref.grad) s = Math.max(s, Math.abs(x));
      expectClose(res.gradient, ref.grad, 1e-5, 2e-6 * s + 1e-12, `gradient ${scale}`);
    }
    for (const dtype of ['bf16', 'f16'] as const) {
      const v = 41, n = 3;
      const a = encodeHalf(withNegInf(randn(n * v, 2, 4), 6), dtype), b = encodeHalf(randn(n * v, 2, 5), dtype);
      const res = drakesKl(a.bits, b.bits, null, { vocab: v, dtype, moveChance: 0.25, returnOldGradient: true });
      const ref = drakesKlRef(a.decoded, b.decoded, v, null, 0.25);
      expectClose(res.kl, ref.kl, 1e-5, 1e-6, dtype);
      expectClose(res.oldGradient, ref.gradOld, 1e-5, 1e-7, dtype);
      expect(res.gradient).toBeUndefined();
    }
  });

  it('is KL(p || p_old) / moveChance: zero for equal rows, +inf where p_old has a zero that p does not', () => {
    const v = 5;
    const z = randn(v, 1, 8);
    expect(drakesKl(z, z, null, { vocab: v, moveChance: 0.2 }).kl[0]).toBeCloseTo(0, 6);
    const zo = Float32Array.from(z);
    zo[2] = -Infinity;
    expect(drakesKl(z, zo, null, { vocab: v, moveChance: 0.2 }).kl[0]).toBe(Infinity);
    // p has the zero, p_old not: finite
    const r = drakesKl(zo, z, null, { vocab: v, moveChance: 0.2, returnGradient: true });
    expect(Number.isFinite(r.kl[0])).toBe(true);
    expect(r.gradient[2]).toBe(0);
    const nan = drakesKl(new Float32Array([NaN, 0]), new Float32Array([0, 0]), null, { vocab: 2, moveChance: 1 });
    expect(nan.kl[0]).toBeNaN();
  });

  it("equals vocabDivergence 'reverse_kl' / moveChance, and its gradient with gradOutput 1 / moveChance", () => {
    const v = 1031, n = 5, mc = 0.45;
    const z = withNegInf(randn(n * v, 2, 81), 13), zo = randn(n * v, 2, 82);
    const mask = Uint8Array.of(1, 0, 1, 1, 1);
    const a = drakesKl(z, zo, mask, { vocab: v, moveChance: mc, returnGradient: true });
    const b = vocabDivergence(z, zo, mask, { vocab: v, divergence: 'reverse_kl', returnGradient: true, gradOutput: 1 / mc });
    expectClose(a.kl, Float64Array.from(b.divergence, (x) => x / mc), 1e-5, 1e-6, 'kl');
    let s = 0;
    for (const x of b.gradient) s = Math.max(s, Math.abs(x));
    expectClose(a.gradient, b.gradient, 1e-5, 2e-6 * s, 'gradient');
  });

  it('gradients are the finite differences of the float64 integrand, both rows', () => {
    const v = 9, n = 2, mc = 0.35;
    const z = randn(n * v, 1.2, 61), zo = randn(n * v, 1.2, 62);
    z[3] = -Infinity;
    const go = new Float32Array([0.7, -1.3]);
    const res = drakesKl(z, zo, null, { vocab: v, moveChance: mc, gradOutput: go, returnGradient: true, returnOldGradient: true });
    const L = (a: Float64Array, b: Float64Array) => {
      const { kl } = drakesKlRef(a, b, v, null, mc);
      return go[0] * kl[0] + go[1] * kl[1];
    };
    const x = Float64Array.from(z), xo = Float64Array.from(zo);
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i])) {
        expect(res.gradient[i]).toBe(0);
        continue;
      }
      expect(Math.abs(res.gradient[i] - centralDiff((t) => L(t, xo), x, i))).toBeLessThan(3e-6);
      expect(Math.abs(res.oldGradient[i] - centralDiff((t) => L(x, t), xo, i))).toBeLessThan(3e-6);
    }
  });

  it('is independent of the thread count, Async and out buffers give the same bits', async () => {
    const v = 1031, n = 29;
    const z = randn(n * v, 1, 71), zo = randn(n * v, 1, 72);
    setNumThreads(1);
    const a = drakesKl(z, zo, null, { vocab: v, moveChance: 0.4, returnGradient: true, returnOldGradient: true });
    for (const t of [2, 3]) {
      setNumThreads(t);
      const b = drakesKl(z, zo, null, { vocab: v, moveChance: 0.4, returnGradient: true, returnOldGradient: true });
      expect(Buffer.from(b.kl.buffer).equals(Buffer.from(a.kl.buffer))).toBe(true);
      expect(Buffer.from(b.gradient.buffer).equals(Buffer.from(a.gradient.buffer))).toBe(true);
      expect(Buffer.from(b.oldGradient.buffer).equals(Buffer.from(a.oldGradient.buffer))).toBe(true);
    }
    const kl = new Float32Array(n), gradient = new Float32Array(n * v);
    const c = await drakesKlAsync(z, zo, null, { vocab: v, moveChance: 0.4, returnGradient: true, out: { kl, gradient } });
    expect(c.kl).toBe(kl);
    expect(Array.from(kl)).toEqual(Array.from(a.kl));
    expect(Array.from(gradient)).toEqual(Array.from(a.gradient));
  });
});

describe('DRAKES bad inputs name the argument', () => {
  const z = new Float32Array(6);
  it('gumbelSoftmax', () => {
    expect(() => gumbelSoftmax(z, { vocab: 4 })).toThrow(/^logits: expected a length that is a multiple of vocab/);
    expect(() => gumbelSoftmax(z, { vocab: 3, temperature: 0 })).toThrow(/^options\.temperature/);
    expect(() => gumbelSoftmax(z, { vocab: 3, seed: -1 })).toThrow(/^options\.seed/);
    expect(() => gumbelSoftmax(z, { vocab: 3, seed: 1.5 })).toThrow(/^options\.seed/);
    expect(() => gumbelSoftmax(z, { vocab: 3, hard: 1 as unknown as boolean })).toThrow(/^options\.hard/);
    expect(() => gumbelSoftmax(new Float64Array(6) as unknown as Float32Array, { vocab: 3 })).toThrow(TypeError);
    expect(() => gumbelSoftmax(z, { vocab: 3, out: { sample: new Float32Array(5) } })).toThrow(/^options\.out\.sample/);
    expect(() => gumbelSoftmax(z, { vocab: 3, out: { sample: z } })).toThrow(/^options\.out\.sample: expected a buffer apart from logits/);
    expect(() => gumbelSoftmax(z, { vocab: 3, out: { index: new Int32Array(3) } })).toThrow(/^options\.out\.index/);
    expect(() => gumbelSoftmax(z, { vocab: 3, sed: 1 } as never)).toThrow(/sed.*seed/);
  });
  it('gumbelSoftmaxBackward', () => {
    expect(() => gumbelSoftmaxBackward(z, new Float32Array(5), { vocab: 3 })).toThrow(/^gradSample/);
    expect(() => gumbelSoftmaxBackward(z, null as unknown as Float32Array, { vocab: 3 })).toThrow(/^gradSample/);
    expect(() => gumbelSoftmaxBackward(z, z, { vocab: 3, out: { gradient: z } })).toThrow(/^options\.out\.gradient/);
    expect(() => gumbelSoftmaxBackward(z, new Float32Array(6), { vocab: 3, hard: true } as never)).toThrow(/hard/);
  });
  it('drakesKl', () => {
    expect(() => drakesKl(z, z, null, { vocab: 3 } as never)).toThrow(/^options\.moveChance/);
    expect(() => drakesKl(z, z, null, { vocab: 3, moveChance: 0 })).toThrow(/^options\.moveChance/);
    expect(() => drakesKl(z, z, null, { vocab: 3, moveChance: new Float32Array([1, -1]) })).toThrow(/^options\.moveChance/);
    expect(() => drakesKl(z, new Float32Array(3), null, { vocab: 3, moveChance: 1 })).toThrow(/^oldLogits/);
    expect(() => drakesKl(z, new Uint16Array(6) as never, null, { vocab: 3, moveChance: 1 })).toThrow(/^oldLogits/);
    expect(() => drakesKl(z, z, new Uint8Array(3), { vocab: 3, moveChance: 1 })).toThrow(/^mask/);
    expect(() => drakesKl(z, z, null, { vocab: 3, moveChance: 1, gradOutput: 2 })).toThrow(/^options\.gradOutput/);
    expect(() => drakesKl(z, z, null, { vocab: 3, moveChance: 1, out: { gradient: new Float32Array(6) } })).toThrow(/^options\.out\.gradient/);
    expect(() => drakesKl(z, z, null, { vocab: 3, moveChance: 1, returnGradient: true, out: { gradient: z } })).toThrow(/^options\.out\.gradient/);
    expect(() => drakesKl(z, z, { vocab: 3, moveChance: 1 } as never, undefined as never)).toThrow(/mask/);
  });
});
