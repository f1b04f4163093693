// The policy family: policyLoss (policy-loss.ts) and klPenalty (kl-penalty.ts); docs/policy.md.
export * from './enums.js';
export * from './policy-loss.js';
export * from './kl-penalty.js';
export * from './value-loss.js';
export * from './geo-mean-policy-loss.js';
