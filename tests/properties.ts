// Property tests over every export (fast-check), shared by tests/property.test.ts (a short run in
// `npm test`) and scripts/fuzz.ts (`npm run fuzz`, 10k cases per export):
//   valid:   a random valid call (shapes, dtypes, masks, options) agrees with the float64 reference in
//            tests/reference/ with the tolerances of the family tests, and the Async form gives the
//            same bits;
//   invalid: one mutation of a valid call (wrong TypedArray type, wrong length, null where an array is
//            required, a detached buffer, a non-integer / out-of-range / NaN / wrong-type option, a
//            missing required option, no options object) throws a TypeError or RangeError whose
//            message starts with the argument's name, sync and Async alike.
// Not generated here (their own tests cover them): overlapping outputs, SharedArrayBuffers, options
// given as a TypedArray, options that do not apply to the call, caller-owned outputs.
import fc from 'fast-check';

import * as rk from '../lib/index.js';
import { _setSmallPathThreshold } from '../lib/advantages/index.js';
import { centralDiff, encodeHalf, fromBf16, randn, rng } from './helpers.js';
import {
  refGroupAdvantages, refDiscounted, refEnsemble, refGae, refKlRewards, refOtb, refReinforcePP, refRemax, refTirOtb, refWhiten,
  type RefGroupOptions,
} from './reference/advantages.js';
import { divergenceRef, type RefKind } from './reference/divergence.js';
import { refTokenLogprobs, refTokenLogprobsBackward } from './reference/logprobs.js';
import { refKlPenalty, refPolicyLoss, type RefPolicyOptions } from './reference/policy.js';
import { refKtoLoss, refLdDpoLogps, refPreferenceLoss, refTokenWeightedDpo, type RefPreferenceOptions } from './reference/preference.js';
import { refGeoMean, refValueLoss } from './reference/seq-ops.js';
import { refRolloutCorrection, type RcCriterion, type RefRcOptions } from './reference/rollout-correction.js';
import { refLuspo, refMaskTruncated, refReinforce, refVespo } from './reference/policy-extra.js';
import { refCovPolicyLoss, refHighEntropyMask } from './reference/selection.js';
import { refHvMetaReward, refOpLoss, refParetoFront, refRewardWeightUpdate, refStepGrads, refTbLoss } from './reference/moo.js';
import { drakesKlRef, gumbelSoftmaxBackwardRef, gumbelSoftmaxRef } from './reference/drakes.js';
import { refD3po, refP3o, refP3oTrlx, refPrdp, refPreferenceStrength } from './reference/pairwise.js';
import { refCopoAdvantages, refCopoLoss } from './reference/copo.js';
import { refDiscountedCumsum, refGatedRewards, refLagrangianGradXi, refLagrangianMix } from './reference/reward-mix.js';

// ---- comparisons (plain throws: no vitest here, scripts/fuzz.ts runs these under tsx) ----------

/** |a - e| <= rtol |e| + atol elementwise (NaN matches NaN, equal infinities match). */
export function close(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, label: string): void {
  if (actual.length !== expected.length) throw new Error(`${label}: length ${actual.length}, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(a) || Number.isNaN(e)) {
      if (Number.isNaN(a) && Number.isNaN(e)) continue;
    } else if (a === e || Math.abs(a - e) <= rtol * Math.abs(e) + atol) {
      continue;
    }
    throw new Error(`${label}[${i}]: got ${a}, expected ${e} (rtol ${rtol}, atol ${atol})`);
  }
}
const closeTo = (a: number, e: number, digits: number, label: string) => close([a], [e], 0, 10 ** -digits / 2, label);
const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
};

/** The same bits (results of the sync and Async forms of one call). */
function sameBits(a: unknown, b: unknown, label: string): void {
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength), y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    if (x.length !== y.length) throw new Error(`${label}: Async length ${y.length}, sync ${x.length}`);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) throw new Error(`${label}: Async and sync differ at byte ${i}`);
    return;
  }
  if (typeof a === 'number' && typeof b === 'number') {
    if (!Object.is(a, b)) throw new Error(`${label}: Async ${b}, sync ${a}`);
    return;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
    if (ka.join() !== kb.join()) throw new Error(`${label}: Async keys ${kb}, sync keys ${ka}`);
    for (const k of ka) sameBits((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${label}.${k}`);
    return;
  }
  if (a !== b) throw new Error(`${label}: Async ${String(b)}, sync ${String(a)}`);
}

/** Gradient of f at x by central differences (the family tests' FD; `h` relative step, default 1e-6). */
function fdGrad(f: (x: Float64Array) => number, x: ArrayLike<number>, h?: number): Float64Array {
  const x0 = Float64Array.from(x);
  return Float64Array.from(x0, (_, i) => centralDiff(f, x0, i, h));
}

// ---- inputs -----------------------------------------------------------------------------------

const u8mask = (n: number, p: number, seed: number) => {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => (r() < p ? 1 : 0));
};
const f32mask = (n: number, p: number, seed: number) => {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() < p ? 0.25 + 2 * r() : 0));
};
const uniform = (n: number, lo: number, hi: number, seed: number) => {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
};
const ints = (n: number, lo: number, hi: number, seed: number) => {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo)));
};
type Mask = Uint8Array | Float32Array | null;
const maskOf = (kind: 'none' | 'u8' | 'f32', n: number, seed: number): Mask =>
  kind === 'none' ? null : kind === 'u8' ? u8mask(n, 0.75, seed) : f32mask(n, 0.75, seed);

const seed = fc.integer({ min: 1, max: 2 ** 30 });
const maskKind = fc.constantFrom('none', 'u8', 'f32') as fc.Arbitrary<'none' | 'u8' | 'f32'>;
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

// ---- the export table ---------------------------------------------------------------------------

/** Where an array argument sits: positional argument i, or options[key]. */
type Site = { arg: number } | { opt: string };
export interface ArraySite {
  name: string;
  at: Site;
  /** null (or undefined) is accepted here: no null mutation. */
  nullable?: boolean;
  /** The array that sets n: no length mutation (a wrong n is reported on the next array). */
  lead?: boolean;
  /** Lengths that are valid here (default: the array's own length). */
  lengths?: number[];
}
/** An option and values that are wrong for it on their own (whatever the rest of the call). */
export interface OptionSite {
  key: string;
  bad: unknown[];
  required?: boolean;
}
export interface Built {
  args: unknown[];
  arrays: ArraySite[];
  options: OptionSite[];
  /** The index of the options argument, and whether it is required. */
  optionsAt: number;
  optionsRequired: boolean;
  /** Throws when the result disagrees with the reference. */
  check(result: unknown): void;
  /** Set up before the call (e.g. the advantages small-path threshold) and undone after. */
  before?: () => () => void;
}
export interface ExportSpec<C = unknown> {
  name: string;
  sync: (...args: never[]) => unknown;
  async: (...args: never[]) => Promise<unknown>;
  arb: fc.Arbitrary<C>;
  build(c: C): Built;
}

const bad = {
  int: (min: number) => [min - 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '2', null, true],
  pos: () => [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '1', null],
  range: (min: number, max: number) => [
    Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '0.5', null,
    ...(Number.isFinite(min) ? [min - 0.5] : []), ...(Number.isFinite(max) ? [max + 0.5] : []),
  ],
  any: () => [Number.NaN, Number.POSITIVE_INFINITY, '0', null],
  enumOf: () => ['no-such-value', 3, null, true],
  flag: () => [1, 'true', null],
};
const opts = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
const present = (o: Record<string, unknown>, sites: OptionSite[]) => sites.filter((s) => s.required || o[s.key] !== undefined);

// tokenLogprobs / tokenLogprobsBackward --------------------------------------------------------

const logitsCase = fc.record({
  N: fc.integer({ min: 1, max: 6 }),
  V: fc.integer({ min: 1, max: 40 }),
  dtype: fc.constantFrom('f32', 'bf16', 'f16') as fc.Arbitrary<'f32' | 'bf16' | 'f16'>,
  temperature: opt(fc.constantFrom(0.5, 0.7, 1, 2)),
  ignoreIndex: opt(fc.constantFrom(-1, -100, 0)),
  ignored: fc.double({ min: 0, max: 0.5, noNaN: true }),
  entropy: fc.boolean(),
  gradEntropy: fc.boolean(),
  reuse: fc.boolean(),
  seed,
});
type LogitsCase = typeof logitsCase extends fc.Arbitrary<infer T> ? T : never;

function logitsInputs(c: LogitsCase) {
  const z = randn(c.N * c.V, 3, c.seed);
  const half = c.dtype === 'f32' ? null : encodeHalf(z, c.dtype);
  const logits = half ? half.bits : z;
  const decoded = half ? half.decoded : z;
  const ii = c.ignoreIndex ?? -100;
  const r = rng(c.seed + 1);
  const targets = Int32Array.from({ length: c.N }, () => (r() < c.ignored ? ii : Math.floor(r() * c.V)));
  const base = opts({ vocab: c.V, dtype: c.dtype === 'f32' && r() < 0.5 ? undefined : c.dtype, temperature: c.temperature, ignoreIndex: c.ignoreIndex });
  return { logits, decoded, targets, base, ii };
}
const LOGITS_OPTIONS: OptionSite[] = [
  { key: 'vocab', bad: bad.int(1), required: true },
  { key: 'dtype', bad: bad.enumOf() },
  { key: 'temperature', bad: bad.pos() },
  { key: 'ignoreIndex', bad: [1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, -(2 ** 31) - 1, '0', null] },
];
const RTOL = 1e-5, ATOL = 1e-6;

const tokenLogprobs: ExportSpec<LogitsCase> = {
  name: 'tokenLogprobs', sync: rk.tokenLogprobs as never, async: rk.tokenLogprobsAsync as never, arb: logitsCase,
  build(c) {
    const { logits, decoded, targets, base, ii } = logitsInputs(c);
    const o = opts({ ...base, returnEntropy: c.entropy ? true : undefined });
    return {
      args: [logits, targets, o], optionsAt: 2, optionsRequired: true,
      arrays: [{ name: 'logits', at: { arg: 0 }, lead: true }, { name: 'targets', at: { arg: 1 } }],
      options: [...present(o, LOGITS_OPTIONS), ...(o.returnEntropy !== undefined ? [{ key: 'returnEntropy', bad: bad.flag() }] : [])],
      check(res) {
        const r = res as rk.TokenLogprobsResult;
        const e = refTokenLogprobs(decoded, targets, c.V, c.temperature ?? 1, ii);
        close(r.logprobs, e.logp, RTOL, ATOL, 'logprobs');
        close(r.logsumexp, e.lse, RTOL, ATOL, 'logsumexp');
        if (c.entropy) close(r.entropy!, e.entropy, RTOL, ATOL, 'entropy');
        else if (r.entropy !== undefined) throw new Error('entropy returned without returnEntropy: true');
      },
    };
  },
};

const tokenLogprobsBackward: ExportSpec<LogitsCase> = {
  name: 'tokenLogprobsBackward', sync: rk.tokenLogprobsBackward as never, async: rk.tokenLogprobsBackwardAsync as never, arb: logitsCase,
  build(c) {
    const { logits, decoded: d0, targets, base, ii } = logitsInputs(c);
    // half the f32 cases (by seed) write the gradient over the logits: the reference reads a copy
    const inPlace = c.dtype === 'f32' && c.seed % 2 === 0;
    const decoded = inPlace ? Float64Array.from(d0) : d0;
    const g = randn(c.N, 1, c.seed + 2);
    const h = c.gradEntropy ? randn(c.N, 1, c.seed + 3) : undefined;
    let lse: Float32Array | undefined, ent: Float32Array | undefined;
    if (c.reuse) {
      const f = rk.tokenLogprobs(logits, targets, { ...base, returnEntropy: true } as rk.TokenLogprobsOptions);
      lse = f.logsumexp;
      ent = h ? f.entropy : undefined;
    }
    const o = opts({ ...base, gradEntropy: h, logsumexp: lse, entropy: ent, inPlace: inPlace ? true : undefined });
    const arrays: ArraySite[] = [{ name: 'logits', at: { arg: 0 }, lead: true }, { name: 'targets', at: { arg: 1 } }, { name: 'gradLogprobs', at: { arg: 2 } }];
    for (const k of ['gradEntropy', 'logsumexp', 'entropy']) if (o[k] !== undefined) arrays.push({ name: `options.${k}`, at: { opt: k }, nullable: true });
    return {
      args: [logits, targets, g, o], optionsAt: 3, optionsRequired: true, arrays,
      options: present(o, [...LOGITS_OPTIONS, { key: 'inPlace', bad: bad.flag() }]),
      check(res) {
        const tau = c.temperature ?? 1;
        const e = refTokenLogprobsBackward(decoded, targets, c.V, g, h ?? null, tau, ii);
        if (!lse) return close(res as Float32Array, e, RTOL, ATOL, 'grad');
        // With the forward's f32 logsumexp, p_j = exp(z_j/tau - lse) is off by up to |lse| * 6e-8
        // relative (documented on tokenLogprobsBackward): the tolerance adds twice that bound per element.
        const f = refTokenLogprobs(decoded, targets, c.V, tau, ii);
        const got = res as Float32Array;
        for (let r = 0; r < c.N; r++) {
          for (let j = 0; j < c.V; j++) {
            const i = r * c.V + j, d = decoded[i] / tau - f.lse[r], p = Math.exp(d);
            const bound = (1.2e-7 * Math.abs(f.lse[r]) * p * (Math.abs(g[r]) + (h ? Math.abs(h[r]) * (Math.abs(d + f.entropy[r]) + 1) : 0))) / tau;
            close([got[i]], [e[i]], RTOL, ATOL + bound, `grad[${i}] (logsumexp given)`);
          }
        }
      },
    };
  },
};

// vocabDivergence ----------------------------------------------------------------------------------

const divCase = fc.record({
  N: fc.integer({ min: 1, max: 5 }),
  V: fc.integer({ min: 1, max: 40 }),
  dtype: fc.constantFrom('f32', 'bf16', 'f16') as fc.Arbitrary<'f32' | 'bf16' | 'f16'>,
  kind: opt(fc.constantFrom('forward_kl', 'reverse_kl', 'jsd') as fc.Arbitrary<RefKind>),
  beta: opt(fc.constantFrom(0, 0.1, 0.5, 0.9, 1)),
  temperature: opt(fc.constantFrom(0.5, 1, 2)),
  labels: fc.boolean(),
  mask: fc.boolean(),
  gradient: fc.boolean(),
  gradOutput: fc.constantFrom('none', 'number', 'array'),
  seed,
});
const vocabDivergence: ExportSpec<typeof divCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'vocabDivergence', sync: rk.vocabDivergence as never, async: rk.vocabDivergenceAsync as never, arb: divCase,
  build(c) {
    const n = c.N * c.V;
    const z = randn(n, 2, c.seed), zt = randn(n, 2, c.seed + 1);
    const hz = c.dtype === 'f32' ? null : encodeHalf(z, c.dtype), hzt = c.dtype === 'f32' ? null : encodeHalf(zt, c.dtype);
    const kind = c.kind ?? 'jsd';
    const beta = kind === 'jsd' ? c.beta : undefined;
    const labels = c.labels ? ints(c.N, -1, 3, c.seed + 2) : undefined;
    const ignoreIndex = c.labels ? -1 : undefined;
    const mask = c.mask ? u8mask(c.N, 0.7, c.seed + 3) : undefined;
    const gradOutput = !c.gradient || c.gradOutput === 'none' ? undefined : c.gradOutput === 'number' ? 0.75 : randn(c.N, 1, c.seed + 4);
    // half the f32 gradient cases (by seed) write it over the logits: the reference reads a copy
    const inPlace = c.dtype === 'f32' && c.gradient && c.seed % 2 === 0;
    const zRef = inPlace ? Float32Array.from(z) : z;
    const o = opts({
      vocab: c.V, dtype: c.dtype === 'f32' ? undefined : c.dtype, divergence: c.kind, beta, temperature: c.temperature,
      labels, ignoreIndex, returnGradient: c.gradient ? true : undefined, gradOutput, inPlace: inPlace ? true : undefined,
    });
    const arrays: ArraySite[] = [{ name: 'logits', at: { arg: 0 }, lead: true }, { name: 'targetLogits', at: { arg: 1 } }];
    if (mask) arrays.push({ name: 'mask', at: { arg: 2 }, nullable: true });
    if (o.labels !== undefined) arrays.push({ name: 'options.labels', at: { opt: 'labels' }, nullable: true });
    if (gradOutput instanceof Float32Array) arrays.push({ name: 'options.gradOutput', at: { opt: 'gradOutput' }, nullable: true });
    const sites: OptionSite[] = [
      ...LOGITS_OPTIONS.filter((s) => s.key === 'vocab' || s.key === 'dtype' || s.key === 'temperature'),
      { key: 'divergence', bad: bad.enumOf() }, { key: 'beta', bad: bad.range(0, 1) },
      { key: 'ignoreIndex', bad: [1.5, Number.NaN, 2 ** 31, '0', null] }, { key: 'returnGradient', bad: bad.flag() },
      { key: 'inPlace', bad: bad.flag() },
    ];
    if (typeof gradOutput === 'number') sites.push({ key: 'gradOutput', bad: [Number.NaN, Number.POSITIVE_INFINITY] });
    return {
      args: [hz ? hz.bits : z, hzt ? hzt.bits : zt, mask ?? null, o], optionsAt: 3, optionsRequired: true, arrays, options: present(o, sites),
      check(res) {
        const r = res as rk.VocabDivergenceResult;
        const rowMask = Float64Array.from({ length: c.N }, (_, i) => ((mask ? mask[i] : 1) && (!labels || labels[i] !== -1) ? 1 : 0));
        const e = divergenceRef(hz ? hz.decoded : zRef, hzt ? hzt.decoded : zt, c.V, kind, beta ?? 0.5, c.temperature ?? 1, rowMask, gradOutput ?? 1);
        close(r.divergence, e.d, 1e-5, 2e-6, 'divergence');
        if (c.gradient) {
          // The family test's tolerance, plus the f32 rounding of the log-ratios the gradient is made
          // of: each is off by a few ulps of the row's scaled logit range R (|z/tau| reaches ~20 here,
          // ~9 in the family test), times p_j / tau.
          const tau = c.temperature ?? 1, zz = hz ? hz.decoded : zRef, zq = hzt ? hzt.decoded : zt;
          const base = 5e-6 * maxAbs(e.grad) + 5e-7 / c.V;
          for (let row = 0; row < c.N; row++) {
            const o0 = row * c.V, zr = Array.from(zz.subarray(o0, o0 + c.V)), qr = Array.from(zq.subarray(o0, o0 + c.V));
            const mz = Math.max(...zr), mq = Math.max(...qr);
            const R = Math.max(mz - Math.min(...zr), mq - Math.min(...qr)) / tau + 1;
            let sz = 0;
            for (const v of zr) sz += Math.exp((v - mz) / tau);
            for (let j = 0; j < c.V; j++) {
              const pj = Math.exp((zr[j] - mz) / tau) / sz;
              const g = typeof gradOutput === 'number' ? gradOutput : gradOutput ? gradOutput[row] : 1;
              close([r.gradient![o0 + j]], [e.grad[o0 + j]], 1e-5, base + (2.4e-7 * R * pj * Math.abs(g)) / tau, `gradient[${o0 + j}]`);
            }
          }
        }
        else if (r.gradient !== undefined) throw new Error('gradient returned without returnGradient: true');
      },
    };
  },
};

// policyLoss / klPenalty / valueLoss / geoMeanPolicyLoss --------------------------------------------

const VARIANTS = ['ppo', 'gspo', 'cispo', 'sapo', 'gpg'] as const;
const AGGS = ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum', 'seq-mean-token-sum-norm'] as const;
const ESTS = ['k1', 'k2', 'k3', 'abs', 'k3+'] as const;

/** Log-probs in (-4, 0), old log-probs spread around them, masks with an empty row (the policy test's inputs). */
function policyInputs(B: number, T: number, s: number, perToken: boolean, mk: 'none' | 'u8' | 'f32') {
  const n = B * T;
  const r = rng(s);
  const lp = new Float32Array(n), old = new Float32Array(n), ref = new Float32Array(n), ent = new Float32Array(n);
  const noise = randn(2 * n, 1, s + 1);
  for (let i = 0; i < n; i++) {
    lp[i] = -4 * r() - 0.01;
    old[i] = lp[i] - 0.35 * noise[i];
    ref[i] = lp[i] - 0.5 * noise[n + i];
    ent[i] = 3 * r();
  }
  const adv = randn(perToken ? n : B, 1, s + 2);
  let mask: Mask = null;
  if (mk !== 'none') {
    mask = mk === 'f32' ? new Float32Array(n) : new Uint8Array(n);
    for (let b = 0; b < B; b++) {
      const len = b === 1 ? 0 : 1 + Math.floor(r() * T);
      for (let t = 0; t < len; t++) mask[b * T + t] = mk === 'f32' ? 0.25 + r() : 1;
    }
  }
  return { lp, old, ref, ent, adv, mask };
}

const policyCase = fc.record({
  B: fc.integer({ min: 1, max: 4 }), T: fc.integer({ min: 1, max: 9 }),
  variant: opt(fc.constantFrom(...VARIANTS)), aggregation: opt(fc.constantFrom(...AGGS)),
  perToken: fc.boolean(), mask: maskKind,
  kl: opt(fc.constantFrom(...ESTS)), beta: opt(fc.constantFrom(0.05, -0.1, 1)),
  entropy: fc.boolean(), entropyCoef: opt(fc.constantFrom(0.01, -0.02)),
  epsilonLow: opt(fc.constantFrom(0, 0.1, 0.3)), epsilonHigh: opt(fc.constantFrom(0.15, 0.28, 2)),
  dualClip: opt(fc.constantFrom(1.5, 3)), delta: opt(fc.constantFrom(1.2, 4)), normalizer: opt(fc.constantFrom(0.5, 7)),
  tauPos: opt(fc.constantFrom(0.5, 1.5)), tauNeg: opt(fc.constantFrom(0.8, 2)),
  tokenWeights: fc.boolean(),
  seed,
});
const policyLoss: ExportSpec<typeof policyCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'policyLoss', sync: rk.policyLoss as never, async: rk.policyLossAsync as never, arb: policyCase,
  build(c) {
    const variant = c.variant ?? 'ppo';
    const x = policyInputs(c.B, c.T, c.seed, c.perToken, c.mask);
    const ppo = variant === 'ppo', sapo = variant === 'sapo', clipped = ppo || variant === 'gspo';
    const o = opts({
      seqLen: c.T, variant: c.variant, aggregation: c.aggregation,
      // variant-only options (the others reject them): epsilonLow for ppo/gspo, epsilonHigh also for cispo
      epsilonLow: clipped ? c.epsilonLow : undefined, epsilonHigh: clipped || variant === 'cispo' ? c.epsilonHigh : undefined,
      dualClip: ppo ? c.dualClip : undefined, delta: ppo ? c.delta : undefined, normalizer: c.normalizer,
      refLogprobs: c.kl ? x.ref : undefined, klEstimator: c.kl, beta: c.kl ? c.beta : undefined,
      entropy: c.entropy ? x.ent : undefined, entropyCoef: c.entropy ? c.entropyCoef : undefined,
      sapoTemperaturePos: sapo ? c.tauPos : undefined, sapoTemperatureNeg: sapo ? c.tauNeg : undefined,
      tokenWeights: c.tokenWeights ? uniform(c.B * c.T, 0, 3, c.seed + 9) : undefined,
    }) as Record<string, unknown>;
    const arrays: ArraySite[] = [
      { name: 'logprobs', at: { arg: 0 }, lead: true }, { name: 'oldLogprobs', at: { arg: 1 } },
      { name: 'advantages', at: { arg: 2 }, lengths: [c.B, c.B * c.T] }, { name: 'mask', at: { arg: 3 }, nullable: true },
    ];
    for (const k of ['refLogprobs', 'entropy', 'tokenWeights']) if (o[k] !== undefined) arrays.push({ name: `options.${k}`, at: { opt: k }, nullable: true });
    const sites: OptionSite[] = [
      { key: 'seqLen', bad: bad.int(1), required: true }, { key: 'variant', bad: bad.enumOf() }, { key: 'aggregation', bad: bad.enumOf() },
      { key: 'epsilonLow', bad: bad.range(0, 1) }, { key: 'epsilonHigh', bad: bad.range(0, Infinity) },
      { key: 'dualClip', bad: [1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, '3'] }, { key: 'delta', bad: [1, Number.NaN, '2'] },
      { key: 'normalizer', bad: bad.pos() }, { key: 'klEstimator', bad: bad.enumOf() }, { key: 'beta', bad: bad.any() },
      { key: 'entropyCoef', bad: bad.any() }, { key: 'sapoTemperaturePos', bad: bad.pos() }, { key: 'sapoTemperatureNeg', bad: bad.pos() },
    ];
    return {
      args: [x.lp, x.old, x.adv, x.mask, o], optionsAt: 4, optionsRequired: true, arrays, options: present(o, sites),
      check(res) {
        const got = res as rk.PolicyLossResult;
        const ro: RefPolicyOptions = {
          seqLen: c.T, variant, aggregation: c.aggregation ?? (variant === 'gspo' || sapo ? 'seq-mean-token-mean' : 'token-mean'),
          epsilonLow: (o.epsilonLow as number | undefined) ?? 0.2, epsilonHigh: (o.epsilonHigh as number | undefined) ?? (variant === 'cispo' ? 5 : 0.2),
          dualClip: o.dualClip as number | undefined, delta: o.delta as number | undefined, normalizer: c.normalizer,
          refLogprobs: c.kl ? x.ref : undefined, beta: c.kl ? (c.beta ?? 0.001) : 0.001, klEstimator: c.kl ?? 'k3',
          entropy: c.entropy ? x.ent : undefined, entropyCoef: c.entropy ? (c.entropyCoef ?? 0) : 0,
          tauPos: (o.sapoTemperaturePos as number | undefined) ?? 1, tauNeg: (o.sapoTemperatureNeg as number | undefined) ?? 1.05,
          tokenWeights: o.tokenWeights as Float32Array | undefined,
        };
        const want = refPolicyLoss(x.lp, x.old, x.adv, x.mask, ro);
        // The family test holds the loss to 1e-6 of sum_t w_t |L_t|; where a token's KL or entropy term
        // cancels its policy term (f32 terms), 1e-6 of the terms' own sizes (an upper bound: the
        // policy-only reference's scale plus |beta| mean|kl| + |entropyCoef| mean H, times T for the
        // token-sum aggregations).
        const pgRef = c.kl || c.entropy ? refPolicyLoss(x.lp, x.old, x.adv, x.mask, { ...ro, refLogprobs: undefined, beta: 0, entropy: undefined, entropyCoef: 0 }) : want;
        const mean = (a: ArrayLike<number>, f: (v: number) => number) => {
          let sw = 0, sv = 0;
          for (let i = 0; i < a.length; i++) {
            const w = x.mask ? x.mask[i] : 1;
            sw += w;
            sv += w * f(a[i]);
          }
          return sw > 0 ? sv / sw : 0;
        };
        const klTerms = c.kl ? Math.abs(ro.beta) * mean(refKlPenalty(x.lp, x.ref, c.kl, null).kl, Math.abs) : 0;
        const entTerms = c.entropy ? Math.abs(ro.entropyCoef) * mean(x.ent, Math.abs) : 0;
        const termScale = Math.max(want.lossScale, pgRef.lossScale + (klTerms + entTerms) * c.T * Math.max(1, c.B));
        close([got.loss], [want.loss], 1e-5, 1e-6 * termScale, 'loss');
        // the family test's 1e-6 of the largest entry, and where the KL term cancels the policy term
        // of a token (f32 terms), 1e-6 of the two terms' sizes (as the loss is held to its lossScale)
        const pg = c.kl ? refPolicyLoss(x.lp, x.old, x.adv, x.mask, { ...ro, refLogprobs: undefined, beta: 0 }).grad : want.grad;
        const gmax = Math.max(maxAbs(want.grad), 1e-30);
        for (let i = 0; i < want.grad.length; i++) {
          const terms = Math.abs(pg[i]) + Math.abs(want.grad[i] - pg[i]);
          close([got.gradLogprobs[i]], [want.grad[i]], 1e-5, 1e-6 * gmax + 1e-6 * terms, `gradLogprobs[${i}]`);
        }
        if (c.entropy) close(got.gradEntropy!, want.gradEntropy, 1e-5, 1e-12, 'gradEntropy');
        else if (got.gradEntropy !== undefined) throw new Error('gradEntropy returned without entropy');
        const m = got.metrics, wm = want.metrics;
        close(
          [m.clipFraction, m.clipLowFraction, m.clipHighFraction, m.dualClipFraction, m.approxKl, m.entropy ?? 0, m.tokenCount],
          [wm.clipFraction, wm.clipLowFraction, wm.clipHighFraction, wm.dualClipFraction, wm.approxKl, c.entropy ? wm.entropy : 0, wm.tokenCount],
          1e-6, 1e-12, 'metrics',
        );
        // The mean of the f32 KL estimates: k3 is within 3e-6 relative (native/core/policy.h), so
        // klPenalty's tolerance for the same estimates (1e-5), not 1e-6 (which averaging over many
        // tokens meets, and one token of a short row need not).
        // Where signed estimates (k1) cancel, the error is relative to the mean of |kl| instead.
        let klAbs = 0;
        if (c.kl) {
          const k = refKlPenalty(x.lp, x.ref, c.kl, x.mask);
          let sw = 0;
          for (let i = 0; i < k.kl.length; i++) {
            const w = x.mask ? x.mask[i] : 1;
            sw += w;
            klAbs += w * Math.abs(k.kl[i]);
          }
          klAbs = sw > 0 ? klAbs / sw : 0;
        }
        close([m.kl ?? 0], [c.kl ? wm.kl : 0], 1e-5, 1e-9 + 1e-6 * klAbs, 'metrics.kl');
      },
    };
  },
};

// policyLossFromLogits: tokenLogprobs + policyLoss + tokenLogprobsBackward in one call (small shapes:
// the float64 reference is the composition of the two above) ----------------------------------------

const fromLogitsCase = fc.record({
  B: fc.integer({ min: 1, max: 3 }), T: fc.integer({ min: 1, max: 5 }), V: fc.integer({ min: 1, max: 24 }),
  dtype: fc.constantFrom('f32', 'bf16', 'f16') as fc.Arbitrary<'f32' | 'bf16' | 'f16'>,
  variant: opt(fc.constantFrom(...VARIANTS)), aggregation: opt(fc.constantFrom(...AGGS)),
  perToken: fc.boolean(), mask: maskKind, kl: opt(fc.constantFrom(...ESTS)),
  entropyCoef: opt(fc.constantFrom(0.01, -0.02)), returnEntropy: fc.boolean(),
  temperature: opt(fc.constantFrom(0.7, 1, 2)), ignored: fc.double({ min: 0, max: 0.3, noNaN: true }),
  gradDtype: opt(fc.constantFrom('f32', 'bf16') as fc.Arbitrary<'f32' | 'bf16'>),
  inPlace: fc.boolean(),
  seed,
});
const policyLossFromLogits: ExportSpec<typeof fromLogitsCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'policyLossFromLogits', sync: rk.policyLossFromLogits as never, async: rk.policyLossFromLogitsAsync as never, arb: fromLogitsCase,
  build(c) {
    const n = c.B * c.T, V = c.V, tau = c.temperature ?? 1;
    const z = randn(n * V, 2, c.seed);
    const half = c.dtype === 'f32' ? null : encodeHalf(z, c.dtype);
    // inPlace where the gradient's dtype is the logits' (f32 over f32, bf16 over bf16): the gradient
    // then overwrites the logits, so the reference reads a copy
    const inPlace = c.inPlace && (c.gradDtype ?? 'f32') === c.dtype;
    const decoded = half ? half.decoded : inPlace ? Float32Array.from(z) : z;
    const r = rng(c.seed + 1);
    const targets = Int32Array.from({ length: n }, () => (r() < c.ignored ? -100 : Math.floor(r() * V)));
    const f = refTokenLogprobs(decoded, targets, V, tau, -100);
    const noise = randn(2 * n, 1, c.seed + 2);
    const old = Float32Array.from({ length: n }, (_, i) => f.logp[i] - 0.3 * noise[i]);
    const ref = c.kl ? Float32Array.from({ length: n }, (_, i) => f.logp[i] - 0.4 * noise[n + i]) : undefined;
    const adv = randn(c.perToken ? n : c.B, 1, c.seed + 3);
    const mask = maskOf(c.mask, n, c.seed + 4);
    const variant = c.variant ?? 'ppo';
    const wantEntropy = c.returnEntropy || c.entropyCoef !== undefined;
    const o = opts({
      vocab: V, seqLen: c.T, dtype: half ? c.dtype : undefined, temperature: c.temperature, variant: c.variant, aggregation: c.aggregation,
      refLogprobs: ref, klEstimator: c.kl, entropyCoef: c.entropyCoef, returnEntropy: c.returnEntropy ? true : undefined, gradDtype: c.gradDtype,
      inPlace: inPlace ? true : undefined,
    });
    const arrays: ArraySite[] = [
      { name: 'logits', at: { arg: 0 }, lead: true }, { name: 'targets', at: { arg: 1 } }, { name: 'oldLogprobs', at: { arg: 2 } },
      { name: 'advantages', at: { arg: 3 }, lengths: [c.B, n] }, { name: 'mask', at: { arg: 4 }, nullable: true },
    ];
    if (ref) arrays.push({ name: 'options.refLogprobs', at: { opt: 'refLogprobs' }, nullable: true });
    const sites: OptionSite[] = [
      ...LOGITS_OPTIONS.filter((s) => s.key !== 'ignoreIndex'), { key: 'seqLen', bad: bad.int(1), required: true },
      { key: 'variant', bad: bad.enumOf() }, { key: 'aggregation', bad: bad.enumOf() }, { key: 'klEstimator', bad: bad.enumOf() },
      { key: 'entropyCoef', bad: bad.any() }, { key: 'returnEntropy', bad: bad.flag() }, { key: 'gradDtype', bad: bad.enumOf() },
      { key: 'inPlace', bad: bad.flag() },
    ];
    return {
      args: [half ? half.bits : z, targets, old, adv, mask, o], optionsAt: 5, optionsRequired: true, arrays, options: present(o, sites),
      check(res) {
        const got = res as rk.PolicyLossFromLogitsResult;
        const weight = (i: number) => (mask === null ? 1 : mask[i]);
        const read = (i: number) => weight(i) !== 0 && targets[i] !== -100;
        for (let i = 0; i < n; i++) {
          const [lp, h] = read(i) ? [f.logp[i], f.entropy[i]] : [0, 0];
          close([got.logprobs[i]], [lp], RTOL, ATOL, `logprobs[${i}]`);
          if (wantEntropy) close([got.entropy![i]], [h], RTOL, ATOL, `entropy[${i}]`);
        }
        if (!wantEntropy && got.entropy !== undefined) throw new Error('entropy returned without returnEntropy or entropyCoef');
        // the policy loss and the backward in float64 at the op's own log-probs (the family test's
        // tolerances, tests/policy-from-logits.test.ts)
        const ro: RefPolicyOptions = {
          seqLen: c.T, variant, aggregation: c.aggregation ?? (variant === 'gspo' || variant === 'sapo' ? 'seq-mean-token-mean' : 'token-mean'),
          epsilonLow: 0.2, epsilonHigh: variant === 'cispo' ? 5 : 0.2, refLogprobs: ref, beta: 0.001, klEstimator: c.kl ?? 'k3',
          entropy: wantEntropy ? got.entropy : undefined, entropyCoef: c.entropyCoef ?? 0, tauPos: 1, tauNeg: 1.05,
        };
        const p = refPolicyLoss(got.logprobs, old, adv, mask, ro);
        close([got.loss], [p.loss], 1e-5, 1e-6 * p.lossScale + 1e-12, 'loss');
        close([got.metrics.tokenCount, got.metrics.clipFraction], [p.metrics.tokenCount, p.metrics.clipFraction], 1e-6, 1e-12, 'metrics');
        const e = refTokenLogprobsBackward(decoded, targets, V, p.grad, wantEntropy ? p.gradEntropy : null, tau, -100);
        const bf = c.gradDtype === 'bf16';
        const g = bf ? Float32Array.from(got.gradLogits as Uint16Array, (b) => fromBf16(b)) : (got.gradLogits as Float32Array);
        for (let row = 0; row < n; row++) {
          const zr = Array.from(decoded.subarray(row * V, (row + 1) * V), (v) => v / tau);
          const R = Math.max(...zr) - Math.min(...zr) + Math.abs(Math.max(...zr)) + 1;
          const gr = Math.abs(p.grad[row]), hr = wantEntropy ? Math.abs(p.gradEntropy[row]) : 0;
          for (let j = 0; j < V; j++) {
            const i = row * V + j, pj = Math.exp(zr[j] - f.lse[row]);
            const atol = (1e-6 * (gr + hr * (Math.abs(f.entropy[row]) + 1)) + 4.8e-7 * R * pj * (gr + hr * (Math.abs(zr[j] - f.lse[row] + f.entropy[row]) + 1))) / tau;
            close([g[i]], [read(row) ? e[i] : 0], bf ? 2 ** -8 : 1e-5, atol + 1e-30, `gradLogits[${i}]`);
          }
        }
      },
    };
  },
};

const klCase = fc.record({ n: fc.integer({ min: 1, max: 40 }), estimator: opt(fc.constantFrom(...ESTS)), mask: maskKind, seed });
const klPenalty: ExportSpec<typeof klCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'klPenalty', sync: rk.klPenalty as never, async: rk.klPenaltyAsync as never, arb: klCase,
  build(c) {
    const lp = uniform(c.n, -4, -0.01, c.seed);
    const noise = randn(c.n, 1, c.seed + 1);
    const ref = lp.map((v, i) => v - 0.5 * noise[i]);
    const mask = maskOf(c.mask, c.n, c.seed + 2) ?? undefined;
    const o = opts({ estimator: c.estimator });
    return {
      args: [lp, ref, mask ?? null, o], optionsAt: 3, optionsRequired: false,
      arrays: [{ name: 'logprobs', at: { arg: 0 }, lead: true }, { name: 'refLogprobs', at: { arg: 1 } },
        ...(mask ? [{ name: 'mask', at: { arg: 2 }, nullable: true }] : [])],
      options: present(o, [{ key: 'estimator', bad: bad.enumOf() }]),
      check(res) {
        const r = res as rk.KlPenaltyResult;
        const e = refKlPenalty(lp, ref, c.estimator ?? 'k3', mask ?? null);
        close(r.kl, e.kl, 1e-5, 1e-9, 'kl');
        close(r.grad, e.grad, 1e-5, 1e-9, 'grad');
        // The mean of f32 estimates held at 1e-5 above (k3: 3e-6 relative, native/core/policy.h): 1e-5
        // relative, and where signed estimates (k1) cancel, relative to the mean of |kl| (as policyLoss's
        // loss is held relative to the sum of |terms|); the family test's 1e-6 / 1e-12 holds for its inputs.
        let sw = 0, sa = 0;
        for (let i = 0; i < c.n; i++) {
          const w = mask ? mask[i] : 1;
          sw += w;
          sa += w * Math.abs(e.kl[i]);
        }
        close([r.mean], [e.mean], 1e-5, 1e-12 + (sw > 0 ? 1e-6 * (sa / sw) : 0), 'mean');
      },
    };
  },
};

const seqCase = fc.record({
  B: fc.integer({ min: 1, max: 5 }), T: fc.integer({ min: 1, max: 9 }), mask: maskKind, perToken: fc.boolean(),
  aggregation: opt(fc.constantFrom(...AGGS)), clip: opt(fc.constantFrom(0, 0.3, 2)), normalizer: opt(fc.constantFrom(0.5, 3)),
  epsilonLow: opt(fc.constantFrom(0, 0.2, 0.4)), epsilonHigh: opt(fc.constantFrom(0.2, 0.28, 1.5)), seed,
});
type SeqCase = typeof seqCase extends fc.Arbitrary<infer T> ? T : never;
const seqMaskOf = (c: SeqCase) => {
  const n = c.B * c.T, r = rng(c.seed + 3);
  const m8 = Uint8Array.from({ length: n }, () => (r() < 0.8 ? 1 : 0));
  return c.mask === 'none' ? null : c.mask === 'u8' ? m8 : Float32Array.from(m8, (m, i) => (m ? 0.25 + (i % 4) : 0));
};

const valueLoss: ExportSpec<SeqCase> = {
  name: 'valueLoss', sync: rk.valueLoss as never, async: rk.valueLossAsync as never, arb: seqCase,
  build(c) {
    const n = c.B * c.T;
    const v = randn(n, 1, c.seed), R = randn(n, 1, c.seed + 1), noise = randn(n, 1, c.seed + 2);
    const old = v.map((x, i) => x + 0.6 * noise[i]);
    const mask = seqMaskOf(c);
    const o = opts({ seqLen: c.T, aggregation: c.aggregation, cliprangeValue: c.clip, normalizer: c.normalizer });
    return {
      args: [v, R, old, mask, o], optionsAt: 4, optionsRequired: true,
      arrays: [{ name: 'values', at: { arg: 0 }, lead: true }, { name: 'returns', at: { arg: 1 } }, { name: 'oldValues', at: { arg: 2 } },
        { name: 'mask', at: { arg: 3 }, nullable: true }],
      options: present(o, [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'aggregation', bad: bad.enumOf() },
        { key: 'cliprangeValue', bad: bad.range(0, Infinity) }, { key: 'normalizer', bad: bad.pos() }]),
      check(res) {
        const got = res as rk.ValueLossResult;
        const e = refValueLoss(v, R, old, mask, c.T, c.clip ?? 0.5, c.aggregation ?? 'token-mean', c.normalizer ?? 0);
        closeTo(got.loss, e.loss, 10, 'loss');
        close(got.gradValues, e.grad, 1e-6, 1e-9, 'gradValues');
        closeTo(got.metrics.clipFraction, e.clipFraction, 12, 'clipFraction');
        if (got.metrics.tokenCount !== e.tokenCount) throw new Error(`tokenCount ${got.metrics.tokenCount}, expected ${e.tokenCount}`);
      },
    };
  },
};

const geoMeanPolicyLoss: ExportSpec<SeqCase> = {
  name: 'geoMeanPolicyLoss', sync: rk.geoMeanPolicyLoss as never, async: rk.geoMeanPolicyLossAsync as never, arb: seqCase,
  build(c) {
    const n = c.B * c.T;
    const lp = randn(n, 1, c.seed).map((x) => x - 2), noise = randn(n, 1, c.seed + 1);
    const old = lp.map((x, i) => x + 0.3 * noise[i]);
    const adv = randn(c.perToken ? n : c.B, 1, c.seed + 2);
    const mask = seqMaskOf(c);
    const o = opts({ seqLen: c.T, epsilonLow: c.epsilonLow, epsilonHigh: c.epsilonHigh });
    const eLo = c.epsilonLow ?? 0.2, eHi = c.epsilonHigh ?? 0.2;
    return {
      args: [lp, old, adv, mask, o], optionsAt: 4, optionsRequired: true,
      arrays: [{ name: 'logprobs', at: { arg: 0 }, lead: true }, { name: 'oldLogprobs', at: { arg: 1 } },
        { name: 'advantages', at: { arg: 2 }, lengths: [c.B, n] }, { name: 'mask', at: { arg: 3 }, nullable: true }],
      options: present(o, [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'epsilonLow', bad: bad.range(0, Infinity) },
        { key: 'epsilonHigh', bad: bad.range(0, Infinity) }]),
      check(res) {
        const got = res as rk.GeoMeanPolicyLossResult;
        const e = refGeoMean(lp, old, adv, mask, c.T, eLo, eHi);
        closeTo(got.loss, e.loss, 10, 'loss');
        closeTo(got.metrics.clipFraction, e.clipFraction, 12, 'clipFraction');
        closeTo(got.metrics.clipFractionLower, e.clipFractionLower, 12, 'clipFractionLower');
        closeTo(got.metrics.ppoKl, e.ppoKl, 9, 'ppoKl');
        if (got.metrics.tokenCount !== e.tokenCount) throw new Error(`tokenCount ${got.metrics.tokenCount}, expected ${e.tokenCount}`);
        const f = (x: Float64Array) => refGeoMean(x, old, adv, mask, c.T, eLo, eHi).loss;
        const x = Float64Array.from(lp);
        for (let i = 0; i < n; i++) {
          const d = lp[i] - old[i];
          if (Math.abs(d + eLo) < 1e-4 || Math.abs(d - eHi) < 1e-4) continue; // at a clamp edge (as the family test)
          closeTo(got.gradLogprobs[i], centralDiff(f, x, i), 6, `gradLogprobs[${i}] vs finite differences`);
        }
      },
    };
  },
};

/** The log-prob inputs of reinforcePolicyLoss, luspoPolicyLoss and vespoPolicyLoss. */
function seqPolicyInputs(c: SeqCase, scale: number) {
  const n = c.B * c.T;
  const lp = randn(n, 1, c.seed).map((x) => x - 2), noise = randn(n, 1, c.seed + 1);
  const old = lp.map((x, i) => x + scale * noise[i]);
  const adv = randn(c.perToken ? n : c.B, 1, c.seed + 2);
  const arrays = (second: string) => [{ name: 'logprobs', at: { arg: 0 }, lead: true }, { name: second, at: { arg: 1 } },
    { name: 'advantages', at: { arg: 2 }, lengths: [c.B, n] }, { name: 'mask', at: { arg: 3 }, nullable: true }];
  return { n, lp, old, adv, mask: seqMaskOf(c), arrays };
}

const reinforcePolicyLoss: ExportSpec<SeqCase> = {
  name: 'reinforcePolicyLoss', sync: rk.reinforcePolicyLoss as never, async: rk.reinforcePolicyLossAsync as never, arb: seqCase,
  build(c) {
    const { n, lp, old, adv, mask, arrays } = seqPolicyInputs(c, 0.3);
    const o = opts({ seqLen: c.T, aggregation: c.aggregation, normalizer: c.normalizer });
    return {
      args: [lp, old, adv, mask, o], optionsAt: 4, optionsRequired: true, arrays: arrays('rolloutLogprobs') as never,
      options: present(o, [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'aggregation', bad: bad.enumOf() },
        { key: 'normalizer', bad: bad.pos() }]),
      check(res) {
        const got = res as rk.ReinforcePolicyLossResult;
        const e = refReinforce(lp, old, adv, mask, c.T, c.aggregation ?? 'seq-mean-token-sum', c.normalizer ?? 0);
        closeTo(got.loss, e.loss, 10, 'loss');
        close(got.gradLogprobs, e.grad, 1e-6, 1e-9, 'gradLogprobs');
        closeTo(got.metrics.ppoKl, e.ppoKl, 9, 'ppoKl');
        if (got.metrics.tokenCount !== e.tokenCount) throw new Error(`tokenCount ${got.metrics.tokenCount}, expected ${e.tokenCount}`);
        const f = (x: Float64Array) => refReinforce(x, old, adv, mask, c.T, c.aggregation ?? 'seq-mean-token-sum', c.normalizer ?? 0).loss;
        const x = Float64Array.from(lp);
        for (let i = 0; i < n; i++) close([got.gradLogprobs[i]], [centralDiff(f, x, i)], 1e-6, 5e-7, `gradLogprobs[${i}] vs finite differences`);
      },
    };
  },
};

const luspoPolicyLoss: ExportSpec<SeqCase> = {
  name: 'luspoPolicyLoss', sync: rk.luspoPolicyLoss as never, async: rk.luspoPolicyLossAsync as never, arb: seqCase,
  build(c) {
    const { n, lp, old, adv, mask, arrays } = seqPolicyInputs(c, 0.3);
    const o = opts({ seqLen: c.T, epsilonLow: c.epsilonLow, epsilonHigh: c.epsilonHigh });
    const eLo = c.epsilonLow ?? 0.2, eHi = c.epsilonHigh ?? eLo;
    return {
      args: [lp, old, adv, mask, o], optionsAt: 4, optionsRequired: true, arrays: arrays('oldLogprobs') as never,
      options: present(o, [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'epsilonLow', bad: bad.range(0, Infinity) },
        { key: 'epsilonHigh', bad: bad.range(0, Infinity) }]),
      check(res) {
        const got = res as rk.LuspoPolicyLossResult;
        const e = refLuspo(lp, old, adv, mask, c.T, eLo, eHi);
        closeTo(got.loss, e.loss, 9, 'loss');
        closeTo(got.metrics.clipFractionLow, e.clipFractionLow, 12, 'clipFractionLow');
        closeTo(got.metrics.clipFractionHigh, e.clipFractionHigh, 12, 'clipFractionHigh');
        closeTo(got.metrics.ppoKl, e.ppoKl, 9, 'ppoKl');
        if (got.metrics.tokenCount !== e.tokenCount) throw new Error(`tokenCount ${got.metrics.tokenCount}, expected ${e.tokenCount}`);
        const f = (x: Float64Array) => refLuspo(x, old, adv, mask, c.T, eLo, eHi).loss;
        const x = Float64Array.from(lp);
        for (let b = 0; b < c.B; b++) {
          let sm = 0, sd = 0;
          for (let t = 0; t < c.T; t++) {
            const i = b * c.T + t, m = mask ? mask[i] : 1;
            sm += m;
            sd += m * (lp[i] - old[i]);
          }
          const s = Math.exp(sd / Math.max(sm, 1));
          if (Math.abs(s - (1 - eLo)) < 1e-4 || Math.abs(s - (1 + eHi)) < 1e-4) continue; // at a clip edge
          for (let t = 0; t < c.T; t++) {
            const i = b * c.T + t;
            close([got.gradLogprobs[i]], [centralDiff(f, x, i)], 1e-6, 5e-7, `gradLogprobs[${i}] vs finite differences`);
          }
        }
      },
    };
  },
};

const vespoPolicyLoss: ExportSpec<SeqCase> = {
  name: 'vespoPolicyLoss', sync: rk.vespoPolicyLoss as never, async: rk.vespoPolicyLossAsync as never, arb: seqCase,
  build(c) {
    const { n, lp, old, adv, mask, arrays } = seqPolicyInputs(c, 0.1);
    const o = opts({ seqLen: c.T, aggregation: c.aggregation, normalizer: c.normalizer });
    const ro = { aggregation: c.aggregation, normalizer: c.normalizer };
    return {
      args: [lp, old, adv, mask, o], optionsAt: 4, optionsRequired: true, arrays: arrays('oldLogprobs') as never,
      options: present(o, [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'aggregation', bad: bad.enumOf() },
        { key: 'normalizer', bad: bad.pos() }]),
      check(res) {
        const got = res as rk.VespoPolicyLossResult;
        const e = refVespo(lp, old, adv, mask, c.T, ro);
        closeTo(got.loss, e.loss, 9, 'loss');
        close(got.gradLogprobs, e.grad, 1e-6, 1e-9, 'gradLogprobs');
        closeTo(got.metrics.phi, e.phi, 9, 'phi');
        closeTo(got.metrics.ppoKl, e.ppoKl, 9, 'ppoKl');
        if (got.metrics.tokenCount !== e.tokenCount) throw new Error(`tokenCount ${got.metrics.tokenCount}, expected ${e.tokenCount}`);
        const f = (x: Float64Array) => refVespo(x, old, adv, mask, c.T, ro, lp).loss;
        const x = Float64Array.from(lp);
        for (let i = 0; i < n; i++) close([got.gradLogprobs[i]], [centralDiff(f, x, i)], 1e-6, 5e-7, `gradLogprobs[${i}] vs finite differences`);
      },
    };
  },
};

const covCase = fc.record({
  base: seqCase, ratio: opt(fc.constantFrom(0.05, 0.5, 1)), seedOpt: opt(fc.constantFrom(0, 5, 2 ** 40)),
  lb: opt(fc.constantFrom(-5, 0.1)), coef: opt(fc.constantFrom(0, 0.5, 3)),
});
type CovCase = typeof covCase extends fc.Arbitrary<infer T> ? T : never;

/** clipCovPolicyLoss / klCovPolicyLoss: the selection and the loss against the reference. */
function covSpec(name: 'clipCovPolicyLoss' | 'klCovPolicyLoss'): ExportSpec<CovCase> {
  const clip = name === 'clipCovPolicyLoss';
  return {
    name, sync: rk[name] as never, async: rk[`${name}Async`] as never, arb: covCase,
    build(cc) {
      const c = cc.base;
      const { lp, old, adv, mask, arrays } = seqPolicyInputs(c, 0.3);
      const o = clip
        ? opts({ seqLen: c.T, aggregation: c.aggregation, normalizer: c.normalizer, epsilonLow: c.epsilonLow, epsilonHigh: c.epsilonHigh,
          clipCovRatio: cc.ratio, clipCovLb: cc.lb, seed: cc.seedOpt })
        : opts({ seqLen: c.T, aggregation: c.aggregation, normalizer: c.normalizer, klCovRatio: cc.ratio, ppoKlCoef: cc.coef });
      const sites: OptionSite[] = [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'aggregation', bad: bad.enumOf() },
        { key: 'normalizer', bad: bad.pos() }];
      if (clip) {
        sites.push({ key: 'epsilonLow', bad: bad.range(0, Infinity) }, { key: 'epsilonHigh', bad: bad.range(0, Infinity) },
          { key: 'clipCovRatio', bad: [0, ...bad.range(0, 1)] }, { key: 'clipCovLb', bad: bad.any() },
          { key: 'seed', bad: [-1, 1.5, Number.NaN, '1', null] });
      } else {
        sites.push({ key: 'klCovRatio', bad: [0, ...bad.range(0, 1)] }, { key: 'ppoKlCoef', bad: bad.any() });
      }
      const ro = {
        mode: clip ? 'clip-cov' : 'kl-cov', epsilonLow: c.epsilonLow, epsilonHigh: c.epsilonHigh, ratio: cc.ratio, lb: cc.lb,
        seed: cc.seedOpt, klCoef: cc.coef, aggregation: c.aggregation, normalizer: c.normalizer,
      } as const;
      return {
        args: [lp, old, adv, mask, o], optionsAt: 4, optionsRequired: true, arrays: arrays('oldLogprobs') as never,
        options: present(o, sites),
        check(res) {
          const got = res as rk.ClipCovPolicyLossResult & rk.KlCovPolicyLossResult;
          const e = refCovPolicyLoss(lp, old, adv, mask, c.T, ro);
          for (let i = 0; i < e.selected.length; i++) {
            if (got.selected[i] !== e.selected[i]) throw new Error(`selected[${i}] ${got.selected[i]}, expected ${e.selected[i]}`);
          }
          close([got.loss], [e.loss], 1e-10, 1e-10, 'loss');
          closeTo(clip ? got.metrics.clipFraction : got.metrics.selectedFraction, e.fraction, 12, 'fraction');
          closeTo(got.metrics.ppoKl, e.ppoKl, 9, 'ppoKl');
          if (got.metrics.selectedCount !== e.selectedCount) throw new Error(`selectedCount ${got.metrics.selectedCount}, expected ${e.selectedCount}`);
          if (got.metrics.tokenCount !== e.tokenCount) throw new Error(`tokenCount ${got.metrics.tokenCount}, expected ${e.tokenCount}`);
        },
      };
    },
  };
}
const clipCovPolicyLoss = covSpec('clipCovPolicyLoss');
const klCovPolicyLoss = covSpec('klCovPolicyLoss');

const entropyCase = fc.record({ base: seqCase, q: fc.constantFrom(0, 0.01, 0.2, 0.5, 0.9, 1), ties: fc.boolean() });
type EntropyCase = typeof entropyCase extends fc.Arbitrary<infer T> ? T : never;
const highEntropyMask: ExportSpec<EntropyCase> = {
  name: 'highEntropyMask', sync: rk.highEntropyMask as never, async: rk.highEntropyMaskAsync as never, arb: entropyCase,
  build(ec) {
    const c = ec.base, n = c.B * c.T;
    const entropy = randn(n, 2, c.seed).map((x) => (ec.ties ? Math.round(Math.abs(x)) : Math.abs(x)));
    const mask = seqMaskOf(c);
    const o = { topQuantile: ec.q };
    return {
      args: [entropy, mask, o], optionsAt: 2, optionsRequired: true,
      arrays: [{ name: 'entropy', at: { arg: 0 }, lead: true }, { name: 'mask', at: { arg: 1 }, nullable: true }],
      options: [{ key: 'topQuantile', bad: bad.range(0, 1), required: true }],
      check(res) {
        const got = res as rk.HighEntropyMaskResult;
        const e = refHighEntropyMask(entropy, mask, ec.q);
        for (let i = 0; i < n; i++) if (got.mask[i] !== e.mask[i]) throw new Error(`mask[${i}] ${got.mask[i]}, expected ${e.mask[i]}`);
        if (!Object.is(got.threshold, e.threshold)) throw new Error(`threshold ${got.threshold}, expected ${e.threshold}`);
        if (got.count !== e.count) throw new Error(`count ${got.count}, expected ${e.count}`);
      },
    };
  },
};

const truncCase = fc.record({ base: seqCase, pad: opt(fc.constantFrom(0, 2, 9)) });
type TruncCase = typeof truncCase extends fc.Arbitrary<infer T> ? T : never;
const maskTruncatedCompletions: ExportSpec<TruncCase> = {
  name: 'maskTruncatedCompletions', sync: rk.maskTruncatedCompletions as never, async: rk.maskTruncatedCompletionsAsync as never, arb: truncCase,
  build(tc) {
    const c = tc.base, n = c.B * c.T, r = rng(c.seed + 9);
    const ids = Int32Array.from({ length: n }, () => Math.floor(r() * 4));
    const mask = seqMaskOf(c);
    const o = opts({ seqLen: c.T, eosTokenId: 1, padTokenId: tc.pad });
    return {
      args: [ids, mask, o], optionsAt: 2, optionsRequired: true,
      arrays: [{ name: 'completionIds', at: { arg: 0 }, lead: true }, { name: 'mask', at: { arg: 1 }, nullable: true }],
      options: present(o, [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'eosTokenId', bad: bad.int(0), required: true },
        { key: 'padTokenId', bad: bad.int(-1) }]),
      check(res) {
        const got = res as rk.MaskTruncatedCompletionsResult;
        const e = refMaskTruncated(ids, mask, c.T, 1, tc.pad ?? -1);
        close(got.mask, e.mask, 0, 0, 'mask');
        close(got.truncated, e.truncated, 0, 0, 'truncated');
      },
    };
  },
};

// preferenceLoss / ktoLoss / tokenWeightedDpoLoss ---------------------------------------------------

const LOSS_NAMES = ['sigmoid', 'robust', 'hinge', 'ipo', 'exo_pair', 'nca_pair', 'bco_pair', 'sppo_hard', 'apo_zero', 'apo_down',
  'discopop', 'simpo', 'cpo', 'orpo', 'bt', 'sigmoid_norm', 'aot', 'aot_unpaired', 'sft'] as const;
const SMOOTHED = new Set(['sigmoid', 'robust', 'exo_pair', 'simpo', 'cpo', 'bt', 'aot', 'aot_unpaired']);
const FDIV = new Set(['sigmoid', 'robust', 'hinge', 'ipo', 'exo_pair', 'discopop', 'sigmoid_norm']);
const REF_FREE = new Set(['simpo', 'cpo', 'orpo', 'bt']);

const prefCase = fc.record({
  P: fc.integer({ min: 1, max: 8 }), loss: opt(fc.constantFrom(...LOSS_NAMES)), withRef: fc.boolean(),
  beta: opt(fc.constantFrom(0.1, 0.3, 1)), labelSmoothing: opt(fc.constantFrom(0, 0.1, 0.25)),
  fDivergence: opt(fc.constantFrom('reverse_kl', 'forward_kl', 'js_divergence', 'alpha_divergence')), fAlpha: opt(fc.constantFrom(0.5, 1, 2)),
  gamma: opt(fc.constantFrom(0, 0.5, 1)), alpha: opt(fc.constantFrom(0, 1, 0.5)), tau: opt(fc.constantFrom(0.05, 0.5)),
  nllWeight: opt(fc.constantFrom(0, 0.3)), margin: fc.constantFrom('none', 'number', 'array'), soft: fc.boolean(), seed,
});
const preferenceLoss: ExportSpec<typeof prefCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'preferenceLoss', sync: rk.preferenceLoss as never, async: rk.preferenceLossAsync as never, arb: prefCase,
  build(c) {
    const loss = c.loss ?? 'sigmoid';
    const P = c.P, r = rng(c.seed);
    // the preference test's pairs: negative sums, lengths 1..64, average log-probs in about (-3, -0.05)
    const cLen = Int32Array.from({ length: P }, () => 1 + Math.floor(r() * 64)), rLen = Int32Array.from({ length: P }, () => 1 + Math.floor(r() * 64));
    const nw = randn(P, 1, c.seed + 1), nl = randn(P, 1, c.seed + 2), dw = randn(P, 4, c.seed + 3), dl = randn(P, 4, c.seed + 4);
    const chosen = new Float32Array(P), rejected = new Float32Array(P), refC = new Float32Array(P), refR = new Float32Array(P);
    for (let i = 0; i < P; i++) {
      refC[i] = -cLen[i] * (0.3 + 2 * r());
      refR[i] = -rLen[i] * (0.3 + 2 * r());
      chosen[i] = Math.min(refC[i] + dw[i] + nw[i], -0.05 * cLen[i]);
      rejected[i] = Math.min(refR[i] + dl[i] + nl[i], -0.05 * rLen[i]);
    }
    const bt = loss === 'bt';
    const withRef = c.withRef && !REF_FREE.has(loss);
    const soft = bt && c.soft;
    const labelSmoothing = SMOOTHED.has(loss) && !soft ? c.labelSmoothing : undefined;
    // f-divergences only on log-ratios (with references), as the family tests: on raw log-prob sums
    // (-100s) e^-u hits the cap, where the loss is ~FLT_MAX and the float64 reference's finite
    // differences lose the gradient (the analytic one is right, e.g. 0.6047 for rho = -1.8).
    const fDivergence = FDIV.has(loss) && withRef ? c.fDivergence : undefined;
    const nllWeight = bt ? undefined : c.nllWeight;
    const alpha = loss === 'cpo' ? c.alpha : undefined;
    const needLengths = loss === 'ipo' || loss === 'simpo' || loss === 'orpo' || loss === 'sigmoid_norm' || loss === 'sft' || (loss === 'cpo' && (alpha ?? 1) !== 0) || (nllWeight ?? 0) !== 0;
    const margin = !bt || c.margin === 'none' ? undefined : c.margin === 'number' ? 0.5 : randn(P, 1, c.seed + 5);
    const preferenceProb = soft ? Float32Array.from(randn(P, 1, c.seed + 6), (v) => 1 / (1 + Math.exp(-v))) : undefined;
    const o = opts({
      lossType: c.loss, beta: c.beta, labelSmoothing, fDivergence, fAlpha: fDivergence === 'alpha_divergence' ? c.fAlpha : undefined,
      gamma: loss === 'simpo' ? c.gamma : undefined, alpha, tau: loss === 'discopop' ? c.tau : undefined, nllWeight,
      refChosenLogps: withRef ? refC : undefined, refRejectedLogps: withRef ? refR : undefined,
      chosenLengths: needLengths ? cLen : undefined, rejectedLengths: needLengths ? rLen : undefined, margin, preferenceProb,
    });
    const arrays: ArraySite[] = [{ name: 'chosenLogps', at: { arg: 0 }, lead: true }, { name: 'rejectedLogps', at: { arg: 1 } }];
    for (const k of ['refChosenLogps', 'refRejectedLogps', 'chosenLengths', 'rejectedLengths', 'preferenceProb']) {
      if (o[k] !== undefined) arrays.push({ name: `options.${k}`, at: { opt: k }, nullable: true });
    }
    if (margin instanceof Float32Array) arrays.push({ name: 'options.margin', at: { opt: 'margin' }, nullable: true });
    const sites: OptionSite[] = [
      { key: 'lossType', bad: bad.enumOf() }, { key: 'beta', bad: bad.pos() }, { key: 'labelSmoothing', bad: [-0.1, 0.5, 0.7, Number.NaN, '0.1'] },
      { key: 'fDivergence', bad: bad.enumOf() }, { key: 'fAlpha', bad: bad.pos() }, { key: 'gamma', bad: bad.any() },
      { key: 'alpha', bad: bad.range(0, Infinity) }, { key: 'tau', bad: bad.pos() }, { key: 'nllWeight', bad: bad.range(0, Infinity) },
    ];
    if (typeof margin === 'number') sites.push({ key: 'margin', bad: [Number.NaN, Number.POSITIVE_INFINITY] });
    const refOpts: RefPreferenceOptions = {
      loss, beta: c.beta ?? (loss === 'simpo' ? 2 : 0.1), labelSmoothing, gamma: c.gamma ?? 0.5, alpha: alpha ?? 1, tau: c.tau ?? 0.05,
      nllWeight, fDivergence, fAlpha: o.fAlpha as number | undefined,
    };
    const refIn = (w: ArrayLike<number>, l: ArrayLike<number>) => ({
      chosen: w, rejected: l, refChosen: withRef ? refC : undefined, refRejected: withRef ? refR : undefined,
      chosenLengths: needLengths ? cLen : undefined, rejectedLengths: needLengths ? rLen : undefined, margin, preferenceProb,
    });
    return {
      args: [chosen, rejected, o], optionsAt: 2, optionsRequired: false, arrays, options: present(o, sites),
      check(res) {
        const got = res as rk.PreferenceLossResult;
        const e = refPreferenceLoss(refIn(chosen, rejected), refOpts);
        close(got.losses, e.losses, 1e-5, 1e-7, 'losses');
        close([got.loss], [e.loss], 1e-9, 1e-12, 'loss');
        close(got.chosenRewards, e.chosenRewards, 1e-6, 1e-7, 'chosenRewards');
        close(got.rejectedRewards, e.rejectedRewards, 1e-6, 1e-7, 'rejectedRewards');
        closeTo(got.metrics.rewardAccuracy, e.rewardAccuracy, 12, 'rewardAccuracy');
        close([got.metrics.rewardMargin], [e.rewardMargin], 1e-9, 1e-12, 'rewardMargin');
        const cw = Float64Array.from(chosen), cl = Float64Array.from(rejected);
        // A relative step of 1e-7: the f-divergences' exponentials curve fast enough at log-prob sums
        // near -100 that 1e-6 steps (1e-4 absolute) miss the derivative by 3e-5 (seed 861597016:
        // exo_pair, alpha_divergence, fAlpha 2; the kernel's 160.46411 is the h -> 0 limit).
        const gw = fdGrad((v) => refPreferenceLoss(refIn(v, cl), refOpts).loss, cw, 1e-7);
        const gl = fdGrad((v) => refPreferenceLoss(refIn(cw, v), refOpts).loss, cl, 1e-7);
        // the family test's 1e-7 of the largest entry, plus what central differences of the float64
        // loss resolve at all: log-prob sums reach -200 (steps of 2e-4), and saturated pairs have
        // gradients of 1e-11 to 1e-23 that the differences of their losses round away
        const scale = Math.max(maxAbs(gw), maxAbs(gl));
        const floor = 1e-9 * Math.max(1, Math.abs(e.loss));
        close(got.gradChosen, gw, 1e-5, 1e-7 * scale + floor, 'gradChosen');
        close(got.gradRejected, gl, 1e-5, 1e-7 * scale + floor, 'gradRejected');
      },
    };
  },
};

const ktoCase = fc.record({
  n: fc.integer({ min: 1, max: 16 }), kl: fc.constantFrom(0, 0.05, 0.2, -0.1), withRef: fc.boolean(), beta: opt(fc.constantFrom(0.1, 0.3, 0.5)),
  dw: opt(fc.constantFrom(0, 0.7, 1.33)), uw: opt(fc.constantFrom(0, 0.7, 1.33)), p: fc.constantFrom(0, 0.3, 0.7, 1), seed,
});
const ktoLoss: ExportSpec<typeof ktoCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'ktoLoss', sync: rk.ktoLoss as never, async: rk.ktoLossAsync as never, arb: ktoCase,
  build(c) {
    const logp = randn(c.n, 3, c.seed), ref = c.withRef ? randn(c.n, 3, c.seed + 1) : undefined;
    const desirable = u8mask(c.n, c.p, c.seed + 2);
    const o = opts({ desirable, kl: c.kl, refLogps: ref, beta: c.beta, desirableWeight: c.dw, undesirableWeight: c.uw });
    const ro = { beta: c.beta ?? 0.1, kl: c.kl, desirableWeight: c.dw, undesirableWeight: c.uw };
    return {
      args: [logp, o], optionsAt: 1, optionsRequired: true,
      arrays: [{ name: 'policyLogps', at: { arg: 0 }, lead: true }, { name: 'options.desirable', at: { opt: 'desirable' } },
        ...(ref ? [{ name: 'options.refLogps', at: { opt: 'refLogps' }, nullable: true }] : [])],
      options: present(o, [{ key: 'kl', bad: bad.any(), required: true }, { key: 'beta', bad: bad.pos() },
        { key: 'desirableWeight', bad: bad.range(0, Infinity) }, { key: 'undesirableWeight', bad: bad.range(0, Infinity) }]),
      check(res) {
        const got = res as rk.KtoLossResult;
        const e = refKtoLoss(logp, ref, desirable, ro);
        close(got.losses, e.losses, 1e-5, 1e-7, 'losses');
        close(got.rewards, e.rewards, 1e-6, 1e-7, 'rewards');
        close([got.loss, got.metrics.desirableRewardMean, got.metrics.undesirableRewardMean], [e.loss, e.desirableRewardMean, e.undesirableRewardMean], 1e-9, 1e-12, 'scalars');
        close(got.grad, fdGrad((v) => refKtoLoss(v, ref, desirable, ro).loss, logp), 1e-5, 1e-9, 'grad');
      },
    };
  },
};

const tgCase = fc.record({
  B: fc.integer({ min: 1, max: 4 }), T: fc.integer({ min: 1, max: 7 }), f32: fc.boolean(),
  beta: opt(fc.constantFrom(0.1, 0.5)), alpha: opt(fc.constantFrom(0.5, 1, -0.5)), seed,
});
const tokenWeightedDpoLoss: ExportSpec<typeof tgCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'tokenWeightedDpoLoss', sync: rk.tokenWeightedDpoLoss as never, async: rk.tokenWeightedDpoLossAsync as never, arb: tgCase,
  build(c) {
    const NT = c.B * c.T, s = c.seed;
    const chosen = randn(NT, 1, s), rejected = randn(NT, 1, s + 1), refC = randn(NT, 1, s + 2), refR = randn(NT, 1, s + 3);
    const rw = randn(NT, 2, s + 4), rl = randn(NT, 2, s + 5);
    const r = rng(s + 6);
    const lens = () => Array.from({ length: c.B }, () => 1 + Math.floor(r() * c.T));
    const lw = lens(), ll = lens();
    const mk = (l: number[], w: number) => {
      const m = Uint8Array.from({ length: NT }, (_, i) => (i % c.T < l[Math.floor(i / c.T)] ? 1 : 0));
      return c.f32 ? Float32Array.from(m, (v, i) => v * (w + (i % 3) / 4)) : m;
    };
    const mw = mk(lw, 0.5), ml = mk(ll, 0.8);
    const o = opts({ seqLen: c.T, refChosenLogps: refC, refRejectedLogps: refR, chosenTokenRewards: rw, rejectedTokenRewards: rl, beta: c.beta, alpha: c.alpha });
    const beta = c.beta ?? 0.1, alpha = c.alpha ?? 0.5;
    const refIn = (w: ArrayLike<number>, l: ArrayLike<number>) => ({
      chosen: w, rejected: l, refChosen: refC, refRejected: refR, chosenTokenRewards: rw, rejectedTokenRewards: rl, chosenMask: mw, rejectedMask: ml,
    });
    return {
      args: [chosen, rejected, mw, ml, o], optionsAt: 4, optionsRequired: true,
      arrays: [{ name: 'chosenLogps', at: { arg: 0 }, lead: true }, { name: 'rejectedLogps', at: { arg: 1 } },
        { name: 'chosenMask', at: { arg: 2 }, nullable: true }, { name: 'rejectedMask', at: { arg: 3 }, nullable: true },
        ...['refChosenLogps', 'refRejectedLogps', 'chosenTokenRewards', 'rejectedTokenRewards'].map((k) => ({ name: `options.${k}`, at: { opt: k } }))],
      options: present(o, [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'beta', bad: bad.pos() }, { key: 'alpha', bad: bad.any() }]),
      check(res) {
        const got = res as rk.TokenWeightedDpoResult;
        const e = refTokenWeightedDpo(refIn(chosen, rejected), c.T, beta, alpha);
        close(got.losses, e.losses, 1e-5, 1e-7, 'losses');
        close(got.chosenRewards, e.chosenRewards, 1e-5, 1e-7, 'chosenRewards');
        close(got.rejectedRewards, e.rejectedRewards, 1e-5, 1e-7, 'rejectedRewards');
        close([got.loss], [e.loss], 1e-9, 1e-12, 'loss');
        let acc = 0, margin = 0;
        for (let b = 0; b < c.B; b++) {
          acc += e.chosenRewards[b] > e.rejectedRewards[b] ? 1 : 0;
          margin += e.chosenRewards[b] - e.rejectedRewards[b];
        }
        closeTo(got.metrics.rewardAccuracy, acc / c.B, 12, 'rewardAccuracy');
        closeTo(got.metrics.rewardMargin, margin / c.B, 9, 'rewardMargin');
        const cw = Float64Array.from(chosen), cl = Float64Array.from(rejected);
        close(got.gradChosen, fdGrad((v) => refTokenWeightedDpo(refIn(v, cl), c.T, beta, alpha).loss, cw), 1e-5, 1e-9, 'gradChosen');
        close(got.gradRejected, fdGrad((v) => refTokenWeightedDpo(refIn(cw, v), c.T, beta, alpha).loss, cl), 1e-5, 1e-9, 'gradRejected');
      },
    };
  },
};

const ldCase = fc.record({
  P: fc.integer({ min: 1, max: 5 }), T: fc.integer({ min: 1, max: 9 }), masks: fc.constantFrom('both', 'none', 'chosen'),
  alpha: fc.constantFrom(0, 0.25, 0.5, 1), weights: fc.boolean(), seed,
});
const ldDpoLogps: ExportSpec<typeof ldCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'ldDpoLogps', sync: rk.ldDpoLogps as never, async: rk.ldDpoLogpsAsync as never, arb: ldCase,
  build(c) {
    const n = c.P * c.T;
    const chosen = randn(n, 1, c.seed).map((v) => -Math.abs(v)), rejected = randn(n, 1, c.seed + 1).map((v) => -Math.abs(v));
    const mw = c.masks === 'none' ? null : u8mask(n, 0.7, c.seed + 2), ml = c.masks === 'both' ? u8mask(n, 0.7, c.seed + 3) : null;
    const o = opts({ seqLen: c.T, alpha: c.alpha, returnWeights: c.weights || undefined });
    return {
      args: [chosen, rejected, mw, ml, o], optionsAt: 4, optionsRequired: true,
      arrays: [{ name: 'chosenTokenLogps', at: { arg: 0 }, lead: true }, { name: 'rejectedTokenLogps', at: { arg: 1 } },
        { name: 'chosenMask', at: { arg: 2 }, nullable: true }, { name: 'rejectedMask', at: { arg: 3 }, nullable: true }],
      options: present(o, [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'alpha', bad: bad.range(0, 1), required: true },
        { key: 'returnWeights', bad: bad.flag() }]),
      check(res) {
        const got = res as rk.LdDpoLogpsResult;
        const e = refLdDpoLogps(chosen, rejected, mw, ml, c.T, c.alpha);
        close(got.chosenLogps, e.chosen, 1e-6, 1e-6, 'chosenLogps');
        close(got.rejectedLogps, e.rejected, 1e-6, 1e-6, 'rejectedLogps');
        if (!c.weights) return;
        for (const [side, w] of [['chosen', got.chosenWeights!], ['rejected', got.rejectedWeights!]] as const) {
          const base = Float64Array.from(side === 'chosen' ? chosen : rejected);
          const f = (v: Float64Array) => {
            const r = side === 'chosen' ? refLdDpoLogps(v, rejected, mw, ml, c.T, c.alpha) : refLdDpoLogps(chosen, v, mw, ml, c.T, c.alpha);
            return Array.from(r[side]).reduce((a, b) => a + b, 0); // the weights of row b only touch row b
          };
          close(w, fdGrad(f, base), 1e-5, 1e-7, `${side}Weights`);
        }
      },
    };
  },
};

// advantages ---------------------------------------------------------------------------------------

const advClose = (a: ArrayLike<number>, e: ArrayLike<number>, label: string) => close(a, e, 1e-5, 1e-7 * maxAbs(e) + 1e-35, label);
/** Half the cases take the native path, half the TypeScript small-input path (when the op has one). */
const pathSwitch = (native: boolean) => () => {
  const old = _setSmallPathThreshold(native ? 0 : 1 << 20);
  return () => void _setSmallPathThreshold(old);
};

const EST = ['grpo', 'rloo', 'reinforce_pp_baseline', 'opo', 'passk', 'bnpo'] as const;
const groupCase = fc.record({
  G: fc.integer({ min: 1, max: 6 }), groups: fc.integer({ min: 1, max: 5 }), K: fc.constantFrom(1, 1, 2, 3), ids: fc.boolean(),
  estimator: opt(fc.constantFrom(...EST)), scale: opt(fc.constantFrom('group', 'batch', 'none')), eps: opt(fc.constantFrom(0, 1e-6, 1e-4, 0.1)),
  weights: fc.boolean(), gdpo: fc.boolean(), nan: fc.constantFrom(0, 0, 0.1), equal: fc.boolean(), native: fc.boolean(), seed,
});
const groupAdvantages: ExportSpec<typeof groupCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'groupAdvantages', sync: rk.groupAdvantages as never, async: rk.groupAdvantagesAsync as never, arb: groupCase,
  build(c) {
    const est = c.estimator ?? 'grpo';
    const G = est === 'passk' ? Math.max(2, c.G) : c.G;
    const n = G * c.groups, K = c.K;
    const r = randn(n * K, 1, c.seed), u = rng(c.seed + 1);
    if (est === 'bnpo') for (let i = 0; i < r.length; i++) r[i] = u() < 0.4 ? 1 : 0;
    if (c.equal) for (let j = 0; j < G * K; j++) r[j] = r[j % K];
    for (let i = 0; i < r.length; i++) if (u() < c.nan) r[i] = Number.NaN;
    let groupIds: Int32Array | undefined;
    if (c.ids) {
      // a permutation of the groupSize layout: every group keeps G >= 1 (>= 2 for passk) members
      groupIds = Int32Array.from({ length: n }, (_, i) => Math.floor(i / G));
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(u() * (i + 1));
        [groupIds[i], groupIds[j]] = [groupIds[j], groupIds[i]];
      }
    }
    const lengths = est === 'opo' ? ints(n, 0, 50, c.seed + 2) : undefined;
    const rewardWeights = K > 1 && c.weights ? [0.5, -1.25, 2].slice(0, K) : undefined;
    const multiReward = K > 1 && est === 'grpo' && c.gdpo ? 'normalize_then_sum' : undefined;
    const bnpoBounds = est === 'bnpo' && K > 1; // a sum of K binary rewards needs its range
    const o = opts({
      groupSize: c.ids ? undefined : G, groupIds, estimator: c.estimator, scale: c.scale, eps: c.eps, numRewards: K > 1 ? K : undefined,
      rewardWeights, multiReward, lengths, rewardMin: bnpoBounds ? -3 : undefined, rewardMax: bnpoBounds ? 3 : undefined,
    });
    const arrays: ArraySite[] = [{ name: 'rewards', at: { arg: 0 }, lead: true }];
    if (groupIds) arrays.push({ name: 'options.groupIds', at: { opt: 'groupIds' }, nullable: true });
    if (lengths) arrays.push({ name: 'options.lengths', at: { opt: 'lengths' } });
    const sites: OptionSite[] = [
      { key: 'estimator', bad: bad.enumOf() }, { key: 'scale', bad: bad.enumOf() }, { key: 'eps', bad: bad.range(0, Infinity) },
      { key: 'numRewards', bad: [0, -1, 1.5, Number.NaN, 2 ** 31, '2', null] }, { key: 'multiReward', bad: bad.enumOf() },
      { key: 'rewardMin', bad: bad.any() }, { key: 'rewardMax', bad: [Number.NaN, -5, '3'] },
      ...(c.ids ? [] : [{ key: 'groupSize', bad: [0, -1, 1.5, Number.NaN, 2 ** 31, '2', null], required: true }]),
    ];
    return {
      args: [r, o], optionsAt: 1, optionsRequired: true, arrays, options: present(o, sites), before: pathSwitch(c.native),
      check(res) {
        const got = res as rk.GroupAdvantagesResult;
        const e = refGroupAdvantages(r, o as RefGroupOptions);
        // bnpo with every group's p_g equal (ties of binary rewards): var(p) is rounding noise, the
        // Beta fit degenerates (alpha, beta -> inf as var -> 0+, but 1 at var = 0) and neither the
        // kernel (A = 0, the var -> 0+ limit) nor the reference's Lanczos Beta pdf (1e6-capped
        // weights) is meaningful there: advantages are not compared (reported with the fuzz run).
        const ps = Array.from(e.groupMean).filter((v) => !Number.isNaN(v));
        const tied = est === 'bnpo' && ps.length >= 2 && Math.max(...ps) - Math.min(...ps) <= 1e-9;
        if (!tied) advClose(got.advantages, e.advantages, 'advantages');
        advClose(got.groupMean, e.groupMean, 'groupMean');
        advClose(got.groupStd, e.groupStd, 'groupStd');
        if (got.zeroStdGroups !== e.zeroStdGroups) throw new Error(`zeroStdGroups ${got.zeroStdGroups}, expected ${e.zeroStdGroups}`);
        const groups = e.groupMean.length / (multiReward ? K : 1);
        if (got.numGroups !== groups) throw new Error(`numGroups ${got.numGroups}, expected ${groups}`);
      },
    };
  },
};

const ensCase = fc.record({
  n: fc.integer({ min: 1, max: 12 }), M: fc.integer({ min: 1, max: 5 }), method: opt(fc.constantFrom('mean', 'min', 'uwo')),
  lambda: fc.constantFrom(0, 0.7, 2), nan: fc.constantFrom(0, 0.2), seed,
});
const ensembleRewards: ExportSpec<typeof ensCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'ensembleRewards', sync: rk.ensembleRewards as never, async: rk.ensembleRewardsAsync as never, arb: ensCase,
  build(c) {
    const r = randn(c.n * c.M, 1, c.seed), u = rng(c.seed + 1);
    for (let i = 0; i < r.length; i++) if (u() < c.nan) r[i] = Number.NaN;
    const uwo = c.method === 'uwo';
    const o = opts({ numModels: c.M, method: c.method, lambda: uwo ? c.lambda : undefined });
    return {
      args: [r, o], optionsAt: 1, optionsRequired: true, arrays: [{ name: 'rewards', at: { arg: 0 }, lead: true }],
      options: present(o, [{ key: 'numModels', bad: [0, -1, 1.5, Number.NaN, 2 ** 31, '2', null], required: true }, { key: 'method', bad: bad.enumOf() },
        ...(uwo ? [{ key: 'lambda', bad: bad.range(0, Infinity), required: true }] : [])]),
      check(res) {
        advClose(res as Float32Array, refEnsemble(r, c.M, c.method ?? 'mean', uwo ? c.lambda : 0), 'ensemble');
      },
    };
  },
};

const tokCase = fc.record({
  B: fc.integer({ min: 1, max: 6 }), T: fc.integer({ min: 1, max: 12 }), f32: fc.boolean(), gamma: opt(fc.constantFrom(0, 0.5, 0.9, 0.99, 1)),
  lambda: opt(fc.constantFrom(0, 0.8, 0.95, 1)), whiten: opt(fc.boolean()), p: fc.constantFrom(0.5, 0.8, 1), seed,
});
type TokCase = typeof tokCase extends fc.Arbitrary<infer T> ? T : never;
const tokMask = (c: TokCase) => (c.f32 ? f32mask(c.B * c.T, c.p, c.seed + 9) : u8mask(c.B * c.T, c.p, c.seed + 9));
const tokArrays = (names: string[]): ArraySite[] => names.map((name, i) => ({ name, at: { arg: i }, lead: i === 0, nullable: name === 'mask' }));

const gae: ExportSpec<TokCase> = {
  name: 'gae', sync: rk.gae as never, async: rk.gaeAsync as never, arb: tokCase,
  build(c) {
    const n = c.B * c.T;
    const values = randn(n, 1, c.seed), rewards = randn(n, 0.5, c.seed + 1), mask = tokMask(c);
    const o = opts({ seqLen: c.T, gamma: c.gamma, lambda: c.lambda, whiten: c.whiten });
    return {
      args: [values, rewards, mask, o], optionsAt: 3, optionsRequired: true, arrays: tokArrays(['values', 'rewards', 'mask']),
      options: present(o, [{ key: 'seqLen', bad: [0, -1, 1.5, Number.NaN, 2 ** 31, '2', null], required: true },
        { key: 'gamma', bad: bad.range(0, 1) }, { key: 'lambda', bad: bad.range(0, 1) }, { key: 'whiten', bad: bad.flag() }]),
      check(res) {
        const got = res as rk.GaeResult;
        const e = refGae(values, rewards, mask, c.T, c.gamma ?? 1, c.lambda ?? 1);
        advClose(got.returns, e.returns, 'returns');
        advClose(got.advantages, c.whiten ? refWhiten(Float32Array.from(e.advantages), mask) : e.advantages, 'advantages');
      },
    };
  },
};

const discountedReturns: ExportSpec<TokCase> = {
  name: 'discountedReturns', sync: rk.discountedReturns as never, async: rk.discountedReturnsAsync as never, arb: tokCase,
  build(c) {
    const rewards = randn(c.B * c.T, 1, c.seed), mask = tokMask(c);
    const o = opts({ seqLen: c.T, gamma: c.gamma });
    return {
      args: [rewards, mask, o], optionsAt: 2, optionsRequired: true, arrays: tokArrays(['rewards', 'mask']),
      options: present(o, [{ key: 'seqLen', bad: [0, -1, 1.5, Number.NaN, 2 ** 31, '2', null], required: true }, { key: 'gamma', bad: bad.range(0, 1) }]),
      check: (res) => advClose(res as Float32Array, refDiscounted(rewards, mask, c.T, c.gamma ?? 1), 'returns'),
    };
  },
};

// gatedRewards, discountedCumsum, lagrangianMix (docs/papers/) ----------------------------------

const gatedCase = fc.record({ ...{ B: fc.integer({ min: 1, max: 6 }), T: fc.integer({ min: 1, max: 12 }) }, f32: fc.boolean(), p: fc.constantFrom(0.5, 0.8, 1), none: fc.boolean(), threshold: fc.constantFrom(-1, 0, 0.3, 1), seed });
const gatedRewards: ExportSpec<typeof gatedCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'gatedRewards', sync: rk.gatedRewards as never, async: rk.gatedRewardsAsync as never, arb: gatedCase,
  build(c) {
    const high = randn(c.B, 1, c.seed), low = randn(c.B * c.T, 1, c.seed + 1);
    const mask = c.none ? null : c.f32 ? f32mask(c.B * c.T, c.p, c.seed + 9) : u8mask(c.B * c.T, c.p, c.seed + 9);
    const o = { seqLen: c.T, threshold: c.threshold };
    return {
      args: [high, low, mask, o], optionsAt: 3, optionsRequired: true,
      arrays: [{ name: 'highRewards', at: { arg: 0 } }, { name: 'lowRewards', at: { arg: 1 }, lead: true }, { name: 'mask', at: { arg: 2 }, nullable: true }],
      options: [{ key: 'seqLen', bad: [0, -1, 1.5, Number.NaN, 2 ** 31, '2', null], required: true }, { key: 'threshold', bad: bad.any(), required: true }],
      check: (res) => advClose(res as Float32Array, refGatedRewards(high, low, mask, c.T, c.threshold), 'gated'),
    };
  },
};

const cumsumCase = fc.record({ B: fc.integer({ min: 1, max: 6 }), T: fc.integer({ min: 1, max: 12 }), f32: fc.boolean(), p: fc.constantFrom(0.5, 0.8, 1), gamma: opt(fc.constantFrom(0, 0.5, 0.9, 1)), adjoint: opt(fc.boolean()), seed });
const discountedCumsum: ExportSpec<typeof cumsumCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'discountedCumsum', sync: rk.discountedCumsum as never, async: rk.discountedCumsumAsync as never, arb: cumsumCase,
  build(c) {
    const x = randn(c.B * c.T, 1, c.seed);
    const mask = c.f32 ? f32mask(c.B * c.T, c.p, c.seed + 9) : u8mask(c.B * c.T, c.p, c.seed + 9);
    const o = opts({ seqLen: c.T, gamma: c.gamma, adjoint: c.adjoint });
    return {
      args: [x, mask, o], optionsAt: 2, optionsRequired: true, arrays: tokArrays(['values', 'mask']),
      options: present(o, [{ key: 'seqLen', bad: [0, -1, 1.5, Number.NaN, 2 ** 31, '2', null], required: true }, { key: 'gamma', bad: bad.range(0, 1) }, { key: 'adjoint', bad: bad.flag() }]),
      check: (res) => {
        const e = refDiscountedCumsum(x, mask, c.T, c.gamma ?? 1, c.adjoint ?? false);
        close(res as Float32Array, e, 2e-7, 1e-7 * (maxAbs(e) + maxAbs(x)) + 1e-35, 'cumsum');
      },
    };
  },
};

const mixCase = fc.record({ K: fc.integer({ min: 1, max: 5 }), N: fc.integer({ min: 1, max: 40 }), grad: fc.boolean(), seed });
const lagrangianMix: ExportSpec<typeof mixCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'lagrangianMix', sync: rk.lagrangianMix as never, async: rk.lagrangianMixAsync as never, arb: mixCase,
  build(c) {
    const adv = randn(c.K * c.N, 1, c.seed), kl = randn(c.N, 1, c.seed + 1), xi = randn(c.K, 2, c.seed + 2), g = randn(c.N, 1, c.seed + 3);
    const o = opts({ numRewards: c.K, gradMixed: c.grad ? g : undefined });
    const arrays: ArraySite[] = [{ name: 'advantages', at: { arg: 0 }, lead: true }, { name: 'klAdvantages', at: { arg: 1 } }, { name: 'xi', at: { arg: 2 } }];
    if (c.grad) arrays.push({ name: 'options.gradMixed', at: { opt: 'gradMixed' }, nullable: true });
    return {
      args: [adv, kl, xi, o], optionsAt: 3, optionsRequired: true, arrays,
      options: [{ key: 'numRewards', bad: bad.int(1), required: true }],
      check: (res) => {
        const r = res as rk.LagrangianMixResult;
        const e = refLagrangianMix(adv, kl, xi);
        close(r.mixed, e, 2e-7, 1e-7 * (maxAbs(e) + c.K * maxAbs(adv)) + 1e-35, 'mixed');
        if (!c.grad) {
          if (r.gradXi !== null) throw new Error('gradXi: expected null without gradMixed');
        } else close(r.gradXi!, refLagrangianGradXi(adv, kl, xi, g), 1e-6, 1e-7 * c.N * maxAbs(adv), 'gradXi');
      },
    };
  },
};

const whitenCase = fc.record({
  n: fc.integer({ min: 1, max: 60 }), f32: fc.boolean(), p: fc.constantFrom(0, 0.3, 0.8, 1), shiftMean: opt(fc.boolean()),
  unbiased: opt(fc.boolean()), eps: opt(fc.constantFrom(0, 1e-8, 1e-3)), native: fc.boolean(), seed,
});
const maskedWhiten: ExportSpec<typeof whitenCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'maskedWhiten', sync: rk.maskedWhiten as never, async: rk.maskedWhitenAsync as never, arb: whitenCase,
  build(c) {
    const values = randn(c.n, 2, c.seed).map((v) => v + 1);
    const mask = c.f32 ? f32mask(c.n, c.p, c.seed + 1) : u8mask(c.n, c.p, c.seed + 1);
    const o = opts({ shiftMean: c.shiftMean, unbiased: c.unbiased, eps: c.eps });
    return {
      args: [values, mask, o], optionsAt: 2, optionsRequired: false, arrays: tokArrays(['values', 'mask']), before: pathSwitch(c.native),
      options: present(o, [{ key: 'shiftMean', bad: bad.flag() }, { key: 'unbiased', bad: bad.flag() }, { key: 'eps', bad: bad.range(0, Infinity) }]),
      check: (res) => advClose(res as Float32Array, refWhiten(values, mask, c.shiftMean ?? true, c.unbiased ?? true, c.eps ?? 1e-8), 'whitened'),
    };
  },
};

const tokAdvCase = fc.record({
  B: fc.integer({ min: 1, max: 7 }), T: fc.integer({ min: 1, max: 11 }), mask: maskKind,
  estimator: fc.constantFrom('reinforce_plus_plus', 'remax', 'optimal_token_baseline', 'tir_optimal_token_baseline') as fc.Arbitrary<rk.TokenAdvantageEstimator>,
  gamma: opt(fc.constantFrom(0, 0.9, 1)), byIds: fc.boolean(), is: fc.boolean(), tail: opt(fc.boolean()), eps: opt(fc.constantFrom(0, 1e-8, 1e-3)), seed,
});
const tokenAdvantages: ExportSpec<typeof tokAdvCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'tokenAdvantages', sync: rk.tokenAdvantages as never, async: rk.tokenAdvantagesAsync as never, arb: tokAdvCase,
  build(c) {
    const n = c.B * c.T, rewards = randn(n, 1, c.seed), mask = maskOf(c.mask, n, c.seed + 1);
    const otb = c.estimator !== 'reinforce_plus_plus' && c.estimator !== 'remax';
    const logprobs = uniform(n, -4, -0.01, c.seed + 2), sumPiSquared = uniform(n, 0, 1, c.seed + 3), isWeights = uniform(n, 0.5, 1.5, c.seed + 4);
    const baselines = randn(c.B, 1, c.seed + 5), groupIds = ints(c.B, 0, Math.max(1, c.B >> 1), c.seed + 6);
    const o = opts({
      seqLen: c.T, estimator: c.estimator, gamma: c.estimator === 'reinforce_plus_plus' ? c.gamma : undefined,
      baselines: c.estimator === 'remax' ? baselines : undefined,
      ...(otb ? { logprobs, sumPiSquared, isWeights: c.is ? isWeights : undefined, handleZeroTail: c.tail, eps: c.eps, ...(c.byIds ? { groupIds } : { groupSize: 1 }) } : {}),
    });
    const arrays: ArraySite[] = [{ name: 'rewards', at: { arg: 0 }, lead: true }, { name: 'mask', at: { arg: 1 }, nullable: true }];
    for (const k of ['baselines', 'logprobs', 'sumPiSquared', 'groupIds']) if (o[k] !== undefined) arrays.push({ name: `options.${k}`, at: { opt: k } });
    if (o.isWeights !== undefined) arrays.push({ name: 'options.isWeights', at: { opt: 'isWeights' }, nullable: true });
    return {
      args: [rewards, mask, o], optionsAt: 2, optionsRequired: true, arrays,
      options: present(o, [{ key: 'seqLen', bad: [0, -1, 1.5, Number.NaN, 2 ** 31, '2', null], required: true }, { key: 'estimator', bad: bad.enumOf(), required: true },
        { key: 'gamma', bad: bad.range(0, 1) }, { key: 'handleZeroTail', bad: bad.flag() }, { key: 'eps', bad: bad.range(0, Infinity) }]),
      check(res) {
        const got = res as rk.TokenAdvantagesResult;
        const ro = { groupIds: c.byIds ? groupIds : Int32Array.from({ length: c.B }, (_, b) => b), logprobs, sumPiSquared, isWeights: c.is ? isWeights : undefined,
          handleZeroTail: c.tail ?? c.estimator === 'tir_optimal_token_baseline', eps: c.eps ?? 1e-8 };
        const e = c.estimator === 'reinforce_plus_plus' ? refReinforcePP(rewards, mask, c.T, c.gamma ?? 1)
          : c.estimator === 'remax' ? refRemax(rewards, mask, c.T, baselines)
            : c.estimator === 'optimal_token_baseline' ? refOtb(rewards, mask, c.T, ro) : refTirOtb(rewards, mask, c.T, ro);
        advClose(got.returns, e.returns, 'returns');
        advClose(got.advantages, e.advantages, 'advantages');
      },
    };
  },
};

const klRewardsCase = fc.record({
  B: fc.integer({ min: 1, max: 6 }), T: fc.integer({ min: 1, max: 12 }), mask: maskKind,
  estimator: opt(fc.constantFrom('k1', 'k2', 'k3', 'abs', 'k3+') as fc.Arbitrary<'k1' | 'k2' | 'k3' | 'abs' | 'k3+'>), beta: fc.constantFrom(0, 0.001, 0.5, -1), seed,
});
const klRewards: ExportSpec<typeof klRewardsCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'klRewards', sync: rk.klRewards as never, async: rk.klRewardsAsync as never, arb: klRewardsCase,
  build(c) {
    const n = c.B * c.T, scores = randn(n, 1, c.seed), lp = uniform(n, -6, 0, c.seed + 1), ref = uniform(n, -30, 0, c.seed + 2);
    const mask = maskOf(c.mask, n, c.seed + 3);
    const o = opts({ seqLen: c.T, beta: c.beta, estimator: c.estimator });
    return {
      args: [scores, lp, ref, mask, o], optionsAt: 4, optionsRequired: true,
      arrays: [...tokArrays(['scores', 'logprobs', 'refLogprobs']), { name: 'mask', at: { arg: 3 }, nullable: true }],
      options: present(o, [{ key: 'seqLen', bad: [0, -1, 1.5, Number.NaN, 2 ** 31, '2', null], required: true }, { key: 'beta', bad: bad.any(), required: true },
        { key: 'estimator', bad: bad.enumOf() }]),
      check(res) {
        const got = res as rk.KlRewardsResult;
        const e = refKlRewards(scores, lp, ref, mask, c.T, c.beta, c.estimator ?? 'k1');
        advClose(got.rewards, e.rewards, 'rewards');
        advClose([got.klMean], [e.klMean], 'klMean');
      },
    };
  },
};

/** Every export with its Async form (lib/index.ts), in the order of the README. */
// rolloutCorrection ------------------------------------------------------------------------------

const RC_CRITERIA: RcCriterion[] = [
  'token_k1', 'token_k2', 'token_k3', 'seq_sum_k1', 'seq_sum_k2', 'seq_sum_k3',
  'seq_mean_k1', 'seq_mean_k2', 'seq_mean_k3', 'seq_max_k2', 'seq_max_k3',
];
const rcCase = fc.record({
  B: fc.integer({ min: 1, max: 5 }), T: fc.integer({ min: 1, max: 9 }), mask: maskKind, perToken: fc.boolean(),
  mode: opt(fc.constantFrom('token_truncate', 'token_mask', 'sequence_truncate', 'sequence_mask', 'none') as fc.Arbitrary<RefRcOptions['mode']>),
  clipMax: opt(fc.constantFrom(1.2, 2, 3, null)), clipMin: opt(fc.constantFrom(0, 0.5, 0.9)), batchNormalize: opt(fc.boolean()),
  delta: opt(fc.constantFrom(-0.05, 0, 0.02, 0.5)), criteria: fc.subarray(RC_CRITERIA, { maxLength: 3 }), seed,
});
const rolloutCorrection: ExportSpec<typeof rcCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'rolloutCorrection', sync: rk.rolloutCorrection as never, async: rk.rolloutCorrectionAsync as never, arb: rcCase,
  build(c) {
    const n = c.B * c.T;
    const trainer = randn(n, 1, c.seed).map((x) => -Math.abs(x) - 0.01), noise = randn(n, 1, c.seed + 1);
    const rollout = trainer.map((x, i) => x - 0.2 * noise[i]);
    const adv = c.delta === undefined ? null : randn(c.perToken ? n : c.B, 1, c.seed + 2);
    const mask = maskOf(c.mask, n, c.seed + 3);
    const weighted = c.mode !== 'none';
    const rejection: RefRcOptions['rejection'] = {};
    for (const k of c.criteria) rejection[k] = k.endsWith('k1') ? (k.startsWith('token') ? [0.8, 1.3] : 1.2) : k.startsWith('token') ? 0.02 : 0.1;
    const o = opts({
      seqLen: c.T, mode: c.mode, clipMax: weighted ? c.clipMax : undefined,
      clipMin: weighted && (c.clipMax === undefined || c.clipMax === null || (c.clipMin ?? 0) <= c.clipMax) ? c.clipMin : undefined,
      batchNormalize: weighted ? c.batchNormalize : undefined, offPolicyMaskThreshold: c.delta,
      rejection: c.criteria.length ? rejection : undefined,
    }) as Record<string, unknown>;
    const arrays: ArraySite[] = [
      { name: 'trainerLogprobs', at: { arg: 0 }, lead: true }, { name: 'rolloutLogprobs', at: { arg: 1 } },
      ...(adv ? [{ name: 'advantages', at: { arg: 2 }, lengths: [c.B, n] }] : []), { name: 'mask', at: { arg: 3 }, nullable: true },
    ];
    const sites: OptionSite[] = [
      { key: 'seqLen', bad: bad.int(1), required: true }, { key: 'mode', bad: bad.enumOf() },
      { key: 'clipMax', bad: [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '1'] }, { key: 'clipMin', bad: [-1, Number.NaN, Number.POSITIVE_INFINITY, '0.5', null] },
      { key: 'batchNormalize', bad: bad.flag() }, { key: 'offPolicyMaskThreshold', bad: bad.any() },
      { key: 'rejection', bad: ['token_k1', 3, [1]] },
    ];
    return {
      args: [trainer, rollout, adv, mask, o], optionsAt: 4, optionsRequired: true, arrays, options: present(o, sites),
      check(res) {
        const got = res as rk.RolloutCorrectionResult;
        const want = refRolloutCorrection(trainer, rollout, adv, mask, {
          seqLen: c.T, mode: c.mode ?? 'token_truncate', clipMin: (o.clipMin as number | undefined) ?? 0,
          clipMax: o.clipMax === undefined ? 2 : (o.clipMax as number | null), batchNormalize: (o.batchNormalize as boolean | undefined) ?? false,
          offPolicyMaskThreshold: c.delta, rejection,
        });
        if (want.weights) close(got.weights!, want.weights, 2e-7, 1e-30, 'weights');
        else if (got.weights !== undefined) throw new Error('weights returned without importance weights or the off-policy mask');
        close(got.mask, want.mask.map(Math.fround), 0, 0, 'mask');
        const names = Object.keys(want.metrics);
        if (Object.keys(got.metrics).sort().join() !== names.sort().join()) throw new Error(`metrics ${Object.keys(got.metrics)}, expected ${names}`);
        for (const k of names) {
          close([(got.metrics as unknown as Record<string, number>)[k]], [want.metrics[k]], 1e-9, k === 'isStd' ? 1e-7 : 1e-12, `metrics.${k}`);
        }
      },
    };
  },
};

// copoAdvantages / copoPolicyLoss (COPO) -----------------------------------------------------------

const COPO_GATES = ['only-soft', 'soft-with-forced', 'soft-with-zero', 'only-forced', 'only-zero', 'no-global', 'only-global'] as const;
const copoCase = fc.record({
  Q: fc.integer({ min: 1, max: 6 }), G: fc.integer({ min: 1, max: 9 }), classes: fc.integer({ min: 1, max: 4 }), ids: fc.boolean(),
  binary: fc.boolean(), gate: opt(fc.constantFrom(...COPO_GATES)), consistency: opt(fc.boolean()), byStd: opt(fc.boolean()),
  eps: opt(fc.constantFrom(0, 1e-6, 0.1)), k: opt(fc.constantFrom(1, 5, 20)), b: opt(fc.constantFrom(0, 0.5, 1)), seed,
});
const copoAdvantages: ExportSpec<typeof copoCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'copoAdvantages', sync: rk.copoAdvantages as never, async: rk.copoAdvantagesAsync as never, arb: copoCase,
  build(c) {
    const n = c.Q * c.G, u = rng(c.seed);
    const answers = Int32Array.from({ length: n }, () => Math.floor(u() * c.classes) * 1000003 - 7);
    const rewards = Float32Array.from({ length: n }, () => (c.binary ? (u() < 0.5 ? 1 : 0) : (u() - 0.4) * 3));
    let groupIds: Int32Array | undefined;
    if (c.ids) {
      groupIds = Int32Array.from({ length: n }, (_, i) => Math.floor(i / c.G));
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(u() * (i + 1));
        [groupIds[i], groupIds[j]] = [groupIds[j], groupIds[i]];
      }
    }
    const o = opts({
      groupSize: c.ids ? undefined : c.G, groupIds, gate: c.gate, scaleByConsistency: c.consistency, scaleByStd: c.byStd, eps: c.eps,
      softBlendingK: c.k, softBlendingB: c.b,
    });
    const arrays: ArraySite[] = [{ name: 'answerIds', at: { arg: 0 }, lead: true }, { name: 'rewards', at: { arg: 1 } }];
    if (groupIds) arrays.push({ name: 'options.groupIds', at: { opt: 'groupIds' } });
    return {
      args: [answers, rewards, o], optionsAt: 2, optionsRequired: true, arrays,
      options: present(o, [
        { key: 'gate', bad: bad.enumOf() }, { key: 'eps', bad: bad.range(0, Infinity) }, { key: 'softBlendingK', bad: bad.any() },
        { key: 'softBlendingB', bad: bad.any() }, { key: 'scaleByConsistency', bad: bad.flag() }, { key: 'scaleByStd', bad: bad.flag() },
        ...(c.ids ? [] : [{ key: 'groupSize', bad: [0, -1, 1.5, Number.NaN, 2 ** 31, '2', null], required: true }]),
      ]),
      check(res) {
        const got = res as rk.CopoAdvantagesResult;
        const e = refCopoAdvantages(answers, rewards, o);
        if (got.numGroups !== e.numGroups) throw new Error(`numGroups ${got.numGroups}, expected ${e.numGroups}`);
        for (const k of ['entropy', 'globalRewards', 'localAdvantages', 'globalAdvantages', 'gates'] as const) close(got[k], e[k], 2e-6, 2e-6, k);
      },
    };
  },
};

const copoPolicyLoss: ExportSpec<SeqCase> = {
  name: 'copoPolicyLoss', sync: rk.copoPolicyLoss as never, async: rk.copoPolicyLossAsync as never, arb: seqCase,
  build(c) {
    const { n, lp, old, adv, mask } = seqPolicyInputs(c, 0.5);
    const m = c.perToken ? n : c.B, u = rng(c.seed + 11);
    const ag = Float32Array.from({ length: m }, () => (u() - 0.5) * 3), gates = Float32Array.from({ length: m }, () => u());
    const o = opts({ seqLen: c.T, aggregation: c.aggregation, normalizer: c.normalizer, epsilonLow: c.epsilonLow, epsilonHigh: c.epsilonHigh,
      dualClip: c.clip === 2 ? 2 : undefined });
    return {
      args: [lp, old, adv, ag, gates, mask, o], optionsAt: 6, optionsRequired: true,
      arrays: [{ name: 'logprobs', at: { arg: 0 }, lead: true }, { name: 'oldLogprobs', at: { arg: 1 } },
        { name: 'localAdvantages', at: { arg: 2 }, lengths: [c.B, n] }, { name: 'globalAdvantages', at: { arg: 3 }, lengths: [c.B, n] },
        { name: 'gates', at: { arg: 4 }, lengths: [c.B, n] }, { name: 'mask', at: { arg: 5 }, nullable: true }],
      options: present(o, [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'aggregation', bad: bad.enumOf() },
        { key: 'normalizer', bad: bad.pos() }, { key: 'epsilonLow', bad: bad.range(0, 1) }, { key: 'epsilonHigh', bad: bad.range(0, Infinity) },
        { key: 'dualClip', bad: [1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, '3', null] }]),
      check(res) {
        const got = res as rk.CopoPolicyLossResult;
        const e = refCopoLoss(lp, old, adv, ag, gates, mask, c.T, o);
        closeTo(got.loss, e.loss, 10, 'loss');
        close(got.gradLogprobs, e.grad, 1e-6, 1e-9, 'gradLogprobs');
        for (const k of ['clipFraction', 'clipFractionLower', 'globalClipFraction', 'globalClipFractionLower', 'ppoKl'] as const) closeTo(got.metrics[k], e[k], 9, k);
        if (got.metrics.tokenCount !== e.tokenCount) throw new Error(`tokenCount ${got.metrics.tokenCount}, expected ${e.tokenCount}`);
      },
    };
  },
};

// paretoFront / rewardWeightUpdate / hypervolumeMetaReward / trajectoryBalanceLoss / orderPreservingLoss -----

const quarters = (n: number, seed: number) => randn(n, 1, seed).map((x) => Math.round(x * 4) / 4);
const mooCase = fc.record({ B: fc.integer({ min: 1, max: 9 }), K: fc.constantFrom(1, 2, 3, 5), ties: fc.boolean(), seed });
type MooCase = typeof mooCase extends fc.Arbitrary<infer T> ? T : never;
const paretoFront: ExportSpec<MooCase> = {
  name: 'paretoFront', sync: rk.paretoFront as never, async: rk.paretoFrontAsync as never, arb: mooCase,
  build(c) {
    const pts = c.ties ? quarters(c.B * c.K, c.seed) : randn(c.B * c.K, 1, c.seed);
    const o = { numObjectives: c.K };
    return {
      args: [pts, o], optionsAt: 1, optionsRequired: true,
      arrays: [{ name: 'points', at: { arg: 0 }, lead: true }],
      options: [{ key: 'numObjectives', bad: bad.int(1), required: true }],
      check(res) {
        const got = res as rk.ParetoFrontResult;
        const e = refParetoFront(pts, c.K);
        close(got.front, e, 0, 0, 'front');
        if (got.count !== e.reduce((a, x) => a + x, 0)) throw new Error(`count ${got.count}`);
      },
    };
  },
};

const rwCase = fc.record({ K: fc.constantFrom(1, 2, 3, 5), P: fc.constantFrom(1, 3, 257, 9000), mu: opt(fc.constantFrom(1e-5, 3e-4)), seed });
const rewardWeightUpdate: ExportSpec<typeof rwCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'rewardWeightUpdate', sync: rk.rewardWeightUpdate as never, async: rk.rewardWeightUpdateAsync as never, arb: rwCase,
  build(c) {
    const G = randn(c.K * c.P, 1e-2, c.seed);
    const w = uniform(c.K, 0.1, 1, c.seed + 1);
    const o = opts({ lr: 1e-7, mu: c.mu });
    return {
      args: [G, w, o], optionsAt: 2, optionsRequired: true,
      arrays: [{ name: 'grads', at: { arg: 0 }, lead: c.K === 1 }, { name: 'weights', at: { arg: 1 }, lead: true }],
      options: present(o, [{ key: 'lr', bad: bad.any(), required: true }, { key: 'mu', bad: bad.pos() }]),
      check(res) {
        const got = res as rk.RewardWeightUpdateResult;
        const e = refRewardWeightUpdate(G, w, 1e-7, c.mu ?? 1e-5);
        const gm = maxAbs(e.gram);
        close(got.gram, e.gram, 1e-6, 1e-7 * gm, 'gram');
        close(got.scores, e.scores, 1e-6, 1e-7 * gm * c.K, 'scores');
        close(got.weights, e.weights, 1e-6, 1e-7, 'weights');
      },
    };
  },
};

const hvCase = fc.record({ M: fc.integer({ min: 0, max: 6 }), K: fc.constantFrom(1, 2, 3, 5), N: fc.integer({ min: 0, max: 7 }), withRewards: fc.boolean(),
  maximize: fc.boolean(), seed });
const hypervolumeMetaReward: ExportSpec<typeof hvCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'hypervolumeMetaReward', sync: rk.hypervolumeMetaReward as never, async: rk.hypervolumeMetaRewardAsync as never, arb: hvCase,
  build(c) {
    const front = Float64Array.from(quarters(c.M * c.K, c.seed));
    const current = Float64Array.from(quarters(c.K, c.seed + 1));
    const reference = Float64Array.from(quarters(c.K, c.seed + 2)).map((x) => x - 1);
    const maximize = c.maximize ? Uint8Array.from({ length: c.K }, (_, k) => (k % 2 === 0 ? 1 : 0)) : undefined;
    const rewards = c.withRewards ? randn(c.N, 1, c.seed + 3) : null;
    const o = opts({ maximize });
    const arrays: ArraySite[] = [{ name: 'rewards', at: { arg: 0 }, nullable: true, lead: true }, { name: 'current', at: { arg: 1 }, lead: true },
      { name: 'front', at: { arg: 2 }, lead: true }, { name: 'reference', at: { arg: 3 } }];
    if (maximize) arrays.push({ name: 'options.maximize', at: { opt: 'maximize' }, nullable: true });
    return {
      args: [rewards, current, front, reference, o], optionsAt: 4, optionsRequired: false,
      arrays, options: [],
      check(res) {
        const got = res as rk.HypervolumeMetaRewardResult;
        const rows = Array.from({ length: c.M }, (_, i) => Array.from(front.subarray(i * c.K, (i + 1) * c.K)));
        const e = refHvMetaReward(rows, Array.from(current), Array.from(reference), Array.from({ length: c.K }, (_, k) => !maximize || maximize[k] === 1));
        close([got.hypervolume, got.hypervolumeBefore, got.hvContribution, got.metaReward], [e.withCur, e.without, e.contribution, e.meta], 1e-12, 1e-12, 'hv');
        if (rewards) close(got.rewards!, Array.from(rewards, (x) => x * e.meta), 1e-6, 0, 'rewards');
        else if (got.rewards !== null) throw new Error('rewards: expected null');
      },
    };
  },
};

const gfnCase = fc.record({ B: fc.integer({ min: 1, max: 6 }), T: fc.integer({ min: 1, max: 9 }), K: fc.constantFrom(1, 2, 3, 5), mask: maskKind,
  zrow: fc.boolean(), seed });
type GfnCase = typeof gfnCase extends fc.Arbitrary<infer T> ? T : never;
function gfnInputs(c: GfnCase) {
  const n = c.B * c.T;
  return {
    lpf: randn(n, 1, c.seed).map((x) => -Math.abs(x)), lpb: randn(n, 1, c.seed + 1).map((x) => -Math.abs(x)), logR: randn(c.B, 2, c.seed + 2),
    z: randn(c.zrow ? c.B : 1, 1, c.seed + 3), obj: quarters(c.B * c.K, c.seed + 4), mask: maskOf(c.mask, n, c.seed + 5),
  };
}
const gfnArrays = (c: GfnCase, third: string): ArraySite[] => [
  { name: 'logPF', at: { arg: 0 }, lead: true }, { name: 'logPB', at: { arg: 1 } }, { name: third, at: { arg: 2 } },
  { name: 'logZ', at: { arg: 3 }, lengths: [c.B, 1] }, { name: 'mask', at: { arg: 4 }, nullable: true },
];
const trajectoryBalanceLoss: ExportSpec<GfnCase> = {
  name: 'trajectoryBalanceLoss', sync: rk.trajectoryBalanceLoss as never, async: rk.trajectoryBalanceLossAsync as never, arb: gfnCase,
  build(c) {
    const d = gfnInputs(c);
    const o = { seqLen: c.T };
    return {
      args: [d.lpf, d.lpb, d.logR, d.z, d.mask, o], optionsAt: 5, optionsRequired: true,
      arrays: gfnArrays(c, 'logReward'), options: [{ key: 'seqLen', bad: bad.int(1), required: true }],
      check(res) {
        const got = res as rk.TrajectoryBalanceLossResult;
        const e = refTbLoss(d.lpf, d.lpb, d.logR, d.z, d.mask, c.T);
        const g = refStepGrads(e.g, d.mask, c.T, d.z.length);
        const gm = maxAbs(e.g);
        close([got.loss], [e.loss], 1e-9, 1e-12, 'loss');
        close(got.residuals, e.residuals, 1e-6, 1e-6, 'residuals');
        close(got.gradLogPF, g.pf, 1e-6, 3e-7 * gm, 'gradLogPF');
        close(got.gradLogPB, g.pb, 1e-6, 3e-7 * gm, 'gradLogPB');
        close(got.gradLogZ, g.z, 1e-6, 1e-7 * gm * c.B, 'gradLogZ');
      },
    };
  },
};
const orderPreservingLoss: ExportSpec<GfnCase> = {
  name: 'orderPreservingLoss', sync: rk.orderPreservingLoss as never, async: rk.orderPreservingLossAsync as never, arb: gfnCase,
  build(c) {
    const d = gfnInputs(c);
    const o = { seqLen: c.T, numObjectives: c.K };
    return {
      args: [d.lpf, d.lpb, d.obj, d.z, d.mask, o], optionsAt: 5, optionsRequired: true,
      arrays: gfnArrays(c, 'objectives'),
      options: [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'numObjectives', bad: bad.int(1), required: true }],
      check(res) {
        const got = res as rk.OrderPreservingLossResult;
        const e = refOpLoss(d.lpf, d.lpb, d.obj, d.z, d.mask, c.T, c.K);
        const g = refStepGrads(e.g, d.mask, c.T, d.z.length);
        close(got.front, e.front, 0, 0, 'front');
        if (got.frontSize !== e.nf) throw new Error(`frontSize ${got.frontSize}, expected ${e.nf}`);
        close([got.loss], [e.loss], 1e-9, 1e-9, 'loss');
        close(got.logRewardHat, e.r, 1e-6, 1e-6, 'logRewardHat');
        close(got.gradLogPF, g.pf, 1e-6, 1e-7, 'gradLogPF');
        close(got.gradLogPB, g.pb, 1e-6, 1e-7, 'gradLogPB');
        close(got.gradLogZ, g.z, 1e-6, 1e-7, 'gradLogZ');
      },
    };
  },
};

// gumbelSoftmax / gumbelSoftmaxBackward / drakesKl (DRAKES) -----------------------------------------

const gumbelCase = fc.record({
  N: fc.integer({ min: 1, max: 5 }),
  V: fc.integer({ min: 1, max: 40 }),
  dtype: fc.constantFrom('f32', 'bf16', 'f16') as fc.Arbitrary<'f32' | 'bf16' | 'f16'>,
  temperature: opt(fc.constantFrom(0.3, 1, 2)),
  noiseSeed: opt(fc.integer({ min: 0, max: 2 ** 40 })),
  hard: opt(fc.boolean()),
  seed,
});
const SEED_BAD = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', null];
const gumbelSoftmax: ExportSpec<typeof gumbelCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'gumbelSoftmax', sync: rk.gumbelSoftmax as never, async: rk.gumbelSoftmaxAsync as never, arb: gumbelCase,
  build(c) {
    const z = randn(c.N * c.V, 2, c.seed);
    const hz = c.dtype === 'f32' ? null : encodeHalf(z, c.dtype);
    const o = opts({ vocab: c.V, dtype: c.dtype === 'f32' ? undefined : c.dtype, temperature: c.temperature, seed: c.noiseSeed, hard: c.hard });
    const sites: OptionSite[] = [
      ...LOGITS_OPTIONS.filter((s) => s.key === 'vocab' || s.key === 'dtype' || s.key === 'temperature'),
      { key: 'seed', bad: SEED_BAD }, { key: 'hard', bad: bad.flag() },
    ];
    return {
      args: [hz ? hz.bits : z, o], optionsAt: 1, optionsRequired: true,
      arrays: [{ name: 'logits', at: { arg: 0 }, lead: true }], options: present(o, sites),
      check(res) {
        const r = res as rk.GumbelSoftmaxResult;
        const e = gumbelSoftmaxRef(hz ? hz.decoded : z, c.V, c.temperature ?? 1, c.noiseSeed ?? 0);
        close(r.index, e.index, 0, 0, 'index');
        if (c.hard) close(r.sample, Float64Array.from(r.sample, (_, i) => ((i % c.V) === e.index[Math.floor(i / c.V)] ? 1 : 0)), 0, 0, 'sample');
        else close(r.sample, e.y, 1e-5, 1e-9, 'sample');
      },
    };
  },
};
const gumbelSoftmaxBackward: ExportSpec<typeof gumbelCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'gumbelSoftmaxBackward', sync: rk.gumbelSoftmaxBackward as never, async: rk.gumbelSoftmaxBackwardAsync as never, arb: gumbelCase,
  build(c) {
    const z = randn(c.N * c.V, 2, c.seed), gs = randn(c.N * c.V, 1, c.seed + 1);
    const hz = c.dtype === 'f32' ? null : encodeHalf(z, c.dtype);
    const o = opts({ vocab: c.V, dtype: c.dtype === 'f32' ? undefined : c.dtype, temperature: c.temperature, seed: c.noiseSeed });
    const sites: OptionSite[] = [
      ...LOGITS_OPTIONS.filter((s) => s.key === 'vocab' || s.key === 'dtype' || s.key === 'temperature'),
      { key: 'seed', bad: SEED_BAD },
    ];
    return {
      args: [hz ? hz.bits : z, gs, o], optionsAt: 2, optionsRequired: true,
      arrays: [{ name: 'logits', at: { arg: 0 }, lead: true }, { name: 'gradSample', at: { arg: 1 } }], options: present(o, sites),
      check(res) {
        const r = res as rk.GumbelSoftmaxBackwardResult;
        const e = gumbelSoftmaxBackwardRef(hz ? hz.decoded : z, gs, c.V, c.temperature ?? 1, c.noiseSeed ?? 0);
        close(r.gradient, e, 1e-5, 1e-6 * maxAbs(e) + 1e-12, 'gradient');
      },
    };
  },
};

const drakesKlCase = fc.record({
  N: fc.integer({ min: 1, max: 5 }),
  V: fc.integer({ min: 1, max: 40 }),
  dtype: fc.constantFrom('f32', 'bf16', 'f16') as fc.Arbitrary<'f32' | 'bf16' | 'f16'>,
  mask: fc.boolean(),
  moveChance: fc.constantFrom('number', 'array'),
  gradient: fc.boolean(),
  oldGradient: fc.boolean(),
  gradOutput: fc.constantFrom('none', 'number', 'array'),
  seed,
});
const drakesKl: ExportSpec<typeof drakesKlCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'drakesKl', sync: rk.drakesKl as never, async: rk.drakesKlAsync as never, arb: drakesKlCase,
  build(c) {
    const n = c.N * c.V;
    const z = randn(n, 2, c.seed), zo = randn(n, 2, c.seed + 1);
    const hz = c.dtype === 'f32' ? null : encodeHalf(z, c.dtype), hzo = c.dtype === 'f32' ? null : encodeHalf(zo, c.dtype);
    const mask = c.mask ? u8mask(c.N, 0.7, c.seed + 3) : undefined;
    const moveChance = c.moveChance === 'number' ? 0.3 : Float32Array.from(randn(c.N, 0.5, c.seed + 5), (x) => 0.05 + Math.abs(x));
    const anyGrad = c.gradient || c.oldGradient;
    const gradOutput = !anyGrad || c.gradOutput === 'none' ? undefined : c.gradOutput === 'number' ? 0.75 : randn(c.N, 1, c.seed + 4);
    const o = opts({
      vocab: c.V, dtype: c.dtype === 'f32' ? undefined : c.dtype, moveChance, gradOutput,
      returnGradient: c.gradient ? true : undefined, returnOldGradient: c.oldGradient ? true : undefined,
    });
    const arrays: ArraySite[] = [{ name: 'logits', at: { arg: 0 }, lead: true }, { name: 'oldLogits', at: { arg: 1 } }];
    if (mask) arrays.push({ name: 'mask', at: { arg: 2 }, nullable: true });
    if (moveChance instanceof Float32Array) arrays.push({ name: 'options.moveChance', at: { opt: 'moveChance' } });
    if (gradOutput instanceof Float32Array) arrays.push({ name: 'options.gradOutput', at: { opt: 'gradOutput' }, nullable: true });
    const sites: OptionSite[] = [
      ...LOGITS_OPTIONS.filter((s) => s.key === 'vocab' || s.key === 'dtype'),
      { key: 'returnGradient', bad: bad.flag() }, { key: 'returnOldGradient', bad: bad.flag() },
    ];
    if (typeof moveChance === 'number') sites.push({ key: 'moveChance', bad: bad.pos(), required: true });
    if (typeof gradOutput === 'number') sites.push({ key: 'gradOutput', bad: [Number.NaN, Number.POSITIVE_INFINITY] });
    return {
      args: [hz ? hz.bits : z, hzo ? hzo.bits : zo, mask ?? null, o], optionsAt: 3, optionsRequired: true, arrays, options: present(o, sites),
      check(res) {
        const r = res as rk.DrakesKlResult;
        const e = drakesKlRef(hz ? hz.decoded : z, hzo ? hzo.decoded : zo, c.V, mask ?? null, moveChance, gradOutput ?? 1);
        close(r.kl, e.kl, 1e-5, 2e-6, 'kl');
        if (c.gradient) close(r.gradient!, e.grad, 1e-5, 2e-6 * maxAbs(e.grad) + 1e-12, 'gradient');
        else if (r.gradient !== undefined) throw new Error('gradient returned without returnGradient: true');
        if (c.oldGradient) close(r.oldGradient!, e.gradOld, 1e-5, 2e-6 * maxAbs(e.gradOld) + 1e-12, 'oldGradient');
        else if (r.oldGradient !== undefined) throw new Error('oldGradient returned without returnOldGradient: true');
      },
    };
  },
};


// d3poLoss / prdpLoss (lib/pairwise) -----------------------------------------------------------------
function pairInputs(c: SeqCase, scale: number) {
  const n = c.B * c.T;
  const l0 = randn(n, 1, c.seed).map((x) => x - 3), l1 = randn(n, 1, c.seed + 1).map((x) => x - 3);
  const e0 = randn(n, scale, c.seed + 2), e1 = randn(n, scale, c.seed + 3);
  return { n, l0, l1, r0: l0.map((x, i) => x + e0[i]), r1: l1.map((x, i) => x + e1[i]), mask: seqMaskOf(c) };
}
function closeGrads(got: ArrayLike<number>, want: ArrayLike<number>, what: string) {
  for (let i = 0; i < want.length; i++) {
    if (Math.abs(got[i] - want[i]) > 1e-6 * Math.max(Math.abs(want[i]), 1e-8)) throw new Error(`${what}[${i}] ${got[i]}, expected ${want[i]}`);
  }
}
const d3poLoss: ExportSpec<SeqCase> = {
  name: 'd3poLoss', sync: rk.d3poLoss as never, async: rk.d3poLossAsync as never, arb: seqCase,
  build(c) {
    const { n, l0, l1, r0, r1, mask } = pairInputs(c, 0.1);
    const h0 = randn(c.perToken ? n : c.B, 1, c.seed + 4), h1 = h0.map((x) => -x);
    const beta = c.clip === undefined ? undefined : c.clip + 0.05, epsilon = c.epsilonLow === undefined ? undefined : Math.min(c.epsilonLow, 0.9);
    const o = opts({ seqLen: c.T, beta, epsilon });
    return {
      args: [l0, l1, r0, r1, h0, h1, mask, o], optionsAt: 7, optionsRequired: true,
      arrays: [{ name: 'logprobs0', at: { arg: 0 }, lead: true }, { name: 'logprobs1', at: { arg: 1 } }, { name: 'refLogprobs0', at: { arg: 2 } },
        { name: 'refLogprobs1', at: { arg: 3 } }, { name: 'preference0', at: { arg: 4 }, lengths: [c.B, n] },
        { name: 'preference1', at: { arg: 5 }, lengths: [c.B, n] }, { name: 'mask', at: { arg: 6 }, nullable: true }],
      options: present(o, [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'beta', bad: bad.pos() }, { key: 'epsilon', bad: bad.range(0, 0.99) }]),
      check(res) {
        const got = res as rk.D3poLossResult;
        const e = refD3po(l0, l1, r0, r1, h0, h1, mask, c.T, beta ?? 0.1, epsilon ?? 0.1);
        closeTo(got.loss, e.loss, 10, 'loss');
        closeGrads(got.gradLogprobs0, e.grad0, 'gradLogprobs0');
        closeGrads(got.gradLogprobs1, e.grad1, 'gradLogprobs1');
        closeTo(got.metrics.clipFraction, e.clipFraction, 12, 'clipFraction');
        if (got.metrics.tokenCount !== e.tokenCount) throw new Error(`tokenCount ${got.metrics.tokenCount}, expected ${e.tokenCount}`);
      },
    };
  },
};
const prdpLoss: ExportSpec<SeqCase> = {
  name: 'prdpLoss', sync: rk.prdpLoss as never, async: rk.prdpLossAsync as never, arb: seqCase,
  build(c) {
    const { l0, l1, r0, r1, mask } = pairInputs(c, 0.05);
    const rA = randn(c.B, 1, c.seed + 5), rB = randn(c.B, 1, c.seed + 6);
    const beta = c.clip === undefined ? undefined : c.clip + 0.05, epsilon = c.epsilonLow === undefined ? undefined : Math.min(c.epsilonLow, 0.9);
    const stepReduction = ([undefined, 'sum', 'mean'] as const)[c.seed % 3];
    const o = opts({ seqLen: c.T, beta, epsilon, stepReduction });
    return {
      args: [l0, l1, r0, r1, rA, rB, mask, o], optionsAt: 7, optionsRequired: true,
      arrays: [{ name: 'logprobsA', at: { arg: 0 }, lead: true }, { name: 'logprobsB', at: { arg: 1 } }, { name: 'oldLogprobsA', at: { arg: 2 } },
        { name: 'oldLogprobsB', at: { arg: 3 } }, { name: 'rewardsA', at: { arg: 4 }, lengths: [c.B] },
        { name: 'rewardsB', at: { arg: 5 }, lengths: [c.B] }, { name: 'mask', at: { arg: 6 }, nullable: true }],
      options: present(o, [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'beta', bad: bad.pos() }, { key: 'epsilon', bad: bad.range(0, 0.99) },
        { key: 'stepReduction', bad: bad.enumOf() }]),
      check(res) {
        const got = res as rk.PrdpLossResult;
        const e = refPrdp(l0, l1, r0, r1, rA, rB, mask, c.T, beta ?? 0.1, epsilon ?? 1e-4, stepReduction ?? 'sum');
        closeTo(got.loss, e.loss, 10, 'loss');
        closeGrads(got.gradLogprobsA, e.gradA, 'gradLogprobsA');
        closeGrads(got.gradLogprobsB, e.gradB, 'gradLogprobsB');
        closeTo(got.metrics.clipFraction, e.clipFraction, 12, 'clipFraction');
      },
    };
  },
};

const strengthCase = fc.record({
  P: fc.integer({ min: 1, max: 9 }), M: fc.integer({ min: 1, max: 6 }),
  labelSmoothing: opt(fc.constantFrom(0, 0.1, 0.3)), stdCorrection: opt(fc.constantFrom(0, 1)),
  adaptiveMargin: opt(fc.boolean()), flipNegative: opt(fc.boolean()), seed,
});
const preferenceStrengthLoss: ExportSpec<typeof strengthCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'preferenceStrengthLoss', sync: rk.preferenceStrengthLoss as never, async: rk.preferenceStrengthLossAsync as never, arb: strengthCase,
  build(c) {
    const rc = randn(c.P, 2, c.seed), rr = randn(c.P, 2, c.seed + 1);
    const ec = randn(c.M * c.P, 1, c.seed + 2), er = randn(c.M * c.P, 1, c.seed + 3);
    const v = { labelSmoothing: c.labelSmoothing, stdCorrection: c.stdCorrection, adaptiveMargin: c.adaptiveMargin, flipNegative: c.flipNegative };
    const o = opts({ ensembleChosen: ec, ensembleRejected: er, ...v });
    return {
      args: [rc, rr, o], optionsAt: 2, optionsRequired: true,
      arrays: [{ name: 'chosenRewards', at: { arg: 0 }, lead: true }, { name: 'rejectedRewards', at: { arg: 1 } },
        // any length is a multiple of one pair: ensembleChosen's length is not mutated (ensembleRejected's is)
        { name: 'options.ensembleChosen', at: { opt: 'ensembleChosen' }, lead: true }, { name: 'options.ensembleRejected', at: { opt: 'ensembleRejected' } }],
      options: present(o, [{ key: 'labelSmoothing', bad: bad.range(0, 0.5) }, { key: 'stdCorrection', bad: bad.range(0, 1) },
        { key: 'adaptiveMargin', bad: bad.flag() }, { key: 'flipNegative', bad: bad.flag() }]),
      check(res) {
        const got = res as rk.PreferenceStrengthLossResult;
        const e = refPreferenceStrength(rc, rr, ec, er, v);
        close(got.losses, e.losses, 1e-6, 1e-9, 'losses');
        close(got.strengthMean, e.mean, 1e-6, 1e-6, 'strengthMean');
        close(got.strengthStd, e.std, 1e-6, 1e-6, 'strengthStd');
        close([got.loss, got.metrics.flipFraction], [e.loss, e.flipFraction], 1e-9, 1e-12, 'scalars');
        close(got.gradChosen, fdGrad((x) => refPreferenceStrength(x, rr, ec, er, v).loss, rc), 1e-5, 1e-9, 'gradChosen');
        close(got.gradRejected, fdGrad((x) => refPreferenceStrength(rc, x, ec, er, v).loss, rr), 1e-5, 1e-9, 'gradRejected');
      },
    };
  },
};


const p3oCase = fc.record({
  B: fc.integer({ min: 1, max: 5 }), T: fc.integer({ min: 1, max: 9 }), masks: fc.constantFrom('both', 'none', 'first'),
  clip: opt(fc.constantFrom('separate' as const, 'joint' as const)), epsilon: opt(fc.constantFrom(0.05, 0.2, 0.5)), seed,
  // surrogate 'trlx' (the authors' code): its clips and options
  trlx: fc.boolean(), tclip: opt(fc.constantFrom('joint' as const, 'token' as const)), tepsilon: opt(fc.constantFrom(0.05, 0.2, 1.5)),
  beta: opt(fc.constantFrom(0, 0.05, 0.3)), weightClip: opt(fc.constantFrom(1, 1.5, 10)), scaleByStd: opt(fc.boolean()),
  normalizeByTokens: opt(fc.boolean()),
});
const p3oLoss: ExportSpec<typeof p3oCase extends fc.Arbitrary<infer T> ? T : never> = {
  name: 'p3oLoss', sync: rk.p3oLoss as never, async: rk.p3oLossAsync as never, arb: p3oCase,
  build(c) {
    const n = c.B * c.T;
    const o1 = randn(n, 1, c.seed), o2 = randn(n, 1, c.seed + 1);
    const d1 = randn(n, 0.3 / Math.sqrt(c.T), c.seed + 2), d2 = randn(n, 0.3 / Math.sqrt(c.T), c.seed + 3);
    const l1 = o1.map((x, i) => x + d1[i]), l2 = o2.map((x, i) => x + d2[i]);
    const r1 = randn(c.B, 1, c.seed + 4), r2 = randn(c.B, 1, c.seed + 5);
    const m1 = c.masks === 'none' ? null : u8mask(n, 0.7, c.seed + 6), m2 = c.masks === 'both' ? u8mask(n, 0.7, c.seed + 7) : null;
    const arrays: ArraySite[] = [{ name: 'logprobs1', at: { arg: 0 }, lead: true }, { name: 'logprobs2', at: { arg: 1 } }, { name: 'oldLogprobs1', at: { arg: 2 } },
      { name: 'oldLogprobs2', at: { arg: 3 } }, { name: 'rewards1', at: { arg: 4 }, lengths: [c.B] }, { name: 'rewards2', at: { arg: 5 }, lengths: [c.B] },
      { name: 'mask1', at: { arg: 6 }, nullable: true }, { name: 'mask2', at: { arg: 7 }, nullable: true }];
    if (c.trlx) {
      const e1 = randn(n, 0.5 / Math.sqrt(c.T), c.seed + 8), e2 = randn(n, 0.5 / Math.sqrt(c.T), c.seed + 9);
      const ref1 = o1.map((x, i) => x + e1[i]), ref2 = o2.map((x, i) => x + e2[i]);
      const t = {
        clip: c.tclip, epsilon: c.tepsilon, beta: c.beta, weightClip: c.weightClip,
        scaleByStd: c.B >= 2 ? c.scaleByStd : undefined, normalizeByTokens: c.tclip !== 'token' ? c.normalizeByTokens : undefined,
      };
      const o = opts({ seqLen: c.T, surrogate: 'trlx', refLogprobs1: ref1, refLogprobs2: ref2, ...t });
      const ro = opts(t);
      return {
        args: [l1, l2, o1, o2, r1, r2, m1, m2, o], optionsAt: 8, optionsRequired: true,
        arrays: [...arrays, { name: 'options.refLogprobs1', at: { opt: 'refLogprobs1' } }, { name: 'options.refLogprobs2', at: { opt: 'refLogprobs2' } }],
        options: present(o, [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'surrogate', bad: bad.enumOf() },
          { key: 'clip', bad: [...bad.enumOf(), 'separate'] }, { key: 'epsilon', bad: bad.range(0, Infinity) }, { key: 'beta', bad: bad.range(0, Infinity) },
          { key: 'weightClip', bad: bad.range(1, Infinity) }, { key: 'scaleByStd', bad: bad.flag() }, { key: 'normalizeByTokens', bad: bad.flag() }]),
        check(res) {
          const got = res as rk.P3oLossResult;
          const e = refP3oTrlx(l1, l2, o1, o2, ref1, ref2, r1, r2, m1, m2, c.T, ro);
          close([got.loss, got.metrics.clipFraction], [e.loss, e.clipFraction], 1e-9, 1e-12, 'scalars');
          close(got.gradLogprobs1, e.grad1, 1e-6, 1e-9, 'gradLogprobs1');
          close(got.gradLogprobs2, e.grad2, 1e-6, 1e-9, 'gradLogprobs2');
          // q and w are detached in the code: the finite difference holds them at this point's values
          const frozen = { q: e.q, w: e.w };
          close(got.gradLogprobs1, fdGrad((x) => refP3oTrlx(x, l2, o1, o2, ref1, ref2, r1, r2, m1, m2, c.T, ro, frozen).loss, l1), 1e-5, 1e-7, 'gradLogprobs1 (fd)');
        },
      };
    }
    const o = opts({ seqLen: c.T, clip: c.clip, epsilon: c.epsilon });
    return {
      args: [l1, l2, o1, o2, r1, r2, m1, m2, o], optionsAt: 8, optionsRequired: true,
      arrays,
      options: present(o, [{ key: 'seqLen', bad: bad.int(1), required: true }, { key: 'clip', bad: [...bad.enumOf(), 'token'] }, { key: 'epsilon', bad: bad.range(0, 0.999999) }]),
      check(res) {
        const got = res as rk.P3oLossResult;
        const e = refP3o(l1, l2, o1, o2, r1, r2, m1, m2, c.T, c.clip ?? 'separate', c.epsilon ?? 0.2);
        close([got.loss, got.metrics.clipFraction], [e.loss, e.clipFraction], 1e-9, 1e-12, 'scalars');
        close(got.gradLogprobs1, e.grad1, 1e-6, 1e-9, 'gradLogprobs1');
        close(got.gradLogprobs2, e.grad2, 1e-6, 1e-9, 'gradLogprobs2');
        close(got.gradLogprobs1, fdGrad((x) => refP3o(x, l2, o1, o2, r1, r2, m1, m2, c.T, c.clip ?? 'separate', c.epsilon ?? 0.2).loss, l1), 1e-5, 1e-7, 'gradLogprobs1 (fd)');
      },
    };
  },
};

export const EXPORTS: ExportSpec<never>[] = [
  tokenLogprobs, tokenLogprobsBackward, vocabDivergence, policyLoss, klPenalty, valueLoss, geoMeanPolicyLoss,
  reinforcePolicyLoss, luspoPolicyLoss, vespoPolicyLoss, clipCovPolicyLoss, klCovPolicyLoss, highEntropyMask,
  maskTruncatedCompletions,
  preferenceLoss, ktoLoss, tokenWeightedDpoLoss, ldDpoLogps, groupAdvantages, ensembleRewards, gae, discountedReturns, maskedWhiten,
  rolloutCorrection, tokenAdvantages, klRewards, gatedRewards, discountedCumsum, lagrangianMix,
  copoAdvantages, copoPolicyLoss,
  paretoFront, rewardWeightUpdate, hypervolumeMetaReward, trajectoryBalanceLoss, orderPreservingLoss,
  gumbelSoftmax, gumbelSoftmaxBackward, drakesKl,
  d3poLoss, prdpLoss, preferenceStrengthLoss, p3oLoss,
  policyLossFromLogits,
] as ExportSpec<never>[];

// ---- the properties ---------------------------------------------------------------------------

async function withSetup<T>(b: Built, f: () => Promise<T>): Promise<T> {
  const undo = b.before?.();
  try {
    return await f();
  } finally {
    undo?.();
  }
}

/** valid: the sync result agrees with the reference; the Async result has the same bits. */
export function validProperty(spec: ExportSpec<never>): fc.IAsyncPropertyWithHooks<[never]> {
  return fc.asyncProperty(spec.arb, async (c) => {
    const b = spec.build(c);
    await withSetup(b, async () => {
      const s = spec.sync(...(b.args as never[]));
      b.check(s);
      const a = await spec.async(...(spec.build(c).args as never[]));
      sameBits(s, a, `${spec.name}Async vs ${spec.name}`);
    });
  });
}

export type Mutation =
  | { kind: 'type' | 'length' | 'null' | 'detached'; site: number }
  | { kind: 'option'; site: number; value: number }
  | { kind: 'missing'; site: number }
  | { kind: 'no-options'; value: number };

const detached = <T extends ArrayBufferView>(a: T): T => {
  const copy = new (a.constructor as new (n: number) => T)((a as unknown as { length: number }).length);
  structuredClone(copy.buffer, { transfer: [copy.buffer as ArrayBuffer] });
  return copy;
};
const getAt = (args: unknown[], at: Site) => ('arg' in at ? args[at.arg] : (args[args.length - 1] as Record<string, unknown>)[at.opt]);

/** Applies m to a fresh build of the case; returns the mutated args and the name the error must start with (or null: not applicable). */
export function mutate(b: Built, m: Mutation): { args: unknown[]; name: string; what: string } | null {
  const args = b.args.slice();
  const o = { ...(args[b.optionsAt] as Record<string, unknown>) };
  args[b.optionsAt] = o;
  const setAt = (at: Site, v: unknown) => ('arg' in at ? (args[at.arg] = v) : (o[at.opt] = v));
  switch (m.kind) {
    case 'type': case 'length': case 'null': case 'detached': {
      const s = b.arrays[m.site % b.arrays.length];
      const a = getAt(args, s.at) as Float32Array | null;
      if (a === null || a === undefined) {
        // an absent optional array (mask: null): only a wrongly typed one applies
        if (m.kind !== 'type') return null;
        setAt(s.at, new Float64Array(1));
      } else if (m.kind === 'type') {
        const len = (a as ArrayBufferView & { length: number }).length;
        setAt(s.at, (a as ArrayBufferView) instanceof Float64Array ? new Int16Array(len) : new Float64Array(len));
      } else if (m.kind === 'length') {
        if (s.lead) return null;
        const ok = s.lengths ?? [a.length];
        let len = a.length + 1;
        while (ok.includes(len)) len++;
        const next = new (a.constructor as Float32ArrayConstructor)(len);
        next.set(a.subarray(0, Math.min(a.length, len)));
        setAt(s.at, next);
      } else if (m.kind === 'null') {
        if (s.nullable) return null;
        setAt(s.at, null);
      } else {
        setAt(s.at, detached(a));
      }
      return { args, name: s.name, what: `${m.kind} ${s.name}` };
    }
    case 'option': {
      if (b.options.length === 0) return null;
      const s = b.options[m.site % b.options.length];
      const v = s.bad[m.value % s.bad.length];
      o[s.key] = v;
      return { args, name: `options.${s.key}`, what: `options.${s.key} = ${typeof v === 'string' ? `'${v}'` : String(v)}` };
    }
    case 'missing': {
      const req = b.options.filter((s) => s.required);
      if (req.length === 0) return null;
      const s = req[m.site % req.length];
      delete o[s.key];
      return { args, name: `options.${s.key}`, what: `no options.${s.key}` };
    }
    case 'no-options': {
      const v = [undefined, null, 5, 'options', [1]][m.value % 5];
      if (v === undefined && !b.optionsRequired) return null;
      args[b.optionsAt] = v;
      return { args, name: 'options', what: `options = ${Array.isArray(v) ? '[1]' : String(v)}` };
    }
  }
}

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constantFrom('type', 'length', 'null', 'detached') as fc.Arbitrary<'type'>, site: fc.nat(31) }),
  fc.record({ kind: fc.constant('option') as fc.Arbitrary<'option'>, site: fc.nat(31), value: fc.nat(31) }),
  fc.record({ kind: fc.constant('missing') as fc.Arbitrary<'missing'>, site: fc.nat(31) }),
  fc.record({ kind: fc.constant('no-options') as fc.Arbitrary<'no-options'>, value: fc.nat(31) }),
);

function expectNamed(err: unknown, name: string, what: string, form: string): void {
  if (!(err instanceof TypeError || err instanceof RangeError)) {
    throw new Error(`${form} with ${what}: expected a TypeError or RangeError, got ${err === undefined ? 'no error' : String(err)}`);
  }
  const next = err.message.charAt(name.length);
  if (!err.message.startsWith(name) || (next !== ':' && next !== '[')) {
    throw new Error(`${form} with ${what}: expected a message starting with '${name}:', got ${err.constructor.name} '${err.message}'`);
  }
}

/** invalid: one mutation of a valid call throws a TypeError/RangeError naming the argument, sync and Async. */
export function invalidProperty(spec: ExportSpec<never>): fc.IAsyncPropertyWithHooks<[never, Mutation]> {
  return fc.asyncProperty(spec.arb, mutationArb, async (c, m) => {
    const b = spec.build(c);
    const mu = mutate(b, m);
    fc.pre(mu !== null);
    const { args, name, what } = mu!;
    await withSetup(b, async () => {
      let err: unknown;
      try {
        spec.sync(...(args as never[]));
      } catch (e) {
        err = e;
      }
      expectNamed(err, name, what, spec.name);
      const mu2 = mutate(spec.build(c), m)!;
      let aerr: unknown;
      try {
        await spec.async(...(mu2.args as never[]));
      } catch (e) {
        aerr = e;
      }
      expectNamed(aerr, name, what, `${spec.name}Async`);
    });
  });
}
