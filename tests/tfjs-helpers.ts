// Shared by the TensorFlow.js adapter's tests (tfjs.test.ts, tfjs-grpo.test.ts); kept out of
// helpers.ts so that the other tests do not load TensorFlow.js.
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';

import * as rk from '../lib/tfjs/index.js';

/** Value and gradient (wrt x) of f, via tf.valueAndGrad. */
export function vg(f: (x: tf.Tensor) => tf.Scalar, x: tf.Tensor): { value: number; grad: Float32Array } {
  const { value, grad } = tf.valueAndGrad(f)(x);
  const out = { value: value.dataSync()[0]!, grad: Float32Array.from(grad.dataSync()) };
  value.dispose();
  grad.dispose();
  return out;
}

/**
 * A training loop over `w` with `lossOf`: optimizer.minimize releases each step's gradient, so the
 * adapter's gradient pool stays the same after the first step, and the loss goes down. Disposes `w`.
 */
export function expectSteadyPoolWhileTraining(w: tf.Variable, lossOf: () => tf.Scalar) {
  const opt = tf.train.sgd(0.1);
  const l0 = lossOf().dataSync()[0]!;
  opt.minimize(lossOf);
  const afterFirst = rk.gradientPoolStats();
  for (let i = 0; i < 4; i++) opt.minimize(lossOf);
  expect(rk.gradientPoolStats()).toEqual(afterFirst);
  expect(lossOf().dataSync()[0]!).toBeLessThan(l0);
  w.dispose();
  opt.dispose();
}
