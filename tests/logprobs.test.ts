import { afterEach, describe, expect, it } from 'vitest';
import {
  tokenLogprobs,
  tokenLogprobsAsync,
  tokenLogprobsBackward,
  tokenLogprobsBackwardAsync,
} from '../lib/logprobs/index.js';
import { defaultNumThreads, setNumThreads, setSimdLevel, simdLevel, type SimdLevel } from '../lib/runtime.js';
import { centralDiff, encodeHalf, expectClose, expectSameBits, randint, randn, rng } from './helpers.js';
import { refLoss, refTokenLogprobs, refTokenLogprobsBackward } from './reference/logprobs.js';

const RTOL = 1e-5;
const ATOL = 1e-6;
const LEVELS = (['scalar', 'avx2', 'avx512'] as SimdLevel[]).filter(
  (l, i) => i <= ['scalar', 'avx2', 'avx512'].indexOf(simdLevel().detected),
);

afterEach(() => {
  setNumThreads(defaultNumThreads());
  setSimdLevel(simdLevel().detected);
});

// (N, V) cases: vocabularies that are not multiples of 8/16/1024, one row, one token
const SHAPES: [number, number][] = [
  [300, 1],
  [1, 17],
  [257, 17],
  [3, 1031],
  [64, 1031],
  [1, 4097],
  [20, 32000],
  [3, 151936],
];

function checkForward(z: Float32Array | Uint16Array, zRef: ArrayLike<number>, y: Int32Array, vocab: number, opts: {
  temperature?: number;
  dtype?: 'f32' | 'bf16' | 'f16';
  ignoreIndex?: number;
  label: string;
}) {
  const out = tokenLogprobs(z, y, { vocab, returnEntropy: true, temperature: opts.temperature, dtype: opts.dtype, ignoreIndex: opts.ignoreIndex });
  const ref = refTokenLogprobs(zRef, y, vocab, opts.temperature ?? 1, opts.ignoreIndex ?? -100);
  expectClose(out.logprobs, ref.logp, RTOL, ATOL, `${opts.label} logprobs`);
  expectClose(out.logsumexp, ref.lse, RTOL, ATOL, `${opts.label} logsumexp`);
  expectClose(out.entropy!, ref.entropy, RTOL, ATOL, `${opts.label} entropy`);
  return out;
}

describe('tokenLogprobs forward against the float64 reference', () => {
  for (const level of LEVELS) {
    it(`f32, awkward shapes, temperature 1 and 0.7 (${level})`, () => {
      setSimdLevel(level);
      SHAPES.forEach(([n, v], k) => {
        const z = randn(n * v, 2.5, 100 + k);
        const y = randint(n, v, 200 + k);
        for (const t of [1, 0.7]) checkForward(z, z, y, v, { temperature: t, label: `${level} N=${n} V=${v} t=${t}` });
      });
    });
  }

  it('logprobs are never positive and equal z_y/tau - logsumexp', () => {
    const n = 50, v = 1031;
    const z = randn(n * v, 4, 7);
    const y = randint(n, v, 8);
    const out = tokenLogprobs(z, y, { vocab: v, temperature: 1.3 });
    for (let r = 0; r < n; r++) {
      expect(out.logprobs[r]).toBeLessThanOrEqual(0);
      expect(Math.abs(out.logprobs[r] - (z[r * v + y[r]] / 1.3 - out.logsumexp[r]))).toBeLessThan(1e-4);
    }
  });

  it('large magnitudes (sd 1e4) and tiny ones (sd 1e-4)', () => {
    for (const [sd, seed] of [[1e4, 1], [1e-4, 2], [300, 3]] as const) {
      const n = 40, v = 4099;
      const z = randn(n * v, sd, seed);
      const y = randint(n, v, seed + 10);
      // make some targets the argmax so that logp is close to 0
      for (let r = 0; r < n; r += 3) {
        let best = 0;
        for (let j = 1; j < v; j++) if (z[r * v + j] > z[r * v + best]) best = j;
        y[r] = best;
      }
      checkForward(z, z, y, v, { label: `sd ${sd}` });
      checkForward(z, z, y, v, { temperature: 2.5, label: `sd ${sd} t 2.5` });
    }
  });

  it('-inf logits (masked vocabulary), including a target on a masked id', () => {
    for (const level of LEVELS) {
      setSimdLevel(level);
      const n = 9, v = 5003;
      const z = randn(n * v, 3, 31);
      const mask = rng(32);
      for (let i = 0; i < z.length; i++) if (mask() < 0.6) z[i] = -Infinity;
      for (let r = 0; r < n; r++) z[r * v + 5] = 1; // row never fully masked
      const y = randint(n, v, 33);
      for (let r = 0; r < n; r++) if (z[r * v + y[r]] === -Infinity && r % 2 === 0) y[r] = 5;
      const out = checkForward(z, z, y, v, { label: `masked ${level}` });
      for (let r = 0; r < n; r++) {
        expect(Number.isFinite(out.entropy![r])).toBe(true);
        if (z[r * v + y[r]] === -Infinity) expect(out.logprobs[r]).toBe(-Infinity);
      }
      const g = tokenLogprobsBackward(z, y, new Float32Array(n).fill(1), { vocab: v, gradEntropy: new Float32Array(n).fill(0.5) });
      for (let i = 0; i < g.length; i++) {
        expect(Number.isNaN(g[i])).toBe(false);
        if (z[i] === -Infinity && y[Math.floor(i / v)] !== i % v) expect(g[i]).toBe(0);
      }
    }
  });

  // Rows whose terms all lie within a few units of the max: on 512-bit lanes every u = (z - m) log2(e)
  // in (-1, 0) goes through the exponential's rounded reduction 1 + u (docs/logprobs.md). The
  // log-probs stay within 1e-6 relative of float64 and the gradient within 1e-6 of |g|.
  it('near-uniform rows keep 1e-6 relative log-probs on every SIMD level', () => {
    for (const level of LEVELS) {
      setSimdLevel(level);
      for (const [n, v, sd] of [[7, 32001, 0.3], [2, 151936, 0.05], [16, 1031, 1e-3]] as const) {
        const z = randn(n * v, sd, v + 3);
        const y = randint(n, v, v + 4);
        const out = tokenLogprobs(z, y, { vocab: v, returnEntropy: true });
        const ref = refTokenLogprobs(z, y, v);
        expectClose(out.logprobs, ref.logp, 1e-6, 0, `${level} V=${v} sd=${sd} logprobs`);
        expectClose(out.entropy!, ref.entropy, 1e-6, 0, `${level} V=${v} sd=${sd} entropy`);
        const g = randn(n, 1, v + 5);
        const grad = tokenLogprobsBackward(z, y, g, { vocab: v });
        const rg = refTokenLogprobsBackward(z, y, v, g, null);
        let gmax = 0;
        for (let r = 0; r < n; r++) gmax = Math.max(gmax, Math.abs(g[r]));
        expectClose(grad, rg, 0, 1e-6 * gmax, `${level} V=${v} sd=${sd} gradient`);
      }
    }
  });

  it('ignoreIndex rows give 0 (default -100 and a custom id)', () => {
    const n = 30, v = 177;
    const z = randn(n * v, 2, 41);
    const y = randint(n, v, 42);
    for (let r = 0; r < n; r += 4) y[r] = -100;
    const out = checkForward(z, z, y, v, { label: 'ignore -100' });
    for (let r = 0; r < n; r += 4) {
      expect(out.logprobs[r]).toBe(0);
      expect(out.entropy![r]).toBe(0);
      expect(out.logsumexp[r]).toBe(0);
    }
    const y2 = randint(n, v, 43);
    y2[3] = 7;
    const out2 = checkForward(z, z, y2, v, { ignoreIndex: 7, label: 'ignore 7' });
    expect(out2.logprobs[3]).toBe(0);
    const g = tokenLogprobsBackward(z, y, new Float32Array(n).fill(1), { vocab: v });
    for (let j = 0; j < v; j++) expect(g[4 * v + j]).toBe(0);
  });

  for (const dtype of ['bf16', 'f16'] as const) {
    it(`${dtype} logits on every SIMD level`, () => {
      for (const level of LEVELS) {
        setSimdLevel(level);
        for (const [n, v] of [[5, 17], [33, 1031], [4, 32000], [1, 151936]] as const) {
          const x = randn(n * v, 3, n + v);
          x[0] = -Infinity;
          const { bits, decoded } = encodeHalf(x, dtype);
          const y = randint(n, v, 77);
          if (y[0] === 0) y[0] = 1;
          checkForward(bits, decoded, y, v, { dtype, temperature: 0.9, label: `${dtype} ${level} N=${n} V=${v}` });
          const g = tokenLogprobsBackward(bits, y, new Float32Array(n).fill(1), { vocab: v, dtype, temperature: 0.9 });
          const gr = refTokenLogprobsBackward(decoded, y, v, new Float32Array(n).fill(1), null, 0.9);
          expectClose(g, gr, RTOL, ATOL, `${dtype} grad`);
        }
      }
    });
  }

  it('f16 subnormals and infinities decode exactly', () => {
    const bits = Uint16Array.from([0x0001, 0x03ff, 0x8001, 0x7c00 ^ 0x8000, 0x3c00, 0x0400, 0xfbff, 0x7bff]);
    const v = 8;
    const decoded = Array.from(bits, (b) => {
      const s = b & 0x8000 ? -1 : 1, e = (b >> 10) & 31, m = b & 1023;
      return e === 0 ? s * m * 2 ** -24 : e === 31 ? s * Infinity : s * (1 + m / 1024) * 2 ** (e - 15);
    });
    for (const level of LEVELS) {
      setSimdLevel(level);
      const y = Int32Array.from([7]);
      checkForward(bits, decoded, y, v, { dtype: 'f16', label: `f16 specials ${level}` });
    }
  });
});

describe('tokenLogprobsBackward', () => {
  it('matches central finite differences of the float64 loss (with entropy and temperature)', () => {
    for (const [n, v, t, seed] of [[3, 17, 1, 1], [2, 33, 0.6, 2], [1, 1, 1, 3], [4, 9, 1.7, 4]] as const) {
      const z = randn(n * v, 2, seed);
      const y = randint(n, v, seed + 100);
      if (n > 2) y[2] = -100;
      const g = randn(n, 1, seed + 200);
      const h = randn(n, 1, seed + 300);
      const grad = tokenLogprobsBackward(z, y, g, { vocab: v, gradEntropy: h, temperature: t });
      const z64 = Float64Array.from(z);
      const fd = new Float64Array(z.length);
      for (let i = 0; i < z.length; i++) fd[i] = centralDiff((x) => refLoss(x, y, v, g, h, t), z64, i, 1e-6);
      expectClose(grad, fd, 1e-4, 2e-6, `fd N=${n} V=${v}`);
      expectClose(grad, refTokenLogprobsBackward(z, y, v, g, h, t), RTOL, ATOL, `analytic N=${n} V=${v}`);
    }
  });

  for (const level of LEVELS) {
    it(`matches the analytic reference on awkward shapes (${level}), one-read and recompute paths`, () => {
      setSimdLevel(level);
      SHAPES.forEach(([n, v], k) => {
        const z = randn(n * v, 2.5, 500 + k);
        const y = randint(n, v, 600 + k);
        const g = randn(n, 1, 700 + k);
        const h = randn(n, 0.5, 800 + k);
        const ref = refTokenLogprobsBackward(z, y, v, g, h, 0.8);
        const recompute = tokenLogprobsBackward(z, y, g, { vocab: v, gradEntropy: h, temperature: 0.8 });
        expectClose(recompute, ref, RTOL, ATOL, `${level} recompute N=${n} V=${v}`);
        const f = tokenLogprobs(z, y, { vocab: v, returnEntropy: true, temperature: 0.8 });
        const reuse = tokenLogprobsBackward(z, y, g, {
          vocab: v, gradEntropy: h, temperature: 0.8, logsumexp: f.logsumexp, entropy: f.entropy,
        });
        expectClose(reuse, ref, RTOL, ATOL, `${level} reuse N=${n} V=${v}`);
      });
    });
  }

  it('large magnitudes: the recompute path stays exact', () => {
    const n = 10, v = 2053;
    const z = randn(n * v, 1e4, 91);
    const y = randint(n, v, 92);
    const g = randn(n, 1, 93);
    const h = randn(n, 1, 94);
    const grad = tokenLogprobsBackward(z, y, g, { vocab: v, gradEntropy: h });
    expectClose(grad, refTokenLogprobsBackward(z, y, v, g, h), RTOL, ATOL, 'sd 1e4');
  });

  it('in place over f32 logits equals the out-of-place result (every offset in 64 bytes, every level)', () => {
    // In place, the gradient goes out with plain stores over the lines just read (out of place:
    // streaming stores after an unaligned head): the same bits at every start offset.
    const n = 7, v = 5000;
    const z = randn(n * v, 2, 51);
    const y = randint(n, v, 52);
    const g = randn(n, 1, 53);
    const h = randn(n, 1, 54);
    const buf = new ArrayBuffer((n * v + 16) * 4);
    for (const level of LEVELS) {
      setSimdLevel(level);
      for (const gradEntropy of [undefined, h]) {
        const expected = tokenLogprobsBackward(z, y, g, { vocab: v, gradEntropy });
        for (let k = 0; k < 16; k++) {
          const copy = new Float32Array(buf, k * 4, n * v);
          copy.set(z);
          const res = tokenLogprobsBackward(copy, y, g, { vocab: v, gradEntropy, inPlace: true });
          expect(res).toBe(copy);
          expectSameBits(copy, expected, `${level} offset ${k} gradEntropy ${!!gradEntropy}: grad`);
        }
      }
    }
  });

  it('writes into a caller-provided out buffer', () => {
    const n = 3, v = 100;
    const z = randn(n * v, 2, 61);
    const y = randint(n, v, 62);
    const out = new Float32Array(n * v).fill(Number.NaN);
    const res = tokenLogprobsBackward(z, y, new Float32Array(n).fill(1), { vocab: v, out });
    expect(res).toBe(out);
    expectClose(out, refTokenLogprobsBackward(z, y, v, new Float32Array(n).fill(1), null), RTOL, ATOL, 'out');
  });
});

describe('determinism, out buffers, Promise forms', () => {
  it('results are bit-identical for 1, 2 and 3 threads', () => {
    for (const [n, v] of [[5, 151936], [300, 1031], [1, 40000]] as const) {
      const z = randn(n * v, 3, n);
      const y = randint(n, v, v);
      const g = randn(n, 1, 5);
      const h = randn(n, 1, 6);
      const runs = [1, 2, 3].map((t) => {
        setNumThreads(t);
        const f = tokenLogprobs(z, y, { vocab: v, returnEntropy: true });
        const b = tokenLogprobsBackward(z, y, g, { vocab: v, gradEntropy: h });
        return { f, b };
      });
      for (const r of runs.slice(1)) {
        expect(r.f.logprobs).toEqual(runs[0].f.logprobs);
        expect(r.f.entropy).toEqual(runs[0].f.entropy);
        expect(r.f.logsumexp).toEqual(runs[0].f.logsumexp);
        expect(Buffer.from(r.b.buffer).equals(Buffer.from(runs[0].b.buffer))).toBe(true);
      }
    }
  });

  it('fills caller-provided out buffers', () => {
    const n = 4, v = 50;
    const z = randn(n * v, 1, 1);
    const y = randint(n, v, 2);
    const out = { logprobs: new Float32Array(n).fill(9), logsumexp: new Float32Array(n).fill(9), entropy: new Float32Array(n).fill(9) };
    const r = tokenLogprobs(z, y, { vocab: v, returnEntropy: true, out });
    expect(r.logprobs).toBe(out.logprobs);
    expect(r.logsumexp).toBe(out.logsumexp);
    expect(r.entropy).toBe(out.entropy);
    const ref = refTokenLogprobs(z, y, v);
    expectClose(out.logprobs, ref.logp, RTOL, ATOL, 'out logprobs');
    expectClose(out.entropy, ref.entropy, RTOL, ATOL, 'out entropy');
  });

  it('Promise forms run off the main thread and equal the sync results', async () => {
    const n = 64, v = 151936;
    const z = randn(n * v, 2, 71);
    const y = randint(n, v, 72);
    const g = randn(n, 1, 73);
    const sync = tokenLogprobs(z, y, { vocab: v, returnEntropy: true });
    // The event loop turns while the kernel (milliseconds) runs on a worker thread. On a loaded
    // machine a descheduled main thread can let the worker finish before that first turn, so the
    // turn is looked for in up to three calls (each one is checked against the sync results).
    let turned = false;
    const results: Awaited<ReturnType<typeof tokenLogprobsAsync>>[] = [];
    for (let k = 0; k < 3 && !turned; k++) {
      let settled = false;
      const p = tokenLogprobsAsync(z, y, { vocab: v, returnEntropy: true }).then((r) => {
        settled = true;
        return r;
      });
      await new Promise((resolve) => setImmediate(resolve));
      turned = !settled;
      results.push(await p);
    }
    expect(turned).toBe(true);
    for (const r of results) {
      expect(r.logprobs).toEqual(sync.logprobs);
      expect(r.entropy).toEqual(sync.entropy);
    }
    const [asyncRes, second] = await Promise.all([tokenLogprobsAsync(z, y, { vocab: v, returnEntropy: true }), tokenLogprobsAsync(z, y, { vocab: v })]);
    expect(asyncRes.logprobs).toEqual(sync.logprobs);
    expect(asyncRes.entropy).toEqual(sync.entropy);
    expect(second.logprobs).toEqual(sync.logprobs);
    const gb = await tokenLogprobsBackwardAsync(z, y, g, { vocab: v });
    const gs = tokenLogprobsBackward(z, y, g, { vocab: v });
    expect(Buffer.from(gb.buffer).equals(Buffer.from(gs.buffer))).toBe(true);
    await expect(tokenLogprobsAsync(z, y.map(() => v), { vocab: v })).rejects.toThrow(RangeError);
  });

  it('an empty batch (N = 0) returns empty outputs', () => {
    const r = tokenLogprobs(new Float32Array(0), new Int32Array(0), { vocab: 10, returnEntropy: true });
    expect(r.logprobs.length).toBe(0);
    expect(tokenLogprobsBackward(new Float32Array(0), new Int32Array(0), new Float32Array(0), { vocab: 10 }).length).toBe(0);
  });
});

describe('bad input is rejected before native code runs', () => {
  const v = 10, n = 3;
  const z = randn(n * v, 1, 1);
  const y = Int32Array.from([1, 2, 3]);
  const bad = (fn: () => unknown, cls: ErrorConstructor, ...words: (string | RegExp)[]) => {
    let err: unknown;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err, 'expected a throw').toBeInstanceOf(cls);
    for (const w of words) expect((err as Error).message).toMatch(w);
  };

  it('logits of the wrong type', () => {
    bad(() => tokenLogprobs([1, 2, 3] as unknown as Float32Array, y, { vocab: 1 }), TypeError, 'logits', 'Array(3)');
    bad(() => tokenLogprobs(new Float64Array(30) as unknown as Float32Array, y, { vocab: v }), TypeError, 'logits', 'Float64Array');
    bad(() => tokenLogprobs(null as unknown as Float32Array, y, { vocab: v }), TypeError, 'logits', 'null');
    const detached = new Float32Array(30);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    bad(() => tokenLogprobs(detached, y, { vocab: v }), TypeError, 'logits', 'detached');
  });

  it('dtype missing or not matching the array', () => {
    bad(() => tokenLogprobs(new Uint16Array(30), y, { vocab: v }), TypeError, 'dtype', 'bf16');
    bad(() => tokenLogprobs(new Uint16Array(30), y, { vocab: v, dtype: 'f32' }), TypeError, 'dtype', "'f32'");
    bad(() => tokenLogprobs(z, y, { vocab: v, dtype: 'bf16' }), TypeError, 'dtype', "'bf16'");
    bad(() => tokenLogprobs(new Uint16Array(30), y, { vocab: v, dtype: 'fp8' as 'f16' }), RangeError, 'dtype', 'fp8');
  });

  it('vocab and the logits length', () => {
    bad(() => tokenLogprobs(z, y, { vocab: 7 }), RangeError, 'logits', 'multiple of vocab', '30');
    bad(() => tokenLogprobs(z, y, { vocab: 0 }), RangeError, 'vocab', 'received 0');
    bad(() => tokenLogprobs(z, y, { vocab: 2.5 }), RangeError, 'vocab', '2.5');
    bad(() => tokenLogprobs(z, y, { vocab: -10 }), RangeError, 'vocab');
    bad(() => tokenLogprobs(z, y, { vocab: 2 ** 40 }), RangeError, 'vocab');
    bad(() => tokenLogprobs(z, y, { vocab: '10' as unknown as number }), TypeError, 'vocab', 'string');
    bad(() => tokenLogprobs(z, y, undefined as unknown as { vocab: number }), TypeError, 'options');
  });

  it('targets of the wrong type, length or range', () => {
    bad(() => tokenLogprobs(z, [1, 2, 3] as unknown as Int32Array, { vocab: v }), TypeError, 'targets', 'Int32Array');
    bad(() => tokenLogprobs(z, new Uint32Array(3) as unknown as Int32Array, { vocab: v }), TypeError, 'targets', 'Uint32Array');
    bad(() => tokenLogprobs(z, new Int32Array(4), { vocab: v }), RangeError, 'targets', 'length 3', 'length 4');
    bad(() => tokenLogprobs(z, Int32Array.from([1, 10, 2]), { vocab: v }), RangeError, /targets\[1\]/, 'received 10');
    bad(() => tokenLogprobs(z, Int32Array.from([1, -1, 2]), { vocab: v }), RangeError, /targets\[1\]/, 'received -1');
    bad(() => tokenLogprobsBackward(z, Int32Array.from([1, 2, 99]), new Float32Array(3), { vocab: v }), RangeError, /targets\[2\]/);
  });

  it('temperature that is not a finite positive number', () => {
    for (const t of [0, -1, Infinity, NaN, 1e-320]) bad(() => tokenLogprobs(z, y, { vocab: v, temperature: t }), RangeError, 'temperature');
    bad(() => tokenLogprobs(z, y, { vocab: v, temperature: '1' as unknown as number }), TypeError, 'temperature');
  });

  it('gradient and out buffers of the wrong length or type', () => {
    bad(() => tokenLogprobsBackward(z, y, new Float32Array(2), { vocab: v }), RangeError, 'gradLogprobs', 'length 3');
    bad(() => tokenLogprobsBackward(z, y, new Float64Array(3) as unknown as Float32Array, { vocab: v }), TypeError, 'gradLogprobs');
    bad(() => tokenLogprobsBackward(z, y, new Float32Array(3), { vocab: v, gradEntropy: new Float32Array(5) }), RangeError, 'gradEntropy');
    bad(() => tokenLogprobsBackward(z, y, new Float32Array(3), { vocab: v, logsumexp: new Float32Array(1) }), RangeError, 'logsumexp');
    bad(() => tokenLogprobsBackward(z, y, new Float32Array(3), { vocab: v, out: new Float32Array(29) }), RangeError, 'out', 'length 30');
    bad(() => tokenLogprobsBackward(new Uint16Array(30), y, new Float32Array(3), { vocab: v, dtype: 'bf16', inPlace: true }), TypeError, 'inPlace');
    bad(() => tokenLogprobs(z, y, { vocab: v, out: { logprobs: new Float32Array(2) } }), RangeError, 'out.logprobs', 'length 3');
    bad(() => tokenLogprobs(z, y, { vocab: v, returnEntropy: true, out: { entropy: new Float64Array(3) as unknown as Float32Array } }), TypeError, 'out.entropy');
    const shared = new Float32Array(60);
    const zz = shared.subarray(0, 30);
    bad(() => tokenLogprobsBackward(zz, y, new Float32Array(3), { vocab: v, out: shared.subarray(20, 50) }), RangeError, 'out', 'overlaps');
  });
});
