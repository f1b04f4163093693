// reward-kernels/tfjs: every op's value and gradient against tfjs's own autodiff of the same loss
// written in tfjs ops (float32, small awkward shapes), on the cpu backend and on the wasm backend.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// '@tensorflow/tfjs' registers the cpu backend and the gradients of tf's own ops (tfjs-core alone has none).
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import * as rk from '../lib/tfjs/index.js';
import { randn, rel, relScalar, rng } from './helpers.js';
import { expectSteadyPoolWhileTraining, vg } from './tfjs-helpers.js';

const TOL = 1e-5;
const figures: Record<string, number> = {};

function record(backend: string, name: string, value: number): void {
  const key = `${backend} ${name}`;
  figures[key] = Math.max(figures[key] ?? 0, value);
  expect(value).toBeLessThan(TOL);
}

function t(data: Float32Array, shape: number[]): tf.Tensor {
  return tf.tensor(data, shape, 'float32');
}

function ids(n: number, hi: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r() * hi));
}

function mask01(n: number, seed: number, pZero = 0.3): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => (r() < pZero ? 0 : 1));
}

/** tfjs reference: log-softmax of logits/tau gathered at the targets, and the entropy; 0 where ignored. */
function refLogprobs(logits: tf.Tensor, targets: Int32Array, keep: Uint8Array, tau = 1): { lp: tf.Tensor; h: tf.Tensor } {
  const v = logits.shape[logits.rank - 1]!;
  const n = targets.length;
  const z = tf.reshape(tf.div(logits, tau), [n, v]);
  const ls = tf.logSoftmax(z);
  const safe = Int32Array.from(targets, (y, i) => (keep[i] ? y : 0));
  const onehot = tf.oneHot(tf.tensor1d(safe, 'int32'), v);
  const k = tf.tensor1d(Float32Array.from(keep), 'float32');
  const lp = tf.mul(tf.sum(tf.mul(ls, onehot), -1), k);
  const h = tf.mul(tf.neg(tf.sum(tf.mul(tf.exp(ls), ls), -1)), k);
  const shape = logits.shape.slice(0, -1);
  return { lp: tf.reshape(lp, shape), h: tf.reshape(h, shape) };
}

const BACKENDS = ['cpu', 'wasm'] as const;

for (const backend of BACKENDS) {
  describe(`reward-kernels/tfjs on the ${backend} backend`, () => {
    beforeAll(async () => {
      expect(await tf.setBackend(backend)).toBe(true);
      await tf.ready();
    });

    it('tokenLogprobs (with entropy, mask, ignoreIndex, temperature) matches tfjs autodiff through dL/dlogp and dL/dH', () => {
      for (const [b, tt, v, tau, seed] of [
        [3, 5, 37, 1, 1],
        [1, 1, 13, 0.7, 2],
        [2, 7, 101, 1.3, 3],
      ] as const) {
        const n = b * tt;
        const x = t(randn(n * v, 2, seed), [b, tt, v]);
        const before = Float32Array.from(x.dataSync());
        const targets = ids(n, v, seed + 10);
        if (n > 1) targets[0] = -100; // ignored
        const mask = mask01(n, seed + 20);
        const keep = Uint8Array.from(mask, (m, i) => (m && targets[i] !== -100 ? 1 : 0));
        const w1 = t(randn(n, 1, seed + 30), [b, tt]);
        const w2 = t(randn(n, 1, seed + 40), [b, tt]);
        const ours = vg((l) => {
          const { logprobs, entropy } = rk.tokenLogprobs(l, targets, mask, { returnEntropy: true, temperature: tau });
          return tf.add(tf.sum(tf.mul(logprobs, w1)), tf.sum(tf.mul(entropy, w2))) as tf.Scalar;
        }, x);
        const ref = vg((l) => {
          const { lp, h } = refLogprobs(l, targets, keep, tau);
          return tf.add(tf.sum(tf.mul(lp, w1)), tf.sum(tf.mul(h, w2))) as tf.Scalar;
        }, x);
        record(backend, 'tokenLogprobs value', relScalar(ours.value, ref.value));
        record(backend, 'tokenLogprobs grad', rel(ours.grad, ref.grad));
        // logp alone (no entropy output) and the values themselves
        const { logprobs } = rk.tokenLogprobs(x, targets, mask, { temperature: tau });
        record(backend, 'tokenLogprobs value', rel(logprobs.dataSync(), refLogprobs(x, targets, keep, tau).lp.dataSync()));
        const g2 = vg((l) => tf.sum(tf.mul(rk.tokenLogprobs(l, tf.tensor(targets, [b, tt], 'int32'), null, { temperature: tau }).logprobs, w1)) as tf.Scalar, x);
        const r2 = vg((l) => tf.sum(tf.mul(refLogprobs(l, targets, Uint8Array.from(targets, (y) => (y === -100 ? 0 : 1)), tau).lp, w1)) as tf.Scalar, x);
        record(backend, 'tokenLogprobs grad', rel(g2.grad, r2.grad));
        expect(x.dataSync()).toEqual(before); // the logits' storage is never written
      }
    });

    it('sequenceLogprobs: masked (0/1 and weighted) per-sequence sums and their gradient', () => {
      const [b, tt, v] = [4, 6, 29];
      const n = b * tt;
      const x = t(randn(n * v, 1.5, 5), [b, tt, v]);
      const targets = ids(n, v, 6);
      const w = t(randn(b, 1, 7), [b]);
      for (const mask of [mask01(n, 8), Float32Array.from({ length: n }, (_, i) => (i % 5) * 0.25)]) {
        const ours = vg((l) => tf.sum(tf.mul(rk.sequenceLogprobs(l, targets, mask), w)) as tf.Scalar, x);
        const ref = vg((l) => {
          const { lp } = refLogprobs(l, targets, new Uint8Array(n).fill(1));
          return tf.sum(tf.mul(tf.sum(tf.mul(lp, t(Float32Array.from(mask), [b, tt])), -1), w)) as tf.Scalar;
        }, x);
        record(backend, 'sequenceLogprobs value', relScalar(ours.value, ref.value));
        record(backend, 'sequenceLogprobs grad', rel(ours.grad, ref.grad));
      }
      expect(rk.sequenceLogprobs(x, targets, null).shape).toEqual([b]);
    });

    it('policyLoss (PPO clip, k3 KL to a reference, entropy bonus through tokenLogprobs) matches tfjs autodiff', () => {
      const [b, tt, v] = [3, 7, 23];
      const n = b * tt;
      const x = t(randn(n * v, 1, 11), [b, tt, v]);
      const targets = ids(n, v, 12);
      const mask = mask01(n, 13);
      const keep = mask;
      // old and reference log-probs near the current ones (some ratios clipped, none at a tie)
      const { lp: cur } = refLogprobs(x, targets, new Uint8Array(n).fill(1));
      const curv = cur.dataSync();
      const noise = randn(2 * n, 0.3, 14);
      const old = Float32Array.from(curv, (c, i) => c + noise[i]!);
      const refl = Float32Array.from(curv, (c, i) => c + noise[n + i]!);
      const adv = randn(b, 1, 15);
      const [eLow, eHigh, beta, coef] = [0.2, 0.28, 0.04, 0.01];
      let metrics: rk.PolicyLossMetrics | undefined;
      const ours = vg((l) => {
        const { logprobs, entropy } = rk.tokenLogprobs(l, targets, mask, { returnEntropy: true });
        const r = rk.policyLoss(logprobs, old, adv, mask, {
          epsilonLow: eLow, epsilonHigh: eHigh, refLogprobs: refl, beta, entropy, entropyCoef: coef,
        });
        metrics = r.metrics;
        return r.loss;
      }, x);
      const ref = vg((l) => {
        const { lp, h } = refLogprobs(l, targets, keep);
        const d = tf.sub(lp, t(old, [b, tt]));
        const ratio = tf.exp(d);
        const a = tf.reshape(tf.tensor1d(adv), [b, 1]);
        const pg = tf.maximum(tf.mul(tf.neg(a), ratio), tf.mul(tf.neg(a), tf.clipByValue(ratio, 1 - eLow, 1 + eHigh)));
        const xk = tf.sub(t(refl, [b, tt]), lp); // k3 = exp(x) - x - 1, x = ref - logp
        const k3 = tf.sub(tf.sub(tf.exp(xk), xk), 1);
        const per = tf.sub(tf.add(pg, tf.mul(k3, beta)), tf.mul(h, coef));
        const m = t(Float32Array.from(mask), [b, tt]);
        return tf.div(tf.sum(tf.mul(per, m)), tf.sum(m)) as tf.Scalar;
      }, x);
      record(backend, 'policyLoss value', relScalar(ours.value, ref.value));
      record(backend, 'policyLoss grad (logits, via dL/dlogp and dL/dH)', rel(ours.grad, ref.grad));
      expect(metrics!.tokenCount).toBe(mask.reduce((s, m) => s + m, 0));
      expect(metrics!.clipFraction).toBeGreaterThan(0);

      // on log-probs directly, per-token advantages, weighted mask, seq-mean-token-mean
      const lp0 = t(Float32Array.from(curv), [b, tt]);
      const advT = randn(n, 1, 16);
      const wm = Float32Array.from({ length: n }, (_, i) => ((i * 7) % 4) * 0.5);
      const o2 = vg((p) => rk.policyLoss(p, old, tf.tensor(advT, [b, tt]), wm, { aggregation: 'seq-mean-token-mean' }).loss, lp0);
      const r2 = vg((p) => {
        const ratio = tf.exp(tf.sub(p, t(old, [b, tt])));
        const a = t(advT, [b, tt]);
        const pg = tf.maximum(tf.mul(tf.neg(a), ratio), tf.mul(tf.neg(a), tf.clipByValue(ratio, 0.8, 1.2)));
        const m = t(wm, [b, tt]);
        const perSeq = tf.div(tf.sum(tf.mul(pg, m), -1), tf.sum(m, -1));
        return tf.mean(perSeq) as tf.Scalar;
      }, lp0);
      record(backend, 'policyLoss value', relScalar(o2.value, r2.value));
      record(backend, 'policyLoss grad (log-probs)', rel(o2.grad, r2.grad));
    });

    it('klPenalty: per-token k3 / k2 and the weighted mean match tfjs autodiff', () => {
      const [b, tt] = [5, 3];
      const n = b * tt;
      const lp = t(Float32Array.from(randn(n, 1, 21), (x) => -Math.abs(x) - 0.1), [b, tt]);
      const ref = Float32Array.from(lp.dataSync(), (x, i) => x + 0.4 * Math.sin(i + 1));
      const mask = Float32Array.from({ length: n }, (_, i) => (i % 4) * 0.5);
      const w = t(randn(n, 1, 22), [b, tt]);
      for (const est of ['k3', 'k2'] as const) {
        const ours = vg((p) => {
          const { kl, mean } = rk.klPenalty(p, ref, mask, { estimator: est });
          return tf.add(tf.sum(tf.mul(kl, w)), tf.mul(mean, 3)) as tf.Scalar;
        }, lp);
        const theirs = vg((p) => {
          const d = tf.sub(p, t(ref, [b, tt]));
          const kl = est === 'k3' ? tf.sub(tf.sub(tf.exp(tf.neg(d)), tf.neg(d)), 1) : tf.div(tf.square(d), 2);
          const m = t(mask, [b, tt]);
          const klm = tf.mul(kl, tf.cast(tf.greater(m, 0), 'float32'));
          const mean = tf.div(tf.sum(tf.mul(klm, m)), tf.sum(m));
          return tf.add(tf.sum(tf.mul(klm, w)), tf.mul(mean, 3)) as tf.Scalar;
        }, lp);
        record(backend, 'klPenalty value', relScalar(ours.value, theirs.value));
        record(backend, 'klPenalty grad', rel(ours.grad, theirs.grad));
      }
      const none = rk.klPenalty(lp, ref, null, { estimator: 'k2' }).mean.dataSync()[0]!;
      const d = Float32Array.from(lp.dataSync(), (x, i) => x - ref[i]!);
      expect(Math.abs(none - d.reduce((s, x) => s + (x * x) / 2, 0) / n)).toBeLessThan(1e-6);
    });

    it('preferenceLoss (DPO sigmoid with reference, SimPO with lengths) matches tfjs autodiff on both inputs', () => {
      const p = 7;
      const chosen = t(Float32Array.from(randn(p, 3, 31), (x) => x - 20), [p]);
      const rejected = t(Float32Array.from(randn(p, 3, 32), (x) => x - 22), [p]);
      const refC = Float32Array.from(randn(p, 3, 33), (x) => x - 21);
      const refR = Float32Array.from(randn(p, 3, 34), (x) => x - 21);
      const lenC = Int32Array.from({ length: p }, (_, i) => 3 + i);
      const lenR = Int32Array.from({ length: p }, (_, i) => 9 - i);
      const cases: [string, (c: tf.Tensor, r: tf.Tensor) => tf.Scalar, (c: tf.Tensor, r: tf.Tensor) => tf.Scalar][] = [
        [
          'sigmoid',
          (c, r) => rk.preferenceLoss(c, r, { refChosenLogps: refC, refRejectedLogps: tf.tensor(refR), beta: 0.1 }).loss,
          (c, r) => {
            const x = tf.mul(tf.sub(tf.sub(c, tf.tensor(refC)), tf.sub(r, tf.tensor(refR))), 0.1);
            return tf.mean(tf.softplus(tf.neg(x))) as tf.Scalar;
          },
        ],
        [
          'simpo',
          (c, r) => rk.preferenceLoss(c, r, { lossType: 'simpo', chosenLengths: lenC, rejectedLengths: Array.from(lenR) }).loss,
          (c, r) => {
            const z = tf.sub(tf.mul(tf.sub(tf.div(c, tf.tensor(Float32Array.from(lenC))), tf.div(r, tf.tensor(Float32Array.from(lenR)))), 2), 0.5);
            return tf.mean(tf.softplus(tf.neg(z))) as tf.Scalar;
          },
        ],
      ];
      for (const [name, ours, theirs] of cases) {
        const [go, gt] = [tf.grads(ours)([chosen, rejected]), tf.grads(theirs)([chosen, rejected])];
        const vo = ours(chosen, rejected).dataSync()[0]!;
        const vt = theirs(chosen, rejected).dataSync()[0]!;
        record(backend, 'preferenceLoss value', relScalar(vo, vt));
        record(backend, `preferenceLoss grad`, rel([...go[0]!.dataSync(), ...go[1]!.dataSync()], [...gt[0]!.dataSync(), ...gt[1]!.dataSync()]));
        expect(name.length).toBeGreaterThan(0);
      }
      const m = rk.preferenceLoss(chosen, rejected, { refChosenLogps: refC, refRejectedLogps: refR });
      expect(m.losses.length).toBe(p);
      expect(m.metrics.rewardAccuracy).toBeGreaterThanOrEqual(0);
    });

    it('ktoLoss matches tfjs autodiff', () => {
      const n = 9;
      const x = t(Float32Array.from(randn(n, 2, 41), (v) => v - 10), [n]);
      const ref = Float32Array.from(randn(n, 2, 42), (v) => v - 10);
      const desirable = Array.from({ length: n }, (_, i) => i % 3 !== 0);
      const [beta, kl, wd, wu] = [0.3, 0.2, 1.5, 0.7];
      const ours = vg((p) => rk.ktoLoss(p, { desirable, refLogps: ref, kl, beta, desirableWeight: wd, undesirableWeight: wu }).loss, x);
      const theirs = vg((p) => {
        const z = tf.mul(tf.sub(tf.sub(p, tf.tensor(ref)), kl), beta);
        const d = tf.tensor(Float32Array.from(desirable, (v) => (v ? 1 : 0)));
        const lossD = tf.mul(tf.sub(1, tf.sigmoid(z)), wd);
        const lossU = tf.mul(tf.sub(1, tf.sigmoid(tf.neg(z))), wu);
        return tf.mean(tf.add(tf.mul(d, lossD), tf.mul(tf.sub(1, d), lossU))) as tf.Scalar;
      }, x);
      record(backend, 'ktoLoss value', relScalar(ours.value, theirs.value));
      record(backend, 'ktoLoss grad', rel(ours.grad, theirs.grad));
    });

    it('vocabDivergence (forward_kl, reverse_kl, jsd; mask, labels, temperature) matches tfjs autodiff', () => {
      const [b, tt, v] = [2, 5, 31];
      const n = b * tt;
      const x = t(randn(n * v, 1.5, 51), [b, tt, v]);
      const before = Float32Array.from(x.dataSync());
      const target = t(randn(n * v, 1.5, 52), [b, tt, v]);
      const mask = mask01(n, 53);
      const labels = ids(n, v, 54);
      labels[3] = -100;
      const keep = Uint8Array.from(mask, (m, i) => (m && labels[i] !== -100 ? 1 : 0));
      const w = t(randn(n, 1, 55), [b, tt]);
      const tau = 0.8;
      for (const kind of ['forward_kl', 'reverse_kl', 'jsd'] as const) {
        const beta = 0.3;
        const ours = vg((l) => {
          const d = rk.vocabDivergence(l, target, mask, { divergence: kind, temperature: tau, labels, ...(kind === 'jsd' && { beta }) });
          return tf.sum(tf.mul(d, w)) as tf.Scalar;
        }, x);
        const theirs = vg((l) => {
          const lp = tf.logSoftmax(tf.div(l, tau));
          const lq = tf.logSoftmax(tf.div(target, tau));
          const [p, q] = [tf.exp(lp), tf.exp(lq)];
          let d: tf.Tensor;
          if (kind === 'forward_kl') d = tf.sum(tf.mul(q, tf.sub(lq, lp)), -1);
          else if (kind === 'reverse_kl') d = tf.sum(tf.mul(p, tf.sub(lp, lq)), -1);
          else {
            const lm = tf.log(tf.add(tf.mul(q, beta), tf.mul(p, 1 - beta)));
            d = tf.add(tf.mul(tf.sum(tf.mul(q, tf.sub(lq, lm)), -1), beta), tf.mul(tf.sum(tf.mul(p, tf.sub(lp, lm)), -1), 1 - beta));
          }
          return tf.sum(tf.mul(tf.mul(d, t(Float32Array.from(keep), [b, tt])), w)) as tf.Scalar;
        }, x);
        record(backend, 'vocabDivergence value', relScalar(ours.value, theirs.value));
        record(backend, 'vocabDivergence grad', rel(ours.grad, theirs.grad));
      }
      expect(x.dataSync()).toEqual(before);
    });

    it('gradient buffers are pooled, and a pooled buffer is never overwritten while tf holds its tensor', () => {
      const [n, v] = [6, 17];
      const x = t(randn(n * v, 1, 61), [n, v]);
      const targets = ids(n, v, 62);
      const f = (l: tf.Tensor) => tf.sum(rk.tokenLogprobs(l, targets).logprobs) as tf.Scalar;
      rk.clearGradientPool();
      const g1 = tf.grad(f)(x); // the user holds this gradient
      const kept = Float32Array.from(g1.dataSync());
      const x2 = t(randn(n * v, 1, 63), [n, v]);
      const g2 = tf.grad(f)(x2); // another backward of the same size while g1 is alive
      expect(g1.dataSync()).toEqual(kept);
      expect(g2.dataSync()).not.toEqual(kept);
      g1.dispose();
      g2.dispose();
      const before = rk.gradientPoolStats();
      for (let i = 0; i < 5; i++) tf.tidy(() => tf.grad(f)(x).dispose());
      // disposed gradients give their buffers back: no new buffers for steps 3..7
      expect(rk.gradientPoolStats()).toEqual(before);
      expect(before.bytes).toBe(backend === 'cpu' ? 2 * n * v * 4 : n * v * 4);

      // a training loop: optimizer.minimize releases each step's gradient, so the pool stays put
      const w = tf.variable(t(randn(n * v, 1, 64), [n, v]));
      expectSteadyPoolWhileTraining(w, () => tf.neg(tf.sum(rk.tokenLogprobs(tf.mul(w, 1), targets).logprobs)) as tf.Scalar);
    });

    it('bad arguments are TypeErrors / RangeErrors naming the argument', () => {
      const x = t(randn(12, 1, 71), [2, 2, 3]);
      expect(() => rk.tokenLogprobs(x, [0, 1, 2], null)).toThrow(/targets: expected 4 elements/);
      expect(() => rk.tokenLogprobs(x, [0, 1, 2, 7])).toThrow(/targets\[3\]|RangeError/);
      expect(() => rk.tokenLogprobs(x, [0, 1, 2, 1.5])).toThrow(/targets\[3\]: expected an int32 id/);
      expect(() => rk.tokenLogprobs(x, new BigInt64Array([0n, 1n, 2n, 1n << 40n]))).toThrow(/targets\[3\]: expected an int32 id/);
      expect(rk.tokenLogprobs(x, new BigInt64Array([0n, 1n, 2n, 1n])).logprobs.shape).toEqual([2, 2]);
      expect(() => rk.tokenLogprobs(x, [0, 1, 2, 1], null, { entropy: true } as never)).toThrow(/unknown option 'entropy'/);
      expect(() => rk.tokenLogprobs(x, [0, 1, 2, 1], [1, 0, 1])).toThrow(/mask: expected 4 elements/);
      expect(() => rk.tokenLogprobs(x, [0, 1, 2, 1], [1, -1, 1, 1])).toThrow(/mask\[1\]: expected a finite weight/);
      expect(() => rk.policyLoss(x, [0], [0], null)).toThrow(/logprobs: expected a tensor of rank 2/);
      const lp = t(new Float32Array(4), [2, 2]);
      expect(() => rk.policyLoss(lp, [0, 0, 0], [1, 1], null)).toThrow(/oldLogprobs: expected 4 elements/);
      expect(() => rk.policyLoss(lp, [0, 0, 0, 0], [1, 1, 1], null)).toThrow(/advantages: expected 2 or 4 elements/);
      expect(() => rk.policyLoss(lp, [0, 0, 0, 0], [1, 1], null, { epsilon: 0.2 } as never)).toThrow(/epsilon/);
      expect(() => rk.preferenceLoss(t(new Float32Array(2), [2]), t(new Float32Array(3), [3]))).toThrow(/rejectedLogps: expected 2/);
      expect(() => rk.klPenalty(lp, [0, 0, 0, 0], null, { mask: [1, 1, 1, 1] } as never)).toThrow(/unknown option 'mask'/);
      expect(() => rk.vocabDivergence(x, t(new Float32Array(6), [2, 3]))).toThrow(/targetLogits: expected shape \[2, 2, 3\]/);
    });
  });
}

describe('reward-kernels/tfjs packaging', () => {
  it("the main entry never imports tfjs (only lib/tfjs/ does), and './tfjs' is an export with an optional peer", () => {
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
    const offenders = walk('lib')
      .filter((f) => f.endsWith('.ts') && !f.startsWith(join('lib', 'tfjs')))
      .filter((f) => /@tensorflow|from '\.{1,2}\/(?:\.\.\/)*tfjs/.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    expect(pkg.exports['./tfjs'].import).toBe('./dist/tfjs/index.js');
    expect(pkg.peerDependenciesMeta['@tensorflow/tfjs-core'].optional).toBe(true);
    expect(pkg.dependencies['@tensorflow/tfjs-core']).toBeUndefined();
  });

  it('at run time: importing the main entry loads no tfjs module; importing ./tfjs loads tfjs-core', () => {
    const [main, adapter] = [['index.ts'], ['tfjs', 'index.ts']].map((p) => JSON.stringify(pathToFileURL(join(process.cwd(), 'lib', ...p)).href));
    const script = [
      "const M = (await import('node:module')).default;",
      "const tfjs = () => Object.keys(M._cache).filter((k) => k.includes('@tensorflow')).length;",
      `await import(${main}); const a = tfjs();`,
      `await import(${adapter}); console.log(JSON.stringify([a, tfjs()]));`,
    ].join(' ');
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    const [before, after] = JSON.parse(out.trim().split('\n').pop()!) as [number, number];
    expect(before).toBe(0);
    expect(after).toBeGreaterThan(0);
  });
});

afterAll(() => {
  // The measured figures (max relative difference vs tfjs autodiff), for the docs and the report.
  console.log(
    'tfjs adapter vs tfjs autodiff (max relative difference):\n' +
      Object.entries(figures)
        .map(([k, v]) => `  ${k}: ${v.toExponential(2)}`)
        .join('\n'),
  );
});
