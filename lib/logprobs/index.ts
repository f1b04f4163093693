// The logprobs family: tokenLogprobs (token-logprobs.ts) and tokenLogprobsBackward
// (token-logprobs-backward.ts); docs/logprobs.md. The logits argument is lib/logits.ts.
export type { LogprobsCommonOptions, TokenIds } from './shared.js';
export * from './token-logprobs.js';
export * from './token-logprobs-backward.js';
