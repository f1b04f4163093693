// trajectoryBalanceLoss and orderPreservingLoss: the losses of "Order-Preserving GFlowNets" (Chen and
// Mauch, ICLR 2024; its code: multi/gflownet/algo/trajectory_balance.py), on per-step log-probs of
// padded (B, T) trajectories. The formulas: native/core/moo.h (gfn_row_sums, gfn_row_grads,
// pareto_dominated); docs/papers/op-gfn.md.
import type { DeviceArray } from '../cuda.js';
import { defineOp, int, knownKeys, openOptions, packOptions, readOptions, type Io, type SlotSpecs } from '../op.js';
import type { TokenMask } from '../types.js';
import { hostMaskCheck } from '../policy/policy-loss.js';

export interface TrajectoryBalanceLossOptions {
  /** Steps per trajectory T (the arrays are B rows of T). */
  seqLen: number;
  out?: { residuals?: Float32Array; gradLogZ?: Float32Array; gradLogPF?: Float32Array; gradLogPB?: Float32Array };
}
export interface TrajectoryBalanceLossResult {
  /** mean_b delta_b^2. */
  loss: number;
  /** (B): delta_b = logZ + S(logPF) - S(logPB) - logR. */
  residuals: Float32Array;
  /** (B, or 1 for a shared logZ): d loss / d logZ. */
  gradLogZ: Float32Array;
  /** (B * T): d loss / d logPF (0 where the mask is 0). */
  gradLogPF: Float32Array;
  /** (B * T): d loss / d logPB. */
  gradLogPB: Float32Array;
}
export interface DeviceTrajectoryBalanceLossOptions extends Omit<TrajectoryBalanceLossOptions, 'out'> {
  out?: { residuals?: DeviceArray; gradLogZ?: DeviceArray; gradLogPF?: DeviceArray; gradLogPB?: DeviceArray };
}
export interface DeviceTrajectoryBalanceLossResult {
  loss: number;
  residuals: DeviceArray<'f32'>;
  gradLogZ: DeviceArray<'f32'>;
  gradLogPF: DeviceArray<'f32'>;
  gradLogPB: DeviceArray<'f32'>;
}

export interface OrderPreservingLossOptions {
  /** Steps per trajectory T. */
  seqLen: number;
  /** K, the objectives per trajectory: `objectives` holds B rows of K values. */
  numObjectives: number;
  out?: { logRewardHat?: Float32Array; front?: Uint8Array; gradLogZ?: Float32Array; gradLogPF?: Float32Array; gradLogPB?: Float32Array };
}
export interface OrderPreservingLossResult {
  /** Cross-entropy of softmax_b(log Rhat) against the uniform distribution over the batch's Pareto set. */
  loss: number;
  /** The size of the batch's Pareto set. */
  frontSize: number;
  /** (B): log Rhat_b = logZ + S(logPF) - S(logPB). */
  logRewardHat: Float32Array;
  /** (B): the Pareto flags of the objectives (paretoFront). */
  front: Uint8Array;
  /** (B, or 1 for a shared logZ): d loss / d logZ (a shared logZ cancels: its gradient is 0 up to rounding). */
  gradLogZ: Float32Array;
  gradLogPF: Float32Array;
  gradLogPB: Float32Array;
}
export interface DeviceOrderPreservingLossOptions extends Omit<OrderPreservingLossOptions, 'out'> {
  out?: { logRewardHat?: DeviceArray; front?: DeviceArray; gradLogZ?: DeviceArray; gradLogPF?: DeviceArray; gradLogPB?: DeviceArray };
}
export interface DeviceOrderPreservingLossResult {
  loss: number;
  frontSize: number;
  logRewardHat: DeviceArray<'f32'>;
  front: DeviceArray<'u8'>;
  gradLogZ: DeviceArray<'f32'>;
  gradLogPF: DeviceArray<'f32'>;
  gradLogPB: DeviceArray<'f32'>;
}

const MIX = 'the forward log-probs are a DeviceArray';
const STEP_SLOTS = {
  logPF: { types: ['f32'], shape: 'B*T' },
  logPB: { types: ['f32'], shape: 'B*T' },
  logZ: { types: ['f32'], shape: 'B | 1' },
  mask: { types: ['u8', 'f32'], shape: 'B*T' },
  gradLogZ: { types: ['f32'], shape: 'B | 1', out: true },
  gradLogPF: { types: ['f32'], shape: 'B*T', out: true },
  gradLogPB: { types: ['f32'], shape: 'B*T', out: true },
} as const satisfies SlotSpecs;

type StepSlot = keyof typeof STEP_SLOTS;
/** The shared (B, T) reads: logPF, logPB, logZ (B or 1), the mask and the three gradients. */
function readSteps(
  io: Io<SlotSpecs>,
  logPF: unknown,
  logPB: unknown,
  logZ: unknown,
  mask: unknown,
  T: number,
  out: Record<string, unknown>,
) {
  const n = io.read<Float32Array>('logPF' satisfies StepSlot, logPF, 'logPF').length;
  if (n % T !== 0 || n === 0) throw new RangeError(`options.seqLen: expected a divisor of the length of logPF (${n}, at least one trajectory), received ${T}`);
  const B = n / T;
  io.read('logPB' satisfies StepSlot, logPB, 'logPB', n);
  const z = io.read('logZ' satisfies StepSlot, logZ, 'logZ');
  if (z.length !== B && z.length !== 1) throw new RangeError(`logZ: expected length ${B} (one per trajectory) or 1 (shared), received length ${z.length}`);
  hostMaskCheck(io.device, mask, 'mask', true);
  io.optional('mask' satisfies StepSlot, mask, 'mask', n);
  const gradLogZ = io.out('gradLogZ' satisfies StepSlot, out.gradLogZ, 'options.out.gradLogZ', z.length);
  const gradLogPF = io.out('gradLogPF' satisfies StepSlot, out.gradLogPF, 'options.out.gradLogPF', n);
  const gradLogPB = io.out('gradLogPB' satisfies StepSlot, out.gradLogPB, 'options.out.gradLogPB', n);
  return { n, B, gradLogZ, gradLogPF, gradLogPB };
}

const TB_OPTIONS = { seqLen: int(1, 2 ** 31 - 1) };
const TB_OUTS = ['residuals', 'gradLogZ', 'gradLogPF', 'gradLogPB'] as const;
const TB_KEYS = knownKeys('trajectoryBalanceLoss', Object.keys(TB_OPTIONS), ['out']);

const tbOp = defineOp({
  name: 'trajectoryBalanceLoss',
  mix: MIX,
  slots: { ...STEP_SLOTS, logReward: { types: ['f32'], shape: 'B' }, residuals: { types: ['f32'], shape: 'B', out: true } },
  options: TB_OPTIONS,
  scalars: ['loss'],
  prepare(io, ...[logPF, logPB, logReward, logZ, mask, options]: [unknown, unknown, unknown, unknown, unknown, unknown]) {
    const { opts, out } = openOptions(io, options, true, [[logPB, 'logPB'], [logReward, 'logReward'], [logZ, 'logZ'], [mask, 'mask']], [], TB_OUTS, TB_KEYS);
    const values = readOptions(TB_OPTIONS, opts);
    const s = readSteps(io as unknown as Io<SlotSpecs>, logPF, logPB, logZ, mask, values.seqLen, out);
    io.read('logReward', logReward, 'logReward', s.B);
    const residuals = io.out('residuals', out.residuals, 'options.out.residuals', s.B);
    const sc = io.scalars(1);
    return {
      params: packOptions(TB_OPTIONS, values),
      scalars: sc,
      finish: () => ({ loss: sc[0], residuals, gradLogZ: s.gradLogZ, gradLogPF: s.gradLogPF, gradLogPB: s.gradLogPB }),
    };
  },
});

const tbTyped = tbOp.typed<
  [logPF: Float32Array, logPB: Float32Array, logReward: Float32Array, logZ: Float32Array, mask: TokenMask | null, options: TrajectoryBalanceLossOptions],
  TrajectoryBalanceLossResult,
  [logPF: DeviceArray, logPB: DeviceArray, logReward: DeviceArray, logZ: DeviceArray, mask: DeviceArray | null, options: DeviceTrajectoryBalanceLossOptions],
  DeviceTrajectoryBalanceLossResult
>();

/**
 * The trajectory-balance loss of GFlowNets over B padded trajectories of T steps:
 * delta_b = logZ_b + sum_t m logPF_b,t - sum_t m logPB_b,t - logR_b, loss = mean_b delta_b^2, with its
 * gradients wrt logZ (one per trajectory, or one shared: length 1), logPF and logPB. A mask weight
 * multiplies its step's log-probs (null: every step counts).
 *
 * With DeviceArrays it runs on the GPU.
 *
 * @example
 * const { loss, gradLogPF } = trajectoryBalanceLoss(logPF, logPB, logReward, logZ, mask, { seqLen: 16 });
 */
export const trajectoryBalanceLoss = tbTyped.sync;
/** trajectoryBalanceLoss on a worker thread; leave its buffers untouched until it settles. */
export const trajectoryBalanceLossAsync = tbTyped.async;

const OP_OPTIONS = { seqLen: int(1, 2 ** 31 - 1), numObjectives: int(1, 2 ** 31 - 1) };
const OP_OUTS = ['logRewardHat', 'front', 'gradLogZ', 'gradLogPF', 'gradLogPB'] as const;
const OP_KEYS = knownKeys('orderPreservingLoss', Object.keys(OP_OPTIONS), ['out']);

const opOp = defineOp({
  name: 'orderPreservingLoss',
  mix: MIX,
  slots: {
    ...STEP_SLOTS,
    objectives: { types: ['f32'], shape: 'B*K' },
    logRewardHat: { types: ['f32'], shape: 'B', out: true },
    front: { types: ['u8'], shape: 'B', out: true },
  },
  options: OP_OPTIONS,
  scalars: ['loss', 'frontSize'],
  prepare(io, ...[logPF, logPB, objectives, logZ, mask, options]: [unknown, unknown, unknown, unknown, unknown, unknown]) {
    const { opts, out } = openOptions(io, options, true, [[logPB, 'logPB'], [objectives, 'objectives'], [logZ, 'logZ'], [mask, 'mask']], [], OP_OUTS, OP_KEYS);
    const values = readOptions(OP_OPTIONS, opts);
    const s = readSteps(io as unknown as Io<SlotSpecs>, logPF, logPB, logZ, mask, values.seqLen, out);
    io.read('objectives', objectives, 'objectives', s.B * values.numObjectives);
    const logRewardHat = io.out('logRewardHat', out.logRewardHat, 'options.out.logRewardHat', s.B);
    const front = io.out('front', out.front, 'options.out.front', s.B);
    const sc = io.scalars(2);
    return {
      params: packOptions(OP_OPTIONS, values),
      scalars: sc,
      finish: () => ({ loss: sc[0], frontSize: sc[1], logRewardHat, front, gradLogZ: s.gradLogZ, gradLogPF: s.gradLogPF, gradLogPB: s.gradLogPB }),
    };
  },
});

const opTyped = opOp.typed<
  [logPF: Float32Array, logPB: Float32Array, objectives: Float32Array, logZ: Float32Array, mask: TokenMask | null, options: OrderPreservingLossOptions],
  OrderPreservingLossResult,
  [logPF: DeviceArray, logPB: DeviceArray, objectives: DeviceArray, logZ: DeviceArray, mask: DeviceArray | null, options: DeviceOrderPreservingLossOptions],
  DeviceOrderPreservingLossResult
>();

/**
 * OP-GFN's order-preserving loss for multi-objective tasks: the cross-entropy between
 * softmax_b(log Rhat_b), log Rhat_b = logZ_b + sum_t m logPF_b,t - sum_t m logPB_b,t, and the uniform
 * distribution over the batch's Pareto set of `objectives` (B rows of K, larger is better; paretoFront),
 * with its gradients (d loss / d log Rhat_b = softmax_b - 1[b on the front] / |front|).
 *
 * With DeviceArrays it runs on the GPU.
 *
 * @example
 * const { loss, gradLogPF } = orderPreservingLoss(logPF, logPB, objectives, logZ, null, { seqLen: 16, numObjectives: 2 });
 */
export const orderPreservingLoss = opTyped.sync;
/** orderPreservingLoss on a worker thread; leave its buffers untouched until it settles. */
export const orderPreservingLossAsync = opTyped.async;
