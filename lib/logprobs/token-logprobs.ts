// tokenLogprobs: the log-prob of each row's target token over the whole vocabulary (docs/logprobs.md).
//
// logits: (N, V) row-major as f32 (Float32Array) or bf16/f16 (Uint16Array + dtype); targets: (N) Int32.
//   z' = z / tau,  lse = log sum_j exp(z'_j),  logp = z'_y - lse,  H = lse - sum_j p_j z'_j
import { options as optionsObject } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { LOGITS_MIX, type Logits } from '../logits.js';
import { defineOp, flag, knownKeysMoved, outKeys, renamedTo } from '../op.js';
import { COMMON_SLOTS, LOGPROBS_OPTIONS, readCommon, type LogprobsCommonOptions, type TokenIds } from './shared.js';

export interface TokenLogprobsOptions extends LogprobsCommonOptions {
  /** Also return the entropy of each row's distribution (`result.entropy`). Default false. */
  returnEntropy?: boolean;
  /** Caller-owned outputs (length N each), so a training loop allocates nothing. */
  out?: { logprobs?: Float32Array; logsumexp?: Float32Array; entropy?: Float32Array };
}

export interface TokenLogprobsResult {
  /** log p(target) per row, (N). */
  logprobs: Float32Array;
  /** log sum_j exp(z_j / tau) per row, (N): reusable by the backward pass. */
  logsumexp: Float32Array;
  /** Entropy per row, (N), when `returnEntropy: true`. */
  entropy?: Float32Array;
}

/** tokenLogprobs options when the logits are a DeviceArray: outputs are DeviceArrays too. */
export interface DeviceTokenLogprobsOptions extends Omit<TokenLogprobsOptions, 'out'> {
  /** Caller-owned f32 DeviceArrays of length N. */
  out?: { logprobs?: DeviceArray; logsumexp?: DeviceArray; entropy?: DeviceArray };
}

/** tokenLogprobs' result on the device: f32 DeviceArrays of length N (owned by the caller: free() them). */
export interface DeviceTokenLogprobsResult {
  logprobs: DeviceArray<'f32'>;
  logsumexp: DeviceArray<'f32'>;
  entropy?: DeviceArray<'f32'>;
}

const entropyFlag = flag(false);
const FORWARD_KEYS = knownKeysMoved(
  'tokenLogprobs',
  { entropy: renamedTo('returnEntropy', ' (an option named after a quantity is an input array; one asking for an output is return<Name>)') },
  Object.keys(LOGPROBS_OPTIONS), ['returnEntropy', 'out'],
);
const FORWARD_OUTS = outKeys('tokenLogprobs', ['logprobs', 'logsumexp', 'entropy']);

const op = defineOp({
  name: 'tokenLogprobs',
  mix: LOGITS_MIX,
  slots: {
    ...COMMON_SLOTS,
    logprobs: { types: ['f32'], shape: 'N', out: true },
    logsumexp: { types: ['f32'], shape: 'N', out: true },
    entropy: { types: ['f32'], shape: 'N', out: true },
  },
  options: LOGPROBS_OPTIONS,
  prepare(io, ...[logits, targets, options]: [logits: unknown, targets: unknown, options: unknown]) {
    const opts = optionsObject<TokenLogprobsOptions>(options, 'options', true, FORWARD_KEYS);
    const c = readCommon(io, logits, targets, opts);
    const wantEntropy = entropyFlag.read(opts.returnEntropy, 'options.returnEntropy', {});
    const out = opts.out === undefined ? {} : optionsObject<NonNullable<TokenLogprobsOptions['out']>>(opts.out, 'options.out', true, FORWARD_OUTS);
    io.rejectDevice(out.logprobs, 'options.out.logprobs');
    io.rejectDevice(out.logsumexp, 'options.out.logsumexp');
    io.rejectDevice(out.entropy, 'options.out.entropy');
    const result = {
      logprobs: io.out('logprobs', out.logprobs, 'options.out.logprobs', c.rows),
      logsumexp: io.out('logsumexp', out.logsumexp, 'options.out.logsumexp', c.rows),
    } as TokenLogprobsResult;
    if (wantEntropy) result.entropy = io.out<Float32Array>('entropy', out.entropy, 'options.out.entropy', c.rows);
    return { params: c.params, finish: () => result };
  },
});

/** The result with `entropy` present (not optional) when the call passed `returnEntropy: true`. */
export type WithEntropy<R, E, A> = E extends true ? Omit<R, 'entropy'> & { entropy: A } : R;
type Host<F> = [F] extends [Logits] ? true : false;

/** tokenLogprobs' signature: host or device by the logits; `entropy` typed present when asked for. */
export interface TokenLogprobsFn {
  <F extends Logits | DeviceArray, E extends boolean | undefined = undefined>(
    logits: F,
    targets: Host<F> extends true ? TokenIds : DeviceArray,
    options: (Host<F> extends true ? TokenLogprobsOptions : DeviceTokenLogprobsOptions) & { returnEntropy?: E },
  ): Host<F> extends true ? WithEntropy<TokenLogprobsResult, E, Float32Array> : WithEntropy<DeviceTokenLogprobsResult, E, DeviceArray<'f32'>>;
}
/** tokenLogprobsAsync's signature (tokenLogprobs' in a Promise). */
export interface TokenLogprobsAsyncFn {
  <F extends Logits | DeviceArray, E extends boolean | undefined = undefined>(
    logits: F,
    targets: Host<F> extends true ? TokenIds : DeviceArray,
    options: (Host<F> extends true ? TokenLogprobsOptions : DeviceTokenLogprobsOptions) & { returnEntropy?: E },
  ): Promise<Host<F> extends true ? WithEntropy<TokenLogprobsResult, E, Float32Array> : WithEntropy<DeviceTokenLogprobsResult, E, DeviceArray<'f32'>>>;
}

const typed = op.as<TokenLogprobsFn, TokenLogprobsAsyncFn>();

/**
 * Log-probability of each row's target token under softmax(logits / temperature), in one pass
 * over the logits, with the row's logsumexp and (optionally) entropy.
 *
 * With DeviceArrays (logits f32/bf16/f16 by their dtype, targets i32, outputs f32) the kernel runs
 * on the GPU and the results are DeviceArrays (owned by the caller: free() them, or let GC do it).
 * Targets are checked on the device: a bad one is the same RangeError as on the host, and the call
 * waits for the device to know (the Async form waits on a worker thread).
 *
 * @example
 * const { logprobs, entropy } = tokenLogprobs(logits, targets, { vocab: 32000, returnEntropy: true });
 */
export const tokenLogprobs = typed.sync;
/** tokenLogprobs on a worker thread; leave its buffers untouched until it settles. */
export const tokenLogprobsAsync = typed.async;
