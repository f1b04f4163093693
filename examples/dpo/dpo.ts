// DPO with a tiny TensorFlow.js policy (npm run example:dpo).
//
// Preference data: both completions of a prompt start at the same token and then count upwards
// (each token the previous one + 1 mod 16) or jump to a random token; the chosen one counts up with
// probability 0.8 per token, the rejected one with 0.4, so some pairs are nearly tied. Completions
// are 3 to 6 tokens long (the rest is padding, masked). The policy starts as a copy of the frozen
// reference model; the held-out preference accuracy is the share of unseen pairs whose implicit
// reward beta (log pi/ref) is higher for the chosen completion.

import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as rk from 'reward-kernels/tfjs';
import { f3, rng, TinyLm } from '../shared/tiny-lm.js';

tf.enableProdMode(); // silences tfjs's "install tfjs-node" banner on Node

const V = 16;
const T = 6;
const PROMPTS = 8;
const BATCH = 32; // pairs per step

interface Side {
  prompts: Int32Array;
  prev: Int32Array;
  tokens: Int32Array;
  mask: Uint8Array;
}

interface Pairs {
  chosen: Side;
  rejected: Side;
}

function makePairs(n: number, next: () => number, bos: number): Pairs {
  const side = (chosen: boolean, prompts: Int32Array, lengths: Int32Array): Side => {
    const tokens = new Int32Array(n * T);
    const prev = new Int32Array(n * T);
    const mask = new Uint8Array(n * T);
    for (let i = 0; i < n; i++) {
      let last = bos;
      for (let t = 0; t < T; t++) {
        const up = t > 0 && next() < (chosen ? 0.8 : 0.4);
        const tok = up ? (last + 1) % V : t === 0 ? (2 * prompts[i]!) % V : Math.floor(next() * V);
        prev[i * T + t] = last;
        tokens[i * T + t] = tok;
        mask[i * T + t] = t < lengths[i]! ? 1 : 0;
        last = tok;
      }
    }
    return { prompts, prev, tokens, mask };
  };
  const prompts = Int32Array.from({ length: n }, () => Math.floor(next() * PROMPTS));
  const lengths = Int32Array.from({ length: n }, () => 3 + Math.floor(next() * (T - 2)));
  return { chosen: side(true, prompts, lengths), rejected: side(false, prompts, lengths) };
}

function slice(s: Side, from: number, to: number): Side {
  return {
    prompts: s.prompts.subarray(from, to),
    prev: s.prev.subarray(from * T, to * T),
    tokens: s.tokens.subarray(from * T, to * T),
    mask: s.mask.subarray(from * T, to * T),
  };
}

const seqLogps = (m: TinyLm, s: Side) => rk.sequenceLogprobs(m.logits(s.prompts, s.prev), s.tokens, s.mask);

export interface DpoRun {
  /** Held-out preference accuracy before training and after each evaluation. */
  accuracy: { step: number; value: number }[];
  seconds: number;
}

export function runDpo(steps = 60, log: (line: string) => void = () => {}): DpoRun {
  const next = rng(99);
  const policy = new TinyLm({ vocab: V, seqLen: T, prompts: PROMPTS, hidden: 32, seed: 11 });
  const reference = policy.copy();
  const train = makePairs(256, next, policy.bos);
  const heldOut = makePairs(128, next, policy.bos);
  // Reference log-prob sums, once (constants of the loss).
  const refOf = (p: Pairs) => tf.tidy(() => ({ c: seqLogps(reference, p.chosen).dataSync(), r: seqLogps(reference, p.rejected).dataSync() }));
  const refTrain = refOf(train);
  const refHeld = refOf(heldOut);
  const evaluate = () =>
    tf.tidy(() => {
      const out = rk.preferenceLoss(seqLogps(policy, heldOut.chosen), seqLogps(policy, heldOut.rejected), {
        refChosenLogps: refHeld.c, refRejectedLogps: refHeld.r, beta: 0.1,
      });
      return { acc: out.metrics.rewardAccuracy, loss: out.loss.dataSync()[0]!, margin: out.metrics.rewardMargin };
    });

  const optimizer = tf.train.adam(0.02);
  const accuracy: DpoRun['accuracy'] = [];
  const t0 = performance.now();
  const e0 = evaluate();
  accuracy.push({ step: 0, value: e0.acc });
  log(`step   0  held-out accuracy ${f3(e0.acc)}  held-out loss ${f3(e0.loss)}`);
  for (let step = 1; step <= steps; step++) {
    const from = ((step - 1) * BATCH) % 256;
    const [c, r] = [slice(train.chosen, from, from + BATCH), slice(train.rejected, from, from + BATCH)];
    let trainAcc = 0;
    // The DPO step: two sequence log-prob sums and the loss.
    optimizer.minimize(() => {
      const out = rk.preferenceLoss(seqLogps(policy, c), seqLogps(policy, r), {
        refChosenLogps: refTrain.c.subarray(from, from + BATCH), refRejectedLogps: refTrain.r.subarray(from, from + BATCH), beta: 0.1,
      });
      trainAcc = out.metrics.rewardAccuracy;
      return out.loss;
    });
    if (step % 5 === 0) {
      const e = evaluate();
      accuracy.push({ step, value: e.acc });
      log(`step ${String(step).padStart(3)}  held-out accuracy ${f3(e.acc)}  held-out loss ${f3(e.loss)}  margin ${f3(e.margin)}  batch accuracy ${f3(trainAcc)}`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  optimizer.dispose();
  [...policy.vars, ...reference.vars].forEach((v) => v.dispose());
  return { accuracy, seconds };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const steps = Number(process.argv[2] ?? 60);
  const run = runDpo(steps, (l) => console.log(l));
  const first = run.accuracy[0]!.value;
  const last = run.accuracy[run.accuracy.length - 1]!.value;
  console.log(`held-out preference accuracy ${f3(first)} (before training) -> ${f3(last)} after ${steps} steps`);
  console.error(`${steps} steps in ${run.seconds.toFixed(1)} s`);
}
