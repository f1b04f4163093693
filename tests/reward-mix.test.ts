// gatedRewards (G-RA), discountedCumsum (SubPO step returns) and lagrangianMix +
// lagrangeMultiplierUpdate (Constrained RLHF) against the float64 reference in
// tests/reference/reward-mix.ts: awkward sizes, every mask kind, gradients against central finite
// differences, bad inputs, Async and out buffers, and bit-identical results for 1, 2, 3 threads.
import { afterEach, describe, expect, it } from 'vitest';
import {
  discountedCumsum,
  discountedCumsumAsync,
  discountedReturns,
  gatedRewards,
  gatedRewardsAsync,
  lagrangeMultiplierUpdate,
  lagrangianMix,
  lagrangianMixAsync,
} from '../lib/advantages/index.js';
import { defaultNumThreads, setNumThreads } from '../lib/runtime.js';
import { centralDiff, expectClose, randn, rng } from './helpers.js';
import {
  refDiscountedCumsum,
  refGatedRewards,
  refLagrangianGradXi,
  refLagrangianMix,
  refMultiplierUpdate,
} from './reference/reward-mix.js';

afterEach(() => setNumThreads(defaultNumThreads()));

const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
};
// f32 outputs of double sums: one f32 rounding of the result, plus the cancellation of large terms.
const close = (a: ArrayLike<number>, e: ArrayLike<number>, label: string, scale = maxAbs(e)) =>
  expectClose(a, e, 2e-7, 1e-7 * scale + 1e-38, label);
const bits = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Masks of one [B, T] shape: none, u8 right-padded, u8 with holes, f32 weights (nonzero = on). */
function masks(B: number, T: number, seed: number): [string, Uint8Array | Float32Array | null][] {
  const r = rng(seed);
  const pad = new Uint8Array(B * T), holes = new Uint8Array(B * T), f32 = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    const len = 1 + Math.floor(r() * T);
    for (let t = 0; t < T; t++) {
      pad[b * T + t] = t < len ? 1 : 0;
      holes[b * T + t] = r() < 0.6 ? 1 : 0;
      f32[b * T + t] = r() < 0.5 ? 0 : 0.25 + r();
    }
  }
  return [['null', null], ['padded', pad], ['holes', holes], ['f32', f32]];
}

const SHAPES: [number, number][] = [[1, 1], [1, 9], [7, 1], [13, 37], [3, 101]];

describe('gatedRewards (G-RA)', () => {
  it('matches the reference on awkward sizes, every mask, ties, NaN, large and tiny magnitudes', async () => {
    let worst = 0;
    for (const [B, T] of SHAPES) {
      for (const sd of [1, 1e-30, 1e20]) {
        const low = randn(B * T, sd, B * 31 + T);
        const high = randn(B, sd, B + 7);
        const delta = 0.1 * sd;
        if (B > 2) {
          high[0] = delta; // tie: the gate is >=
          high[1] = NaN;
        }
        for (const [name, m] of masks(B, T, B * T)) {
          const want = refGatedRewards(high, low, m, T, delta);
          const got = gatedRewards(high, low, m, { seqLen: T, threshold: delta });
          close(got, want, `gated ${B}x${T} ${name} sd ${sd}`, maxAbs(want) + maxAbs(low) * T);
          for (let i = 0; i < B; i++) if (Number.isFinite(want[i])) worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.max(1e-300, Math.abs(want[i])));
          if (B > 2) {
            expect(got[0]).toBe(Math.fround(want[0])); // the tie passes the gate
            expect(Number.isNaN(got[1])).toBe(true);
          }
          const out = new Float32Array(B);
          expect(await gatedRewardsAsync(high, low, m, { seqLen: T, threshold: delta, out })).toBe(out);
          expect(bits(out).equals(bits(got))).toBe(true);
        }
      }
    }
    expect(worst).toBeLessThan(1e-6);
  });

  it('gates: below the threshold R is the high reward alone; out may be highRewards', () => {
    const high = Float32Array.of(0.5, 1, 2), low = Float32Array.of(1, 2, 3, 4, 5, 6);
    expect(Array.from(gatedRewards(high, low, null, { seqLen: 2, threshold: 1 }))).toEqual([0.5, 1 + 7, 2 + 11]);
    expect(Array.from(gatedRewards(high, low, Uint8Array.of(1, 0, 0, 1, 1, 1), { seqLen: 2, threshold: 0.6 }))).toEqual([0.5, 5, 13]);
    const h = Float32Array.from(high);
    expect(gatedRewards(h, low, null, { seqLen: 2, threshold: 1, out: h })).toBe(h);
    expect(Array.from(h)).toEqual([0.5, 8, 13]);
  });

  it('its gradient dR/dlow = gate * mask, dR/dhigh = 1 matches finite differences away from the threshold', () => {
    const B = 5, T = 7, delta = 0.2;
    const low = randn(B * T, 1, 3), high = randn(B, 1, 4), w = randn(B, 1, 5);
    const m = masks(B, T, 9)[2][1];
    const loss = (x: Float64Array) => {
      const r = refGatedRewards(x.subarray(0, B), x.subarray(B), m, T, delta);
      let s = 0;
      for (let b = 0; b < B; b++) s += w[b] * r[b];
      return s;
    };
    const x = new Float64Array(B + B * T);
    x.set(high, 0);
    x.set(low, B);
    for (let b = 0; b < B; b++) if (Math.abs(high[b] - delta) < 1e-3) x[b] += 0.01;
    for (let i = 0; i < x.length; i++) {
      const fd = centralDiff(loss, x, i);
      const b = i < B ? i : Math.floor((i - B) / T);
      const analytic = i < B ? w[b] : w[b] * (x[b] >= delta ? 1 : 0) * (m![i - B] !== 0 ? 1 : 0);
      expect(Math.abs(fd - analytic), `coordinate ${i}`).toBeLessThan(1e-6);
    }
  });

  it('rejects bad inputs before native code, naming the argument', () => {
    const high = new Float32Array(3), low = new Float32Array(12);
    expect(() => gatedRewards(high, low, null, { seqLen: 4 } as never)).toThrow(/^options\.threshold: expected a number, received undefined/);
    expect(() => gatedRewards(high, low, null, { seqLen: 4, threshold: NaN })).toThrow(RangeError);
    expect(() => gatedRewards(high, low, null, { seqLen: 5, threshold: 0 })).toThrow(/^lowRewards: expected a length/);
    expect(() => gatedRewards(new Float32Array(4), low, null, { seqLen: 4, threshold: 0 })).toThrow(/^highRewards: expected length 3/);
    expect(() => gatedRewards(new Float64Array(3) as never, low, null, { seqLen: 4, threshold: 0 })).toThrow(/^highRewards/);
    expect(() => gatedRewards(high, low, new Uint8Array(11), { seqLen: 4, threshold: 0 })).toThrow(/^mask/);
    expect(() => gatedRewards(high, low, null, { seqLen: 4, threshold: 0, out: new Float32Array(12) })).toThrow(/^options\.out/);
    expect(() => gatedRewards(high, low, null, { seqLen: 4, threshold: 0, delta: 1 } as never)).toThrow(/^options\.delta: not an option of/);
  });
});

describe('discountedCumsum (SubPO step returns)', () => {
  it('matches the direct double sums, reverse and adjoint, every mask and gamma', async () => {
    for (const [B, T] of SHAPES) {
      const x = randn(B * T, 1, B * 17 + T);
      for (const [name, m] of masks(B, T, B + T)) {
        for (const gamma of [1, 0.9, 0.37, 0]) {
          for (const adjoint of [false, true]) {
            const want = refDiscountedCumsum(x, m, T, gamma, adjoint);
            const got = discountedCumsum(x, m, { seqLen: T, gamma, adjoint });
            close(got, want, `cumsum ${B}x${T} ${name} ${gamma} ${adjoint}`, maxAbs(want) + maxAbs(x));
            const out = new Float32Array(B * T);
            expect(await discountedCumsumAsync(x, m, { seqLen: T, gamma, adjoint, out })).toBe(out);
            expect(bits(out).equals(bits(got))).toBe(true);
          }
        }
      }
    }
    for (const sd of [1e-30, 1e25]) {
      const x = randn(6 * 11, sd, 5);
      const want = refDiscountedCumsum(x, null, 11, 0.99);
      close(discountedCumsum(x, null, { seqLen: 11, gamma: 0.99 }), want, `magnitude ${sd}`, maxAbs(want) + maxAbs(x));
    }
  });

  it('the adjoint is the gradient: finite differences of sum_t w_t G_t, and <y, G(x)> = <adj(y), x>', () => {
    const B = 3, T = 9, gamma = 0.8;
    const x = randn(B * T, 1, 1), w = randn(B * T, 1, 2);
    for (const [name, m] of masks(B, T, 4)) {
      const grad = discountedCumsum(w, m, { seqLen: T, gamma, adjoint: true });
      const loss = (v: Float64Array) => {
        const G = refDiscountedCumsum(v, m, T, gamma);
        let s = 0;
        for (let i = 0; i < G.length; i++) s += w[i] * G[i];
        return s;
      };
      const xd = Float64Array.from(x);
      for (let i = 0; i < x.length; i++) {
        expect(Math.abs(centralDiff(loss, xd, i) - grad[i]), `${name} ${i}`).toBeLessThan(2e-6);
      }
      const G = discountedCumsum(x, m, { seqLen: T, gamma });
      let l = 0, r = 0;
      for (let i = 0; i < x.length; i++) {
        l += w[i] * G[i];
        r += grad[i] * x[i];
      }
      expect(Math.abs(l - r)).toBeLessThan(1e-5 * (1 + Math.abs(l)));
    }
  });

  it('how it relates to discountedReturns: equal on contiguous masks and for gamma = 1; differs over holes', () => {
    const B = 9, T = 23;
    const x = randn(B * T, 1, 8);
    const [, [, pad], [, holes]] = masks(B, T, 12);
    // left padding (a prompt) and right padding: one contiguous run of response tokens per row
    const run = new Uint8Array(B * T);
    for (let b = 0; b < B; b++) for (let t = 2 + (b % 3); t < T - (b % 5); t++) run[b * T + t] = 1;
    for (const m of [pad!, run]) {
      for (const gamma of [1, 0.9]) {
        const dr = discountedReturns(x, m, { seqLen: T, gamma });
        const dc = discountedCumsum(x, m, { seqLen: T, gamma });
        for (let i = 0; i < B * T; i++) if (m[i]) expect(dc[i]).toBe(dr[i]);
        for (let i = 0; i < B * T; i++) if (!m[i]) expect(dr[i]).toBe(0);
      }
    }
    const dr1 = discountedReturns(x, holes!, { seqLen: T, gamma: 1 });
    const dc1 = discountedCumsum(x, holes!, { seqLen: T, gamma: 1 });
    for (let i = 0; i < B * T; i++) if (holes![i]) expect(dc1[i]).toBe(dr1[i]);
    // with holes and gamma < 1 discountedReturns discounts by response tokens, not positions
    const dr = discountedReturns(x, holes!, { seqLen: T, gamma: 0.9 });
    const dc = discountedCumsum(x, holes!, { seqLen: T, gamma: 0.9 });
    let differ = 0;
    for (let i = 0; i < B * T; i++) if (holes![i] && Math.abs(dc[i] - dr[i]) > 1e-4) differ++;
    expect(differ).toBeGreaterThan(B);
  });

  it('rejects bad inputs', () => {
    const x = new Float32Array(12);
    expect(() => discountedCumsum(x, null, { seqLen: 5 })).toThrow(/^values: expected a length/);
    expect(() => discountedCumsum(x, null, { seqLen: 4, gamma: 1.5 })).toThrow(/^options\.gamma: expected a finite number in \[0, 1\]/);
    expect(() => discountedCumsum(x, null, { seqLen: 4, adjoint: 1 as never })).toThrow(/^options\.adjoint/);
    expect(() => discountedCumsum(new Int32Array(12) as never, null, { seqLen: 4 })).toThrow(/^values/);
    expect(() => discountedCumsum(x, new Float32Array(3), { seqLen: 4 })).toThrow(/^mask/);
    expect(() => discountedCumsum(x, null, { seqLen: 4, out: new Float32Array(11) })).toThrow(/^options\.out/);
    expect(() => discountedCumsum(x, null, { seqLen: 4, reverse: true } as never)).toThrow(/^options\.reverse: not an option of/);
  });
});

describe('lagrangianMix (Constrained RLHF)', () => {
  it('matches the reference and its dL/dxi, K = 1, 2, 5, N across the 8192-element chunks', async () => {
    let worst = 0;
    for (const K of [1, 2, 5]) {
      for (const N of [1, 13, 1001, 20011]) {
        const adv = randn(K * N, 1, K * 7 + N), kl = randn(N, 1, N), g = randn(N, 1, N + 3);
        const xi = randn(K, 3, K);
        if (K === 5) {
          xi[3] = 40; // saturated multipliers
          xi[4] = -40;
        }
        const want = refLagrangianMix(adv, kl, xi);
        const { mixed, gradXi } = lagrangianMix(adv, kl, xi, { numRewards: K });
        expect(gradXi).toBeNull();
        close(mixed, want, `mix ${K}x${N}`, maxAbs(want) + K * maxAbs(adv));
        for (let i = 0; i < N; i++) worst = Math.max(worst, Math.abs(mixed[i] - want[i]) / Math.max(1e-3, Math.abs(want[i])));
        const r = lagrangianMix(adv, kl, xi, { numRewards: K, gradMixed: g });
        expect(bits(r.mixed).equals(bits(mixed))).toBe(true);
        const gw = refLagrangianGradXi(adv, kl, xi, g);
        expectClose(r.gradXi!, gw, 1e-6, 1e-7 * Math.sqrt(N) * maxAbs(adv), `gradXi ${K}x${N}`);
        const out = { mixed: new Float32Array(N), gradXi: new Float32Array(K) };
        const a = await lagrangianMixAsync(adv, kl, xi, { numRewards: K, gradMixed: g, out });
        expect(a.mixed).toBe(out.mixed);
        expect(a.gradXi).toBe(out.gradXi);
        expect(bits(out.mixed).equals(bits(mixed))).toBe(true);
        expect(bits(out.gradXi).equals(bits(r.gradXi!))).toBe(true);
      }
    }
    expect(worst).toBeLessThan(1e-6);
  });

  it('gradients wrt xi and the advantages match finite differences of sum_n g_n A_mix,n', () => {
    const K = 3, N = 17;
    const adv = randn(K * N, 1, 1), kl = randn(N, 1, 2), g = randn(N, 1, 3), xi = randn(K, 1.5, 4);
    const { gradXi } = lagrangianMix(adv, kl, xi, { numRewards: K, gradMixed: g });
    const lossXi = (v: Float64Array) => {
      const m = refLagrangianMix(adv, kl, v);
      let s = 0;
      for (let n = 0; n < N; n++) s += g[n] * m[n];
      return s;
    };
    for (let i = 0; i < K; i++) expect(Math.abs(centralDiff(lossXi, Float64Array.from(xi), i) - gradXi![i])).toBeLessThan(1e-5);
    // dA_mix/dA_i = sigmoid(xi_i), dA_mix/dA_KL = K - sum sigmoid(xi)
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    const packed = new Float64Array(K * N + N);
    packed.set(adv, 0);
    packed.set(kl, K * N);
    const lossA = (v: Float64Array) => {
      const m = refLagrangianMix(v.subarray(0, K * N), v.subarray(K * N), xi);
      let s = 0;
      for (let n = 0; n < N; n++) s += g[n] * m[n];
      return s;
    };
    const wkl = K - Array.from(xi, sig).reduce((a, b) => a + b, 0);
    for (const j of [0, 5, N + 3, 2 * N + 16, K * N, K * N + N - 1]) {
      const analytic = j < K * N ? sig(xi[Math.floor(j / N)]) * g[j % N] : wkl * g[j - K * N];
      expect(Math.abs(centralDiff(lossA, packed, j) - analytic)).toBeLessThan(1e-6);
    }
  });

  it('K = 1 is the paper code\'s (1 - sigmoid) A_task + sigmoid A_constraint; out.mixed may be klAdvantages', () => {
    const N = 9;
    const adv = randn(N, 1, 5), kl = randn(N, 1, 6), xi = Float32Array.of(0.3);
    const s = 1 / (1 + Math.exp(-xi[0]));
    const { mixed } = lagrangianMix(adv, kl, xi, { numRewards: 1 });
    close(mixed, Float64Array.from(kl, (k, i) => (1 - s) * k + s * adv[i]), 'K = 1');
    const k2 = Float32Array.from(kl);
    expect(lagrangianMix(adv, k2, xi, { numRewards: 1, out: { mixed: k2 } }).mixed).toBe(k2);
    expect(bits(k2).equals(bits(mixed))).toBe(true);
  });

  it('rejects bad inputs', () => {
    const adv = new Float32Array(12), kl = new Float32Array(6), xi = new Float32Array(2);
    expect(() => lagrangianMix(adv, kl, xi, {} as never)).toThrow(/^options\.numRewards/);
    expect(() => lagrangianMix(adv, kl, xi, { numRewards: 5 })).toThrow(/^numRewards|^advantages/);
    expect(() => lagrangianMix(adv, new Float32Array(5), xi, { numRewards: 2 })).toThrow(/^klAdvantages: expected length 6/);
    expect(() => lagrangianMix(adv, kl, new Float32Array(3), { numRewards: 2 })).toThrow(/^xi: expected length 2/);
    expect(() => lagrangianMix(adv, kl, new Float64Array(2) as never, { numRewards: 2 })).toThrow(/^xi/);
    expect(() => lagrangianMix(adv, kl, xi, { numRewards: 2, gradMixed: new Float32Array(4) })).toThrow(/^options\.gradMixed: expected length 6/);
    expect(() => lagrangianMix(adv, kl, xi, { numRewards: 2, out: { gradXi: new Float32Array(2) } })).toThrow(/^options\.out\.gradXi: applies with options\.gradMixed only/);
    expect(() => lagrangianMix(adv, kl, xi, { numRewards: 2, out: { mixed: adv.subarray(0, 6) } })).toThrow(/^options\.out\.mixed/);
    expect(() => lagrangianMix(adv, kl, xi, { numRewards: 2, lambda: 1 } as never)).toThrow(/^options\.lambda: not an option of/);
  });
});

describe('lagrangeMultiplierUpdate', () => {
  it('is xi - lr sigmoid\'(xi) (J - theta) in double, in place or not', () => {
    const xi = Float64Array.of(-2, 0, 0.7, 35), J = [1, 0.2, -3, 4], th = [0.5, 0.5, 0.5, 0.5];
    const want = refMultiplierUpdate(xi, J, th, 0.1);
    const got = lagrangeMultiplierUpdate(xi, J, th, { lr: 0.1 });
    expect(got).toBeInstanceOf(Float64Array);
    expectClose(got, want, 1e-15, 1e-300, 'update');
    expect(got[0]).toBeLessThan(xi[0]); // satisfied constraint (J > theta): its multiplier goes down
    expect(got[2]).toBeGreaterThan(xi[2]);
    const f = Float32Array.from(xi);
    expect(lagrangeMultiplierUpdate(f, J, th, { lr: 0.1, out: f })).toBe(f);
    expectClose(f, want, 1e-7, 1e-7, 'update f32');
  });

  it('rejects bad inputs', () => {
    const xi = new Float64Array(2);
    expect(() => lagrangeMultiplierUpdate([0, 0] as never, [1, 1], [0, 0], { lr: 1 })).toThrow(/^xi: expected a Float32Array or a Float64Array/);
    expect(() => lagrangeMultiplierUpdate(xi, [1], [0, 0], { lr: 1 })).toThrow(/^values: expected length 2/);
    expect(() => lagrangeMultiplierUpdate(xi, [1, 1], null as never, { lr: 1 })).toThrow(/^thresholds/);
    expect(() => lagrangeMultiplierUpdate(xi, [1, NaN], [0, 0], { lr: 1 })).toThrow(/^values\[1\]/);
    expect(() => lagrangeMultiplierUpdate(xi, [1, 1], [0, 0], { lr: -1 })).toThrow(/^options\.lr/);
    expect(() => lagrangeMultiplierUpdate(xi, [1, 1], [0, 0], { lr: 1, out: new Float32Array(2) })).toThrow(/^options\.out/);
    expect(() => lagrangeMultiplierUpdate(xi, [1, 1], [0, 0], { lr: 1, momentum: 0.9 } as never)).toThrow(/^options\.momentum: not an option of/);
  });
});

describe('reward mixing: thread count', () => {
  it('gives bit-identical results for 1, 2 and 3 threads', () => {
    const B = 30011, T = 3, N = 50003, K = 3;
    const low = randn(B * T, 1, 1), high = randn(B, 1, 2), m = masks(B, T, 3)[2][1];
    const adv = randn(K * N, 1, 4), kl = randn(N, 1, 5), g = randn(N, 1, 6), xi = randn(K, 1, 7);
    const runs = [1, 2, 3].map((t) => {
      setNumThreads(t);
      const mix = lagrangianMix(adv, kl, xi, { numRewards: K, gradMixed: g });
      return [
        gatedRewards(high, low, m, { seqLen: T, threshold: 0 }),
        discountedCumsum(low, m, { seqLen: T, gamma: 0.9 }),
        discountedCumsum(low, m, { seqLen: T, gamma: 0.9, adjoint: true }),
        mix.mixed,
        mix.gradXi!,
      ];
    });
    for (const k of [1, 2]) runs[k].forEach((a, j) => expect(bits(a).equals(bits(runs[0][j])), `thread ${k + 1} output ${j}`).toBe(true));
    close(runs[2][0], refGatedRewards(high, low, m, T, 0), 'large gated', maxAbs(low) * T);
    expectClose(runs[2][4], refLagrangianGradXi(adv, kl, xi, g), 1e-6, 1e-4, 'large gradXi');
  });
});
