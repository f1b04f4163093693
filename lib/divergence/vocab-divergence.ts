// vocabDivergence: full-vocabulary divergences between two logit rows, and the gradient with respect
// to the first (docs/divergence.md).
//
// logits (student), targetLogits (teacher / reference): (N, V) row-major, the same dtype.
//   p = softmax(logits / tau),  q = softmax(targetLogits / tau)
//   forward_kl  KL(q || p)           dD/dz = (p - q) / tau
//   reverse_kl  KL(p || q)           dD/dz = p (log p - log q - D) / tau
//   jsd (beta)  beta KL(q || m) + (1 - beta) KL(p || m),  m = beta q + (1 - beta) p
//                                    dD/dz = (1 - beta) p (log(p / m) - KL(p || m)) / tau
import { describe, finiteIn, finitePositive, int32Ids, options as optionsObject, optionsInMaskPlace } from '../check.js';
import { deviceArg, type DeviceArray } from '../cuda.js';
import { gradientInPlace, LOGITS_MIX, LOGITS_OPTIONS, logitsRows, overlaps, readLogits, type Logits, type LogitsDType } from '../logits.js';
import { type Buf, defineOp, enumOf, flag, int, knownKeysMoved, movedToArgument, num, numIn, onlyWhen, openOptions, type OptionValues, packOptions, readOptions, renamedTo } from '../op.js';
import { KINDS, type DivergenceKind } from './enums.js';

export interface VocabDivergenceOptions {
  /** Vocabulary size V: both logit arrays hold N rows of V values. */
  vocab: number;
  /** 'f32' (default for Float32Arrays); Uint16Arrays need 'bf16' or 'f16'. Applies to both inputs. */
  dtype?: LogitsDType;
  /**
   * 'forward_kl' KL(P_target || P), 'reverse_kl' KL(P || P_target), or 'jsd' (generalised
   * Jensen-Shannon with mixture weight `beta`). Default 'jsd' (TRL GKD / Liger JSD).
   */
  divergence?: DivergenceKind;
  /**
   * jsd mixture weight of the target distribution, in [0, 1]: m = beta q + (1 - beta) p. Default
   * 0.5 (TRL `GKDConfig.beta`, Liger `LigerJSD`). As in TRL and Liger, beta = 0 gives forward_kl
   * and beta = 1 reverse_kl. A TypeError with the kl kinds (it would be ignored).
   */
  beta?: number;
  /** Divides both logit rows before the softmax. Default 1. The gradient includes its 1/tau. */
  temperature?: number;
  /**
   * Per-row labels (N): rows whose label equals `ignoreIndex` give 0 and a zero gradient row. A
   * BigInt64Array is range-checked (int32) and copied into an Int32Array.
   */
  labels?: Int32Array | BigInt64Array;
  /** The label of ignored rows. Default -100. */
  ignoreIndex?: number;
  /** Also return dL/dlogits, (N * V) f32 (`result.gradient`). Default false. */
  returnGradient?: boolean;
  /** dL/dD per row: a number for every row or a Float32Array (N). Default 1 (L = sum_r D_r). */
  gradOutput?: number | Float32Array;
  /** Write the gradient over the (f32) logits themselves. Needs `returnGradient: true`. Default false. */
  inPlace?: boolean;
  /** Caller-owned outputs: divergence (N), gradient (N * V). */
  out?: { divergence?: Float32Array; gradient?: Float32Array };
}

export interface VocabDivergenceResult {
  /** Divergence per row, (N), in nats. */
  divergence: Float32Array;
  /** dL/dlogits, (N * V), when `returnGradient: true`. */
  gradient?: Float32Array;
}

/**
 * vocabDivergence options when the logits are a DeviceArray: every array is a DeviceArray (labels
 * i32, mask u8, a per-row gradOutput and the outputs f32), and the outputs are DeviceArrays too.
 */
export interface DeviceVocabDivergenceOptions
  extends Omit<VocabDivergenceOptions, 'labels' | 'gradOutput' | 'out'> {
  /** Per-row labels, an i32 DeviceArray (N): rows whose label equals `ignoreIndex` give 0 and a zero gradient row. */
  labels?: DeviceArray;
  /** dL/dD per row: a number for every row or an f32 DeviceArray (N). Default 1. */
  gradOutput?: number | DeviceArray;
  /** Caller-owned f32 DeviceArrays: divergence (N), gradient (N * V). */
  out?: { divergence?: DeviceArray; gradient?: DeviceArray };
}

/** vocabDivergence's result on the device: f32 DeviceArrays (owned by the caller: free() them). */
export interface DeviceVocabDivergenceResult {
  /** Divergence per row, (N), in nats. */
  divergence: DeviceArray<'f32'>;
  /** dL/dlogits, (N * V), when `returnGradient: true` (the logits themselves with `inPlace: true`). */
  gradient?: DeviceArray<'f32'>;
}

/**
 * The packed params, in order. gradOutput is its scalar form (1 when a per-row array fills the
 * gradOutput slot); ignoreIndex applies to the labels slot.
 */
const DIVERGENCE_OPTIONS = {
  ...LOGITS_OPTIONS,
  divergence: enumOf(KINDS, 'jsd'),
  // The jsd mixture weight; with a kl kind it would be ignored (a TypeError).
  beta: onlyWhen("divergence 'jsd'", (p) => p.divergence === 'jsd', (p) => `divergence '${String(p.divergence)}'`, numIn(0, 1, 0.5)),
  temperature: num(finitePositive, 1),
  ignoreIndex: int(-(2 ** 31), 2 ** 31 - 1, -100),
  gradOutput: numIn(-Infinity, Infinity, 1),
};
const SHAPE_OPTIONS = {
  divergence: DIVERGENCE_OPTIONS.divergence,
  beta: DIVERGENCE_OPTIONS.beta,
  temperature: DIVERGENCE_OPTIONS.temperature,
};
const FLAGS = { returnGradient: flag(false), inPlace: flag(false) };

type Args = [logits: unknown, targetLogits: unknown, mask: unknown, options: unknown];
type Out = { divergence?: unknown; gradient?: unknown };

const DIV_OPTION_ARRAYS = ['labels', 'gradOutput'] as const;
const DIV_OUTS = ['divergence', 'gradient'] as const;
const DIV_CALL = 'vocabDivergence(logits, targetLogits, mask, options)';
const DIV_KEYS = knownKeysMoved(
  'vocabDivergence',
  {
    mask: movedToArgument('the per-row mask', DIV_CALL),
    gradient: renamedTo('returnGradient', ' (an option asking for an output is return<Name>)'),
  },
  Object.keys(DIVERGENCE_OPTIONS), DIV_OPTION_ARRAYS, Object.keys(FLAGS), ['out'],
);

const op = defineOp({
  name: 'vocabDivergence',
  mix: LOGITS_MIX,
  slots: {
    logits: { types: ['f32', 'u16'], shape: 'N*V' },
    targetLogits: { types: ['f32', 'u16'], shape: 'N*V' },
    mask: { types: ['u8'], shape: 'N' },
    labels: { types: ['i32'], shape: 'N' },
    gradOutput: { types: ['f32'], shape: 'N' },
    divergence: { types: ['f32'], shape: 'N', out: true },
    // may be the logits slot's own array (inPlace: f32 logits only)
    gradient: { types: ['f32'], shape: 'N*V', out: true, inPlace: ['logits'] },
  },
  options: DIVERGENCE_OPTIONS,
  prepare(io, ...[logits, targetLogits, mask, options]: Args) {
    optionsInMaskPlace(mask, options, DIV_CALL);
    const { opts } = openOptions(io, options, true, [[targetLogits, 'targetLogits'], [mask, 'mask']], DIV_OPTION_ARRAYS, DIV_OUTS, DIV_KEYS);
    const l = readLogits(io, logits, opts);
    const { dtype, vocab } = l;
    let rows: number;
    let target: Buf;
    if (io.device) {
      rows = logitsRows(l.logits, vocab);
      target = deviceArg(targetLogits, 'targetLogits', [dtype], undefined);
      io.set('targetLogits', target);
    } else {
      const ctor = l.logits instanceof Float32Array ? Float32Array : Uint16Array;
      if (!(targetLogits instanceof ctor)) {
        throw new TypeError(`targetLogits: expected a ${ctor.name} like logits (dtype '${dtype}'), received ${describe(targetLogits)}`);
      }
      target = io.read('targetLogits', targetLogits, 'targetLogits');
      rows = logitsRows(l.logits, vocab);
    }
    if (target.length !== l.logits.length) {
      const n = l.logits.length;
      throw new RangeError(`targetLogits: expected the shape of logits, length ${n} (${n / vocab} x ${vocab}), received length ${target.length}`);
    }
    const shape = readOptions(SHAPE_OPTIONS, opts);

    // Rows count when the mask keeps them and their label is not ignoreIndex (both when both are given).
    io.optional('mask', mask, 'mask', rows);
    if (opts.ignoreIndex !== undefined && opts.labels === undefined) {
      throw new TypeError('options.ignoreIndex: expected options.labels alongside it, received no labels');
    }
    if (opts.labels !== undefined) io.read('labels', io.device ? opts.labels : int32Ids(opts.labels, 'options.labels'), 'options.labels', rows);
    const ignoreIndex = DIVERGENCE_OPTIONS.ignoreIndex.read(opts.ignoreIndex, 'options.ignoreIndex', {});

    const { returnGradient: wantGrad, inPlace } = readOptions(FLAGS, opts);
    const out = (opts.out === undefined ? {} : optionsObject<Out>(opts.out, 'options.out', true)) as Out;
    let gradOutput = 1;
    if (opts.gradOutput !== undefined) {
      if (!wantGrad) throw new TypeError('options.gradOutput: expected returnGradient: true alongside it, received returnGradient: false');
      if (typeof opts.gradOutput === 'number') gradOutput = finiteIn(opts.gradOutput, 'options.gradOutput', -Infinity, Infinity);
      else io.read('gradOutput', opts.gradOutput, 'options.gradOutput', rows);
    }
    const divergence = io.out('divergence', out.divergence, 'options.out.divergence', rows);
    if (inPlace && !wantGrad) {
      throw new TypeError('options.inPlace: expected returnGradient: true alongside it, received returnGradient: false');
    }
    if (!wantGrad && out.gradient !== undefined) {
      throw new TypeError('options.out.gradient: expected returnGradient: true alongside it, received returnGradient: false');
    }
    let gradient: Buf | undefined;
    if (wantGrad) {
      if (inPlace) {
        gradient = gradientInPlace(io, 'gradient', l, logits, out.gradient, 'options.out.gradient', 'no buffer');
      } else {
        gradient = io.out('gradient', out.gradient, 'options.out.gradient', l.logits.length);
        if (overlaps(gradient, l.logits)) {
          throw new RangeError('options.out.gradient: expected a buffer apart from logits (or inPlace: true), received one that overlaps them');
        }
      }
      if (overlaps(gradient, target)) {
        throw new RangeError('options.out.gradient: expected a buffer apart from targetLogits, received one that overlaps them');
      }
      if (!io.device && overlaps(divergence, gradient)) {
        throw new RangeError('options.out.divergence: expected a buffer apart from the gradient, received one that overlaps it');
      }
    }
    if (io.device && out.divergence !== undefined) {
      // The divergence is written while other blocks still read the rows: it must not alias them.
      for (const [a, name] of [[l.logits, 'logits'], [target, 'targetLogits'], [gradient, 'the gradient']] as const) {
        if (a && overlaps(divergence, a)) {
          throw new RangeError(`options.out.divergence: expected a buffer apart from ${name}, received one that overlaps ${name === 'the gradient' ? 'it' : 'them'}`);
        }
      }
    }
    const values: OptionValues<typeof DIVERGENCE_OPTIONS> = { vocab, dtype, ...shape, ignoreIndex, gradOutput };
    const result = { divergence } as VocabDivergenceResult;
    if (gradient) result.gradient = gradient as Float32Array;
    return { params: packOptions(DIVERGENCE_OPTIONS, values), finish: () => result };
  },
});

/** The result with `gradient` present (not optional) when the call passed `returnGradient: true`. */
export type WithGradient<R, G, A> = G extends true ? Omit<R, 'gradient'> & { gradient: A } : R;
type Host<F> = [F] extends [Logits] ? true : false;
type DivResult<F, G> = Host<F> extends true
  ? WithGradient<VocabDivergenceResult, G, Float32Array>
  : WithGradient<DeviceVocabDivergenceResult, G, DeviceArray<'f32'>>;

/** vocabDivergence's signature: host or device by the logits; `gradient` typed present when asked for. */
export interface VocabDivergenceFn {
  <F extends Logits | DeviceArray, G extends boolean | undefined = undefined>(
    logits: F,
    targetLogits: Host<F> extends true ? Logits : DeviceArray,
    mask: (Host<F> extends true ? Uint8Array : DeviceArray) | null,
    options: (Host<F> extends true ? VocabDivergenceOptions : DeviceVocabDivergenceOptions) & { returnGradient?: G },
  ): DivResult<F, G>;
}
/** vocabDivergenceAsync's signature (vocabDivergence's in a Promise). */
export interface VocabDivergenceAsyncFn {
  <F extends Logits | DeviceArray, G extends boolean | undefined = undefined>(
    logits: F,
    targetLogits: Host<F> extends true ? Logits : DeviceArray,
    mask: (Host<F> extends true ? Uint8Array : DeviceArray) | null,
    options: (Host<F> extends true ? VocabDivergenceOptions : DeviceVocabDivergenceOptions) & { returnGradient?: G },
  ): Promise<DivResult<F, G>>;
}

const typed = op.as<VocabDivergenceFn, VocabDivergenceAsyncFn>();

/**
 * Per-row divergence between the student's `logits` and `targetLogits` (teacher or reference
 * policy) over the whole vocabulary, and on request its gradient with respect to `logits`. The
 * kl kinds read both rows once (online log-sum-exp of both); jsd reads them twice. No (N, V)
 * temporary is allocated besides the gradient you ask for.
 *
 * With DeviceArrays (both logit tensors of the same dtype f32/bf16/f16, labels i32, mask u8, a
 * per-row gradOutput f32) the kernel runs on the GPU and the divergence and gradient are f32
 * DeviceArrays (owned by the caller: free() them, or let GC do it). The call waits for the device.
 *
 * @example
 * // GKD / on-policy distillation loss with TRL's defaults (jsd, beta 0.5), mean over tokens
 * const { divergence, gradient } = vocabDivergence(student, teacher, null, {
 *   vocab: 151936, labels, returnGradient: true, gradOutput: 1 / numTokens,
 * });
 */
export const vocabDivergence = typed.sync;
/** vocabDivergence on a worker thread; leave its buffers untouched until it settles. */
export const vocabDivergenceAsync = typed.async;
