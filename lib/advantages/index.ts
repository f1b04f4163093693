// The advantages family (docs/advantages.md): groupAdvantages, ensembleRewards, gae,
// discountedReturns, maskedWhiten, tokenAdvantages and klRewards (+ adaptiveKlCoef), one file each
// (+ enums, shared checks, the small-call path).
export * from './enums.js';
export { _setSmallPathThreshold } from './small-path.js';
export * from './group-advantages.js';
export * from './ensemble-rewards.js';
export * from './gae.js';
export * from './discounted-returns.js';
export * from './masked-whiten.js';
export * from './token-advantages.js';
export * from './kl-rewards.js';
export type { TokenMask } from '../types.js';
export * from './gated-rewards.js';
export * from './discounted-cumsum.js';
export * from './lagrangian-mix.js';
