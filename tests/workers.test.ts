// Worker threads (docs/runtime.md, "Worker threads"): the addon loaded only from workers that then
// exit, workers terminated with Async calls in flight, many workers at once, and the process-wide
// settings changed from workers. Each case runs in its own `node` process (a crash there is an exit
// code here, not the end of the test run), importing the built package (dist/index.js, built here
// when missing or older than lib/).
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const distIndex = path.join(root, 'dist', 'index.js');
let dir = '';

function newestMtime(folder: string): number {
  let t = 0;
  for (const e of fs.readdirSync(folder, { withFileTypes: true })) {
    const p = path.join(folder, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

beforeAll(() => {
  if (!fs.existsSync(distIndex) || fs.statSync(distIndex).mtimeMs < newestMtime(path.join(root, 'lib'))) {
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root });
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rk-workers-'));
  return () => fs.rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

// Runs `main` (an ES module; PKG is the package's URL) in a fresh node process, with its address
// space limited to `limitKiB` when given (ulimit -v).
function runScript(name: string, main: string, limitKiB?: number): Promise<Run> {
  const file = path.join(dir, `${name}.mjs`);
  fs.writeFileSync(file, `const PKG = ${JSON.stringify(pathToFileURL(distIndex).href)};\n${WORKER_LIB}\n${main}`);
  const [cmd, args] = limitKiB === undefined
    ? [process.execPath, [file]]
    : ['/bin/sh', ['-c', `ulimit -v ${limitKiB} && exec "$0" "$1"`, process.execPath, file]];
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

// Shared by the scripts: a worker from module source, and the body that checks tokenLogprobs
// against a float64 reference (uniform in its inputs, so every block of the pool is exercised).
const WORKER_LIB = String.raw`
import { Worker } from 'node:worker_threads';
import fs from 'node:fs';
const tasks = () => fs.readdirSync('/proc/self/task').length;
const spawn = (body, workerData) => new Worker(
  'import { parentPort, workerData } from "node:worker_threads";\n' +
  'const rk = await import(' + JSON.stringify(PKG) + ');\n' + CHECK + '\n' + body,
  { eval: true, type: 'module', workerData });
const settle = (w) => new Promise((resolve, reject) => {
  const msgs = [];
  w.on('message', (m) => msgs.push(m));
  w.on('error', reject);
  w.on('exit', (code) => resolve({ code, msgs }));
});
const CHECK = String.raw${'`'}
const N = 64, V = 4096;
const z = new Float32Array(N * V);
for (let i = 0; i < z.length; i++) z[i] = 4 * Math.sin(i * 0.37) + ((i * 7919) % 13) / 13;
const y = new Int32Array(N).map((_, r) => (r * 997) % V);
const ref = new Float64Array(N);
for (let r = 0; r < N; r++) {
  let m = -Infinity, s = 0;
  for (let j = 0; j < V; j++) m = Math.max(m, z[r * V + j]);
  for (let j = 0; j < V; j++) s += Math.exp(z[r * V + j] - m);
  ref[r] = z[r * V + y[r]] - m - Math.log(s);
}
const worst = (lp) => lp.reduce((w, v, r) => Math.max(w, Math.abs(v - ref[r])), 0);
${'`'};
`;

describe('worker threads', () => {
  it('the addon loaded only from workers that exit: no crash, and no thread left behind per worker', async () => {
    const r = await runScript('load-only-in-workers', `
      const before = tasks();
      const counts = [];
      let worstErr = 0;
      for (let round = 0; round < 4; round++) {
        const ws = [0, 1, 2].map(() => spawn(
          'const { logprobs } = rk.tokenLogprobs(z, y, { vocab: V }); parentPort.postMessage(worst(logprobs));'));
        for (const { code, msgs } of await Promise.all(ws.map(settle))) {
          if (code !== 0 || msgs.length !== 1) throw new Error('worker exit ' + code);
          worstErr = Math.max(worstErr, msgs[0]);
        }
        counts.push(tasks());
      }
      console.log(JSON.stringify({ before, counts, worstErr }));
    `);
    expect(r.stderr).toBe('');
    expect([r.code, r.signal]).toEqual([0, null]);
    const { before, counts, worstErr } = JSON.parse(r.stdout) as { before: number; counts: number[]; worstErr: number };
    expect(worstErr).toBeLessThan(1e-4);
    // Twelve workers came and went: the thread count after the last round is the one after the first
    // (the one process-wide pool, at most one thread per core beyond the caller, stays for the next).
    expect(counts).toEqual(counts.map(() => counts[0]));
    expect(counts[0] - before).toBeLessThanOrEqual(os.availableParallelism());
  });

  it('a worker terminated with Async calls in flight: the process lives on, the pool still works', async () => {
    const r = await runScript('terminate-mid-call', `
      const big = 'const n = 256, v = 32000, lz = new Float32Array(n * v), ly = new Int32Array(n);' +
        'const T = 4096, B = 256, lp = new Float32Array(B * T).fill(-1), old = new Float32Array(B * T).fill(-1.1);' +
        'const adv = new Float32Array(B).fill(0.5);' +
        'for (let k = 0; k < 4; k++) { rk.tokenLogprobsAsync(lz, ly, { vocab: v }); rk.policyLossAsync(lp, old, adv, null, { seqLen: T }); }' +
        'parentPort.postMessage("started");';
      for (let i = 0; i < 5; i++) {
        const w = spawn(big);
        await new Promise((resolve) => w.once('message', resolve));
        await w.terminate();
      }
      const last = await settle(spawn(
        'const { logprobs } = await rk.tokenLogprobsAsync(z, y, { vocab: V }); parentPort.postMessage(worst(logprobs));'));
      console.log(JSON.stringify(last));
    `);
    expect(r.stderr).toBe('');
    expect([r.code, r.signal]).toEqual([0, null]);
    const last = JSON.parse(r.stdout) as { code: number; msgs: number[] };
    expect(last.code).toBe(0);
    expect(last.msgs[0]).toBeLessThan(1e-4);
  });

  it('eight workers at once, sync and Async calls interleaved: every result right', async () => {
    const r = await runScript('many-workers', `
      const ws = Array.from({ length: 8 }, () => spawn(
        'let w = 0;' +
        'for (let k = 0; k < 4; k++) {' +
        '  w = Math.max(w, worst(rk.tokenLogprobs(z, y, { vocab: V }).logprobs));' +
        '  w = Math.max(w, worst((await rk.tokenLogprobsAsync(z, y, { vocab: V })).logprobs));' +
        '}' +
        'parentPort.postMessage(w);'));
      console.log(JSON.stringify(await Promise.all(ws.map(settle))));
    `);
    expect(r.stderr).toBe('');
    expect([r.code, r.signal]).toEqual([0, null]);
    const res = JSON.parse(r.stdout) as { code: number; msgs: number[] }[];
    expect(res).toHaveLength(8);
    for (const w of res) {
      expect(w.code).toBe(0);
      expect(w.msgs[0]).toBeLessThan(1e-4);
    }
  });

  it('thread count and SIMD level changed from workers: process-wide, other threads unharmed', async () => {
    const r = await runScript('settings-from-workers', `
      const rk = await import(PKG);
      // The reference at the default settings, here on the main thread.
      const N = 64, V = 4096;
      const z = new Float32Array(N * V);
      for (let i = 0; i < z.length; i++) z[i] = 4 * Math.sin(i * 0.37) + ((i * 7919) % 13) / 13;
      const y = new Int32Array(N).map((_, r) => (r * 997) % V);
      const mainRef = rk.tokenLogprobs(z, y, { vocab: V }).logprobs;
      const detected = rk.simdLevel().detected;
      const levels = ['scalar', 'avx2', 'avx512'].slice(0, ['scalar', 'avx2', 'avx512'].indexOf(detected) + 1);
      // Phase 1: four workers each set thread counts 1..4 while computing: results are the same bits.
      const p1 = await Promise.all([0, 1, 2, 3].map((i) => settle(spawn(
        'let same = true;' +
        'for (let k = 0; k < 8; k++) {' +
        '  rk.setNumThreads(1 + ((k + workerData.i) % 4));' +
        '  const lp = k % 2 ? (await rk.tokenLogprobsAsync(z, y, { vocab: V })).logprobs : rk.tokenLogprobs(z, y, { vocab: V }).logprobs;' +
        '  same &&= lp.every((v, r) => Object.is(v, workerData.ref[r]));' +
        '}' +
        'parentPort.postMessage(same);', { i, ref: mainRef }))));
      // The main thread computes meanwhile-changed settings too: still the same bits.
      const mainSame = rk.tokenLogprobs(z, y, { vocab: V }).logprobs.every((v, r) => Object.is(v, mainRef[r]));
      // Phase 2: one worker cycles the SIMD level while three compute; then one sets both settings
      // last, and the main thread sees them (process-wide).
      const p2 = await Promise.all([
        settle(spawn('for (let k = 0; k < 24; k++) rk.setSimdLevel(workerData.levels[k % workerData.levels.length]); parentPort.postMessage(true);', { levels })),
        ...[0, 1, 2].map(() => settle(spawn(
          'let w = 0; for (let k = 0; k < 6; k++) w = Math.max(w, worst(rk.tokenLogprobs(z, y, { vocab: V }).logprobs)); parentPort.postMessage(w);'))),
      ]);
      const last = await settle(spawn('rk.setNumThreads(3); rk.setSimdLevel("scalar"); parentPort.postMessage(rk.getNumThreads());'));
      const seen = { threads: rk.getNumThreads(), simd: rk.simdLevel().active };
      rk.setSimdLevel(detected);
      const after = worst2(rk.tokenLogprobs(z, y, { vocab: V }).logprobs);
      function worst2(lp) { return lp.every((v, r) => Object.is(v, mainRef[r])); }
      console.log(JSON.stringify({ p1, mainSame, p2, last, seen, after }));
    `);
    expect(r.stderr).toBe('');
    expect([r.code, r.signal]).toEqual([0, null]);
    const out = JSON.parse(r.stdout) as {
      p1: { code: number; msgs: boolean[] }[];
      mainSame: boolean;
      p2: { code: number; msgs: (boolean | number)[] }[];
      last: { code: number; msgs: number[] };
      seen: { threads: number; simd: string };
      after: boolean;
    };
    expect(out.p1.map((w) => [w.code, w.msgs])).toEqual([0, 1, 2, 3].map(() => [0, [true]]));
    expect(out.mainSame).toBe(true);
    expect(out.p2.map((w) => w.code)).toEqual([0, 0, 0, 0]);
    expect(out.p2[0].msgs).toEqual([true]);
    for (const w of out.p2.slice(1)) expect(w.msgs[0] as number).toBeLessThan(1e-4);
    expect(out.last).toEqual({ code: 0, msgs: [3] });
    expect(out.seen).toEqual({ threads: 3, simd: 'scalar' });
    expect(out.after).toBe(true);
  });
});

// Under AddressSanitizer (npm run test:sanitize sets RK_SANITIZE) operator new never throws
// std::bad_alloc: ASan's allocator reports the out-of-memory itself and aborts, so this case can only
// run on an uninstrumented build (npm test, CI).
describe.skipIf(process.env.RK_SANITIZE === '1')('out of memory', () => {
  // The size of a process that has loaded the package and started the pool, in KiB.
  const WARM = `
    const rk = await import(PKG);
    rk.tokenLogprobs(new Float32Array(64 * 4096), new Int32Array(64), { vocab: 4096 });
    const vsz = () => Number(fs.readFileSync('/proc/self/status', 'utf8').match(/VmSize:\\s+(\\d+)/)[1]);
  `;

  it('a sync or Async call whose scratch cannot be allocated throws a RangeError naming the call', async () => {
    const small = "rk.groupAdvantages(new Float32Array([1, 2, 3, 4]), { groupSize: 2 }).advantages.join(' ')";
    const probe = await runScript('vsz', `${WARM} console.log(JSON.stringify([vsz(), ${small}]));`);
    expect([probe.code, probe.stderr]).toEqual([0, '']);
    const [vsz, smallWant] = JSON.parse(probe.stdout) as [number, string];
    expect(smallWant.split(' ').map(Number)).toEqual([-1, 1, -1, 1].map((s) => expect.closeTo(s * Math.SQRT1_2, 3)));
    // About 600 MiB of room: the inputs and outputs (9 bytes per reward) fit, groupAdvantages'
    // reinforce_pp_baseline scratch (8 more bytes per reward, in double) does not.
    const limit = vsz + 600 * 1024;
    const r = await runScript('oom', `${WARM}
      const n = Math.floor(((${limit} - vsz()) * 1024) / 13 / 8) * 8;
      const x = new Float32Array(n);
      const said = [];
      const opts = { groupSize: 8, estimator: 'reinforce_pp_baseline' };
      try { rk.groupAdvantages(x, opts); said.push('no error'); } catch (e) { said.push(e.constructor.name + ': ' + e.message); }
      try { await rk.groupAdvantagesAsync(x, opts); said.push('no error'); } catch (e) { said.push(e.constructor.name + ': ' + e.message); }
      try { rk.measureReadBandwidth(2 ** 34, 1); said.push('no error'); } catch (e) { said.push(e.constructor.name + ': ' + e.message); }
      // Smaller calls still work afterwards.
      said.push(${small});
      console.log(JSON.stringify({ n, said }));
    `, limit);
    expect(r.stderr).toBe('');
    expect([r.code, r.signal]).toEqual([0, null]);
    const out = JSON.parse(r.stdout) as { n: number; said: string[] };
    expect(out.n).toBeGreaterThan(1 << 24);
    expect(out.said).toEqual([
      'RangeError: groupAdvantages: out of memory',
      'RangeError: groupAdvantagesAsync: out of memory',
      'RangeError: measureReadBandwidth: out of memory',
      smallWant,
    ]);
  });
});
