// The one table of the preference losses (docs/preference.md): per loss, in native code order
// (rk::PrefLoss, native/kernels/preference.h), its name and the flags every rule in lib/ reads.
// The f-divergences of f-DPO follow, in their code order (rk::FDivergence).

interface LossRow {
  readonly name: string;
  /** No reference model: reference log-probs are rejected. */
  readonly referenceFree: boolean;
  /** Takes labelSmoothing. */
  readonly smoothed: boolean;
  /** Built on x = beta (f(c) - f(rho)): fDivergence applies. */
  readonly fDivergence: boolean;
  /**
   * Why the loss needs chosenLengths and rejectedLengths: 'average' (it averages log-probs over the
   * completion lengths), 'nll' (its own NLL term divides by the chosen length, unless alpha is 0),
   * 'tokens' (a token mean over the batch's chosen completions).
   */
  readonly lengths: 'average' | 'nll' | 'tokens' | null;
  /** Couples the pairs of the batch (sorts across it, or averages over all its tokens). */
  readonly batch?: boolean;
}

export const LOSS_TABLE = [
  { name: 'sigmoid', referenceFree: false, smoothed: true, fDivergence: true, lengths: null },
  { name: 'robust', referenceFree: false, smoothed: true, fDivergence: true, lengths: null },
  { name: 'hinge', referenceFree: false, smoothed: false, fDivergence: true, lengths: null },
  { name: 'ipo', referenceFree: false, smoothed: false, fDivergence: true, lengths: 'average' },
  { name: 'exo_pair', referenceFree: false, smoothed: true, fDivergence: true, lengths: null },
  { name: 'nca_pair', referenceFree: false, smoothed: false, fDivergence: false, lengths: null },
  { name: 'bco_pair', referenceFree: false, smoothed: false, fDivergence: false, lengths: null },
  { name: 'sppo_hard', referenceFree: false, smoothed: false, fDivergence: false, lengths: null },
  { name: 'apo_zero', referenceFree: false, smoothed: false, fDivergence: false, lengths: null },
  { name: 'apo_down', referenceFree: false, smoothed: false, fDivergence: false, lengths: null },
  { name: 'discopop', referenceFree: false, smoothed: false, fDivergence: true, lengths: null },
  { name: 'simpo', referenceFree: true, smoothed: true, fDivergence: false, lengths: 'average' },
  { name: 'cpo', referenceFree: true, smoothed: true, fDivergence: false, lengths: 'nll' },
  { name: 'orpo', referenceFree: true, smoothed: false, fDivergence: false, lengths: 'average' },
  { name: 'bt', referenceFree: true, smoothed: true, fDivergence: false, lengths: null },
  { name: 'sigmoid_norm', referenceFree: false, smoothed: false, fDivergence: true, lengths: 'average' },
  { name: 'aot', referenceFree: false, smoothed: true, fDivergence: false, lengths: null, batch: true },
  { name: 'aot_unpaired', referenceFree: false, smoothed: true, fDivergence: false, lengths: null, batch: true },
  { name: 'sft', referenceFree: false, smoothed: false, fDivergence: false, lengths: 'tokens', batch: true },
] as const satisfies readonly LossRow[];

/**
 * The preference losses of {@link preferenceLoss}.
 * @useDeclaredType
 */
export type PreferenceLossType = (typeof LOSS_TABLE)[number]['name'];

/** The loss names in code order. */
export const LOSSES: readonly PreferenceLossType[] = LOSS_TABLE.map((r) => r.name);

/** The table's row of `loss`. */
export function lossInfo(loss: PreferenceLossType): LossRow {
  return LOSS_TABLE[LOSSES.indexOf(loss)];
}

/** The losses a list (TRL's loss_type list with loss_weights) may hold: TRL's DPO loss types. */
export const MIXABLE: readonly PreferenceLossType[] = LOSS_TABLE.filter((r) => !r.referenceFree).map((r) => r.name);

/** The losses with a flag set, in code order (for messages). */
export function lossesWith(flag: 'referenceFree' | 'smoothed' | 'fDivergence'): PreferenceLossType[] {
  return LOSS_TABLE.filter((r) => r[flag]).map((r) => r.name);
}

/**
 * Why chosenLengths and rejectedLengths are required (the text of the TypeError), or null when the
 * call does not divide by them (preference_needs_lengths in native/kernels/preference.cc).
 */
export function lengthsReason(loss: PreferenceLossType | readonly PreferenceLossType[], alpha: number, nllWeight: number): string | null {
  if (typeof loss !== 'string') {
    for (const l of loss) {
      const why = lengthsReason(l, alpha, 0);
      if (why !== null) return `${why} ('${l}' in the list)`;
    }
    return nllWeight !== 0 ? 'the NLL term (nllWeight != 0) divides by the chosen length' : null;
  }
  const lengths = lossInfo(loss).lengths;
  if (lengths === 'average') return 'the loss averages log-probs over the completion lengths';
  if (lengths === 'tokens') return 'the SFT loss averages over the chosen completion tokens';
  if (lengths === 'nll' && alpha !== 0) return 'the CPO NLL term (alpha != 0) divides by the chosen length';
  if (nllWeight !== 0) return 'the NLL term (nllWeight != 0) divides by the chosen length';
  return null;
}

/** f-DPO divergences: which f'(u) replaces the log-ratio (TRL `f_divergence_type`). */
export type FDivergence = 'reverse_kl' | 'forward_kl' | 'js_divergence' | 'alpha_divergence';

/** The f-divergences in code order. */
export const FDIVS: readonly FDivergence[] = ['reverse_kl', 'forward_kl', 'js_divergence', 'alpha_divergence'];
