// Advantage estimators (KERNELS.md section 2): group-normalised outcome advantages (GRPO family,
// RLOO, REINFORCE++ baseline, OPO, pass@k, BNPO, GDPO), reward-model ensembles, and token-level
// GAE / discounted returns / masked whitening on padded [B, T] tensors.
//
// NaN rewards are missing values (TRL's nanmean/nanstd): left out of every statistic, and a sample
// with no reward gets advantage 0. See docs/advantages.md for every edge case.
import { describe, finiteIn, oneOf, options as optionsObject, outFloat32, typedArray, typedArrayOfLength } from './check.js';
import {
  alloc,
  cudaNative,
  DeviceArray,
  deviceArg,
  devicePointer,
  rejectDevice,
  runDevice,
  runDeviceAsync,
  type DeviceCall,
} from './cuda.js';
import { binding } from './native.js';
import type { TokenMask } from './types.js';

export type AdvantageEstimator = 'grpo' | 'rloo' | 'reinforce_pp_baseline' | 'opo' | 'passk' | 'bnpo';
export type AdvantageScale = 'group' | 'batch' | 'none';
export type MultiRewardMode = 'sum_then_normalize' | 'normalize_then_sum';

export interface GroupAdvantagesOptions {
  /** Contiguous groups of this many samples (the GRPO layout). Give this or `groupIds`. */
  groupSize?: number;
  /** Group of each sample, (n) ids in [0, n), any order, any group sizes. */
  groupIds?: Int32Array;
  /** Default 'grpo'. */
  estimator?: AdvantageEstimator;
  /** grpo and passk: divide by the group std (default, TRL/verl), the batch std (TRL 'batch') or nothing ('none', Dr. GRPO). */
  scale?: AdvantageScale;
  /** Added to the std before dividing. Default 1e-4 (TRL; verl uses 1e-6). */
  eps?: number;
  /** K rewards per sample: `rewards` is (n, K) row-major. Default 1. */
  numRewards?: number;
  /** Weight of each reward, (K). Default ones. */
  rewardWeights?: ArrayLike<number>;
  /** How K > 1 rewards combine: weighted sum first (default, TRL) or GDPO's per-reward z-scores ('normalize_then_sum', grpo only). */
  multiReward?: MultiRewardMode;
  /** Response lengths (n) >= 0: required by opo; optional for reinforce_pp_baseline (token-weighted whitening, as verl). */
  lengths?: Int32Array;
  /** bnpo: rewards are mapped to [0, 1] by (r - rewardMin) / (rewardMax - rewardMin). Defaults 0 and 1. */
  rewardMin?: number;
  rewardMax?: number;
  /** Caller-owned outputs: advantages (n); groupMean and groupStd (numGroups, or numGroups * K with normalize_then_sum). */
  out?: { advantages?: Float32Array; groupMean?: Float32Array; groupStd?: Float32Array };
}

export interface GroupAdvantagesResult {
  /** One advantage per sample, (n). */
  advantages: Float32Array;
  /** The baseline each group's samples were compared with (see docs for each estimator), (numGroups) or (numGroups, K). */
  groupMean: Float32Array;
  /** Unbiased std of each group's rewards (1 for a group of one, as verl), (numGroups) or (numGroups, K). */
  groupStd: Float32Array;
  /** Groups with at least two rewards, all equal: their GRPO signal is zero (TRL #3857). */
  zeroStdGroups: number;
  /** Number of groups: n / groupSize, or max(groupIds) + 1. */
  numGroups: number;
}

export type EnsembleMethod = 'mean' | 'min' | 'uwo';
export interface EnsembleRewardsOptions {
  /** M reward models: `rewards` is (n, M) row-major. */
  numModels: number;
  /** 'mean' (default), 'min' (worst case, WCO) or 'uwo' (mean - lambda * population variance). */
  method?: EnsembleMethod;
  /** uwo's variance penalty, >= 0; required for 'uwo'. */
  lambda?: number;
  out?: Float32Array;
}

export type { TokenMask } from './types.js';

export interface GaeOptions {
  /** T, the padded sequence length: values, rewards and mask are (B, T) row-major. */
  seqLen: number;
  /** Discount. Default 1 (verl). */
  gamma?: number;
  /** GAE lambda. Default 1 (verl). */
  lambda?: number;
  /** Also whiten the advantages over the response tokens (verl and TRL do after GAE). Default false. */
  whiten?: boolean;
  out?: { advantages?: Float32Array; returns?: Float32Array };
}
export interface GaeResult {
  advantages: Float32Array;
  /** advantages + values (before any whitening), 0 at masked positions. */
  returns: Float32Array;
}

export interface DiscountedReturnsOptions {
  seqLen: number;
  /** Default 1. */
  gamma?: number;
  out?: Float32Array;
}

export interface MaskedWhitenOptions {
  /** true (default): zero mean; false: add the mean back (verl shift_mean). */
  shiftMean?: boolean;
  /** Bessel-corrected variance (default true, verl). */
  unbiased?: boolean;
  /** Added to the variance under the square root. Default 1e-8 (verl). */
  eps?: number;
  out?: Float32Array;
}

type AsyncFn = (...args: unknown[]) => Promise<undefined>;
interface AdvantagesBinding {
  groupAdvantages(...args: unknown[]): number;
  groupAdvantagesAsync: AsyncFn;
  ensembleRewards(...args: unknown[]): undefined;
  ensembleRewardsAsync: AsyncFn;
  gae(...args: unknown[]): undefined;
  gaeAsync: AsyncFn;
  discountedReturns(...args: unknown[]): undefined;
  discountedReturnsAsync: AsyncFn;
  maskedWhiten(...args: unknown[]): undefined;
  maskedWhitenAsync: AsyncFn;
}
const native = binding<AdvantagesBinding>();

const ESTIMATORS: readonly AdvantageEstimator[] = ['grpo', 'rloo', 'reinforce_pp_baseline', 'opo', 'passk', 'bnpo'];
const SCALES: readonly AdvantageScale[] = ['group', 'batch', 'none'];
const MULTI: readonly MultiRewardMode[] = ['sum_then_normalize', 'normalize_then_sum'];
const METHODS: readonly EnsembleMethod[] = ['mean', 'min', 'uwo'];
const MAX_INT = 2 ** 31 - 1;

function positiveInt(v: unknown, name: string): number {
  if (typeof v !== 'number') throw new TypeError(`${name}: expected a positive integer, received ${describe(v)}`);
  if (!Number.isInteger(v) || v < 1 || v > MAX_INT) throw new RangeError(`${name}: expected a positive integer, received ${v}`);
  return v;
}

/** The options of groupAdvantages that do not depend on where the rewards live. */
function scalarOptions(opts: Partial<GroupAdvantagesOptions | DeviceGroupAdvantagesOptions>, length: number) {
  const K = opts.numRewards === undefined ? 1 : positiveInt(opts.numRewards, 'options.numRewards');
  if (length % K !== 0) {
    throw new RangeError(`rewards: expected a length that is a multiple of numRewards (${K}), received length ${length}`);
  }
  const n = length / K;
  const estimator = opts.estimator === undefined ? 'grpo' : oneOf(opts.estimator, 'options.estimator', ESTIMATORS);
  const scale = opts.scale === undefined ? 'group' : oneOf(opts.scale, 'options.scale', SCALES);
  const multi = opts.multiReward === undefined ? 'sum_then_normalize' : oneOf(opts.multiReward, 'options.multiReward', MULTI);
  if (multi === 'normalize_then_sum' && estimator !== 'grpo') {
    throw new RangeError(`options.multiReward: 'normalize_then_sum' (GDPO) is a grpo estimator, received estimator '${estimator}'`);
  }
  const eps = opts.eps === undefined ? 1e-4 : finiteIn(opts.eps, 'options.eps', 0, Infinity);
  let weights: Float64Array | null = null;
  if (opts.rewardWeights !== undefined) {
    const w = opts.rewardWeights as unknown;
    if (!(Array.isArray(w) || w instanceof Float32Array || w instanceof Float64Array)) {
      throw new TypeError(`options.rewardWeights: expected an array of ${K} numbers, received ${describe(w)}`);
    }
    if (w.length !== K) {
      throw new RangeError(`options.rewardWeights: expected length ${K} (numRewards), received length ${w.length}`);
    }
    weights = new Float64Array(K);
    for (let k = 0; k < K; k++) weights[k] = finiteIn(w[k], `options.rewardWeights[${k}]`, -Infinity, Infinity);
  }
  return { K, n, estimator, scale, multi, eps, weights };
}

function prepareGroup(rewards: unknown, options: unknown) {
  const opts = optionsObject<GroupAdvantagesOptions>(options, 'options', true);
  if (!(rewards instanceof Float32Array)) {
    throw new TypeError(`rewards: expected a Float32Array, received ${describe(rewards)}`);
  }
  typedArray(rewards, 'rewards', Float32Array);
  const { K, n, estimator, scale, multi, eps, weights } = scalarOptions(opts, rewards.length);

  let groupSize = 0;
  let ids: Int32Array | null = null;
  let numGroups: number;
  if (opts.groupIds !== undefined) {
    if (opts.groupSize !== undefined) {
      throw new TypeError('options.groupSize: expected either groupSize or groupIds, received both');
    }
    ids = typedArrayOfLength(opts.groupIds, 'options.groupIds', Int32Array, n);
    let max = -1;
    for (let i = 0; i < n; i++) {
      const g = ids[i];
      if (g < 0 || g >= n) {
        throw new RangeError(`options.groupIds[${i}]: expected a group id in [0, ${n}) (n samples), received ${g}`);
      }
      if (g > max) max = g;
    }
    numGroups = max + 1;
  } else {
    if (opts.groupSize === undefined) {
      throw new TypeError('options.groupSize: expected a positive integer (or options.groupIds), received undefined');
    }
    groupSize = positiveInt(opts.groupSize, 'options.groupSize');
    if (n % groupSize !== 0) {
      throw new RangeError(`options.groupSize: expected a divisor of the number of samples (${n}), received ${groupSize}`);
    }
    numGroups = n / groupSize;
  }

  let lengths: Int32Array | null = null;
  if (opts.lengths !== undefined) {
    lengths = typedArrayOfLength(opts.lengths, 'options.lengths', Int32Array, n);
    for (let i = 0; i < n; i++) {
      if (lengths[i] < 0) throw new RangeError(`options.lengths[${i}]: expected a length >= 0, received ${lengths[i]}`);
    }
  } else if (estimator === 'opo') {
    throw new TypeError("options.lengths: expected an Int32Array of response lengths for estimator 'opo', received undefined");
  }
  if (estimator === 'passk') {
    if (groupSize === 1) throw new RangeError('options.groupSize: passk needs groups of at least 2 samples, received 1');
    if (ids) {
      const count = new Int32Array(numGroups);
      for (let i = 0; i < n; i++) count[ids[i]]++;
      for (let g = 0; g < numGroups; g++) {
        if (count[g] === 1) throw new RangeError(`options.groupIds: passk needs groups of at least 2 samples, group ${g} has 1`);
      }
    }
  }
  let rewardMin = 0, rewardMax = 1;
  if (estimator === 'bnpo') {
    if (opts.rewardMin !== undefined) rewardMin = finiteIn(opts.rewardMin, 'options.rewardMin', -Infinity, Infinity);
    if (opts.rewardMax !== undefined) rewardMax = finiteIn(opts.rewardMax, 'options.rewardMax', -Infinity, Infinity);
    if (!(rewardMax > rewardMin)) {
      throw new RangeError(`options.rewardMax: expected a number above rewardMin (${rewardMin}), received ${rewardMax}`);
    }
  }
  const statLen = multi === 'normalize_then_sum' ? numGroups * K : numGroups;
  const out = opts.out === undefined ? undefined : optionsObject<NonNullable<GroupAdvantagesOptions['out']>>(opts.out, 'options.out', true);
  const advantages = outFloat32(out?.advantages, 'options.out.advantages', n);
  const groupMean = outFloat32(out?.groupMean, 'options.out.groupMean', statLen);
  const groupStd = outFloat32(out?.groupStd, 'options.out.groupStd', statLen);
  const small = n <= smallN && groupSize > 0 && multi === 'sum_then_normalize' &&
    (estimator === 'grpo' || estimator === 'rloo' || estimator === 'opo' || estimator === 'passk');
  return {
    rewards, K, weights, groupSize, ids, numGroups, est: ESTIMATORS.indexOf(estimator), scale: SCALES.indexOf(scale),
    multi: MULTI.indexOf(multi), eps, lengths, rewardMin, rewardMax, advantages, groupMean, groupStd, small,
  };
}

function nativeArgs(p: ReturnType<typeof prepareGroup>, zeroOut: Float64Array | null): unknown[] {
  return [
    p.rewards, p.K, p.weights, p.groupSize, p.ids, p.numGroups, p.est, p.scale, p.multi, p.eps, p.lengths,
    p.rewardMin, p.rewardMax, p.advantages, p.groupMean, p.groupStd, zeroOut,
  ];
}

// ---- Small-call path ------------------------------------------------------------------------
// A trainer calls groupAdvantages once per step on a few dozen rewards, where the N-API call costs
// more than the arithmetic. Below SMALL_N samples, contiguous groups with estimators grpo, rloo, opo
// and passk (sum_then_normalize) are computed here, in double, in the same order as the C++ kernel
// (native/kernels/advantages.cc group_stat / estimate), so both give the same float32 results.
let smallN = 512;
/** @internal Tests force one path or the other (0 = always native). Returns the previous value. */
export function _setSmallPathThreshold(n: number): number {
  const prev = smallN;
  smallN = n;
  return prev;
}

function smallPath(
  r: Float32Array, K: number, w: Float64Array | null, G: number, est: number, scale: number, eps: number,
  lengths: Int32Array | null, adv: Float32Array, gmean: Float32Array, gstd: Float32Array,
): number {
  const n = adv.length;
  let x: Float32Array | Float64Array = r;
  if (K > 1 || w) {
    const xs = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0, any = false;
      for (let k = 0; k < K; k++) {
        const v = r[i * K + k];
        if (v !== v) continue;
        s += (w ? w[k] : 1) * v;
        any = true;
      }
      xs[i] = any ? s : NaN;
    }
    x = xs;
  }
  let denomBatch = 1;
  if (scale === 1 && (est === 0 || est === 4)) {
    let c = 0, s = 0;
    for (let i = 0; i < n; i++) if (x[i] === x[i]) c += 1;
    for (let i = 0; i < n; i++) if (x[i] === x[i]) s += x[i];
    let sd = 0;
    if (c >= 2) {
      const m = s / c;
      let ss = 0;
      for (let i = 0; i < n; i++) if (x[i] === x[i]) ss += (x[i] - m) * (x[i] - m);
      sd = Math.sqrt(ss / (c - 1));
    }
    denomBatch = sd + eps;
  }
  const lens = est === 3 ? lengths : null;
  let zero = 0;
  for (let g = 0, b = 0; b < n; g++, b += G) {
    const e = b + G;
    // four interleaved accumulators combined as (a0 + a1) + (a2 + a3), as the kernel's group_stat
    // (a missing reward adds 0 there too)
    let c = 0, a0 = 0, a1 = 0, a2 = 0, a3 = 0, mn = Infinity, mx = -Infinity, best = -1, sl = 0, slx = 0;
    let i = b;
    for (; i + 4 <= e; i += 4) {
      const v0 = x[i], v1 = x[i + 1], v2 = x[i + 2], v3 = x[i + 3];
      if (v0 === v0) { c++; a0 += v0; if (v0 < mn) mn = v0; if (v0 > mx) mx = v0; }
      if (v1 === v1) { c++; a1 += v1; if (v1 < mn) mn = v1; if (v1 > mx) mx = v1; }
      if (v2 === v2) { c++; a2 += v2; if (v2 < mn) mn = v2; if (v2 > mx) mx = v2; }
      if (v3 === v3) { c++; a3 += v3; if (v3 < mn) mn = v3; if (v3 > mx) mx = v3; }
    }
    if (i < e) { const v = x[i]; if (v === v) { c++; a0 += v; if (v < mn) mn = v; if (v > mx) mx = v; } }
    if (i + 1 < e) { const v = x[i + 1]; if (v === v) { c++; a1 += v; if (v < mn) mn = v; if (v > mx) mx = v; } }
    if (i + 2 < e) { const v = x[i + 2]; if (v === v) { c++; a2 += v; if (v < mn) mn = v; if (v > mx) mx = v; } }
    if (lens) {
      for (let k = b; k < e; k++) {
        const v = x[k];
        if (v !== v) continue;
        sl += lens[k];
        slx += lens[k] * v;
      }
    }
    const sum = a0 + a1 + (a2 + a3);
    let mean = NaN, base = NaN, sc = NaN, second = -Infinity;
    if (c > 0) {
      if (mn === mx) mean = mn;
      else {
        mean = sum / c;
        let q0 = 0, q1 = 0, q2 = 0, q3 = 0, k = b;
        for (; k + 4 <= e; k += 4) {
          const d0 = x[k] - mean, d1 = x[k + 1] - mean, d2 = x[k + 2] - mean, d3 = x[k + 3] - mean;
          if (d0 === d0) q0 += d0 * d0;
          if (d1 === d1) q1 += d1 * d1;
          if (d2 === d2) q2 += d2 * d2;
          if (d3 === d3) q3 += d3 * d3;
        }
        if (k < e) { const d = x[k] - mean; if (d === d) q0 += d * d; }
        if (k + 1 < e) { const d = x[k + 1] - mean; if (d === d) q1 += d * d; }
        if (k + 2 < e) { const d = x[k + 2] - mean; if (d === d) q2 += d * d; }
        var ss = q0 + q1 + (q2 + q3);
      }
      if (c >= 2) {
        const equal = mn === mx;
        if (equal) zero++;
        sc = equal ? 0 : Math.sqrt(ss! / (c - 1));
        base = lens && !equal && sl > 0 ? slx / sl : mean;
        if (est === 4) {
          for (let i = b; i < e && best < 0; i++) if (x[i] === mx) best = i;
          for (let i = b; i < e; i++) {
            const v = x[i];
            if (i === best || v !== v) continue;
            if (v > second) second = v;
          }
        }
      } else {
        base = 0;
        sc = 1;
      }
    }
    gmean[g] = base;
    gstd[g] = sc;
    let mul = 1;
    if (est === 0 || est === 4) mul = 1 / (scale === 0 ? sc + eps : scale === 1 ? denomBatch : 1);
    else if (est === 1 && c >= 2) {
      mul = c / (c - 1);
      base = mean;
    }
    if (est === 4) {
      for (let i = b; i < e; i++) adv[i] = c >= 2 && i === best ? (mx - second) * mul : 0;
      continue;
    }
    for (let i = b; i < e; i++) {
      const v = x[i];
      adv[i] = v === v ? (v - base) * mul : 0;
    }
  }
  return zero;
}

/**
 * Group-relative advantages of one batch of rewards: GRPO (group/batch/no std scaling), RLOO,
 * REINFORCE++ with baseline, OPO, pass@k, BNPO, and GDPO for several rewards.
 *
 * @example
 * // 4 prompts x 16 completions, TRL GRPO defaults
 * const { advantages, zeroStdGroups } = groupAdvantages(rewards, { groupSize: 16 });
 */
export function groupAdvantages(rewards: Float32Array, options: GroupAdvantagesOptions): GroupAdvantagesResult;
export function groupAdvantages(rewards: DeviceArray, options: DeviceGroupAdvantagesOptions): DeviceGroupAdvantagesResult;
export function groupAdvantages(
  rewards: Float32Array | DeviceArray,
  options: GroupAdvantagesOptions | DeviceGroupAdvantagesOptions,
): GroupAdvantagesResult | DeviceGroupAdvantagesResult {
  if (rewards instanceof DeviceArray) {
    const call = deviceGroup(rewards, options);
    return runDevice(call, cudaAdv('groupAdvantages').groupAdvantages);
  }
  rejectGroupDevice(options);
  const p = prepareGroup(rewards, options);
  const zeroStdGroups = p.small
    ? smallPath(p.rewards, p.K, p.weights, p.groupSize, p.est, p.scale, p.eps, p.lengths, p.advantages, p.groupMean, p.groupStd)
    : native.groupAdvantages(...nativeArgs(p, null));
  return { advantages: p.advantages, groupMean: p.groupMean, groupStd: p.groupStd, zeroStdGroups, numGroups: p.numGroups };
}

/** groupAdvantages on a worker thread; the buffers must stay untouched until it settles. */
export function groupAdvantagesAsync(rewards: Float32Array, options: GroupAdvantagesOptions): Promise<GroupAdvantagesResult>;
export function groupAdvantagesAsync(rewards: DeviceArray, options: DeviceGroupAdvantagesOptions): Promise<DeviceGroupAdvantagesResult>;
export async function groupAdvantagesAsync(
  rewards: Float32Array | DeviceArray,
  options: GroupAdvantagesOptions | DeviceGroupAdvantagesOptions,
): Promise<GroupAdvantagesResult | DeviceGroupAdvantagesResult> {
  if (rewards instanceof DeviceArray) {
    const call = deviceGroup(rewards, options);
    return runDeviceAsync(call, cudaAdv('groupAdvantagesAsync').groupAdvantagesAsync);
  }
  rejectGroupDevice(options);
  const p = prepareGroup(rewards, options);
  const zero = new Float64Array(1);
  await native.groupAdvantagesAsync(...nativeArgs(p, zero));
  return { advantages: p.advantages, groupMean: p.groupMean, groupStd: p.groupStd, zeroStdGroups: zero[0], numGroups: p.numGroups };
}

function prepareEnsemble(rewards: unknown, options: unknown) {
  const opts = optionsObject<EnsembleRewardsOptions>(options, 'options', true);
  const r = typedArray(rewards, 'rewards', Float32Array);
  const M = positiveInt(opts.numModels, 'options.numModels');
  if (r.length % M !== 0) {
    throw new RangeError(`rewards: expected a length that is a multiple of numModels (${M}), received length ${r.length}`);
  }
  const method = opts.method === undefined ? 'mean' : oneOf(opts.method, 'options.method', METHODS);
  let lambda = 0;
  if (method === 'uwo') {
    if (opts.lambda === undefined) throw new TypeError("options.lambda: expected a number >= 0 for method 'uwo', received undefined");
    lambda = finiteIn(opts.lambda, 'options.lambda', 0, Infinity);
  }
  const out = outFloat32(opts.out, 'options.out', r.length / M);
  return { args: [r, M, METHODS.indexOf(method), lambda, out], out };
}

/**
 * Combines M reward models' scores per sample: mean, min (worst-case optimisation) or uwo
 * (mean - lambda * population variance), as in "Reward Model Ensembles Help Mitigate
 * Overoptimization". NaN scores are skipped; a row of NaN gives NaN.
 *
 * @example
 * const r = ensembleRewards(scores, { numModels: 4, method: 'uwo', lambda: 0.5 });
 */
export function ensembleRewards(rewards: Float32Array, options: EnsembleRewardsOptions): Float32Array;
export function ensembleRewards(rewards: DeviceArray, options: DeviceEnsembleRewardsOptions): DeviceArray<'f32'>;
export function ensembleRewards(
  rewards: Float32Array | DeviceArray,
  options: EnsembleRewardsOptions | DeviceEnsembleRewardsOptions,
): Float32Array | DeviceArray<'f32'> {
  if (rewards instanceof DeviceArray) return runDevice(deviceEnsemble(rewards, options), cudaAdv('ensembleRewards').ensembleRewards);
  rejectDevice((options as EnsembleRewardsOptions | undefined)?.out, 'options.out');
  const p = prepareEnsemble(rewards, options);
  native.ensembleRewards(...p.args);
  return p.out;
}

/** ensembleRewards on a worker thread. */
export function ensembleRewardsAsync(rewards: Float32Array, options: EnsembleRewardsOptions): Promise<Float32Array>;
export function ensembleRewardsAsync(rewards: DeviceArray, options: DeviceEnsembleRewardsOptions): Promise<DeviceArray<'f32'>>;
export async function ensembleRewardsAsync(
  rewards: Float32Array | DeviceArray,
  options: EnsembleRewardsOptions | DeviceEnsembleRewardsOptions,
): Promise<Float32Array | DeviceArray<'f32'>> {
  if (rewards instanceof DeviceArray) return runDeviceAsync(deviceEnsemble(rewards, options), cudaAdv('ensembleRewardsAsync').ensembleRewardsAsync);
  rejectDevice((options as EnsembleRewardsOptions | undefined)?.out, 'options.out');
  const p = prepareEnsemble(rewards, options);
  await native.ensembleRewardsAsync(...p.args);
  return p.out;
}

function maskArg(mask: unknown, n: number): TokenMask {
  if (!(mask instanceof Uint8Array || mask instanceof Float32Array)) {
    throw new TypeError(`mask: expected a Uint8Array or a Float32Array, received ${describe(mask)}`);
  }
  typedArray(mask, 'mask', mask instanceof Uint8Array ? Uint8Array : Float32Array);
  if (mask.length !== n) throw new RangeError(`mask: expected length ${n}, received length ${mask.length}`);
  return mask;
}

/** An output may be an input itself (in place) or apart from it, never a shifted view of it. */
function apart(out: Float32Array, outName: string, input: ArrayBufferView, inName: string): void {
  if (out === input || out.buffer !== input.buffer) return;
  const a0 = out.byteOffset, a1 = a0 + out.byteLength, b0 = input.byteOffset, b1 = b0 + input.byteLength;
  if (a0 < b1 && b0 < a1) {
    throw new RangeError(`${outName}: expected ${inName} itself or a buffer apart from it, received a view that overlaps it`);
  }
}

function seqLenArg(seqLen: unknown, n: number, name: string): number {
  const T = positiveInt(seqLen, 'options.seqLen');
  if (n % T !== 0) throw new RangeError(`${name}: expected a length that is a multiple of seqLen (${T}), received length ${n}`);
  return T;
}

function prepareGae(values: unknown, rewards: unknown, mask: unknown, options: unknown) {
  const opts = optionsObject<GaeOptions>(options, 'options', true);
  const v = typedArray(values, 'values', Float32Array);
  const n = v.length;
  const T = seqLenArg(opts.seqLen, n, 'values');
  const r = typedArrayOfLength(rewards, 'rewards', Float32Array, n);
  const m = maskArg(mask, n);
  const gamma = opts.gamma === undefined ? 1 : finiteIn(opts.gamma, 'options.gamma', 0, 1);
  const lambda = opts.lambda === undefined ? 1 : finiteIn(opts.lambda, 'options.lambda', 0, 1);
  const whiten = opts.whiten === undefined ? false : opts.whiten;
  if (typeof whiten !== 'boolean') throw new TypeError(`options.whiten: expected a boolean, received ${describe(whiten)}`);
  const out = opts.out === undefined ? undefined : optionsObject<NonNullable<GaeOptions['out']>>(opts.out, 'options.out', true);
  const advantages = outFloat32(out?.advantages, 'options.out.advantages', n);
  const returns = outFloat32(out?.returns, 'options.out.returns', n);
  if (advantages === returns) throw new RangeError('options.out.returns: expected a buffer apart from out.advantages, received the same one');
  apart(returns, 'options.out.returns', advantages, 'options.out.advantages');
  for (const [o, on] of [[advantages, 'options.out.advantages'], [returns, 'options.out.returns']] as const) {
    apart(o, on, v, 'values');
    apart(o, on, r, 'rewards');
    apart(o, on, m, 'mask');
  }
  return { args: [v, r, m, T, gamma, lambda, advantages, returns], whiten, m, advantages, returns };
}

/**
 * Generalised advantage estimation on padded [B, T] tensors, with verl's masking: masked tokens
 * are skipped (the recursion runs over response tokens only) and get 0.
 * `delta_t = r_t + gamma V_next - V_t`, `A_t = delta_t + gamma lambda A_next`, `returns = A + V`.
 *
 * @example
 * const { advantages, returns } = gae(values, rewards, mask, { seqLen: 512, gamma: 1, lambda: 0.95, whiten: true });
 */
export function gae(values: Float32Array, rewards: Float32Array, mask: TokenMask, options: GaeOptions): GaeResult;
export function gae(values: DeviceArray, rewards: DeviceArray, mask: DeviceArray, options: DeviceGaeOptions): DeviceGaeResult;
export function gae(
  values: Float32Array | DeviceArray,
  rewards: Float32Array | DeviceArray,
  mask: TokenMask | DeviceArray,
  options: GaeOptions | DeviceGaeOptions,
): GaeResult | DeviceGaeResult {
  if (values instanceof DeviceArray) return runDevice(deviceGae(values, rewards, mask, options), cudaAdv('gae').gae);
  rejectGaeDevice(rewards, mask, options);
  const p = prepareGae(values, rewards, mask, options);
  native.gae(...p.args);
  if (p.whiten) native.maskedWhiten(p.advantages, p.m, true, true, 1e-8, p.advantages);
  return { advantages: p.advantages, returns: p.returns };
}

/** gae on a worker thread. */
export function gaeAsync(values: Float32Array, rewards: Float32Array, mask: TokenMask, options: GaeOptions): Promise<GaeResult>;
export function gaeAsync(values: DeviceArray, rewards: DeviceArray, mask: DeviceArray, options: DeviceGaeOptions): Promise<DeviceGaeResult>;
export async function gaeAsync(
  values: Float32Array | DeviceArray,
  rewards: Float32Array | DeviceArray,
  mask: TokenMask | DeviceArray,
  options: GaeOptions | DeviceGaeOptions,
): Promise<GaeResult | DeviceGaeResult> {
  if (values instanceof DeviceArray) return runDeviceAsync(deviceGae(values, rewards, mask, options), cudaAdv('gaeAsync').gaeAsync);
  rejectGaeDevice(rewards, mask, options);
  const p = prepareGae(values, rewards, mask, options);
  await native.gaeAsync(...p.args);
  if (p.whiten) await native.maskedWhitenAsync(p.advantages, p.m, true, true, 1e-8, p.advantages);
  return { advantages: p.advantages, returns: p.returns };
}

function prepareDiscounted(rewards: unknown, mask: unknown, options: unknown) {
  const opts = optionsObject<DiscountedReturnsOptions>(options, 'options', true);
  const r = typedArray(rewards, 'rewards', Float32Array);
  const T = seqLenArg(opts.seqLen, r.length, 'rewards');
  const m = maskArg(mask, r.length);
  const gamma = opts.gamma === undefined ? 1 : finiteIn(opts.gamma, 'options.gamma', 0, 1);
  const out = outFloat32(opts.out, 'options.out', r.length);
  apart(out, 'options.out', r, 'rewards');
  apart(out, 'options.out', m, 'mask');
  return { args: [r, m, T, gamma, out], out };
}

/**
 * Discounted returns `G_t = sum_k gamma^k r_{t+k}` over the response tokens of each row of a
 * padded [B, T] tensor (masked tokens are skipped and get 0).
 *
 * @example
 * const returns = discountedReturns(tokenRewards, mask, { seqLen: 512, gamma: 0.99 });
 */
export function discountedReturns(rewards: Float32Array, mask: TokenMask, options: DiscountedReturnsOptions): Float32Array;
export function discountedReturns(rewards: DeviceArray, mask: DeviceArray, options: DeviceDiscountedReturnsOptions): DeviceArray<'f32'>;
export function discountedReturns(
  rewards: Float32Array | DeviceArray,
  mask: TokenMask | DeviceArray,
  options: DiscountedReturnsOptions | DeviceDiscountedReturnsOptions,
): Float32Array | DeviceArray<'f32'> {
  if (rewards instanceof DeviceArray) return runDevice(deviceDiscounted(rewards, mask, options), cudaAdv('discountedReturns').discountedReturns);
  rejectMaskOutDevice(mask, options);
  const p = prepareDiscounted(rewards, mask, options);
  native.discountedReturns(...p.args);
  return p.out;
}

/** discountedReturns on a worker thread. */
export function discountedReturnsAsync(rewards: Float32Array, mask: TokenMask, options: DiscountedReturnsOptions): Promise<Float32Array>;
export function discountedReturnsAsync(
  rewards: DeviceArray,
  mask: DeviceArray,
  options: DeviceDiscountedReturnsOptions,
): Promise<DeviceArray<'f32'>>;
export async function discountedReturnsAsync(
  rewards: Float32Array | DeviceArray,
  mask: TokenMask | DeviceArray,
  options: DiscountedReturnsOptions | DeviceDiscountedReturnsOptions,
): Promise<Float32Array | DeviceArray<'f32'>> {
  if (rewards instanceof DeviceArray) return runDeviceAsync(deviceDiscounted(rewards, mask, options), cudaAdv('discountedReturnsAsync').discountedReturnsAsync);
  rejectMaskOutDevice(mask, options);
  const p = prepareDiscounted(rewards, mask, options);
  await native.discountedReturnsAsync(...p.args);
  return p.out;
}

function prepareWhiten(values: unknown, mask: unknown, options: unknown) {
  const opts = optionsObject<MaskedWhitenOptions>(options, 'options', false);
  const v = typedArray(values, 'values', Float32Array);
  const m = maskArg(mask, v.length);
  const bool = (x: unknown, name: string, d: boolean) => {
    if (x === undefined) return d;
    if (typeof x !== 'boolean') throw new TypeError(`${name}: expected a boolean, received ${describe(x)}`);
    return x;
  };
  const shiftMean = bool(opts.shiftMean, 'options.shiftMean', true);
  const unbiased = bool(opts.unbiased, 'options.unbiased', true);
  const eps = opts.eps === undefined ? 1e-8 : finiteIn(opts.eps, 'options.eps', 0, Infinity);
  const out = outFloat32(opts.out, 'options.out', v.length);
  apart(out, 'options.out', v, 'values');
  apart(out, 'options.out', m, 'mask');
  return { args: [v, m, shiftMean, unbiased, eps, out], out };
}

/**
 * verl's `masked_whiten`: `(x - mean) / sqrt(var + 1e-8)` with the mask-weighted mean and unbiased
 * variance over every masked-in element; masked-out positions get 0. `out` may be `values` itself.
 *
 * @example
 * const adv = maskedWhiten(advantages, mask);
 */
export function maskedWhiten(values: Float32Array, mask: TokenMask, options?: MaskedWhitenOptions): Float32Array;
export function maskedWhiten(values: DeviceArray, mask: DeviceArray, options?: DeviceMaskedWhitenOptions): DeviceArray<'f32'>;
export function maskedWhiten(
  values: Float32Array | DeviceArray,
  mask: TokenMask | DeviceArray,
  options?: MaskedWhitenOptions | DeviceMaskedWhitenOptions,
): Float32Array | DeviceArray<'f32'> {
  if (values instanceof DeviceArray) return runDevice(deviceWhiten(values, mask, options), cudaAdv('maskedWhiten').maskedWhiten);
  rejectMaskOutDevice(mask, options);
  const p = prepareWhiten(values, mask, options);
  native.maskedWhiten(...p.args);
  return p.out;
}

/** maskedWhiten on a worker thread. */
export function maskedWhitenAsync(values: Float32Array, mask: TokenMask, options?: MaskedWhitenOptions): Promise<Float32Array>;
export function maskedWhitenAsync(values: DeviceArray, mask: DeviceArray, options?: DeviceMaskedWhitenOptions): Promise<DeviceArray<'f32'>>;
export async function maskedWhitenAsync(
  values: Float32Array | DeviceArray,
  mask: TokenMask | DeviceArray,
  options?: MaskedWhitenOptions | DeviceMaskedWhitenOptions,
): Promise<Float32Array | DeviceArray<'f32'>> {
  if (values instanceof DeviceArray) return runDeviceAsync(deviceWhiten(values, mask, options), cudaAdv('maskedWhitenAsync').maskedWhitenAsync);
  rejectMaskOutDevice(mask, options);
  const p = prepareWhiten(values, mask, options);
  await native.maskedWhitenAsync(...p.args);
  return p.out;
}

// ---- device path (first array argument a DeviceArray; lib/cuda.ts, cuda/advantages.h) ---------
// Every array argument is then a DeviceArray (f32 data, i32 ids/lengths, u8 or f32 masks); outputs
// not given in `out` are allocated (f32) and returned, owned by the caller. The small-n TypeScript
// path is never taken. Option checks and error texts are the host path's.

/** groupAdvantages on DeviceArrays: `rewards` f32, `groupIds` / `lengths` i32, outputs f32. */
export interface DeviceGroupAdvantagesOptions extends Omit<GroupAdvantagesOptions, 'groupIds' | 'lengths' | 'out'> {
  /**
   * Group of each sample, (n) i32 ids in [0, n). Copied to the host once to find numGroups (max + 1)
   * and to check the ids with the host path's errors (a small synchronising copy).
   */
  groupIds?: DeviceArray;
  /** Response lengths (n) i32 >= 0, checked on the device (a negative one is the host path's RangeError). */
  lengths?: DeviceArray;
  out?: { advantages?: DeviceArray; groupMean?: DeviceArray; groupStd?: DeviceArray };
}
export interface DeviceGroupAdvantagesResult {
  advantages: DeviceArray<'f32'>;
  groupMean: DeviceArray<'f32'>;
  groupStd: DeviceArray<'f32'>;
  /** Downloaded from the device (the call waits for it). */
  zeroStdGroups: number;
  numGroups: number;
}
export interface DeviceEnsembleRewardsOptions extends Omit<EnsembleRewardsOptions, 'out'> {
  out?: DeviceArray;
}
export interface DeviceGaeOptions extends Omit<GaeOptions, 'out'> {
  out?: { advantages?: DeviceArray; returns?: DeviceArray };
}
export interface DeviceGaeResult {
  advantages: DeviceArray<'f32'>;
  returns: DeviceArray<'f32'>;
}
export interface DeviceDiscountedReturnsOptions extends Omit<DiscountedReturnsOptions, 'out'> {
  out?: DeviceArray;
}
export interface DeviceMaskedWhitenOptions extends Omit<MaskedWhitenOptions, 'out'> {
  out?: DeviceArray;
}

interface CudaAdvantagesBinding {
  groupAdvantages(...args: unknown[]): undefined;
  groupAdvantagesAsync(...args: unknown[]): Promise<undefined>;
  ensembleRewards(...args: unknown[]): undefined;
  ensembleRewardsAsync(...args: unknown[]): Promise<undefined>;
  gae(...args: unknown[]): undefined;
  gaeAsync(...args: unknown[]): Promise<undefined>;
  discountedReturns(...args: unknown[]): undefined;
  discountedReturnsAsync(...args: unknown[]): Promise<undefined>;
  maskedWhiten(...args: unknown[]): undefined;
  maskedWhitenAsync(...args: unknown[]): Promise<undefined>;
}
const cudaAdv = (what: string) => cudaNative(what) as unknown as CudaAdvantagesBinding;

/** A prepared device call: its arguments, the arrays it uses, the outputs it allocated, its result. */



const WHY = (first: string) => `${first} is a DeviceArray; host and device arrays cannot be mixed in one call`;

/** Host call: a DeviceArray anywhere is a TypeError naming it. */
function rejectHost(value: unknown, name: string, first: string): void {
  if (value instanceof DeviceArray) {
    throw new TypeError(
      `${name}: expected a host TypedArray (${first} is a host array; host and device arrays cannot be mixed in one call), received ${value}`,
    );
  }
}

function outsOf(options: unknown): Record<string, unknown> {
  if (options === null || typeof options !== 'object') return {};
  const out = (options as { out?: unknown }).out;
  return out !== null && typeof out === 'object' && !(out instanceof DeviceArray) && !ArrayBuffer.isView(out)
    ? (out as Record<string, unknown>)
    : {};
}

function rejectGroupDevice(options: unknown): void {
  if (options === null || typeof options !== 'object') return;
  const o = options as GroupAdvantagesOptions;
  rejectHost(o.groupIds, 'options.groupIds', 'rewards');
  rejectHost(o.lengths, 'options.lengths', 'rewards');
  const out = outsOf(options);
  for (const k of ['advantages', 'groupMean', 'groupStd']) rejectHost(out[k], `options.out.${k}`, 'rewards');
}

function rejectGaeDevice(rewards: unknown, mask: unknown, options: unknown): void {
  rejectHost(rewards, 'rewards', 'values');
  rejectHost(mask, 'mask', 'values');
  const out = outsOf(options);
  for (const k of ['advantages', 'returns']) rejectHost(out[k], `options.out.${k}`, 'values');
}

function rejectMaskOutDevice(mask: unknown, options: unknown): void {
  rejectHost(mask, 'mask', 'the first array');
  if (options !== null && typeof options === 'object') rejectHost((options as { out?: unknown }).out, 'options.out', 'the first array');
}

/** An f32 output given in `out` (checked) or allocated now (recorded in `allocated`). */
function deviceOut(v: unknown, name: string, n: number, why: string, allocated: DeviceArray[]): DeviceArray<'f32'> {
  if (v !== undefined) return deviceArg(v, name, ['f32'], n, why) as DeviceArray<'f32'>;
  const a = alloc('f32', n);
  allocated.push(a);
  return a;
}

/** The device twin of `apart`: an output may be an input itself, or apart from it. */
function apartDevice(out: DeviceArray, outName: string, input: DeviceArray, inName: string): void {
  if (out === input || out.length === 0 || input.length === 0) return;
  const a0 = devicePointer(out, outName), a1 = a0 + BigInt(out.byteLength);
  const b0 = devicePointer(input, inName), b1 = b0 + BigInt(input.byteLength);
  if (a0 === b0 && out.byteLength === input.byteLength) return; // the same memory (e.g. wrapped twice)
  if (a0 < b1 && b0 < a1) {
    throw new RangeError(`${outName}: expected ${inName} itself or a buffer apart from it, received a view that overlaps it`);
  }
}

function deviceMask(mask: unknown, n: number, why: string): DeviceArray {
  return deviceArg(mask, 'mask', ['u8', 'f32'], n, why);
}

function deviceGroup(rewards: DeviceArray, options: unknown): DeviceCall<DeviceGroupAdvantagesResult> {
  const why = WHY('rewards');
  const opts = optionsObject<DeviceGroupAdvantagesOptions>(options, 'options', true);
  deviceArg(rewards, 'rewards', ['f32'], undefined, why);
  const { K, n, estimator, scale, multi, eps, weights } = scalarOptions(opts, rewards.length);
  if (n > MAX_INT) throw new RangeError(`rewards: expected at most ${MAX_INT} samples, received ${n}`);
  let groupSize = 0;
  let ids: DeviceArray | null = null;
  let numGroups: number;
  if (opts.groupIds !== undefined) {
    if (opts.groupSize !== undefined) {
      throw new TypeError('options.groupSize: expected either groupSize or groupIds, received both');
    }
    ids = deviceArg(opts.groupIds, 'options.groupIds', ['i32'], n, why);
    const host = ids.download() as Int32Array;
    let max = -1;
    for (let i = 0; i < n; i++) {
      const g = host[i];
      if (g < 0 || g >= n) {
        throw new RangeError(`options.groupIds[${i}]: expected a group id in [0, ${n}) (n samples), received ${g}`);
      }
      if (g > max) max = g;
    }
    numGroups = max + 1;
    if (estimator === 'passk') {
      const count = new Int32Array(numGroups);
      for (let i = 0; i < n; i++) count[host[i]]++;
      for (let g = 0; g < numGroups; g++) {
        if (count[g] === 1) throw new RangeError(`options.groupIds: passk needs groups of at least 2 samples, group ${g} has 1`);
      }
    }
  } else {
    if (opts.groupSize === undefined) {
      throw new TypeError('options.groupSize: expected a positive integer (or options.groupIds), received undefined');
    }
    groupSize = positiveInt(opts.groupSize, 'options.groupSize');
    if (n % groupSize !== 0) {
      throw new RangeError(`options.groupSize: expected a divisor of the number of samples (${n}), received ${groupSize}`);
    }
    numGroups = n / groupSize;
    if (estimator === 'passk' && groupSize === 1) {
      throw new RangeError('options.groupSize: passk needs groups of at least 2 samples, received 1');
    }
  }
  let lengths: DeviceArray | null = null;
  if (opts.lengths !== undefined) {
    lengths = deviceArg(opts.lengths, 'options.lengths', ['i32'], n, why);
  } else if (estimator === 'opo') {
    throw new TypeError("options.lengths: expected an Int32Array of response lengths for estimator 'opo', received undefined");
  }
  let rewardMin = 0, rewardMax = 1;
  if (estimator === 'bnpo') {
    if (opts.rewardMin !== undefined) rewardMin = finiteIn(opts.rewardMin, 'options.rewardMin', -Infinity, Infinity);
    if (opts.rewardMax !== undefined) rewardMax = finiteIn(opts.rewardMax, 'options.rewardMax', -Infinity, Infinity);
    if (!(rewardMax > rewardMin)) {
      throw new RangeError(`options.rewardMax: expected a number above rewardMin (${rewardMin}), received ${rewardMax}`);
    }
  }
  const statLen = multi === 'normalize_then_sum' ? numGroups * K : numGroups;
  const out = opts.out === undefined ? {} : optionsObject<NonNullable<DeviceGroupAdvantagesOptions['out']>>(opts.out, 'options.out', true);
  // check every given output before allocating any
  if (out.advantages !== undefined) deviceArg(out.advantages, 'options.out.advantages', ['f32'], n, why);
  if (out.groupMean !== undefined) deviceArg(out.groupMean, 'options.out.groupMean', ['f32'], statLen, why);
  if (out.groupStd !== undefined) deviceArg(out.groupStd, 'options.out.groupStd', ['f32'], statLen, why);
  const allocated: DeviceArray[] = [];
  const advantages = deviceOut(out.advantages, 'options.out.advantages', n, why, allocated);
  const groupMean = deviceOut(out.groupMean, 'options.out.groupMean', statLen, why, allocated);
  const groupStd = deviceOut(out.groupStd, 'options.out.groupStd', statLen, why, allocated);
  const zero = new Float64Array(1);
  const p = (a: DeviceArray | null, name: string) => (a ? devicePointer(a, name) : null);
  const args = [
    devicePointer(rewards, 'rewards'), rewards.length, K, weights, groupSize, p(ids, 'options.groupIds'), n, numGroups,
    ESTIMATORS.indexOf(estimator), SCALES.indexOf(scale), MULTI.indexOf(multi), eps,
    p(lengths, 'options.lengths'), n, rewardMin, rewardMax,
    advantages.ptr, n, groupMean.ptr, statLen, groupStd.ptr, statLen, zero,
  ];
  const used = [rewards, advantages, groupMean, groupStd, ...[ids, lengths].filter((a): a is DeviceArray => a !== null)];
  return {
    args, used, allocated,
    finish: () => ({ advantages, groupMean, groupStd, zeroStdGroups: zero[0], numGroups }),
  };
}

function deviceEnsemble(rewards: DeviceArray, options: unknown): DeviceCall<DeviceArray<'f32'>> {
  const why = WHY('rewards');
  const opts = optionsObject<DeviceEnsembleRewardsOptions>(options, 'options', true);
  deviceArg(rewards, 'rewards', ['f32'], undefined, why);
  const M = positiveInt(opts.numModels, 'options.numModels');
  if (rewards.length % M !== 0) {
    throw new RangeError(`rewards: expected a length that is a multiple of numModels (${M}), received length ${rewards.length}`);
  }
  const method = opts.method === undefined ? 'mean' : oneOf(opts.method, 'options.method', METHODS);
  let lambda = 0;
  if (method === 'uwo') {
    if (opts.lambda === undefined) throw new TypeError("options.lambda: expected a number >= 0 for method 'uwo', received undefined");
    lambda = finiteIn(opts.lambda, 'options.lambda', 0, Infinity);
  }
  const n = rewards.length / M;
  const allocated: DeviceArray[] = [];
  const out = deviceOut(opts.out, 'options.out', n, why, allocated);
  apartDevice(out, 'options.out', rewards, 'rewards');
  if (out === rewards && M !== 1) throw new RangeError('options.out: expected a buffer apart from rewards, received rewards');
  const args = [devicePointer(rewards, 'rewards'), rewards.length, M, METHODS.indexOf(method), lambda, out.ptr, n];
  return { args, used: [rewards, out], allocated, finish: () => out };
}

function deviceGae(values: DeviceArray, rewards: unknown, mask: unknown, options: unknown): DeviceCall<DeviceGaeResult> {
  const why = WHY('values');
  const opts = optionsObject<DeviceGaeOptions>(options, 'options', true);
  const v = deviceArg(values, 'values', ['f32'], undefined, why);
  const n = v.length;
  const T = seqLenArg(opts.seqLen, n, 'values');
  const r = deviceArg(rewards, 'rewards', ['f32'], n, why);
  const m = deviceMask(mask, n, why);
  const gamma = opts.gamma === undefined ? 1 : finiteIn(opts.gamma, 'options.gamma', 0, 1);
  const lambda = opts.lambda === undefined ? 1 : finiteIn(opts.lambda, 'options.lambda', 0, 1);
  const whiten = opts.whiten === undefined ? false : opts.whiten;
  if (typeof whiten !== 'boolean') throw new TypeError(`options.whiten: expected a boolean, received ${describe(whiten)}`);
  const out = opts.out === undefined ? {} : optionsObject<NonNullable<DeviceGaeOptions['out']>>(opts.out, 'options.out', true);
  if (out.advantages !== undefined) deviceArg(out.advantages, 'options.out.advantages', ['f32'], n, why);
  if (out.returns !== undefined) deviceArg(out.returns, 'options.out.returns', ['f32'], n, why);
  const allocated: DeviceArray[] = [];
  const advantages = deviceOut(out.advantages, 'options.out.advantages', n, why, allocated);
  const returns = deviceOut(out.returns, 'options.out.returns', n, why, allocated);
  try {
    if (advantages === returns || (n > 0 && advantages.ptr === returns.ptr)) {
      throw new RangeError('options.out.returns: expected a buffer apart from out.advantages, received the same one');
    }
    apartDevice(returns, 'options.out.returns', advantages, 'options.out.advantages');
    for (const [o, on] of [[advantages, 'options.out.advantages'], [returns, 'options.out.returns']] as const) {
      apartDevice(o, on, v, 'values');
      apartDevice(o, on, r, 'rewards');
      apartDevice(o, on, m, 'mask');
    }
  } catch (err) {
    for (const a of allocated) a.free();
    throw err;
  }
  const args = [
    devicePointer(v, 'values'), n, devicePointer(r, 'rewards'), n, devicePointer(m, 'mask'), n, m.dtype === 'f32',
    T, gamma, lambda, whiten, advantages.ptr, n, returns.ptr, n,
  ];
  return { args, used: [v, r, m, advantages, returns], allocated, finish: () => ({ advantages, returns }) };
}

function deviceDiscounted(rewards: DeviceArray, mask: unknown, options: unknown): DeviceCall<DeviceArray<'f32'>> {
  const why = WHY('rewards');
  const opts = optionsObject<DeviceDiscountedReturnsOptions>(options, 'options', true);
  const r = deviceArg(rewards, 'rewards', ['f32'], undefined, why);
  const n = r.length;
  const T = seqLenArg(opts.seqLen, n, 'rewards');
  const m = deviceMask(mask, n, why);
  const gamma = opts.gamma === undefined ? 1 : finiteIn(opts.gamma, 'options.gamma', 0, 1);
  if (opts.out !== undefined) {
    const o = deviceArg(opts.out, 'options.out', ['f32'], n, why);
    apartDevice(o, 'options.out', r, 'rewards');
    apartDevice(o, 'options.out', m, 'mask');
  }
  const allocated: DeviceArray[] = [];
  const out = deviceOut(opts.out, 'options.out', n, why, allocated);
  const args = [devicePointer(r, 'rewards'), n, devicePointer(m, 'mask'), n, m.dtype === 'f32', T, gamma, out.ptr, n];
  return { args, used: [r, m, out], allocated, finish: () => out };
}

function deviceWhiten(values: DeviceArray, mask: unknown, options: unknown): DeviceCall<DeviceArray<'f32'>> {
  const why = WHY('values');
  const opts = optionsObject<DeviceMaskedWhitenOptions>(options, 'options', false);
  const v = deviceArg(values, 'values', ['f32'], undefined, why);
  const n = v.length;
  const m = deviceMask(mask, n, why);
  const bool = (x: unknown, name: string, d: boolean) => {
    if (x === undefined) return d;
    if (typeof x !== 'boolean') throw new TypeError(`${name}: expected a boolean, received ${describe(x)}`);
    return x;
  };
  const shiftMean = bool(opts.shiftMean, 'options.shiftMean', true);
  const unbiased = bool(opts.unbiased, 'options.unbiased', true);
  const eps = opts.eps === undefined ? 1e-8 : finiteIn(opts.eps, 'options.eps', 0, Infinity);
  if (opts.out !== undefined) {
    const o = deviceArg(opts.out, 'options.out', ['f32'], n, why);
    apartDevice(o, 'options.out', v, 'values');
    apartDevice(o, 'options.out', m, 'mask');
  }
  const allocated: DeviceArray[] = [];
  const out = deviceOut(opts.out, 'options.out', n, why, allocated);
  const args = [devicePointer(v, 'values'), n, devicePointer(m, 'mask'), n, m.dtype === 'f32', shiftMean, unbiased, eps, out.ptr, n];
  return { args, used: [v, m, out], allocated, finish: () => out };
}
