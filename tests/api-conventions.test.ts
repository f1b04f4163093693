// The API's conventions (issue 10, item 3): a token mask is the positional argument before
// options; an option asking for an extra output is return<Name>; `lossType` is preferenceLoss's
// loss; the old spellings are a TypeError saying where they went; unknown keys name the closest
// known one, TRL / verl config names included.
import { describe, expect, it } from 'vitest';

import * as rk from '../lib/index.js';
import { randint, randn } from './helpers.js';

const B = 3, T = 5, n = B * T, V = 7, P = 4;
const lp = randn(n, 0.5, 1), old = randn(n, 0.5, 2), ref = randn(n, 0.5, 3), adv = randn(B, 1, 4);
const mask = Uint8Array.from({ length: n }, (_, i) => (i % T < 3 ? 1 : 0));
const logits = randn(B * V, 2, 6), target = randn(B * V, 2, 7), targets = randint(B, V, 8);
const pc = randn(P, 3, 9).map((x) => x - 20), pr = randn(P, 3, 10).map((x) => x - 21);
const tokLogits = randn(n * V, 2, 40), tokTargets = randint(n, V, 41); // (B * T, V) for policyLossFromLogits
const any = (f: unknown) => f as (...a: unknown[]) => unknown;

describe('masks are the positional argument before options', () => {
  it('klPenalty(logprobs, refLogprobs, mask, options): the mask weights the mean; null and absent count every element', () => {
    const m = rk.klPenalty(lp, ref, mask, { estimator: 'k1' });
    let s = 0, w = 0;
    for (let i = 0; i < n; i++) if (mask[i]) (s += lp[i] - ref[i]), w++;
    expect(m.mean).toBeCloseTo(s / w, 6);
    for (let i = 0; i < n; i++) if (!mask[i]) expect(m.kl[i]).toBe(0);
    const all = rk.klPenalty(lp, ref, null, { estimator: 'k1' });
    expect(Array.from(rk.klPenalty(lp, ref).kl)).toEqual(Array.from(rk.klPenalty(lp, ref, null, {}).kl));
    expect(all.kl[n - 1]).toBeCloseTo(lp[n - 1] - ref[n - 1], 6);
  });
  it('the old options.mask is a TypeError saying where the mask goes now (sync and Async)', async () => {
    const msg = /^options\.mask: expected the mask as a positional argument before options, klPenalty\(logprobs, refLogprobs, mask, options\), not in options, received Uint8Array\(15\)/;
    expect(() => any(rk.klPenalty)(lp, ref, null, { mask })).toThrow(TypeError);
    expect(() => any(rk.klPenalty)(lp, ref, null, { mask })).toThrow(msg);
    await expect(any(rk.klPenaltyAsync)(lp, ref, null, { mask })).rejects.toThrow(msg);
    // the old call shape, options in the mask's place
    expect(() => any(rk.klPenalty)(lp, ref, { estimator: 'k1', mask })).toThrow(/^mask: expected a mask or null before options \(klPenalty\(logprobs, refLogprobs, mask, options\)\), received an options object in its place/);
    expect(() => any(rk.vocabDivergence)(logits, target, { vocab: V })).toThrow(/^mask: expected a mask or null before options \(vocabDivergence/);
  });
  it('vocabDivergence(logits, targetLogits, mask, options): masked rows give 0 and a zero gradient row', () => {
    const rowMask = Uint8Array.of(1, 0, 1);
    const all = rk.vocabDivergence(logits, target, null, { vocab: V, returnGradient: true });
    const r = rk.vocabDivergence(logits, target, rowMask, { vocab: V, returnGradient: true });
    expect(r.divergence[1]).toBe(0);
    expect(r.divergence[0]).toBe(all.divergence[0]);
    expect(r.divergence[2]).toBe(all.divergence[2]);
    expect(all.divergence[1]).toBeGreaterThan(0);
    for (let j = 0; j < V; j++) expect(r.gradient[V + j]).toBe(0);
    expect(() => any(rk.vocabDivergence)(logits, target, null, { vocab: V, mask: rowMask })).toThrow(
      /^options\.mask: expected the per-row mask as a positional argument before options, vocabDivergence\(logits, targetLogits, mask, options\), not in options, received Uint8Array\(3\)/,
    );
  });
  it('tokenWeightedDpoLoss(chosen, rejected, chosenMask, rejectedMask, options): null masks count every token', () => {
    const o = { seqLen: T, refChosenLogps: ref, refRejectedLogps: old, chosenTokenRewards: randn(n, 1, 5), rejectedTokenRewards: randn(n, 1, 6) };
    const ones = new Uint8Array(n).fill(1);
    const a = rk.tokenWeightedDpoLoss(lp, old, ones, ones, o);
    const b = rk.tokenWeightedDpoLoss(lp, old, null, null, o);
    expect(b.loss).toBe(a.loss);
    expect(Array.from(b.gradChosen)).toEqual(Array.from(a.gradChosen));
    const w = Float32Array.from(mask, (v) => v * 0.5);
    const c = rk.tokenWeightedDpoLoss(lp, old, w, null, o); // the null one: f32 ones
    const d = rk.tokenWeightedDpoLoss(lp, old, w, new Float32Array(n).fill(1), o);
    expect(c.loss).toBe(d.loss);
    expect(() => any(rk.tokenWeightedDpoLoss)(lp, old, null, null, { ...o, rejectedMask: ones })).toThrow(
      /^options\.rejectedMask: expected the rejected mask as a positional argument before options/,
    );
  });
});

describe('an option asking for an output is return<Name>', () => {
  it('tokenLogprobs returnEntropy; the old entropy: true names the new option', async () => {
    const r = rk.tokenLogprobs(logits, targets, { vocab: V, returnEntropy: true });
    expect(r.entropy.length).toBe(B);
    expect(r.entropy[0]).toBeGreaterThan(0);
    expect(rk.tokenLogprobs(logits, targets, { vocab: V }).entropy).toBeUndefined();
    const msg = /^options\.entropy: renamed to returnEntropy \(an option named after a quantity is an input array; one asking for an output is return<Name>\): expected returnEntropy instead, received boolean true/;
    expect(() => any(rk.tokenLogprobs)(logits, targets, { vocab: V, entropy: true })).toThrow(TypeError);
    expect(() => any(rk.tokenLogprobs)(logits, targets, { vocab: V, entropy: true })).toThrow(msg);
    await expect(any(rk.tokenLogprobsAsync)(logits, targets, { vocab: V, entropy: true })).rejects.toThrow(msg);
    expect(() => any(rk.tokenLogprobs)(logits, targets, { vocab: V, returnEntropy: 1 })).toThrow(/^options\.returnEntropy: expected a boolean, received number 1/);
  });
  it('vocabDivergence returnGradient; the old gradient: true names the new option', () => {
    const r = rk.vocabDivergence(logits, target, null, { vocab: V, returnGradient: true });
    expect(r.gradient.length).toBe(B * V);
    expect(() => any(rk.vocabDivergence)(logits, target, null, { vocab: V, gradient: true })).toThrow(
      /^options\.gradient: renamed to returnGradient \(an option asking for an output is return<Name>\): expected returnGradient instead, received boolean true/,
    );
    expect(() => rk.vocabDivergence(logits, target, null, { vocab: V, gradOutput: 2 })).toThrow(/^options\.gradOutput: expected returnGradient: true alongside it/);
  });
});

describe('preferenceLoss lossType', () => {
  it('lossType picks the loss; the old loss option names lossType', () => {
    const lens = new Int32Array(P).fill(3);
    const s = rk.preferenceLoss(pc, pr, { lossType: 'simpo', chosenLengths: lens, rejectedLengths: lens });
    const d = rk.preferenceLoss(pc, pr);
    expect(s.loss).not.toBe(d.loss);
    expect(() => any(rk.preferenceLoss)(pc, pr, { loss: 'ipo' })).toThrow(
      /^options\.loss: renamed to lossType \(TRL's name; `loss` is the result's mean loss\): expected lossType instead, received string 'ipo'/,
    );
    expect(() => any(rk.preferenceLoss)(pc, pr, { lossType: 'dpo' })).toThrow(/^options\.lossType: expected one of 'sigmoid'/);
  });
});

describe('unknown keys name the closest known one, TRL and verl names included', () => {
  const cases: [string, () => unknown, string][] = [
    ['loss_type', () => any(rk.preferenceLoss)(pc, pr, { loss_type: 'ipo' }), 'lossType'],
    ['ref_chosen_logprobs', () => any(rk.preferenceLoss)(pc, pr, { ref_chosen_logprobs: pc }), 'refChosenLogps'],
    ['rpo_alpha', () => any(rk.preferenceLoss)(pc, pr, { rpo_alpha: 1 }), 'nllWeight'],
    ['epsilon', () => any(rk.policyLoss)(lp, old, adv, mask, { seqLen: T, epsilon: 0.2 }), 'epsilonLow'],
    ['clip_ratio', () => any(rk.policyLoss)(lp, old, adv, mask, { seqLen: T, clip_ratio: 0.2 }), 'epsilonLow'],
    ['clip_ratio_high', () => any(rk.policyLoss)(lp, old, adv, mask, { seqLen: T, clip_ratio_high: 0.28 }), 'epsilonHigh'],
    ['loss_type', () => any(rk.policyLoss)(lp, old, adv, mask, { seqLen: T, loss_type: 'dapo' }), 'lossType'],
    ['loss_agg_mode', () => any(rk.policyLoss)(lp, old, adv, mask, { seqLen: T, loss_agg_mode: 'token-mean' }), 'aggregation'],
    ['kl_loss_coef', () => any(rk.policyLoss)(lp, old, adv, mask, { seqLen: T, kl_loss_coef: 0.001 }), 'beta'],
    ['entropy_coeff', () => any(rk.policyLoss)(lp, old, adv, mask, { seqLen: T, entropy_coeff: 0 }), 'entropyCoef'],
    ['scale_rewards', () => any(rk.groupAdvantages)(randn(8, 1, 1), { groupSize: 4, scale_rewards: 'batch' }), 'scale'],
    ['num_generations', () => any(rk.groupAdvantages)(randn(8, 1, 1), { num_generations: 4 }), 'groupSize'],
    ['Temperature', () => any(rk.tokenLogprobs)(logits, targets, { vocab: V, Temperature: 1 }), 'temperature'],
    ['ignore_index', () => any(rk.tokenLogprobsBackward)(logits, targets, adv, { vocab: V, ignore_index: -1 }), 'ignoreIndex'],
    ['kl_estimator', () => any(rk.klPenalty)(lp, ref, null, { kl_estimator: 'k1' }), 'estimator'],
    ['seq_len', () => any(rk.valueLoss)(lp, old, ref, null, { seq_len: T }), 'seqLen'],
    ['gama', () => any(rk.gae)(lp, ref, mask, { seqLen: T, gama: 0.9 }), 'gamma'],
    ['shift_mean', () => any(rk.maskedWhiten)(ref, mask, { shift_mean: true }), 'shiftMean'],
    ['num_models', () => any(rk.ensembleRewards)(randn(6, 1, 1), { num_models: 2 }), 'numModels'],
    ['desirable_weight', () => any(rk.ktoLoss)(pc, { desirable: new Uint8Array(P), kl: 0, desirable_weight: 1 }), 'desirableWeight'],
    ['seq_len', () => any(rk.discountedReturns)(ref, mask, { seq_len: T }), 'seqLen'],
    ['epsilon_low', () => any(rk.geoMeanPolicyLoss)(lp, old, adv, mask, { seqLen: T, epsilon_low: 0.2 }), 'epsilonLow'],
    ['token_rewards', () => any(rk.tokenWeightedDpoLoss)(lp, old, null, null, { seqLen: T, token_rewards: ref }), 'chosenTokenRewards'],
    ['beta_', () => any(rk.vocabDivergence)(logits, target, null, { vocab: V, beta_: 0.5 }), 'beta'],
    ['clip_max', () => any(rk.rolloutCorrection)(lp, old, null, mask, { seqLen: T, clip_max: 2 }), 'clipMax'],
    ['vllm_importance_sampling_mode', () => any(rk.rolloutCorrection)(lp, old, null, mask, { seqLen: T, vllm_importance_sampling_mode: 'token_mask' }), 'mode'],
    ['ld_alpha', () => any(rk.ldDpoLogps)(lp, old, mask, null, { seqLen: T, ld_alpha: 0.5 }), 'alpha'],
    ['adv_estimator', () => any(rk.tokenAdvantages)(ref, mask, { seqLen: T, adv_estimator: 'remax' }), 'estimator'],
    ['loss_agg_mode', () => any(rk.reinforcePolicyLoss)(lp, old, adv, mask, { seqLen: T, loss_agg_mode: 'token-mean' }), 'aggregation'],
    ['epsilon', () => any(rk.luspoPolicyLoss)(lp, old, adv, mask, { seqLen: T, epsilon: 0.2 }), 'epsilonLow'],
    ['seq_len', () => any(rk.vespoPolicyLoss)(lp, old, adv, mask, { seq_len: T }), 'seqLen'],
    ['clip_cov_ratio', () => any(rk.clipCovPolicyLoss)(lp, old, adv, mask, { seqLen: T, clip_cov_ratio: 0.1 }), 'clipCovRatio'],
    ['kl_cov_ratio', () => any(rk.klCovPolicyLoss)(lp, old, adv, mask, { seqLen: T, kl_cov_ratio: 0.1 }), 'klCovRatio'],
    ['top_entropy_quantile', () => any(rk.highEntropyMask)(ref, mask, { top_entropy_quantile: 0.2 }), 'topQuantile'],
    ['eos_token_id', () => any(rk.maskTruncatedCompletions)(targets, null, { seqLen: 1, eos_token_id: 2 }), 'eosTokenId'],
    ['kl_penalty', () => any(rk.klRewards)(ref, lp, old, null, { seqLen: T, kl_penalty: 'k1' }), 'estimator'],
    ['global_flg', () => any(rk.copoAdvantages)(new Int32Array(4), new Float32Array(4), { groupSize: 2, global_flg: 'only-soft' }), 'gate'],
    ['clip_ratio_c', () => any(rk.copoPolicyLoss)(lp, old, adv, adv, adv, mask, { seqLen: T, clip_ratio_c: 3 }), 'dualClip'],
    ['num_objectives', () => any(rk.paretoFront)(ref, { num_objectives: 3 }), 'numObjectives'],
    ['regularization_factor', () => any(rk.rewardWeightUpdate)(ref, Float32Array.of(0.5, 0.5), { lr: 1, regularization_factor: 1e-5 }), 'mu'],
    ['maximise', () => any(rk.hypervolumeMetaReward)(null, Float64Array.of(1), new Float64Array(0), Float64Array.of(0), { maximise: new Uint8Array(1) }), 'maximize'],
    ['seq_len', () => any(rk.trajectoryBalanceLoss)(lp, old, adv, adv, null, { seq_len: T }), 'seqLen'],
    ['numObjective', () => any(rk.orderPreservingLoss)(lp, old, adv, adv, null, { seqLen: T, numObjective: 1 }), 'numObjectives'],
    ['Threshold', () => any(rk.gatedRewards)(adv, ref, mask, { seqLen: T, Threshold: 0 }), 'threshold'],
    ['gama', () => any(rk.discountedCumsum)(ref, mask, { seqLen: T, gama: 0.9 }), 'gamma'],
    ['num_rewards', () => any(rk.lagrangianMix)(lp, adv, randn(T, 1, 30), { num_rewards: T }), 'numRewards'],
    ['temprature', () => any(rk.gumbelSoftmax)(logits, { vocab: V, temprature: 0.5 }), 'temperature'],
    ['sed', () => any(rk.gumbelSoftmaxBackward)(logits, target, { vocab: V, sed: 1 }), 'seed'],
    ['move_chance', () => any(rk.drakesKl)(logits, target, null, { vocab: V, moveChance: 0.5, move_chance: 0.5 }), 'moveChance'],
    ['epsilonn', () => any(rk.d3poLoss)(lp, old, ref, lp, adv, adv, mask, { seqLen: T, epsilonn: 0.1 }), 'epsilon'],
    ['bta', () => any(rk.prdpLoss)(lp, old, ref, lp, adv, adv, mask, { seqLen: T, bta: 0.1 }), 'beta'],
    ['label_smoothing', () => any(rk.preferenceStrengthLoss)(pc, pr, { ensembleChosen: pc, ensembleRejected: pr, label_smoothing: 0.1 }), 'labelSmoothing'],
    ['cliprange', () => any(rk.p3oLoss)(lp, ref, old, old, adv, adv, mask, mask, { seqLen: T, cliprange: 0.2 }), 'epsilon'],
    ['cliprange_ratio', () => any(rk.p3oLoss)(lp, ref, old, old, adv, adv, mask, mask, { seqLen: T, surrogate: 'trlx', cliprange_ratio: 10 }), 'weightClip'],
    ['scale_q', () => any(rk.p3oLoss)(lp, ref, old, old, adv, adv, mask, mask, { seqLen: T, surrogate: 'trlx', scale_q: true }), 'scaleByStd'],
    ['clip_tokenwise', () => any(rk.p3oLoss)(lp, ref, old, old, adv, adv, mask, mask, { seqLen: T, surrogate: 'trlx', clip_tokenwise: true }), 'clip'],
    ['avg_tokenwise', () => any(rk.p3oLoss)(lp, ref, old, old, adv, adv, mask, mask, { seqLen: T, surrogate: 'trlx', avg_tokenwise: false }), 'normalizeByTokens'],
    ['kl_coef', () => any(rk.p3oLoss)(lp, ref, old, old, adv, adv, mask, mask, { seqLen: T, surrogate: 'trlx', kl_coef: 0.05 }), 'beta'],
    ['ref_logprobs', () => any(rk.p3oLoss)(lp, ref, old, old, adv, adv, mask, mask, { seqLen: T, surrogate: 'trlx', ref_logprobs: ref }), 'refLogprobs1'],
    ['clip_ratio', () => any(rk.policyLossFromLogits)(tokLogits, tokTargets, old, adv, mask, { vocab: V, seqLen: T, clip_ratio: 0.2 }), 'epsilonLow'],
  ];
  for (const [key, call, want] of cases) {
    it(`${key} -> ${want}`, () => {
      expect(call).toThrow(TypeError);
      expect(call).toThrow(new RegExp(`^options\\.${key}: not an option of \\w+ \\(did you mean '${want}'\\?\\)`));
    });
  }
  it('every op is covered', () => {
    const ops = Object.keys(rk).filter((k) => typeof (rk as Record<string, unknown>)[`${k}Async`] === 'function');
    const opOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as Error).message.match(/not an option of (\w+)/)![1];
      }
      return '';
    };
    const covered = new Set(cases.map(([, f]) => opOf(f)));
    expect(ops.filter((o) => !covered.has(o))).toEqual([]);
  });
});

describe('BigInt64Array token ids (onnxruntime int64)', () => {
  const ids64 = BigInt64Array.from(targets, (v) => BigInt(v));
  it('tokenLogprobs / tokenLogprobsBackward (sync and Async): the results of the Int32Array ids', async () => {
    const want = rk.tokenLogprobs(logits, targets, { vocab: V, returnEntropy: true });
    const got = rk.tokenLogprobs(logits, ids64, { vocab: V, returnEntropy: true });
    expect(Array.from(got.logprobs)).toEqual(Array.from(want.logprobs));
    expect(Array.from(got.entropy)).toEqual(Array.from(want.entropy));
    const a = await rk.tokenLogprobsAsync(logits, ids64, { vocab: V });
    expect(Array.from(a.logprobs)).toEqual(Array.from(want.logprobs));
    const g = Float32Array.of(0.5, -1, 2);
    const wantG = rk.tokenLogprobsBackward(logits, targets, g, { vocab: V });
    expect(Array.from(rk.tokenLogprobsBackward(logits, ids64, g, { vocab: V }))).toEqual(Array.from(wantG));
    expect(Array.from(await rk.tokenLogprobsBackwardAsync(logits, ids64, g, { vocab: V }))).toEqual(Array.from(wantG));
    // ignoreIndex rows
    const withIgnored = BigInt64Array.of(BigInt(targets[0]), BigInt(-100), BigInt(targets[2]));
    expect(rk.tokenLogprobs(logits, withIgnored, { vocab: V }).logprobs[1]).toBe(0);
  });
  it('ids outside int32 are a RangeError naming the argument, index and value; the op range check still applies', async () => {
    const big = BigInt64Array.of(BigInt(1), BigInt(2) ** BigInt(40), BigInt(0));
    expect(() => rk.tokenLogprobs(logits, big, { vocab: V })).toThrow(RangeError);
    expect(() => rk.tokenLogprobs(logits, big, { vocab: V })).toThrow(/^targets\[1\]: expected an id in the int32 range \[-2147483648, 2147483647\], received 1099511627776$/);
    await expect(rk.tokenLogprobsAsync(logits, big, { vocab: V })).rejects.toThrow(/^targets\[1\]: expected an id in the int32 range/);
    const neg = BigInt64Array.of(BigInt(1), BigInt(0), -(BigInt(2) ** BigInt(31)) - BigInt(1));
    expect(() => rk.tokenLogprobsBackward(logits, neg, adv, { vocab: V })).toThrow(/^targets\[2\]: expected an id in the int32 range .*received -2147483649$/);
    const outOfVocab = BigInt64Array.of(BigInt(1), BigInt(V), BigInt(0));
    expect(() => rk.tokenLogprobs(logits, outOfVocab, { vocab: V })).toThrow(/^targets\[1\]: expected an id in \[0, 7\) or ignoreIndex \(-100\), received 7$/);
    expect(() => rk.tokenLogprobs(logits, BigInt64Array.of(BigInt(1)), { vocab: V })).toThrow(/^targets: expected length 3, received length 1$/);
  });
  it('vocabDivergence labels and groupAdvantages groupIds', async () => {
    const labels = Int32Array.of(1, -100, 2);
    const want = rk.vocabDivergence(logits, target, null, { vocab: V, labels, returnGradient: true });
    const got = rk.vocabDivergence(logits, target, null, { vocab: V, labels: BigInt64Array.from(labels, (v) => BigInt(v)), returnGradient: true });
    expect(Array.from(got.divergence)).toEqual(Array.from(want.divergence));
    expect(Array.from(got.gradient)).toEqual(Array.from(want.gradient));
    expect(got.divergence[1]).toBe(0);
    const asy = await rk.vocabDivergenceAsync(logits, target, null, { vocab: V, labels: BigInt64Array.from(labels, (v) => BigInt(v)) });
    expect(Array.from(asy.divergence)).toEqual(Array.from(want.divergence));
    expect(() => rk.vocabDivergence(logits, target, null, { vocab: V, labels: BigInt64Array.of(BigInt(0), BigInt(2) ** BigInt(33), BigInt(0)) })).toThrow(
      /^options\.labels\[1\]: expected an id in the int32 range/,
    );
    const r = randn(12, 1, 40), ids = Int32Array.from({ length: 12 }, (_, i) => i % 3);
    const wantG = rk.groupAdvantages(r, { groupIds: ids });
    const gotG = rk.groupAdvantages(r, { groupIds: BigInt64Array.from(ids, (v) => BigInt(v)) });
    expect(Array.from(gotG.advantages)).toEqual(Array.from(wantG.advantages));
    const gotA = await rk.groupAdvantagesAsync(r, { groupIds: BigInt64Array.from(ids, (v) => BigInt(v)) });
    expect(Array.from(gotA.advantages)).toEqual(Array.from(wantG.advantages));
    expect(() => rk.groupAdvantages(r, { groupIds: BigInt64Array.from(ids, (v) => BigInt(v) + BigInt(2) ** BigInt(32)) })).toThrow(/^options\.groupIds\[0\]: expected an id in the int32 range/);
    expect(() => rk.groupAdvantages(r, { groupIds: BigInt64Array.from(ids, (v) => BigInt(v) + BigInt(12)) })).toThrow(/^options\.groupIds\[0\]: expected a group id in \[0, 12\)/);
  });
});

describe("preset: 'trl' | 'verl' (explicit options win)", () => {
  const bits = (r: { loss: number; gradLogprobs: Float32Array }) => [r.loss, ...Array.from(r.gradLogprobs)];
  const A = Float32Array.of(1.5, -2, 0.7); // one per sequence
  const lpFar = lp.map((v, i) => v + (i % 2 ? 1.2 : -0.9)); // ratios far outside the clip range
  it('policyLoss trl: beta 0 with refLogprobs, aggregation token-mean (sapo: seq-mean-token-mean), epsilonHigh = epsilonLow', () => {
    const base = { seqLen: T, refLogprobs: ref };
    const got = rk.policyLoss(lpFar, old, A, mask, { ...base, preset: 'trl' });
    expect(bits(got)).toEqual(bits(rk.policyLoss(lpFar, old, A, mask, { ...base, beta: 0, aggregation: 'token-mean' })));
    expect(got.loss).not.toBe(rk.policyLoss(lpFar, old, A, mask, base).loss); // ours: beta 0.001
    expect(bits(rk.policyLoss(lpFar, old, A, mask, { ...base, preset: 'trl', beta: 0.05 }))).toEqual(bits(rk.policyLoss(lpFar, old, A, mask, { ...base, beta: 0.05 })));
    const uneven = Uint8Array.from({ length: n }, (_, i) => (i % T < [2, 4, 5][Math.floor(i / T)] ? 1 : 0));
    const gspo = rk.policyLoss(lpFar, old, A, uneven, { seqLen: T, variant: 'gspo', preset: 'trl' });
    expect(bits(gspo)).toEqual(bits(rk.policyLoss(lpFar, old, A, uneven, { seqLen: T, variant: 'gspo', aggregation: 'token-mean' })));
    expect(gspo.loss).not.toBe(rk.policyLoss(lpFar, old, A, uneven, { seqLen: T, variant: 'gspo' }).loss); // ours: seq-mean-token-mean
    const sapo = rk.policyLoss(lpFar, old, A, mask, { seqLen: T, variant: 'sapo', preset: 'trl' });
    expect(bits(sapo)).toEqual(bits(rk.policyLoss(lpFar, old, A, mask, { seqLen: T, variant: 'sapo', aggregation: 'seq-mean-token-mean' })));
    expect(bits(rk.policyLoss(lpFar, old, A, mask, { seqLen: T, epsilonLow: 0.3, preset: 'trl' }))).toEqual(
      bits(rk.policyLoss(lpFar, old, A, mask, { seqLen: T, epsilonLow: 0.3, epsilonHigh: 0.3 })),
    );
    const cispo = rk.policyLoss(lpFar, old, A, mask, { seqLen: T, variant: 'cispo', preset: 'trl' });
    expect(bits(cispo)).toEqual(bits(rk.policyLoss(lpFar, old, A, mask, { seqLen: T, variant: 'cispo', epsilonHigh: 0.2 })));
    expect(cispo.loss).not.toBe(rk.policyLoss(lpFar, old, A, mask, { seqLen: T, variant: 'cispo' }).loss); // ours: cap 5
  });
  it('policyLoss verl: dual clip 3 for ppo', () => {
    const neg = Float32Array.of(-1, -2, -0.5);
    const big = lp.map((v) => v + 2); // ratio e^2 > 3: the dual clip binds for A < 0
    const got = rk.policyLoss(big, lp, neg, null, { seqLen: T, preset: 'verl' });
    expect(bits(got)).toEqual(bits(rk.policyLoss(big, lp, neg, null, { seqLen: T, dualClip: 3 })));
    expect(got.loss).not.toBe(rk.policyLoss(big, lp, neg, null, { seqLen: T }).loss);
    expect(got.metrics.dualClipFraction).toBeGreaterThan(0);
    expect(bits(rk.policyLoss(big, lp, neg, null, { seqLen: T, preset: 'verl', dualClip: 5 }))).toEqual(bits(rk.policyLoss(big, lp, neg, null, { seqLen: T, dualClip: 5 })));
  });
  it("policyLoss lossType (TRL GRPOConfig.loss_type) sets the aggregation", () => {
    for (const [t, agg] of [['grpo', 'seq-mean-token-mean'], ['bnpo', 'token-mean'], ['dapo', 'token-mean'], ['dr_grpo', 'seq-mean-token-sum-norm']] as const) {
      expect(bits(rk.policyLoss(lpFar, old, A, mask, { seqLen: T, lossType: t })), t).toEqual(bits(rk.policyLoss(lpFar, old, A, mask, { seqLen: T, aggregation: agg })));
    }
    expect(() => rk.policyLoss(lp, old, A, mask, { seqLen: T, lossType: 'grpo', aggregation: 'token-mean' })).toThrow(
      /^options\.lossType: sets the aggregation \('seq-mean-token-mean'\), expected undefined beside options\.aggregation, received 'grpo'/,
    );
    expect(() => any(rk.policyLoss)(lp, old, A, mask, { seqLen: T, lossType: 'luspo' })).toThrow(/^options\.lossType: expected one of 'grpo', 'bnpo', 'dapo', 'dr_grpo'/);
  });
  it('preferenceLoss trl: SimPO beta 0.1 (CPOConfig), fAlpha 0.5 (DPOConfig); verl has none', () => {
    const lens = new Int32Array(P).fill(4);
    const simpo = { lossType: 'simpo' as const, chosenLengths: lens, rejectedLengths: lens };
    const got = rk.preferenceLoss(pc, pr, { ...simpo, preset: 'trl' });
    expect(got.loss).toBe(rk.preferenceLoss(pc, pr, { ...simpo, beta: 0.1 }).loss);
    expect(got.loss).not.toBe(rk.preferenceLoss(pc, pr, simpo).loss); // ours: beta 2.0
    expect(rk.preferenceLoss(pc, pr, { ...simpo, preset: 'trl', beta: 1.5 }).loss).toBe(rk.preferenceLoss(pc, pr, { ...simpo, beta: 1.5 }).loss);
    const refs = { refChosenLogps: pc.map((v) => v + 0.3), refRejectedLogps: pr.map((v) => v - 0.2) };
    const alpha = rk.preferenceLoss(pc, pr, { ...refs, fDivergence: 'alpha_divergence', preset: 'trl' });
    expect(alpha.loss).toBe(rk.preferenceLoss(pc, pr, { ...refs, fDivergence: 'alpha_divergence', fAlpha: 0.5 }).loss);
    expect(rk.preferenceLoss(pc, pr, { ...refs, preset: 'trl' }).loss).toBe(rk.preferenceLoss(pc, pr, refs).loss); // DPO: ours
    expect(() => any(rk.preferenceLoss)(pc, pr, { preset: 'verl' })).toThrow(/^options\.preset: preferenceLoss has no verl preset \(verl has no DPO-family trainer config\), expected 'trl' or undefined, received 'verl'/);
    expect(() => any(rk.preferenceLoss)(pc, pr, { preset: 'TRL' })).toThrow(/^options\.preset: expected one of 'trl', 'verl', received string 'TRL'/);
  });
  it('ktoLoss trl: its defaults are ours; verl has none', () => {
    const o = { desirable: Uint8Array.of(1, 0, 1, 0), kl: 0.1, refLogps: pc.map((v) => v + 0.5) };
    expect(rk.ktoLoss(pc, { ...o, preset: 'trl' }).loss).toBe(rk.ktoLoss(pc, o).loss);
    expect(() => any(rk.ktoLoss)(pc, { ...o, preset: 'verl' })).toThrow(/^options\.preset: ktoLoss has no verl preset/);
  });
  it('groupAdvantages verl: eps 1e-6; trl: ours', () => {
    const r = Float32Array.of(1, 1, 1, 1.00001, 0, 1, 0, 1);
    const v = rk.groupAdvantages(r, { groupSize: 4, preset: 'verl' });
    expect(Array.from(v.advantages)).toEqual(Array.from(rk.groupAdvantages(r, { groupSize: 4, eps: 1e-6 }).advantages));
    expect(v.advantages[3]).not.toBe(rk.groupAdvantages(r, { groupSize: 4 }).advantages[3]);
    expect(Array.from(rk.groupAdvantages(r, { groupSize: 4, preset: 'trl' }).advantages)).toEqual(Array.from(rk.groupAdvantages(r, { groupSize: 4 }).advantages));
  });
  it('valueLoss trl: cliprangeValue 0.2; gae trl: lambda 0.95', () => {
    const vals = lp.map((x) => x * 3);
    const got = rk.valueLoss(vals, ref, old, mask, { seqLen: T, preset: 'trl' });
    expect(got.loss).toBe(rk.valueLoss(vals, ref, old, mask, { seqLen: T, cliprangeValue: 0.2 }).loss);
    expect(got.loss).not.toBe(rk.valueLoss(vals, ref, old, mask, { seqLen: T }).loss);
    expect(rk.valueLoss(vals, ref, old, mask, { seqLen: T, preset: 'verl' }).loss).toBe(rk.valueLoss(vals, ref, old, mask, { seqLen: T }).loss);
    const g = rk.gae(lp, ref, mask, { seqLen: T, preset: 'trl' });
    expect(Array.from(g.advantages)).toEqual(Array.from(rk.gae(lp, ref, mask, { seqLen: T, lambda: 0.95 }).advantages));
    expect(Array.from(g.advantages)).not.toEqual(Array.from(rk.gae(lp, ref, mask, { seqLen: T }).advantages));
  });
  it('Async forms read the preset too', async () => {
    const base = { seqLen: T, refLogprobs: ref };
    expect((await rk.policyLossAsync(lpFar, old, A, mask, { ...base, preset: 'trl' })).loss).toBe(rk.policyLoss(lpFar, old, A, mask, { ...base, beta: 0 }).loss);
  });
});

describe('gae, discountedReturns and maskedWhiten: a null mask counts every token', () => {
  it('null equals a mask of ones, sync and Async', async () => {
    const ones = new Uint8Array(n).fill(1);
    expect(Array.from(rk.gae(lp, ref, null, { seqLen: T, lambda: 0.9 }).advantages)).toEqual(Array.from(rk.gae(lp, ref, ones, { seqLen: T, lambda: 0.9 }).advantages));
    expect(Array.from(rk.discountedReturns(ref, null, { seqLen: T, gamma: 0.9 }))).toEqual(Array.from(rk.discountedReturns(ref, ones, { seqLen: T, gamma: 0.9 })));
    expect(Array.from(rk.maskedWhiten(ref, null))).toEqual(Array.from(rk.maskedWhiten(ref, ones)));
    expect(Array.from(await rk.maskedWhitenAsync(ref, null))).toEqual(Array.from(rk.maskedWhiten(ref, ones)));
    expect(Array.from((await rk.gaeAsync(lp, ref, null, { seqLen: T })).returns)).toEqual(Array.from(rk.gae(lp, ref, ones, { seqLen: T }).returns));
    // and a real mask still differs
    expect(Array.from(rk.maskedWhiten(ref, mask))).not.toEqual(Array.from(rk.maskedWhiten(ref, ones)));
    expect(() => any(rk.maskedWhiten)(ref, [1, 0])).toThrow(/^mask: expected a Uint8Array, a Float32Array or null, received Array\(2\)/);
  });
});
