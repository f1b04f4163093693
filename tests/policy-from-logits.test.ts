// policyLossFromLogits (docs/policy-from-logits.md): tokenLogprobs + policyLoss + tokenLogprobsBackward
// in one call. Checked against
//   - a float64 reference of the whole op, written from its formula: tests/reference/logprobs.ts
//     (log-softmax with temperature, entropy, the analytic logits gradient) composed with
//     tests/reference/policy.ts (every variant, aggregation, KL estimator, entropy term, tokenWeights,
//     dual clip, delta);
//   - the three separate calls (the documented contract: logprobs, entropy, loss and metrics bit for
//     bit at tokens with a nonzero mask weight, the gradient to f32 rounding);
//   - central finite differences of the float64 loss with respect to the logits.
import { afterEach, describe, expect, it } from 'vitest';

import {
  policyLoss,
  policyLossFromLogits,
  policyLossFromLogitsAsync,
  tokenLogprobs,
  tokenLogprobsBackward,
  type LossAggregation,
  type PolicyLossFromLogitsOptions,
  type PolicyLossFromLogitsResult,
  type PolicyVariant,
  type KlEstimator,
} from '../lib/index.js';
import { defaultNumThreads, setNumThreads, setSimdLevel, simdLevel, type SimdLevel } from '../lib/runtime.js';
import { centralDiff, encodeHalf, expectSameBits, randn, rng, toBf16 } from './helpers.js';
import { refTokenLogprobs, refTokenLogprobsBackward } from './reference/logprobs.js';
import { refPolicyLoss, type RefPolicyOptions } from './reference/policy.js';

const VARIANTS: PolicyVariant[] = ['ppo', 'gspo', 'cispo', 'sapo', 'gpg'];
const AGGS: LossAggregation[] = ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum', 'seq-mean-token-sum-norm'];
const ESTS: KlEstimator[] = ['k1', 'k2', 'k3', 'abs', 'k3+'];
const LEVELS = (['scalar', 'avx2', 'avx512'] as SimdLevel[]).filter((l, i) => i <= ['scalar', 'avx2', 'avx512'].indexOf(simdLevel().detected));

afterEach(() => {
  setNumThreads(defaultNumThreads());
  setSimdLevel(simdLevel().detected);
});

// ---- inputs ---------------------------------------------------------------------------------------

interface Spec {
  B: number;
  T: number;
  V: number;
  seed: number;
  dtype?: 'f32' | 'bf16' | 'f16';
  /** Standard deviation of the logits (default 2). */
  sd?: number;
  temperature?: number;
  /** Fraction of logits set to -inf (never a row's target). */
  ninf?: number;
  /** Fraction of rows whose target is ignoreIndex. */
  ignore?: number;
  ignoreIndex?: number;
  mask?: 'none' | 'u8' | 'f32';
  perToken?: boolean;
  variant?: PolicyVariant;
  aggregation?: LossAggregation;
  kl?: KlEstimator;
  beta?: number;
  entropyCoef?: number;
  returnEntropy?: boolean;
  tokenWeights?: boolean;
  dualClip?: number;
  delta?: number;
  normalizer?: number;
  epsilonLow?: number;
  epsilonHigh?: number;
  /** Spread of oldLogprobs around the log-probs (default 0.3). */
  spread?: number;
}

interface Built {
  s: Spec;
  n: number;
  logits: Float32Array | Uint16Array;
  /** The exact values the kernel sees. */
  decoded: ArrayLike<number>;
  targets: Int32Array;
  old: Float32Array;
  adv: Float32Array;
  mask: Uint8Array | Float32Array | null;
  ref?: Float32Array;
  tw?: Float32Array;
  tau: number;
  ii: number;
  wantEntropy: boolean;
  options: PolicyLossFromLogitsOptions;
  /** The reference's options (everything but the entropy array). */
  ro: RefPolicyOptions;
}

function build(s: Spec): Built {
  const n = s.B * s.T, V = s.V;
  const tau = s.temperature ?? 1, ii = s.ignoreIndex ?? -100;
  const z = randn(n * V, s.sd ?? 2, s.seed);
  const r = rng(s.seed + 1);
  const targets = Int32Array.from({ length: n }, () => Math.floor(r() * V));
  if (s.ninf) {
    for (let i = 0; i < z.length; i++) if (i % V !== targets[Math.floor(i / V)] && r() < s.ninf) z[i] = -Infinity;
  }
  if (s.ignore) for (let i = 0; i < n; i++) if (r() < s.ignore) targets[i] = ii;
  const dtype = s.dtype ?? 'f32';
  const half = dtype === 'f32' ? null : encodeHalf(z, dtype);
  const logits = half ? half.bits : z;
  const decoded = half ? half.decoded : z;
  const f = refTokenLogprobs(decoded, targets, V, tau, ii);
  const noise = randn(2 * n, 1, s.seed + 2);
  const spread = s.spread ?? 0.3;
  const old = Float32Array.from({ length: n }, (_, i) => f.logp[i] - spread * noise[i]);
  const ref = s.kl ? Float32Array.from({ length: n }, (_, i) => f.logp[i] - 0.4 * noise[n + i]) : undefined;
  const adv = randn(s.perToken ? n : s.B, 1, s.seed + 3);
  let mask: Uint8Array | Float32Array | null = null;
  if (s.mask !== undefined && s.mask !== 'none') {
    mask = s.mask === 'f32' ? new Float32Array(n) : new Uint8Array(n);
    for (let b = 0; b < s.B; b++) {
      const len = b === 1 ? 0 : 1 + Math.floor(r() * s.T); // sequence 1 is empty
      for (let t = 0; t < len; t++) mask[b * s.T + t] = s.mask === 'f32' ? 0.25 + 2 * r() : 1;
    }
    if (s.mask === 'f32' && s.T > 2 && mask[1] > 0) mask[0] = 0; // a zero weight at the start, then weights
  }
  const tw = s.tokenWeights ? Float32Array.from({ length: n }, () => 2 * r()) : undefined;
  const variant = s.variant ?? 'ppo';
  const options: PolicyLossFromLogitsOptions = {
    vocab: V, seqLen: s.T, variant, aggregation: s.aggregation,
    ...(dtype !== 'f32' ? { dtype } : {}),
    ...(s.temperature !== undefined ? { temperature: s.temperature } : {}),
    ...(s.ignoreIndex !== undefined ? { ignoreIndex: s.ignoreIndex } : {}),
    ...(s.kl ? { refLogprobs: ref, klEstimator: s.kl, beta: s.beta ?? 0.04 } : {}),
    ...(s.entropyCoef !== undefined ? { entropyCoef: s.entropyCoef } : {}),
    ...(s.returnEntropy ? { returnEntropy: true } : {}),
    ...(tw ? { tokenWeights: tw } : {}),
    ...(s.dualClip !== undefined ? { dualClip: s.dualClip } : {}),
    ...(s.delta !== undefined ? { delta: s.delta } : {}),
    ...(s.normalizer !== undefined ? { normalizer: s.normalizer } : {}),
    ...(s.epsilonLow !== undefined ? { epsilonLow: s.epsilonLow } : {}),
    ...(s.epsilonHigh !== undefined ? { epsilonHigh: s.epsilonHigh } : {}),
  };
  if (options.aggregation === undefined) delete options.aggregation;
  const ro: RefPolicyOptions = {
    seqLen: s.T, variant,
    aggregation: s.aggregation ?? (variant === 'gspo' || variant === 'sapo' ? 'seq-mean-token-mean' : 'token-mean'),
    epsilonLow: s.epsilonLow ?? 0.2, epsilonHigh: s.epsilonHigh ?? (variant === 'cispo' ? 5 : 0.2),
    dualClip: s.dualClip, delta: s.delta, normalizer: s.normalizer,
    refLogprobs: ref, beta: s.kl ? (s.beta ?? 0.04) : 0, klEstimator: s.kl ?? 'k3',
    entropyCoef: s.entropyCoef ?? 0, tokenWeights: tw, tauPos: 1, tauNeg: 1.05,
  };
  const wantEntropy = !!s.returnEntropy || s.entropyCoef !== undefined;
  return { s, n, logits, decoded, targets, old, adv, mask, ref, tw, tau, ii, wantEntropy, options, ro };
}

const call = (c: Built, extra: Partial<PolicyLossFromLogitsOptions> = {}, logits: Float32Array | Uint16Array = c.logits) =>
  policyLossFromLogits(logits, c.targets, c.old, c.adv, c.mask, { ...c.options, ...extra });

/** The mask weight of token i (null mask: 1). */
const weight = (c: Built, i: number) => (c.mask === null ? 1 : c.mask[i]);
/** Rows the op reads: nonzero weight and a target that is not ignoreIndex. */
const isRead = (c: Built, i: number) => weight(c, i) !== 0 && c.targets[i] !== c.ii;

// ---- the float64 reference of the whole op ----------------------------------------------------------

interface RefOp {
  logp: Float64Array;
  lse: Float64Array;
  entropy: Float64Array;
  loss: number;
  lossScale: number;
  metrics: ReturnType<typeof refPolicyLoss>['metrics'];
  gLogp: Float64Array;
  gEnt: Float64Array;
  grad: Float64Array;
}

/**
 * logp, H = log-softmax(z / tau) at the target, entropy;  loss, g = dL/dlogp, h = dL/dH = policy loss;
 * dL/dz = (1/tau) (g (1[j=y] - p) - h p (z/tau - lse + H)).  `logpIn` replaces the float64 log-probs
 * (and `entIn` the entropies) fed to the policy loss: the op's own f32 values, to check the policy and
 * backward stages without the log-prob rounding; `detached` is GSPO's / CISPO's / k3+'s stop-gradient
 * point (default: the log-probs themselves).
 */
function refOp(c: Built, z: ArrayLike<number> = c.decoded, logpIn?: ArrayLike<number>, entIn?: ArrayLike<number>, detached?: ArrayLike<number>): RefOp {
  const V = c.s.V;
  const f = refTokenLogprobs(z, c.targets, V, c.tau, c.ii);
  const lp = logpIn ?? f.logp;
  const ent = entIn ?? f.entropy;
  const p = refPolicyLoss(lp, c.old, c.adv, c.mask, { ...c.ro, entropy: c.wantEntropy ? ent : undefined }, detached ?? lp);
  const grad = refTokenLogprobsBackward(z, c.targets, V, p.grad, c.wantEntropy ? p.gradEntropy : null, c.tau, c.ii);
  return { logp: f.logp, lse: f.lse, entropy: f.entropy, loss: p.loss, lossScale: p.lossScale, metrics: p.metrics, gLogp: p.grad, gEnt: p.gradEntropy, grad };
}

/** Worst errors seen (reported in the final test's output). */
const WORST = { logp: 0, entropy: 0, loss: 0, lossChain: 0, grad: 0, gradVsSeparate: 0, gradVsSeparateOfTol: 0, fd: 0, fdOfMax: 0, fdOfTol: 0 };

/**
 * The op against the float64 reference. logprobs / entropy: the tokenLogprobs test's tolerance
 * (1e-5 relative, 1e-6 absolute) at the rows that are read, exactly 0 at the others. The loss,
 * metrics and gradient: against the reference evaluated at the op's own f32 log-probs and entropies
 * (so a log-prob rounding that moves a ratio across a clip edge cannot flip a token's gradient): the
 * policyLoss test's tolerance for the loss (1e-5 relative + 1e-6 of sum_t w_t |L_t|), and per gradient
 * element 1e-5 relative + 1e-6 of the row's scale + the f32 rounding of the exponent of p_j (a few
 * ulps of the row's scaled logit range R, times p_j). Returns the float64 result.
 */
function checkRef(c: Built, got: PolicyLossFromLogitsResult, label: string): RefOp {
  const V = c.s.V;
  const full = refOp(c);
  for (let i = 0; i < c.n; i++) {
    if (!isRead(c, i)) {
      expect(got.logprobs[i], `${label} logprobs[${i}] (row not read)`).toBe(0);
      if (got.entropy) expect(got.entropy[i], `${label} entropy[${i}] (row not read)`).toBe(0);
      continue;
    }
    const e = Math.abs(got.logprobs[i] - full.logp[i]);
    WORST.logp = Math.max(WORST.logp, e / (1e-5 * Math.abs(full.logp[i]) + 1e-6));
    expect(e, `${label} logprobs[${i}]: ${got.logprobs[i]} vs ${full.logp[i]}`).toBeLessThanOrEqual(1e-5 * Math.abs(full.logp[i]) + 1e-6);
    if (c.wantEntropy) {
      const eh = Math.abs(got.entropy![i] - full.entropy[i]);
      WORST.entropy = Math.max(WORST.entropy, eh / (1e-5 * Math.abs(full.entropy[i]) + 1e-6));
      expect(eh, `${label} entropy[${i}]: ${got.entropy![i]} vs ${full.entropy[i]}`).toBeLessThanOrEqual(1e-5 * Math.abs(full.entropy[i]) + 1e-6);
    }
  }
  if (!c.wantEntropy) expect(got.entropy, `${label} entropy`).toBeUndefined();
  // The policy and backward stages at the op's own log-probs.
  const w = refOp(c, c.decoded, got.logprobs, c.wantEntropy ? got.entropy : undefined);
  const lossTol = 1e-5 * Math.abs(w.loss) + 1e-6 * w.lossScale + 1e-12;
  WORST.loss = Math.max(WORST.loss, Math.abs(got.loss - w.loss) / lossTol);
  expect(Math.abs(got.loss - w.loss), `${label} loss ${got.loss} vs ${w.loss}`).toBeLessThanOrEqual(lossTol);
  // and the whole chain from the logits: the loss of the float64 log-probs, within the same tolerance
  // plus what moving each token's log-prob (entropy) by the tolerance asserted above does to the loss
  // value (stop-gradient parts included: CISPO's weight, GSPO's ratio move with it)
  let chain = lossTol;
  const lossAt = (lp: Float64Array, ent: Float64Array) => refPolicyLoss(lp, c.old, c.adv, c.mask, { ...c.ro, entropy: c.wantEntropy ? ent : undefined }).loss;
  for (let i = 0; i < c.n; i++) {
    if (!isRead(c, i)) continue;
    for (const [arr, on] of [[full.logp, true], [full.entropy, c.wantEntropy]] as const) {
      if (!on) continue;
      const e = 1e-5 * Math.abs(arr[i]) + 1e-6;
      const x = Float64Array.from(arr);
      let worst = 0;
      for (const sgn of [1, -1]) {
        x[i] = arr[i] + sgn * e;
        const l = arr === full.logp ? lossAt(x, full.entropy) : lossAt(full.logp, x);
        worst = Math.max(worst, Math.abs(l - full.loss));
      }
      chain += worst;
    }
  }
  WORST.lossChain = Math.max(WORST.lossChain, Math.abs(got.loss - full.loss) / chain);
  expect(Math.abs(got.loss - full.loss), `${label} loss ${got.loss} vs float64 chain ${full.loss}`).toBeLessThanOrEqual(chain);
  const m = got.metrics, wm = w.metrics;
  for (const k of ['clipFraction', 'clipLowFraction', 'clipHighFraction', 'dualClipFraction', 'tokenCount'] as const) {
    expect(Math.abs(m[k] - wm[k]), `${label} metrics.${k} ${m[k]} vs ${wm[k]}`).toBeLessThanOrEqual(1e-6 * Math.abs(wm[k]) + 1e-12);
  }
  expect(Math.abs(m.approxKl - wm.approxKl), `${label} metrics.approxKl`).toBeLessThanOrEqual(1e-5 * Math.abs(wm.approxKl) + 1e-9);
  if (c.ref) expect(Math.abs(m.kl! - wm.kl), `${label} metrics.kl ${m.kl} vs ${wm.kl}`).toBeLessThanOrEqual(1e-5 * Math.abs(wm.kl) + 1e-7);
  else expect(m.kl, `${label} metrics.kl`).toBeUndefined();
  if (c.wantEntropy) expect(Math.abs(m.entropy! - wm.entropy), `${label} metrics.entropy`).toBeLessThanOrEqual(1e-6 * Math.abs(wm.entropy) + 1e-9);
  else expect(m.entropy, `${label} metrics.entropy`).toBeUndefined();
  // the gradient
  const g = gradAsF32(got.gradLogits);
  const rel = got.gradLogits instanceof Uint16Array ? 2 ** -8 : 1e-5;
  for (let r = 0; r < c.n; r++) {
    const o = r * V;
    if (!isRead(c, r)) {
      for (let j = 0; j < V; j++) if (g[o + j] !== 0) expect.fail(`${label} gradLogits[${o + j}] = ${g[o + j]} in a row that is not read`);
      continue;
    }
    let zmax = -Infinity, zmin = Infinity;
    for (let j = 0; j < V; j++) {
      const v = c.decoded[o + j] / c.tau;
      if (v === -Infinity) continue;
      zmax = Math.max(zmax, v);
      zmin = Math.min(zmin, v);
    }
    const R = zmax - zmin + Math.abs(zmax) + 1;
    const gr = Math.abs(w.gLogp[r]), hr = Math.abs(w.gEnt[r]);
    const scale = (gr + hr * (Math.abs(w.entropy[r]) + 1)) / c.tau;
    for (let j = 0; j < V; j++) {
      const i = o + j;
      const want = w.grad[i];
      if (c.decoded[i] === -Infinity && j !== c.targets[r]) {
        if (g[i] !== 0) expect.fail(`${label} gradLogits[${i}] = ${g[i]} at a -inf logit`);
        continue;
      }
      const d = c.decoded[i] / c.tau - w.lse[r];
      const pj = Math.exp(d);
      const tol = rel * Math.abs(want) + 1e-6 * scale + (4 * 1.2e-7 * R * pj * (gr + hr * (Math.abs(d + w.entropy[r]) + 1))) / c.tau + 1e-30;
      const err = Math.abs(g[i] - want);
      WORST.grad = Math.max(WORST.grad, err / tol);
      if (!(err <= tol)) expect.fail(`${label} gradLogits[${i}] (row ${r}, j ${j}): ${g[i]} vs ${want} (tol ${tol})`);
    }
  }
  return full;
}

function gradAsF32(g: Float32Array | Uint16Array): Float32Array {
  if (g instanceof Float32Array) return g;
  const u = new Uint32Array(g.length);
  for (let i = 0; i < g.length; i++) u[i] = g[i] << 16;
  return new Float32Array(u.buffer);
}

// ---- the three separate calls ---------------------------------------------------------------------

function separate(c: Built) {
  const V = c.s.V;
  const lopts = {
    vocab: V, ...(c.options.dtype ? { dtype: c.options.dtype } : {}),
    ...(c.s.temperature !== undefined ? { temperature: c.s.temperature } : {}), ...(c.s.ignoreIndex !== undefined ? { ignoreIndex: c.s.ignoreIndex } : {}),
  };
  const f = tokenLogprobs(c.logits, c.targets, { ...lopts, returnEntropy: true });
  const { vocab: _v, dtype: _d, temperature: _t, ignoreIndex: _i, returnEntropy: _r, entropyCoef, ...popts } = c.options;
  const p = policyLoss(f.logprobs, c.old, c.adv, c.mask, {
    ...popts, ...(c.wantEntropy ? { entropy: f.entropy, ...(entropyCoef !== undefined ? { entropyCoef } : {}) } : {}),
  } as never);
  const grad = tokenLogprobsBackward(c.logits, c.targets, p.gradLogprobs, {
    ...lopts, logsumexp: f.logsumexp, ...(c.wantEntropy ? { entropy: f.entropy, gradEntropy: p.gradEntropy } : {}),
  });
  return { f, p, grad };
}

/**
 * The contract: logprobs, entropy (at tokens with nonzero weight), loss and every metric bit for bit;
 * the gradient within f32 rounding of the separate backward, which starts from the f32 logsumexp where
 * this call starts from the row's statistics in double (keeping the 2^u of its statistics pass, u
 * against the chunk's max, times the chunk's shift; rows over 2^20 recompute p_j from the row's max
 * and log-sum): p_j differs by a few ulps of the exponent's parts (|z_j / tau| + |lse|), relative. Tolerance per element: 8 f32 ulps of (|z_j / tau| + |lse| + 1) of
 * the p_j term (|g| + |h| (|d + H| + 1)) p_j / tau, plus 2 ulps of the element itself.
 */
function checkSeparate(c: Built, got: PolicyLossFromLogitsResult, label: string) {
  const V = c.s.V;
  const { f, p, grad } = separate(c);
  for (let i = 0; i < c.n; i++) {
    if (weight(c, i) === 0) continue;
    if (!Object.is(got.logprobs[i], f.logprobs[i])) expect.fail(`${label} logprobs[${i}]: ${got.logprobs[i]} vs separate ${f.logprobs[i]}`);
    if (c.wantEntropy && !Object.is(got.entropy![i], f.entropy[i])) expect.fail(`${label} entropy[${i}]: ${got.entropy![i]} vs separate ${f.entropy[i]}`);
  }
  expect(Object.is(got.loss, p.loss), `${label} loss ${got.loss} vs separate ${p.loss}`).toBe(true);
  expect(Object.keys(got.metrics).sort(), `${label} metric keys`).toEqual(Object.keys(p.metrics).sort());
  for (const [k, v] of Object.entries(p.metrics)) {
    expect(Object.is((got.metrics as unknown as Record<string, number>)[k], v), `${label} metrics.${k}: ${(got.metrics as unknown as Record<string, number>)[k]} vs ${v}`).toBe(true);
  }
  const g = gradAsF32(got.gradLogits);
  const ulp = 2 ** -23;
  for (let r = 0; r < c.n; r++) {
    const o = r * V;
    const gr = Math.abs(p.gradLogprobs[r]), hr = c.wantEntropy ? Math.abs(p.gradEntropy![r]) : 0;
    const lse = f.logsumexp[r], H = c.wantEntropy ? f.entropy[r] : 0;
    for (let j = 0; j < V; j++) {
      const i = o + j;
      const want = grad[i];
      if (!isRead(c, r)) {
        // the separate backward gets g = h = 0 for a zero-weight row, and skips an ignored one
        if (g[i] !== 0 || Math.abs(want) !== 0) expect.fail(`${label} gradLogits[${i}]: ${g[i]}, separate ${want}, in a row that is not read`);
        continue;
      }
      const x = Number(c.decoded[i]) / c.tau;
      const d = x - lse;
      const pj = x === -Infinity ? 0 : Math.exp(d);
      const term = pj === 0 ? 0 : ((gr + hr * (Math.abs(d + H) + 1)) * pj) / c.tau;
      const tol = (term === 0 ? 0 : term * 8 * ulp * (Math.abs(x) + Math.abs(lse) + 1)) + 2 * ulp * Math.abs(want);
      const err = Math.abs(g[i] - want);
      WORST.gradVsSeparate = Math.max(WORST.gradVsSeparate, err / (Math.abs(want) + term + 1e-38));
      if (tol > 0) WORST.gradVsSeparateOfTol = Math.max(WORST.gradVsSeparateOfTol, err / tol);
      if (!(err <= tol)) expect.fail(`${label} gradLogits[${i}] (row ${r}, j ${j}): ${g[i]} vs separate ${want} (tol ${tol})`);
    }
  }
}

// ---- tests --------------------------------------------------------------------------------------------

describe('policyLossFromLogits against the float64 reference and the three separate calls', () => {
  // awkward sizes: V = 1, 7, 1001, 4097, 12345; one row; one token; T not a multiple of 8
  const SIZES: [number, number, number][] = [
    [1, 1, 7], [1, 1, 1001], [3, 5, 1], [2, 7, 7], [4, 11, 1001], [3, 9, 4097], [2, 5, 12345], [1, 13, 33],
  ];
  SIZES.forEach(([B, T, V], k) => {
    it(`B=${B} T=${T} V=${V}: every variant, u8 / f32 / null masks, advantages per sequence and per token`, () => {
      for (const variant of VARIANTS) {
        for (const mask of ['u8', 'f32', 'none'] as const) {
          const c = build({ B, T, V, seed: 1000 * k + 17 * VARIANTS.indexOf(variant) + (mask === 'u8' ? 0 : mask === 'f32' ? 5 : 9), variant, mask, perToken: mask !== 'u8', ignore: 0.15, ninf: V > 7 ? 0.2 : 0 });
          const got = call(c);
          const label = `${B}x${T}x${V} ${variant} ${mask}`;
          checkRef(c, got, label);
          checkSeparate(c, got, label);
        }
      }
    });
  });

  it('every variant x aggregation x KL estimator, with entropy term, tokenWeights, normalizer (B*T = 3*7, V = 1001)', () => {
    let k = 0;
    for (const variant of VARIANTS) {
      for (const aggregation of AGGS) {
        for (const kl of ESTS) {
          k++;
          const c = build({
            B: 3, T: 7, V: 1001, seed: 5000 + k, variant, aggregation, kl, beta: k % 2 ? 0.04 : -0.1, entropyCoef: k % 3 ? 0.01 : -0.02,
            tokenWeights: k % 2 === 0, normalizer: k % 5 === 0 ? 7 : undefined, mask: (['u8', 'f32', 'none'] as const)[k % 3], perToken: k % 2 === 1,
            ignore: 0.1, temperature: k % 4 === 0 ? 0.7 : undefined,
            ...(variant === 'ppo' || variant === 'gspo' ? { epsilonLow: 0.1, epsilonHigh: 0.28, dualClip: 2 } : {}),
            ...(variant === 'ppo' && k % 2 ? { delta: 1.3 } : {}),
            ...(variant === 'cispo' ? { epsilonHigh: 1.1 } : {}),
            spread: 0.5,
          });
          const got = call(c);
          const label = `${variant} ${aggregation} ${kl}`;
          checkRef(c, got, label);
          checkSeparate(c, got, label);
          expect(got.entropy!.length).toBe(c.n);
        }
      }
    }
  });

  it('the clip metrics are exercised: dual clip, delta, low and high clips all fire somewhere', () => {
    const c = build({ B: 4, T: 9, V: 257, seed: 77, variant: 'ppo', perToken: true, dualClip: 1.5, delta: 2.5, epsilonLow: 0.1, epsilonHigh: 0.1, spread: 1 });
    const got = call(c);
    checkRef(c, got, 'clips');
    checkSeparate(c, got, 'clips');
    expect(got.metrics.dualClipFraction).toBeGreaterThan(0);
    expect(got.metrics.clipLowFraction).toBeGreaterThan(0);
    expect(got.metrics.clipHighFraction).toBeGreaterThan(0);
  });

  it('temperature != 1, large and tiny logit magnitudes, -inf logits', () => {
    const cases: Spec[] = [
      { B: 2, T: 7, V: 1001, seed: 31, temperature: 0.6 },
      { B: 2, T: 7, V: 1001, seed: 32, temperature: 1.7, entropyCoef: 0.05, variant: 'gspo' },
      { B: 2, T: 5, V: 4097, seed: 33, sd: 300, returnEntropy: true },
      { B: 2, T: 5, V: 4097, seed: 34, sd: 1e4, variant: 'cispo', spread: 0.05 },
      { B: 3, T: 3, V: 1001, seed: 35, sd: 1e-4, entropyCoef: 0.01 },
      { B: 3, T: 3, V: 1001, seed: 36, sd: 1e-4, temperature: 0.3, variant: 'sapo' },
      { B: 2, T: 9, V: 4097, seed: 37, ninf: 0.7, entropyCoef: -0.01, variant: 'gspo' },
      { B: 2, T: 9, V: 7, seed: 38, ninf: 0.6, returnEntropy: true, temperature: 1.3 },
    ];
    for (const s of cases) {
      const c = build({ mask: 'u8', ...s });
      const got = call(c);
      const label = JSON.stringify(s);
      checkRef(c, got, label);
      checkSeparate(c, got, label);
      for (let i = 0; i < got.gradLogits.length; i++) if (!Number.isFinite(got.gradLogits[i])) expect.fail(`${label}: gradLogits[${i}] = ${got.gradLogits[i]}`);
    }
  });

  it('bf16 and f16 logits (every variant)', () => {
    for (const dtype of ['bf16', 'f16'] as const) {
      VARIANTS.forEach((variant, k) => {
        const c = build({ B: 3, T: 5, V: 1001, seed: 400 + k, dtype, variant, mask: 'f32', entropyCoef: 0.01, ignore: 0.1, ninf: 0.1, temperature: 0.9 });
        const got = call(c);
        checkRef(c, got, `${dtype} ${variant}`);
        checkSeparate(c, got, `${dtype} ${variant}`);
      });
    }
  });

  it('ignoreIndex rows (default -100 and a custom id) and zero-weight rows: logprobs 0, zero gradient rows', () => {
    for (const ignoreIndex of [undefined, -1, 0]) {
      const c = build({ B: 3, T: 6, V: 33, seed: 90, ignore: 0.4, ignoreIndex, mask: 'f32', returnEntropy: true });
      const got = call(c);
      checkRef(c, got, `ignoreIndex ${ignoreIndex}`);
      checkSeparate(c, got, `ignoreIndex ${ignoreIndex}`);
      let skipped = 0;
      for (let i = 0; i < c.n; i++) if (!isRead(c, i)) skipped++;
      expect(skipped).toBeGreaterThan(3);
    }
    // an ignored target with a nonzero weight counts as a token with logp = 0 (as in the separate calls)
    const c = build({ B: 1, T: 4, V: 9, seed: 91 });
    c.targets[2] = -100;
    const got = call(c);
    expect(got.metrics.tokenCount).toBe(4);
    checkSeparate(c, got, 'ignored, weight 1');
  });

  it('every SIMD level: the reference and the separate calls (f32, bf16 and f16 logits, -inf, V = 4097)', () => {
    for (const level of LEVELS) {
      setSimdLevel(level);
      (['f32', 'bf16', 'f16'] as const).forEach((dtype, k) => {
        for (const variant of ['ppo', 'gspo'] as const) {
          const c = build({ B: 2, T: 7, V: 4097, seed: 300 + k, dtype, variant, mask: 'u8', entropyCoef: 0.01, kl: 'k1', ninf: 0.3, ignore: 0.1, temperature: 1.2 });
          const got = call(c);
          checkRef(c, got, `${level} ${dtype} ${variant}`);
          checkSeparate(c, got, `${level} ${dtype} ${variant}`);
        }
      });
    }
  });

  it('rows that are not read are not read: NaN logits there change nothing (every variant, f32 and bf16 gradient)', () => {
    for (const variant of VARIANTS) {
      for (const gradDtype of ['f32', 'bf16'] as const) {
        const c = build({ B: 3, T: 4, V: 257, seed: 510, variant, mask: 'f32', ignore: 0.2, entropyCoef: 0.01 });
        const want = call(c, { gradDtype });
        const z = Float32Array.from(c.logits as Float32Array);
        let poisoned = 0;
        for (let r = 0; r < c.n; r++) if (!isRead(c, r)) (z.fill(Number.NaN, r * 257, (r + 1) * 257), poisoned++);
        expect(poisoned).toBeGreaterThan(2);
        const got = call(c, { gradDtype }, z);
        expect(Object.is(got.loss, want.loss)).toBe(true);
        expect(got.metrics).toEqual(want.metrics);
        expect(Array.from(got.gradLogits)).toEqual(Array.from(want.gradLogits));
        expect(Array.from(got.logprobs)).toEqual(Array.from(want.logprobs));
      }
    }
  });

  it('gspo reads the logits twice, every aggregation with uneven masks and one empty sequence', () => {
    AGGS.forEach((aggregation, k) => {
      for (const mask of ['u8', 'f32'] as const) {
        const c = build({ B: 4, T: 13, V: 129, seed: 600 + k, variant: 'gspo', aggregation, mask, entropyCoef: 0.01, kl: 'k3', dualClip: 3 });
        const got = call(c);
        checkRef(c, got, `gspo ${aggregation} ${mask}`);
        checkSeparate(c, got, `gspo ${aggregation} ${mask}`);
      }
    });
  });
});

describe('policyLossFromLogits: the gradient against central finite differences of the float64 loss', () => {
  const cases: Spec[] = [
    { B: 2, T: 5, V: 61, seed: 1, variant: 'ppo', dualClip: 2, delta: 1.5, mask: 'u8', perToken: true },
    { B: 3, T: 5, V: 61, seed: 2, variant: 'gspo', mask: 'f32', aggregation: 'token-mean', kl: 'k3+', entropyCoef: 0.05 },
    { B: 2, T: 5, V: 61, seed: 3, variant: 'cispo', epsilonHigh: 1.1, mask: 'u8', kl: 'k2', temperature: 0.7 },
    { B: 2, T: 5, V: 61, seed: 4, variant: 'sapo', entropyCoef: -0.03, tokenWeights: true, aggregation: 'seq-mean-token-sum' },
    { B: 2, T: 5, V: 61, seed: 5, variant: 'gpg', kl: 'abs', aggregation: 'seq-mean-token-sum-norm', temperature: 1.6, ninf: 0.3 },
    { B: 1, T: 3, V: 1001, seed: 6, variant: 'ppo', kl: 'k1', entropyCoef: 0.02, sd: 4, dtype: 'bf16' },
  ];
  for (const s of cases) {
    it(`${s.variant} ${s.aggregation ?? ''} ${s.kl ?? ''} V=${s.V}${s.dtype ? ` ${s.dtype}` : ''}`, () => {
      const c = build(s);
      const got = call(c);
      const g = gradAsF32(got.gradLogits);
      const z0 = Float64Array.from(c.decoded);
      const f0 = refTokenLogprobs(z0, c.targets, s.V, c.tau, c.ii);
      // Keep away from the clip kinks: every read token's ratio (GSPO: its sequence's) at least 1e-3
      // from 1 - epsLow, 1 + epsHigh, delta and dualClip; |logp - ref| >= 1e-3 for 'abs'.
      const ro = c.ro;
      const kinks = ro.variant === 'ppo' || ro.variant === 'gspo' ? [1 - ro.epsilonLow, 1 + ro.epsilonHigh, ro.delta ?? NaN, ro.dualClip ?? NaN] : [];
      const T = s.T;
      for (let b = 0; b < s.B; b++) {
        let M = 0, md = 0;
        for (let t = 0; t < T; t++) {
          const i = b * T + t;
          if (weight(c, i) > 0) (M += weight(c, i)), (md += weight(c, i) * (f0.logp[i] - c.old[i]));
        }
        for (let t = 0; t < T; t++) {
          const i = b * T + t;
          if (!(weight(c, i) > 0)) continue;
          const ratio = ro.variant === 'gspo' ? Math.exp(md / M) : Math.exp(f0.logp[i] - c.old[i]);
          for (const k of kinks) if (Math.abs(ratio - k) < 1e-3) expect.fail(`token ${i}: ratio ${ratio} within 1e-3 of the kink ${k}; pick another seed`);
          if (ro.klEstimator === 'abs' && c.ref) expect(Math.abs(f0.logp[i] - c.ref[i])).toBeGreaterThan(1e-3);
        }
      }
      const loss = (z: Float64Array) => refOp(c, z, undefined, undefined, f0.logp).loss;
      const r = rng(s.seed + 99);
      let checked = 0;
      let gmax = 0;
      for (let i = 0; i < g.length; i++) gmax = Math.max(gmax, Math.abs(g[i]));
      expect(gmax).toBeGreaterThan(0);
      for (let row = 0; row < c.n; row++) {
        if (!isRead(c, row)) continue;
        // the target, and a few other logits of the row
        const js = [c.targets[row], ...Array.from({ length: 3 }, () => Math.floor(r() * s.V))];
        for (const j of js) {
          const i = row * s.V + j;
          if (z0[i] === -Infinity) continue;
          const fd = centralDiff(loss, z0, i, 1e-6);
          const tol = 1e-5 * Math.abs(fd) + 1e-6 * gmax + 1e-9;
          WORST.fd = Math.max(WORST.fd, Math.abs(g[i] - fd) / (Math.abs(fd) + 1e-6 * gmax));
          WORST.fdOfMax = Math.max(WORST.fdOfMax, Math.abs(g[i] - fd) / gmax);
          WORST.fdOfTol = Math.max(WORST.fdOfTol, Math.abs(g[i] - fd) / tol);
          if (!(Math.abs(g[i] - fd) <= tol)) expect.fail(`gradLogits[${i}] (row ${row}, j ${j}): ${g[i]}, central difference ${fd} (tol ${tol})`);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(5);
    });
  }
});

describe('policyLossFromLogits: gradDtype, inPlace, out buffers, Async, threads', () => {
  it("gradDtype 'bf16' is the f32 gradient rounded to nearest even, every element (target included), every SIMD level", () => {
    const V = 9000; // three 4096-logit chunks, the last one short: targets in each
    for (const level of LEVELS) {
      setSimdLevel(level);
      VARIANTS.forEach((variant, k) => {
        for (const dtype of ['f32', 'bf16', 'f16'] as const) {
          const c = build({ B: 3, T: 3, V, seed: 700 + k, variant, dtype, mask: 'u8', entropyCoef: 0.02, ninf: 0.1, ignore: 0.1, temperature: 0.8 });
          c.targets[0] = 5; // (sequence 1, rows 3-5, is masked out)
          c.targets[6] = 4100;
          c.targets[7] = V - 1;
          const f = call(c);
          const b = call(c, { gradDtype: 'bf16' });
          expect(b.gradLogits).toBeInstanceOf(Uint16Array);
          expect(b.loss).toBe(f.loss);
          expect(Array.from(b.logprobs)).toEqual(Array.from(f.logprobs));
          const gf = f.gradLogits as Float32Array, gb = b.gradLogits as Uint16Array;
          let nonzero = 0;
          for (let i = 0; i < gf.length; i++) {
            if (gb[i] !== toBf16(gf[i])) expect.fail(`${level} ${variant} ${dtype}: gradLogits[${i}] bits ${gb[i]}, bf16(${gf[i]}) = ${toBf16(gf[i])}`);
            if (gf[i] !== 0) nonzero++;
          }
          expect(nonzero).toBeGreaterThan(1000);
          // the target elements are there (the largest entries of a row): they are checked above too
          let targetsSeen = 0;
          for (let r = 0; r < c.n; r++) {
            if (!isRead(c, r)) continue;
            expect(gb[r * V + c.targets[r]]).toBe(toBf16(gf[r * V + c.targets[r]]));
            targetsSeen++;
          }
          expect(targetsSeen).toBeGreaterThanOrEqual(2);
        }
      });
    }
  });

  it('inPlace f32 and bf16: the gradient written over the logits, the values of the out-of-place call (every SIMD level)', () => {
    for (const [level, variant] of LEVELS.flatMap((l) => VARIANTS.map((v) => [l, v] as const))) {
      setSimdLevel(level);
      const c = build({ B: 3, T: 3, V: 9000, seed: 800, variant, mask: 'f32', ignore: 0.1, entropyCoef: 0.01, ninf: 0.1 });
      c.targets[2] = 4096;
      c.targets[7] = 8999;
      const want = call(c);
      const z = Float32Array.from(c.logits as Float32Array);
      const got = call(c, { inPlace: true }, z);
      expect(got.gradLogits).toBe(z);
      expect(Array.from(z)).toEqual(Array.from(want.gradLogits));
      expect(got.loss).toBe(want.loss);
      expect(Array.from(got.logprobs)).toEqual(Array.from(want.logprobs));

      const cb = build({ B: 3, T: 3, V: 9000, seed: 801, variant, dtype: 'bf16', mask: 'u8', ignore: 0.1, entropyCoef: 0.01, ninf: 0.1 });
      cb.targets[0] = 8999;
      cb.targets[2] = 4095;
      const wantB = call(cb, { gradDtype: 'bf16' });
      const zb = Uint16Array.from(cb.logits as Uint16Array);
      const gotB = call(cb, { gradDtype: 'bf16', inPlace: true }, zb);
      expect(gotB.gradLogits).toBe(zb);
      expect(Array.from(zb)).toEqual(Array.from(wantB.gradLogits));
      expect(gotB.loss).toBe(wantB.loss);
      expect(gotB.entropy && Array.from(gotB.entropy)).toEqual(wantB.entropy && Array.from(wantB.entropy));
    }
  });

  it('inPlace f32 without an entropy term (each row keeps its exponentials in its own logits): the out-of-place bits, every variant x aggregation', () => {
    // With no entropy term the gradient needs no logit once its 2^u is stored, so an in-place f32
    // call keeps each row's 2^u over the row's own logits (where its gradient goes next) instead of
    // in the thread's buffer; the target logit is read first. 32 rows on two threads (blocks of 4
    // consecutive rows: the pipelined path), targets on chunk boundaries.
    for (const [level, variant] of LEVELS.flatMap((l) => VARIANTS.map((v) => [l, v] as const))) {
      setSimdLevel(level);
      for (const aggregation of AGGS) {
        for (const kl of [undefined, 'k1', 'k3'] as const) {
          const c = build({ B: 4, T: 8, V: 8200, seed: 820, variant, aggregation, kl, mask: 'f32', ignore: 0.1, ninf: 0.1, returnEntropy: true, tokenWeights: true });
          c.targets[1] = 4096;
          c.targets[5] = 8199;
          c.targets[6] = 0;
          const want = call(c);
          const z = Float32Array.from(c.logits as Float32Array);
          const got = call(c, { inPlace: true }, z);
          const tag = `${level} ${variant} ${aggregation} ${kl}`;
          expect(got.gradLogits, tag).toBe(z);
          expect(Object.is(got.loss, want.loss), tag).toBe(true);
          expect(got.metrics, tag).toEqual(want.metrics);
          expect(Array.from(got.logprobs), tag).toEqual(Array.from(want.logprobs));
          expect(Array.from(got.entropy!), tag).toEqual(Array.from(want.entropy!));
          expectSameBits(z, want.gradLogits, `${tag}: gradLogits`);
        }
      }
    }
  });

  it('out buffers: the returned arrays are the given ones, reused (dirty) buffers give the same values', () => {
    for (const gradDtype of ['f32', 'bf16'] as const) {
      const c = build({ B: 3, T: 5, V: 333, seed: 900, variant: 'gspo', mask: 'u8', ignore: 0.2, returnEntropy: true });
      const want = call(c, { gradDtype });
      const gradLogits = gradDtype === 'f32' ? new Float32Array(c.n * 333).fill(Number.NaN) : new Uint16Array(c.n * 333).fill(0x7fc0);
      const logprobs = new Float32Array(c.n).fill(Number.NaN), entropy = new Float32Array(c.n).fill(Number.NaN);
      for (let rep = 0; rep < 2; rep++) {
        const got = call(c, { gradDtype, out: { gradLogits, logprobs, entropy } });
        expect(got.gradLogits).toBe(gradLogits);
        expect(got.logprobs).toBe(logprobs);
        expect(got.entropy).toBe(entropy);
        expect(Array.from(gradLogits)).toEqual(Array.from(want.gradLogits));
        expect(Array.from(logprobs)).toEqual(Array.from(want.logprobs));
        expect(Array.from(entropy)).toEqual(Array.from(want.entropy!));
        expect(got.loss).toBe(want.loss);
      }
    }
  });

  // One thread (so every row but the last is written by the pipeline), every SIMD level, f32 and
  // bf16, rows of 1001 and 4097 logits (which also move the row start from row to row), with and
  // without the entropy term; `run` gets the gradient's dtype and element size and the case.
  const everyOffsetCase = (run: (level: SimdLevel, dt: 'f32' | 'bf16', esz: number, V: number, entropyCoef: number | undefined) => void) => {
    setNumThreads(1);
    for (const level of LEVELS) {
      setSimdLevel(level);
      for (const dt of ['f32', 'bf16'] as const) {
        for (const V of [1001, 4097]) {
          for (const entropyCoef of [undefined, 0.01]) run(level, dt, dt === 'f32' ? 4 : 2, V, entropyCoef);
        }
      }
    }
  };

  it('a gradient buffer at every element offset in 128 bytes: the separate calls, and the same bits at each offset', () => {
    // The gradient's streaming stores go by pairs of vectors (128 bytes of f32 with AVX-512, 64 of
    // bf16) from the row's first element aligned to one such pair; the elements before it and
    // after the last whole aligned pair are written apart, from the one kept row
    // buffer that the next row's statistics overwrite as they go.
    everyOffsetCase((level, gradDtype, esz, V, entropyCoef) => {
      const c = build({ B: 2, T: 4, V, seed: 950 + V, mask: 'u8', entropyCoef, ninf: 0.05 });
      const want = call(c, { gradDtype });
      if (gradDtype === 'f32') checkSeparate(c, want, `${level} V=${V} entropyCoef=${entropyCoef}`);
      const buf = new ArrayBuffer((c.n * V + 128 / esz) * esz);
      for (let k = 0; k < 128 / esz; k++) {
        const g = gradDtype === 'f32' ? new Float32Array(buf, k * 4, c.n * V).fill(Number.NaN) : new Uint16Array(buf, k * 2, c.n * V).fill(0x7fc0);
        call(c, { gradDtype, out: { gradLogits: g } });
        expectSameBits(g, want.gradLogits, `${level} ${gradDtype} V=${V} entropyCoef=${entropyCoef} offset ${k}: gradLogits`);
      }
    });
  });

  it('in place at every element offset in 128 bytes: the out-of-place bits (plain stores over the lines just read)', () => {
    // A gradient written over the logits goes out with plain stores (those lines were read a row
    // earlier and are still in cache) but through the same pair-aligned rider; f32 over f32 logits
    // (without the entropy term: each row's own logits as its buffer), bf16 over bf16 logits.
    everyOffsetCase((level, dtype, esz, V, entropyCoef) => {
      const c = build({ B: 2, T: 4, V, seed: 960 + V, dtype, mask: 'u8', entropyCoef, ninf: 0.05 });
      const want = call(c, { gradDtype: dtype });
      const buf = new ArrayBuffer((c.n * V + 128 / esz) * esz);
      for (let k = 0; k < 128 / esz; k++) {
        const z = dtype === 'f32' ? new Float32Array(buf, k * 4, c.n * V) : new Uint16Array(buf, k * 2, c.n * V);
        z.set(c.logits);
        const got = call(c, { gradDtype: dtype, inPlace: true }, z);
        expect(got.gradLogits).toBe(z);
        expect(got.loss).toBe(want.loss);
        expectSameBits(z, want.gradLogits, `${level} ${dtype} V=${V} entropyCoef=${entropyCoef} offset ${k}: gradLogits`);
      }
    });
  });

  it('Async gives the same bits as sync', async () => {
    for (const variant of ['ppo', 'gspo'] as const) {
      for (const gradDtype of ['f32', 'bf16'] as const) {
        const c = build({ B: 3, T: 7, V: 1001, seed: 950, variant, mask: 'f32', kl: 'k3', entropyCoef: 0.01, ignore: 0.1 });
        const want = call(c, { gradDtype });
        const got = await policyLossFromLogitsAsync(c.logits, c.targets, c.old, c.adv, c.mask, { ...c.options, gradDtype });
        expect(Object.is(got.loss, want.loss)).toBe(true);
        expect(got.metrics).toEqual(want.metrics);
        expect(Array.from(got.gradLogits)).toEqual(Array.from(want.gradLogits));
        expect(Array.from(got.logprobs)).toEqual(Array.from(want.logprobs));
        expect(Array.from(got.entropy!)).toEqual(Array.from(want.entropy!));
      }
    }
  });

  it('results are bit-identical for setNumThreads 1, 2, 3', () => {
    for (const variant of VARIANTS) {
      for (const gradDtype of ['f32', 'bf16'] as const) {
        const c = build({ B: 5, T: 7, V: 1001, seed: 960, variant, mask: 'u8', perToken: true, entropyCoef: 0.01, kl: 'k2', ignore: 0.1 });
        const runs = [1, 2, 3].map((t) => {
          setNumThreads(t);
          const r = call(c, { gradDtype });
          return [r.loss, r.metrics, Array.from(r.gradLogits), Array.from(r.logprobs), Array.from(r.entropy!)];
        });
        expect(runs[1]).toEqual(runs[0]);
        expect(runs[2]).toEqual(runs[0]);
      }
    }
  });

  it('BigInt64Array targets (onnxruntime int64 ids) give the Int32Array results', async () => {
    const c = build({ B: 2, T: 5, V: 33, seed: 980, mask: 'u8', ignore: 0.2, variant: 'gspo' });
    const want = call(c);
    const ids = BigInt64Array.from(c.targets, (v) => BigInt(v));
    const got = policyLossFromLogits(c.logits, ids, c.old, c.adv, c.mask, c.options);
    expect(got.loss).toBe(want.loss);
    expect(Array.from(got.gradLogits)).toEqual(Array.from(want.gradLogits));
    const asy = await policyLossFromLogitsAsync(c.logits, ids, c.old, c.adv, c.mask, c.options);
    expect(Array.from(asy.gradLogits)).toEqual(Array.from(want.gradLogits));
    ids[3] = BigInt(2) ** BigInt(40);
    expect(() => policyLossFromLogits(c.logits, ids, c.old, c.adv, c.mask, c.options)).toThrow(/^targets\[3\]: expected an id in the int32 range/);
  });

  it('the presets and lossType read as in policyLoss', () => {
    const c = build({ B: 2, T: 5, V: 17, seed: 970, mask: 'u8' });
    const { aggregation: _a, ...o } = c.options;
    const a = policyLossFromLogits(c.logits, c.targets, c.old, c.adv, c.mask, { ...o, lossType: 'dr_grpo' });
    const b = policyLossFromLogits(c.logits, c.targets, c.old, c.adv, c.mask, { ...o, aggregation: 'seq-mean-token-sum-norm' });
    expect(a.loss).toBe(b.loss);
    expect(Array.from(a.gradLogits)).toEqual(Array.from(b.gradLogits));
    const v = policyLossFromLogits(c.logits, c.targets, c.old, c.adv, c.mask, { ...o, preset: 'verl' });
    const d = policyLossFromLogits(c.logits, c.targets, c.old, c.adv, c.mask, { ...o, dualClip: 3 });
    expect(v.loss).toBe(d.loss);
  });
});

describe('policyLossFromLogits: bad inputs', () => {
  const c = build({ B: 2, T: 3, V: 5, seed: 1 });
  const n = c.n, V = 5;
  const base = { vocab: V, seqLen: 3 };
  const any = policyLossFromLogits as unknown as (...a: unknown[]) => unknown;
  const z = c.logits as Float32Array;
  const cases: [string, () => unknown, RegExp, typeof TypeError | typeof RangeError][] = [
    ['logits type', () => any(Array.from(z), c.targets, c.old, c.adv, null, base), /^logits: expected .*received Array\(30\)/, TypeError],
    ['logits Float64Array', () => any(Float64Array.from(z), c.targets, c.old, c.adv, null, base), /^logits: expected .*Float32Array.*received Float64Array/, TypeError],
    ['logits length', () => any(z.subarray(1), c.targets, c.old, c.adv, null, base), /^logits: expected a length that is a multiple of vocab \(5\), received length 29/, RangeError],
    ['targets type', () => any(z, Float32Array.from(c.targets), c.old, c.adv, null, base), /^targets: expected .*Int32Array.*received Float32Array\(6\)/, TypeError],
    ['targets length', () => any(z, c.targets.subarray(1), c.old, c.adv, null, base), /^targets: expected length 6, received length 5/, RangeError],
    ['target out of range', () => any(z, Int32Array.of(0, 1, 5, 2, 3, 4), c.old, c.adv, null, base), /^targets\[2\]: expected an id in \[0, 5\) or ignoreIndex \(-100\), received 5/, RangeError],
    ['negative target', () => any(z, Int32Array.of(0, 1, 2, -1, 3, 4), c.old, c.adv, null, base), /^targets\[3\]: expected an id in \[0, 5\) or ignoreIndex \(-100\), received -1/, RangeError],
    ['oldLogprobs type', () => any(z, c.targets, Float64Array.from(c.old), c.adv, null, base), /^oldLogprobs: expected a Float32Array, received Float64Array\(6\)/, TypeError],
    ['oldLogprobs length', () => any(z, c.targets, c.old.subarray(1), c.adv, null, base), /^oldLogprobs: expected length 6, received length 5/, RangeError],
    ['advantages length', () => any(z, c.targets, c.old, new Float32Array(4), null, base), /^advantages: expected length 2 \(one per sequence\) or 6 \(one per token\), received length 4/, RangeError],
    ['advantages type', () => any(z, c.targets, c.old, [1, 2], null, base), /^advantages: expected a Float32Array, received Array\(2\)/, TypeError],
    ['mask type', () => any(z, c.targets, c.old, c.adv, new Int8Array(n), base), /^mask: expected a Uint8Array, a Float32Array of weights or null, received Int8Array\(6\)/, TypeError],
    ['mask length', () => any(z, c.targets, c.old, c.adv, new Uint8Array(5), base), /^mask: expected length 6, received length 5/, RangeError],
    ['options missing', () => any(z, c.targets, c.old, c.adv, null), /^options: expected an options object/, TypeError],
    ['vocab missing', () => any(z, c.targets, c.old, c.adv, null, { seqLen: 3 }), /^options\.vocab: expected an integer, received undefined/, TypeError],
    ['seqLen missing', () => any(z, c.targets, c.old, c.adv, null, { vocab: V }), /^options\.seqLen: expected an integer, received undefined/, TypeError],
    ['seqLen not dividing', () => any(z, c.targets, c.old, c.adv, null, { vocab: V, seqLen: 4 }), /^options\.seqLen: expected a divisor of the number of logits rows \(6\), received 4/, RangeError],
    ['seqLen 0', () => any(z, c.targets, c.old, c.adv, null, { vocab: V, seqLen: 0 }), /^options\.seqLen: expected an integer in \[1, 2147483647\], received 0/, RangeError],
    ['gradDtype', () => any(z, c.targets, c.old, c.adv, null, { ...base, gradDtype: 'f16' }), /^options\.gradDtype: expected one of 'f32', 'bf16', received string 'f16'/, RangeError],
    ['inPlace bf16 grad over f32 logits', () => any(z, c.targets, c.old, c.adv, null, { ...base, inPlace: true, gradDtype: 'bf16' }), /^options\.inPlace: a bf16 gradient can overwrite bf16 logits only, received dtype 'f32'/, TypeError],
    ['inPlace f32 grad over bf16 logits', () => any(new Uint16Array(30), c.targets, c.old, c.adv, null, { ...base, dtype: 'bf16', inPlace: true }), /^options\.inPlace: a f32 gradient can overwrite f32 logits only, received dtype 'bf16'/, TypeError],
    ['inPlace f16 logits', () => any(new Uint16Array(30), c.targets, c.old, c.adv, null, { ...base, dtype: 'f16', inPlace: true, gradDtype: 'bf16' }), /^options\.inPlace: a bf16 gradient can overwrite bf16 logits only, received dtype 'f16'/, TypeError],
    ['inPlace not boolean', () => any(z, c.targets, c.old, c.adv, null, { ...base, inPlace: 1 }), /^options\.inPlace: expected a boolean, received number 1/, TypeError],
    ['inPlace with another out.gradLogits', () => any(Float32Array.from(z), c.targets, c.old, c.adv, null, { ...base, inPlace: true, out: { gradLogits: new Float32Array(30) } }), /^options\.out\.gradLogits: expected no buffer \(or the logits themselves\) with inPlace: true, received another array/, TypeError],
    ['out.gradLogits is logits', () => any(z, c.targets, c.old, c.adv, null, { ...base, out: { gradLogits: z } }), /^options\.out\.gradLogits: is the logits array; pass inPlace: true to overwrite the logits/, TypeError],
    ['out.gradLogits type (f32 grad)', () => any(z, c.targets, c.old, c.adv, null, { ...base, out: { gradLogits: new Uint16Array(30) } }), /^options\.out\.gradLogits: expected a Float32Array, received Uint16Array\(30\)/, TypeError],
    ['out.gradLogits type (bf16 grad)', () => any(z, c.targets, c.old, c.adv, null, { ...base, gradDtype: 'bf16', out: { gradLogits: new Float32Array(30) } }), /^options\.out\.gradLogits: expected a Uint16Array, received Float32Array\(30\)/, TypeError],
    ['out.gradLogits length', () => any(z, c.targets, c.old, c.adv, null, { ...base, out: { gradLogits: new Float32Array(29) } }), /^options\.out\.gradLogits: expected length 30, received length 29/, RangeError],
    ['out.gradLogits overlapping logits', () => {
      const buf = new Float32Array(40);
      buf.set(z);
      return any(buf.subarray(0, 30), c.targets, c.old, c.adv, null, { ...base, out: { gradLogits: buf.subarray(10, 40) } });
    }, /^options\.out\.gradLogits: expected a buffer apart from (logits|the input logits).*overlaps/, RangeError],
    ['out.logprobs length', () => any(z, c.targets, c.old, c.adv, null, { ...base, out: { logprobs: new Float32Array(5) } }), /^options\.out\.logprobs: expected length 6, received length 5/, RangeError],
    ['out.entropy without returnEntropy', () => any(z, c.targets, c.old, c.adv, null, { ...base, out: { entropy: new Float32Array(6) } }), /^options\.out\.entropy: expected no buffer without returnEntropy or entropyCoef, received one/, TypeError],
    ['out unknown key', () => any(z, c.targets, c.old, c.adv, null, { ...base, out: { grad: new Float32Array(30) } }), /^options\.out\.grad: not an output of policyLossFromLogits \(did you mean 'gradLogits'\?\)/, TypeError],
    ['beta without refLogprobs', () => any(z, c.targets, c.old, c.adv, null, { ...base, beta: 0.1 }), /^options\.beta: applies with options\.refLogprobs only, expected undefined without it, received number 0\.1/, TypeError],
    ['klEstimator without refLogprobs', () => any(z, c.targets, c.old, c.adv, null, { ...base, klEstimator: 'k1' }), /^options\.klEstimator: applies with options\.refLogprobs only/, TypeError],
    ['refLogprobs length', () => any(z, c.targets, c.old, c.adv, null, { ...base, refLogprobs: new Float32Array(5) }), /^options\.refLogprobs: expected length 6, received length 5/, RangeError],
    ['tokenWeights type', () => any(z, c.targets, c.old, c.adv, null, { ...base, tokenWeights: new Uint8Array(6) }), /^options\.tokenWeights: expected a Float32Array, received Uint8Array\(6\)/, TypeError],
    ['entropy as an input', () => any(z, c.targets, c.old, c.adv, null, { ...base, entropy: new Float32Array(6) }), /^options\.entropy: not an option of policyLossFromLogits/, TypeError],
    ['returnEntropy not boolean', () => any(z, c.targets, c.old, c.adv, null, { ...base, returnEntropy: 'yes' }), /^options\.returnEntropy: expected a boolean, received string 'yes'/, TypeError],
    ['entropyCoef NaN', () => any(z, c.targets, c.old, c.adv, null, { ...base, entropyCoef: Number.NaN }), /^options\.entropyCoef: expected a finite number in \[-Infinity, Infinity\], received NaN/, RangeError],
    ['temperature 0', () => any(z, c.targets, c.old, c.adv, null, { ...base, temperature: 0 }), /^options\.temperature: expected a finite positive number, received 0/, RangeError],
    ['variant', () => any(z, c.targets, c.old, c.adv, null, { ...base, variant: 'grpo' }), /^options\.variant: expected one of 'ppo', 'gspo', 'cispo', 'sapo', 'gpg', received string 'grpo'/, RangeError],
    ['epsilonHigh with gpg', () => any(z, c.targets, c.old, c.adv, null, { ...base, variant: 'gpg', epsilonHigh: 0.28 }), /^options\.epsilonHigh: applies to variants 'ppo', 'gspo' and 'cispo' only, expected undefined with variant 'gpg', received number 0\.28/, TypeError],
    ['epsilon (did you mean)', () => any(z, c.targets, c.old, c.adv, null, { ...base, epsilon: 0.2 }), /^options\.epsilon: not an option of policyLossFromLogits \(did you mean 'epsilonLow'\?\)/, TypeError],
    ['clip_ratio (peer name)', () => any(z, c.targets, c.old, c.adv, null, { ...base, clip_ratio: 0.2 }), /^options\.clip_ratio: not an option of policyLossFromLogits \(did you mean 'epsilonLow'\?\)/, TypeError],
    ['entropy_coeff (peer name)', () => any(z, c.targets, c.old, c.adv, null, { ...base, entropy_coeff: 0.01 }), /^options\.entropy_coeff: not an option of policyLossFromLogits \(did you mean 'entropyCoef'\?\)/, TypeError],
    ['grad_dtype', () => any(z, c.targets, c.old, c.adv, null, { ...base, grad_dtype: 'bf16' }), /^options\.grad_dtype: not an option of policyLossFromLogits \(did you mean 'gradDtype'\?\)/, TypeError],
    ['wantEntropy is internal', () => any(z, c.targets, c.old, c.adv, null, { ...base, wantEntropy: true }), /^options\.wantEntropy: not an option of policyLossFromLogits/, TypeError],
    ['lossType beside aggregation', () => any(z, c.targets, c.old, c.adv, null, { ...base, lossType: 'grpo', aggregation: 'token-mean' }), /^options\.lossType: sets the aggregation/, TypeError],
  ];
  for (const [name, f, re, type] of cases) {
    it(`${name}: ${type.name}`, () => {
      expect(f).toThrow(type);
      expect(f).toThrow(re);
    });
  }
  it('f32 mask weights: negative, NaN or infinite (every variant; gspo reads them after its first pass)', () => {
    for (const variant of VARIANTS) {
      // the native message, worded as policyLoss', the number as JavaScript writes it (the f32 value)
      for (const [w, text] of [[-1, '-1'], [-0.1, '-0\\.10000000149011612'], [Number.NaN, 'NaN'], [Number.POSITIVE_INFINITY, 'Infinity']] as const) {
        const m = new Float32Array(n).fill(1);
        m[4] = w;
        const zz = Float32Array.from(z);
        const f = () => policyLossFromLogits(zz, c.targets, c.old, c.adv, m, { ...base, variant, inPlace: true });
        expect(f).toThrow(RangeError);
        expect(f).toThrow(new RegExp(`^mask\\[4\\]: expected a finite weight >= 0, received ${text}$`));
        // nothing written over the logits
        expect(Array.from(zz)).toEqual(Array.from(z));
      }
    }
  });
  it('the Async form rejects with the same errors', async () => {
    await expect(policyLossFromLogitsAsync(z, c.targets, c.old, c.adv, null, { vocab: V, seqLen: 4 })).rejects.toThrow(/^options\.seqLen: expected a divisor/);
    await expect(policyLossFromLogitsAsync(z, c.targets, c.old, c.adv, null, { ...base, epsilon: 0.2 } as never)).rejects.toThrow(/did you mean 'epsilonLow'/);
  });
  it('empty input: zero rows give loss 0 and empty arrays', () => {
    const r = policyLossFromLogits(new Float32Array(0), new Int32Array(0), new Float32Array(0), new Float32Array(0), null, { vocab: 7, seqLen: 3 });
    expect(r.gradLogits.length).toBe(0);
    expect(r.logprobs.length).toBe(0);
    expect(r.loss).toBe(0);
  });
});

describe('worst differences measured', () => {
  it('prints them (vitest output) and they are within the asserted tolerances', () => {
    // grad: |op - float64| / tolerance; gradVsSeparate: |fused - separate| / (|separate| + the p_j term);
    // fd: |op - central difference| / (|fd| + 1e-6 max|grad|)
    console.log('policyLossFromLogits worst:', JSON.stringify(WORST));
    expect(WORST.logp).toBeLessThanOrEqual(1);
    expect(WORST.grad).toBeLessThanOrEqual(1);
  });
});

describe('policyLossFromLogits: a bad mask weight writes nothing', () => {
  const c = build({ B: 2, T: 3, V: 5, seed: 3 });
  const z = c.logits as Float32Array;
  for (const variant of ['ppo', 'gspo'] as const) {
    it(`${variant}: the outputs keep their contents when mask[4] is NaN`, () => {
      const m = new Float32Array(6).fill(1);
      m[4] = NaN;
      const lp = new Float32Array(6).fill(7), g = new Float32Array(30).fill(7);
      expect(() => policyLossFromLogits(z, c.targets, c.old, c.adv, m, { vocab: 5, seqLen: 3, variant, out: { logprobs: lp, gradLogits: g } })).toThrow(/^mask\[4\]/);
      expect(Array.from(lp)).toEqual(new Array(6).fill(7));
      expect(Array.from(g)).toEqual(new Array(30).fill(7));
    });
  }
});

describe('policyLossFromLogits: rows longer than 2^20 (the exponential recomputed, not kept)', () => {
  for (const gradDtype of ['f32', 'bf16'] as const) {
    it(`V = 2^20 + 3, entropy term, ${gradDtype} gradient: the three separate calls`, () => {
      const c = build({ B: 1, T: 2, V: 2 ** 20 + 3, seed: 71, entropyCoef: 0.02, kl: 'k3' });
      const got = call(c, { gradDtype });
      if (gradDtype === 'f32') checkSeparate(c, got, 'long rows');
      else {
        const f32 = call(c);
        checkSeparate(c, f32, 'long rows f32');
        const g = got.gradLogits as Uint16Array, w = f32.gradLogits as Float32Array;
        const u = new Uint32Array(w.buffer, w.byteOffset, w.length);
        for (let i = 0; i < w.length; i++) {
          const want = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
          if (g[i] !== want) expect.fail(`gradLogits[${i}]: ${g[i]} vs the f32 gradient rounded ${want}`);
        }
      }
    });
  }
});
