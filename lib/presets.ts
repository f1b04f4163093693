// `preset: 'trl' | 'verl'`: a TRL or verl config's defaults where they differ from ours, so a ported
// config gives the same numbers (docs/porting.md). A preset only fills options the call left
// undefined: explicit options always win. Matched against TRL v1.9.0-26-gf2cd5771 (GRPOConfig,
// DPOConfig, experimental CPOConfig / PPOConfig, KTOConfig) and verl's generated ppo_trainer.yaml
// (commit 035682ed) with core_algos.py.
import { oneOf } from './check.js';

export type Preset = 'trl' | 'verl';
export const PRESETS: readonly Preset[] = ['trl', 'verl'];

/** Per preset: the defaults it supplies given the call's options, or why the peer has none (a TypeError). */
export type PresetTable = Readonly<Record<Preset, ((opts: Readonly<Record<string, unknown>>) => Record<string, unknown>) | string>>;

/**
 * The options with the preset's defaults filled in where the call left them undefined (the
 * caller's object is not modified). Without `preset`, `opts` itself.
 */
export function applyPreset(op: string, opts: Record<string, unknown>, table: PresetTable): Record<string, unknown> {
  if (opts.preset === undefined) return opts;
  const name = oneOf(opts.preset, 'options.preset', PRESETS);
  const t = table[name];
  if (typeof t === 'string') {
    throw new RangeError(`options.preset: ${op} has no ${name} preset (${t}), expected ${PRESETS.filter((p) => typeof table[p] !== 'string').map((p) => `'${p}'`).join(' or ')} or undefined, received '${name}'`);
  }
  const defaults = t(opts);
  const merged: Record<string, unknown> = { ...opts };
  for (const k of Object.keys(defaults)) if (merged[k] === undefined) merged[k] = defaults[k];
  return merged;
}

const NO_PREFERENCE = 'verl has no DPO-family trainer config';

/** policyLoss: TRL GRPOConfig (beta 0, loss_type 'dapo'; sapo aggregated as 'grpo'; epsilon_high = epsilon), verl actor (clip_ratio_c 3). */
export const POLICY_PRESETS: PresetTable = {
  trl: (o) => ({
    ...(o.refLogprobs !== undefined ? { beta: 0 } : {}),
    aggregation: o.variant === 'sapo' ? 'seq-mean-token-mean' : 'token-mean',
    ...(o.variant === 'cispo' ? { epsilonHigh: (o.epsilonLow as number | undefined) ?? 0.2 } : {}),
    ...((o.variant ?? 'ppo') === 'ppo' || o.variant === 'gspo' ? { epsilonHigh: o.epsilonLow } : {}),
  }),
  verl: (o) => ({
    aggregation: 'token-mean',
    ...((o.variant ?? 'ppo') === 'ppo' ? { dualClip: 3 } : {}),
  }),
};

/** TRL GRPOConfig.loss_type -> our aggregation (one-to-one where it maps; cispo, sapo and luspo are variants, not aggregations). */
export const GRPO_LOSS_TYPES = { grpo: 'seq-mean-token-mean', bnpo: 'token-mean', dapo: 'token-mean', dr_grpo: 'seq-mean-token-sum-norm' } as const;
export type GrpoLossType = keyof typeof GRPO_LOSS_TYPES;

/** preferenceLoss: TRL DPOConfig (f_alpha_divergence_coef 0.5) and CPOConfig (beta 0.1 for simpo). */
export const PREFERENCE_PRESETS: PresetTable = {
  trl: (o) => ({ ...(o.lossType === 'simpo' ? { beta: 0.1 } : {}), ...(o.fDivergence === 'alpha_divergence' ? { fAlpha: 0.5 } : {}) }),
  verl: NO_PREFERENCE,
};

/** ktoLoss: TRL KTOConfig's defaults are ours (beta 0.1, weights 1.0). */
export const KTO_PRESETS: PresetTable = { trl: () => ({}), verl: NO_PREFERENCE };

/** groupAdvantages: TRL GRPOConfig (scale_rewards 'group', std + 1e-4: ours); verl compute_grpo_outcome_advantage (epsilon 1e-6). */
export const GROUP_PRESETS: PresetTable = { trl: () => ({}), verl: () => ({ eps: 1e-6 }) };

/** valueLoss: TRL PPOConfig cliprange_value 0.2; verl critic cliprange_value 0.5 (ours). */
export const VALUE_PRESETS: PresetTable = { trl: () => ({ cliprangeValue: 0.2 }), verl: () => ({}) };

/** gae: TRL PPOConfig gamma 1.0, lam 0.95; verl algorithm gamma 1.0, lam 1.0 (ours). */
export const GAE_PRESETS: PresetTable = { trl: () => ({ lambda: 0.95 }), verl: () => ({}) };
