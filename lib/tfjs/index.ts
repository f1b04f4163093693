// reward-kernels/tfjs: the kernels as differentiable TensorFlow.js ops (docs/tfjs.md).
// Needs @tensorflow/tfjs-core (an optional peer dependency) and a registered backend (cpu or wasm).
// `import 'reward-kernels'` never loads this file, nor tfjs.

export {
  grpoLoss,
  klPenalty,
  ktoLoss,
  policyLoss,
  preferenceLoss,
  sequenceLogprobs,
  tokenLogprobs,
  vocabDivergence,
  type DivergenceKind,
  type FDivergence,
  type GrpoLossOptions,
  type GrpoLossResult,
  type KlEstimator,
  type KlPenaltyOptions,
  type KlPenaltyResult,
  type KtoLossOptions,
  type KtoLossOutput,
  type LossAggregation,
  type PolicyLossMetrics,
  type PolicyLossOptions,
  type PolicyLossResult,
  type PolicyVariant,
  type PreferenceLossOptions,
  type PreferenceLossOutput,
  type PreferenceLossType,
  type SequenceLogprobsOptions,
  type TokenLogprobsOptions,
  type TokenLogprobsResult,
  type VocabDivergenceOptions,
} from './ops.js';
export { clearGradientPool, gradientPoolStats, type Constant, type IntConstant, type MaskInput } from './convert.js';
