// tokenWeightedDpoLoss: token-weighted DPO (TGDPO) over per-token log-probs, with the per-token
// gradients of the mean loss (docs/preference.md).
//
// every per-token array: (B, T) row-major, T = seqLen, padded with the masks m;
//   z = sum_t m beta (1 + alpha beta rw_t) (logp - ref)_w,t - sum_t m beta (1 - alpha beta rl_t) (logp - ref)_l,t,
//   L = -log s(z),  loss = mean_b L_b
import { describe, finiteIn, finitePositive, integer, optionsInMaskPlace } from '../check.js';
import { type DeviceArray, upload } from '../cuda.js';
import type { TokenMask } from '../types.js';
import { type Buf, defineOp, int, type Io, knownKeysMoved, movedToArgument, num, openOptions, packOptions, readOptions } from '../op.js';
import { lossOutputs, PAIR_OUTS, PAIR_SCALARS, PREFERENCE_MIX, pairMetrics, pairOutSlots } from './shared.js';

export interface TokenWeightedDpoOptions {
  /** T: every per-token array holds B rows of T tokens (padded, row-major). */
  seqLen: number;
  /** Reference per-token log-probs of the chosen / rejected completions (B * T). */
  refChosenLogps: Float32Array;
  refRejectedLogps: Float32Array;
  /** Token rewards rw_t, rl_t (B * T), e.g. a token-level reward model's log-ratio (TGDPO). */
  chosenTokenRewards: Float32Array;
  rejectedTokenRewards: Float32Array;
  /** Default 0.1. */
  beta?: number;
  /** Token-reward guidance strength. Default 0.5 (TGDPO). */
  alpha?: number;
  out?: {
    losses?: Float32Array;
    chosenRewards?: Float32Array;
    rejectedRewards?: Float32Array;
    gradChosen?: Float32Array;
    gradRejected?: Float32Array;
  };
}

export interface TokenWeightedDpoResult {
  /** Mean of `losses` over the B pairs. */
  loss: number;
  /** -log s(z) per pair (B). */
  losses: Float32Array;
  /** sum_t m beta (1 + alpha beta rw_t) (logp - ref)_t per pair (B). */
  chosenRewards: Float32Array;
  /** sum_t m beta (1 - alpha beta rl_t) (logp - ref)_t per pair (B); z = chosen - rejected. */
  rejectedRewards: Float32Array;
  /** d loss / d chosenLogps (B * T). */
  gradChosen: Float32Array;
  /** d loss / d rejectedLogps (B * T). */
  gradRejected: Float32Array;
  metrics: { rewardAccuracy: number; rewardMargin: number };
}

/** tokenWeightedDpoLoss options when the log-probs are DeviceArrays. */
export interface DeviceTokenWeightedDpoOptions
  extends Omit<TokenWeightedDpoOptions, 'refChosenLogps' | 'refRejectedLogps' | 'chosenTokenRewards' | 'rejectedTokenRewards' | 'out'> {
  /** f32 DeviceArrays (B * T). */
  refChosenLogps: DeviceArray;
  refRejectedLogps: DeviceArray;
  chosenTokenRewards: DeviceArray;
  rejectedTokenRewards: DeviceArray;
  out?: {
    losses?: DeviceArray;
    chosenRewards?: DeviceArray;
    rejectedRewards?: DeviceArray;
    gradChosen?: DeviceArray;
    gradRejected?: DeviceArray;
  };
}

export interface DeviceTokenWeightedDpoResult {
  loss: number;
  losses: DeviceArray<'f32'>;
  chosenRewards: DeviceArray<'f32'>;
  rejectedRewards: DeviceArray<'f32'>;
  gradChosen: DeviceArray<'f32'>;
  gradRejected: DeviceArray<'f32'>;
  metrics: { rewardAccuracy: number; rewardMargin: number };
}

const MAX_LEN = 2 ** 31 - 1;

/** The scalar options of tokenWeightedDpoLoss, in packing order (the mask kind is the masks' slot type). */
const TGDPO_OPTIONS = {
  seqLen: int(1, MAX_LEN),
  beta: num(finitePositive, 0.1),
  alpha: num((v, k) => finiteIn(v, k, -Infinity, Infinity), 0.5),
};

/** The per-token f32 inputs after the log-probs, in checking order. */
const TOKEN_INPUTS = ['refChosenLogps', 'refRejectedLogps', 'chosenTokenRewards', 'rejectedTokenRewards'] as const;

type Args = [chosenLogps: unknown, rejectedLogps: unknown, chosenMask: unknown, rejectedMask: unknown, options: unknown];

/** Host f32 mask weights: each finite and >= 0 (policyLoss's rule and wording). */
function weightsCheck(w: Float32Array, name: string): void {
  for (let i = 0; i < w.length; i++) {
    const x = w[i];
    if (!(x >= 0 && x <= 3.4028234663852886e38)) throw new RangeError(`${name}[${i}]: expected a finite weight >= 0, received ${x}`);
  }
}

const TGDPO_OPTION_ARRAYS = TOKEN_INPUTS;
const TGDPO_CALL = 'tokenWeightedDpoLoss(chosenLogps, rejectedLogps, chosenMask, rejectedMask, options)';
const TGDPO_KEYS = knownKeysMoved(
  'tokenWeightedDpoLoss',
  { chosenMask: movedToArgument('the chosen mask', TGDPO_CALL), rejectedMask: movedToArgument('the rejected mask', TGDPO_CALL) },
  Object.keys(TGDPO_OPTIONS), TGDPO_OPTION_ARRAYS, ['out'],
);

/** A null mask: every token counts (ones of the other mask's type, u8 when both are null). */
function allTokens(io: Io, like: unknown, n: number): Buf {
  const f32 = like instanceof Float32Array || (like as { dtype?: unknown } | null)?.dtype === 'f32';
  if (!io.device) return f32 ? new Float32Array(n).fill(1) : new Uint8Array(n).fill(1);
  const a = f32 ? upload(new Float32Array(n).fill(1)) : upload(new Uint8Array(n).fill(1));
  io.allocated.push(a);
  return a;
}

const op = defineOp({
  name: 'tokenWeightedDpoLoss',
  mix: PREFERENCE_MIX,
  slots: {
    chosenLogps: { types: ['f32'], shape: 'B*T' },
    rejectedLogps: { types: ['f32'], shape: 'B*T' },
    refChosenLogps: { types: ['f32'], shape: 'B*T' },
    refRejectedLogps: { types: ['f32'], shape: 'B*T' },
    chosenTokenRewards: { types: ['f32'], shape: 'B*T' },
    rejectedTokenRewards: { types: ['f32'], shape: 'B*T' },
    chosenMask: { types: ['u8', 'f32'], shape: 'B*T' },
    rejectedMask: { types: ['u8', 'f32'], shape: 'B*T' },
    ...pairOutSlots('B', 'B*T'),
  },
  options: TGDPO_OPTIONS,
  scalars: PAIR_SCALARS,
  prepare(io, ...[chosenLogps, rejectedLogps, chosenMask, rejectedMask, options]: Args) {
    if (options === undefined && rejectedMask === undefined) optionsInMaskPlace(chosenMask, undefined, TGDPO_CALL, 'chosenMask');
    const { opts } = openOptions(
      io, options, true, [[rejectedLogps, 'rejectedLogps'], [chosenMask, 'chosenMask'], [rejectedMask, 'rejectedMask']], TGDPO_OPTION_ARRAYS, PAIR_OUTS, TGDPO_KEYS,
    );
    const seqLen = integer(opts.seqLen, 'options.seqLen', 1, MAX_LEN);
    const nt = io.read('chosenLogps', chosenLogps, 'chosenLogps').length;
    if (nt === 0 || nt % seqLen !== 0) {
      throw new RangeError(`chosenLogps: expected a positive length that is a multiple of seqLen (${seqLen}), received length ${nt}`);
    }
    const batch = nt / seqLen;
    io.read('rejectedLogps', rejectedLogps, 'rejectedLogps', nt);
    for (const k of TOKEN_INPUTS) io.read(k, opts[k], `options.${k}`, nt);
    // null (or absent) masks: every token counts (ones of the other mask's type).
    const cm = chosenMask ?? null, rm = rejectedMask ?? null;
    if (!io.device && cm !== null && !(cm instanceof Float32Array) && !(cm instanceof Uint8Array)) {
      throw new TypeError(`chosenMask: expected a Uint8Array, a Float32Array or null, received ${describe(cm)}`);
    }
    let mw: Buf;
    if (cm !== null) mw = io.read('chosenMask', cm, 'chosenMask', nt);
    else {
      if (!io.device && rm !== null && !(rm instanceof Float32Array) && !(rm instanceof Uint8Array)) {
        throw new TypeError(`rejectedMask: expected a Uint8Array, a Float32Array or null, received ${describe(rm)}`);
      }
      io.set('chosenMask', (mw = allTokens(io, rm, nt)));
    }
    const maskType = mw instanceof Float32Array || (mw as { dtype?: unknown }).dtype === 'f32' ? 'f32' : 'u8';
    let mr: Buf;
    if (rm !== null) mr = io.read('rejectedMask', rm, 'rejectedMask', nt, [maskType]);
    else io.set('rejectedMask', (mr = allTokens(io, mw, nt)));
    // f32 weights: finite and >= 0, as policyLoss's mask (huge finite weights are accepted there too).
    if (mw instanceof Float32Array) {
      if (cm !== null) weightsCheck(mw, 'chosenMask');
      if (rm !== null) weightsCheck(mr as Float32Array, 'rejectedMask');
    }
    const values = readOptions(TGDPO_OPTIONS, opts);
    const length = (k: string) => (k === 'gradChosen' || k === 'gradRejected' ? nt : batch);
    return {
      params: packOptions(TGDPO_OPTIONS, values),
      ...lossOutputs<TokenWeightedDpoResult>(io, opts.out, PAIR_OUTS, length, PAIR_SCALARS.length, pairMetrics),
    };
  },
});

const typed = op.typed<
  [chosenLogps: Float32Array, rejectedLogps: Float32Array, chosenMask: TokenMask | null, rejectedMask: TokenMask | null, options: TokenWeightedDpoOptions],
  TokenWeightedDpoResult,
  [chosenLogps: DeviceArray, rejectedLogps: DeviceArray, chosenMask: DeviceArray | null, rejectedMask: DeviceArray | null, options: DeviceTokenWeightedDpoOptions],
  DeviceTokenWeightedDpoResult
>();

/**
 * Token-weighted DPO (TGDPO) over B pairs of per-token log-probs (B * T, padded with masks):
 * z = sum_t m beta (1 + alpha beta rw_t) (logp - ref)_w,t - sum_t m beta (1 - alpha beta rl_t)
 * (logp - ref)_l,t, L = -log s(z); returns the mean loss and its per-token gradients.
 *
 * With DeviceArrays (f32; masks both u8 or both f32) it runs on the GPU: the outputs are f32 DeviceArrays
 * (owned by the caller), loss and metrics are downloaded.
 *
 * `chosenMask` and `rejectedMask` (B * T, positional, before options): Uint8Array (1 = response
 * token) or Float32Array weights, both of one type; null = every token counts.
 *
 * @example
 * const r = tokenWeightedDpoLoss(chosenTok, rejectedTok, chosenMask, rejectedMask, {
 *   seqLen: T, refChosenLogps, refRejectedLogps, chosenTokenRewards, rejectedTokenRewards,
 * });
 */
export const tokenWeightedDpoLoss = typed.sync;
/** tokenWeightedDpoLoss on a worker thread; leave its buffers untouched until it settles. */
export const tokenWeightedDpoLossAsync = typed.async;
