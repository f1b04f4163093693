// policyLossFromLogits (one call: log-probs, policy loss, gradient wrt the logits), in place and
// into an out buffer, against the three-call sequence it replaces (tokenLogprobs -> policyLoss ->
// tokenLogprobsBackward with the log-sum-exp given; f32 also with the backward in place) and
// against this machine's copy bandwidth: one streaming read of the logits
// plus one streaming write of the gradient (measureBandwidth's copy probe over the same number of
// bytes), timed interleaved with the kernels in the same run. Also the exp ceiling: the forward's
// throughput on cache-resident logits (no DRAM), the compute limit of the log-prob inner loop.
import { measureBandwidth, measureExpThroughput, policyLoss, policyLossFromLogits, setSimdLevel, simdLevel, tokenLogprobs, tokenLogprobsBackward, type SimdLevel } from '../lib/index.js';
import { fillNormal, median, progress, rng, timeSync, type BenchContext, type BenchRow, type BenchSection } from './harness.js';

function toBf16(src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
  return out;
}

const ms = (f: () => unknown) => {
  const a = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - a) / 1e6;
};

export default async function run(ctx: BenchContext): Promise<BenchSection> {
  const rows: BenchRow[] = [];
  const reps = ctx.quick ? 3 : 7;
  const shapes: [number, number][] = ctx.quick ? [[256, 32000], [256, 151936]] : [[256, 32000], [1024, 151936]];
  const T = 256;
  let copyF32 = { ms: 0, elems: 0 }; // the largest shape's f32 copy (the last one measured)
  for (const [n, v] of shapes) {
    const B = n / T;
    const shape = `N=${n} V=${v}`;
    const elems = n * v;
    const r = rng(5);
    const z = fillNormal(new Float32Array(elems), 2, 3);
    const zb = toBf16(z);
    const y = Int32Array.from({ length: n }, () => Math.floor(r() * v));
    const mask = Uint8Array.from({ length: n }, () => 1);
    const adv = Float32Array.from({ length: B }, () => r() * 2 - 1);
    const old = tokenLogprobs(z, y, { vocab: v }).logprobs.map((x, i) => x + 0.1 * Math.sin(i));
    const grad = new Float32Array(elems).fill(0);
    const gradB = new Uint16Array(elems).fill(0);
    // In place (inPlace: true): the gradient overwrites the logits, so each call gets a fresh copy
    // of them first (untimed).
    const work = { f32: new Float32Array(elems), bf16: new Uint16Array(elems) };
    const lp = new Float32Array(n), lse = new Float32Array(n);
    // f32 and bf16, fused and three calls, out of place and in place, and the copy of each dtype's
    // bytes, all in one loop: the rows/s of bf16 over f32 compares calls made minutes apart
    // otherwise, on a machine whose speed drifts. The call right after the copy probe (which maps,
    // touches and unmaps its own buffers) runs 15-25% slower here, so the kernels take that place in
    // turn, as often each.
    const DTS = ['f32', 'bf16'] as const;
    type Kernel = { key: string; fn: () => void; prep?: () => void };
    const kernels = DTS.flatMap((dt): Kernel[] => {
      const logits = dt === 'f32' ? z : zb;
      const w = work[dt];
      const prep = () => w.set(logits);
      const g = dt === 'f32' ? grad : gradB;
      const o = { vocab: v, seqLen: T, dtype: dt, gradDtype: dt } as const;
      const three = (zz: Float32Array | Uint16Array, inPlace: boolean) => () => {
        tokenLogprobs(zz, y, { vocab: v, dtype: dt, out: { logprobs: lp, logsumexp: lse } });
        const p = policyLoss(lp, old, adv, mask, { seqLen: T });
        if (inPlace) tokenLogprobsBackward(zz, y, p.gradLogprobs, { vocab: v, dtype: dt, logsumexp: lse, inPlace });
        else tokenLogprobsBackward(zz, y, p.gradLogprobs, { vocab: v, dtype: dt, logsumexp: lse, out: grad });
      };
      const ks: Kernel[] = [
        { key: `${dt} fused`, fn: () => void policyLossFromLogits(logits, y, old, adv, mask, { ...o, out: { gradLogits: g, logprobs: lp } }) },
        { key: `${dt} fused in place`, prep, fn: () => void policyLossFromLogits(w, y, old, adv, mask, { ...o, inPlace: true, out: { logprobs: lp } }) },
        { key: `${dt} three`, fn: three(logits, false) },
      ];
      // tokenLogprobsBackward writes an f32 gradient: in place over f32 logits only
      if (dt === 'f32') ks.push({ key: `${dt} three in place`, prep, fn: three(w, true) });
      return ks;
    });
    const bytesOf = (dt: 'f32' | 'bf16') => elems * (dt === 'f32' ? 4 : 2) * 2; // the logits read + the gradient written
    progress(`${shape} f32 and bf16: fused / three calls / copy, interleaved`);
    for (const k of kernels) {
      k.prep?.();
      k.fn();
    }
    const times: Record<string, number[]> = {};
    const rounds = kernels.length * Math.ceil(reps / kernels.length);
    for (let i = 0; i < rounds; i++) {
      for (let j = 0; j < kernels.length; j++) {
        const k = kernels[(i + j) % kernels.length];
        k.prep?.();
        (times[k.key] ??= []).push(ms(k.fn));
      }
      for (const dt of DTS) {
        const copy = measureBandwidth({ bytes: bytesOf(dt), reps: 1, copy: true }).copy!.median; // GB/s over the bytes moved
        (times[`${dt} copy`] ??= []).push(bytesOf(dt) / (copy * 1e6));
      }
    }
    const med = (key: string) => median(times[key]);
    for (const dt of DTS) {
      const esz = dt === 'f32' ? 4 : 2;
      const bytes = bytesOf(dt);
      const f = med(`${dt} fused`), fi = med(`${dt} fused in place`), th = med(`${dt} three`), c = med(`${dt} copy`);
      // the three calls in place where the backward can be (f32); else out of place
      const thi = times[`${dt} three in place`] ? med(`${dt} three in place`) : th;
      if (dt === 'f32') copyF32 = { ms: c, elems };
      const gradNote = dt === 'bf16' ? 'bf16 logits, bf16 gradient' : 'f32 logits, f32 gradient';
      const vsF32 = (key: string, t: number) => (dt === 'bf16' ? `; rows/s ${(med(`f32 ${key}`) / t).toFixed(2)}x f32` : '');
      rows.push({ op: 'policyLossFromLogits (ppo, in place)', shape: `${shape} ${dt}`, impl: 'reward-kernels', ms: fi, bytes, elements: elems,
        note: `${gradNote} over the logits (inPlace: true); ${(thi / fi).toFixed(2)}x the three calls${thi === th ? '' : ' in place'}; ` +
          `${(fi / c).toFixed(2)}x the copy time` + vsF32('fused in place', fi) });
      rows.push({ op: 'policyLossFromLogits (ppo)', shape: `${shape} ${dt}`, impl: 'reward-kernels', ms: f, bytes, elements: elems,
        note: `${gradNote} into out.gradLogits; ${(th / f).toFixed(2)}x the three calls; ${(f / c).toFixed(2)}x the copy time` + vsF32('fused', f) });
      if (thi !== th)
        rows.push({ op: 'three calls, backward in place', shape: `${shape} ${dt}`, impl: 'reward-kernels', ms: thi,
          bytes: elems * esz * 2 + elems * 4, elements: elems, note: `two reads of the logits, the gradient written over them` });
      rows.push({ op: 'three calls (forward, policyLoss, backward)', shape: `${shape} ${dt}`, impl: 'reward-kernels', ms: th,
        bytes: elems * esz * 2 + elems * 4, elements: elems, note: `two reads of the logits, one f32 gradient write` });
      rows.push({ op: 'copy: read + write of the same bytes', shape: `${shape} ${dt}`, impl: 'memory probe', ms: c, bytes, elements: elems,
        note: `measureBandwidth copy probe over ${(bytes / 2 ** 20).toFixed(0)} MiB, interleaved with the kernels` });
    }
    // The two-pass variant and the entropy term, f32, against the one-pass ppo call timed the same
    // way (back to back: the interleaved copy above leaves the caches cold, which at the small
    // shape, whose logits fit in the last-level cache, would favour whatever is timed warm).
    progress(`${shape} f32 gspo / entropy`);
    const ppoWarm = timeSync(() => policyLossFromLogits(z, y, old, adv, mask, { vocab: v, seqLen: T, out: { gradLogits: grad, logprobs: lp } }), reps);
    const gspo = timeSync(() => policyLossFromLogits(z, y, old, adv, mask, { vocab: v, seqLen: T, variant: 'gspo', out: { gradLogits: grad, logprobs: lp } }), reps);
    rows.push({ op: 'policyLossFromLogits (gspo, two passes)', shape: `${shape} f32`, impl: 'reward-kernels', ms: gspo, bytes: elems * 8, elements: elems,
      note: `${(gspo / ppoWarm).toFixed(2)}x the one-pass ppo call (${ppoWarm.toFixed(ppoWarm < 10 ? 2 : 1)} ms timed the same way)` });
    const ent = new Float32Array(n);
    const withEnt = timeSync(() => policyLossFromLogits(z, y, old, adv, mask, {
      vocab: v, seqLen: T, entropyCoef: 0.01, out: { gradLogits: grad, logprobs: lp, entropy: ent },
    }), reps);
    rows.push({ op: 'policyLossFromLogits (ppo + entropy bonus)', shape: `${shape} f32`, impl: 'reward-kernels', ms: withEnt, bytes: elems * 8, elements: elems,
      note: `${(withEnt / ppoWarm).toFixed(2)}x without the entropy term (timed the same way)` });
  }

  // The exp ceiling: measureExpThroughput, the forward's own chunk kernel over 64 KiB of logits per
  // thread that stay in the core's cache (no memory traffic), on each SIMD level this machine has
  // (512- against 256-bit lanes): elements per second of max + exp. The exp is the cheapest that
  // keeps log-probs within 1e-6: a degree-5 polynomial for 2^f on [-1/2, 1/2] (1.7e-7 relative);
  // degree 4 would give 5.3e-6. Beside it, the forward over logits in the last-level cache (64 rows
  // x 32000, 8 MiB f32), which that cache's bandwidth can hold back.
  const cv = 32000, cn = 64;
  const cz = fillNormal(new Float32Array(cn * cv), 2, 9);
  const cy = Int32Array.from({ length: cn }, (_, i) => (i * 97) % cv);
  const out = { logprobs: new Float32Array(cn), logsumexp: new Float32Array(cn) };
  const inner = 20;
  const { active, detected } = simdLevel();
  const levels: SimdLevel[] = detected === 'avx512' ? ['avx512', 'avx2'] : detected === 'avx2' ? ['avx2'] : ['scalar'];
  const readCeiling = ctx.readBandwidthGBs / 4; // f32 elements/s the read bandwidth allows, G/s
  try {
    for (const level of levels) {
      setSimdLevel(level);
      progress(`exp ceiling: measureExpThroughput and the forward on LLC-resident logits, ${level}`);
      const probe = measureExpThroughput({ reps: ctx.quick ? 3 : 9 });
      const ceiling = probe.median; // G elements/s
      rows.push({ op: `exp ceiling (measureExpThroughput, ${level})`, shape: `${probe.threads} threads x 64 KiB f32, per 10^9 elements`, impl: 'reward-kernels',
        ms: 1e3 / ceiling, elements: 1e9, // the probe gives a rate: its row is the time of 10^9 elements
        note: `${ceiling.toFixed(2)} G elements/s (spread ${(probe.spread * 100).toFixed(0)}%); the read bandwidth allows ${readCeiling.toFixed(2)} G f32 elements/s: ` +
          `the forward's ceiling is the lower, ${Math.min(ceiling, readCeiling).toFixed(2)} G/s (${ceiling < readCeiling ? 'exp' : 'bandwidth'})` });
      const tc = timeSync(() => {
        for (let i = 0; i < inner; i++) tokenLogprobs(cz, cy, { vocab: cv, out });
      }, ctx.quick ? 3 : 9) / inner;
      rows.push({ op: `forward on LLC-resident logits (${level})`, shape: `N=${cn} V=${cv} f32`, impl: 'reward-kernels', ms: tc, elements: cn * cv,
        note: `${((cn * cv) / (tc * 1e6)).toFixed(2)} G elements/s: logits in the last-level cache, not the core's` });
    }
  } finally {
    setSimdLevel(active);
  }

  // The fused loop's own ceiling: the one-pass call over the same LLC-resident logits (its reads
  // never wait on DRAM; its gradient still streams out), so what remains is its arithmetic, its row
  // buffer traffic and its streaming stores. At that rate the largest shape would take `floor` ms: the copy time of that
  // shape is reachable only as far as this is under it.
  {
    progress('fused ceiling: policyLossFromLogits on LLC-resident logits');
    const cg = new Float32Array(cn * cv);
    const cold = new Float32Array(cn).fill(-10);
    const cadv = Float32Array.from({ length: cn / 16 }, (_, i) => (i % 2 ? 1 : -1));
    const tc = timeSync(() => {
      for (let i = 0; i < inner; i++) policyLossFromLogits(cz, cy, cold, cadv, null, { vocab: cv, seqLen: 16, out: { gradLogits: cg, logprobs: out.logprobs } });
    }, ctx.quick ? 3 : 9) / inner;
    const ceiling = (cn * cv) / (tc * 1e6); // G elements/s
    const floor = copyF32.elems / (ceiling * 1e6);
    rows.push({ op: `fused ceiling (policyLossFromLogits on LLC-resident logits, ${active})`, shape: `N=${cn} V=${cv} f32`, impl: 'reward-kernels', ms: tc, elements: cn * cv,
      note: `${ceiling.toFixed(2)} G elements/s (the forward alone on the same logits: its LLC-resident row, ${active}); at this rate the ${copyF32.elems.toLocaleString('en-US')}-element f32 call ` +
        `would take ${floor.toFixed(1)} ms, ${(floor / copyF32.ms).toFixed(2)}x its copy time` });
  }
  return { family: 'policy-from-logits', rows };
}
