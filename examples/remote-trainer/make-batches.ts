// Writes batches.jsonl: what a rollout worker whose model runs elsewhere would send to the trainer
// (npx tsx examples/remote-trainer/make-batches.ts). Seeded, so the file is reproducible.

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { rng } from '../shared/tiny-lm.js';

const next = rng(314);
const randn = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
const round = (x: number) => Math.fround(Number(x.toFixed(6)));
const lines: string[] = [];
for (const [step, b, t] of [[1, 4, 6], [2, 3, 9], [3, 5, 5]] as const) {
  const n = b * t;
  const oldLogprobs = Array.from({ length: n }, () => round(-Math.abs(randn()) * 2 - 0.05));
  const logprobs = oldLogprobs.map((x) => round(x + 0.25 * randn()));
  const advantages = Array.from({ length: b }, () => round(randn()));
  const mask = Array.from({ length: n }, (_, i) => (i % t < t - (i % 3) ? 1 : 0));
  lines.push(JSON.stringify({ step, batch: b, seqLen: t, logprobs, oldLogprobs, advantages, mask, options: { epsilonLow: 0.2, epsilonHigh: 0.28 } }));
}
writeFileSync(fileURLToPath(new URL('batches.jsonl', import.meta.url)), lines.join('\n') + '\n');
