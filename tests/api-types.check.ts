// Type-level checks of the public signatures (compiled by `npx tsc -p tsconfig.check.json`, not run):
// outputs asked for are typed present, the host / device result follows the first array argument.
import * as rk from '../lib/index.js';
import type { DeviceArray } from '../lib/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const assert = <T extends true>(_?: T) => undefined;

declare const logits: Float32Array, targets: Int32Array, ids64: BigInt64Array, dev: DeviceArray, flag: boolean;

// tokenLogprobs: entropy is Float32Array with returnEntropy: true, optional otherwise
const a = rk.tokenLogprobs(logits, targets, { vocab: 4, returnEntropy: true });
assert<Equal<typeof a.entropy, Float32Array>>();
const b = rk.tokenLogprobs(logits, targets, { vocab: 4 });
assert<Equal<typeof b.entropy, Float32Array | undefined>>();
const c = rk.tokenLogprobs(logits, ids64, { vocab: 4, returnEntropy: flag });
assert<Equal<typeof c.entropy, Float32Array | undefined>>();
const d = rk.tokenLogprobs(dev, dev, { vocab: 4, returnEntropy: true });
assert<Equal<typeof d.entropy, DeviceArray<'f32'>>>();
async function asyncForms() {
  const e = await rk.tokenLogprobsAsync(logits, targets, { vocab: 4, returnEntropy: true });
  assert<Equal<typeof e.entropy, Float32Array>>();
}
void asyncForms;
void [a, b, c, d];

// vocabDivergence: gradient is present with returnGradient: true
declare const rowMask: Uint8Array;
const g1 = rk.vocabDivergence(logits, logits, rowMask, { vocab: 4, returnGradient: true });
assert<Equal<typeof g1.gradient, Float32Array>>();
const g2 = rk.vocabDivergence(logits, logits, null, { vocab: 4 });
assert<Equal<typeof g2.gradient, Float32Array | undefined>>();
const g3 = rk.vocabDivergence(dev, dev, null, { vocab: 4, returnGradient: true });
assert<Equal<typeof g3.gradient, DeviceArray<'f32'>>>();
void [g1, g2, g3];

// policyLoss: gradEntropy / metrics.entropy with entropy, metrics.kl with refLogprobs
declare const lp: Float32Array;
const p1 = rk.policyLoss(lp, lp, lp, null, { seqLen: 2, entropy: lp, entropyCoef: 0.01, refLogprobs: lp });
assert<Equal<typeof p1.gradEntropy, Float32Array>>();
assert<Equal<typeof p1.metrics.kl, number>>();
assert<Equal<typeof p1.metrics.entropy, number>>();
const p2 = rk.policyLoss(lp, lp, lp, rowMask, { seqLen: 2 });
assert<Equal<typeof p2.gradEntropy, Float32Array | undefined>>();
assert<Equal<typeof p2.metrics.kl, number | undefined>>();
assert<Equal<typeof p2.gradLogprobs, Float32Array>>();
const p3 = rk.policyLoss(dev, dev, dev, null, { seqLen: 2, entropy: dev });
assert<Equal<typeof p3.gradEntropy, DeviceArray<'f32'>>>();
async function asyncPolicy() {
  const p4 = await rk.policyLossAsync(lp, lp, lp, null, { seqLen: 2, refLogprobs: lp });
  assert<Equal<typeof p4.metrics.kl, number>>();
}
void [p1, p2, p3, asyncPolicy];

// hypervolumeMetaReward: `current` picks host or device (rewards may be null on both); f64 uploads
declare const f64: Float64Array;
const h1 = rk.hypervolumeMetaReward(null, f64, f64, f64);
assert<Equal<typeof h1.rewards, Float32Array | null>>();
const h2 = rk.hypervolumeMetaReward(null, dev, dev, dev, { maximize: dev });
assert<Equal<typeof h2.rewards, DeviceArray<'f32'> | null>>();
assert<Equal<typeof h2.metaReward, number>>();
const up64 = rk.cuda.upload(f64);
assert<Equal<typeof up64, DeviceArray<'f64'>>>();
async function asyncHv() {
  const h3 = await rk.hypervolumeMetaRewardAsync(lp, f64, f64, f64);
  assert<Equal<typeof h3.rewards, Float32Array | null>>();
  const h4 = await rk.hypervolumeMetaRewardAsync(dev, rk.cuda.upload(f64), dev, dev);
  assert<Equal<typeof h4.rewards, DeviceArray<'f32'> | null>>();
}
void [h1, h2, up64, asyncHv];

// policyLossFromLogits: entropy present with returnEntropy: true or an entropyCoef; gradLogits by gradDtype
{
  const old = new Float32Array(4), adv = new Float32Array(1), half = new Uint16Array(16);
  const f1 = rk.policyLossFromLogits(logits, targets, old, adv, null, { vocab: 4, seqLen: 4 });
  assert<Equal<typeof f1.entropy, Float32Array | undefined>>();
  assert<Equal<typeof f1.gradLogits, Float32Array>>();
  const f2 = rk.policyLossFromLogits(logits, targets, old, adv, null, { vocab: 4, seqLen: 4, entropyCoef: 0.01 });
  assert<Equal<typeof f2.entropy, Float32Array>>();
  const f3 = rk.policyLossFromLogits(half, targets, old, adv, null, { vocab: 4, seqLen: 4, dtype: 'bf16', gradDtype: 'bf16', returnEntropy: true });
  assert<Equal<typeof f3.entropy, Float32Array>>();
  assert<Equal<typeof f3.gradLogits, Uint16Array>>();
  const f4 = rk.policyLossFromLogits(dev, dev, dev, dev, null, { vocab: 4, seqLen: 4, gradDtype: 'bf16' });
  assert<Equal<typeof f4.gradLogits, DeviceArray<'bf16'>>>();
  assert<Equal<typeof f4.entropy, DeviceArray<'f32'> | undefined>>();
  void (async () => {
    const f5 = await rk.policyLossFromLogitsAsync(logits, targets, old, adv, null, { vocab: 4, seqLen: 4, returnEntropy: true });
    assert<Equal<typeof f5.entropy, Float32Array>>();
  });
}
