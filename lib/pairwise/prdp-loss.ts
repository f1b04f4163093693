// prdpLoss: PRDP's proximal reward-difference prediction loss (arXiv 2402.08714v2, Eqs. 14-21 and
// Appendix G), with its gradients wrt both samples' per-step log-probs. The formula:
// native/core/ops/prdp_loss.h; docs/papers/prdp.md.
import type { DeviceArray } from '../cuda.js';
import { finitePositive } from '../check.js';
import { enumOf, num, numIn } from '../op.js';
import { defineSeqOp } from '../seq-op.js';
import type { TokenMask } from '../types.js';

/** How the per-step log-ratios of a trajectory are combined: the paper's sum (Eq. 21) or its Appendix G code's mean. */
export type PrdpStepReduction = 'sum' | 'mean';
const PRDP_STEP_REDUCTIONS = ['sum', 'mean'] as const satisfies readonly PrdpStepReduction[];

export interface PrdpLossOptions {
  /** Denoising steps per sample T. */
  seqLen: number;
  /** The KL weight beta: the predicted log-ratio difference is regressed on (r_a - r_b) / beta. Default 0.1. */
  beta?: number;
  /** The stepwise clipping range: each step's log-ratio l - l_old is clipped to [-epsilon, epsilon] (Eq. 20); in [0, 0.99]. Default 1e-4 (the paper's large-scale setting). */
  epsilon?: number;
  /** 'sum' (default): the trajectory's log-ratio is the sum over steps (Eq. 21); 'mean': the masked mean over steps (Appendix G's code). */
  stepReduction?: PrdpStepReduction;
  out?: { gradLogprobsA?: Float32Array; gradLogprobsB?: Float32Array };
}
export interface PrdpLossResult {
  /** The mean over pairs of max((D - y)^2, (Dc - y)^2), D and Dc the unclipped and clipped log-ratio differences, y = (r_a - r_b) / beta. */
  loss: number;
  /** dLoss/dlogprobsA and dLoss/dlogprobsB, (B * T); 0 at masked steps, and at clipped steps of a pair whose clipped error is the larger. */
  gradLogprobsA: Float32Array;
  gradLogprobsB: Float32Array;
  metrics: {
    /** Masked mean of [either sample's step log-ratio lies outside [-epsilon, epsilon]]. */
    clipFraction: number;
    /** Sum of the mask. */
    tokenCount: number;
  };
}
export interface DevicePrdpLossOptions extends Omit<PrdpLossOptions, 'out'> {
  out?: { gradLogprobsA?: DeviceArray; gradLogprobsB?: DeviceArray };
}
export interface DevicePrdpLossResult extends Omit<PrdpLossResult, 'gradLogprobsA' | 'gradLogprobsB'> {
  gradLogprobsA: DeviceArray<'f32'>;
  gradLogprobsB: DeviceArray<'f32'>;
}

const op = defineSeqOp({
  name: 'prdpLoss',
  op: 'rk::PrdpLossOp',
  header: 'ops/prdp_loss.h',
  mix: 'the log-probs are a DeviceArray',
  inputs: {
    logprobsA: 'B*T',
    logprobsB: 'B*T',
    oldLogprobsA: 'B*T',
    oldLogprobsB: 'B*T',
    rewardsA: 'B | B*T',
    rewardsB: 'B | B*T',
  },
  grads: ['gradLogprobsA', 'gradLogprobsB'],
  options: { beta: num(finitePositive, 0.1), epsilon: numIn(0, 0.99, 1e-4), stepReduction: enumOf(PRDP_STEP_REDUCTIONS, 'sum') },
  metrics: ['clipFraction'],
});

const typed = op.typed<
  [
    logprobsA: Float32Array, logprobsB: Float32Array, oldLogprobsA: Float32Array, oldLogprobsB: Float32Array,
    rewardsA: Float32Array, rewardsB: Float32Array, mask: TokenMask | null, options: PrdpLossOptions,
  ],
  PrdpLossResult,
  [
    logprobsA: DeviceArray, logprobsB: DeviceArray, oldLogprobsA: DeviceArray, oldLogprobsB: DeviceArray,
    rewardsA: DeviceArray, rewardsB: DeviceArray, mask: DeviceArray | null, options: DevicePrdpLossOptions,
  ],
  DevicePrdpLossResult
>();

/** The rewards hold one value per pair (the sequence-op layout would also take one per step). */
function rewardsPerPair(args: unknown[]): void {
  const n = (args[0] as { length?: unknown } | null)?.length;
  const T = (args[7] as { seqLen?: unknown } | null)?.seqLen;
  if (typeof n !== 'number' || n === 0 || typeof T !== 'number' || !Number.isInteger(T) || T < 1 || n % T !== 0) return;
  const B = n / T;
  for (const [k, name] of [[4, 'rewardsA'], [5, 'rewardsB']] as const) {
    const len = (args[k] as { length?: unknown } | null)?.length;
    if (typeof len === 'number' && len !== B) throw new RangeError(`${name}: expected length ${B} (one per pair), received length ${len}`);
  }
}

/**
 * PRDP's proximal reward-difference prediction over B pairs of diffusion trajectories of T denoising
 * steps (arXiv 2402.08714v2, Eq. 18): L = mean_pairs max((D - y)^2, (Dc - y)^2) with
 * y = (r_a - r_b) / beta, D = sum_t m_t (d_a,t - d_b,t), d = l - l_old, and Dc the same with each d
 * clipped to [-epsilon, epsilon] (`stepReduction: 'mean'` divides D and Dc by sum_t m_t). The reference
 * model enters through the rewards: pass r - beta sum_t (l_old - l_ref) (docs/papers/prdp.md).
 *
 * With f32 DeviceArrays it runs on the GPU; the gradients are DeviceArrays owned by the caller.
 *
 * Arguments:
 * - `rewardsA`, `rewardsB`: one reward per pair (B)
 * - `mask` (B * T, positional, nullable): the steps trained on
 * @example
 * const { loss, gradLogprobsA, gradLogprobsB } = prdpLoss(lpA, lpB, oldA, oldB, rA, rB, null, { seqLen: 50 });
 */
export const prdpLoss = ((...args: unknown[]) => {
  rewardsPerPair(args);
  return (typed.sync as (...a: unknown[]) => unknown)(...args);
}) as typeof typed.sync;
/** prdpLoss on a worker thread; leave its buffers untouched until it settles. */
export const prdpLossAsync = ((...args: unknown[]) => {
  try {
    rewardsPerPair(args);
  } catch (e) {
    return Promise.reject(e);
  }
  return (typed.async as (...a: unknown[]) => unknown)(...args);
}) as typeof typed.async;
