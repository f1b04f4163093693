// The pairwise family (docs/papers/): per-pair losses of the seed papers over per-step log-probs.
export * from './d3po-loss.js';
export * from './prdp-loss.js';
export * from './preference-strength-loss.js';
export * from './p3o-loss.js';
