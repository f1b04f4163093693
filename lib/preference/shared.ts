// What the three preference ops share: the wording of a host / device mix, the building of their
// outputs and result, and the pair outputs and scalar results of preferenceLoss and tokenWeightedDpoLoss.
import { options as optionsObject } from '../check.js';
import type { Io, SlotSpecs } from '../op.js';

/** What the device path says when host and device arrays are mixed. */
export const PREFERENCE_MIX = 'the log-probs are a DeviceArray';

/** The per-pair outputs of preferenceLoss and tokenWeightedDpoLoss, in slot order. */
export const PAIR_OUTS = ['losses', 'chosenRewards', 'rejectedRewards', 'gradChosen', 'gradRejected'] as const;

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
  length: (key: string) => number,
  scalarCount: number,
  metrics: (s: Float64Array) => object,
): { scalars: Float64Array; finish: () => R } {
  const given = optionsObject<Record<string, unknown>>(out, 'options.out', false);
  const result: Record<string, unknown> = {};
  for (const k of keys) result[k] = io.out(k, given[k], `options.out.${k}`, length(k));
  const scalars = new Float64Array(scalarCount);
  return { scalars, finish: () => ({ loss: scalars[0], ...result, metrics: metrics(scalars) }) as R };
}
