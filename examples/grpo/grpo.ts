// GRPO with a tiny TensorFlow.js policy (npm run example:grpo).
//
// The task: for prompt p (one of 8), a completion of L_p = 4 + p % 5 tokens (over a vocabulary of 16) earns the
// share of its tokens equal to (3p + 5t) mod 16. A random policy earns about 1/16. Each step samples
// 8 completions for each of 8 prompts, turns the rewards into group advantages, and takes two
// clipped policy-gradient steps on them (PPO-style reuse of the rollout, so the ratio matters).

import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { groupAdvantages } from 'reward-kernels';
import * as rk from 'reward-kernels/tfjs';
import { f3, rng, TinyLm } from '../shared/tiny-lm.js';

tf.enableProdMode(); // silences tfjs's "install tfjs-node" banner on Node

const V = 16;
const T = 8;
const PROMPTS = 8;
const PER_STEP = 8; // prompts per step
const G = 8; // completions per prompt

const target = (p: number, t: number) => (3 * p + 5 * t) % V;
const length = (p: number) => 4 + (p % 5);

export interface GrpoRun {
  /** Mean reward of each step's rollouts. */
  rewards: number[];
  seconds: number;
}

export function runGrpo(steps = 60, log: (line: string) => void = () => {}): GrpoRun {
  const policy = new TinyLm({ vocab: V, seqLen: T, prompts: PROMPTS, hidden: 32, seed: 7 });
  const optimizer = tf.train.adam(0.05);
  const next = rng(2026);
  const rewards: number[] = [];
  const t0 = performance.now();
  for (let step = 1; step <= steps; step++) {
    // Rollouts: B = PER_STEP * G sequences of T tokens, masked after each prompt's length.
    const prompts = new Int32Array(PER_STEP * G);
    for (let i = 0; i < PER_STEP; i++) prompts.fill(Math.floor(next() * PROMPTS), i * G, (i + 1) * G);
    const { tokens, prev } = policy.sample(prompts, next);
    const mask = new Uint8Array(prompts.length * T);
    const reward = new Float32Array(prompts.length);
    prompts.forEach((p, i) => {
      let hits = 0;
      for (let t = 0; t < length(p); t++) {
        mask[i * T + t] = 1;
        if (tokens[i * T + t] === target(p, t)) hits++;
      }
      reward[i] = hits / length(p);
    });
    const { advantages } = groupAdvantages(reward, { groupSize: G });

    // The GRPO step: old log-probs once, then the clipped loss on fresh logits (grpoLoss: log-probs,
    // loss and its gradient wrt the logits in one kernel call).
    const old = tf.tidy(() => rk.tokenLogprobs(policy.logits(prompts, prev), tokens, mask).logprobs);
    let metrics: rk.PolicyLossMetrics | undefined;
    for (let k = 0; k < 2; k++) {
      optimizer.minimize(() => {
        const r = rk.grpoLoss(policy.logits(prompts, prev), tokens, old, advantages, mask);
        metrics = r.metrics;
        return r.loss;
      });
    }
    old.dispose();

    const mean = reward.reduce((s, x) => s + x, 0) / reward.length;
    rewards.push(mean);
    if (step === 1 || step % 5 === 0) {
      log(`step ${String(step).padStart(3)}  mean reward ${f3(mean)}  clipFraction ${f3(metrics!.clipFraction)}  approxKl ${metrics!.approxKl.toExponential(2)}`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  optimizer.dispose();
  policy.vars.forEach((v) => v.dispose());
  return { rewards, seconds };
}

/** First step's mean reward, and the mean of the last five steps. */
export function rewardRise(rewards: number[]): { first: number; last: number; rise: number } {
  const first = rewards[0]!;
  const tail = rewards.slice(-5);
  const last = tail.reduce((s, x) => s + x, 0) / tail.length;
  return { first, last, rise: last - first };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const steps = Number(process.argv[2] ?? 60);
  const run = runGrpo(steps, (l) => console.log(l));
  const { first, last, rise } = rewardRise(run.rewards);
  console.log(`mean reward ${f3(first)} (step 1) -> ${f3(last)} (mean of steps ${steps - 4}-${steps}): +${f3(rise)}`);
  console.error(`${steps} steps in ${run.seconds.toFixed(1)} s`);
}
