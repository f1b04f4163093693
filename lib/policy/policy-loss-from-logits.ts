// policyLossFromLogits: token log-probs, a policy loss and its gradient with respect to the logits
// in one call (docs/policy-from-logits.md): tokenLogprobs, policyLoss and tokenLogprobsBackward
// fused, reading the logits once (GSPO: twice) and writing the gradient once, as f32 or bf16.
//
// logits: (N, V), N = B T rows (f32, or bf16/f16 bits in a Uint16Array); targets (N) Int32;
// oldLogprobs, mask, refLogprobs, tokenWeights (B, T); advantages (B) or (B, T).
//   logp, H = tokenLogprobs(logits / tau);  loss, metrics, g = dL/dlogp, h = dL/dH = policyLoss(logp, ...)
//   gradLogits = tokenLogprobsBackward(g, h)
import { integer, options as optionsObject } from '../check.js';
import { alloc, type DeviceArray } from '../cuda.js';
import { LOGITS_MIX, overlaps, type Logits } from '../logits.js';
import { LOGPROBS_OPTIONS, readCommon, SCALAR_OPTIONS, type LogprobsCommonOptions, type TokenIds } from '../logprobs/shared.js';
import { defineOp, enumOf, flag, knownKeys, openOptions, packOptions, readOptions, type Buf } from '../op.js';
import { applyPreset, POLICY_PRESETS } from '../presets.js';
import type { TokenMask } from '../types.js';
import { checkTerms, grpoLossType, hostMaskCheck, KL_TERMS, POLICY_METRICS, POLICY_OPTIONS, policyMetrics, type PolicyLossMetrics, type PolicyLossOptions } from './policy-loss.js';

/** The gradient's element type: 'f32' (Float32Array) or 'bf16' (Uint16Array of bf16 bits, round to nearest even). */
export type GradDType = 'f32' | 'bf16';

export interface PolicyLossFromLogitsOptions
  extends LogprobsCommonOptions,
    Omit<PolicyLossOptions, 'entropy' | 'out'> {
  /** Element type of the gradient. Default 'f32'. */
  gradDtype?: GradDType;
  /** Write the gradient over the logits (f32 logits with gradDtype 'f32', or bf16 logits with 'bf16'). Default false. */
  inPlace?: boolean;
  /** Also return the entropy of each row (`result.entropy`). Implied by `entropyCoef`. Default false. */
  returnEntropy?: boolean;
  /**
   * Entropy bonus coefficient: each token's loss gets -entropyCoef H_t, H_t the entropy of its row
   * (computed here), and the gradient flows through H into the logits. Default 0 (no entropy term).
   */
  entropyCoef?: number;
  /** Caller-owned outputs: gradLogits (N * V, of gradDtype), logprobs and entropy (N). */
  out?: { gradLogits?: Float32Array | Uint16Array; logprobs?: Float32Array; entropy?: Float32Array };
}

export interface PolicyLossFromLogitsResult {
  loss: number;
  metrics: PolicyLossMetrics;
  /** log p(target) per row (N); 0 where the target is ignoreIndex or the mask weight is 0 (those rows are not read). */
  logprobs: Float32Array;
  /** Entropy per row (N), with returnEntropy or entropyCoef; 0 where the row is not read. */
  entropy?: Float32Array;
  /** dLoss/dlogits (N * V): a Float32Array, or a Uint16Array of bf16 bits with gradDtype 'bf16'; the logits themselves with inPlace. */
  gradLogits: Float32Array | Uint16Array;
}

/** policyLossFromLogits options when the logits are a DeviceArray: every array is a DeviceArray. */
export interface DevicePolicyLossFromLogitsOptions extends Omit<PolicyLossFromLogitsOptions, 'refLogprobs' | 'tokenWeights' | 'out'> {
  /** f32 DeviceArray (B * T). */
  refLogprobs?: DeviceArray;
  /** f32 DeviceArray (B * T). */
  tokenWeights?: DeviceArray;
  /** Caller-owned DeviceArrays: gradLogits (N * V, f32 or bf16 as gradDtype), logprobs and entropy (N, f32). */
  out?: { gradLogits?: DeviceArray; logprobs?: DeviceArray; entropy?: DeviceArray };
}

/** policyLossFromLogits on the device: the arrays are DeviceArrays (owned by the caller: free() them), loss and metrics are downloaded. */
export interface DevicePolicyLossFromLogitsResult {
  loss: number;
  metrics: PolicyLossMetrics;
  /** log p(target) per row (N), f32. */
  logprobs: DeviceArray<'f32'>;
  /** Entropy per row (N), f32, with returnEntropy or entropyCoef. */
  entropy?: DeviceArray<'f32'>;
  /** dLoss/dlogits (N * V): f32, or bf16 with gradDtype 'bf16'; the logits themselves with inPlace. */
  gradLogits: DeviceArray<'f32'> | DeviceArray<'bf16'>;
}

export const GRAD_DTYPES: readonly GradDType[] = ['f32', 'bf16'];

/** The packed params: the log-prob options, the policy options, then the gradient dtype and whether H is computed. */
export const POLICY_FROM_LOGITS_OPTIONS = {
  ...LOGPROBS_OPTIONS,
  ...POLICY_OPTIONS,
  gradDtype: enumOf(GRAD_DTYPES, 'f32'),
  wantEntropy: flag(false),
};

const OPTION_ARRAYS = ['refLogprobs', 'tokenWeights'] as const;
const OUTS = ['gradLogits', 'logprobs', 'entropy'] as const;
const KEYS = knownKeys(
  'policyLossFromLogits',
  Object.keys(POLICY_FROM_LOGITS_OPTIONS).filter((k) => k !== 'wantEntropy'),
  OPTION_ARRAYS,
  ['lossType', 'preset', 'inPlace', 'returnEntropy', 'out'],
);
const inPlaceFlag = flag(false);

type Args = [logits: unknown, targets: unknown, oldLogprobs: unknown, advantages: unknown, mask: unknown, options: unknown];

const op = defineOp({
  name: 'policyLossFromLogits',
  mix: LOGITS_MIX,
  slots: {
    logits: { types: ['f32', 'u16'], shape: 'N*V' },
    targets: { types: ['i32'], shape: 'N' },
    oldLogprobs: { types: ['f32'], shape: 'B*T' },
    advantages: { types: ['f32'], shape: 'B | B*T' },
    mask: { types: ['u8', 'f32'], shape: 'B*T' },
    refLogprobs: { types: ['f32'], shape: 'B*T' },
    tokenWeights: { types: ['f32'], shape: 'B*T' },
    logprobs: { types: ['f32'], shape: 'B*T', out: true },
    entropy: { types: ['f32'], shape: 'B*T', out: true },
    // may be the logits slot's own array (inPlace: same element type)
    gradLogits: { types: ['f32', 'u16'], shape: 'N*V', out: true, inPlace: ['logits'], device: ['bf16'] },
  },
  options: POLICY_FROM_LOGITS_OPTIONS,
  scalars: POLICY_METRICS,
  prepare(io, ...[logits, targets, oldLogprobs, advantages, mask, options]: Args) {
    const { opts: given, out } = openOptions(
      io, options, true, [[targets, 'targets'], [oldLogprobs, 'oldLogprobs'], [advantages, 'advantages'], [mask, 'mask']],
      OPTION_ARRAYS, OUTS, KEYS,
    );
    const opts = applyPreset('policyLoss', grpoLossType(given), POLICY_PRESETS);
    const c = readCommon(io, logits, targets, opts);
    const n = c.rows;
    const seqLen = integer(opts.seqLen, 'options.seqLen', 1, 2 ** 31 - 1);
    if (n % seqLen !== 0) {
      throw new RangeError(`options.seqLen: expected a divisor of the number of logits rows (${n}), received ${seqLen}`);
    }
    const batch = n / seqLen;
    io.read('oldLogprobs', oldLogprobs, 'oldLogprobs', n);
    const adv = io.read('advantages', advantages, 'advantages');
    if (adv.length !== batch && adv.length !== n) {
      throw new RangeError(`advantages: expected length ${batch} (one per sequence) or ${n} (one per token), received length ${adv.length}`);
    }
    hostMaskCheck(io.device, mask, 'mask', true);
    io.optional('mask', mask, 'mask', n);
    const returnEntropy = flag(false).read(opts.returnEntropy, 'options.returnEntropy', {});
    const wantEntropy = returnEntropy || opts.entropyCoef !== undefined;
    checkTerms(opts, KL_TERMS); // entropyCoef needs no array here: the entropy is computed
    if (opts.out !== undefined) optionsObject(opts.out, 'options.out', true);
    const policy = readOptions(POLICY_OPTIONS, opts);
    const ref = io.optional('refLogprobs', opts.refLogprobs, 'options.refLogprobs', n);
    io.optional('tokenWeights', opts.tokenWeights, 'options.tokenWeights', n);
    const gradDtype = POLICY_FROM_LOGITS_OPTIONS.gradDtype.read(opts.gradDtype, 'options.gradDtype', {});
    const inPlace = inPlaceFlag.read(opts.inPlace, 'options.inPlace', {});
    const total = c.logits.length;
    let grad: Buf;
    if (inPlace) {
      const need = gradDtype === 'bf16' ? 'bf16' : 'f32';
      if (c.dtype !== need) {
        throw new TypeError(`options.inPlace: a ${gradDtype} gradient can overwrite ${need} logits only, received dtype '${c.dtype}'`);
      }
      if (out.gradLogits !== undefined && out.gradLogits !== logits) {
        throw new TypeError('options.out.gradLogits: expected no buffer (or the logits themselves) with inPlace: true, received another array');
      }
      io.set('gradLogits', c.logits as Buf);
      grad = c.logits as Buf;
    } else {
      const type = gradDtype === 'bf16' ? 'u16' : 'f32';
      const given = out.gradLogits;
      if (given !== undefined && given === logits) {
        throw new TypeError('options.out.gradLogits: is the logits array; pass inPlace: true to overwrite the logits');
      }
      if (given !== undefined) {
        grad = io.read('gradLogits', given, 'options.out.gradLogits', total, [type]);
      } else if (io.device) {
        const a = alloc(gradDtype, total);
        io.allocated.push(a);
        io.set('gradLogits', a);
        grad = a;
      } else {
        grad = io.read('gradLogits', type === 'u16' ? new Uint16Array(total) : new Float32Array(total), 'options.out.gradLogits', total, [type]);
      }
      if (overlaps(grad, c.logits as Buf)) {
        throw new RangeError('options.out.gradLogits: expected a buffer apart from logits (or inPlace: true), received one that overlaps them');
      }
    }
    const logprobs = io.out('logprobs', out.logprobs, 'options.out.logprobs', n);
    if (!wantEntropy && out.entropy !== undefined) {
      throw new TypeError('options.out.entropy: expected no buffer without returnEntropy or entropyCoef, received one');
    }
    const entropy = wantEntropy ? io.out('entropy', out.entropy, 'options.out.entropy', n) : null;
    const values = {
      vocab: c.vocab,
      dtype: c.dtype,
      ...readOptions(SCALAR_OPTIONS, opts),
      ...policy,
      gradDtype,
      wantEntropy,
    };
    const scalars = io.scalars(POLICY_METRICS.length);
    return {
      params: packOptions(POLICY_FROM_LOGITS_OPTIONS, values),
      scalars,
      finish: () => {
        const result: PolicyLossFromLogitsResult = {
          loss: scalars[0],
          metrics: policyMetrics(scalars, ref !== null, wantEntropy),
          logprobs: logprobs as Float32Array,
          gradLogits: grad as Float32Array | Uint16Array,
        };
        if (entropy) result.entropy = entropy as Float32Array;
        return result;
      },
    };
  },
});

type Host<F> = [F] extends [Logits] ? true : false;
/** True when the options ask for the entropy (returnEntropy: true, or an entropyCoef). */
type AsksEntropy<E, C> = [E] extends [true] ? true : [C] extends [number] ? true : false;
type HostGrad<G> = [G] extends ['bf16'] ? Uint16Array : [G] extends ['f32' | undefined] ? Float32Array : Float32Array | Uint16Array;
type DeviceGrad<G> = [G] extends ['bf16'] ? DeviceArray<'bf16'> : [G] extends ['f32' | undefined] ? DeviceArray<'f32'> : DeviceArray<'f32'> | DeviceArray<'bf16'>;
/** policyLossFromLogits' result as the call typed it: `entropy` present when asked for, `gradLogits` of the gradDtype. */
export type PolicyLossFromLogitsResultOf<F, E, C, G> = Host<F> extends true
  ? Omit<PolicyLossFromLogitsResult, 'entropy' | 'gradLogits'> & { gradLogits: HostGrad<G> } &
      (AsksEntropy<E, C> extends true ? { entropy: Float32Array } : { entropy?: Float32Array })
  : Omit<DevicePolicyLossFromLogitsResult, 'entropy' | 'gradLogits'> & { gradLogits: DeviceGrad<G> } &
      (AsksEntropy<E, C> extends true ? { entropy: DeviceArray<'f32'> } : { entropy?: DeviceArray<'f32'> });
type FromLogitsOptionsOf<F, E, C, G> = (Host<F> extends true ? PolicyLossFromLogitsOptions : DevicePolicyLossFromLogitsOptions) & {
  returnEntropy?: E;
  entropyCoef?: C;
  gradDtype?: G;
};

/** policyLossFromLogits' signature: host or device by the logits; requested outputs typed present. */
export interface PolicyLossFromLogitsFn {
  <F extends Logits | DeviceArray, E extends boolean | undefined = undefined, C extends number | undefined = undefined, G extends GradDType | undefined = undefined>(
    logits: F,
    targets: Host<F> extends true ? TokenIds : DeviceArray,
    oldLogprobs: Host<F> extends true ? Float32Array : DeviceArray,
    advantages: Host<F> extends true ? Float32Array : DeviceArray,
    mask: (Host<F> extends true ? TokenMask : DeviceArray) | null,
    options: FromLogitsOptionsOf<F, E, C, G>,
  ): PolicyLossFromLogitsResultOf<F, E, C, G>;
}
/** policyLossFromLogitsAsync's signature (policyLossFromLogits' in a Promise). */
export interface PolicyLossFromLogitsAsyncFn {
  <F extends Logits | DeviceArray, E extends boolean | undefined = undefined, C extends number | undefined = undefined, G extends GradDType | undefined = undefined>(
    logits: F,
    targets: Host<F> extends true ? TokenIds : DeviceArray,
    oldLogprobs: Host<F> extends true ? Float32Array : DeviceArray,
    advantages: Host<F> extends true ? Float32Array : DeviceArray,
    mask: (Host<F> extends true ? TokenMask : DeviceArray) | null,
    options: FromLogitsOptionsOf<F, E, C, G>,
  ): Promise<PolicyLossFromLogitsResultOf<F, E, C, G>>;
}

const typed = op.as<PolicyLossFromLogitsFn, PolicyLossFromLogitsAsyncFn>();

/**
 * tokenLogprobs, policyLoss and tokenLogprobsBackward in one call: the loss and metrics of a
 * policy-gradient loss over the log-probs of (B * T, V) logits, and its gradient with respect to the
 * logits, written as f32 or bf16 (`gradDtype`), in place over the logits with `inPlace: true`.
 * Every variant but 'gspo' reads the logits once; 'gspo' (whose sequence ratio needs every log-prob
 * of a sequence first) reads them twice. The options are policyLoss' plus the log-prob options.
 *
 * Arguments:
 * - `logits`: (B * T, V), f32 or bf16/f16 bits (`dtype`)
 * - `targets`: the sampled token of each row, (B * T)
 * - `oldLogprobs`: log-probs of the policy that sampled them, (B * T)
 * - `advantages`: one per sequence (B) or one per token (B * T)
 * - `mask`: 1/0 bytes or f32 weights (B * T), or null for all ones; rows with weight 0 are not read
 *
 * With DeviceArrays (logits f32 / bf16 / f16, targets i32, the rest f32, mask u8 or f32) it runs on
 * the GPU: logprobs, entropy and gradLogits are DeviceArrays (owned by the caller: free() them; a bf16
 * gradient with gradDtype 'bf16'), loss and metrics are downloaded numbers.
 * @example
 * const { loss, gradLogits } = policyLossFromLogits(logits, ids, oldLp, adv, mask, { vocab: 151936, seqLen: 512, inPlace: true });
 */
export const policyLossFromLogits = typed.sync;
/** policyLossFromLogits on a worker thread; leave its buffers untouched until it settles. */
export const policyLossFromLogitsAsync = typed.async;
