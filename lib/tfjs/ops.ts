// Differentiable TensorFlow.js ops whose gradients are the kernels' analytic gradients
// (docs/tfjs.md). Each op reads its tensors once (dataSync; never written), calls the kernel through
// lib/tfjs/core.ts, and registers the kernel's gradient with tf.customGrad.

import * as tf from '@tensorflow/tfjs-core';
import type { KlEstimator, LossAggregation, PolicyVariant } from '../policy/enums.js';
import type { DivergenceKind } from '../divergence/enums.js';
import type { PolicyLossMetrics, PreferenceLossType, FDivergence, KtoLossResult, PreferenceLossResult, PolicyLossFromLogitsResult } from '../index.js';
import { knownKeysMoved, options as checkOptions } from '../check.js';
import { POLICY_FROM_LOGITS_OPTIONS } from '../policy/policy-loss-from-logits.js';
import {
  coreKlPenalty,
  coreKtoLoss,
  corePolicyLoss,
  corePolicyLossFromLogits,
  corePreferenceLoss,
  coreTokenLogprobs,
  coreTokenLogprobsBackward,
  coreVocabDivergence,
  coreVocabDivergenceGrad,
  type CoreDivergenceArgs,
  type CorePolicyFromLogitsOptions,
  type CorePolicyOptions,
  type CorePreferenceOptions,
} from './core.js';
import {
  isTensor,
  pooledTensor,
  readF32,
  readI32,
  readMask,
  requireTensor,
  type Constant,
  type IntConstant,
  type MaskInput,
} from './convert.js';

function checkKeys(options: object, known: readonly string[], name: string): void {
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) throw new TypeError(`${name}: unknown option '${k}' (known: ${known.join(', ')})`);
  }
}

function optionsObject<T extends object>(options: T | undefined, name: string): T {
  if (options === undefined) return {} as T;
  if (options === null || typeof options !== 'object') throw new TypeError(`${name}: expected an options object, got ${options === null ? 'null' : typeof options}`);
  return options;
}

type GradFunc = (dy: tf.Tensor) => tf.Tensor | tf.Tensor[];

/** tf.customGrad over tensor inputs only (the adapter keeps what the backward needs in closures). */
function custom<A extends tf.Tensor[]>(f: (...inputs: A) => { value: tf.Tensor; gradFunc: GradFunc }): (...inputs: A) => tf.Tensor {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...inputs: A) => tf.Tensor;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function f32(x: tf.Tensor): Float32Array {
  const d = x.dataSync();
  return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
}

/** `grad * s` as a new tensor (the kernels' gradients are for dL = 1; s is the upstream dy). */
function scaled(grad: Float32Array, dy: tf.Tensor, shape: number[]): tf.Tensor {
  const s = dy.dataSync()[0]!;
  if (s !== 1) for (let i = 0; i < grad.length; i++) grad[i]! *= s;
  return tf.tensor(grad, shape, 'float32');
}

// ---- tokenLogprobs / sequenceLogprobs ------------------------------------------------------------

export interface TokenLogprobsOptions {
  /** Divides the logits before the softmax. Default 1. */
  temperature?: number;
  /** Targets equal to it give logp = 0 (and H = 0) and no gradient. Default -100. */
  ignoreIndex?: number;
  /** Also return the entropy of each row (differentiable). Default false. */
  returnEntropy?: boolean;
}

export interface TokenLogprobsResult {
  /** log p(target) per token, the shape of `targets` (logits' shape less its last axis). */
  logprobs: tf.Tensor;
  /** Entropy per token, with `returnEntropy: true`. */
  entropy?: tf.Tensor;
}

const LOGPROBS_KEYS = ['temperature', 'ignoreIndex', 'returnEntropy'] as const;

/**
 * Log-probabilities of the target tokens, differentiable with respect to `logits` ([..., V]).
 * Tokens where `mask` is 0 give 0 and no gradient (a mask of weights is applied as nonzero/zero
 * here; the reductions, `sequenceLogprobs` and the losses, apply the weights).
 */
export function tokenLogprobs(
  logits: tf.Tensor,
  targets: IntConstant,
  mask: MaskInput | null | undefined,
  options: TokenLogprobsOptions & { returnEntropy: true },
): Required<TokenLogprobsResult>;
export function tokenLogprobs(logits: tf.Tensor, targets: IntConstant, mask?: MaskInput | null, options?: TokenLogprobsOptions): TokenLogprobsResult;
export function tokenLogprobs(
  logits: tf.Tensor,
  targets: IntConstant,
  mask: MaskInput | null = null,
  options?: TokenLogprobsOptions,
): TokenLogprobsResult {
  const opts = optionsObject(options, 'tokenLogprobs options');
  checkKeys(opts, LOGPROBS_KEYS, 'tokenLogprobs');
  const x = requireTensor(logits, 'logits');
  if (x.rank < 2) throw new RangeError(`logits: expected a tensor of shape [..., V] (rank >= 2), got shape [${x.shape.join(', ')}]`);
  const vocab = x.shape[x.rank - 1]!;
  const rowShape = x.shape.slice(0, -1);
  const n = size(rowShape);
  const ignoreIndex = opts.ignoreIndex ?? -100;
  let tgt = readI32(targets, 'targets', n);
  const m = readMask(mask, 'mask', n);
  if (m) {
    tgt = Int32Array.from(tgt); // never write the caller's array or a tensor's storage
    for (let i = 0; i < n; i++) if (m.mask[i] === 0) tgt[i] = ignoreIndex;
  }
  const want = opts.returnEntropy === true;
  const args = { vocab, temperature: opts.temperature, ignoreIndex: opts.ignoreIndex };
  const op = custom((lg: tf.Tensor) => {
    const data = f32(lg);
    const buf = new Float32Array(want ? 2 * n : n);
    const entropy = want ? buf.subarray(n) : undefined;
    const logsumexp = coreTokenLogprobs(data, tgt, args, { logprobs: buf.subarray(0, n), ...(entropy && { entropy }) });
    return {
      value: tf.tensor(buf, [buf.length], 'float32'),
      gradFunc: (dy: tf.Tensor) => {
        const g = f32(dy);
        const saved = { logsumexp, ...(entropy && { entropy, gradEntropy: g.subarray(n) }) };
        return pooledTensor(n * vocab, x.shape, (out) => coreTokenLogprobsBackward(data, tgt, g.subarray(0, n), args, saved, out));
      },
    };
  });
  const v = op(x);
  if (!want) return { logprobs: tf.reshape(v, rowShape) };
  return {
    logprobs: tf.reshape(tf.slice(v, [0], [n]), rowShape),
    entropy: tf.reshape(tf.slice(v, [n], [n]), rowShape),
  };
}

export interface SequenceLogprobsOptions {
  temperature?: number;
  ignoreIndex?: number;
}

/**
 * Per-sequence sums of the target log-probs, sum_t m_t log p(y_t), shape [B], differentiable with
 * respect to `logits` ([B, T, V]): the input of a DPO-family loss. `mask` ([B, T], nullable) is
 * 1/0 or weights.
 */
export function sequenceLogprobs(
  logits: tf.Tensor,
  targets: IntConstant,
  mask: MaskInput | null = null,
  options?: SequenceLogprobsOptions,
): tf.Tensor1D {
  const opts = optionsObject(options, 'sequenceLogprobs options');
  checkKeys(opts, ['temperature', 'ignoreIndex'], 'sequenceLogprobs');
  const x = requireTensor(logits, 'logits', [3]);
  const [b, t] = x.shape as [number, number, number];
  const m = readMask(mask, 'mask', b * t);
  let { logprobs } = tokenLogprobs(x, targets, m?.mask ?? null, opts);
  if (m && !m.binary) logprobs = tf.mul(logprobs, tf.tensor(m.mask as Float32Array, [b, t], 'float32'));
  return tf.sum(logprobs, -1) as tf.Tensor1D;
}

// ---- policyLoss / klPenalty ----------------------------------------------------------------------

export interface PolicyLossOptions extends Omit<CorePolicyOptions, 'seqLen' | 'refLogprobs' | 'entropy'> {
  /** Reference-model log-probs [B, T] (a constant): adds beta * KL per token. */
  refLogprobs?: Constant;
  /**
   * Per-token entropy [B, T] for the entropy bonus (`entropyCoef`): a tensor receives the gradient
   * dL/dH (pass `tokenLogprobs(..., { returnEntropy: true }).entropy`); an array is a constant.
   */
  entropy?: tf.Tensor | Constant;
}

export interface PolicyLossResult {
  /** The aggregated loss, differentiable with respect to `logprobs` (and a tensor `entropy`). */
  loss: tf.Scalar;
  metrics: PolicyLossMetrics;
}

export type { PolicyVariant, LossAggregation, KlEstimator, PolicyLossMetrics };

/**
 * The PPO/GRPO-family policy loss of [B, T] log-probs (docs/policy.md): `seqLen` comes from the
 * tensor. `oldLogprobs` [B, T] and `advantages` ([B] or [B, T]) are constants; `mask` [B, T] is
 * 1/0, weights, or null.
 */
export function policyLoss(
  logprobs: tf.Tensor,
  oldLogprobs: Constant,
  advantages: Constant,
  mask: MaskInput | null = null,
  options?: PolicyLossOptions,
): PolicyLossResult {
  const opts = optionsObject(options, 'policyLoss options');
  const lp = requireTensor(logprobs, 'logprobs', [2]);
  const [b, t] = lp.shape as [number, number];
  const n = b * t;
  const old = readF32(oldLogprobs, 'oldLogprobs', n);
  const adv = readF32(advantages, 'advantages', [b, n]);
  const m = readMask(mask, 'mask', n)?.mask ?? null;
  const { refLogprobs, entropy, ...rest } = opts;
  const core: CorePolicyOptions = {
    ...rest,
    seqLen: t,
    ...(refLogprobs !== undefined && { refLogprobs: readF32(refLogprobs, 'options.refLogprobs', n) }),
  };
  let metrics: PolicyLossMetrics | undefined;
  let loss: tf.Scalar;
  if (isTensor(entropy)) {
    const h = requireTensor(entropy, 'options.entropy', [2]);
    if (h.shape[0] !== b || h.shape[1] !== t) throw new RangeError(`options.entropy: expected shape [${b}, ${t}], got [${h.shape.join(', ')}]`);
    const op = custom((a: tf.Tensor, e: tf.Tensor) => {
      const r = corePolicyLoss(f32(a), old, adv, m, { ...core, entropy: f32(e) });
      metrics = r.metrics;
      return {
        value: tf.scalar(r.loss),
        gradFunc: (dy: tf.Tensor) => [scaled(r.gradLogprobs, dy, [b, t]), scaled(r.gradEntropy!, dy, [b, t])],
      };
    });
    loss = op(lp, h) as tf.Scalar;
  } else {
    const ent = entropy === undefined ? undefined : readF32(entropy, 'options.entropy', n);
    const op = custom((a: tf.Tensor) => {
      const r = corePolicyLoss(f32(a), old, adv, m, { ...core, ...(ent && { entropy: ent }) });
      metrics = r.metrics;
      return { value: tf.scalar(r.loss), gradFunc: (dy: tf.Tensor) => scaled(r.gradLogprobs, dy, [b, t]) };
    });
    loss = op(lp) as tf.Scalar;
  }
  return { loss, metrics: metrics! };
}

export interface KlPenaltyOptions {
  /** Default 'k3' (verl low_var_kl with its clamps). */
  estimator?: KlEstimator;
}

export interface KlPenaltyResult {
  /** The estimate per token (0 where the mask is 0), differentiable with respect to `logprobs`. */
  kl: tf.Tensor;
  /** Its mask-weighted mean (0 when the mask sums to 0), differentiable. */
  mean: tf.Scalar;
}

/** Per-token KL estimate between the policy's log-probs and constant reference log-probs (docs/policy.md). */
export function klPenalty(
  logprobs: tf.Tensor,
  refLogprobs: Constant,
  mask: MaskInput | null = null,
  options?: KlPenaltyOptions,
): KlPenaltyResult {
  const opts = optionsObject(options, 'klPenalty options');
  checkKeys(opts, ['estimator'], 'klPenalty');
  const lp = requireTensor(logprobs, 'logprobs');
  const n = lp.size;
  const ref = readF32(refLogprobs, 'refLogprobs', n);
  const m = readMask(mask, 'mask', n);
  const op = custom((a: tf.Tensor) => {
    const r = coreKlPenalty(f32(a), ref, m?.mask ?? null, opts.estimator);
    return {
      value: tf.tensor(r.kl, lp.shape, 'float32'),
      gradFunc: (dy: tf.Tensor) => tf.mul(dy, tf.tensor(r.grad, lp.shape, 'float32')),
    };
  });
  const kl = op(lp);
  let mean: tf.Scalar;
  if (m) {
    const w = m.mask;
    let total = 0;
    for (let i = 0; i < n; i++) total += w[i]!;
    const weights = tf.tensor(Float32Array.from(w), lp.shape, 'float32');
    mean = tf.mul(tf.sum(tf.mul(kl, weights)), total > 0 ? 1 / total : 0);
  } else {
    mean = n > 0 ? tf.mean(kl) : tf.scalar(0);
  }
  return { kl, mean };
}

// ---- grpoLoss (policyLossFromLogits) ------------------------------------------------------------

export interface GrpoLossOptions extends Omit<CorePolicyFromLogitsOptions, 'refLogprobs' | 'tokenWeights'> {
  /**
   * Tokens per sequence T: required with [B * T, V] logits; with [B, T, V] logits it is the second
   * axis (passing another value throws).
   */
  seqLen?: number;
  /** Reference-model log-probs [B, T] (a constant): adds beta * KL per token. */
  refLogprobs?: Constant;
  /** Per-token weights [B, T] of the policy term (a constant), as the core's `tokenWeights`. */
  tokenWeights?: Constant;
}

export interface GrpoLossResult {
  /** The aggregated loss, differentiable with respect to `logits` (the kernel's gradient times dy). */
  loss: tf.Scalar;
  metrics: PolicyLossMetrics;
  /** log p(target) per token [B * T] (not differentiable); 0 where the mask is 0 or the target is `ignoreIndex`. */
  logprobs: Float32Array;
  /** Entropy per token [B * T], with `returnEntropy` or `entropyCoef`; 0 where the row is not read. */
  entropy?: Float32Array;
}

/** Options of the core op that the adapter sets itself: passing one is a TypeError saying so. */
const GRPO_SET_BY_ADAPTER: Record<string, string> = {
  vocab: "set by the adapter (the logits' last axis), expected no vocab option",
  dtype: 'set by the adapter (tfjs logits are float32), expected no dtype option',
  gradDtype: "set by the adapter to 'f32' (tfjs has no bf16 dtype), expected no gradDtype option",
  inPlace: 'set by the adapter to false (the gradient is a new tensor; the logits are never written), expected no inPlace option',
  out: 'set by the adapter (the outputs are its own arrays), expected no out option',
};
/** The core's option keys (its descriptor's, less the internal wantEntropy) less those the adapter sets. */
const GRPO_KEYS = knownKeysMoved(
  'grpoLoss',
  GRPO_SET_BY_ADAPTER,
  Object.keys(POLICY_FROM_LOGITS_OPTIONS).filter((k) => k !== 'wantEntropy' && !(k in GRPO_SET_BY_ADAPTER)),
  ['seqLen', 'refLogprobs', 'tokenWeights', 'lossType', 'preset', 'returnEntropy'],
);

type SavedGradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor;

/**
 * The fused policy loss on logits (docs/tfjs.md#grpoloss): the core `policyLossFromLogits`
 * (tokenLogprobs + policyLoss + tokenLogprobsBackward in one call) as a tfjs op. `logits` is
 * [B, T, V] (or [B * T, V] with `options.seqLen`), float32, differentiable; `targets`,
 * `oldLogprobs` [B, T] and `advantages` ([B] or [B, T]) are constants; `mask` [B, T] is 1/0,
 * weights, or null. The forward computes the loss and the gradient in one read of the logits; the
 * backward hands that gradient (times dy) to tfjs.
 */
export function grpoLoss(
  logits: tf.Tensor,
  targets: IntConstant,
  oldLogprobs: Constant,
  advantages: Constant,
  mask: MaskInput | null | undefined,
  options: GrpoLossOptions & { returnEntropy: true },
): Required<GrpoLossResult>;
export function grpoLoss(
  logits: tf.Tensor,
  targets: IntConstant,
  oldLogprobs: Constant,
  advantages: Constant,
  mask?: MaskInput | null,
  options?: GrpoLossOptions,
): GrpoLossResult;
export function grpoLoss(
  logits: tf.Tensor,
  targets: IntConstant,
  oldLogprobs: Constant,
  advantages: Constant,
  mask: MaskInput | null = null,
  options?: GrpoLossOptions,
): GrpoLossResult {
  const opts = checkOptions<GrpoLossOptions>(options, 'options', false, GRPO_KEYS);
  const x = requireTensor(logits, 'logits', [2, 3]);
  const vocab = x.shape[x.rank - 1]!;
  const n = size(x.shape.slice(0, -1));
  let seqLen: number;
  if (x.rank === 3) {
    seqLen = x.shape[1]!;
    if (opts.seqLen !== undefined && opts.seqLen !== seqLen) {
      throw new RangeError(`options.seqLen: expected undefined or ${seqLen} (the second axis of logits of shape [${x.shape.join(', ')}]), got ${String(opts.seqLen)}`);
    }
  } else {
    if (opts.seqLen === undefined) throw new TypeError('options.seqLen: required with [B * T, V] logits (or pass [B, T, V] logits), got undefined');
    seqLen = opts.seqLen;
    if (typeof seqLen !== 'number' || !Number.isInteger(seqLen) || seqLen < 1 || n % seqLen !== 0) {
      throw new RangeError(`options.seqLen: expected a positive divisor of the number of logits rows (${n}), got ${String(seqLen)}`);
    }
  }
  const b = n / seqLen;
  const tgt = readI32(targets, 'targets', n);
  const old = readF32(oldLogprobs, 'oldLogprobs', n);
  const adv = readF32(advantages, 'advantages', [b, n]);
  const m = readMask(mask, 'mask', n)?.mask ?? null;
  const { seqLen: _seqLen, refLogprobs, tokenWeights, ...rest } = opts;
  const core: CorePolicyFromLogitsOptions = {
    ...rest,
    ...(refLogprobs !== undefined && { refLogprobs: readF32(refLogprobs, 'options.refLogprobs', n) }),
    ...(tokenWeights !== undefined && { tokenWeights: readF32(tokenWeights, 'options.tokenWeights', n) }),
  };
  // The core returns the entropy with returnEntropy or entropyCoef (it validates both).
  const wantEntropy = opts.returnEntropy === true || opts.entropyCoef !== undefined;
  let res: PolicyLossFromLogitsResult | undefined;
  const op = tf.customGrad(((lg: tf.Tensor, save: tf.GradSaveFunc) => {
    const data = f32(lg);
    const out = { logprobs: new Float32Array(n), ...(wantEntropy && { entropy: new Float32Array(n) }) };
    // The gradient (for dL = 1) is written in the forward, into a pooled buffer, as a tensor that
    // tf keeps for the backward through `save` (a no-op, and the tensor freed, when no gradient is
    // being recorded); the pool reuses the buffer once tf has released that tensor.
    const grad = pooledTensor(n * vocab, x.shape, (buf) => {
      res = corePolicyLossFromLogits(data, tgt, old, adv, m, { vocab, seqLen }, core, { ...out, gradLogits: buf });
    });
    save([grad]);
    const gradFunc: SavedGradFunc = (dy, saved) => {
      const s = dy.dataSync()[0]!;
      const g = saved[0]!;
      if (s === 1) return tf.clone(g); // shares g's data: no copy
      return pooledTensor(n * vocab, x.shape, (buf) => {
        const src = f32(g);
        for (let i = 0; i < buf.length; i++) buf[i] = src[i]! * s;
      });
    };
    return { value: tf.scalar(res!.loss), gradFunc };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Scalar;
  const loss = op(x);
  const r = res!;
  return { loss, metrics: r.metrics, logprobs: r.logprobs, ...(r.entropy && { entropy: r.entropy }) };
}

// ---- preferenceLoss / ktoLoss --------------------------------------------------------------------

export interface PreferenceLossOptions
  extends Omit<CorePreferenceOptions, 'refChosenLogps' | 'refRejectedLogps' | 'chosenLengths' | 'rejectedLengths' | 'margin' | 'preferenceProb'> {
  /** Which loss (the core's `loss` option). Default 'sigmoid' (DPO). */
  lossType?: PreferenceLossType;
  /** Reference-model sequence log-prob sums [P] (constants); both or neither. */
  refChosenLogps?: Constant;
  refRejectedLogps?: Constant;
  /** Completion lengths [P] (>= 1), for the length-averaged losses. */
  chosenLengths?: IntConstant;
  rejectedLengths?: IntConstant;
  margin?: number | Constant;
  preferenceProb?: Constant;
}

export interface PreferenceLossOutput {
  /** Mean loss over the pairs, differentiable with respect to both log-prob sums. */
  loss: tf.Scalar;
  losses: Float32Array;
  chosenRewards: Float32Array;
  rejectedRewards: Float32Array;
  metrics: PreferenceLossResult['metrics'];
}

export type { PreferenceLossType, FDivergence };

/** A pairwise preference loss (DPO, IPO, SimPO, ...; docs/preference.md) of [P] sequence log-prob sums. */
export function preferenceLoss(chosenLogps: tf.Tensor, rejectedLogps: tf.Tensor, options?: PreferenceLossOptions): PreferenceLossOutput {
  const opts = optionsObject(options, 'preferenceLoss options');
  const c = requireTensor(chosenLogps, 'chosenLogps', [1]);
  const r = requireTensor(rejectedLogps, 'rejectedLogps', [1]);
  const p = c.size;
  if (r.size !== p) throw new RangeError(`rejectedLogps: expected ${p} elements (as chosenLogps), got ${r.size}`);
  const { lossType, refChosenLogps, refRejectedLogps, chosenLengths, rejectedLengths, margin, preferenceProb, ...rest } = opts;
  const core: CorePreferenceOptions = {
    ...rest,
    ...(refChosenLogps !== undefined && { refChosenLogps: readF32(refChosenLogps, 'options.refChosenLogps', p) }),
    ...(refRejectedLogps !== undefined && { refRejectedLogps: readF32(refRejectedLogps, 'options.refRejectedLogps', p) }),
    ...(chosenLengths !== undefined && { chosenLengths: readI32(chosenLengths, 'options.chosenLengths', p) }),
    ...(rejectedLengths !== undefined && { rejectedLengths: readI32(rejectedLengths, 'options.rejectedLengths', p) }),
    ...(margin !== undefined && { margin: typeof margin === 'number' ? margin : readF32(margin, 'options.margin', p) }),
    ...(preferenceProb !== undefined && { preferenceProb: readF32(preferenceProb, 'options.preferenceProb', p) }),
  };
  let res: PreferenceLossResult | undefined;
  const op = custom((a: tf.Tensor, bb: tf.Tensor) => {
    const out = corePreferenceLoss(f32(a), f32(bb), lossType, core);
    res = out;
    return {
      value: tf.scalar(out.loss),
      gradFunc: (dy: tf.Tensor) => [scaled(Float32Array.from(out.gradChosen), dy, [p]), scaled(Float32Array.from(out.gradRejected), dy, [p])],
    };
  });
  const loss = op(c, r) as tf.Scalar;
  const o = res!;
  return { loss, losses: o.losses, chosenRewards: o.chosenRewards, rejectedRewards: o.rejectedRewards, metrics: o.metrics };
}

export interface KtoLossOptions {
  /** Desirable (nonzero / true) or undesirable (0 / false), one per example [N]. */
  desirable: MaskInput;
  /** The KL estimate z0, a constant (TRL passes max(0, mean KL)). */
  kl: number;
  /** Reference log-prob sums [N] (constant). Absent = 0. */
  refLogps?: Constant;
  beta?: number;
  desirableWeight?: number;
  undesirableWeight?: number;
}

export interface KtoLossOutput {
  /** Mean loss over the N examples, differentiable with respect to `policyLogps`. */
  loss: tf.Scalar;
  losses: Float32Array;
  rewards: Float32Array;
  metrics: KtoLossResult['metrics'];
}

/** KTO (unpaired preferences; docs/preference.md) of [N] sequence log-prob sums. */
export function ktoLoss(policyLogps: tf.Tensor, options: KtoLossOptions): KtoLossOutput {
  const opts = optionsObject(options, 'ktoLoss options');
  const x = requireTensor(policyLogps, 'policyLogps', [1]);
  const n = x.size;
  const { desirable, refLogps, ...rest } = opts;
  if (desirable === undefined || desirable === null) throw new TypeError('options.desirable: required (one flag per example), got ' + String(desirable));
  const dm = readMask(desirable, 'options.desirable', n)!.mask;
  const flags = new Uint8Array(n);
  for (let i = 0; i < n; i++) flags[i] = dm[i] !== 0 ? 1 : 0;
  const core = {
    ...rest,
    desirable: flags,
    ...(refLogps !== undefined && { refLogps: readF32(refLogps, 'options.refLogps', n) }),
  };
  let res: KtoLossResult | undefined;
  const op = custom((a: tf.Tensor) => {
    const out = coreKtoLoss(f32(a), core);
    res = out;
    return { value: tf.scalar(out.loss), gradFunc: (dy: tf.Tensor) => scaled(Float32Array.from(out.grad), dy, [n]) };
  });
  const loss = op(x) as tf.Scalar;
  const o = res!;
  return { loss, losses: o.losses, rewards: o.rewards, metrics: o.metrics };
}

// ---- vocabDivergence -----------------------------------------------------------------------------

export interface VocabDivergenceOptions {
  /** Default 'jsd' (TRL GKD / Liger JSD). */
  divergence?: DivergenceKind;
  /** jsd mixture weight of the target, in [0, 1]. Default 0.5. Only with 'jsd'. */
  beta?: number;
  /** Divides both logit rows. Default 1. */
  temperature?: number;
  /** Per-row labels: rows whose label equals `ignoreIndex` give 0 and no gradient. */
  labels?: IntConstant;
  /** Default -100; only with `labels`. */
  ignoreIndex?: number;
}

export type { DivergenceKind };

/**
 * Divergence per row between `logits` ([..., V], differentiable) and constant `targetLogits` (same
 * shape), shape [...]; rows where `mask` is 0 give 0 and no gradient. Reduce it as you like (the
 * gradient of the reduction is the kernel's `gradOutput`).
 */
export function vocabDivergence(
  logits: tf.Tensor,
  targetLogits: Constant,
  mask: MaskInput | null = null,
  options?: VocabDivergenceOptions,
): tf.Tensor {
  const opts = optionsObject(options, 'vocabDivergence options');
  checkKeys(opts, ['divergence', 'beta', 'temperature', 'labels', 'ignoreIndex'], 'vocabDivergence');
  const x = requireTensor(logits, 'logits');
  if (x.rank < 2) throw new RangeError(`logits: expected a tensor of shape [..., V] (rank >= 2), got shape [${x.shape.join(', ')}]`);
  const vocab = x.shape[x.rank - 1]!;
  const rowShape = x.shape.slice(0, -1);
  const n = size(rowShape);
  if (isTensor(targetLogits) && targetLogits.shape.join() !== x.shape.join()) {
    throw new RangeError(`targetLogits: expected shape [${x.shape.join(', ')}] (as logits), got [${targetLogits.shape.join(', ')}]`);
  }
  const target = readF32(targetLogits, 'targetLogits', n * vocab);
  const m = readMask(mask, 'mask', n);
  let rows: Uint8Array | null = null;
  if (m) {
    rows = new Uint8Array(n);
    for (let i = 0; i < n; i++) rows[i] = m.mask[i] !== 0 ? 1 : 0;
  }
  const args: CoreDivergenceArgs = {
    vocab,
    divergence: opts.divergence,
    beta: opts.beta,
    temperature: opts.temperature,
    labels: opts.labels === undefined ? undefined : readI32(opts.labels, 'options.labels', n),
    ignoreIndex: opts.ignoreIndex,
    mask: rows,
  };
  const op = custom((lg: tf.Tensor) => {
    const data = f32(lg);
    const d = new Float32Array(n);
    coreVocabDivergence(data, target, args, d);
    return {
      value: tf.tensor(d, rowShape, 'float32'),
      gradFunc: (dy: tf.Tensor) => {
        const g = Float32Array.from(f32(dy));
        return pooledTensor(n * vocab, x.shape, (out) => coreVocabDivergenceGrad(data, target, args, g, out));
      },
    };
  });
  return op(x);
}
