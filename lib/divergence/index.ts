// The divergence family: vocabDivergence (vocab-divergence.ts); docs/divergence.md. The logits
// argument is lib/logits.ts.
export * from './enums.js';
export * from './vocab-divergence.js';
