// vocabDivergence against a pure-TypeScript loop and onnxruntime-node (two LogSoftmax and the KL
// sum as one graph), same inputs and threads. GB/s count the read of both logit tensors.
import * as ort from 'onnxruntime-node';
import { vocabDivergence, type DivergenceKind } from '../lib/divergence/index.js';
import { fillNormal, peakRssMiB, progress, timeAsync, timeSync, type BenchContext, type BenchRow, type BenchSection, type ChartSpec } from './harness.js';
import { onnxModel } from './onnx.js';

/** A plain, careful TypeScript forward KL(q || p) per row: a max pass over both rows, then one
 * pass with the sums of exps and the cross sum (the same one-pass algebra as the kernel). */
function pureTsForwardKl(z: Float32Array | Uint16Array, zt: Float32Array | Uint16Array, bf16: boolean, n: number, v: number): Float32Array {
  const out = new Float32Array(n);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  const at = bf16
    ? (a: Float32Array | Uint16Array, i: number) => ((u[0] = (a as Uint16Array)[i] << 16), f[0])
    : (a: Float32Array | Uint16Array, i: number) => (a as Float32Array)[i];
  for (let r = 0; r < n; r++) {
    const o = r * v;
    let ms = -Infinity, mt = -Infinity;
    for (let j = 0; j < v; j++) {
      const x = at(z, o + j), y = at(zt, o + j);
      if (x > ms) ms = x;
      if (y > mt) mt = y;
    }
    let ss = 0, st = 0, cr = 0;
    for (let j = 0; j < v; j++) {
      const ds = at(z, o + j) - ms, dt = at(zt, o + j) - mt;
      const et = Math.exp(dt);
      ss += Math.exp(ds);
      st += et;
      if (et > 0) cr += et * (dt - ds);
    }
    out[r] = cr / st - Math.log(st) + Math.log(ss);
  }
  return out;
}

function toBf16(src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
  return out;
}

/** KL(q || p) per row: LogSoftmax of both, q = exp(log q), ReduceSum(q (log q - log p)). */
async function onnxKl(v: number, threads: number) {
  return ort.InferenceSession.create(onnxModel({
    inputs: [{ name: 'logits', elem: 'float', shape: ['N', v] }, { name: 'target', elem: 'float', shape: ['N', v] }],
    outputs: [{ name: 'kl', elem: 'float', shape: ['N'] }],
    nodes: [
      { op: 'LogSoftmax', inputs: ['logits'], outputs: ['lp'], attrs: { axis: { i: 1 } } },
      { op: 'LogSoftmax', inputs: ['target'], outputs: ['lq'], attrs: { axis: { i: 1 } } },
      { op: 'Exp', inputs: ['lq'], outputs: ['q'] },
      { op: 'Sub', inputs: ['lq', 'lp'], outputs: ['d'] },
      { op: 'Mul', inputs: ['q', 'd'], outputs: ['qd'] },
      { op: 'ReduceSum', inputs: ['qd', 'axes'], outputs: ['kl'], attrs: { keepdims: { i: 0 } } },
    ],
    initializers: [{ name: 'axes', dims: [1], int64: [1] }],
  }), { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
}

export default async function run(ctx: BenchContext): Promise<BenchSection> {
  const rows: BenchRow[] = [];
  const reps = ctx.quick ? 3 : 7;
  const [n, v] = ctx.quick ? [128, 151936] : [1024, 151936];
  const shape = `N=${n} V=${v}`;
  const elems = n * v;
  const z = fillNormal(new Float32Array(elems), 2, 1);
  const zt = fillNormal(new Float32Array(elems), 2, 2);
  const zb = toBf16(z), ztb = toBf16(zt);
  const grad = new Float32Array(elems).fill(0); // touched now, so RSS growth below is the kernel's own
  const div = new Float32Array(n);
  const rss0 = peakRssMiB();

  const ours: Record<string, number> = {};
  const cases: Array<[DivergenceKind, boolean]> = [['forward_kl', false], ['forward_kl', true], ['reverse_kl', false], ['jsd', false], ['jsd', true]];
  for (const [dt, a, b, bytes] of [['f32', z, zt, 4], ['bf16', zb, ztb, 2]] as const) {
    for (const [kind, withGrad] of cases) {
      progress(`${shape} ${dt} ${kind}${withGrad ? ' + gradient' : ''} reward-kernels`);
      const o = { vocab: v, dtype: dt, divergence: kind } as const;
      const ms = withGrad
        ? timeSync(() => vocabDivergence(a, b, null, { ...o, returnGradient: true, out: { divergence: div, gradient: grad } }), reps)
        : timeSync(() => vocabDivergence(a, b, null, { ...o, out: { divergence: div } }), reps);
      const key = `${dt} ${kind}${withGrad ? ' grad' : ''}`;
      ours[key] = ms;
      const passes = kind === 'jsd' ? (withGrad ? 'three passes per row, the later ones from L2' : 'two passes per row, the second from L2') : withGrad ? 'stats pass + gradient pass from L2' : 'one pass';
      rows.push({
        op: `${kind} ${withGrad ? 'forward+gradient' : 'forward'}`, shape: `${shape} ${dt}`, impl: 'reward-kernels', ms,
        bytes: 2 * elems * bytes, elements: elems,
        note: `${passes}${withGrad ? `; + ${elems * 4 / 1e6 | 0} MB f32 gradient written` : ''}`,
      });
    }
  }
  rows[0].note += `; peak RSS growth over all runs ${(peakRssMiB() - rss0).toFixed(1)} MiB (extra memory O(N))`;

  // pure TypeScript forward KL: time a slice of rows and scale
  const tsRows = Math.min(n, ctx.quick ? 16 : 64);
  const scale = n / tsRows;
  for (const [dt, a, b] of [['f32', z, zt], ['bf16', zb, ztb]] as const) {
    progress(`${shape} ${dt} forward_kl pure TS`);
    const t = timeSync(() => pureTsForwardKl(a.subarray(0, tsRows * v), b.subarray(0, tsRows * v), dt === 'bf16', tsRows, v), 3) * scale;
    rows.push({ op: 'forward_kl forward', shape: `${shape} ${dt}`, impl: 'pure TS', ms: t, bytes: 2 * elems * (dt === 'f32' ? 4 : 2), elements: elems,
      note: `timed on ${tsRows} rows, scaled x${scale}; reward-kernels ${(t / ours[`${dt} forward_kl`]).toFixed(1)}x faster` });
  }

  // onnxruntime-node, f32 (its JavaScript API has no bfloat16 tensors)
  progress(`${shape} f32 forward_kl onnxruntime-node`);
  const s = await onnxKl(v, ctx.threads);
  const feeds = { logits: new ort.Tensor('float32', z, [n, v]), target: new ort.Tensor('float32', zt, [n, v]) };
  const check = (await s.run(feeds)).kl.data as Float32Array;
  const mine = vocabDivergence(z, zt, null, { vocab: v, divergence: 'forward_kl' }).divergence;
  let worst = 0;
  for (let r = 0; r < n; r++) worst = Math.max(worst, Math.abs(check[r] - mine[r]) / Math.abs(mine[r]));
  const ot = await timeAsync(() => s.run(feeds), reps);
  rows.push({ op: 'forward_kl forward', shape: `${shape} f32`, impl: 'onnxruntime-node', ms: ot, bytes: 2 * elems * 4, elements: elems,
    note: `${ctx.threads} intra-op threads; reward-kernels ${(ot / ours['f32 forward_kl']).toFixed(2)}x faster; results agree to ${worst.toExponential(1)} relative` });
  await s.release();
  await vocabSweep(ctx, rows);
  return { family: 'divergence', rows };
}

/** The chart: the V sweep (rows marked `sweep`), GB/s of both logit tensors against V. */
export const chart: ChartSpec = {
  xLabel: 'vocabulary size V (log scale), N rows fixed; GB/s count both logit tensors',
  series: (r) => `${r.op} ${/bf16/.test(r.shape) ? 'bf16' : 'f32'} · ${r.impl}`,
};

/** Throughput against the vocabulary size at a fixed number of rows, on prefixes of one buffer pair. */
async function vocabSweep(ctx: BenchContext, rows: BenchRow[]): Promise<void> {
  const n = ctx.quick ? 32 : 256;
  const vs = [4096, 16384, 32000, 65536, 151936, 262144];
  const reps = ctx.quick ? 3 : 7;
  const vmax = vs[vs.length - 1];
  const z = fillNormal(new Float32Array(n * vmax), 2, 11), zt = fillNormal(new Float32Array(n * vmax), 2, 12);
  const zb = toBf16(z), ztb = toBf16(zt);
  const grad = new Float32Array(n * vmax).fill(0);
  const div = new Float32Array(n);
  for (const v of vs) {
    const shape = `N=${n} V=${v}`;
    progress(`V sweep ${shape}`);
    const elems = n * v;
    const a = z.subarray(0, elems), b = zt.subarray(0, elems), ah = zb.subarray(0, elems), bh = ztb.subarray(0, elems);
    const row = (op: string, dt: string, impl: string, ms: number, bytes: number) =>
      rows.push({ op, shape: `${shape} ${dt}`, impl, ms, bytes, elements: elems, sweep: 'V' });
    const o = { vocab: v, divergence: 'forward_kl', out: { divergence: div } } as const;
    row('forward_kl forward', 'f32', 'reward-kernels', timeSync(() => vocabDivergence(a, b, null, o), reps), 2 * elems * 4);
    row('forward_kl forward', 'bf16', 'reward-kernels', timeSync(() => vocabDivergence(ah, bh, null, { ...o, dtype: 'bf16' }), reps), 2 * elems * 2);
    row('forward_kl forward+gradient', 'f32', 'reward-kernels',
      timeSync(() => vocabDivergence(a, b, null, { ...o, returnGradient: true, out: { divergence: div, gradient: grad.subarray(0, elems) } }), reps), 2 * elems * 4);
    row('jsd forward', 'f32', 'reward-kernels', timeSync(() => vocabDivergence(a, b, null, { ...o, divergence: 'jsd' }), reps), 2 * elems * 4);
    const s = await onnxKl(v, ctx.threads);
    const feeds = { logits: new ort.Tensor('float32', a, [n, v]), target: new ort.Tensor('float32', b, [n, v]) };
    row('forward_kl forward', 'f32', 'onnxruntime-node', await timeAsync(() => s.run(feeds), reps), 2 * elems * 4);
    await s.release();
  }
}
