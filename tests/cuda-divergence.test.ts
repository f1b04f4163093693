// vocabDivergence / vocabDivergenceAsync on DeviceArrays (lib/divergence/vocab-divergence.ts device path,
// native/cuda_binding/divergence.cc, cuda/divergence.h).
//
// Without a device only the first block runs (the host path is unaffected and rejects what it must).
// The second block runs where a CUDA device is visible (a GPU, or the host emulation built as a
// module and named by REWARD_KERNELS_CUDA_MODULE: see docs/cuda.md): one numeric smoke check, then
// determinism, Async, out buffers, in place, edge values, mixing and bad inputs. CUDA vs CPU parity
// over shapes, dtypes, kinds and gradient modes is rk_driver cuda-check's (native/driver/parity.cc).
import { describe, expect, it } from 'vitest';
import { cuda, cudaNative, DeviceArray } from '../lib/cuda.js';
import { vocabDivergence, vocabDivergenceAsync, type DivergenceKind } from '../lib/divergence/index.js';
import { encodeHalf, expectClose, randint, randn, thrown } from './helpers.js';

const available = cuda.isAvailable();

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function bits(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

describe('vocabDivergence without a device', () => {
  it('the host API is unaffected (values by hand)', async () => {
    // one row, V = 2: p = softmax([0, ln 3]) = [1/4, 3/4], q = [1/2, 1/2]
    const z = new Float32Array([0, Math.log(3)]), zt = new Float32Array([0, 0]);
    const fwd = 0.5 * Math.log(0.5 / 0.25) + 0.5 * Math.log(0.5 / 0.75); // KL(q || p)
    const rev = 0.25 * Math.log(0.25 / 0.5) + 0.75 * Math.log(0.75 / 0.5); // KL(p || q)
    const r = vocabDivergence(z, zt, null, { vocab: 2, divergence: 'forward_kl', returnGradient: true });
    expectClose(r.divergence, [fwd], 1e-6, 1e-7, 'forward_kl');
    expectClose(r.gradient!, [0.25 - 0.5, 0.75 - 0.5], 1e-6, 1e-7, 'forward_kl gradient');
    const a = await vocabDivergenceAsync(z, zt, null, { vocab: 2, divergence: 'reverse_kl' });
    expectClose(a.divergence, [rev], 1e-6, 1e-7, 'reverse_kl');
  });

  it('a host call with a non-array argument still names it', () => {
    const z = new Float32Array(4);
    const cases: [() => unknown, string, ErrorConstructor][] = [
      [() => vocabDivergence(z, {} as Float32Array, null, { vocab: 2 }), 'targetLogits', TypeError],
      [() => vocabDivergence(z, z.slice(), [1, 1] as unknown as Uint8Array, { vocab: 2 }), 'mask', TypeError],
      [() => vocabDivergence(z, z.slice(), null, { vocab: 2, labels: new Int32Array(3) }), 'options.labels', RangeError],
    ];
    for (const [call, name, cls] of cases) {
      const e = thrown(call);
      expect(e, name).toBeInstanceOf(cls);
      expect(e.message.startsWith(`${name}:`), e.message).toBe(true);
    }
  });
});

// ------------------------------------------------------------------------------------------------
// On a device. Sizes are tiny: the host emulation runs one OS thread per CUDA thread.

const SMALL: [number, number] = [5, 37];

/** Labels with every third row ignored (-100), and a mask dropping every fourth row. */
function rowsOff(n: number, v: number, seed: number): { labels: Int32Array; mask: Uint8Array } {
  const labels = randint(n, v, seed);
  for (let i = 1; i < n; i += 3) labels[i] = -100;
  const mask = new Uint8Array(n).fill(1);
  for (let i = 2; i < n; i += 4) mask[i] = 0;
  return { labels, mask };
}

describe.skipIf(!available)('vocabDivergence on a device', () => {
  it('smoke: agrees with the CPU kernel (f16; jsd beta 0.3, temperature, labels + mask, per-row gradOutput)', async () => {
    const [n, v] = [7, 37];
    const z = encodeHalf(randn(n * v, 2, 3), 'f16').bits, zt = encodeHalf(randn(n * v, 2, 4), 'f16').bits;
    const { labels, mask } = rowsOff(n, v, 5);
    const g = randn(n, 1, 6);
    const dz = cuda.upload(z, { dtype: 'f16' }), dzt = cuda.upload(zt, { dtype: 'f16' });
    const dl = cuda.upload(labels), dm = cuda.upload(mask), dg = cuda.upload(g);
    const base = { vocab: v, dtype: 'f16' as const, divergence: 'jsd' as const, beta: 0.3, temperature: 1.6, returnGradient: true };
    const want = vocabDivergence(z, zt, mask, { ...base, labels, gradOutput: g });
    const got = vocabDivergence(dz, dzt, dm, { ...base, labels: dl, gradOutput: dg });
    const gd = got.divergence.download(), gg = got.gradient!.download();
    expect(got.divergence.dtype).toBe('f32');
    expectClose(gd, want.divergence, 1e-3, 4e-6, 'divergence');
    expectClose(gg, want.gradient!, 1e-3, 5e-6 * maxAbs(want.gradient!), 'gradient');
    for (let r = 0; r < n; r++) {
      if (labels[r] === -100 || mask[r] === 0) {
        expect(gd[r], `inactive row ${r}`).toBe(0);
        expect(maxAbs(gg.subarray(r * v, (r + 1) * v)), `inactive row ${r} gradient`).toBe(0);
      }
    }
    // the Promise form gives the same bits
    const again = await vocabDivergenceAsync(dz, dzt, dm, { ...base, labels: dl, gradOutput: dg });
    expect(bits(again.divergence.download()).equals(bits(gd)), 'Async divergence bits').toBe(true);
    expect(bits(again.gradient!.download()).equals(bits(gg)), 'Async gradient bits').toBe(true);
    // forward only: no gradient
    const fwd = vocabDivergence(dz, dzt, null, { vocab: v, dtype: 'f16', divergence: 'reverse_kl' });
    expect(fwd.gradient).toBeUndefined();
    expectClose(fwd.divergence.download(), vocabDivergence(z, zt, null, { vocab: v, dtype: 'f16', divergence: 'reverse_kl' }).divergence, 1e-3, 4e-6, 'forward only');
    for (const a of [dz, dzt, dl, dm, dg, got.divergence, got.gradient!, again.divergence, again.gradient!, fwd.divergence]) a.free();
  });

  it('jsd with beta 0 and 1 is exactly forward_kl and reverse_kl, as on the CPU', () => {
    const [n, v] = SMALL;
    const z = randn(n * v, 2, 31), zt = randn(n * v, 2, 32);
    const dz = cuda.upload(z), dzt = cuda.upload(zt);
    for (const [beta, kind] of [[0, 'forward_kl'], [1, 'reverse_kl']] as const) {
      const j = vocabDivergence(dz, dzt, null, { vocab: v, beta, returnGradient: true });
      const k = vocabDivergence(dz, dzt, null, { vocab: v, divergence: kind, returnGradient: true });
      expect(bits(j.divergence.download()).equals(bits(k.divergence.download())), `beta ${beta}`).toBe(true);
      expect(bits(j.gradient!.download()).equals(bits(k.gradient!.download())), `beta ${beta} gradient`).toBe(true);
      const h = vocabDivergence(z, zt, null, { vocab: v, beta });
      expectClose(j.divergence.download(), h.divergence, 1e-5, 4e-6, `beta ${beta} vs CPU`);
      for (const a of [j.divergence, j.gradient!, k.divergence, k.gradient!]) a.free();
    }
    dz.free();
    dzt.free();
  });

  it('edge values: -inf entries, q = 0 < p, p = 0 < q, all -inf and NaN rows match the CPU exactly', () => {
    const v = 37, n = 6;
    const z = randn(n * v, 2, 41), zt = randn(n * v, 2, 42);
    z[3] = -Infinity; zt[3] = -Infinity; // row 0: both -inf at one entry: contributes 0
    zt[v + 5] = -Infinity; // row 1: q = 0 < p
    z[2 * v + 6] = -Infinity; // row 2: p = 0 < q
    z.fill(-Infinity, 3 * v, 4 * v); // row 3: no student distribution
    zt[4 * v + 9] = NaN; // row 4: a NaN logit
    for (const kind of ['forward_kl', 'reverse_kl', 'jsd'] as const) {
      const want = vocabDivergence(z, zt, null, { vocab: v, divergence: kind, returnGradient: true });
      const dz = cuda.upload(z), dzt = cuda.upload(zt);
      const got = vocabDivergence(dz, dzt, null, { vocab: v, divergence: kind, returnGradient: true });
      const gd = got.divergence.download();
      expectClose(gd, want.divergence, 1e-5, 4e-6, `${kind} divergence`);
      expectClose(got.gradient!.download(), want.gradient!, 1e-5, 5e-6 * maxAbs(want.gradient!), `${kind} gradient`);
      expect(Number.isNaN(gd[3]) && Number.isNaN(gd[4]), `${kind} NaN rows`).toBe(true);
      if (kind === 'reverse_kl') expect(gd[1]).toBe(Infinity);
      if (kind === 'forward_kl') expect(gd[2]).toBe(Infinity);
      for (const a of [dz, dzt, got.divergence, got.gradient!]) a.free();
    }
  });

  it('zero rows give empty outputs', () => {
    const z = cuda.alloc('f32', 0), zt = cuda.alloc('f32', 0);
    const r = vocabDivergence(z, zt, null, { vocab: 9, returnGradient: true });
    expect([r.divergence.length, r.gradient!.length]).toEqual([0, 0]);
    for (const a of [z, zt, r.divergence, r.gradient!]) a.free();
  });

  it('in place over f32 logits, a scalar gradOutput, and caller-owned out buffers', async () => {
    const [n, v] = SMALL;
    const z = randn(n * v, 2, 51), zt = randn(n * v, 2, 52);
    const want = vocabDivergence(z, zt, null, { vocab: v, divergence: 'reverse_kl', returnGradient: true, gradOutput: -0.37 });
    const dz = cuda.upload(z), dzt = cuda.upload(zt);
    const r = vocabDivergence(dz, dzt, null, { vocab: v, divergence: 'reverse_kl', returnGradient: true, gradOutput: -0.37, inPlace: true });
    expect(r.gradient).toBe(dz);
    expectClose(dz.download(), want.gradient!, 1e-5, 5e-6 * maxAbs(want.gradient!), 'in place');
    expectClose(r.divergence.download(), want.divergence, 1e-5, 4e-6, 'in place divergence');
    r.divergence.free();
    // out buffers, poisoned: every element must be written; they are used and returned
    dz.copyFrom(z);
    const od = cuda.upload(new Float32Array(n).fill(NaN)), og = cuda.upload(new Float32Array(n * v).fill(NaN));
    const o = await vocabDivergenceAsync(dz, dzt, null, {
      vocab: v, divergence: 'reverse_kl', returnGradient: true, gradOutput: -0.37, out: { divergence: od, gradient: og },
    });
    expect(o.divergence).toBe(od);
    expect(o.gradient).toBe(og);
    expectClose(od.download(), want.divergence, 1e-5, 4e-6, 'out.divergence');
    expectClose(og.download(), want.gradient!, 1e-5, 5e-6 * maxAbs(want.gradient!), 'out.gradient');
    expect(Array.from(dz.download())).toEqual(Array.from(z)); // the logits were only read
    for (const a of [dz, dzt, od, og]) a.free();
  });

  it('mixing host and device arrays is a TypeError naming the argument', () => {
    const v = 7, n = 2;
    const z = randn(n * v, 1, 61), zt = randn(n * v, 1, 62);
    const dz = cuda.upload(z), dzt = cuda.upload(zt);
    const dl = cuda.upload(new Int32Array([1, -100])), dm = cuda.upload(new Uint8Array([1, 1]));
    const dg = cuda.upload(new Float32Array(n)), dgrad = cuda.alloc('f32', n * v);
    const H = <T>(a: unknown) => a as T;
    const cases: [() => unknown, string][] = [
      [() => vocabDivergence(dz, H<DeviceArray>(zt), null, { vocab: v }), 'targetLogits'],
      [() => vocabDivergence(z, H<Float32Array>(dzt), null, { vocab: v }), 'targetLogits'],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, labels: H<DeviceArray>(new Int32Array(n)) }), 'options.labels'],
      [() => vocabDivergence(z, zt, null, { vocab: v, labels: H<Int32Array>(dl) }), 'options.labels'],
      [() => vocabDivergence(dz, dzt, H<DeviceArray>(new Uint8Array(n)), { vocab: v }), 'mask'],
      [() => vocabDivergence(z, zt, H<Uint8Array>(dm), { vocab: v }), 'mask'],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, returnGradient: true, gradOutput: H<DeviceArray>(new Float32Array(n)) }), 'options.gradOutput'],
      [() => vocabDivergence(z, zt, null, { vocab: v, returnGradient: true, gradOutput: H<Float32Array>(dg) }), 'options.gradOutput'],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, out: { divergence: H<DeviceArray>(new Float32Array(n)) } }), 'options.out.divergence'],
      [() => vocabDivergence(z, zt, null, { vocab: v, out: { divergence: H<Float32Array>(dg) } }), 'options.out.divergence'],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, returnGradient: true, out: { gradient: H<DeviceArray>(new Float32Array(n * v)) } }), 'options.out.gradient'],
      [() => vocabDivergence(z, zt, null, { vocab: v, returnGradient: true, out: { gradient: H<Float32Array>(dgrad) } }), 'options.out.gradient'],
    ];
    for (const [call, name] of cases) {
      const e = thrown(call);
      expect(e, name).toBeInstanceOf(TypeError);
      expect(e.message.startsWith(`${name}:`), e.message).toBe(true);
      expect(e.message).toContain('mixed');
    }
    for (const a of [dz, dzt, dl, dm, dg, dgrad]) a.free();
  });

  it('bad shapes, dtypes and options: the host path error classes, naming the argument', () => {
    const v = 7, n = 3;
    const dz = cuda.upload(randn(n * v, 1, 71)), dzt = cuda.upload(randn(n * v, 1, 72));
    const bf = cuda.upload(new Uint16Array(n * v), { dtype: 'bf16' });
    const cases: [() => unknown, string, ErrorConstructor][] = [
      [() => vocabDivergence(dz, dzt, null, { vocab: 5 }), 'logits', RangeError],
      [() => vocabDivergence(dz, cuda.alloc('f32', n * v - v), null, { vocab: v }), 'targetLogits', RangeError],
      [() => vocabDivergence(dz, bf, null, { vocab: v }), 'targetLogits', TypeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, dtype: 'bf16' }), 'options.dtype', TypeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, beta: 1.5 }), 'options.beta', RangeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, temperature: 0 }), 'options.temperature', RangeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, divergence: 'tv' as DivergenceKind }), 'options.divergence', RangeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, labels: cuda.alloc('i32', n + 1) }), 'options.labels', RangeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, labels: cuda.alloc('f32', n) }), 'options.labels', TypeError],
      [() => vocabDivergence(dz, dzt, cuda.alloc('u8', n - 1), { vocab: v }), 'mask', RangeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, ignoreIndex: 0 }), 'options.ignoreIndex', TypeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, gradOutput: 2 }), 'options.gradOutput', TypeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, returnGradient: true, gradOutput: cuda.alloc('f32', 1) }), 'options.gradOutput', RangeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, inPlace: true }), 'options.inPlace', TypeError],
      [() => vocabDivergence(bf, cuda.alloc('bf16', n * v), null, { vocab: v, returnGradient: true, inPlace: true }), 'options.inPlace', TypeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, out: { divergence: cuda.alloc('f32', n + 1) } }), 'options.out.divergence', RangeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, returnGradient: true, out: { gradient: cuda.alloc('bf16', n * v) } }), 'options.out.gradient', TypeError],
      // overlaps, by device address range
      [() => vocabDivergence(dz, dzt, null, { vocab: v, returnGradient: true, out: { gradient: cuda.wrap(dz.ptr + 4n, 'f32', n * v) } }), 'options.out.gradient', RangeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, returnGradient: true, out: { gradient: dzt } }), 'options.out.gradient', RangeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, out: { divergence: cuda.wrap(dzt.ptr + 8n, 'f32', n) } }), 'options.out.divergence', RangeError],
      [() => vocabDivergence(dz, dzt, null, { vocab: v, returnGradient: true, inPlace: true, out: { divergence: cuda.wrap(dz.ptr, 'f32', n) } }), 'options.out.divergence', RangeError],
    ];
    for (const [call, name, cls] of cases) {
      const e = thrown(call);
      expect(e, `${name}: ${e.message}`).toBeInstanceOf(cls);
      expect(e.message.startsWith(`${name}:`), e.message).toBe(true);
    }
    // the logits were never written by a refused call
    expect(Array.from(dz.download())).toEqual(Array.from(randn(n * v, 1, 71)));
    for (const a of [dz, dzt, bf]) a.free();
  });

  it('the binding rechecks every length and value it relies on (the facade bypassed)', async () => {
    const v = 7, n = 3;
    const dz = cuda.upload(randn(n * v, 1, 91)), dzt = cuda.upload(randn(n * v, 1, 92));
    const div = cuda.alloc('f32', n), grad = cuda.alloc('f32', n * v), rowsI32 = cuda.alloc('i32', n);
    const nat = cudaNative() as unknown as Record<string, (...a: unknown[]) => unknown>;
    // the op protocol (lib/op.ts): params, scalars, then the slots [pointer, length, type code] or null (logits, targetLogits,
    // mask, labels, gradOutput, divergence, gradient); params vocab, dtype, divergence, beta,
    // temperature, ignoreIndex, gradOutput
    const F32 = 0, I32 = 2;
    const slots = (): unknown[] => [
      [dz.ptr, n * v, F32], [dzt.ptr, n * v, F32], null, [rowsI32.ptr, n, I32], null, [div.ptr, n, F32], [grad.ptr, n * v, F32],
    ];
    const params = () => Float64Array.from([v, 0, 2, 0.5, 1, -100, 1]);
    expect(nat.vocabDivergence(params(), null, ...slots())).toBeUndefined();
    const badSlot: [number, number, string][] = [
      [0, n * v - 1, 'logits'], // not a multiple of vocab
      [1, n * v - v, 'targetLogits'],
      [3, n + 1, 'labels'],
      [5, n - 1, 'divergence'],
      [6, n * v + 1, 'gradient'],
    ];
    const badParam: [number, number, string][] = [
      [1, 3, 'params.dtype'],
      [2, 5, 'params.divergence'],
      [3, 1.5, 'params.beta'],
      [4, 0, 'params.temperature'],
      [6, Infinity, 'params.gradOutput'],
    ];
    const check = (s: unknown[], p: Float64Array, name: string) => {
      const e = thrown(() => nat.vocabDivergence(p, null, ...s));
      expect(e, `${name}: ${e.message}`).toBeInstanceOf(RangeError);
      expect(e.message.startsWith(`${name}:`), e.message).toBe(true);
    };
    for (const [i, length, name] of badSlot) {
      const s = slots();
      s[i] = [(s[i] as unknown[])[0], length, (s[i] as unknown[])[2]];
      check(s, params(), name);
    }
    for (const [i, value, name] of badParam) {
      const p = params();
      p[i] = value;
      check(slots(), p, name);
    }
    // the kernel's own overlap check, through the Promise form: a gradient over the target
    const over = slots();
    over[6] = [dzt.ptr, n * v, F32];
    await expect(nat.vocabDivergenceAsync(params(), null, ...over) as Promise<unknown>).rejects.toThrow(/grad \(overlaps target\)/);
    for (const a of [dz, dzt, div, grad, rowsI32]) a.free();
  });

  it('free() refuses while an Async call uses an array; use after free is a clear Error', async () => {
    const v = 5, n = 2;
    const dz = cuda.upload(randn(n * v, 1, 81)), dzt = cuda.upload(randn(n * v, 1, 82));
    const dl = cuda.upload(new Int32Array([0, -100]));
    const p = vocabDivergenceAsync(dz, dzt, null, { vocab: v, labels: dl, returnGradient: true });
    expect(() => dl.free()).toThrow(/pending/);
    expect(() => dzt.free()).toThrow(/pending/);
    const r = await p;
    expect(r.divergence.download()[1]).toBe(0);
    dl.free();
    expect(thrown(() => vocabDivergence(dz, dzt, null, { vocab: v, labels: dl })).message).toMatch(/^options\.labels: .* was used after free\(\)/);
    dzt.free();
    expect(thrown(() => vocabDivergence(dz, dzt, null, { vocab: v })).message).toMatch(/^targetLogits: .* was used after free\(\)/);
    for (const a of [dz, r.divergence, r.gradient!]) a.free();
  });
});
