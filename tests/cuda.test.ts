// The CUDA facade (lib/cuda.ts) and tokenLogprobs* on DeviceArrays.
//
// Without a CUDA device (this build machine, CI) the first block checks that isAvailable() is false,
// devices() is [], every entry point throws the clear error, and the host API is unaffected. The
// second block runs only where a device is visible (a GPU, or the host emulation of cuda/emu built
// as a module and named by REWARD_KERNELS_CUDA_MODULE: see docs/cuda.md): the facade's behaviour (in
// place, out buffers, Async forms, bad targets, host/device mixing, free and wrap) and one small
// numeric smoke check per op. CUDA vs CPU parity over shapes, dtypes and options is rk_driver
// cuda-check's (native/driver/parity.cc).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { cudaModulePath } from '../lib/cuda.js';
import {
  cuda,
  DeviceArray,
  tokenLogprobs,
  tokenLogprobsAsync,
  tokenLogprobsBackward,
  tokenLogprobsBackwardAsync,
} from '../lib/index.js';
import { encodeHalf, expectClose, randint, randn, thrown } from './helpers.js';

const available = cuda.isAvailable();
const status = cuda.status();

describe('cuda without a device', () => {
  it.skipIf(available)('isAvailable() is false, devices() is [], status() says why', () => {
    expect(cuda.isAvailable()).toBe(false);
    expect(cuda.devices()).toEqual([]);
    expect(status.deviceCount).toBe(0);
    expect(status.built).toBe(fs.existsSync(cudaModulePath));
    if (status.built) {
      // the CUDA runtime's own reason: no driver here, or no device behind it
      expect(status.error).toMatch(/^cudaError/);
      expect(status.runtimeVersion).toBeGreaterThanOrEqual(12000);
    } else {
      expect(status.error).toContain('not built');
    }
  });

  it.skipIf(available)('every entry point throws an Error that says which and how to get it', () => {
    const calls: [string, () => unknown][] = [
      ['cuda.alloc', () => cuda.alloc('f32', 4)],
      ['cuda.upload', () => cuda.upload(new Float32Array(4))],
      ['cuda.wrap', () => cuda.wrap(256n, 'f32', 4)],
      ['cuda.synchronize', () => cuda.synchronize()],
    ];
    for (const [name, call] of calls) {
      const err = thrown(call);
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toContain(name);
      if (status.built) {
        expect(err.code).toBe('RK_CUDA_NO_DEVICE');
        expect(err.message).toContain('needs a CUDA device');
        expect(err.message).toContain(status.error); // the CUDA error name
        expect(err.message).toContain('nvidia-smi');
      } else {
        expect(err.code).toBe('RK_CUDA_NOT_BUILT');
        expect(err.message).toContain('built without');
        expect(err.message).toContain('npm rebuild reward-kernels --build-from-source');
      }
    }
  });

  it('arguments are checked before the device is needed', () => {
    expect(thrown(() => cuda.alloc('f8' as 'f32', 4))).toBeInstanceOf(RangeError);
    expect(thrown(() => cuda.alloc('f32', -1)).message).toContain('length');
    expect(thrown(() => cuda.upload(new BigInt64Array(3) as unknown as Float32Array))).toBeInstanceOf(TypeError);
    expect(thrown(() => cuda.upload(new Float64Array(3), { dtype: 'f32' as 'f64' })).message).toContain("uploads as 'f64'");
    expect(thrown(() => cuda.wrap(260n, 'f64', 1)).message).toContain('aligned to 8 bytes');
    const e = thrown(() => cuda.upload(new Uint16Array(3)));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toContain('options.dtype');
    expect(thrown(() => cuda.upload(new Float32Array(3), { dtype: 'i32' as 'f32' })).message).toContain("'f32'");
    expect(thrown(() => cuda.wrap(3 as unknown as bigint, 'f32', 1))).toBeInstanceOf(TypeError);
    expect(thrown(() => cuda.wrap(258n, 'f32', 1)).message).toContain('aligned');
    expect(thrown(() => cuda.wrap(0n, 'f32', 1))).toBeInstanceOf(RangeError);
  });

  it('a missing or broken CUDA module: isAvailable() is false and the errors say how to build it', async () => {
    const saved = process.env.REWARD_KERNELS_CUDA_MODULE;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rk-cuda-'));
    const broken = path.join(dir, 'reward_kernels_cuda.node');
    fs.writeFileSync(broken, 'not a shared object');
    try {
      for (const [file, why] of [[path.join(dir, 'missing.node'), 'not built (no '], [broken, 'failed to load']] as const) {
        process.env.REWARD_KERNELS_CUDA_MODULE = file;
        vi.resetModules();
        const fresh = await import('../lib/cuda.js');
        expect(fresh.cudaModulePath).toBe(file);
        expect(fresh.isAvailable()).toBe(false);
        expect(fresh.devices()).toEqual([]);
        expect(fresh.status()).toMatchObject({ built: false, deviceCount: 0 });
        expect(fresh.status().error).toContain(why);
        const err = thrown(() => fresh.alloc('f32', 1));
        expect(err.code).toBe('RK_CUDA_NOT_BUILT');
        expect(err.message).toContain('cuda.alloc needs CUDA, but this install was built without it');
        expect(err.message).toContain(why);
        expect(err.message).toContain('npm rebuild reward-kernels --build-from-source');
      }
    } finally {
      if (saved === undefined) delete process.env.REWARD_KERNELS_CUDA_MODULE;
      else process.env.REWARD_KERNELS_CUDA_MODULE = saved;
      vi.resetModules();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a DeviceArray cannot be constructed directly', () => {
    const Ctor = DeviceArray as unknown as new (...a: unknown[]) => DeviceArray;
    expect(() => new Ctor(Symbol('x'), 256n, 'f32', 4, false)).toThrow(TypeError);
  });

  it('the host API is unaffected', async () => {
    const z = new Float32Array([1, 2, 3, 4, 5, 0, 0, 0, 0, 0]);
    const y = new Int32Array([4, 1]);
    const r = tokenLogprobs(z, y, { vocab: 5, returnEntropy: true });
    expectClose(r.logprobs, [-0.45191439, -Math.log(5)], 1e-6, 1e-7, 'logprobs');
    expectClose(r.entropy!, [0.99997288, Math.log(5)], 1e-5, 1e-7, 'entropy');
    const ra = await tokenLogprobsAsync(z, y, { vocab: 5 });
    expect(Array.from(ra.logprobs)).toEqual(Array.from(r.logprobs));
    const g = tokenLogprobsBackward(z, y, new Float32Array([1, 1]), { vocab: 5 });
    expectClose(g.subarray(5), [-0.2, 0.8, -0.2, -0.2, -0.2], 1e-6, 1e-7, 'grad');
    // host errors keep their text
    expect(thrown(() => tokenLogprobs(z, new Int32Array([4, 7]), { vocab: 5 })).message).toBe(
      'targets[1]: expected an id in [0, 5) or ignoreIndex (-100), received 7',
    );
  });
});

// ------------------------------------------------------------------------------------------------
// On a device. Sizes are tiny: the host emulation runs one OS thread per CUDA thread.

/** Targets with a few ignored rows. */
function targetsFor(n: number, v: number, seed: number): Int32Array {
  const y = randint(n, v, seed);
  for (let i = 0; i < n; i += 3) if (i % 2 === 1) y[i] = -100;
  return y;
}

describe.skipIf(!available)('cuda on a device', () => {
  it('devices() describes the card', () => {
    const ds = cuda.devices();
    expect(ds.length).toBeGreaterThan(0);
    expect(ds[0].name.length).toBeGreaterThan(0);
    expect(ds[0].computeCapability).toMatch(/^\d+\.\d+$/);
    expect(ds[0].totalMemory).toBeGreaterThan(0);
  });

  it('upload / download / copyFrom round-trip every dtype', () => {
    const f = randn(37, 1, 1);
    const cases: [DeviceArray, ArrayLike<number>, string][] = [
      [cuda.upload(f), f, 'f32'],
      [cuda.upload(new Uint16Array([1, 2, 65535]), { dtype: 'bf16' }), [1, 2, 65535], 'bf16'],
      [cuda.upload(new Uint16Array([7, 0x3c00]), { dtype: 'f16' }), [7, 0x3c00], 'f16'],
      [cuda.upload(new Int32Array([-5, 2 ** 31 - 1, 0])), [-5, 2 ** 31 - 1, 0], 'i32'],
      [cuda.upload(new Uint8Array([0, 255, 9, 1, 2])), [0, 255, 9, 1, 2], 'u8'],
      [cuda.upload(Float64Array.of(0.1, -1e300, 5e-324, Math.PI)), [0.1, -1e300, 5e-324, Math.PI], 'f64'],
    ];
    for (const [d, want, dtype] of cases) {
      expect(d.dtype).toBe(dtype);
      expect(d.length).toBe(want.length);
      expect(d.owned).toBe(true);
      expect(Array.from(d.download())).toEqual(Array.from(want));
      expect(typeof d.ptr).toBe('bigint');
      d.free();
    }
    const a = cuda.alloc('f32', 5);
    expect(a.byteLength).toBe(20);
    a.copyFrom(new Float32Array([1, 2, 3, 4, 5]));
    const out = new Float32Array(5);
    expect(a.download(out)).toBe(out);
    expect(Array.from(out)).toEqual([1, 2, 3, 4, 5]);
    expect(() => a.download(new Float32Array(4))).toThrow(RangeError);
    expect(() => a.download(new Int32Array(5) as unknown as Float32Array)).toThrow(TypeError);
    expect(String(a)).toBe('DeviceArray(f32, 5)');
    a.free();
    const d = cuda.alloc('f64', 3);
    expect(d.byteLength).toBe(24);
    expect(Array.from(d.copyFrom(Float64Array.of(1 / 3, -0, 2 ** 60)).download(new Float64Array(3)))).toEqual([1 / 3, -0, 2 ** 60]);
    expect(() => d.download(new Float32Array(3) as unknown as Float64Array)).toThrow(/expected a Float64Array for dtype 'f64'/);
    d.free();
    const empty = cuda.alloc('i32', 0);
    expect(empty.download().length).toBe(0);
    empty.free();
  });

  it('zero rows give empty outputs', () => {
    const z = cuda.alloc('f32', 0), y = cuda.alloc('i32', 0);
    const r = tokenLogprobs(z, y, { vocab: 7, returnEntropy: true });
    expect([r.logprobs.length, r.logsumexp.length, r.entropy!.length]).toEqual([0, 0, 0]);
    const g = tokenLogprobsBackward(z, y, cuda.alloc('f32', 0), { vocab: 7 });
    expect(g.length).toBe(0);
    expect(g.download()).toEqual(new Float32Array(0));
  });

  it('smoke: forward and backward agree with the CPU kernel (bf16; entropy, temperature, ignored rows)', async () => {
    const [n, v] = [7, 37];
    const host = encodeHalf(randn(n * v, 3, 1), 'bf16').bits;
    const y = targetsFor(n, v, 2);
    const g = randn(n, 1, 3), h = randn(n, 1, 4);
    const opts = { vocab: v, dtype: 'bf16' as const, returnEntropy: true, temperature: 0.7 };
    const want = tokenLogprobs(host, y, opts);
    const dz = cuda.upload(host, { dtype: 'bf16' }), dy = cuda.upload(y), dg = cuda.upload(g), dh = cuda.upload(h);
    const got = tokenLogprobs(dz, dy, opts);
    expectClose(got.logprobs.download(), want.logprobs, 1e-3, 1e-6, 'logprobs');
    expectClose(got.logsumexp.download(), want.logsumexp, 1e-3, 1e-6, 'logsumexp');
    expectClose(got.entropy!.download(), want.entropy!, 1e-3, 1e-6, 'entropy');
    // the Promise form gives the same bits
    const again = await tokenLogprobsAsync(dz, dy, opts);
    expect(Array.from(again.logprobs.download())).toEqual(Array.from(got.logprobs.download()));
    // backward with every optional slot filled (gradEntropy, logsumexp, entropy)
    const dl = cuda.upload(want.logsumexp), de = cuda.upload(want.entropy!);
    const bopts = { vocab: v, dtype: 'bf16' as const, temperature: 0.7 };
    const wantG = tokenLogprobsBackward(host, y, g, { ...bopts, gradEntropy: h, logsumexp: want.logsumexp, entropy: want.entropy });
    let maxAbs = 0;
    for (const x of wantG) maxAbs = Math.max(maxAbs, Math.abs(x));
    const gotG = tokenLogprobsBackward(dz, dy, dg, { ...bopts, gradEntropy: dh, logsumexp: dl, entropy: de });
    expect(gotG.dtype).toBe('f32');
    expect(gotG.length).toBe(n * v);
    expectClose(gotG.download(), wantG, 1e-3, 1e-6 * maxAbs, 'grad');
    const gotA = await tokenLogprobsBackwardAsync(dz, dy, dg, { ...bopts, gradEntropy: dh, logsumexp: dl, entropy: de });
    expect(Buffer.from(gotA.download().buffer).equals(Buffer.from(gotG.download().buffer))).toBe(true);
    for (const a of [dz, dy, dg, dh, dl, de, got.logprobs, got.logsumexp, got.entropy, again.logprobs, again.logsumexp, again.entropy, gotG, gotA]) a?.free();
  });

  it('backward in place over f32 logits, and caller-owned out buffers', () => {
    const [n, v] = [5, 37];
    const z = randn(n * v, 2, 11);
    const y = targetsFor(n, v, 12);
    const g = randn(n, 1, 13);
    const want = tokenLogprobsBackward(z, y, g, { vocab: v });
    const dz = cuda.upload(z), dy = cuda.upload(y), dg = cuda.upload(g);
    const res = tokenLogprobsBackward(dz, dy, dg, { vocab: v, inPlace: true });
    expect(res).toBe(dz);
    expectClose(dz.download(), want, 1e-5, 1e-7, 'in place');
    // out buffers are used and returned
    dz.copyFrom(z);
    const out = cuda.alloc('f32', n * v);
    out.copyFrom(new Float32Array(n * v).fill(NaN)); // poisoned: every element must be written
    expect(tokenLogprobsBackward(dz, dy, dg, { vocab: v, out })).toBe(out);
    expectClose(out.download(), want, 1e-5, 1e-7, 'out');
    const lp = cuda.alloc('f32', n), ls = cuda.alloc('f32', n), en = cuda.alloc('f32', n);
    for (const a of [lp, ls, en]) a.copyFrom(new Float32Array(n).fill(NaN));
    const r = tokenLogprobs(dz, dy, { vocab: v, returnEntropy: true, out: { logprobs: lp, logsumexp: ls, entropy: en } });
    expect(r.logprobs).toBe(lp);
    expect(r.logsumexp).toBe(ls);
    expect(r.entropy).toBe(en);
    const w = tokenLogprobs(z, y, { vocab: v, returnEntropy: true });
    expectClose(lp.download(), w.logprobs, 1e-5, 1e-6, 'out.logprobs');
    expectClose(en.download(), w.entropy!, 1e-5, 1e-6, 'out.entropy');
    // an out buffer overlapping the logits (not the same memory) is refused
    const shifted = cuda.wrap(dz.ptr + 4n, 'f32', n * v);
    expect(thrown(() => tokenLogprobsBackward(dz, dy, dg, { vocab: v, out: shifted })).message).toContain('overlaps');
    for (const a of [dz, dy, dg, out, lp, ls, en]) a.free();
  });

  it('bad targets: the same RangeError as the CPU path, sync and Async', async () => {
    const v = 19, n = 6;
    const z = randn(n * v, 1, 5);
    const y = new Int32Array([0, 3, -100, 19, -1, 25]);
    const hostMsg = thrown(() => tokenLogprobs(z, y, { vocab: v })).message;
    expect(hostMsg).toBe('targets[3]: expected an id in [0, 19) or ignoreIndex (-100), received 19');
    const dz = cuda.upload(z), dy = cuda.upload(y), dg = cuda.upload(new Float32Array(n).fill(1));
    const e1 = thrown(() => tokenLogprobs(dz, dy, { vocab: v, returnEntropy: true }));
    expect(e1).toBeInstanceOf(RangeError);
    expect(e1.message).toBe(hostMsg);
    const e2 = thrown(() => tokenLogprobsBackward(dz, dy, dg, { vocab: v }));
    expect(e2).toBeInstanceOf(RangeError);
    expect(e2.message).toBe(hostMsg);
    await expect(tokenLogprobsAsync(dz, dy, { vocab: v })).rejects.toThrow(hostMsg);
    await expect(tokenLogprobsBackwardAsync(dz, dy, dg, { vocab: v })).rejects.toThrow(RangeError);
    // with another ignoreIndex the message names it, as on the host
    const y2 = cuda.upload(new Int32Array([0, 1, 2, 3, 4, -7]));
    expect(thrown(() => tokenLogprobs(dz, y2, { vocab: v, ignoreIndex: -1 })).message).toBe(
      thrown(() => tokenLogprobs(z, y2.download(), { vocab: v, ignoreIndex: -1 })).message,
    );
    for (const a of [dz, dy, dg, y2]) a.free();
  });

  it('mixing host and device arrays is a TypeError naming the argument', () => {
    const v = 7, n = 2;
    const z = randn(n * v, 1, 8), y = new Int32Array([1, 2]), g = new Float32Array(n);
    const dz = cuda.upload(z), dy = cuda.upload(y), dg = cuda.upload(g), dn = cuda.alloc('f32', n);
    const cases: [() => unknown, string][] = [
      [() => tokenLogprobs(z, dy as unknown as Int32Array, { vocab: v }), 'targets'],
      [() => tokenLogprobs(dz, y as unknown as DeviceArray, { vocab: v }), 'targets'],
      [() => tokenLogprobs(dz, dy, { vocab: v, out: { logprobs: new Float32Array(n) as unknown as DeviceArray } }), 'options.out.logprobs'],
      [() => tokenLogprobs(z, y, { vocab: v, out: { logsumexp: dn as unknown as Float32Array } }), 'options.out.logsumexp'],
      [() => tokenLogprobsBackward(dz, dy, g as unknown as DeviceArray, { vocab: v }), 'gradLogprobs'],
      [() => tokenLogprobsBackward(z, y, dg as unknown as Float32Array, { vocab: v }), 'gradLogprobs'],
      [() => tokenLogprobsBackward(dz, dy, dg, { vocab: v, logsumexp: g as unknown as DeviceArray }), 'options.logsumexp'],
      [() => tokenLogprobsBackward(z, y, g, { vocab: v, gradEntropy: dn as unknown as Float32Array }), 'options.gradEntropy'],
      [() => tokenLogprobsBackward(dz, dy, dg, { vocab: v, out: new Float32Array(n * v) as unknown as DeviceArray }), 'options.out'],
    ];
    for (const [call, name] of cases) {
      const e = thrown(call);
      expect(e, name).toBeInstanceOf(TypeError);
      expect(e.message.startsWith(`${name}:`), e.message).toBe(true);
      expect(e.message).toContain('mixed');
    }
    // the same shape / option checks as the host path
    expect(thrown(() => tokenLogprobs(dz, dy, { vocab: 5 }))).toBeInstanceOf(RangeError);
    expect(thrown(() => tokenLogprobs(dz, dy, { vocab: v, dtype: 'bf16' })).message).toContain('options.dtype');
    expect(thrown(() => tokenLogprobs(dz, dg, { vocab: v })).message).toContain("targets: expected a DeviceArray of dtype 'i32'");
    expect(thrown(() => tokenLogprobs(dz, dy, { vocab: v, temperature: 0 }))).toBeInstanceOf(RangeError);
    const bf = cuda.upload(new Uint16Array(n * v), { dtype: 'bf16' });
    expect(thrown(() => tokenLogprobsBackward(bf, dy, dg, { vocab: v, inPlace: true })).message).toContain('inPlace');
    for (const a of [dz, dy, dg, dn, bf]) a.free();
  });

  it('free() is idempotent; use after free is a clear Error; free() waits for pending Async calls', async () => {
    const dz = cuda.upload(randn(2 * 5, 1, 9)), dy = cuda.upload(new Int32Array([1, 2]));
    const p = tokenLogprobsAsync(dz, dy, { vocab: 5 });
    expect(() => dz.free()).toThrow(/pending/);
    const r = await p;
    dz.free();
    dz.free();
    expect(dz.freed).toBe(true);
    expect(() => dz.download()).toThrow(/after free/);
    expect(() => dz.ptr).toThrow(/after free/);
    const e = thrown(() => tokenLogprobs(dz, dy, { vocab: 5 }));
    expect(e.message).toMatch(/^logits: DeviceArray\(f32, 10, freed\) was used after free\(\)/);
    const lp = cuda.alloc('f32', 2);
    lp.free();
    const z2 = cuda.upload(new Float32Array(10));
    expect(thrown(() => tokenLogprobs(z2, dy, { vocab: 5, out: { logprobs: lp } })).message).toMatch(
      /^options\.out\.logprobs: .* was used after free\(\)/,
    );
    for (const a of [dy, z2, r.logprobs, r.logsumexp]) a.free();
  });

  it('wrap() views existing device memory without owning it', () => {
    const v = 13, n = 4;
    const z = randn(n * v, 1, 21), y = new Int32Array([0, 12, 5, 7]);
    const dz = cuda.upload(z), dy = cuda.upload(y);
    // rows 1..2 of dz through a wrapped pointer (an unaligned start: 13 floats in)
    const view = cuda.wrap(dz.ptr + BigInt(v * 4), 'f32', 2 * v);
    const ty = cuda.wrap(dy.ptr + 4n, 'i32', 2);
    expect(view.owned).toBe(false);
    const got = tokenLogprobs(view, ty, { vocab: v, returnEntropy: true });
    const want = tokenLogprobs(z.subarray(v, 3 * v), y.subarray(1, 3), { vocab: v, returnEntropy: true });
    expectClose(got.logprobs.download(), want.logprobs, 1e-5, 1e-6, 'wrapped logprobs');
    expectClose(got.entropy!.download(), want.entropy!, 1e-5, 1e-6, 'wrapped entropy');
    view.free(); // forgets the view, never frees the memory
    ty.free();
    expect(() => view.download()).toThrow(/after free/);
    expect(Array.from(dz.download())).toEqual(Array.from(z)); // still there
    for (const a of [dz, dy, got.logprobs, got.logsumexp, got.entropy!]) a.free();
  });
});
