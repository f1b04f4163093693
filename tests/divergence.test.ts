import { afterEach, describe, expect, it } from 'vitest';
import { vocabDivergence, vocabDivergenceAsync, type DivergenceKind } from '../lib/divergence/index.js';
import { defaultNumThreads, setNumThreads, setSimdLevel, simdLevel, type SimdLevel } from '../lib/runtime.js';
import { centralDiff, encodeHalf, expectClose, expectSameBits, randn } from './helpers.js';
import { divergenceRef, divergenceRow } from './reference/divergence.js';

const KINDS: DivergenceKind[] = ['forward_kl', 'reverse_kl', 'jsd'];
const SIZES: Array<[number, number]> = [
  [1, 1], [50, 1], [1, 17], [50, 17], [1, 1031], [50, 1031], [1, 4097], [50, 4097], [1, 32000], [7, 32000],
];

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Divergence to 1e-5 relative (atol 2e-6: cancellation of O(1) log-probs in f32); gradient to
 * 1e-5 relative with atol 5e-6 of the largest gradient entry (entries near 0 come from
 * cancellation) plus 5e-7 / V (f32 rounding of a log-ratio times p ~ 1/V). */
function checkAgainstRef(
  res: { divergence: Float32Array; gradient?: Float32Array },
  ref: { d: Float64Array; grad: Float64Array },
  label: string,
) {
  expectClose(res.divergence, ref.d, 1e-5, 2e-6, `${label} divergence`);
  const v = ref.grad.length / ref.d.length;
  if (res.gradient) expectClose(res.gradient, ref.grad, 1e-5, 5e-6 * maxAbs(ref.grad) + 5e-7 / v, `${label} gradient`);
}

afterEach(() => {
  setNumThreads(defaultNumThreads());
  setSimdLevel(simdLevel().detected);
});

describe('vocabDivergence f32 against the float64 reference', () => {
  for (const [n, v] of SIZES) {
    for (const kind of KINDS) {
      it(`${kind} N=${n} V=${v}`, () => {
        const z = randn(n * v, 2, 11 + v), zt = randn(n * v, 2, 97 + v);
        for (const temperature of [1, 0.7, 2.5]) {
          const res = vocabDivergence(z, zt, null, { vocab: v, divergence: kind, temperature, returnGradient: true });
          const ref = divergenceRef(z, zt, v, kind, 0.5, temperature);
          checkAgainstRef(res, ref, `${kind} tau=${temperature}`);
          // forward only gives the same divergence bits as forward + gradient
          const fwd = vocabDivergence(z, zt, null, { vocab: v, divergence: kind, temperature });
          expect(fwd.gradient).toBeUndefined();
          expect(Array.from(fwd.divergence)).toEqual(Array.from(res.divergence));
        }
        if (v === 1) for (const d of vocabDivergence(z, zt, null, { vocab: v, divergence: kind }).divergence) expect(Math.abs(d)).toBeLessThan(1e-6);
      });
    }
  }

  it('values are what the definitions give on a hand-checked case', () => {
    // p = softmax([0, ln 3]) = [1/4, 3/4], q = softmax([ln 3, 0]) = [3/4, 1/4]
    const z = new Float32Array([0, Math.log(3)]), zt = new Float32Array([Math.log(3), 0]);
    const kl = 0.75 * Math.log(3) - 0.25 * Math.log(3); // both directions: ln3 / 2
    const fwd = vocabDivergence(z, zt, null, { vocab: 2, divergence: 'forward_kl' }).divergence[0];
    const rev = vocabDivergence(z, zt, null, { vocab: 2, divergence: 'reverse_kl' }).divergence[0];
    expect(fwd).toBeCloseTo(kl, 6);
    expect(rev).toBeCloseTo(kl, 6);
    // beta 0.5: m = [1/2, 1/2]; JSD = 0.5 KL(q||m) + 0.5 KL(p||m) = 0.75 ln 1.5 + 0.25 ln 0.5
    const jsd = vocabDivergence(z, zt, null, { vocab: 2 }).divergence[0];
    expect(jsd).toBeCloseTo(0.75 * Math.log(1.5) + 0.25 * Math.log(0.5), 6);
  });

  it('jsd beta sweeps between its limits; beta 0 and 1 are forward and reverse KL (TRL/Liger)', () => {
    const v = 1031, n = 3;
    const z = randn(n * v, 1.5, 5), zt = randn(n * v, 1.5, 6);
    for (const beta of [1e-3, 0.1, 0.3, 0.9, 0.999]) {
      const res = vocabDivergence(z, zt, null, { vocab: v, beta, returnGradient: true });
      checkAgainstRef(res, divergenceRef(z, zt, v, 'jsd', beta), `beta=${beta}`);
    }
    const f = vocabDivergence(z, zt, null, { vocab: v, divergence: 'forward_kl', returnGradient: true });
    const j0 = vocabDivergence(z, zt, null, { vocab: v, beta: 0, returnGradient: true });
    expect(Array.from(j0.divergence)).toEqual(Array.from(f.divergence));
    expect(Array.from(j0.gradient!)).toEqual(Array.from(f.gradient!));
    const r = vocabDivergence(z, zt, null, { vocab: v, divergence: 'reverse_kl' });
    const j1 = vocabDivergence(z, zt, null, { vocab: v, beta: 1 });
    expect(Array.from(j1.divergence)).toEqual(Array.from(r.divergence));
  });

  it('identical rows give exactly 0 and a zero gradient (forward/reverse KL), ~0 for jsd', () => {
    const v = 4097, n = 4;
    const z = randn(n * v, 3, 8);
    for (const kind of KINDS) {
      const res = vocabDivergence(z, z, null, { vocab: v, divergence: kind, returnGradient: true });
      for (const d of res.divergence) expect(Math.abs(d)).toBeLessThan(kind === 'jsd' ? 1e-7 : 1e-12);
      expect(maxAbs(res.gradient!)).toBeLessThan(1e-9);
    }
  });

  it('nearly identical rows: absolute error stays at the f32 level (documented)', () => {
    const v = 32000, n = 3;
    const z = randn(n * v, 2, 31), noise = randn(n * v, 1, 32);
    const zt = Float32Array.from(z, (x, i) => x + 0.01 * noise[i]);
    for (const kind of KINDS) {
      const res = vocabDivergence(z, zt, null, { vocab: v, divergence: kind });
      const ref = divergenceRef(z, zt, v, kind);
      expectClose(res.divergence, ref.d, 0, kind === 'jsd' ? 1e-8 : 5e-7, kind);
      for (const d of ref.d) expect(d).toBeLessThan(1e-4); // the case is what it claims to be
    }
  });

  it('large logit offsets (|z| ~ 1e4) keep their precision: the row max is taken out first', () => {
    const v = 1031, n = 2;
    const z = randn(n * v, 2, 21), zt = randn(n * v, 2, 22);
    for (let i = 0; i < z.length; i++) {
      z[i] += 10000;
      zt[i] -= 5000;
    }
    for (const kind of KINDS) {
      const res = vocabDivergence(z, zt, null, { vocab: v, divergence: kind, returnGradient: true });
      const ref = divergenceRef(z, zt, v, kind);
      checkAgainstRef(res, ref, `${kind} offsets`);
    }
  });
});

describe('vocabDivergence bf16 / f16', () => {
  for (const dtype of ['bf16', 'f16'] as const) {
    for (const [n, v] of [[1, 17], [50, 1031], [3, 32000]] as Array<[number, number]>) {
      it(`${dtype} N=${n} V=${v}`, () => {
        const a = encodeHalf(randn(n * v, 2, 3 + v), dtype), b = encodeHalf(randn(n * v, 2, 4 + v), dtype);
        for (const kind of KINDS) {
          const res = vocabDivergence(a.bits, b.bits, null, { vocab: v, dtype, divergence: kind, temperature: 0.9, returnGradient: true });
          checkAgainstRef(res, divergenceRef(a.decoded, b.decoded, v, kind, 0.5, 0.9), `${dtype} ${kind}`);
        }
      });
    }
  }
});

describe('vocabDivergence -inf logits (masked vocabulary)', () => {
  const v = 1031, n = 4;
  function masked(seed: number) {
    const z = randn(n * v, 2, seed), zt = randn(n * v, 2, seed + 1);
    for (let i = 0; i < z.length; i += 3) z[i] = zt[i] = -Infinity; // masked in both
    return { z, zt };
  }

  for (const kind of KINDS) {
    it(`${kind}: -inf at the same places in both rows is finite and has zero gradient there`, () => {
      const { z, zt } = masked(31);
      const res = vocabDivergence(z, zt, null, { vocab: v, divergence: kind, returnGradient: true });
      checkAgainstRef(res, divergenceRef(z, zt, v, kind), kind);
      for (let i = 0; i < z.length; i += 3) expect(res.gradient![i]).toBe(0);
      for (const d of res.divergence) expect(Number.isFinite(d)).toBe(true);
    });
  }

  it('target zero where the student is not: reverse KL = +Infinity, forward KL and jsd finite', () => {
    const { z, zt } = masked(41);
    for (let i = 1; i < z.length; i += 7) zt[i] = -Infinity; // q = 0 while p > 0
    const fwd = vocabDivergence(z, zt, null, { vocab: v, divergence: 'forward_kl', returnGradient: true });
    checkAgainstRef(fwd, divergenceRef(z, zt, v, 'forward_kl'), 'forward');
    const jsd = vocabDivergence(z, zt, null, { vocab: v, divergence: 'jsd', returnGradient: true });
    checkAgainstRef(jsd, divergenceRef(z, zt, v, 'jsd'), 'jsd');
    const rev = vocabDivergence(z, zt, null, { vocab: v, divergence: 'reverse_kl' });
    for (const d of rev.divergence) expect(d).toBe(Infinity);
  });

  it('student zero where the target is not: forward KL = +Infinity with a finite gradient p - q', () => {
    const { z, zt } = masked(51);
    for (let i = 1; i < z.length; i += 7) z[i] = -Infinity; // p = 0 while q > 0
    const fwd = vocabDivergence(z, zt, null, { vocab: v, divergence: 'forward_kl', returnGradient: true });
    for (const d of fwd.divergence) expect(d).toBe(Infinity);
    expectClose(fwd.gradient!, divergenceRef(z, zt, v, 'forward_kl').grad, 1e-5, 1e-9, 'forward gradient');
    for (const kind of ['reverse_kl', 'jsd'] as const) {
      checkAgainstRef(vocabDivergence(z, zt, null, { vocab: v, divergence: kind, returnGradient: true }), divergenceRef(z, zt, v, kind), kind);
    }
  });

  it('bf16 -inf behaves like f32 -inf', () => {
    const { z, zt } = masked(61);
    const a = encodeHalf(z, 'bf16'), b = encodeHalf(zt, 'bf16');
    const res = vocabDivergence(a.bits, b.bits, null, { vocab: v, dtype: 'bf16', divergence: 'jsd', returnGradient: true });
    checkAgainstRef(res, divergenceRef(a.decoded, b.decoded, v, 'jsd'), 'bf16 jsd');
  });

  it('a whole row of -inf (no distribution) gives NaN; NaN logits propagate', () => {
    const z = randn(2 * 17, 1, 1), zt = randn(2 * 17, 1, 2);
    for (let j = 0; j < 17; j++) zt[j] = -Infinity;
    z[17 + 5] = NaN;
    for (const kind of KINDS) {
      const d = vocabDivergence(z, zt, null, { vocab: 17, divergence: kind }).divergence;
      expect(Number.isNaN(d[0])).toBe(true);
      expect(Number.isNaN(d[1])).toBe(true);
    }
  });
});

describe('vocabDivergence gradient against central differences of the float64 reference', () => {
  for (const kind of KINDS) {
    for (const [v, tau, beta] of [[17, 1, 0.5], [17, 0.6, 0.2], [1031, 1.7, 0.8]] as Array<[number, number, number]>) {
      it(`${kind} V=${v} tau=${tau} beta=${beta}`, () => {
        const z = randn(v, 1.5, 71 + v), zt = randn(v, 1.5, 72 + v);
        const res = vocabDivergence(z, zt, null, { vocab: v, divergence: kind, ...(kind === 'jsd' ? { beta } : {}), temperature: tau, returnGradient: true });
        const zt64 = Float64Array.from(zt);
        const f = (x: Float64Array) => divergenceRow(x, zt64, 0, v, kind, beta, tau).d;
        const x = Float64Array.from(z);
        const idx = v <= 17 ? Array.from({ length: v }, (_, i) => i) : Array.from({ length: 40 }, (_, i) => (i * 97) % v);
        const fd = idx.map((i) => centralDiff(f, x, i));
        const got = idx.map((i) => res.gradient![i]);
        const scale = Math.max(...fd.map(Math.abs));
        // central differences of a float64 sum over V terms carry ~1e-9 of round-off
        expectClose(got, fd, 1e-5, 5e-6 * scale + 5e-9, `${kind} fd`);
        // and the reference's analytic gradient agrees with the differences more tightly
        const ana = divergenceRow(x, zt64, 0, v, kind, beta, tau).grad;
        expectClose(idx.map((i) => ana[i]), fd, 1e-6, 5e-9, `${kind} analytic fd`);
      });
    }
  }
});

describe('vocabDivergence options', () => {
  const n = 6, v = 1031;
  const z = randn(n * v, 2, 81), zt = randn(n * v, 2, 82);

  it('labels with ignoreIndex, and mask, zero their rows (divergence and gradient)', () => {
    const labels = new Int32Array([3, -100, 5, 7, -100, 1]);
    const mask = new Uint8Array([1, 1, 0, 1, 1, 1]);
    for (const kind of KINDS) {
      const a = vocabDivergence(z, zt, null, { vocab: v, divergence: kind, labels, returnGradient: true });
      checkAgainstRef(a, divergenceRef(z, zt, v, kind, 0.5, 1, [1, 0, 1, 1, 0, 1]), `${kind} labels`);
      const b = vocabDivergence(z, zt, mask, { vocab: v, divergence: kind, returnGradient: true });
      checkAgainstRef(b, divergenceRef(z, zt, v, kind, 0.5, 1, mask), `${kind} mask`);
      const c = vocabDivergence(z, zt, mask, { vocab: v, divergence: kind, labels, returnGradient: true });
      checkAgainstRef(c, divergenceRef(z, zt, v, kind, 0.5, 1, [1, 0, 0, 1, 0, 1]), `${kind} both`);
      expect(c.divergence[1]).toBe(0);
      expect(c.divergence[0]).toBeGreaterThan(0);
      const d = vocabDivergence(z, zt, null, { vocab: v, divergence: kind, labels: new Int32Array([1, 2, 3, 4, 5, 7]), ignoreIndex: 7 });
      expect(d.divergence[5]).toBe(0);
      expect(d.divergence[4]).toBeGreaterThan(0);
    }
  });

  it('gradOutput scales each row (number or per-row array)', () => {
    const g = new Float32Array([1, -2, 0.5, 0, 3, 1e-3]);
    for (const kind of KINDS) {
      checkAgainstRef(vocabDivergence(z, zt, null, { vocab: v, divergence: kind, returnGradient: true, gradOutput: g }), divergenceRef(z, zt, v, kind, 0.5, 1, undefined, g), `${kind} rows`);
      checkAgainstRef(vocabDivergence(z, zt, null, { vocab: v, divergence: kind, returnGradient: true, gradOutput: 1 / 6 }), divergenceRef(z, zt, v, kind, 0.5, 1, undefined, 1 / 6), `${kind} scalar`);
    }
  });

  it('out buffers are filled and returned; inPlace overwrites the f32 logits with the same gradient', () => {
    for (const kind of KINDS) {
      const divergence = new Float32Array(n).fill(NaN);
      const gradient = new Float32Array(n * v).fill(NaN);
      const res = vocabDivergence(z, zt, null, { vocab: v, divergence: kind, returnGradient: true, out: { divergence, gradient } });
      expect(res.divergence).toBe(divergence);
      expect(res.gradient).toBe(gradient);
      checkAgainstRef(res, divergenceRef(z, zt, v, kind), kind);
      const copy = Float32Array.from(z);
      const ip = vocabDivergence(copy, zt, null, { vocab: v, divergence: kind, returnGradient: true, inPlace: true });
      expect(ip.gradient).toBe(copy);
      expect(Array.from(copy)).toEqual(Array.from(gradient));
      expect(Array.from(ip.divergence)).toEqual(Array.from(divergence));
    }
  });

  it('no rows (N = 0) gives empty outputs, f32 and bf16, sync and Promise', async () => {
    const r = vocabDivergence(new Float32Array(0), new Float32Array(0), null, { vocab: 5, returnGradient: true });
    expect(r.divergence.length).toBe(0);
    expect(r.gradient!.length).toBe(0);
    const a = await vocabDivergenceAsync(new Uint16Array(0), new Uint16Array(0), null, { vocab: 5, dtype: 'bf16', returnGradient: true, labels: new Int32Array(0) });
    expect(a.divergence.length).toBe(0);
    expect(a.gradient!.length).toBe(0);
  });

  it('the Promise form gives the same bits', async () => {
    for (const kind of KINDS) {
      const s = vocabDivergence(z, zt, null, { vocab: v, divergence: kind, returnGradient: true, temperature: 0.8 });
      const a = await vocabDivergenceAsync(z, zt, null, { vocab: v, divergence: kind, returnGradient: true, temperature: 0.8 });
      expect(Array.from(a.divergence)).toEqual(Array.from(s.divergence));
      expect(Array.from(a.gradient!)).toEqual(Array.from(s.gradient!));
    }
    await expect(vocabDivergenceAsync(z, zt.subarray(1), null, { vocab: v })).rejects.toThrow(/targetLogits/);
  });
});

describe('vocabDivergence determinism and SIMD levels', () => {
  // N = 5 runs whole rows per task with 1 thread and (row, chunk) items with 2 or 3 threads;
  // N = 64 runs whole rows per task for every count: all must give the same bits.
  for (const [n, v] of [[1, 32000], [5, 9000], [64, 4500]] as Array<[number, number]>) {
    it(`bit-identical for 1, 2 and 3 threads, N=${n} V=${v}`, () => {
      const z = randn(n * v, 2, 91), zt = randn(n * v, 2, 92);
      const mask = Uint8Array.from({ length: n }, (_, r) => (r % 3 === 1 ? 0 : 1));
      for (const kind of KINDS) {
        const runs = [1, 2, 3].map((t) => {
          setNumThreads(t);
          return vocabDivergence(z, zt, mask, { vocab: v, divergence: kind, returnGradient: true, temperature: 1.3 });
        });
        if (n > 1) expect(runs[0].divergence[1]).toBe(0);
        for (const r of runs.slice(1)) {
          expect(Array.from(r.divergence)).toEqual(Array.from(runs[0].divergence));
          expect(Buffer.from(r.gradient!.buffer).equals(Buffer.from(runs[0].gradient!.buffer))).toBe(true);
        }
      }
    });
  }

  const levels: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
  for (const level of levels) {
    it(`SIMD level ${level} matches the reference (f32, bf16, f16, -inf)`, (ctx) => {
      const detected = simdLevel().detected;
      if (levels.indexOf(level) > levels.indexOf(detected)) ctx.skip();
      setSimdLevel(level);
      expect(simdLevel().active).toBe(level);
      const n = 3, v = 4097 + 13;
      const z = randn(n * v, 2, 101), zt = randn(n * v, 2, 102);
      z[7] = zt[7] = -Infinity;
      for (const kind of KINDS) {
        checkAgainstRef(vocabDivergence(z, zt, null, { vocab: v, divergence: kind, returnGradient: true }), divergenceRef(z, zt, v, kind), `${level} f32 ${kind}`);
        for (const dtype of ['bf16', 'f16'] as const) {
          const a = encodeHalf(z, dtype), b = encodeHalf(zt, dtype);
          checkAgainstRef(vocabDivergence(a.bits, b.bits, null, { vocab: v, dtype, divergence: kind, returnGradient: true }), divergenceRef(a.decoded, b.decoded, v, kind), `${level} ${dtype} ${kind}`);
        }
      }
    });
  }

  it('in place at every offset in 64 bytes, every SIMD level: the out-of-place bits', () => {
    // In place the gradient goes out with plain stores over the lines just read; out of place with
    // streaming stores after an unaligned head. Both must give the same bits wherever the rows start.
    const n = 3, v = 4097 + 13;
    const z = randn(n * v, 2, 111), zt = randn(n * v, 2, 112);
    z[9] = -Infinity;
    const buf = new ArrayBuffer((n * v + 16) * 4);
    const detected = simdLevel().detected;
    for (const level of levels.filter((l) => levels.indexOf(l) <= levels.indexOf(detected))) {
      setSimdLevel(level);
      for (const kind of KINDS) {
        const want = vocabDivergence(z, zt, null, { vocab: v, divergence: kind, returnGradient: true });
        for (let k = 0; k < 16; k++) {
          const copy = new Float32Array(buf, k * 4, n * v);
          copy.set(z);
          const got = vocabDivergence(copy, zt, null, { vocab: v, divergence: kind, returnGradient: true, inPlace: true });
          expect(got.gradient).toBe(copy);
          expect(Array.from(got.divergence)).toEqual(Array.from(want.divergence));
          expectSameBits(copy, want.gradient!, `${level} ${kind} offset ${k}: gradient`);
        }
      }
    }
  });
});

describe('vocabDivergence bad input', () => {
  const v = 17, n = 3;
  const z = randn(n * v, 1, 1), zt = randn(n * v, 1, 2);
  const bf = new Uint16Array(n * v);
  const cases: Array<[string, () => unknown, ErrorConstructor, RegExp]> = [
    ['targetLogits of another shape', () => vocabDivergence(z, zt.subarray(0, 2 * v), null, { vocab: v }), RangeError, /targetLogits/],
    ['targetLogits of another type', () => vocabDivergence(z, bf, null, { vocab: v }), TypeError, /targetLogits/],
    ['targetLogits f32 with bf16 logits', () => vocabDivergence(bf, zt, null, { vocab: v, dtype: 'bf16' }), TypeError, /targetLogits/],
    ['targetLogits missing', () => vocabDivergence(z, undefined as never, null, { vocab: v }), TypeError, /targetLogits/],
    ['logits not a typed array', () => vocabDivergence([1, 2] as never, zt, null, { vocab: v }), TypeError, /logits/],
    ['logits not a multiple of vocab', () => vocabDivergence(z.subarray(1), zt.subarray(1), null, { vocab: v }), RangeError, /logits/],
    ['vocab missing', () => vocabDivergence(z, zt, null, {} as never), TypeError, /options\.vocab/],
    ['vocab 0', () => vocabDivergence(z, zt, null, { vocab: 0 }), RangeError, /options\.vocab/],
    ['options missing', () => vocabDivergence(z, zt, null, undefined as never), TypeError, /options/],
    ['Uint16Array without dtype', () => vocabDivergence(bf, bf, null, { vocab: v }), TypeError, /options\.dtype/],
    ['Float32Array with dtype bf16', () => vocabDivergence(z, zt, null, { vocab: v, dtype: 'bf16' }), TypeError, /options\.dtype/],
    ['unknown dtype', () => vocabDivergence(bf, bf, null, { vocab: v, dtype: 'f8' as never }), RangeError, /options\.dtype/],
    ['unknown divergence', () => vocabDivergence(z, zt, null, { vocab: v, divergence: 'kl' as never }), RangeError, /options\.divergence/],
    ['divergence not a string', () => vocabDivergence(z, zt, null, { vocab: v, divergence: 1 as never }), TypeError, /options\.divergence/],
    ['beta > 1', () => vocabDivergence(z, zt, null, { vocab: v, beta: 1.5 }), RangeError, /options\.beta/],
    ['beta < 0', () => vocabDivergence(z, zt, null, { vocab: v, beta: -0.1 }), RangeError, /options\.beta/],
    ['beta NaN', () => vocabDivergence(z, zt, null, { vocab: v, beta: NaN }), RangeError, /options\.beta/],
    ['temperature 0', () => vocabDivergence(z, zt, null, { vocab: v, temperature: 0 }), RangeError, /options\.temperature/],
    ['temperature string', () => vocabDivergence(z, zt, null, { vocab: v, temperature: '1' as never }), TypeError, /options\.temperature/],
    ['labels of another length', () => vocabDivergence(z, zt, null, { vocab: v, labels: new Int32Array(n + 1) }), RangeError, /options\.labels/],
    ['labels of another type', () => vocabDivergence(z, zt, null, { vocab: v, labels: new Float32Array(n) as never }), TypeError, /options\.labels/],
    ['ignoreIndex without labels', () => vocabDivergence(z, zt, null, { vocab: v, ignoreIndex: -100 }), TypeError, /options\.ignoreIndex/],
    ['ignoreIndex not an integer', () => vocabDivergence(z, zt, null, { vocab: v, labels: new Int32Array(n), ignoreIndex: 1.5 }), RangeError, /options\.ignoreIndex/],
    ['mask of another length', () => vocabDivergence(z, zt, new Uint8Array(n - 1), { vocab: v }), RangeError, /^mask/],
    ['mask of another type', () => vocabDivergence(z, zt, new Float32Array(n) as never, { vocab: v }), TypeError, /^mask/],
    ['gradient not boolean', () => vocabDivergence(z, zt, null, { vocab: v, returnGradient: 1 as never }), TypeError, /options\.returnGradient/],
    ['gradOutput without gradient', () => vocabDivergence(z, zt, null, { vocab: v, gradOutput: 1 }), TypeError, /options\.gradOutput/],
    ['gradOutput of another length', () => vocabDivergence(z, zt, null, { vocab: v, returnGradient: true, gradOutput: new Float32Array(n + 1) }), RangeError, /options\.gradOutput/],
    ['gradOutput infinite', () => vocabDivergence(z, zt, null, { vocab: v, returnGradient: true, gradOutput: Infinity }), RangeError, /options\.gradOutput/],
    ['out.divergence of another length', () => vocabDivergence(z, zt, null, { vocab: v, out: { divergence: new Float32Array(n + 1) } }), RangeError, /options\.out\.divergence/],
    ['out.gradient of another length', () => vocabDivergence(z, zt, null, { vocab: v, returnGradient: true, out: { gradient: new Float32Array(n * v - 1) } }), RangeError, /options\.out\.gradient/],
    ['out.gradient without gradient', () => vocabDivergence(z, zt, null, { vocab: v, out: { gradient: new Float32Array(n * v) } }), TypeError, /options\.out\.gradient/],
    ['out.gradient overlapping logits', () => {
      const buf = new Float32Array(2 * n * v);
      buf.set(z);
      return vocabDivergence(buf.subarray(0, n * v), zt, null, { vocab: v, returnGradient: true, out: { gradient: buf.subarray(5, 5 + n * v) } });
    }, RangeError, /options\.out\.gradient/],
    ['out.gradient being targetLogits', () => { const t = Float32Array.from(zt); return vocabDivergence(z, t, null, { vocab: v, returnGradient: true, out: { gradient: t } }); }, RangeError, /options\.out\.gradient/],
    ['inPlace with bf16 logits', () => vocabDivergence(bf, bf, null, { vocab: v, dtype: 'bf16', returnGradient: true, inPlace: true }), TypeError, /options\.inPlace/],
    ['inPlace without gradient', () => vocabDivergence(Float32Array.from(z), zt, null, { vocab: v, inPlace: true }), TypeError, /options\.inPlace/],
    ['inPlace with logits === targetLogits', () => { const a = Float32Array.from(z); return vocabDivergence(a, a, null, { vocab: v, returnGradient: true, inPlace: true }); }, RangeError, /targetLogits/],
  ];
  for (const [name, fn, cls, re] of cases) {
    it(name, () => {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(cls);
      expect((err as Error).message).toMatch(re);
    });
  }

  it('the native layer rechecks lengths it relies on', async () => {
    const { binding } = await import('../lib/native.js');
    const nat = binding<{ vocabDivergence(params: Float64Array, scalars: null, ...slots: unknown[]): void }>();
    const d = new Float32Array(n);
    // the op protocol (lib/op.ts): params, scalars, then the slots logits, targetLogits, mask, labels, gradOutput, divergence,
    // gradient; params vocab, dtype, divergence, beta, temperature, ignoreIndex, gradOutput
    const call = (s: Record<string, unknown> = {}, p: Record<string, number> = {}) =>
      nat.vocabDivergence(
        Float64Array.from([p.vocab ?? v, p.dtype ?? 0, p.divergence ?? 0, p.beta ?? 0.5, p.temperature ?? 1, p.ignoreIndex ?? -100, p.gradOutput ?? 1]),
        null,
        ...[s.logits ?? z, s.targetLogits ?? zt, s.mask ?? null, s.labels ?? null, s.gradOutput ?? null, s.divergence ?? d, s.gradient ?? null],
      );
    expect(call()).toBeUndefined();
    expect(() => call({ targetLogits: zt.subarray(1) })).toThrow(RangeError);
    expect(() => call({ divergence: new Float32Array(1) })).toThrow(/^divergence/);
    expect(() => call({ mask: new Uint8Array(1) })).toThrow(/mask/);
    expect(() => call({ gradient: new Float32Array(3) })).toThrow(/gradient/);
    expect(() => call({}, { divergence: 3 })).toThrow(/divergence/);
    expect(() => call({}, { divergence: 2, beta: 2 })).toThrow(/beta/);
    expect(() => call({ logits: bf }, { divergence: 2, dtype: 1 })).toThrow(/targetLogits/);
  });
});
