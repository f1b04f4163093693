// What tokenLogprobs and tokenLogprobsBackward share: their scalar options and the check of the
// logits, targets, temperature and ignoreIndex (host and device alike).
import { finitePositive, int32Ids } from '../check.js';
import { LOGITS_OPTIONS, logitsRows, MAX_VOCAB, readLogits, type LogitsArg, type LogitsDType } from '../logits.js';
import { int, num, packOptions, readOptions, type Io, type OptionValues, type SlotSpecs } from '../op.js';

/** The packed params of both ops, in order: vocab, dtype, temperature, ignoreIndex. */
export const LOGPROBS_OPTIONS = {
  ...LOGITS_OPTIONS,
  temperature: num(finitePositive, 1),
  ignoreIndex: int(-(2 ** 31), MAX_VOCAB, -100),
};
/** temperature and ignoreIndex, the options every logits op reads alike. */
export const SCALAR_OPTIONS = { temperature: LOGPROBS_OPTIONS.temperature, ignoreIndex: LOGPROBS_OPTIONS.ignoreIndex };

/** The slots readCommon fills, the first of both ops: the logits and each row's target. */
export const COMMON_SLOTS = {
  logits: { types: ['f32', 'u16'], shape: 'N*V' },
  targets: { types: ['i32'], shape: 'N' },
} as const satisfies SlotSpecs;

/**
 * Token ids (targets, labels): an Int32Array, or a BigInt64Array (onnxruntime's int64), which is
 * range-checked and copied into a new Int32Array before the call.
 */
export type TokenIds = Int32Array | BigInt64Array;

/** The options both ops read. */
export interface LogprobsCommonOptions {
  /** Vocabulary size V: logits hold N rows of V values. */
  vocab: number;
  /** 'f32' (default for a Float32Array); a Uint16Array needs 'bf16' or 'f16'. */
  dtype?: LogitsDType;
  /** Divides the logits before the softmax. Default 1. */
  temperature?: number;
  /** Rows whose target equals this give logp = 0, entropy = 0, logsumexp = 0 and a zero gradient row. Default -100. */
  ignoreIndex?: number;
}

export interface LogprobsCommon extends LogitsArg {
  rows: number;
  params: Float64Array;
}

/**
 * Logits (slot 'logits'), vocab, dtype, targets (slot 'targets', Int32 of length N), temperature
 * and ignoreIndex, in the order of their messages. Host targets are range-checked here; device
 * targets on the device (the same RangeError text, from the addon).
 */
export function readCommon(io: Io<SlotSpecs>, logits: unknown, targets: unknown, opts: Partial<LogprobsCommonOptions>): LogprobsCommon {
  io.rejectDevice(targets, 'targets');
  const l = readLogits(io, logits, opts);
  const rows = logitsRows(l.logits, l.vocab);
  const t = io.read<Int32Array>('targets', io.device ? targets : int32Ids(targets, 'targets'), 'targets', rows);
  const { temperature, ignoreIndex } = readOptions(SCALAR_OPTIONS, opts as Record<string, unknown>);
  if (!io.device) {
    for (let r = 0; r < rows; r++) {
      const y = t[r];
      if (y !== ignoreIndex && (y < 0 || y >= l.vocab)) {
        throw new RangeError(`targets[${r}]: expected an id in [0, ${l.vocab}) or ignoreIndex (${ignoreIndex}), received ${y}`);
      }
    }
  }
  const values: OptionValues<typeof LOGPROBS_OPTIONS> = { vocab: l.vocab, dtype: l.dtype, temperature, ignoreIndex };
  return { ...l, rows, params: packOptions(LOGPROBS_OPTIONS, values) };
}
