// d3poLoss: D3PO, the stepwise clipped DPO over denoising steps (yk7333/d3po/scripts/train.py), with
// its gradients wrt both samples' per-step log-probs. The formula: native/core/ops/d3po_loss.h;
// docs/papers/d3po.md.
import type { DeviceArray } from '../cuda.js';
import { num, numIn } from '../op.js';
import { finitePositive } from '../check.js';
import { defineSeqOp } from '../seq-op.js';
import type { TokenMask } from '../types.js';

export interface D3poLossOptions {
  /** Denoising steps per sample T. */
  seqLen: number;
  /** Default 0.1 (D3PO config.train.beta). */
  beta?: number;
  /** Each step's ratio exp(l - ref) is clamped to [1 - epsilon, 1 + epsilon]; in [0, 0.99]. Default 0.1 (D3PO config.train.eps). */
  epsilon?: number;
  out?: { gradLogprobs0?: Float32Array; gradLogprobs1?: Float32Array };
}
export interface D3poLossResult {
  /** The mean over the masked steps of all pairs of -log s(beta (h0 log rho0 + h1 log rho1)). */
  loss: number;
  /** dLoss/dlogprobs0 and dLoss/dlogprobs1, (B * T); 0 at masked steps. */
  gradLogprobs0: Float32Array;
  gradLogprobs1: Float32Array;
  metrics: {
    /** Masked mean of [either sample's ratio was clamped]. */
    clipFraction: number;
    /** Masked mean of [beta (h0 log rho0 + h1 log rho1) > 0]. */
    accuracy: number;
    /** Sum of the mask. */
    tokenCount: number;
  };
}
export interface DeviceD3poLossOptions extends Omit<D3poLossOptions, 'out'> {
  out?: { gradLogprobs0?: DeviceArray; gradLogprobs1?: DeviceArray };
}
export interface DeviceD3poLossResult extends Omit<D3poLossResult, 'gradLogprobs0' | 'gradLogprobs1'> {
  gradLogprobs0: DeviceArray<'f32'>;
  gradLogprobs1: DeviceArray<'f32'>;
}

const op = defineSeqOp({
  name: 'd3poLoss',
  op: 'rk::D3poLossOp',
  header: 'ops/d3po_loss.h',
  mix: 'the log-probs are a DeviceArray',
  inputs: {
    logprobs0: 'B*T',
    logprobs1: 'B*T',
    refLogprobs0: 'B*T',
    refLogprobs1: 'B*T',
    preference0: 'B | B*T',
    preference1: 'B | B*T',
  },
  grads: ['gradLogprobs0', 'gradLogprobs1'],
  options: { beta: num(finitePositive, 0.1), epsilon: numIn(0, 0.99, 0.1) },
  metrics: ['clipFraction', 'accuracy'],
});

const typed = op.typed<
  [
    logprobs0: Float32Array, logprobs1: Float32Array, refLogprobs0: Float32Array, refLogprobs1: Float32Array,
    preference0: Float32Array, preference1: Float32Array, mask: TokenMask | null, options: D3poLossOptions,
  ],
  D3poLossResult,
  [
    logprobs0: DeviceArray, logprobs1: DeviceArray, refLogprobs0: DeviceArray, refLogprobs1: DeviceArray,
    preference0: DeviceArray, preference1: DeviceArray, mask: DeviceArray | null, options: DeviceD3poLossOptions,
  ],
  DeviceD3poLossResult
>();

/**
 * D3PO over B pairs of diffusion trajectories of T denoising steps: per step,
 * rho_i = clamp(exp(l_i - ref_i), 1 - epsilon, 1 + epsilon) and L = -log s(beta (h0 log rho0 + h1 log rho1)),
 * averaged over the masked steps of every pair; h0, h1 the human preference signs (D3PO: [1, -1] when
 * sample 0 is preferred, [-1, 1] when sample 1 is, [0, 0] for a tie).
 *
 * With f32 DeviceArrays it runs on the GPU; the gradients are DeviceArrays owned by the caller.
 *
 * Arguments:
 * - `preference0`, `preference1`: one per pair (B) or one per step (B * T)
 * - `mask` (B * T, positional, nullable): the steps trained on (D3PO's timestep_fraction)
 * @example
 * const { loss, gradLogprobs0, gradLogprobs1 } = d3poLoss(lp0, lp1, ref0, ref1, h0, h1, null, { seqLen: 20 });
 */
export const d3poLoss = typed.sync;
/** d3poLoss on a worker thread; leave its buffers untouched until it settles. */
export const d3poLossAsync = typed.async;
