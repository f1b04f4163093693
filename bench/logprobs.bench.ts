// tokenLogprobs / tokenLogprobsBackward against a pure-TypeScript loop, onnxruntime-node
// (LogSoftmax + GatherElements graph) and @tensorflow/tfjs on its wasm backend, same inputs.
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { measureExpThroughput, setSimdLevel, simdLevel, tokenLogprobs, tokenLogprobsBackward } from '../lib/index.js';
import { fillNormal, peakRssMiB, progress, rng, timeAsync, timeSync, type BenchContext, type BenchRow, type BenchSection, type ChartSpec } from './harness.js';
import { onnxModel } from './onnx.js';

/** A plain, careful TypeScript version: per row a max pass, then an exp pass (and entropy). */
function pureTs(z: Float32Array | Uint16Array, bf16: boolean, y: Int32Array, v: number, withEntropy: boolean) {
  const n = y.length;
  const logp = new Float32Array(n), ent = new Float32Array(n);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  const at = bf16 ? (i: number) => ((u[0] = (z as Uint16Array)[i] << 16), f[0]) : (i: number) => (z as Float32Array)[i];
  for (let r = 0; r < n; r++) {
    const o = r * v;
    let m = -Infinity;
    for (let j = 0; j < v; j++) {
      const x = at(o + j);
      if (x > m) m = x;
    }
    let s = 0, t = 0;
    for (let j = 0; j < v; j++) {
      const d = at(o + j) - m;
      const e = Math.exp(d);
      s += e;
      if (withEntropy && e > 0) t += e * d;
    }
    const ls = Math.log(s);
    logp[r] = at(o + y[r]) - m - ls;
    if (withEntropy) ent[r] = ls - t / s;
  }
  return { logp, ent };
}

function toBf16(src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
  return out;
}

async function onnxSessions(v: number, threads: number) {
  const io = { inputs: [{ name: 'logits', elem: 'float' as const, shape: ['N', v] }, { name: 'targets', elem: 'int64' as const, shape: ['N', 1] }] };
  const gather = [
    { op: 'LogSoftmax', inputs: ['logits'], outputs: ['ls'], attrs: { axis: { i: 1 } } },
    { op: 'GatherElements', inputs: ['ls', 'targets'], outputs: ['logp'], attrs: { axis: { i: 1 } } },
  ];
  const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
  const fwd = await ort.InferenceSession.create(
    onnxModel({ ...io, outputs: [{ name: 'logp', elem: 'float', shape: ['N', 1] }], nodes: gather }), opts);
  const ent = await ort.InferenceSession.create(onnxModel({
    ...io,
    outputs: [{ name: 'logp', elem: 'float', shape: ['N', 1] }, { name: 'H', elem: 'float', shape: ['N'] }],
    nodes: [
      ...gather,
      { op: 'Exp', inputs: ['ls'], outputs: ['p'] },
      { op: 'Mul', inputs: ['p', 'ls'], outputs: ['pl'] },
      { op: 'ReduceSum', inputs: ['pl', 'axes'], outputs: ['nh'], attrs: { keepdims: { i: 0 } } },
      { op: 'Neg', inputs: ['nh'], outputs: ['H'] },
    ],
    initializers: [{ name: 'axes', dims: [1], int64: [1] }],
  }), opts);
  return { fwd, ent };
}

export default async function run(ctx: BenchContext): Promise<BenchSection> {
  const rows: BenchRow[] = [];
  await tf.setBackend('wasm');
  const reps = ctx.quick ? 3 : 9;
  const shapes: [number, number][] = ctx.quick ? [[256, 32000], [128, 151936]] : [[256, 32000], [1024, 151936]];
  // The f32 forward's two ceilings, measured in this run: the read bandwidth (4 bytes a logit) and
  // the exponential's throughput (measureExpThroughput: the forward's own chunk kernel on
  // cache-resident logits, all threads, the active SIMD level). Its row says how close it gets to
  // the lower one.
  progress('exp throughput (measureExpThroughput)');
  const expCeiling = measureExpThroughput({ reps: ctx.quick ? 3 : 7 }).median;
  const readCeiling = ctx.readBandwidthGBs / 4;
  const lower = Math.min(expCeiling, readCeiling);
  for (const [n, v] of shapes) {
    const shape = `N=${n} V=${v}`;
    const z = fillNormal(new Float32Array(n * v), 2, 1);
    const zb = toBf16(z);
    const r = rng(2);
    const y = Int32Array.from({ length: n }, () => Math.floor(r() * v));
    const g = new Float32Array(n).fill(1);
    const grad = new Float32Array(n * v).fill(0); // touched now, so RSS growth below is the kernels' own
    const elems = n * v;
    const rss0 = peakRssMiB();

    const ours: Record<string, number> = {};
    for (const [dt, arr, bytes] of [['f32', z, 4], ['bf16', zb, 2]] as const) {
      progress(`${shape} ${dt} reward-kernels`);
      const o = { vocab: v, dtype: dt } as const;
      const f = tokenLogprobs(arr, y, o);
      ours[`${dt} fwd`] = timeSync(() => tokenLogprobs(arr, y, { ...o, out: f }), reps);
      const fe = tokenLogprobs(arr, y, { ...o, returnEntropy: true });
      ours[`${dt} ent`] = timeSync(() => tokenLogprobs(arr, y, { ...o, returnEntropy: true, out: fe }), reps);
      ours[`${dt} bwd`] = timeSync(() => tokenLogprobsBackward(arr, y, g, { ...o, logsumexp: f.logsumexp, out: grad }), reps);
      ours[`${dt} bwd2`] = timeSync(() => tokenLogprobsBackward(arr, y, g, { ...o, out: grad }), reps);
      const rb = elems * bytes;
      rows.push({ op: 'forward', shape: `${shape} ${dt}`, impl: 'reward-kernels', ms: ours[`${dt} fwd`], bytes: rb, elements: elems,
        note: dt === 'bf16' ? `rows/s ${(ours['f32 fwd'] / ours['bf16 fwd']).toFixed(2)}x f32`
          : `${((elems / (ours['f32 fwd'] * 1e6) / lower) * 100).toFixed(0)}% of its ceiling, the lower of the exp throughput ` +
            `(${expCeiling.toFixed(2)} G elements/s) and the read bandwidth (${readCeiling.toFixed(2)} G f32 elements/s)` });
      rows.push({ op: 'forward+entropy', shape: `${shape} ${dt}`, impl: 'reward-kernels', ms: ours[`${dt} ent`], bytes: rb, elements: elems,
        note: `${(ours[`${dt} ent`] / ours[`${dt} fwd`]).toFixed(2)}x forward` });
      rows.push({ op: 'backward (lse given)', shape: `${shape} ${dt}`, impl: 'reward-kernels', ms: ours[`${dt} bwd`], bytes: rb, elements: elems,
        note: 'one read + one f32 write' });
      rows.push({ op: 'backward (recompute)', shape: `${shape} ${dt}`, impl: 'reward-kernels', ms: ours[`${dt} bwd2`], bytes: rb, elements: elems,
        note: 'two reads + one f32 write' });
    }
    const growth = peakRssMiB() - rss0;
    const first = rows[rows.length - 8];
    first.note = `${first.note ? `${first.note}; ` : ''}peak RSS growth over all 8 runs ${growth.toFixed(1)} MiB (extra memory O(N))`;
    // f32 only, beside the rows above: the backward in place (plain stores over the lines just
    // read; each call on a fresh copy of the logits, made untimed), and the forward on 256-bit lanes
    // where the machine has 512 (on a CPU whose 512-bit operations are double-pumped the two can be
    // close: the row says which is faster here).
    {
      const work = new Float32Array(elems);
      const f = tokenLogprobs(z, y, { vocab: v }); // its logsumexp below, and the 256-bit forward's out buffers
      const t = timeSync(() => tokenLogprobsBackward(work, y, g, { vocab: v, logsumexp: f.logsumexp, inPlace: true }), reps, 1, () => work.set(z));
      rows.push({ op: 'backward in place (lse given)', shape: `${shape} f32`, impl: 'reward-kernels', ms: t, bytes: elems * 4, elements: elems,
        note: `one read, the gradient written over the logits; ${(t / ours['f32 bwd']).toFixed(2)}x the time into an out buffer` });
      const { active, detected } = simdLevel();
      if (detected === 'avx512') {
        progress(`${shape} f32 forward on 256-bit lanes`);
        setSimdLevel('avx2');
        try {
          const t2 = timeSync(() => tokenLogprobs(z, y, { vocab: v, out: f }), reps);
          rows.push({ op: 'forward, 256-bit lanes (avx2)', shape: `${shape} f32`, impl: 'reward-kernels', ms: t2, bytes: elems * 4, elements: elems,
            note: `${(t2 / ours['f32 fwd']).toFixed(2)}x the time of the 512-bit forward (${t2 < ours['f32 fwd'] ? 'faster' : 'slower'} here)` });
        } finally {
          setSimdLevel(active);
        }
      }
    }

    // pure TypeScript: time a slice of rows when the full run would take too long, and scale
    const tsRows = ctx.quick ? Math.min(n, 32) : Math.min(n, 256);
    const scale = n / tsRows;
    const zs = z.subarray(0, tsRows * v), ys = y.subarray(0, tsRows), zbs = zb.subarray(0, tsRows * v);
    const tsNote = scale > 1 ? `timed on ${tsRows} rows, scaled x${scale}` : '';
    for (const [dt, arr] of [['f32', zs], ['bf16', zbs]] as const) {
      progress(`${shape} ${dt} pure TS`);
      const tf1 = timeSync(() => pureTs(arr, dt === 'bf16', ys, v, false), 3) * scale;
      const te = timeSync(() => pureTs(arr, dt === 'bf16', ys, v, true), 3) * scale;
      rows.push({ op: 'forward', shape: `${shape} ${dt}`, impl: 'pure TS', ms: tf1, elements: elems,
        note: `${tsNote}${tsNote ? '; ' : ''}reward-kernels ${(tf1 / ours[`${dt} fwd`]).toFixed(1)}x faster` });
      rows.push({ op: 'forward+entropy', shape: `${shape} ${dt}`, impl: 'pure TS', ms: te, elements: elems,
        note: `${tsNote}${tsNote ? '; ' : ''}reward-kernels ${(te / ours[`${dt} ent`]).toFixed(1)}x faster` });
    }

    // onnxruntime-node, f32 (its JavaScript API has no bfloat16 tensors)
    progress(`${shape} f32 onnxruntime-node`);
    const s = await onnxSessions(v, ctx.threads);
    const feeds = {
      logits: new ort.Tensor('float32', z, [n, v]),
      targets: new ort.Tensor('int64', BigInt64Array.from(y, (x) => BigInt(x)), [n, 1]),
    };
    const of = await timeAsync(() => s.fwd.run(feeds), reps);
    const oe = await timeAsync(() => s.ent.run(feeds), reps);
    rows.push({ op: 'forward', shape: `${shape} f32`, impl: 'onnxruntime-node', ms: of, bytes: elems * 4, elements: elems,
      note: `${ctx.threads} intra-op threads; reward-kernels ${(of / ours['f32 fwd']).toFixed(2)}x faster` });
    rows.push({ op: 'forward+entropy', shape: `${shape} f32`, impl: 'onnxruntime-node', ms: oe, bytes: elems * 4, elements: elems,
      note: `reward-kernels ${(oe / ours['f32 ent']).toFixed(2)}x faster` });
    await s.fwd.release();
    await s.ent.release();

    // tfjs wasm backend, f32: logSoftmax then a gather on the flattened result
    progress(`${shape} f32 tfjs-wasm`);
    try {
      const idx = Int32Array.from(y, (t, i) => i * v + t);
      const step = () => tf.tidy(() => tf.gather(tf.reshape(tf.logSoftmax(tf.tensor2d(z, [n, v])), [-1]), tf.tensor1d(idx, 'int32')).dataSync());
      const tt = timeSync(step, ctx.quick ? 1 : 3);
      rows.push({ op: 'forward', shape: `${shape} f32`, impl: 'tfjs-wasm', ms: tt, bytes: elems * 4, elements: elems,
        note: `reward-kernels ${(tt / ours['f32 fwd']).toFixed(1)}x faster` });
    } catch (e) {
      rows.push({ op: 'forward', shape: `${shape} f32`, impl: 'tfjs-wasm', ms: NaN, note: `failed: ${(e as Error).message.slice(0, 60)}` });
    }
  }
  await vocabSweep(ctx, rows);
  return { family: 'logprobs', rows };
}

/** The chart: the V sweep (rows marked `sweep`), GB/s against V with the read bandwidth. */
export const chart: ChartSpec = {
  xLabel: 'vocabulary size V (log scale), N rows fixed',
  series: (r) => `${r.op} ${/bf16/.test(r.shape) ? 'bf16' : 'f32'} · ${r.impl}`,
};

/**
 * Throughput against the vocabulary size at a fixed number of rows: the forward (f32, bf16), the
 * backward with the log-sum-exp given, and onnxruntime-node's forward, on prefixes of one buffer.
 * Small V fit in the caches; the largest ones stream from DRAM.
 */
async function vocabSweep(ctx: BenchContext, rows: BenchRow[]): Promise<void> {
  const n = ctx.quick ? 64 : 512;
  const vs = [4096, 16384, 32000, 65536, 151936, 262144];
  const reps = ctx.quick ? 3 : 9;
  const vmax = vs[vs.length - 1];
  const z = fillNormal(new Float32Array(n * vmax), 2, 7);
  const zb = toBf16(z);
  const grad = new Float32Array(n * vmax).fill(0);
  const g = new Float32Array(n).fill(1);
  const r = rng(8);
  for (const v of vs) {
    const shape = `N=${n} V=${v}`;
    progress(`V sweep ${shape}`);
    const elems = n * v;
    const y = Int32Array.from({ length: n }, () => Math.floor(r() * v));
    const zf = z.subarray(0, elems), zh = zb.subarray(0, elems), gr = grad.subarray(0, elems);
    const f = tokenLogprobs(zf, y, { vocab: v });
    const fh = tokenLogprobs(zh, y, { vocab: v, dtype: 'bf16' });
    const row = (op: string, dt: string, impl: string, ms: number, bytes: number) =>
      rows.push({ op, shape: `${shape} ${dt}`, impl, ms, bytes, elements: elems, sweep: 'V' });
    row('forward', 'f32', 'reward-kernels', timeSync(() => tokenLogprobs(zf, y, { vocab: v, out: f }), reps), elems * 4);
    row('forward', 'bf16', 'reward-kernels', timeSync(() => tokenLogprobs(zh, y, { vocab: v, dtype: 'bf16', out: fh }), reps), elems * 2);
    row('backward (lse given)', 'f32', 'reward-kernels',
      timeSync(() => tokenLogprobsBackward(zf, y, g, { vocab: v, logsumexp: f.logsumexp, out: gr }), reps), elems * 4);
    const s = await onnxSessions(v, ctx.threads);
    const feeds = {
      logits: new ort.Tensor('float32', zf, [n, v]),
      targets: new ort.Tensor('int64', BigInt64Array.from(y, (x) => BigInt(x)), [n, 1]),
    };
    row('forward', 'f32', 'onnxruntime-node', await timeAsync(() => s.fwd.run(feeds), reps), elems * 4);
    await s.fwd.release();
    await s.ent.release();
  }
}
