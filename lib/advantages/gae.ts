// gae: generalised advantage estimation on padded (B, T) tensors with verl's masking, optionally
// whitened over the response tokens (docs/advantages.md).
//
// values, rewards, mask: (B, T) row-major, T = seqLen. Over response tokens only (masked tokens
// are skipped and get 0):  delta_t = r_t + gamma V_next - V_t,  A_t = delta_t + gamma lambda A_next,
// returns = A + V;  whiten: A = maskedWhiten(A, mask) (zero mean, unbiased, eps 1e-8).
import { options as optionsObject } from '../check.js';
import { DeviceArray } from '../cuda.js';
import { defineOp, flag, knownKeys, numIn, outKeys, packOptions } from '../op.js';
import type { TokenMask } from '../types.js';
import { apart, optionReader, outsOf, positiveIntOption, readMask, seqLenArg } from './checks.js';
import { VALUES_MIX } from './enums.js';
import { applyPreset, GAE_PRESETS, type Preset } from '../presets.js';

export interface GaeOptions {
  /** T, the padded sequence length: values, rewards and mask are (B, T) row-major. */
  seqLen: number;
  /** 'trl': lambda 0.95 (PPOConfig lam); 'verl': verl's defaults, which are ours. Explicit options win. */
  preset?: Preset;
  /** Discount. Default 1 (verl). */
  gamma?: number;
  /** GAE lambda. Default 1 (verl). */
  lambda?: number;
  /** Also whiten the advantages over the response tokens (verl and TRL do after GAE). Default false. */
  whiten?: boolean;
  out?: { advantages?: Float32Array; returns?: Float32Array };
}
export interface GaeResult {
  advantages: Float32Array;
  /** advantages + values (before any whitening), 0 at masked positions. */
  returns: Float32Array;
}
export interface DeviceGaeOptions extends Omit<GaeOptions, 'out'> {
  out?: { advantages?: DeviceArray; returns?: DeviceArray };
}
export interface DeviceGaeResult {
  advantages: DeviceArray<'f32'>;
  returns: DeviceArray<'f32'>;
}

const GAE_OPTIONS = { seqLen: positiveIntOption(), gamma: numIn(0, 1, 1), lambda: numIn(0, 1, 1), whiten: flag(false) };
const GAE_KEYS = knownKeys('gae', Object.keys(GAE_OPTIONS), ['preset', 'out']);
const GAE_OUTS = outKeys('gae', ['advantages', 'returns']);

type Args = [values: unknown, rewards: unknown, mask: unknown, options: unknown];

const op = defineOp({
  name: 'gae',
  mix: VALUES_MIX,
  slots: {
    values: { types: ['f32'], shape: 'B*T' },
    rewards: { types: ['f32'], shape: 'B*T' },
    mask: { types: ['u8', 'f32'], shape: 'B*T' },
    advantages: { types: ['f32'], shape: 'B*T', out: true, inPlace: ['values', 'rewards', 'mask'] },
    returns: { types: ['f32'], shape: 'B*T', out: true, inPlace: ['values', 'rewards', 'mask'] },
  },
  options: GAE_OPTIONS,
  prepare(io, ...[values, rewards, mask, options]: Args) {
    const outs = outsOf(options);
    for (const [v, k] of [
      [rewards, 'rewards'], [mask, 'mask'], [outs.advantages, 'options.out.advantages'], [outs.returns, 'options.out.returns'],
    ] as const) io.rejectDevice(v, k);
    const opts = applyPreset('gae', optionsObject<GaeOptions>(options, 'options', true, GAE_KEYS) as Record<string, unknown>, GAE_PRESETS);
    const v = io.read('values', values, 'values');
    const n = v.length;
    const o = optionReader(GAE_OPTIONS, opts);
    o.set('seqLen', seqLenArg(opts.seqLen, n, 'values'));
    const r = io.read('rewards', rewards, 'rewards', n);
    const m = readMask(io, mask, n);
    o.read('gamma');
    o.read('lambda');
    o.read('whiten');
    const out = (opts.out === undefined ? {} : optionsObject(opts.out, 'options.out', true, GAE_OUTS)) as Record<string, unknown>;
    const advantages = io.out('advantages', out.advantages, 'options.out.advantages', n);
    const returns = io.out('returns', out.returns, 'options.out.returns', n);
    if (
      advantages === returns ||
      (advantages instanceof DeviceArray && n > 0 && advantages.ptr === (returns as DeviceArray).ptr)
    ) {
      throw new RangeError('options.out.returns: expected a buffer apart from out.advantages, received the same one');
    }
    apart(returns, 'options.out.returns', advantages, 'options.out.advantages');
    for (const [a, name] of [[advantages, 'options.out.advantages'], [returns, 'options.out.returns']] as const) {
      apart(a, name, v, 'values');
      apart(a, name, r, 'rewards');
      apart(a, name, m, 'mask');
    }
    return { params: packOptions(GAE_OPTIONS, o.values), finish: () => ({ advantages, returns }) as GaeResult };
  },
});

const typed = op.typed<
  [values: Float32Array, rewards: Float32Array, mask: TokenMask | null, options: GaeOptions],
  GaeResult,
  [values: DeviceArray, rewards: DeviceArray, mask: DeviceArray | null, options: DeviceGaeOptions],
  DeviceGaeResult
>();

/**
 * Generalised advantage estimation on padded [B, T] tensors, with verl's masking: masked tokens
 * are skipped (the recursion runs over response tokens only) and get 0.
 * `delta_t = r_t + gamma V_next - V_t`, `A_t = delta_t + gamma lambda A_next`, `returns = A + V`.
 *
 * On DeviceArrays (f32, mask u8 or f32) it runs on the GPU; outputs not given are f32 DeviceArrays owned by the caller.
 *
 * @example
 * const { advantages, returns } = gae(values, rewards, mask, { seqLen: 512, gamma: 1, lambda: 0.95, whiten: true });
 */
export const gae = typed.sync;
/** gae on a worker thread; leave its buffers untouched until it settles. */
export const gaeAsync = typed.async;
