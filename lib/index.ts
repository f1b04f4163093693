// reward-kernels: the public API. One module per kernel family; see KERNELS.md for the math.
export {
  defaultNumThreads,
  getNumThreads,
  measureReadBandwidth,
  setNumThreads,
  setSimdLevel,
  simdLevel,
  type SimdLevel,
} from './runtime.js';
export {
  tokenLogprobs,
  tokenLogprobsAsync,
  tokenLogprobsBackward,
  tokenLogprobsBackwardAsync,
  type Logits,
  type LogitsDType,
  type TokenLogprobsBackwardOptions,
  type TokenLogprobsOptions,
  type TokenLogprobsResult,
} from './logprobs.js';
export {
  ktoLoss,
  ktoLossAsync,
  preferenceLoss,
  preferenceLossAsync,
  tokenWeightedDpoLoss,
  tokenWeightedDpoLossAsync,
  type FDivergence,
  type KtoLossOptions,
  type KtoLossResult,
  type PreferenceLossOptions,
  type PreferenceLossResult,
  type PreferenceLossType,
  type TokenWeightedDpoOptions,
  type TokenWeightedDpoResult,
} from './preference.js';
