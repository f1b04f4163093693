// tokenLogprobsBackward: the gradient of a loss of the token log-probs (and entropies) with respect
// to the logits (docs/logprobs.md).
//
//   dL/dz_j = (1/tau) ( g (1[j=y] - p_j) - h p_j (z'_j - lse + H) ),  g = dL/dlogp, h = dL/dH
import { options as optionsObject } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { gradientInPlace, LOGITS_MIX, overlaps, type Logits } from '../logits.js';
import { defineOp, flag, knownKeys, type Buf } from '../op.js';
import { COMMON_SLOTS, LOGPROBS_OPTIONS, readCommon, type LogprobsCommonOptions, type TokenIds } from './shared.js';

export interface TokenLogprobsBackwardOptions extends LogprobsCommonOptions {
  /** dL/dH per row (N) when the loss uses the entropy. */
  gradEntropy?: Float32Array;
  /** The forward pass's logsumexp: skips the statistics pass (one read of the logits instead of two). */
  logsumexp?: Float32Array;
  /** The forward pass's entropy: needed with gradEntropy for the one-read path. */
  entropy?: Float32Array;
  /** Write the gradient over the (f32) logits themselves. Default false. */
  inPlace?: boolean;
  /** Caller-owned gradient buffer, (N * V). */
  out?: Float32Array;
}

/** tokenLogprobsBackward options when the logits are a DeviceArray: every array is an f32 DeviceArray. */
export interface DeviceTokenLogprobsBackwardOptions
  extends Omit<TokenLogprobsBackwardOptions, 'gradEntropy' | 'logsumexp' | 'entropy' | 'out'> {
  gradEntropy?: DeviceArray;
  logsumexp?: DeviceArray;
  entropy?: DeviceArray;
  out?: DeviceArray;
}

const inPlaceFlag = flag(false);
const BACKWARD_KEYS = knownKeys('tokenLogprobsBackward', Object.keys(LOGPROBS_OPTIONS), ['gradEntropy', 'logsumexp', 'entropy', 'inPlace', 'out']);

type Args = [logits: unknown, targets: unknown, gradLogprobs: unknown, options: unknown];

const op = defineOp({
  name: 'tokenLogprobsBackward',
  mix: LOGITS_MIX,
  slots: {
    ...COMMON_SLOTS,
    gradLogprobs: { types: ['f32'], shape: 'N' },
    gradEntropy: { types: ['f32'], shape: 'N' },
    logsumexp: { types: ['f32'], shape: 'N' },
    entropy: { types: ['f32'], shape: 'N' },
    // may be the logits slot's own array (inPlace: f32 logits only)
    grad: { types: ['f32'], shape: 'N*V', out: true, inPlace: ['logits'] },
  },
  options: LOGPROBS_OPTIONS,
  prepare(io, ...[logits, targets, gradLogprobs, options]: Args) {
    const opts = optionsObject<TokenLogprobsBackwardOptions>(options, 'options', true, BACKWARD_KEYS);
    const c = readCommon(io, logits, targets, opts);
    const n = c.rows;
    for (const [v, name] of [
      [gradLogprobs, 'gradLogprobs'], [opts.gradEntropy, 'options.gradEntropy'], [opts.logsumexp, 'options.logsumexp'],
      [opts.entropy, 'options.entropy'], [opts.out, 'options.out'],
    ] as const) io.rejectDevice(v, name);
    io.read('gradLogprobs', gradLogprobs, 'gradLogprobs', n);
    for (const slot of ['gradEntropy', 'logsumexp', 'entropy'] as const) {
      if (opts[slot] !== undefined) io.read(slot, opts[slot], `options.${slot}`, n);
    }
    const inPlace = inPlaceFlag.read(opts.inPlace, 'options.inPlace', {});
    let out: Buf;
    if (inPlace) {
      out = gradientInPlace(io, 'grad', c, logits, opts.out, 'options.out', 'no out buffer');
    } else {
      out = io.out('grad', opts.out, 'options.out', c.logits.length);
      // The same memory is fine for f32 logits (the kernel supports in place); any other overlap is not.
      const same = io.device ? (out as DeviceArray).ptr === (c.logits as DeviceArray).ptr && c.dtype === 'f32' : out === c.logits;
      if (!same && overlaps(out, c.logits)) {
        throw new RangeError('options.out: expected a buffer apart from logits (or inPlace: true), received one that overlaps them');
      }
    }
    return { params: c.params, finish: () => out };
  },
});

const typed = op.typed<
  [logits: Logits, targets: TokenIds, gradLogprobs: Float32Array, options: TokenLogprobsBackwardOptions],
  Float32Array,
  [logits: DeviceArray, targets: DeviceArray, gradLogprobs: DeviceArray, options: DeviceTokenLogprobsBackwardOptions],
  DeviceArray<'f32'>
>();

/**
 * Gradient of a loss with respect to the logits, (N * V) f32, given dL/dlogp per row (and
 * optionally dL/dH). Pass the forward pass's `logsumexp` (and `entropy` when `gradEntropy` is
 * given) to read the logits once instead of twice. `inPlace: true` overwrites f32 logits.
 *
 * Precision: with `logsumexp` given, p_j is exp(z_j/tau - lse) with lse stored in f32, so its
 * relative error grows like |lse| * 6e-8; for |logits / tau| in the thousands, leave
 * `logsumexp` out and the kernel recomputes the row statistics exactly.
 *
 * With DeviceArrays (every array on the device, f32 except the logits and the i32 targets) the
 * kernel runs on the GPU and the gradient is a DeviceArray.
 */
export const tokenLogprobsBackward = typed.sync;
/** tokenLogprobsBackward on a worker thread; leave its buffers untouched until it settles. */
export const tokenLogprobsBackwardAsync = typed.async;
