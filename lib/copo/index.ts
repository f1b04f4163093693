// COPO (consistency-aware policy optimisation, docs/papers/copo.md): copoAdvantages and copoPolicyLoss.
export * from './copo-advantages.js';
export * from './copo-policy-loss.js';
