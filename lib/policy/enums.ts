// The option enums of the policy family, in native code order (native/core/policy.h).
export type PolicyVariant = 'ppo' | 'gspo' | 'cispo' | 'sapo' | 'gpg';
export type LossAggregation = 'token-mean' | 'seq-mean-token-mean' | 'seq-mean-token-sum' | 'seq-mean-token-sum-norm';
export type KlEstimator = 'k1' | 'k2' | 'k3' | 'abs' | 'k3+';

export const VARIANTS: readonly PolicyVariant[] = ['ppo', 'gspo', 'cispo', 'sapo', 'gpg'];
export const AGGREGATIONS: readonly LossAggregation[] = [
  'token-mean',
  'seq-mean-token-mean',
  'seq-mean-token-sum',
  'seq-mean-token-sum-norm',
];
export const ESTIMATORS: readonly KlEstimator[] = ['k1', 'k2', 'k3', 'abs', 'k3+'];

/** What the device path says when host and device arrays are mixed. */
export const LOGPROBS_MIX = 'the log-probs are a DeviceArray';
