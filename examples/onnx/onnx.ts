// Scoring logits from onnxruntime-node (npm run example:onnx).
//
// A tiny language model is built here as an ONNX graph (token ids -> Gather(embedding) -> Tanh ->
// MatMul -> logits), with the project's minimal ONNX encoder (bench/onnx.ts), so no binary model is
// committed. onnxruntime runs it on int64 token ids; reward-kernels scores the next-token
// log-probs and entropies of the completion from its logits, and the example checks them against a
// float64 log-softmax of the same logits.

import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import { tokenLogprobs } from 'reward-kernels';
import { onnxModel } from '../../bench/onnx.js';
import { rng } from '../shared/tiny-lm.js';

const B = 3; // sequences
const T = 7; // tokens each
const V = 50; // vocabulary (not a multiple of 8)
const H = 8;

export interface OnnxRun {
  /** Largest |logp - float64 reference| and |H - reference| over the scored tokens. */
  maxLogpDiff: number;
  maxEntropyDiff: number;
  sequenceLogps: number[];
}

export async function runOnnx(log: (line: string) => void = () => {}): Promise<OnnxRun> {
  const next = rng(5);
  const randn = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  const model = onnxModel({
    inputs: [{ name: 'ids', elem: 'int64', shape: ['B', 'T'] }],
    outputs: [{ name: 'logits', elem: 'float', shape: ['B', 'T', V] }],
    initializers: [
      { name: 'emb', dims: [V, H], float: Array.from({ length: V * H }, () => randn()) },
      { name: 'w', dims: [H, V], float: Array.from({ length: H * V }, () => 2 * randn()) },
    ],
    nodes: [
      { op: 'Gather', inputs: ['emb', 'ids'], outputs: ['e'] },
      { op: 'Tanh', inputs: ['e'], outputs: ['h'] },
      { op: 'MatMul', inputs: ['h', 'w'], outputs: ['logits'] },
    ],
  });
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const ids = BigInt64Array.from({ length: B * T }, () => BigInt(Math.floor(next() * V)));
  const { logits } = await session.run({ ids: new ort.Tensor('int64', ids, [B, T]) });
  const data = logits!.data as Float32Array; // (B * T, V) row-major

  // Next-token targets: position t predicts ids[t + 1]; the last position of each row is ignored.
  // The targets stay int64 (onnxruntime's dtype for ids): the kernels take a BigInt64Array,
  // range-check it and copy it to int32.
  const targets = new BigInt64Array(B * T).fill(-100n);
  for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) targets[b * T + t] = ids[b * T + t + 1]!;

  const { logprobs, entropy } = tokenLogprobs(data, targets, { vocab: V, returnEntropy: true });

  // float64 reference from the same logits
  let maxLogpDiff = 0;
  let maxEntropyDiff = 0;
  const sequenceLogps: number[] = [];
  for (let b = 0; b < B; b++) {
    let sum = 0;
    for (let t = 0; t + 1 < T; t++) {
      const r = b * T + t;
      const row = data.subarray(r * V, (r + 1) * V);
      let m = -Infinity;
      for (const z of row) m = Math.max(m, z);
      let s = 0;
      for (const z of row) s += Math.exp(z - m);
      const lse = m + Math.log(s);
      let h = 0;
      for (const z of row) h -= Math.exp(z - lse) * (z - lse);
      const lp = row[Number(targets[r]!)]! - lse;
      maxLogpDiff = Math.max(maxLogpDiff, Math.abs(logprobs[r]! - lp));
      maxEntropyDiff = Math.max(maxEntropyDiff, Math.abs(entropy![r]! - h));
      sum += logprobs[r]!;
    }
    sequenceLogps.push(sum);
    log(`sequence ${b}: ids [${Array.from(ids.subarray(b * T, (b + 1) * T)).join(', ')}]  sum of next-token log-probs ${sum.toFixed(4)}  mean entropy ${(
      Array.from(entropy!.subarray(b * T, b * T + T - 1)).reduce((a, x) => a + x, 0) / (T - 1)
    ).toFixed(4)}`);
  }
  // ignored rows give exactly 0
  for (let b = 0; b < B; b++) if (logprobs[b * T + T - 1] !== 0) throw new Error('ignored row not 0');
  log(`max |logp - float64 reference| ${maxLogpDiff.toExponential(2)}, max |H - reference| ${maxEntropyDiff.toExponential(2)}`);
  await session.release();
  return { maxLogpDiff, maxEntropyDiff, sequenceLogps };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runOnnx((l) => console.log(l));
}
