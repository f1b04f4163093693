// Async calls whose buffers change before they settle (docs/runtime.md, "Async calls and buffer
// safety"): transferring, detaching, collecting or shrinking a buffer in flight, or rewriting its
// indices, must never make native code touch freed or unmapped memory. Each case runs in a child
// `node --expose-gc` process on the compiled package (dist/index.js, rebuilt here when lib/ is newer)
// so that a crash is an exit code, not a dead test runner; each asserts exit code 0 and the values.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist', 'index.js');
let dir = '';

function newestMtime(d: string): number {
  let t = 0;
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : e.name.endsWith('.ts') ? fs.statSync(p).mtimeMs : 0);
  }
  return t;
}

beforeAll(() => {
  if (!fs.existsSync(dist) || fs.statSync(dist).mtimeMs < newestMtime(path.join(root, 'lib'))) {
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], { cwd: root });
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rk-async-misuse-'));
});

// What every child script starts with: the package, data makers, a garbage-collection storm and an
// exact comparison of two Float32Arrays.
const PRELUDE = `
import * as rk from ${JSON.stringify(dist)};
import { MessageChannel } from 'node:worker_threads';
export const N = 64, V = 32000;
export function fillLogits(a) { for (let i = 0; i < a.length; i++) a[i] = Math.sin(i * 0.37) * 4; return a; }
export function makeTargets(t) { for (let i = 0; i < t.length; i++) t[i] = (i * 7919) % V; return t; }
// Collects garbage and allocates buffers of ones (big, where a freed (N, V) buffer was, and small,
// where a freed output of N was); intact() then says whether anything wrote into them since.
export function storm(big = N * V) {
  const keep = [];
  for (let k = 0; k < 4; k++) { globalThis.gc(); keep.push(new Float32Array(big).fill(1)); }
  for (let k = 0; k < 64; k++) keep.push(new Float32Array(N).fill(1));
  return keep;
}
export function intact(keep) { for (const a of keep) for (let i = 0; i < a.length; i++) if (a[i] !== 1) throw new Error('a buffer allocated after the transfer was written to'); }
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export function same(a, b, what) {
  if (a.length !== b.length) throw new Error(what + ': length ' + a.length + ' != ' + b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) throw new Error(what + '[' + i + ']: ' + a[i] + ' != ' + b[i]);
}
export function transferAway(ta) { const ch = new MessageChannel(); ch.port1.postMessage(ta, [ta.buffer]); ch.port1.close(); ch.port2.close(); }
export { rk };
`;

function runCase(name: string, body: string): { out: Record<string, unknown>; stderr: string } {
  fs.writeFileSync(path.join(dir, 'prelude.mjs'), PRELUDE);
  const file = path.join(dir, `${name}.mjs`);
  fs.writeFileSync(file, `import { rk, N, V, fillLogits, makeTargets, storm, intact, sleep, same, transferAway } from './prelude.mjs';\n${body}\n`);
  const r = spawnSync(process.execPath, ['--expose-gc', file], { encoding: 'utf8', timeout: 90_000 });
  expect({ status: r.status, signal: r.signal, stderr: r.stderr.slice(-2000) }).toEqual({ status: 0, signal: null, stderr: '' });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return { out: JSON.parse(last) as Record<string, unknown>, stderr: r.stderr };
}

describe('Async calls and buffer misuse (child processes)', () => {
  it('outputs transferred away (structuredClone / postMessage) and collected: no write to freed memory; the kept outputs are right', () => {
    const { out } = runCase('transfer-out', `
const logits = fillLogits(new Float32Array(N * V)), targets = makeTargets(new Int32Array(N));
const want = rk.tokenLogprobs(logits, targets, { vocab: V });
const wantGrad = rk.tokenLogprobsBackward(logits, targets, new Float32Array(N).fill(1), { vocab: V });
// A bigger backward (long enough for the collector to free its gradient while the kernel writes).
const NB = 4 * N, bl = fillLogits(new Float32Array(NB * V)), bt = makeTargets(new Int32Array(NB)), ones = new Float32Array(NB).fill(1);
let detached = 0;
for (let it = 0; it < 4; it++) {
  const o = { logprobs: new Float32Array(N), logsumexp: new Float32Array(N) };
  const p = rk.tokenLogprobsAsync(logits, targets, { vocab: V, out: o });
  structuredClone(o.logprobs, { transfer: [o.logprobs.buffer] });
  let keep = storm();
  const r = await p;
  intact(keep);
  detached += r.logprobs.length === 0 ? 1 : 0;
  same(r.logsumexp, want.logsumexp, 'logsumexp');
  // The backward's (N, V) gradient, transferred to a MessagePort and dropped while the kernel writes it.
  const grad = new Float32Array(NB * V);
  const q = rk.tokenLogprobsBackwardAsync(bl, bt, ones, { vocab: V, out: grad });
  if (it % 2) transferAway(grad); else structuredClone(grad, { transfer: [grad.buffer] });
  keep = storm(NB * V);
  const g = await q;
  intact(keep);
  detached += g.length === 0 ? 1 : 0;
}
// Untouched, the same call still fills its outputs.
const o = { logprobs: new Float32Array(N), logsumexp: new Float32Array(N) };
const r = await rk.tokenLogprobsAsync(logits, targets, { vocab: V, out: o });
same(r.logprobs, want.logprobs, 'logprobs');
const g = await rk.tokenLogprobsBackwardAsync(logits, targets, new Float32Array(N).fill(1), { vocab: V });
same(g, wantGrad, 'grad');
console.log(JSON.stringify({ detached }));
`);
    expect(out).toEqual({ detached: 8 });
  });

  it('inputs transferred away and collected: the kernel reads its own copy and gives the untouched result', () => {
    const { out } = runCase('transfer-in', `
let checks = 0;
for (let it = 0; it < 3; it++) {
  const logits = fillLogits(new Float32Array(N * V)), targets = makeTargets(new Int32Array(N));
  const want = rk.tokenLogprobs(logits, targets, { vocab: V, returnEntropy: true });
  const p = rk.tokenLogprobsAsync(logits, targets, { vocab: V, returnEntropy: true });
  if (it % 2) structuredClone(logits, { transfer: [logits.buffer] }); else transferAway(logits);
  transferAway(targets);
  storm();
  const r = await p;
  same(r.logprobs, want.logprobs, 'logprobs'); same(r.entropy, want.entropy, 'entropy');
  // In place (the gradient over the f32 logits themselves), then the logits transferred away.
  const x = fillLogits(new Float32Array(N * V)), t = makeTargets(new Int32Array(N));
  const wantIn = rk.tokenLogprobsBackward(fillLogits(new Float32Array(N * V)), t, new Float32Array(N).fill(1), { vocab: V, inPlace: true });
  const q = rk.tokenLogprobsBackwardAsync(x, t, new Float32Array(N).fill(1), { vocab: V, inPlace: true });
  const moved = structuredClone(x, { transfer: [x.buffer] });
  storm();
  const g = await q;
  same(moved, fillLogits(new Float32Array(N * V)), 'the moved logits, untouched');
  if (g.length !== 0) throw new Error('the in-place gradient should be the detached logits');
  const y = fillLogits(new Float32Array(N * V));
  same(await rk.tokenLogprobsBackwardAsync(y, t, new Float32Array(N).fill(1), { vocab: V, inPlace: true }), wantIn, 'in place');
  checks++;
}
console.log(JSON.stringify({ checks }));
`);
    expect(out).toEqual({ checks: 3 });
  });

  it('targets and groupIds rewritten out of range while the call runs: no out-of-bounds read, the call-time values are used', () => {
    const { out } = runCase('rewrite-indices', `
const logits = fillLogits(new Float32Array(4 * N * V)), targets = makeTargets(new Int32Array(4 * N));
const want = rk.tokenLogprobs(logits, targets, { vocab: V });
const n = 1 << 18, G = 1000;
const rewards = new Float32Array(n).map((_, i) => Math.cos(i));
const ids = new Int32Array(n).map((_, i) => i % G);
const wantAdv = rk.groupAdvantages(rewards, { groupIds: ids });
let checks = 0;
for (const delay of [0, 1, 3]) {
  const t = targets.slice();
  const p = rk.tokenLogprobsAsync(logits, t, { vocab: V });
  if (delay) await sleep(delay);
  t.fill(2 ** 31 - 1);
  same((await p).logprobs, want.logprobs, 'logprobs');
  const g = ids.slice();
  const q = rk.groupAdvantagesAsync(rewards, { groupIds: g });
  if (delay) await sleep(delay);
  g.fill(2 ** 31 - 1);
  const r = await q;
  same(r.advantages, wantAdv.advantages, 'advantages'); same(r.groupMean, wantAdv.groupMean, 'groupMean');
  checks++;
}
console.log(JSON.stringify({ checks }));
`);
    expect(out).toEqual({ checks: 3 });
  });

  it('a resizable ArrayBuffer shrunk while the call runs: no access to unmapped memory; an output that lost its length is left as it is', () => {
    const { out } = runCase('resizable', `
const bytes = N * V * 4;
const targets = makeTargets(new Int32Array(N));
const want = rk.tokenLogprobs(fillLogits(new Float32Array(N * V)), targets, { vocab: V });
const res = [];
for (let it = 0; it < 3; it++) {
  const ab = new ArrayBuffer(bytes, { maxByteLength: 2 * bytes });
  const logits = fillLogits(new Float32Array(ab));  // length-tracking view
  const fixed = new Float32Array(ab, 0, N * V);      // fixed-length view
  const oab = new ArrayBuffer(N * 4, { maxByteLength: 8 * N });
  const o = { logprobs: new Float32Array(oab), logsumexp: new Float32Array(N) };
  const p = rk.tokenLogprobsAsync(it % 2 ? fixed : logits, targets, { vocab: V, out: o });
  ab.resize(0);
  oab.resize(it === 2 ? N * 4 : 0);  // the third time it grows back to its length (zeros) before the call ends
  storm();
  const r = await p;
  same(r.logsumexp, want.logsumexp, 'logsumexp');
  res.push(r.logprobs.length);
  if (it === 2) same(r.logprobs, want.logprobs, 'logprobs written back');
}
console.log(JSON.stringify({ lengths: res, views: logitsLen() }));
function logitsLen() { const ab = new ArrayBuffer(8, { maxByteLength: 16 }); const v = new Float32Array(ab); ab.resize(4); return v.length; }
`);
    expect(out).toEqual({ lengths: [0, 0, 64], views: 1 });
  });

  it('SharedArrayBuffer views are used in place (outputs written there), but their Int32 indices are copied', () => {
    const { out } = runCase('shared', `
const sl = fillLogits(new Float32Array(new SharedArrayBuffer(N * V * 4)));
const st = makeTargets(new Int32Array(new SharedArrayBuffer(N * 4)));
const want = rk.tokenLogprobs(sl, st, { vocab: V });
let checks = 0;
for (let it = 0; it < 3; it++) {
  const t = new Int32Array(new SharedArrayBuffer(N * 4)); t.set(st);
  const o = { logprobs: new Float32Array(new SharedArrayBuffer(N * 4)), logsumexp: new Float32Array(new SharedArrayBuffer(N * 4)) };
  const p = rk.tokenLogprobsAsync(sl, t, { vocab: V, out: o });
  t.fill(2 ** 31 - 1);
  storm();
  const r = await p;
  if (r.logprobs !== o.logprobs) throw new Error('the given output is the result');
  same(o.logprobs, want.logprobs, 'logprobs'); same(o.logsumexp, want.logsumexp, 'logsumexp');
  checks++;
}
console.log(JSON.stringify({ checks }));
`);
    expect(out).toEqual({ checks: 3 });
  });

  it('sync calls on Int32 indices that a Worker rewrites (SharedArrayBuffer): each call succeeds or throws a RangeError', () => {
    const { out } = runCase('worker-indices', `
import { Worker } from 'node:worker_threads';
const logits = fillLogits(new Float32Array(N * V));
const sab = new SharedArrayBuffer(N * 4 + 4);
const t = makeTargets(new Int32Array(sab, 0, N));
const stop = new Int32Array(sab, N * 4, 1);
const w = new Worker(\`
  const { workerData: sab } = require('node:worker_threads');
  const t = new Int32Array(sab, 0, \${N}), stop = new Int32Array(sab, \${N * 4}, 1);
  while (Atomics.load(stop, 0) === 0) { for (let i = 0; i < t.length; i++) t[i] = 2147483647; for (let i = 0; i < t.length; i++) t[i] = i; }
\`, { eval: true, workerData: sab });
await sleep(50);
let ok = 0, range = 0;
for (let k = 0; k < 200; k++) {
  try { const r = rk.tokenLogprobs(logits, t, { vocab: V }); if (r.logprobs.every(Number.isFinite)) ok++; }
  catch (e) { if (!(e instanceof RangeError)) throw e; range++; }
}
Atomics.store(stop, 0, 1);
await w.terminate();
console.log(JSON.stringify({ calls: ok + range }));
`);
    expect(out).toEqual({ calls: 200 });
  });
});
