import { loadNative } from './native.js';

// A missing native binary is an error at import, with how to build it.
loadNative();

// reward-kernels: the public API. One folder per kernel family; the math is in docs/<family>.md.
export {
  defaultNumThreads,
  defaultProbeBytes,
  getNumThreads,
  lastLevelCacheBytes,
  measureBandwidth,
  measureReadBandwidth,
  setNumThreads,
  setSimdLevel,
  simdLevel,
  type BandwidthMeasurement,
  type BandwidthOptions,
  type BandwidthStats,
  type SimdLevel,
} from './runtime.js';
export {
  tokenLogprobs,
  tokenLogprobsAsync,
  tokenLogprobsBackward,
  tokenLogprobsBackwardAsync,
  type DeviceTokenLogprobsBackwardOptions,
  type DeviceTokenLogprobsOptions,
  type DeviceTokenLogprobsResult,
  type TokenLogprobsBackwardOptions,
  type TokenLogprobsOptions,
  type TokenLogprobsResult,
} from './logprobs/index.js';
export type { Logits, LogitsDType } from './logits.js';
export {
  cuda,
  DeviceArray,
  type CudaDevice,
  type CudaStatus,
  type DeviceDType,
  type HostArray,
  type HostArrayOf,
} from './cuda.js';
export {
  ktoLoss,
  ktoLossAsync,
  ldDpoLogps,
  ldDpoLogpsAsync,
  preferenceLoss,
  preferenceLossAsync,
  tokenWeightedDpoLoss,
  tokenWeightedDpoLossAsync,
  type DeviceKtoLossOptions,
  type DeviceKtoLossResult,
  type DevicePreferenceLossOptions,
  type DevicePreferenceLossResult,
  type DeviceTokenWeightedDpoOptions,
  type DeviceTokenWeightedDpoResult,
  type FDivergence,
  type KtoLossOptions,
  type KtoLossResult,
  type DeviceLdDpoLogpsOptions,
  type DeviceLdDpoLogpsResult,
  type LdDpoLogpsOptions,
  type LdDpoLogpsResult,
  type PreferenceLossOptions,
  type PreferenceLossResult,
  type PreferenceLossType,
  type TokenWeightedDpoOptions,
  type TokenWeightedDpoResult,
} from './preference/index.js';
export * from './policy/index.js';
export * from './pairwise/index.js';
export type { TokenMask } from './types.js';
export {
  discountedReturns,
  discountedReturnsAsync,
  ensembleRewards,
  ensembleRewardsAsync,
  gae,
  gaeAsync,
  groupAdvantages,
  groupAdvantagesAsync,
  maskedWhiten,
  maskedWhitenAsync,
  type AdvantageEstimator,
  type AdvantageScale,
  type DeviceDiscountedReturnsOptions,
  type DeviceEnsembleRewardsOptions,
  type DeviceGaeOptions,
  type DeviceGaeResult,
  type DeviceGroupAdvantagesOptions,
  type DeviceGroupAdvantagesResult,
  type DeviceMaskedWhitenOptions,
  type DiscountedReturnsOptions,
  type EnsembleMethod,
  type EnsembleRewardsOptions,
  type GaeOptions,
  type GaeResult,
  type GroupAdvantagesOptions,
  type GroupAdvantagesResult,
  type MaskedWhitenOptions,
  type MultiRewardMode,
  type SingletonBaseline,
} from './advantages/index.js';
export {
  adaptiveKlCoef,
  klRewards,
  klRewardsAsync,
  tokenAdvantages,
  tokenAdvantagesAsync,
  type AdaptiveKlOptions,
  type DeviceKlRewardsOptions,
  type DeviceKlRewardsResult,
  type DeviceTokenAdvantagesOptions,
  type DeviceTokenAdvantagesResult,
  type KlRewardsOptions,
  type KlRewardsResult,
  type TokenAdvantageEstimator,
  type TokenAdvantagesOptions,
  type TokenAdvantagesResult,
} from './advantages/index.js';
export {
  vocabDivergence,
  vocabDivergenceAsync,
  type DeviceVocabDivergenceOptions,
  type DeviceVocabDivergenceResult,
  type DivergenceKind,
  type VocabDivergenceOptions,
  type VocabDivergenceResult,
} from './divergence/index.js';
// The option-dependent signatures (requested outputs typed present) and token ids.
export type { TokenIds, TokenLogprobsAsyncFn, TokenLogprobsFn, WithEntropy } from './logprobs/index.js';
export type { VocabDivergenceAsyncFn, VocabDivergenceFn, WithGradient } from './divergence/index.js';
export type { PolicyLossAsyncFn, PolicyLossFn, PolicyLossResultOf } from './policy/index.js';
export type { Preset } from './presets.js';
