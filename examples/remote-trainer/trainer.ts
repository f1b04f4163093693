// A trainer whose model runs elsewhere (npm run example:remote).
//
// A rollout worker (or an inference server) sends, one JSON line per batch, the per-token
// log-probs of its completions under the current policy, the rollout's old log-probs, one
// advantage per sequence and the padding mask. The trainer computes the clipped policy loss on
// the log-probs alone and answers with the loss, the metrics and dL/dlogp, which the worker feeds
// to its own backward pass. Input: a file of JSON lines (default: batches.jsonl here) or stdin
// (`-`); output: one JSON line per batch on stdout.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { policyLoss, type PolicyLossOptions } from 'reward-kernels';

export interface Batch {
  step: number;
  batch: number;
  seqLen: number;
  logprobs: number[];
  oldLogprobs: number[];
  advantages: number[];
  mask: number[];
  options?: Omit<PolicyLossOptions, 'seqLen' | 'out'>;
}

export interface Reply {
  step: number;
  loss: number;
  metrics: Record<string, number | undefined>;
  gradLogprobs: number[];
}

// Gradient buffers reused across batches of the same size (no new array per message).
const outs = new Map<number, Float32Array>();

export function handle(msg: Batch): Reply {
  const n = msg.batch * msg.seqLen;
  let out = outs.get(n);
  if (!out) outs.set(n, (out = new Float32Array(n)));
  const r = policyLoss(
    Float32Array.from(msg.logprobs),
    Float32Array.from(msg.oldLogprobs),
    Float32Array.from(msg.advantages),
    Uint8Array.from(msg.mask),
    { ...msg.options, seqLen: msg.seqLen, out: { gradLogprobs: out } },
  );
  return { step: msg.step, loss: r.loss, metrics: { ...r.metrics }, gradLogprobs: Array.from(r.gradLogprobs) };
}

/** float64 reference of the PPO clipped loss (token-mean) and its gradient, from the formula. */
export function reference(msg: Batch): { loss: number; grad: Float64Array } {
  const { batch: b, seqLen: t } = msg;
  const lo = 1 - (msg.options?.epsilonLow ?? 0.2);
  const hi = 1 + (msg.options?.epsilonHigh ?? 0.2);
  const count = msg.mask.reduce((s, m) => s + m, 0);
  const grad = new Float64Array(b * t);
  let loss = 0;
  for (let i = 0; i < b * t; i++) {
    if (!msg.mask[i]) continue;
    const a = msg.advantages[Math.floor(i / t)]!;
    const r = Math.exp(Math.fround(msg.logprobs[i]!) - Math.fround(msg.oldLogprobs[i]!));
    const unclipped = -a * r;
    const clipped = -a * Math.min(Math.max(r, lo), hi);
    loss += Math.max(unclipped, clipped) / count;
    grad[i] = unclipped >= clipped ? (-a * r) / count : 0;
  }
  return { loss, grad };
}

export async function* readBatches(path: string): AsyncGenerator<Batch> {
  const input = path === '-' ? process.stdin : createReadStream(path);
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    if (line.trim()) yield JSON.parse(line) as Batch;
  }
}

export const DEFAULT_BATCHES = fileURLToPath(new URL('batches.jsonl', import.meta.url));

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for await (const msg of readBatches(process.argv[2] ?? DEFAULT_BATCHES)) {
    const reply = handle(msg);
    process.stdout.write(JSON.stringify(reply) + '\n');
  }
}
