// preferenceLoss: the DPO family, SimPO, CPO, ORPO, reward-model (Bradley-Terry) training and f-DPO,
// with the gradient of the mean loss with respect to the policy log-probs (docs/preference.md).
//
// chosenLogps, rejectedLogps: (P) sequence log-prob sums;  c = chosen - refChosen,
// rho = rejected - refRejected,  x = beta (f(c) - f(rho));  e.g. sigmoid (DPO / cDPO):
//   L = -(1-e) log s(x) - e log s(-x),  loss = mean_i L_i,  dloss/dchosen_i = dL_i/dc_i / P.
import { describe, finiteIn, finitePositive, oneOf } from '../check.js';
import type { DeviceArray } from '../cuda.js';
import { defineOp, enumOf, type Io, knownKeysMoved, num, onlyWhen, openOptions, optionKeys, type OptionSpec, packOptions, readOptions, renamedTo, userKey } from '../op.js';
import { applyPreset, PREFERENCE_PRESETS } from '../presets.js';
import { FDIVS, LOSSES, MIXABLE, lengthsReason, lossInfo, lossesWith, type FDivergence, type PreferenceLossType } from './losses.js';
import { lossOutputs, PAIR_OUTS, PAIR_SCALARS, PREFERENCE_MIX, pairMetrics, pairOutSlots } from './shared.js';

export interface PreferenceLossOptions {
  /** TRL's defaults where they differ from ours (docs/porting.md): 'simpo' beta 0.1, fAlpha 0.5. Explicit options win. */
  preset?: 'trl';
  /**
   * Which loss (TRL's `loss_type`). Default 'sigmoid' (DPO). A list of TRL's DPO loss types (every
   * loss but 'simpo', 'cpo', 'orpo', 'bt') combines them: loss = sum_k lossWeights[k] * mean_i L_k,i
   * (TRL `loss_type` list, e.g. MPO's ['sigmoid', 'bco_pair', 'sft']).
   */
  lossType?: PreferenceLossType | readonly PreferenceLossType[];
  /** With a list of losses: one weight per entry (TRL `loss_weights`). Default 1 each. */
  lossWeights?: readonly number[];
  /**
   * 'ipo' and 'sigmoid_norm' under a non-reverse-KL fDivergence: 'score' (default; TRL v0.29.0 to
   * f2cd577) averages f(c) over the length, f(c) / Lw - f(rho) / Ll; 'log_ratio' (TRL v0.19-v0.28)
   * applies f to the averaged log-ratio, f(c / Lw) - f(rho / Ll). Identical under 'reverse_kl'.
   */
  lengthAverage?: 'score' | 'log_ratio';
  /** Reference-model sequence log-prob sums (P); both or neither. Absent = reference-free (0). */
  refChosenLogps?: Float32Array;
  refRejectedLogps?: Float32Array;
  /**
   * Completion lengths (P), >= 1; required by the length-averaged losses ('ipo', 'simpo', 'orpo'),
   * by 'cpo' with alpha != 0 and by nllWeight != 0. The kernel divides by them itself.
   */
  chosenLengths?: Int32Array;
  rejectedLengths?: Int32Array;
  /** Inverse temperature / KL weight. Default 0.1 (TRL, Liger); 2.0 for 'simpo' (SimPO paper). Unused by 'bt'. */
  beta?: number;
  /** Label-smoothing e in [0, 0.5): cDPO for 'sigmoid', 'robust', 'exo_pair' (0 means 1e-3), 'simpo', 'cpo', 'bt'. Default 0. */
  labelSmoothing?: number;
  /** SimPO target margin gamma (the logits are beta (avg_w - avg_l) - gamma). Default 0.5. */
  gamma?: number;
  /** CPO weight of the chosen NLL term (TRL `cpo_alpha`). Default 1.0. */
  alpha?: number;
  /** DiscoPOP temperature (TRL `discopop_tau`). Default 0.05. */
  tau?: number;
  /** 'bt' only: margin subtracted from the reward difference; a number or one per pair (P). Default 0. */
  margin?: number | Float32Array;
  /** 'bt' only: soft labels q in [0, 1] (P): L = -(q log s(d) + (1-q) log s(-d)). */
  preferenceProb?: Float32Array;
  /** RPO: adds nllWeight * (-chosen / chosenLength) per pair (TRL `rpo_alpha`). Default 0. */
  nllWeight?: number;
  /** f-DPO divergence ('sigmoid', 'robust', 'hinge', 'ipo', 'exo_pair', 'discopop'). Default 'reverse_kl'. */
  fDivergence?: FDivergence;
  /** Coefficient of 'alpha_divergence' (> 0). Default 1.0 (TRL). */
  fAlpha?: number;
  /** Caller-owned outputs, (P) each. */
  out?: {
    losses?: Float32Array;
    chosenRewards?: Float32Array;
    rejectedRewards?: Float32Array;
    gradChosen?: Float32Array;
    gradRejected?: Float32Array;
  };
}

export interface PreferenceLossResult {
  /** Mean of `losses` (computed in double). */
  loss: number;
  /** Per-pair losses (P). */
  losses: Float32Array;
  /** Implicit rewards (P): beta c for the DPO family, beta avg/sum log-prob for SimPO/CPO/ORPO, the rewards for 'bt'. */
  chosenRewards: Float32Array;
  rejectedRewards: Float32Array;
  /** d loss / d chosenLogps (P), loss being the mean. */
  gradChosen: Float32Array;
  /** d loss / d rejectedLogps (P). */
  gradRejected: Float32Array;
  metrics: {
    /** Share of pairs whose chosen reward exceeds the rejected reward. */
    rewardAccuracy: number;
    /** Mean of chosenRewards - rejectedRewards. */
    rewardMargin: number;
  };
}

/** preferenceLoss options when the log-probs are DeviceArrays: every array is a DeviceArray. */
export interface DevicePreferenceLossOptions
  extends Omit<PreferenceLossOptions, 'refChosenLogps' | 'refRejectedLogps' | 'chosenLengths' | 'rejectedLengths' | 'margin' | 'preferenceProb' | 'out'> {
  /** f32 DeviceArrays (P); both or neither. */
  refChosenLogps?: DeviceArray;
  refRejectedLogps?: DeviceArray;
  /** i32 DeviceArrays (P); checked (>= 1) on the device where the loss uses them. */
  chosenLengths?: DeviceArray;
  rejectedLengths?: DeviceArray;
  /** 'bt': a number or an f32 DeviceArray (P). */
  margin?: number | DeviceArray;
  /** 'bt': f32 DeviceArray (P) of probabilities (not range-checked on the device). */
  preferenceProb?: DeviceArray;
  /** Caller-owned f32 DeviceArrays (P each). */
  out?: {
    losses?: DeviceArray;
    chosenRewards?: DeviceArray;
    rejectedRewards?: DeviceArray;
    gradChosen?: DeviceArray;
    gradRejected?: DeviceArray;
  };
}

/** preferenceLoss on the device: arrays are f32 DeviceArrays (owned by the caller), loss and metrics are downloaded. */
export interface DevicePreferenceLossResult {
  loss: number;
  losses: DeviceArray<'f32'>;
  chosenRewards: DeviceArray<'f32'>;
  rejectedRewards: DeviceArray<'f32'>;
  gradChosen: DeviceArray<'f32'>;
  gradRejected: DeviceArray<'f32'>;
  metrics: { rewardAccuracy: number; rewardMargin: number };
}

type LossOption = PreferenceLossType | readonly PreferenceLossType[];
const lossOf = (prev: Readonly<Record<string, unknown>>) => prev.loss as LossOption;
/** Whether the loss, or a loss of the list, has `pred`. */
const anyLoss = (l: LossOption, pred: (l: PreferenceLossType) => boolean) => (typeof l === 'string' ? pred(l) : l.some(pred));
/** 'sigmoid' or ['sigmoid', 'sft'] (for messages). */
const lossText = (l: LossOption) => (typeof l === 'string' ? `'${l}'` : `[${l.map((x) => `'${x}'`).join(', ')}]`);

/** loss: a name, or a non-empty list of TRL's DPO loss types (packed as 0: the mix_ weights carry it). */
const lossSpec: OptionSpec<LossOption> = {
  read(v, name) {
    if (v === undefined) return 'sigmoid';
    if (!Array.isArray(v)) return oneOf(v, name, LOSSES);
    if (v.length < 1) throw new RangeError(`${name}: expected a loss name or a non-empty list of loss names, received []`);
    return Object.freeze(v.map((x, k) => {
      const l = oneOf(x, `${name}[${k}]`, LOSSES);
      if (!MIXABLE.includes(l)) {
        throw new RangeError(`${name}[${k}]: a list holds TRL's DPO loss types (not 'simpo', 'cpo', 'orpo', 'bt'), received '${l}'`);
      }
      return l;
    }));
  },
  code: (v) => (typeof v === 'string' ? LOSSES.indexOf(v) : 0),
  values: LOSSES,
};

/** lossWeights: one finite weight per listed loss (default 1 each); packed as 1 for a list (rk PreferenceParams::mixed). */
const lossWeights: OptionSpec<readonly number[] | null> = {
  read(v, name, prev) {
    const l = lossOf(prev);
    if (typeof l === 'string') {
      if (v !== undefined) throw new TypeError(`${name}: applies to a list of losses only, expected undefined with loss '${l}', received ${describe(v)}`);
      return null;
    }
    if (v === undefined) return l.map(() => 1);
    if (!Array.isArray(v)) throw new TypeError(`${name}: expected an array of ${l.length} numbers (one per loss), received ${describe(v)}`);
    if (v.length !== l.length) {
      throw new RangeError(`${name}: expected one weight per loss (${l.length}), received ${v.length} weights`);
    }
    return v.map((x, k) => finiteIn(x, `${name}[${k}]`, -Infinity, Infinity));
  },
  code: (v) => (v === null ? 0 : 1),
};

/** The weight of loss code k in a list (weights of repeated entries add up); 0 otherwise. Not a user option. */
const mixWeight = (k: number): OptionSpec<number> => ({
  read(_v, _name, prev) {
    const l = lossOf(prev);
    const w = prev.lossWeights as readonly number[] | null;
    if (typeof l === 'string' || w === null) return 0;
    let s = 0;
    for (let j = 0; j < l.length; j++) if (LOSSES.indexOf(l[j]) === k) s += w[j];
    return s;
  },
  code: (v) => v,
});
const MIX_OPTIONS = Object.fromEntries(LOSSES.map((l, k) => [`mix_${l}`, mixWeight(k)])) as Record<`mix_${PreferenceLossType}`, OptionSpec<number>>;

const labelSmoothing: OptionSpec<number> = {
  read(v, name, prev) {
    if (v === undefined) return 0;
    const e = finiteIn(v, name, 0, 0.5);
    if (e >= 0.5) throw new RangeError(`${name}: expected a number in [0, 0.5) (0.5 would divide by 1 - 2e), received ${e}`);
    if (e > 0 && !anyLoss(lossOf(prev), (l) => lossInfo(l).smoothed)) {
      throw new RangeError(`${name}: loss ${lossText(lossOf(prev))} takes no label smoothing, expected 0, received ${e}`);
    }
    return e;
  },
  code: (v) => v,
};

const nllWeight: OptionSpec<number> = {
  read(v, name, prev) {
    const w = v === undefined ? 0 : finiteIn(v, name, 0, Infinity);
    if (w !== 0 && lossOf(prev) === 'bt') {
      throw new RangeError(`${name}: loss 'bt' compares rewards, not log-probs, expected 0, received ${w}`);
    }
    return w;
  },
  code: (v) => v,
};

const fDivergence: OptionSpec<FDivergence> = {
  read(v, name, prev) {
    const f = v === undefined ? 'reverse_kl' : oneOf(v, name, FDIVS);
    if (f !== 'reverse_kl' && !anyLoss(lossOf(prev), (l) => lossInfo(l).fDivergence)) {
      const applies = lossesWith('fDivergence').map((l) => `'${l}'`).join(', ');
      throw new RangeError(`${name}: applies to ${applies}, not to loss ${lossText(lossOf(prev))}; received '${f}'`);
    }
    return f;
  },
  code: (v) => FDIVS.indexOf(v),
  values: FDIVS,
};

/** The scalar margin ('bt'; an array margin is its own slot, packed as 0 here). */
const margin: OptionSpec<number> = {
  read(v, name, prev) {
    if (v === undefined) return 0;
    if (lossOf(prev) !== 'bt') {
      throw new TypeError(`${name}: only loss 'bt' takes it, expected undefined with loss '${lossOf(prev)}', received ${describe(v)}`);
    }
    return typeof v === 'number' ? finiteIn(v, name, -Infinity, Infinity) : 0;
  },
  code: (v) => v,
};

/** The scalar options of preferenceLoss, in checking (and packing) order. */
const withLoss = (p: Readonly<Record<string, unknown>>) => `loss ${lossText(lossOf(p))}`;

const PREFERENCE_OPTIONS = {
  // read from options.lossType (TRL's name); `loss` stays the native param's name
  loss: userKey('lossType', lossSpec),
  beta: num(finitePositive, (p) => (p.loss === 'simpo' ? 2.0 : 0.1)),
  labelSmoothing,
  gamma: onlyWhen("loss 'simpo'", (p) => p.loss === 'simpo', withLoss, num((v, k) => finiteIn(v, k, -Infinity, Infinity), 0.5)),
  alpha: onlyWhen("loss 'cpo'", (p) => p.loss === 'cpo', withLoss, num((v, k) => finiteIn(v, k, 0, Infinity), 1.0)),
  tau: onlyWhen("loss 'discopop'", (p) => anyLoss(lossOf(p), (l) => l === 'discopop'), withLoss, num(finitePositive, 0.05)),
  nllWeight,
  fDivergence,
  fAlpha: onlyWhen(
    "fDivergence 'alpha_divergence'", (p) => p.fDivergence === 'alpha_divergence', (p) => `fDivergence '${String(p.fDivergence)}'`,
    num(finitePositive, 1.0),
  ),
  margin,
  lengthAverage: onlyWhen(
    "loss 'ipo' or 'sigmoid_norm'", (p) => anyLoss(lossOf(p), (l) => l === 'ipo' || l === 'sigmoid_norm'), withLoss,
    enumOf(['score', 'log_ratio'] as const, 'score'),
  ),
  lossWeights,
  ...MIX_OPTIONS,
};

/** chosenLengths / rejectedLengths: required when `why` is set; >= 1 each (checked here on the host). */
function readLengths(io: Io, slot: 'chosenLengths' | 'rejectedLengths', v: unknown, n: number, loss: LossOption, why: string | null): void {
  const name = `options.${slot}`;
  if (v === undefined) {
    if (why === null) return;
    const expected = io.device ? `an i32 DeviceArray of length ${n}` : `an Int32Array of length ${n}`;
    throw new TypeError(`${name}: ${why} (loss ${lossText(loss)}), expected ${expected}, received undefined`);
  }
  const lens = io.read<Int32Array>(slot, v, name, n);
  if (io.device) return; // checked on the device where the loss uses them
  for (let i = 0; i < n; i++) {
    if (lens[i] < 1) throw new RangeError(`${name}[${i}]: expected a length >= 1, received ${lens[i]}`);
  }
}

type Args = [chosenLogps: unknown, rejectedLogps: unknown, options: unknown];

const PREFERENCE_OPTION_ARRAYS = ['refChosenLogps', 'refRejectedLogps', 'chosenLengths', 'rejectedLengths', 'margin', 'preferenceProb'] as const;
const PREFERENCE_KEYS = knownKeysMoved(
  'preferenceLoss',
  { loss: renamedTo('lossType', " (TRL's name; `loss` is the result's mean loss)") },
  optionKeys(PREFERENCE_OPTIONS).filter((k) => !k.startsWith('mix_')), PREFERENCE_OPTION_ARRAYS, ['preset', 'out'],
);

const NO_OPTIONS: Readonly<Record<string, unknown>> = Object.freeze({});

const op = defineOp({
  name: 'preferenceLoss',
  mix: PREFERENCE_MIX,
  slots: {
    chosenLogps: { types: ['f32'], shape: 'P' },
    rejectedLogps: { types: ['f32'], shape: 'P' },
    refChosenLogps: { types: ['f32'], shape: 'P' },
    refRejectedLogps: { types: ['f32'], shape: 'P' },
    chosenLengths: { types: ['i32'], shape: 'P' },
    rejectedLengths: { types: ['i32'], shape: 'P' },
    margin: { types: ['f32'], shape: 'P' },
    preferenceProb: { types: ['f32'], shape: 'P' },
    ...pairOutSlots('P', 'P'),
  },
  options: PREFERENCE_OPTIONS,
  scalars: PAIR_SCALARS,
  prepare(io, ...[chosenLogps, rejectedLogps, options]: Args) {
    const { opts: given } = openOptions(
      io, options, false, [[rejectedLogps, 'rejectedLogps']],
      PREFERENCE_OPTION_ARRAYS, PAIR_OUTS, PREFERENCE_KEYS,
    );
    const opts = applyPreset('preferenceLoss', given, PREFERENCE_PRESETS);
    const loss = PREFERENCE_OPTIONS.loss.read(opts.lossType, 'options.lossType', NO_OPTIONS);
    const n = io.read('chosenLogps', chosenLogps, 'chosenLogps').length;
    if (n < 1) throw new RangeError('chosenLogps: expected at least one pair, received length 0');
    io.read('rejectedLogps', rejectedLogps, 'rejectedLogps', n);

    if (opts.refChosenLogps !== undefined || opts.refRejectedLogps !== undefined) {
      if (typeof loss === 'string' && lossInfo(loss).referenceFree) {
        const name = opts.refChosenLogps !== undefined ? 'options.refChosenLogps' : 'options.refRejectedLogps';
        throw new TypeError(`${name}: loss '${loss}' is reference-free, expected undefined, received ${describe(opts.refChosenLogps ?? opts.refRejectedLogps)}`);
      }
      if (opts.refChosenLogps === undefined || opts.refRejectedLogps === undefined) {
        const missing = opts.refChosenLogps === undefined ? 'options.refChosenLogps' : 'options.refRejectedLogps';
        throw new TypeError(`${missing}: expected both reference arrays or neither, received undefined`);
      }
      io.read('refChosenLogps', opts.refChosenLogps, 'options.refChosenLogps', n);
      io.read('refRejectedLogps', opts.refRejectedLogps, 'options.refRejectedLogps', n);
    }

    const values = readOptions(PREFERENCE_OPTIONS, opts);
    if (opts.preferenceProb !== undefined && loss !== 'bt') {
      throw new TypeError(`options.preferenceProb: only loss 'bt' takes it, expected undefined with loss '${loss}', received ${describe(opts.preferenceProb)}`);
    }
    if (opts.margin !== undefined && typeof opts.margin !== 'number') io.read('margin', opts.margin, 'options.margin', n);
    if (opts.preferenceProb !== undefined) {
      if (values.labelSmoothing > 0) {
        throw new RangeError(`options.labelSmoothing: soft labels (preferenceProb) replace label smoothing, expected 0, received ${values.labelSmoothing}`);
      }
      const prob = io.read<Float32Array>('preferenceProb', opts.preferenceProb, 'options.preferenceProb', n);
      if (!io.device) {
        for (let i = 0; i < n; i++) {
          if (!(prob[i] >= 0 && prob[i] <= 1)) {
            throw new RangeError(`options.preferenceProb[${i}]: expected a probability in [0, 1], received ${prob[i]}`);
          }
        }
      }
    }

    const why = lengthsReason(loss, values.alpha, values.nllWeight);
    readLengths(io, 'chosenLengths', opts.chosenLengths, n, loss, why);
    readLengths(io, 'rejectedLengths', opts.rejectedLengths, n, loss, why);

    const outs = lossOutputs<PreferenceLossResult>(io, opts.out, PAIR_OUTS, n, PAIR_SCALARS.length, pairMetrics);
    return { params: packOptions(PREFERENCE_OPTIONS, values), scalars: outs.scalars, finish: outs.finish };
  },
});

const typed = op.typed<
  [chosenLogps: Float32Array, rejectedLogps: Float32Array, options?: PreferenceLossOptions],
  PreferenceLossResult,
  [chosenLogps: DeviceArray, rejectedLogps: DeviceArray, options?: DevicePreferenceLossOptions],
  DevicePreferenceLossResult
>();

/**
 * A preference loss over P pairs of sequence log-prob sums, with the implicit rewards, the
 * metrics trainers log and the gradients of the mean loss with respect to `chosenLogps` and
 * `rejectedLogps`. All arithmetic is in double; every loss stays finite for log-ratios of
 * magnitude up to 1e3.
 *
 * With f32 DeviceArrays (lengths i32) it runs on the GPU (cuda/preference.h): the per-pair arrays are f32
 * DeviceArrays (owned by the caller: free() them), loss and metrics are downloaded numbers. Every array must
 * then be a DeviceArray (TypeError naming it otherwise). Lengths are checked on the device where the loss
 * uses them (a length < 1 is the host path's RangeError; the call then waits for the device); lengths the
 * loss does not use, and preferenceProb values, are not checked there.
 *
 * @example
 * const r = preferenceLoss(policyChosen, policyRejected, {
 *   refChosenLogps: refChosen, refRejectedLogps: refRejected, beta: 0.1,
 * });
 * // r.loss, r.gradChosen, r.gradRejected, r.metrics.rewardAccuracy
 */
export const preferenceLoss = typed.sync;
/** preferenceLoss on a worker thread; leave its buffers untouched until it settles. */
export const preferenceLossAsync = typed.async;
