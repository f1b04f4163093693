// The policy family (docs/policy.md): policyLoss, klPenalty, valueLoss, geoMeanPolicyLoss, rolloutCorrection. Only the
// public names leave the folder.
export type { KlEstimator, LossAggregation, PolicyVariant } from './enums.js';
export {
  policyLoss,
  policyLossAsync,
  type DevicePolicyLossOptions,
  type DevicePolicyLossResult,
  type PolicyLossMetrics,
  type PolicyLossOptions,
  type PolicyLossResult,
  type PolicyLossFn,
  type PolicyLossAsyncFn,
  type PolicyLossResultOf,
} from './policy-loss.js';
export {
  klPenalty,
  klPenaltyAsync,
  type DeviceKlPenaltyOptions,
  type DeviceKlPenaltyResult,
  type KlPenaltyOptions,
  type KlPenaltyResult,
} from './kl-penalty.js';
export * from './value-loss.js';
export * from './geo-mean-policy-loss.js';
export {
  rolloutCorrection,
  rolloutCorrectionAsync,
  type DeviceRolloutCorrectionOptions,
  type DeviceRolloutCorrectionResult,
  type RolloutCorrectionMetrics,
  type RolloutCorrectionMode,
  type RolloutCorrectionOptions,
  type RolloutCorrectionResult,
  type RolloutRejection,
  type RolloutRejectionCriterion,
} from './rollout-correction.js';
export * from './reinforce-policy-loss.js';
export * from './luspo-policy-loss.js';
export * from './vespo-policy-loss.js';
export * from './cov-policy-loss.js';
export * from './high-entropy-mask.js';
export * from './adaptive-entropy.js';
export * from './mask-truncated-completions.js';
export {
  policyLossFromLogits,
  policyLossFromLogitsAsync,
  type GradDType,
  type PolicyLossFromLogitsOptions,
  type PolicyLossFromLogitsResult,
  type PolicyLossFromLogitsFn,
  type PolicyLossFromLogitsAsyncFn,
  type PolicyLossFromLogitsResultOf,
  type DevicePolicyLossFromLogitsOptions,
  type DevicePolicyLossFromLogitsResult,
} from './policy-loss-from-logits.js';
