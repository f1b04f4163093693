// The preference family: preferenceLoss (preference-loss.ts), ktoLoss (kto-loss.ts) and
// tokenWeightedDpoLoss (token-weighted-dpo.ts), ldDpoLogps (ld-dpo-logps.ts); the losses' table in losses.ts; docs/preference.md.
export { FDIVS, LOSS_TABLE, LOSSES, type FDivergence, type PreferenceLossType } from './losses.js';
export * from './preference-loss.js';
export * from './kto-loss.js';
export * from './token-weighted-dpo.js';
export * from './ld-dpo-logps.js';
