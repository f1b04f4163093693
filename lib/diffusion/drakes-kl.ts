// drakesKl: DRAKES's generalised-KL rate integrand per position (docs/papers/drakes.md), with the
// gradients with respect to both logit rows.
//
// logits z (fine-tuned model), oldLogits z_old (pre-trained model): (N, V) row-major, the same dtype.
//   p = softmax(z), p_old = softmax(z_old)
//   kl_r = sum_j [p_j log(p_j / p_old_j) - p_j + p_old_j] / moveChance_r   (= KL(p || p_old) / moveChance_r)
//   dL/dz_j    = c p_j (log p_j - log p_old_j - KL),  dL/dz_old_j = c (p_old_j - p_j),  c = dL/dkl_r / moveChance_r
// Rows the mask drops give 0 and zero gradient rows.
import { describe, finiteIn, finitePositive, options as optionsObject, optionsInMaskPlace } from '../check.js';
import { deviceArg, type DeviceArray } from '../cuda.js';
import { LOGITS_MIX, LOGITS_OPTIONS, logitsRows, overlaps, readLogits, type Logits, type LogitsDType } from '../logits.js';
import { type Buf, defineOp, flag, knownKeys, numIn, openOptions, type OptionValues, packOptions, readOptions } from '../op.js';

export interface DrakesKlOptions {
  /** Vocabulary size V: both logit arrays hold N rows of V values. */
  vocab: number;
  /** 'f32' (default for Float32Arrays); Uint16Arrays need 'bf16' or 'f16'. Applies to both inputs. */
  dtype?: LogitsDType;
  /**
   * move_chance_t = 1 - exp(-sigma(t)), the masking probability at the step's time t: a positive
   * number for every row (DRAKES uses one t per step) or a Float32Array (N) of positive values. Required.
   */
  moveChance: number | Float32Array;
  /** Also return dL/dlogits, (N * V) f32 (`result.gradient`). Default false. */
  returnGradient?: boolean;
  /** Also return dL/doldLogits, (N * V) f32 (`result.oldGradient`). Default false. */
  returnOldGradient?: boolean;
  /** dL/dkl per row: a number for every row or a Float32Array (N). Default 1 (L = sum_r kl_r). */
  gradOutput?: number | Float32Array;
  /** Caller-owned outputs: kl (N), gradient (N * V), oldGradient (N * V). */
  out?: { kl?: Float32Array; gradient?: Float32Array; oldGradient?: Float32Array };
}

export interface DrakesKlResult {
  /** The rate integrand per row, (N); 0 where the mask drops the row. */
  kl: Float32Array;
  /** dL/dlogits, (N * V), with `returnGradient: true`. */
  gradient?: Float32Array;
  /** dL/doldLogits, (N * V), with `returnOldGradient: true`. */
  oldGradient?: Float32Array;
}

const positive = (v: unknown, name: string) => finitePositive(v, name);
const KL_OPTIONS = {
  ...LOGITS_OPTIONS,
  moveChance: numIn(-Infinity, Infinity, 1),
  gradOutput: numIn(-Infinity, Infinity, 1),
};
const FLAGS = { returnGradient: flag(false), returnOldGradient: flag(false) };
const ARRAYS = ['moveChance', 'gradOutput'] as const;
const OUTS = ['kl', 'gradient', 'oldGradient'] as const;
const CALL = 'drakesKl(logits, oldLogits, mask, options)';
const KEYS = knownKeys('drakesKl', Object.keys(KL_OPTIONS), Object.keys(FLAGS), ['out']);

type Out = { kl?: unknown; gradient?: unknown; oldGradient?: unknown };

const op = defineOp({
  name: 'drakesKl',
  mix: LOGITS_MIX,
  slots: {
    logits: { types: ['f32', 'u16'], shape: 'N*V' },
    oldLogits: { types: ['f32', 'u16'], shape: 'N*V' },
    mask: { types: ['u8'], shape: 'N' },
    moveChance: { types: ['f32'], shape: 'N' },
    gradOutput: { types: ['f32'], shape: 'N' },
    kl: { types: ['f32'], shape: 'N', out: true },
    gradient: { types: ['f32'], shape: 'N*V', out: true },
    oldGradient: { types: ['f32'], shape: 'N*V', out: true },
  },
  options: KL_OPTIONS,
  prepare(io, ...[logits, oldLogits, mask, options]: [logits: unknown, oldLogits: unknown, mask: unknown, options: unknown]) {
    optionsInMaskPlace(mask, options, CALL);
    const { opts } = openOptions(io, options, true, [[oldLogits, 'oldLogits'], [mask, 'mask']], ARRAYS, OUTS, KEYS);
    const l = readLogits(io, logits, opts);
    const rows = logitsRows(l.logits, l.vocab);
    let old: Buf;
    if (io.device) {
      old = deviceArg(oldLogits, 'oldLogits', [l.dtype], undefined);
      io.set('oldLogits', old);
    } else {
      const ctor = l.logits instanceof Float32Array ? Float32Array : Uint16Array;
      if (!(oldLogits instanceof ctor)) {
        throw new TypeError(`oldLogits: expected a ${ctor.name} like logits (dtype '${l.dtype}'), received ${describe(oldLogits)}`);
      }
      old = io.read('oldLogits', oldLogits, 'oldLogits');
    }
    if (old.length !== l.logits.length) {
      const n = l.logits.length;
      throw new RangeError(`oldLogits: expected the shape of logits, length ${n} (${n / l.vocab} x ${l.vocab}), received length ${old.length}`);
    }
    io.optional('mask', mask, 'mask', rows);
    let moveChance = 1;
    if (opts.moveChance === undefined) {
      throw new TypeError('options.moveChance: expected a positive number or a Float32Array (N), received undefined');
    } else if (typeof opts.moveChance === 'number') {
      moveChance = positive(opts.moveChance, 'options.moveChance');
    } else {
      const mc = io.read<Float32Array>('moveChance', opts.moveChance, 'options.moveChance', rows);
      // (device values are not read back: a non-positive one gives that row inf / NaN)
      for (let i = 0; !io.device && i < mc.length; i++) {
        if (!(mc[i] > 0) || !Number.isFinite(mc[i])) {
          throw new RangeError(`options.moveChance: expected positive finite values, received ${mc[i]} at ${i}`);
        }
      }
    }
    const { returnGradient, returnOldGradient } = readOptions(FLAGS, opts);
    let gradOutput = 1;
    if (opts.gradOutput !== undefined) {
      if (!returnGradient && !returnOldGradient) {
        throw new TypeError('options.gradOutput: expected returnGradient or returnOldGradient: true alongside it, received neither');
      }
      if (typeof opts.gradOutput === 'number') gradOutput = finiteIn(opts.gradOutput, 'options.gradOutput', -Infinity, Infinity);
      else io.read('gradOutput', opts.gradOutput, 'options.gradOutput', rows);
    }
    const out = (opts.out === undefined ? {} : optionsObject<Out>(opts.out, 'options.out', true)) as Out;
    if (!returnGradient && out.gradient !== undefined) {
      throw new TypeError('options.out.gradient: expected returnGradient: true alongside it, received returnGradient: false');
    }
    if (!returnOldGradient && out.oldGradient !== undefined) {
      throw new TypeError('options.out.oldGradient: expected returnOldGradient: true alongside it, received returnOldGradient: false');
    }
    const kl = io.out('kl', out.kl, 'options.out.kl', rows);
    const result: DrakesKlResult = { kl: kl as Float32Array };
    const grads: [Buf, string][] = [];
    if (returnGradient) {
      result.gradient = io.out('gradient', out.gradient, 'options.out.gradient', l.logits.length) as Float32Array;
      grads.push([result.gradient, 'options.out.gradient']);
    }
    if (returnOldGradient) {
      result.oldGradient = io.out('oldGradient', out.oldGradient, 'options.out.oldGradient', l.logits.length) as Float32Array;
      grads.push([result.oldGradient, 'options.out.oldGradient']);
    }
    for (const [g, name] of grads) {
      if (overlaps(g, l.logits) || overlaps(g, old)) {
        throw new RangeError(`${name}: expected a buffer apart from logits and oldLogits, received one that overlaps them`);
      }
      if (overlaps(g, kl)) throw new RangeError(`options.out.kl: expected a buffer apart from ${name}, received one that overlaps it`);
    }
    if (result.gradient && result.oldGradient && overlaps(result.gradient, result.oldGradient)) {
      throw new RangeError('options.out.oldGradient: expected a buffer apart from options.out.gradient, received one that overlaps it');
    }
    const values: OptionValues<typeof KL_OPTIONS> = { vocab: l.vocab, dtype: l.dtype, moveChance, gradOutput };
    return { params: packOptions(KL_OPTIONS, values), finish: () => result };
  },
});

/** The result with the asked-for gradients typed present. */
export type DrakesKlResultOf<G, O> = DrakesKlResult &
  (G extends true ? { gradient: Float32Array } : unknown) &
  (O extends true ? { oldGradient: Float32Array } : unknown);

/** drakesKl options when the logits are a DeviceArray: every array a DeviceArray (mask u8, moveChance and gradOutput f32). */
export interface DeviceDrakesKlOptions extends Omit<DrakesKlOptions, 'moveChance' | 'gradOutput' | 'out'> {
  /** A positive number, or an f32 DeviceArray (N) (its values are not checked on the host). */
  moveChance: number | DeviceArray;
  /** dL/dkl per row: a number or an f32 DeviceArray (N). */
  gradOutput?: number | DeviceArray;
  /** Caller-owned f32 DeviceArrays. */
  out?: { kl?: DeviceArray; gradient?: DeviceArray; oldGradient?: DeviceArray };
}
/** drakesKl's result on the device (f32 DeviceArrays owned by the caller). */
export interface DeviceDrakesKlResult {
  kl: DeviceArray<'f32'>;
  gradient?: DeviceArray<'f32'>;
  oldGradient?: DeviceArray<'f32'>;
}

/** drakesKl's signature. */
export interface DrakesKlFn {
  (logits: DeviceArray, oldLogits: DeviceArray, mask: DeviceArray | null, options: DeviceDrakesKlOptions): DeviceDrakesKlResult;
  <G extends boolean | undefined = undefined, O extends boolean | undefined = undefined>(
    logits: Logits,
    oldLogits: Logits,
    mask: Uint8Array | null,
    options: DrakesKlOptions & { returnGradient?: G; returnOldGradient?: O },
  ): DrakesKlResultOf<G, O>;
}
/** drakesKlAsync's signature (drakesKl's in a Promise). */
export interface DrakesKlAsyncFn {
  (logits: DeviceArray, oldLogits: DeviceArray, mask: DeviceArray | null, options: DeviceDrakesKlOptions): Promise<DeviceDrakesKlResult>;
  <G extends boolean | undefined = undefined, O extends boolean | undefined = undefined>(
    logits: Logits,
    oldLogits: Logits,
    mask: Uint8Array | null,
    options: DrakesKlOptions & { returnGradient?: G; returnOldGradient?: O },
  ): Promise<DrakesKlResultOf<G, O>>;
}

const typed = op.as<DrakesKlFn, DrakesKlAsyncFn>();

/**
 * DRAKES's KL term per position: the generalised-KL integrand of the continuous-time rates of the
 * fine-tuned and pre-trained masked diffusion models, sum_j [p log(p / p_old) - p + p_old] /
 * moveChance, over full-vocabulary logit rows, with the gradients with respect to either logit row.
 * `mask` (N, nullable) keeps the positions that count. Reads the rows two or three times; no (N, V)
 * temporary besides the gradients asked for.
 *
 * @example
 * const { kl, gradient } = drakesKl(logits, oldLogits, stillMasked, { vocab: 4, moveChance: 0.3, returnGradient: true });
 */
export const drakesKl = typed.sync;
/** drakesKl on a worker thread; leave its buffers untouched until it settles. */
export const drakesKlAsync = typed.async;
