// reward-kernels/tfjs grpoLoss (the fused policyLossFromLogits as a tfjs op): its loss and its
// gradient with respect to the logits against tfjs's own autodiff of the same loss composed from tfjs
// ops (logSoftmax, gather, the PPO clipped surrogate, k3 KL, entropy bonus; token-mean and
// seq-mean-token-mean), and against the adapter's two-call path (tokenLogprobs -> policyLoss), on
// the cpu and the wasm backends; the tensors' storage is never written and the pooled gradient
// buffers are never overwritten while tf holds them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// '@tensorflow/tfjs' registers the cpu backend and the gradients of tf's own ops (tfjs-core alone has none).
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import * as rk from '../lib/tfjs/index.js';
import { randn, rel, relScalar, rng } from './helpers.js';
import { expectSteadyPoolWhileTraining, vg } from './tfjs-helpers.js';

const TOL = 1e-5;
/** The fused gradient against the two separate calls: f32 rounding (the contract of policyLossFromLogits). */
const TWO_CALL_TOL = 1e-6;
const figures: Record<string, number> = {};

function record(backend: string, name: string, value: number, tol = TOL): void {
  const key = `${backend} ${name}`;
  figures[key] = Math.max(figures[key] ?? 0, value);
  expect(value).toBeLessThan(tol);
}

function t(data: ArrayLike<number>, shape: number[]): tf.Tensor {
  return tf.tensor(Float32Array.from(data), shape, 'float32');
}

function ids(n: number, hi: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r() * hi));
}

interface Case {
  name: string;
  b: number;
  t: number;
  v: number;
  /** Standard deviation of the logits. */
  sd: number;
  seed: number;
  /** [B * T, V] logits with options.seqLen instead of [B, T, V]. */
  flat?: boolean;
  temperature?: number;
  aggregation: 'token-mean' | 'seq-mean-token-mean';
  /** Spell the aggregation as TRL's loss_type ('grpo' = seq-mean-token-mean, 'dapo' = token-mean). */
  viaLossType?: boolean;
  /** A mask of weights rather than 1/0. */
  weighted?: boolean;
  /** One advantage per token rather than per sequence. */
  perToken?: boolean;
  entropyCoef?: number;
  /** refLogprobs with this beta (k3). */
  beta?: number;
  epsilonHigh?: number;
  /** Another variant (compared with the two-call path only). */
  variant?: 'gspo' | 'cispo';
}

const CASES: Case[] = [
  { name: 'token-mean', b: 3, t: 5, v: 37, sd: 2, seed: 1, aggregation: 'token-mean' },
  { name: 'one token, seq-mean-token-mean, entropy', b: 1, t: 1, v: 13, sd: 1, seed: 2, flat: true, temperature: 0.7, aggregation: 'seq-mean-token-mean', viaLossType: true, entropyCoef: 0.01 },
  { name: 'token-mean, k3 + entropy, weights, per-token A', b: 2, t: 7, v: 101, sd: 1.5, seed: 3, temperature: 1.3, aggregation: 'token-mean', weighted: true, perToken: true, entropyCoef: 0.01, beta: 0.04, epsilonHigh: 0.28 },
  { name: 'seq-mean-token-mean, k3 + entropy, weights', b: 4, t: 3, v: 29, sd: 1, seed: 4, flat: true, aggregation: 'seq-mean-token-mean', weighted: true, entropyCoef: 0.05, beta: 0.1 },
  { name: 'seq-mean-token-mean, k3', b: 5, t: 6, v: 19, sd: 1, seed: 5, aggregation: 'seq-mean-token-mean', viaLossType: true, beta: 0.04 },
  { name: 'large logits (sd 8), token-mean, entropy', b: 2, t: 9, v: 53, sd: 8, seed: 6, aggregation: 'token-mean', entropyCoef: 0.02 },
  { name: 'tiny logits (sd 1e-3), seq-mean-token-mean, k3 + entropy', b: 3, t: 4, v: 11, sd: 1e-3, seed: 7, aggregation: 'seq-mean-token-mean', entropyCoef: 0.01, beta: 0.04 },
];

interface Inputs {
  x: tf.Tensor;
  n: number;
  targets: Int32Array;
  mask: Uint8Array | Float32Array;
  /** 1 where the token's log-prob is read (mask weight > 0 and the target is not ignored). */
  keep: Uint8Array;
  old: Float32Array;
  ref: Float32Array;
  adv: Float32Array;
  options: rk.GrpoLossOptions;
}

/** log-softmax of logits / tau gathered at the targets, and the entropy, [N]; 0 where keep is 0. */
function refLogprobs(logits: tf.Tensor, targets: Int32Array, keep: Uint8Array, v: number, tau: number): { lp: tf.Tensor; h: tf.Tensor } {
  const n = targets.length;
  const ls = tf.logSoftmax(tf.div(tf.reshape(logits, [n, v]), tau));
  const onehot = tf.oneHot(tf.tensor1d(Int32Array.from(targets, (y, i) => (keep[i] ? y : 0)), 'int32'), v);
  const k = tf.tensor1d(Float32Array.from(keep), 'float32');
  const lp = tf.mul(tf.sum(tf.mul(ls, onehot), -1), k);
  const h = tf.mul(tf.neg(tf.sum(tf.mul(tf.exp(ls), ls), -1)), k);
  return { lp, h };
}

function inputs(c: Case): Inputs {
  const n = c.b * c.t;
  const x = t(randn(n * c.v, c.sd, c.seed), c.flat ? [n, c.v] : [c.b, c.t, c.v]);
  const targets = ids(n, c.v, c.seed + 10);
  const r = rng(c.seed + 20);
  // every sequence keeps its first token (the seq-mean divides by each sequence's weight sum)
  const mask = c.weighted
    ? Float32Array.from({ length: n }, (_, i) => (i % c.t === 0 ? 0.75 : [0, 0.5, 1, 1.5][Math.floor(r() * 4)]!))
    : Uint8Array.from({ length: n }, (_, i) => (i % c.t === 0 || r() > 0.3 ? 1 : 0));
  // an ignored target on a masked-out token, and (when there is one) on a counted token
  const zero = mask.findIndex((m) => m === 0);
  if (zero >= 0) targets[zero] = -100;
  if (n > 2) targets[n - 1] = -100;
  const keep = Uint8Array.from(mask, (m, i) => (m > 0 && targets[i] !== -100 ? 1 : 0));
  // old and reference log-probs near the current ones: some ratios clipped, none at a tie
  const cur = refLogprobs(x, targets, new Uint8Array(n).fill(1).map((_, i) => (targets[i] === -100 ? 0 : 1)), c.v, c.temperature ?? 1).lp.dataSync();
  const noise = randn(2 * n, 0.3, c.seed + 30);
  const old = Float32Array.from(cur, (lp, i) => lp + noise[i]!);
  const ref = Float32Array.from(cur, (lp, i) => lp + noise[n + i]!);
  const adv = randn(c.perToken ? n : c.b, 1, c.seed + 40);
  const options: rk.GrpoLossOptions = {
    ...(c.flat && { seqLen: c.t }),
    ...(c.temperature !== undefined && { temperature: c.temperature }),
    ...(c.viaLossType ? { lossType: c.aggregation === 'token-mean' ? 'dapo' : 'grpo' } : { aggregation: c.aggregation }),
    ...(c.entropyCoef !== undefined && { entropyCoef: c.entropyCoef }),
    ...(c.beta !== undefined && { refLogprobs: ref, beta: c.beta }),
    ...(c.epsilonHigh !== undefined && { epsilonHigh: c.epsilonHigh }),
    ...(c.variant !== undefined && { variant: c.variant }),
  };
  return { x, n, targets, mask, keep, old, ref, adv, options };
}

/** The same loss composed from tfjs ops (differentiated by tfjs's autodiff). */
function composed(c: Case, a: Inputs, logits: tf.Tensor): tf.Scalar {
  const { lp, h } = refLogprobs(logits, a.targets, a.keep, c.v, c.temperature ?? 1);
  const [eLow, eHigh] = [0.2, c.epsilonHigh ?? 0.2];
  const ratio = tf.exp(tf.sub(lp, tf.tensor1d(a.old)));
  const adv = c.perToken ? tf.tensor1d(a.adv) : tf.reshape(tf.tile(tf.reshape(tf.tensor1d(a.adv), [c.b, 1]), [1, c.t]), [a.n]);
  const negA = tf.neg(adv);
  let per = tf.maximum(tf.mul(negA, ratio), tf.mul(negA, tf.clipByValue(ratio, 1 - eLow, 1 + eHigh)));
  if (c.beta !== undefined) {
    const d = tf.sub(tf.tensor1d(a.ref), lp); // k3 = exp(d) - d - 1, d = ref - logp
    per = tf.add(per, tf.mul(tf.sub(tf.sub(tf.exp(d), d), 1), c.beta));
  }
  if (c.entropyCoef !== undefined) per = tf.sub(per, tf.mul(h, c.entropyCoef));
  const m = tf.tensor1d(Float32Array.from(a.mask));
  if (c.aggregation === 'token-mean') return tf.div(tf.sum(tf.mul(per, m)), tf.sum(m)) as tf.Scalar;
  const perSeq = tf.div(tf.sum(tf.reshape(tf.mul(per, m), [c.b, c.t]), -1), tf.sum(tf.reshape(m, [c.b, c.t]), -1));
  return tf.mean(perSeq) as tf.Scalar;
}

/** dL/dlogits of the same loss in float64, from its formula (to tell which f32 side is the closer). */
function float64Grad(c: Case, a: Inputs): Float64Array {
  const { n, keep } = a;
  const v = c.v;
  const tau = c.temperature ?? 1;
  const x = a.x.dataSync();
  const [eLow, eHigh] = [0.2, c.epsilonHigh ?? 0.2];
  const w = new Float64Array(n);
  for (let s = 0; s < c.b; s++) {
    let sum = 0;
    for (let i = s * c.t; i < (s + 1) * c.t; i++) sum += a.mask[i]!;
    for (let i = s * c.t; i < (s + 1) * c.t; i++) w[i] = a.mask[i]! / (c.aggregation === 'token-mean' ? 1 : sum * c.b);
  }
  if (c.aggregation === 'token-mean') {
    const total = Array.from(a.mask).reduce((acc, m) => acc + m, 0);
    for (let i = 0; i < n; i++) w[i]! /= total;
  }
  const grad = new Float64Array(n * v);
  for (let i = 0; i < n; i++) {
    if (!keep[i]) continue;
    const z = Array.from(x.subarray(i * v, (i + 1) * v), (q) => q / tau);
    const mx = Math.max(...z);
    const lse = mx + Math.log(z.reduce((acc, q) => acc + Math.exp(q - mx), 0));
    const ls = z.map((q) => q - lse);
    const p = ls.map(Math.exp);
    const h = -p.reduce((acc, pj, j) => acc + pj * ls[j]!, 0);
    const lp = ls[a.targets[i]!]!;
    const adv = c.perToken ? a.adv[i]! : a.adv[Math.floor(i / c.t)]!;
    const ratio = Math.exp(lp - a.old[i]!);
    const clipped = Math.min(Math.max(ratio, 1 - eLow), 1 + eHigh);
    let dlp = -adv * ratio >= -adv * clipped ? -adv * ratio : 0;
    if (c.beta !== undefined) dlp += c.beta * (1 - Math.exp(a.ref[i]! - lp));
    const g = w[i]! * dlp;
    const gh = -(c.entropyCoef ?? 0) * w[i]!;
    for (let j = 0; j < v; j++) grad[i * v + j] = (g * ((j === a.targets[i] ? 1 : 0) - p[j]!) - gh * p[j]! * (ls[j]! + h)) / tau;
  }
  return grad;
}

/** The adapter's two-call path: tokenLogprobs (with the entropy as a tensor) -> policyLoss. */
function twoCall(
  c: Case,
  a: Inputs,
  logits: tf.Tensor,
  extra: { metrics?: rk.PolicyLossMetrics; lp?: Float32Array; h?: Float32Array } = {},
  returnEntropy = false,
): tf.Scalar {
  const { seqLen: _s, tokenWeights: _w, temperature, entropyCoef, lossType, ...policy } = a.options;
  const wantH = entropyCoef !== undefined || returnEntropy;
  const r = rk.tokenLogprobs(logits, a.targets, a.mask, { returnEntropy: wantH, ...(temperature !== undefined && { temperature }) });
  const lp = tf.reshape(r.logprobs, [c.b, c.t]);
  extra.lp = Float32Array.from(r.logprobs.dataSync());
  if (r.entropy) extra.h = Float32Array.from(r.entropy.dataSync());
  const out = rk.policyLoss(lp, a.old, a.adv, a.mask, {
    ...policy,
    ...(lossType !== undefined && { aggregation: lossType === 'grpo' ? 'seq-mean-token-mean' : 'token-mean' }),
    ...(wantH && { entropy: tf.reshape(r.entropy!, [c.b, c.t]) }),
    ...(entropyCoef !== undefined && { entropyCoef }),
  });
  extra.metrics = out.metrics;
  return out.loss;
}

const BACKENDS = ['cpu', 'wasm'] as const;

for (const backend of BACKENDS) {
  describe(`reward-kernels/tfjs grpoLoss on the ${backend} backend`, () => {
    beforeAll(async () => {
      expect(await tf.setBackend(backend)).toBe(true);
      await tf.ready();
    });

    it('loss and dL/dlogits match tfjs autodiff of the loss composed from tfjs ops (PPO clip; token-mean, seq-mean-token-mean; k3, entropy)', () => {
      for (const c of CASES) {
        const a = inputs(c);
        const before = Float32Array.from(a.x.dataSync());
        const ours = vg((l) => rk.grpoLoss(l, a.targets, a.old, a.adv, a.mask, a.options).loss, a.x);
        const ref = vg((l) => composed(c, a, l), a.x);
        record(backend, 'grpoLoss value vs tfjs autodiff', relScalar(ours.value, ref.value));
        record(backend, 'grpoLoss grad vs tfjs autodiff', rel(ours.grad, ref.grad));
        record(backend, `grpoLoss grad vs tfjs autodiff [${c.name}]`, rel(ours.grad, ref.grad));
        const f64 = float64Grad(c, a);
        record(backend, 'grpoLoss grad vs float64', rel(ours.grad, f64));
        record(backend, 'tfjs autodiff grad vs float64', rel(ref.grad, f64));
        expect(ours.grad.some((g) => g !== 0)).toBe(true);
        // rows not read (mask 0 or an ignored target) get a zero gradient row
        for (let i = 0; i < a.n; i++) {
          if (!a.keep[i]) expect(ours.grad.subarray(i * c.v, (i + 1) * c.v).every((g) => g === 0)).toBe(true);
        }
        expect(a.x.dataSync()).toEqual(before); // the logits' storage is never written
      }
    });

    it('equals the two-call path (tokenLogprobs -> policyLoss): loss, metrics, logprobs, entropy bit for bit, gradient to f32 rounding, also with -inf logits, gspo, cispo', () => {
      const cases: Case[] = [
        ...CASES,
        { name: '-inf logits', b: 3, t: 4, v: 23, sd: 1, seed: 8, aggregation: 'token-mean', entropyCoef: 0.01, beta: 0.04 },
        { name: 'gspo (two passes)', b: 3, t: 5, v: 17, sd: 1, seed: 10, aggregation: 'seq-mean-token-mean', weighted: true, entropyCoef: 0.01, variant: 'gspo' },
        { name: 'cispo', b: 2, t: 6, v: 21, sd: 1, seed: 11, flat: true, aggregation: 'token-mean', beta: 0.04, variant: 'cispo' },
      ];
      for (const c of cases) {
        const a = inputs(c);
        if (c.name === '-inf logits') {
          const d = Float32Array.from(a.x.dataSync());
          for (let i = 0; i < a.n; i++) for (let j = 0; j < c.v; j += 3) if (j !== a.targets[i]) d[i * c.v + j] = -Infinity;
          a.x = t(d, a.x.shape);
        }
        const fused = rk.grpoLoss(a.x, a.targets, a.old, a.adv, a.mask, { ...a.options, returnEntropy: true });
        const extra: { metrics?: rk.PolicyLossMetrics; lp?: Float32Array; h?: Float32Array } = {};
        const sep = twoCall(c, a, a.x, extra, true);
        expect(fused.loss.dataSync()[0]).toBe(sep.dataSync()[0]);
        expect(fused.metrics).toEqual(extra.metrics);
        expect(fused.logprobs).toEqual(extra.lp);
        expect(fused.entropy).toEqual(extra.h);
        expect(fused.metrics.entropy).toBeGreaterThan(0);
        const g1 = vg((l) => rk.grpoLoss(l, a.targets, a.old, a.adv, a.mask, a.options).loss, a.x);
        const g2 = vg((l) => twoCall(c, a, l), a.x);
        expect(g1.value).toBe(g2.value);
        expect(g1.grad.every(Number.isFinite)).toBe(true);
        record(backend, 'grpoLoss grad vs the two-call path', rel(g1.grad, g2.grad), TWO_CALL_TOL);
      }
    });

    it('the upstream gradient dy scales the kernel gradient; two losses in one step (one inside a tidy) get their own buffers', () => {
      const c = CASES[2]!;
      const a = inputs(c);
      const bb = inputs({ ...c, seed: 9 });
      const f = (l: tf.Tensor, i: Inputs) => rk.grpoLoss(l, i.targets, i.old, i.adv, i.mask, i.options).loss;
      const ga = vg((l) => f(l, a), a.x).grad;
      const gb = vg((l) => f(l, bb), a.x).grad;
      const scaled = vg((l) => tf.mul(f(l, a), -2.5) as tf.Scalar, a.x).grad;
      record(backend, 'grpoLoss grad with dy = -2.5', rel(scaled, ga.map((g) => -2.5 * g)));
      // the first loss is disposed by an inner tidy before the second call: its gradient stays its own
      const both = vg((l) => tf.add(tf.tidy(() => tf.mul(f(l, a), 2)), f(l, bb)) as tf.Scalar, a.x).grad;
      record(backend, 'grpoLoss grad of 2 L_a + L_b', rel(both, ga.map((g, i) => 2 * g + gb[i]!)));
    });

    it('gradient buffers are pooled, never overwritten while tf holds them, and a forward without a gradient keeps nothing', () => {
      const c = CASES[0]!;
      const a = inputs(c);
      const size = a.n * c.v;
      const f = (l: tf.Tensor) => rk.grpoLoss(l, a.targets, a.old, a.adv, a.mask, a.options).loss;
      rk.clearGradientPool();
      const g1 = tf.grad(f)(a.x); // the user holds this gradient
      const kept = Float32Array.from(g1.dataSync());
      const x2 = t(randn(size, 2, 99), a.x.shape);
      const g2 = tf.grad(f)(x2); // another backward of the same size while g1 is alive
      expect(g1.dataSync()).toEqual(kept);
      expect(g2.dataSync()).not.toEqual(kept);
      g1.dispose();
      g2.dispose();
      const before = rk.gradientPoolStats();
      expect(before.bytes).toBe(backend === 'cpu' ? 2 * size * 4 : size * 4);
      const tensors = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) tf.tidy(() => tf.grad(f)(a.x).dispose());
      for (let i = 0; i < 3; i++) f(a.x).dispose(); // forward only (no tape): the gradient tensor is freed at once
      expect(rk.gradientPoolStats()).toEqual(before);
      expect(tf.memory().numTensors).toBe(tensors);

      // a training loop: optimizer.minimize releases each step's gradient, so the pool stays put
      const w = tf.variable(a.x.clone());
      expectSteadyPoolWhileTraining(w, () => rk.grpoLoss(tf.mul(w, 1), a.targets, a.old, a.adv, a.mask, a.options).loss);
    });

    it('constants as tensors are only read; the logprobs/entropy outputs are fresh arrays', () => {
      const c = CASES[3]!;
      const a = inputs(c);
      const [tg, old, adv, mask, ref] = [
        tf.tensor(a.targets, [a.n], 'int32'),
        t(a.old, [c.b, c.t]),
        t(a.adv, [c.b]),
        t(a.mask, [c.b, c.t]),
        t(a.ref, [c.b, c.t]),
      ];
      const snap = [a.x, tg, old, adv, mask, ref].map((x) => Array.from(x.dataSync()));
      const opts = { ...a.options, refLogprobs: ref };
      const r1 = rk.grpoLoss(a.x, tg, old, adv, mask, opts);
      const g = vg((l) => rk.grpoLoss(l, tg, old, adv, mask, opts).loss, a.x);
      const r2 = rk.grpoLoss(a.x, a.targets, a.old, a.adv, a.mask, a.options);
      expect(r1.loss.dataSync()[0]).toBe(r2.loss.dataSync()[0]);
      expect(g.value).toBe(r2.loss.dataSync()[0]);
      expect(r1.logprobs).toEqual(r2.logprobs);
      expect(r1.logprobs).not.toBe(r2.logprobs);
      expect([a.x, tg, old, adv, mask, ref].map((x) => Array.from(x.dataSync()))).toEqual(snap);
      // tokenWeights as a tensor: the two-call path's loss with the same weights, bit for bit
      const tw = Float32Array.from({ length: a.n }, (_, i) => 0.5 + (i % 3) * 0.25);
      const rw = rk.grpoLoss(a.x, tg, old, adv, mask, { ...opts, tokenWeights: t(tw, [c.b, c.t]) });
      const { seqLen: _s, lossType: _l, entropyCoef, temperature: _tau, ...policy } = a.options;
      const sep = rk.tokenLogprobs(a.x, a.targets, a.mask, { returnEntropy: true });
      const lw = rk.policyLoss(tf.reshape(sep.logprobs, [c.b, c.t]), a.old, a.adv, a.mask, {
        ...(policy as Omit<rk.PolicyLossOptions, 'tokenWeights'>),
        refLogprobs: a.ref,
        aggregation: c.aggregation,
        entropy: tf.reshape(sep.entropy, [c.b, c.t]),
        ...(entropyCoef !== undefined && { entropyCoef }),
        tokenWeights: tw,
      });
      expect(rw.loss.dataSync()[0]).toBe(lw.loss.dataSync()[0]);
      expect(rw.loss.dataSync()[0]).not.toBe(r1.loss.dataSync()[0]);
    });

    it('bad arguments are TypeErrors / RangeErrors naming the argument', () => {
      const x = t(randn(2 * 3 * 5, 1, 71), [2, 3, 5]);
      const tg = [0, 1, 2, 3, 4, 0];
      const old = new Float32Array(6).fill(-1.6);
      const adv = [1, -1];
      expect(() => rk.grpoLoss(t(new Float32Array(5), [5]), [0], [0], [0], null)).toThrow(/logits: expected a tensor of rank 2 or 3/);
      expect(() => rk.grpoLoss(tf.tensor([1, 2], [1, 2], 'int32'), [0], [0], [0], null)).toThrow(/logits: expected a float32 tensor/);
      expect(() => rk.grpoLoss(tf.reshape(x, [6, 5]), tg, old, adv, null)).toThrow(/options.seqLen: required/);
      expect(() => rk.grpoLoss(tf.reshape(x, [6, 5]), tg, old, adv, null, { seqLen: 4 })).toThrow(/options.seqLen: expected a positive divisor .*\(6\), got 4/);
      expect(() => rk.grpoLoss(x, tg, old, adv, null, { seqLen: 2 })).toThrow(/options.seqLen: expected undefined or 3/);
      expect(() => rk.grpoLoss(x, tg, old, adv, null, { vocab: 5 } as never)).toThrow(/options.vocab: set by the adapter/);
      expect(() => rk.grpoLoss(x, tg, old, adv, null, { gradDtype: 'bf16' } as never)).toThrow(/options.gradDtype: set by the adapter/);
      expect(() => rk.grpoLoss(x, tg, old, adv, null, { inPlace: true } as never)).toThrow(/options.inPlace: set by the adapter/);
      expect(() => rk.grpoLoss(x, tg, old, adv, null, { epsilon: 0.2 } as never)).toThrow(/options.epsilon: not an option of grpoLoss \(did you mean 'epsilonLow'\?\); expected one of temperature, ignoreIndex, seqLen, /);
      expect(() => rk.grpoLoss(x, tg, old, adv, null, { epsilon: 0.2 } as never)).not.toThrow(/vocab|gradDtype|inPlace/);
      expect(() => rk.grpoLoss(x, tg, old, adv, null, { returnEntropy: 1 } as never)).toThrow(/options.returnEntropy: expected a boolean/);
      expect(() => rk.grpoLoss(x, tg, old, adv, null, { out: {} } as never)).toThrow(/options.out: set by the adapter/);
      expect(() => rk.grpoLoss(x, tg.slice(1), old, adv, null)).toThrow(/targets: expected 6 elements/);
      expect(() => rk.grpoLoss(x, [0, 1, 2, 3, 4, 5], old, adv, null)).toThrow(/targets/);
      expect(() => rk.grpoLoss(x, tg, old.subarray(1), adv, null)).toThrow(/oldLogprobs: expected 6 elements/);
      expect(() => rk.grpoLoss(x, tg, old, [1, 2, 3], null)).toThrow(/advantages: expected 2 or 6 elements/);
      expect(() => rk.grpoLoss(x, tg, old, adv, [1, 0, 1])).toThrow(/mask: expected 6 elements/);
      expect(() => rk.grpoLoss(x, tg, old, adv, null, { refLogprobs: [0, 0] })).toThrow(/options.refLogprobs: expected 6 elements/);
      expect(() => rk.grpoLoss(x, tg, old, adv, null, { beta: 0.1 })).toThrow(/options.beta/);
      expect(() => rk.grpoLoss(x, tg, old, adv, null, { lossType: 'grpo', aggregation: 'token-mean' })).toThrow(/options.lossType/);
      // a valid call after the failures: the pool and the result are intact
      expect(rk.grpoLoss(x, tg, old, adv, null, { lossType: 'grpo' }).metrics.tokenCount).toBe(6);
      const g = tf.grad((l: tf.Tensor) => rk.grpoLoss(l, tg, old, adv, null).loss)(x);
      expect(g.shape).toEqual([2, 3, 5]);
      expect(Array.from(g.dataSync()).some((v) => v !== 0)).toBe(true);
    });
  });
}

afterAll(() => {
  // The measured figures (max relative difference), for the docs and the report.
  console.log(
    'tfjs grpoLoss (max relative difference):\n' +
      Object.entries(figures)
        .map(([k, v]) => `  ${k}: ${v.toExponential(2)}`)
        .join('\n'),
  );
});
