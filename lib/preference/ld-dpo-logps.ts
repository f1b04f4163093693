// ldDpoLogps: the sequence log-probs of LD-DPO (TRL DPOConfig `ld_alpha`, docs/preference.md), to
// feed preferenceLoss's chosenLogps / rejectedLogps (and, from the reference model's per-token
// log-probs, refChosenLogps / refRejectedLogps).
//
// chosen, rejected: (P, T) per-token log-probs, T = seqLen; masks (P, T) u8 or null (every token).
// Per pair: n_w, n_l the completion token counts, s = min(n_w, n_l); the first s completion tokens
// of each row are shared, the rest verbose: logps = sum_shared + alpha * sum_verbose.
import { describe, finiteIn } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { defineOp, flag, int, knownKeys, openOptions, type OptionSpec, packOptions, readOptions } from '../op.js';
import { PREFERENCE_MIX } from './shared.js';

export interface LdDpoLogpsOptions {
  /** T: each array holds P rows of T tokens (padded, row-major). */
  seqLen: number;
  /** LD-DPO alpha in [0, 1] (TRL `ld_alpha`): 1 is the plain sum, 0 drops the verbose tokens. */
  alpha: number;
  /** Also return d logps / d token (P * T): 1 shared, alpha verbose, 0 outside the completion. Default false. */
  returnWeights?: boolean;
  out?: {
    chosenLogps?: Float32Array;
    rejectedLogps?: Float32Array;
    chosenWeights?: Float32Array;
    rejectedWeights?: Float32Array;
  };
}

export interface LdDpoLogpsResult {
  /** Sequence log-probs (P) of the chosen completions. */
  chosenLogps: Float32Array;
  /** Sequence log-probs (P) of the rejected completions. */
  rejectedLogps: Float32Array;
  /** With returnWeights: d chosenLogps[i] / d chosenTokenLogps[i, t] (P * T); the backward is gradChosen[i] * weight. */
  chosenWeights?: Float32Array;
  rejectedWeights?: Float32Array;
}

/** ldDpoLogps options when the token log-probs are DeviceArrays (outputs are f32 DeviceArrays). */
export interface DeviceLdDpoLogpsOptions extends Omit<LdDpoLogpsOptions, 'out'> {
  out?: {
    chosenLogps?: DeviceArray;
    rejectedLogps?: DeviceArray;
    chosenWeights?: DeviceArray;
    rejectedWeights?: DeviceArray;
  };
}

export interface DeviceLdDpoLogpsResult {
  chosenLogps: DeviceArray<'f32'>;
  rejectedLogps: DeviceArray<'f32'>;
  chosenWeights?: DeviceArray<'f32'>;
  rejectedWeights?: DeviceArray<'f32'>;
}

const LD_OPTIONS = {
  seqLen: int(1, 2 ** 31 - 1),
  /** Required: there is no LD-DPO without it (TRL's None is plain summing: preferenceLoss on sums). */
  alpha: {
    read(v: unknown, name: string): number {
      if (v === undefined) throw new TypeError(`${name}: expected a number in [0, 1] (TRL ld_alpha), received undefined`);
      return finiteIn(v, name, 0, 1);
    },
    code: (v: number) => v,
  } satisfies OptionSpec<number>,
  returnWeights: flag(false),
};

const LD_OUTS = ['chosenLogps', 'rejectedLogps', 'chosenWeights', 'rejectedWeights'] as const;
const LD_KEYS = knownKeys('ldDpoLogps', Object.keys(LD_OPTIONS), [], ['out']);

type Args = [chosenTokenLogps: unknown, rejectedTokenLogps: unknown, chosenMask: unknown, rejectedMask: unknown, options: unknown];

/** A host mask: a Uint8Array or null (the host path's own message). */
function maskCheck(device: boolean, mask: unknown, name: string): void {
  if (device || mask === undefined || mask === null || mask instanceof Uint8Array) return;
  if (typeof (mask as { dtype?: unknown }).dtype === 'string') return; // a DeviceArray: Io names the mix
  throw new TypeError(`${name}: expected a Uint8Array (1 = completion token) or null, received ${describe(mask)}`);
}

const op = defineOp({
  name: 'ldDpoLogps',
  mix: PREFERENCE_MIX,
  slots: {
    chosenTokenLogps: { types: ['f32'], shape: 'P*T' },
    rejectedTokenLogps: { types: ['f32'], shape: 'P*T' },
    chosenMask: { types: ['u8'], shape: 'P*T' },
    rejectedMask: { types: ['u8'], shape: 'P*T' },
    chosenLogps: { types: ['f32'], shape: 'P', out: true },
    rejectedLogps: { types: ['f32'], shape: 'P', out: true },
    chosenWeights: { types: ['f32'], shape: 'P*T', out: true },
    rejectedWeights: { types: ['f32'], shape: 'P*T', out: true },
  },
  options: LD_OPTIONS,
  prepare(io, ...[chosenTokenLogps, rejectedTokenLogps, chosenMask, rejectedMask, options]: Args) {
    const { opts, out } = openOptions(
      io, options, true, [[rejectedTokenLogps, 'rejectedTokenLogps'], [chosenMask, 'chosenMask'], [rejectedMask, 'rejectedMask']],
      [], LD_OUTS, LD_KEYS,
    );
    const n = io.read('chosenTokenLogps', chosenTokenLogps, 'chosenTokenLogps').length;
    const seqLen = LD_OPTIONS.seqLen.read(opts.seqLen, 'options.seqLen', {});
    if (n === 0 || n % seqLen !== 0) {
      throw new RangeError(`options.seqLen: expected a divisor of the length of chosenTokenLogps (${n}), received ${seqLen}`);
    }
    const pairs = n / seqLen;
    io.read('rejectedTokenLogps', rejectedTokenLogps, 'rejectedTokenLogps', n);
    maskCheck(io.device, chosenMask, 'chosenMask');
    io.optional('chosenMask', chosenMask, 'chosenMask', n);
    maskCheck(io.device, rejectedMask, 'rejectedMask');
    io.optional('rejectedMask', rejectedMask, 'rejectedMask', n);
    const values = readOptions(LD_OPTIONS, opts);
    if (!values.returnWeights) {
      for (const k of ['chosenWeights', 'rejectedWeights'] as const) {
        if (out[k] !== undefined) throw new TypeError(`options.out.${k}: expected no buffer without options.returnWeights, received one`);
      }
    }
    const result = {
      chosenLogps: io.out('chosenLogps', out.chosenLogps, 'options.out.chosenLogps', pairs),
      rejectedLogps: io.out('rejectedLogps', out.rejectedLogps, 'options.out.rejectedLogps', pairs),
    } as LdDpoLogpsResult;
    if (values.returnWeights) {
      result.chosenWeights = io.out<Float32Array>('chosenWeights', out.chosenWeights, 'options.out.chosenWeights', n);
      result.rejectedWeights = io.out<Float32Array>('rejectedWeights', out.rejectedWeights, 'options.out.rejectedWeights', n);
    }
    return { params: packOptions(LD_OPTIONS, values), finish: () => result };
  },
});

const typed = op.typed<
  [chosenTokenLogps: Float32Array, rejectedTokenLogps: Float32Array, chosenMask: Uint8Array | null, rejectedMask: Uint8Array | null, options: LdDpoLogpsOptions],
  LdDpoLogpsResult,
  [chosenTokenLogps: DeviceArray, rejectedTokenLogps: DeviceArray, chosenMask: DeviceArray | null, rejectedMask: DeviceArray | null, options: DeviceLdDpoLogpsOptions],
  DeviceLdDpoLogpsResult
>();

/**
 * LD-DPO sequence log-probs (TRL `ld_alpha`): per pair, the first min(n_w, n_l) completion tokens of
 * each response count fully and the verbose rest by alpha: logps = shared + alpha * verbose. Feed
 * the results (and those of the reference model's token log-probs) to preferenceLoss; the gradient
 * with respect to a token is the loss gradient of its sequence times its weight (returnWeights).
 *
 * With f32 DeviceArrays (masks u8 DeviceArrays or null) it runs on the GPU; the outputs are f32
 * DeviceArrays owned by the caller.
 *
 * @example
 * const ld = ldDpoLogps(chosenTok, rejectedTok, chosenMask, rejectedMask, { seqLen: T, alpha: 0.5, returnWeights: true });
 * const ref = ldDpoLogps(refChosenTok, refRejectedTok, chosenMask, rejectedMask, { seqLen: T, alpha: 0.5 });
 * const r = preferenceLoss(ld.chosenLogps, ld.rejectedLogps, { refChosenLogps: ref.chosenLogps, refRejectedLogps: ref.rejectedLogps });
 * // d loss / d chosenTok[i, t] = r.gradChosen[i] * ld.chosenWeights[i * T + t]
 */
export const ldDpoLogps = typed.sync;
/** ldDpoLogps on a worker thread; leave its buffers untouched until it settles. */
export const ldDpoLogpsAsync = typed.async;
