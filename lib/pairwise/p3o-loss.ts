// p3oLoss: Pairwise Proximal Policy Optimization (Wu et al. 2023, arXiv 2310.00212), the separate-clip
// and joint-clip pairwise losses from both responses' per-token log-probs, with gradients wrt them;
// and (surrogate 'trlx') the surrogate of the authors' code (thwu1/trlx p3o_loss).
// The formula: native/core/p3o.h; docs/papers/p3o.md.
import { describe, finiteIn, oneOf } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { defineOp, enumOf, flag, int, knownKeys, numIn, onlyWhen, openOptions, type OptionSpec, packOptions, readOptions } from '../op.js';
import { lossOutputs, PREFERENCE_MIX } from '../preference/shared.js';

export interface P3oLossOptions {
  /** Tokens per response T (both responses of a pair are padded to T). Required. */
  seqLen: number;
  /**
   * 'ratio' (default): the ratio form of the specification. 'trlx': the surrogate of the authors'
   * code (thwu1/trlx AccelerateP3OTrainer.p3o_loss): linear in L_1 - L_2 with a detached, clamped
   * joint importance weight and a KL-regularised reward difference q; needs refLogprobs1/2.
   */
  surrogate?: 'ratio' | 'trlx';
  /**
   * 'ratio': 'separate' (default) clips each response's ratio against A_i = +-(r_1 - r_2)/2; 'joint'
   * clips rho_1 / rho_2 against r_1 - r_2. 'trlx': 'joint' (default) clips L_1 - L_2 to the old
   * difference +- epsilon; 'token' clips each token's log-prob to l_old +- epsilon (clip_tokenwise).
   */
  clip?: 'separate' | 'joint' | 'token';
  /** The clip range: ratios are clipped to [1 - epsilon, 1 + epsilon], in [0, 1); 'trlx': the log-space half-width (cliprange), >= 0. Default 0.2. */
  epsilon?: number;
  /** 'trlx' only: the reference policy's per-token log-probs of response 1 and 2 (B * T). Required with 'trlx'. */
  refLogprobs1?: Float32Array;
  refLogprobs2?: Float32Array;
  /** 'trlx' only: the KL coefficient of q = r_1 - r_2 - beta (L_1 - L_2) (kl_coef), >= 0. Default 0.05. */
  beta?: number;
  /** 'trlx' only: the joint importance weight is clamped to [1 / weightClip, weightClip] (cliprange_ratio), >= 1. Default 10. */
  weightClip?: number;
  /** 'trlx' only: divide q by its unbiased std over the B pairs (scale_q); needs B >= 2. Default false. */
  scaleByStd?: boolean;
  /** 'trlx' with clip 'joint' only: divide the summed pair losses by the counted tokens of both responses (avg_tokenwise), else by 2B. Default true. */
  normalizeByTokens?: boolean;
  out?: { gradLogprobs1?: Float32Array; gradLogprobs2?: Float32Array };
}
export interface P3oLossResult {
  /** The mean over the B pairs of each pair's clipped loss. */
  loss: number;
  /** d loss / d logprobs1 and d loss / d logprobs2 (B * T): the pair's dL/dS_i times the mask. */
  gradLogprobs1: Float32Array;
  gradLogprobs2: Float32Array;
  metrics: {
    /** The share of clipped ratios (of the 2B response ratios for 'separate', of the B joint ratios for 'joint'). */
    clipFraction: number;
  };
}
export interface DeviceP3oLossOptions extends Omit<P3oLossOptions, 'out' | 'refLogprobs1' | 'refLogprobs2'> {
  refLogprobs1?: DeviceArray;
  refLogprobs2?: DeviceArray;
  out?: { gradLogprobs1?: DeviceArray; gradLogprobs2?: DeviceArray };
}
export interface DeviceP3oLossResult {
  loss: number;
  gradLogprobs1: DeviceArray<'f32'>;
  gradLogprobs2: DeviceArray<'f32'>;
  metrics: { clipFraction: number };
}

type Prev = Readonly<Record<string, unknown>>;
const isTrlx = (p: Prev) => p.surrogate === 'trlx';
const current = (p: Prev) => `surrogate '${String(p.surrogate)}'${isTrlx(p) ? ` with clip '${String(p.clip)}'` : ''}`;
const CLIPS = ['separate', 'joint', 'token'] as const;
type Clip = (typeof CLIPS)[number];

/** clip: 'separate' | 'joint' with 'ratio' (default 'separate'), 'joint' | 'token' with 'trlx' (default 'joint'). */
const CLIP: OptionSpec<Clip> = {
  read(v, name, prev) {
    const trlx = isTrlx(prev);
    if (v === undefined) return trlx ? 'joint' : 'separate';
    if (trlx) {
      if (v === 'separate') throw new RangeError(`${name}: expected 'joint' or 'token' with surrogate 'trlx' (its code has no separate clip), received ${describe(v)}`);
      return oneOf(v, name, ['joint', 'token'] as const);
    }
    if (v === 'token') throw new RangeError(`${name}: 'token' applies to surrogate 'trlx' only; expected one of 'separate', 'joint' with surrogate 'ratio', received ${describe(v)}`);
    return oneOf(v, name, ['separate', 'joint'] as const);
  },
  code: (v) => CLIPS.indexOf(v),
  values: CLIPS,
};

/** epsilon: a ratio clip range in [0, 1) with 'ratio', a log-space half-width >= 0 with 'trlx'. */
const EPSILON: OptionSpec<number> = {
  read: (v, name, prev) => (v === undefined ? 0.2 : isTrlx(prev) ? finiteIn(v, name, 0, Infinity) : finiteIn(v, name, 0, 0.999999)),
  code: (v) => v,
};
const trlxOnly = <T>(spec: OptionSpec<T>) => onlyWhen("surrogate 'trlx'", isTrlx, current, spec);

/** The scalar options, in packing order. */
const OPTIONS = {
  seqLen: int(1, 2 ** 31 - 1),
  surrogate: enumOf(['ratio', 'trlx'] as const, 'ratio'),
  clip: CLIP,
  epsilon: EPSILON,
  beta: trlxOnly(numIn(0, Infinity, 0.05)),
  weightClip: trlxOnly(numIn(1, Infinity, 10)),
  scaleByStd: trlxOnly(flag(false)),
  normalizeByTokens: onlyWhen("surrogate 'trlx' with clip 'joint'", (p) => isTrlx(p) && p.clip === 'joint', current, flag(true)),
};
const ARRAYS = ['refLogprobs1', 'refLogprobs2'] as const;
const OUTS = ['gradLogprobs1', 'gradLogprobs2'] as const;
const KEYS = knownKeys('p3oLoss', Object.keys(OPTIONS), ARRAYS, ['out']);

/** A host mask: a Uint8Array or null. */
function maskCheck(device: boolean, mask: unknown, name: string): void {
  if (device || mask === undefined || mask === null || mask instanceof Uint8Array) return;
  if (typeof (mask as { dtype?: unknown }).dtype === 'string') return; // a DeviceArray: Io names the mix
  throw new TypeError(`${name}: expected a Uint8Array (1 = the token counts) or null, received ${describe(mask)}`);
}

type Args = [
  logprobs1: unknown, logprobs2: unknown, oldLogprobs1: unknown, oldLogprobs2: unknown,
  rewards1: unknown, rewards2: unknown, mask1: unknown, mask2: unknown, options: unknown,
];

const op = defineOp({
  name: 'p3oLoss',
  mix: PREFERENCE_MIX,
  slots: {
    logprobs1: { types: ['f32'], shape: 'B*T' },
    logprobs2: { types: ['f32'], shape: 'B*T' },
    oldLogprobs1: { types: ['f32'], shape: 'B*T' },
    oldLogprobs2: { types: ['f32'], shape: 'B*T' },
    rewards1: { types: ['f32'], shape: 'B' },
    rewards2: { types: ['f32'], shape: 'B' },
    mask1: { types: ['u8'], shape: 'B*T' },
    mask2: { types: ['u8'], shape: 'B*T' },
    refLogprobs1: { types: ['f32'], shape: 'B*T' },
    refLogprobs2: { types: ['f32'], shape: 'B*T' },
    gradLogprobs1: { types: ['f32'], shape: 'B*T', out: true },
    gradLogprobs2: { types: ['f32'], shape: 'B*T', out: true },
  },
  options: OPTIONS,
  scalars: ['loss', 'clipFraction'],
  prepare(io, ...[logprobs1, logprobs2, oldLogprobs1, oldLogprobs2, rewards1, rewards2, mask1, mask2, options]: Args) {
    const { opts } = openOptions(
      io, options, true,
      [[logprobs2, 'logprobs2'], [oldLogprobs1, 'oldLogprobs1'], [oldLogprobs2, 'oldLogprobs2'], [rewards1, 'rewards1'],
        [rewards2, 'rewards2'], [mask1, 'mask1'], [mask2, 'mask2']],
      ARRAYS, OUTS, KEYS,
    );
    const n = io.read('logprobs1', logprobs1, 'logprobs1').length;
    const values = readOptions(OPTIONS, opts);
    const T = values.seqLen;
    if (n === 0 || n % T !== 0) {
      throw new RangeError(`options.seqLen: expected a divisor of the length of logprobs1 (${n}), received ${T}`);
    }
    const B = n / T;
    io.read('logprobs2', logprobs2, 'logprobs2', n);
    io.read('oldLogprobs1', oldLogprobs1, 'oldLogprobs1', n);
    io.read('oldLogprobs2', oldLogprobs2, 'oldLogprobs2', n);
    io.read('rewards1', rewards1, 'rewards1', B);
    io.read('rewards2', rewards2, 'rewards2', B);
    maskCheck(io.device, mask1, 'mask1');
    io.optional('mask1', mask1, 'mask1', n);
    maskCheck(io.device, mask2, 'mask2');
    io.optional('mask2', mask2, 'mask2', n);
    for (const k of ARRAYS) {
      const name = `options.${k}`, v = opts[k];
      if (values.surrogate === 'trlx') {
        if (v === undefined || v === null) {
          throw new TypeError(`${name}: expected ${io.device ? "an f32 DeviceArray" : 'a Float32Array'} of the reference policy's log-probs (${n}) with surrogate 'trlx', received ${describe(v)}`);
        }
        io.read(k, v, name, n);
      } else if (v !== undefined) {
        throw new TypeError(`${name}: applies to surrogate 'trlx' only, expected undefined with surrogate 'ratio', received ${describe(v)}`);
      }
    }
    if (values.scaleByStd && B < 2) {
      throw new RangeError(`options.scaleByStd: expected at least 2 pairs (q is divided by its unbiased std over the pairs), received ${B} pair`);
    }
    const metrics = (s: Float64Array) => ({ clipFraction: s[1] });
    return { params: packOptions(OPTIONS, values), ...lossOutputs<P3oLossResult>(io, opts.out, OUTS, n, 2, metrics) };
  },
});

const typed = op.typed<
  [
    logprobs1: Float32Array, logprobs2: Float32Array, oldLogprobs1: Float32Array, oldLogprobs2: Float32Array,
    rewards1: Float32Array, rewards2: Float32Array, mask1: Uint8Array | null, mask2: Uint8Array | null, options: P3oLossOptions,
  ],
  P3oLossResult,
  [
    logprobs1: DeviceArray, logprobs2: DeviceArray, oldLogprobs1: DeviceArray, oldLogprobs2: DeviceArray,
    rewards1: DeviceArray, rewards2: DeviceArray, mask1: DeviceArray | null, mask2: DeviceArray | null, options: DeviceP3oLossOptions,
  ],
  DeviceP3oLossResult
>();

/**
 * P3O (Pairwise PPO) over B pairs of responses of T tokens: S_i = sum_t m_i,t (l_i,t - l_old,i,t),
 * rho_i = exp(S_i). 'separate': L = sum_i -min(rho_i A_i, clip(rho_i, 1 -+ eps) A_i) with
 * A_1 = (r_1 - r_2)/2 = -A_2; 'joint': L = -min(rho A, clip(rho, 1 -+ eps) A) with rho = rho_1 / rho_2
 * and A = r_1 - r_2. The loss is the mean over pairs; gradients wrt both responses' log-probs.
 *
 * surrogate 'trlx' (the authors' code): L_i = sum_t m (l - l_ref), O_i = sum_t m (l_old - l_ref),
 * q = r_1 - r_2 - beta (L_1 - L_2) (optionally / its std), w = clamp(exp(L_1 - O_1 + L_2 - O_2), 1/c, c),
 * pair loss max(-q w (L_1 - L_2), -q w clamp(L_1 - L_2, O_1 - O_2 -+ eps)) (or token-wise), summed and
 * divided by the counted tokens (or 2B); q and w are detached.
 *
 * With f32 DeviceArrays (masks u8 DeviceArrays or null) it runs on the GPU; the gradients are
 * DeviceArrays owned by the caller.
 *
 * @example
 * const r = p3oLoss(lp1, lp2, old1, old2, r1, r2, mask1, mask2, { seqLen: T, clip: 'joint' });
 * const t = p3oLoss(lp1, lp2, old1, old2, r1, r2, mask1, mask2, { seqLen: T, surrogate: 'trlx', refLogprobs1: ref1, refLogprobs2: ref2 });
 */
export const p3oLoss = typed.sync;
/** p3oLoss on a worker thread; leave its buffers untouched until it settles. */
export const p3oLossAsync = typed.async;
