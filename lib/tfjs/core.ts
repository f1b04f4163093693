// Every call from the tfjs adapter into the core API is in this file, so that a change of the core
// API's option names touches nothing else. The adapter's own API (lib/tfjs/ops.ts) uses the
// session's conventions (a positional nullable mask before the options, `returnEntropy`).

import {
  klPenalty,
  ktoLoss,
  policyLoss,
  policyLossFromLogits,
  preferenceLoss,
  tokenLogprobs,
  tokenLogprobsBackward,
  vocabDivergence,
  type KlPenaltyResult,
  type KtoLossOptions,
  type KtoLossResult,
  type PolicyLossFromLogitsOptions,
  type PolicyLossFromLogitsResult,
  type PolicyLossOptions,
  type PolicyLossResult,
  type PreferenceLossOptions,
  type PreferenceLossResult,
  type TokenMask,
} from '../index.js';
import type { KlEstimator } from '../policy/enums.js';
import type { DivergenceKind } from '../divergence/index.js';

export interface CoreLogprobsArgs {
  vocab: number;
  temperature: number | undefined;
  ignoreIndex: number | undefined;
}

/** logp (and H) per row into `out` (caller-owned, length N each); returns the logsumexp. */
export function coreTokenLogprobs(
  logits: Float32Array,
  targets: Int32Array,
  a: CoreLogprobsArgs,
  out: { logprobs: Float32Array; entropy?: Float32Array },
): Float32Array {
  const r = tokenLogprobs(logits, targets, {
    vocab: a.vocab,
    ...(a.temperature !== undefined && { temperature: a.temperature }),
    ...(a.ignoreIndex !== undefined && { ignoreIndex: a.ignoreIndex }),
    ...(out.entropy && { returnEntropy: true }),
    out,
  });
  return r.logsumexp;
}

/** dL/dlogits into `out` (never in place: the logits are a tensor's own storage). */
export function coreTokenLogprobsBackward(
  logits: Float32Array,
  targets: Int32Array,
  gradLogprobs: Float32Array,
  a: CoreLogprobsArgs,
  saved: { logsumexp: Float32Array; entropy?: Float32Array; gradEntropy?: Float32Array },
  out: Float32Array,
): void {
  tokenLogprobsBackward(logits, targets, gradLogprobs, {
    vocab: a.vocab,
    ...(a.temperature !== undefined && { temperature: a.temperature }),
    ...(a.ignoreIndex !== undefined && { ignoreIndex: a.ignoreIndex }),
    logsumexp: saved.logsumexp,
    ...(saved.gradEntropy && { gradEntropy: saved.gradEntropy, entropy: saved.entropy }),
    out,
  });
}

export type CorePolicyOptions = Omit<PolicyLossOptions, 'out'>;

export function corePolicyLoss(
  logprobs: Float32Array,
  oldLogprobs: Float32Array,
  advantages: Float32Array,
  mask: TokenMask | null,
  options: CorePolicyOptions,
): PolicyLossResult {
  return policyLoss(logprobs, oldLogprobs, advantages, mask, options);
}

/** The core options less those the adapter sets itself (shape, dtypes, outputs, in place). */
export type CorePolicyFromLogitsOptions = Omit<PolicyLossFromLogitsOptions, 'vocab' | 'seqLen' | 'dtype' | 'gradDtype' | 'inPlace' | 'out'>;

/**
 * The fused loss over f32 logits: logp (and H) into `out`, the f32 gradient for dL = 1 into
 * `out.gradLogits` (never in place: the logits are a tensor's own storage).
 */
export function corePolicyLossFromLogits(
  logits: Float32Array,
  targets: Int32Array,
  oldLogprobs: Float32Array,
  advantages: Float32Array,
  mask: TokenMask | null,
  shape: { vocab: number; seqLen: number },
  options: CorePolicyFromLogitsOptions,
  out: { gradLogits: Float32Array; logprobs: Float32Array; entropy?: Float32Array },
): PolicyLossFromLogitsResult {
  return policyLossFromLogits(logits, targets, oldLogprobs, advantages, mask, {
    ...options,
    vocab: shape.vocab,
    seqLen: shape.seqLen,
    gradDtype: 'f32',
    out,
  });
}

export function coreKlPenalty(
  logprobs: Float32Array,
  refLogprobs: Float32Array,
  mask: TokenMask | null,
  estimator: KlEstimator | undefined,
): KlPenaltyResult {
  return klPenalty(logprobs, refLogprobs, mask, estimator !== undefined ? { estimator } : {});
}

/** The core options less `lossType` and `out`; the adapter passes its `lossType` separately. */
export type CorePreferenceOptions = Omit<PreferenceLossOptions, 'lossType' | 'out'>;
export type CorePreferenceLossType = NonNullable<PreferenceLossOptions['lossType']>;

export function corePreferenceLoss(
  chosen: Float32Array,
  rejected: Float32Array,
  lossType: CorePreferenceLossType | undefined,
  options: CorePreferenceOptions,
): PreferenceLossResult {
  return preferenceLoss(chosen, rejected, { ...options, ...(lossType !== undefined && { lossType }) });
}

export type CoreKtoOptions = Omit<KtoLossOptions, 'out'>;

export function coreKtoLoss(policyLogps: Float32Array, options: CoreKtoOptions): KtoLossResult {
  return ktoLoss(policyLogps, options);
}

export interface CoreDivergenceArgs {
  vocab: number;
  divergence: DivergenceKind | undefined;
  beta: number | undefined;
  temperature: number | undefined;
  labels: Int32Array | undefined;
  ignoreIndex: number | undefined;
  mask: Uint8Array | null;
}

function divergenceOptions(a: CoreDivergenceArgs) {
  return {
    vocab: a.vocab,
    ...(a.divergence !== undefined && { divergence: a.divergence }),
    ...(a.beta !== undefined && { beta: a.beta }),
    ...(a.temperature !== undefined && { temperature: a.temperature }),
    ...(a.labels !== undefined && { labels: a.labels }),
    ...(a.ignoreIndex !== undefined && { ignoreIndex: a.ignoreIndex }),
  };
}

/** The divergence per row into `out` (length N). */
export function coreVocabDivergence(logits: Float32Array, target: Float32Array, a: CoreDivergenceArgs, out: Float32Array): void {
  vocabDivergence(logits, target, a.mask, { ...divergenceOptions(a), out: { divergence: out } });
}

/** dL/dlogits for L = sum_r gradOutput_r D_r, into `out` (N * V). */
export function coreVocabDivergenceGrad(
  logits: Float32Array,
  target: Float32Array,
  a: CoreDivergenceArgs,
  gradOutput: Float32Array,
  out: Float32Array,
): void {
  vocabDivergence(logits, target, a.mask, { ...divergenceOptions(a), returnGradient: true, gradOutput, out: { gradient: out } });
}
