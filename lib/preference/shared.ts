// What the three preference ops share: the wording of a host / device mix, the building of their
// outputs and result, and the pair outputs and scalar results of preferenceLoss and tokenWeightedDpoLoss.
import { options as optionsObject } from '../check.js';
import type { Io, SlotSpec, SlotSpecs } from '../op.js';

/** What the device path says when host and device arrays are mixed. */
export const PREFERENCE_MIX = 'the log-probs are a DeviceArray';

/** The per-pair outputs of preferenceLoss and tokenWeightedDpoLoss, in slot order. */
export const PAIR_OUTS = ['losses', 'chosenRewards', 'rejectedRewards', 'gradChosen', 'gradRejected'] as const;

/** The output slots of PAIR_OUTS, in that order: per pair (`rowShape`) but the gradients (`gradShape`). */
export function pairOutSlots(rowShape: string, gradShape: string): Record<(typeof PAIR_OUTS)[number], SlotSpec> {
  const slots = {} as Record<(typeof PAIR_OUTS)[number], SlotSpec>;
  for (const k of PAIR_OUTS) slots[k] = { types: ['f32'], shape: k.startsWith('grad') ? gradShape : rowShape, out: true };
  return slots;
}

/** The scalar results of preferenceLoss and tokenWeightedDpoLoss, in order. */
export const PAIR_SCALARS = ['loss', 'rewardAccuracy', 'rewardMargin'] as const;

/** The metrics of a PAIR_SCALARS buffer. */
export const pairMetrics = (s: Float64Array) => ({ rewardAccuracy: s[1], rewardMargin: s[2] });

/**
 * The outputs `keys` (options.out.<key>: the caller's, checked, or new ones of `length(key)`), the
 * scalar results and the finish that gives { loss: scalars[0], ...outputs, metrics: metrics(scalars) }.
 */
export function lossOutputs<R>(
  io: Io<SlotSpecs>,
  out: unknown,
  keys: readonly string[],
  length: number | ((key: string) => number),
  scalarCount: number,
  metrics: (s: Float64Array) => object,
): { scalars: Float64Array; finish: () => R } {
  const given = optionsObject<Record<string, unknown>>(out, 'options.out', false);
  const names = outNames(keys);
  const arrays = new Array<unknown>(keys.length);
  for (let i = 0; i < keys.length; i++) arrays[i] = io.out(keys[i], given[keys[i]], names[i], typeof length === 'number' ? length : length(keys[i]));
  const scalars = io.scalars(scalarCount);
  const build = resultOf(keys);
  return { scalars, finish: () => build(scalars[0], arrays, metrics(scalars)) as R };
}

const namesCache = new WeakMap<readonly string[], string[]>();
const outNames = (keys: readonly string[]) => {
  let n = namesCache.get(keys);
  if (!n) namesCache.set(keys, (n = keys.map((k) => `options.out.${k}`)));
  return n;
};

type Build = (loss: number, arrays: unknown[], metrics: object) => object;
const buildCache = new WeakMap<readonly string[], Build>();
/** { loss, <keys...>, metrics } built by straight-line code (one object shape per op), compiled once from our own key names. */
const resultOf = (keys: readonly string[]): Build => {
  let b = buildCache.get(keys);
  if (!b) {
    const fields = keys.map((k, i) => `${JSON.stringify(k)}: a[${i}]`).join(', ');
    buildCache.set(keys, (b = new Function('l', 'a', 'm', `return { loss: l, ${fields}, metrics: m };`) as Build));
  }
  return b;
};
