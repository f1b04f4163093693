// What the three preference ops share: the wording of a host / device mix and the pair outputs
// and scalar results of preferenceLoss and tokenWeightedDpoLoss.

/** What the device path says when host and device arrays are mixed. */
export const PREFERENCE_MIX = 'the log-probs are a DeviceArray';

/** The per-pair outputs of preferenceLoss and tokenWeightedDpoLoss, in slot order. */
export const PAIR_OUTS = ['losses', 'chosenRewards', 'rejectedRewards', 'gradChosen', 'gradRejected'] as const;

/** The scalar results of preferenceLoss and tokenWeightedDpoLoss, in order. */
export const PAIR_SCALARS = ['loss', 'rewardAccuracy', 'rewardMargin'] as const;

/** The metrics of a PAIR_SCALARS buffer. */
export const pairMetrics = (s: Float64Array) => ({ rewardAccuracy: s[1], rewardMargin: s[2] });
