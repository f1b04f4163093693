// Test utilities shared by every family: seeded random inputs, half-precision encoders, float64
// comparisons and central finite differences.
import { expect } from 'vitest';

import { rng } from './rng.js';

export { rng };

/** Standard normal sampler built on rng. */
export function normal(r: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(Math.max(r(), 1e-300))) * Math.cos(2 * Math.PI * r());
}

/** Float32Array of n normal(0, sd) values. */
export function randn(n: number, sd: number, seed: number): Float32Array {
  const g = normal(rng(seed));
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = sd * g();
  return a;
}

/** Int32Array of n ids uniform in [0, hi). */
export function randint(n: number, hi: number, seed: number): Int32Array {
  const r = rng(seed);
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.floor(r() * hi);
  return a;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 -> bf16 bits, round to nearest even (NaN stays NaN). */
export function toBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function fromBf16(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}

/** f64 -> f16 bits, round to nearest even, with subnormals and infinities. */
export function toF16(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  let a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -24 / 2) return sign;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1;
  if (2 ** (e + 1) <= a) e += 1;
  if (e < -14) {
    const m = roundEven(a / 2 ** -24);
    return sign | m; // m may reach 0x400, which is the smallest normal: still right
  }
  let m = roundEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e += 1;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | m;
}

function roundEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export function fromF16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Encodes values as bf16 or f16 bits; `decoded` holds the exact values the kernel sees. */
export function encodeHalf(x: Float32Array, dtype: 'bf16' | 'f16'): { bits: Uint16Array; decoded: Float64Array } {
  const bits = new Uint16Array(x.length);
  const decoded = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    bits[i] = dtype === 'bf16' ? toBf16(x[i]) : toF16(x[i]);
    decoded[i] = dtype === 'bf16' ? fromBf16(bits[i]) : fromF16(bits[i]);
  }
  return { bits, decoded };
}

/**
 * Asserts |actual - expected| <= rtol * |expected| + atol elementwise (NaN matches NaN, equal
 * infinities match), reporting the worst element.
 */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol: number,
  atol: number,
  label = '',
): void {
  expect(actual.length, `${label} length`).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) || Number.isNaN(a)) {
      if (Number.isNaN(e) && Number.isNaN(a)) continue;
      worst = i;
      worstExcess = Infinity;
      break;
    }
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (a === e) continue;
      worst = i;
      worstExcess = Infinity;
      break;
    }
    const excess = Math.abs(a - e) - (rtol * Math.abs(e) + atol);
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    expect.fail(`${label}[${worst}]: got ${actual[worst]}, expected ${expected[worst]} (rtol ${rtol}, atol ${atol})`);
  }
}

/**
 * Central finite difference of a float64 scalar function f at x along coordinate i:
 * (f(x + h e_i) - f(x - h e_i)) / 2h, with h scaled to |x_i|.
 */
export function centralDiff(f: (x: Float64Array) => number, x: Float64Array, i: number, h = 1e-6): number {
  const step = h * Math.max(1, Math.abs(x[i]));
  const xp = Float64Array.from(x);
  const xm = Float64Array.from(x);
  xp[i] += step;
  xm[i] -= step;
  return (f(xp) - f(xm)) / (2 * step);
}

/** The error fn throws (a test failure when it returns). */
export function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  expect.fail('expected an error');
}

/** The rejection of p (a test failure when it resolves). */
export async function rejected(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  expect.fail('expected a rejection');
}

/** max |a - b| / max |b| (normwise relative difference). */
export function rel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return den === 0 ? num : num / den;
}

/** |a - b| / |b| (|a| when b is 0). */
export function relScalar(a: number, b: number): number {
  return b === 0 ? Math.abs(a) : Math.abs(a - b) / Math.abs(b);
}

/** Fails at the first element whose bits differ (-0 against 0 and NaN against a number included). */
export function expectSameBits(got: ArrayLike<number>, want: ArrayLike<number>, tag: string): void {
  expect(got.length, tag).toBe(want.length);
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) expect.fail(`${tag}[${i}] ${got[i]} vs ${want[i]}`);
}
