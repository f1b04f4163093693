// The option enums of the advantages family, in native code order (native/kernels/advantages.h),
// and the wording of host / device mixing errors.
export type AdvantageEstimator = 'grpo' | 'rloo' | 'reinforce_pp_baseline' | 'opo' | 'passk' | 'bnpo' | 'gpg';
export type AdvantageScale = 'group' | 'batch' | 'none';
export type MultiRewardMode = 'sum_then_normalize' | 'normalize_then_sum';
export type EnsembleMethod = 'mean' | 'min' | 'uwo';

export const ESTIMATORS: readonly AdvantageEstimator[] = ['grpo', 'rloo', 'reinforce_pp_baseline', 'opo', 'passk', 'bnpo', 'gpg'];
/** groupAdvantages' singletonBaseline: a group with one valid sample is compared with 0 (verl) or itself (TRL). */
export type SingletonBaseline = 'zero' | 'self';
export const SINGLETON: readonly SingletonBaseline[] = ['zero', 'self'];
export const SCALES: readonly AdvantageScale[] = ['group', 'batch', 'none'];
export const MULTI: readonly MultiRewardMode[] = ['sum_then_normalize', 'normalize_then_sum'];
export const METHODS: readonly EnsembleMethod[] = ['mean', 'min', 'uwo'];

/** What the device path says when host and device arrays are mixed (groupAdvantages, ensembleRewards, discountedReturns). */
export const REWARDS_MIX = 'the rewards are a DeviceArray';
/** The same for gae and maskedWhiten. */
export const VALUES_MIX = 'the values are a DeviceArray';
