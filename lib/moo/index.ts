// The multi-objective family (docs/papers/dynamic-reward-weighting.md, docs/papers/op-gfn.md):
// paretoFront, rewardWeightUpdate, hypervolumeMetaReward, trajectoryBalanceLoss, orderPreservingLoss.
export * from './pareto-front.js';
export * from './reward-weight-update.js';
export * from './hypervolume-meta-reward.js';
export * from './gfn.js';
