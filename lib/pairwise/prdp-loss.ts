// prdpLoss: PRDP's reward-difference prediction loss with clipped per-step ratios, with its gradients
// wrt both samples' per-step log-probs. The formula: native/core/ops/prdp_loss.h; docs/papers/prdp.md.
import type { DeviceArray } from '../cuda.js';
import { finitePositive } from '../check.js';
import { num, numIn } from '../op.js';
import { defineSeqOp } from '../seq-op.js';
import type { TokenMask } from '../types.js';

export interface PrdpLossOptions {
  /** Denoising steps per sample T. */
  seqLen: number;
  /** The KL weight beta of the reward-difference prediction. Default 0.1. */
  beta?: number;
  /** Each step's log-ratio is clamped to [log(1 - epsilon), log(1 + epsilon)]; in [0, 0.99]. Default 1e-4 (DDPO's clip_range, on whose sampler PRDP builds). */
  epsilon?: number;
  out?: { gradLogprobsA?: Float32Array; gradLogprobsB?: Float32Array };
}
export interface PrdpLossResult {
  /** The mean over pairs of (r_a - r_b - beta sum_t m_t (c_a,t - c_b,t))^2. */
  loss: number;
  /** dLoss/dlogprobsA and dLoss/dlogprobsB, (B * T); 0 at masked steps and where the ratio is clamped. */
  gradLogprobsA: Float32Array;
  gradLogprobsB: Float32Array;
  metrics: {
    /** Masked mean of [either sample's per-step ratio was clamped]. */
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
  options: { beta: num(finitePositive, 0.1), epsilon: numIn(0, 0.99, 1e-4) },
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
 * PRDP's reward-difference prediction over B pairs of diffusion trajectories of T denoising steps:
 * L = mean_pairs (r_a - r_b - beta sum_t m_t [c_a,t - c_b,t])^2 with c the per-step log-ratio
 * log(p / p_old) clamped to [log(1 - epsilon), log(1 + epsilon)].
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
