// Sequence ops: a loss over padded (B, T) token data whose formula lives in one header under
// native/core/ops/ and whose native entry points are generated (scripts/gen-layout.ts). The
// descriptor below is all the TypeScript such an op needs: its inputs, options and metrics.
import { options as optionsObject } from './check.js';
import { applyPreset, type PresetTable } from './presets.js';
import { defineOp, int, knownKeys, openOptions, type OptionSpec, packOptions, readOptions, type SlotSpecs } from './op.js';

export interface SeqOpSpec<O extends Record<string, OptionSpec<unknown>>, M extends string> {
  /** The exported name. */
  name: string;
  /** The C++ formula struct and its header under native/core/. */
  op: string;
  header: string;
  /** The inputs in the formula's order; 'B | B*T' marks one that may hold one value per sequence. */
  inputs: Record<string, 'B*T' | 'B | B*T'>;
  /** The gradients written, by output name (of the first inputs, in order). */
  grads: readonly string[];
  /** The options after seqLen, in the formula's Params order. */
  options: O;
  /** Names of the metrics (masked means), in the formula's order. */
  metrics: readonly M[];
  /** "the log-probs are a DeviceArray" */
  mix: string;
  /** `preset: 'trl' | 'verl'` (lib/presets.ts), when the op has peer defaults that differ. */
  presets?: PresetTable;
}

export interface SeqOpResult<M extends string> {
  loss: number;
  metrics: Record<M, number> & { tokenCount: number };
  [grad: string]: unknown;
}

/** The entry points of a sequence op: fn(...inputs, mask, options). */
export function defineSeqOp<O extends Record<string, OptionSpec<unknown>>, M extends string>(spec: SeqOpSpec<O, M>) {
  const inputNames = Object.keys(spec.inputs);
  const slots: SlotSpecs = {};
  for (const [k, shape] of Object.entries(spec.inputs)) slots[k] = { types: ['f32'], shape };
  slots.mask = { types: ['u8', 'f32'], shape: 'B*T' };
  for (const g of spec.grads) slots[g] = { types: ['f32'], shape: 'B*T', out: true };
  const options = { seqLen: int(1, 2 ** 31 - 1), ...spec.options };
  const scalars = ['loss', ...spec.metrics, 'tokenCount'];
  const keys = knownKeys(spec.name, Object.keys(options), spec.presets ? ['preset', 'out'] : ['out']);
  return defineOp({
    name: spec.name,
    mix: spec.mix,
    slots,
    options,
    scalars,
    seq: { op: spec.op, header: spec.header },
    prepare(io, ...args: unknown[]) {
      const values = args.slice(0, inputNames.length);
      const mask = args[inputNames.length];
      const others = inputNames.slice(1).map((name, k) => [values[k + 1], name] as const);
      const { opts: given, out } = openOptions(io, args[inputNames.length + 1], true, [...others, [mask, 'mask']], [], spec.grads, keys);
      const opts = spec.presets ? applyPreset(spec.name, given, spec.presets) : given;
      const n = io.read(inputNames[0], values[0], inputNames[0]).length;
      const seqLen = options.seqLen.read(opts.seqLen, 'options.seqLen', {});
      if (n % seqLen !== 0) {
        throw new RangeError(`options.seqLen: expected a divisor of the length of ${inputNames[0]} (${n}), received ${seqLen}`);
      }
      const batch = n / seqLen;
      for (let k = 1; k < inputNames.length; k++) {
        const name = inputNames[k];
        if (spec.inputs[name] === 'B*T') {
          io.read(name, values[k], name, n);
        } else {
          const a = io.read(name, values[k], name);
          if (a.length !== batch && a.length !== n) {
            throw new RangeError(`${name}: expected length ${batch} (one per sequence) or ${n} (one per token), received length ${a.length}`);
          }
        }
      }
      if (!io.device && mask !== null && mask !== undefined && !(mask instanceof Uint8Array) && !(mask instanceof Float32Array) &&
          typeof (mask as { dtype?: unknown }).dtype !== 'string') {
        io.read('mask', mask, 'mask', n); // throws the type message
      }
      io.optional('mask', mask, 'mask', n);
      const read = readOptions(options, opts);
      if (opts.out !== undefined) optionsObject(opts.out, 'options.out', true);
      for (const k of Object.keys(out)) {
        if (!spec.grads.includes(k)) throw new TypeError(`options.out.${k}: not an output of ${spec.name} (outputs: ${spec.grads.join(', ')})`);
      }
      const grads = spec.grads.map((g) => io.out(g, out[g], `options.out.${g}`, n));
      const sc = io.scalars(scalars.length);
      return {
        params: packOptions(options, read),
        scalars: sc,
        finish: () => {
          const metrics: Record<string, number> = {};
          spec.metrics.forEach((m, i) => (metrics[m] = sc[1 + i]));
          metrics.tokenCount = sc[scalars.length - 1];
          const result: Record<string, unknown> = { loss: sc[0], metrics };
          spec.grads.forEach((g, i) => (result[g] = grads[i]));
          return result;
        },
      };
    },
  });
}
