// The discrete-diffusion family: DRAKES's Gumbel-softmax sample and its backward
// (gumbel-softmax.ts); docs/papers/drakes.md.
export * from './gumbel-softmax.js';
export * from './drakes-kl.js';
