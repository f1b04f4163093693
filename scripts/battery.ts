// The output-hash battery: every op, every variant and option mode, every logits dtype, odd sizes,
// on every SIMD level this CPU has, hashed (SHA-256 of the exact output bits). A structural change
// must leave every hash as it was.
//
//   npx tsx scripts/battery.ts            print one hash per op and SIMD level, and a total
//   npx tsx scripts/battery.ts --write    also store them in tests/battery-hashes.json
//   npx tsx scripts/battery.ts --check    compare with tests/battery-hashes.json (exit 1 on a change)
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as rk from '../lib/index.js';
import { rng } from '../tests/rng.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const store = path.join(here, '..', 'tests', 'battery-hashes.json');

function randn(n: number, sd: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = sd * Math.sqrt(-2 * Math.log(Math.max(r(), 1e-300))) * Math.cos(2 * Math.PI * r());
  return a;
}
function randint(n: number, hi: number, seed: number): Int32Array {
  const r = rng(seed);
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.floor(r() * hi);
  return a;
}
function bits(n: number, p: number, seed: number): Uint8Array {
  const r = rng(seed);
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = r() < p ? 1 : 0;
  return a;
}
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bf16(x: Float32Array): Uint16Array {
  const o = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    f32[0] = x[i];
    const u = u32[0];
    o[i] = (u & 0x7fffffff) > 0x7f800000 ? (u >>> 16) | 0x40 : ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return o;
}
function f16(x: Float32Array): Uint16Array {
  // Truncating f32 -> f16 encoder (the battery only needs fixed bits, not exact rounding).
  const o = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    f32[0] = x[i];
    const u = u32[0];
    const sign = (u >>> 16) & 0x8000;
    const e = ((u >>> 23) & 0xff) - 127 + 15;
    const m = (u >>> 13) & 0x3ff;
    if (((u >>> 23) & 0xff) === 0xff) o[i] = sign | 0x7c00 | (m ? 0x200 : 0);
    else if (e >= 31) o[i] = sign | 0x7c00;
    else if (e <= 0) o[i] = sign;
    else o[i] = sign | (e << 10) | m;
  }
  return o;
}

/** Feeds every number and TypedArray of a result, in key order, into the hash. */
function feed(h: Hash, v: unknown, key = ''): void {
  if (v === undefined || v === null) {
    h.update(`${key}:null;`);
  } else if (typeof v === 'number') {
    const d = new Float64Array([v]);
    h.update(`${key}:`);
    h.update(new Uint8Array(d.buffer));
  } else if (ArrayBuffer.isView(v)) {
    h.update(`${key}[${(v as Float32Array).length}]`);
    h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  } else if (typeof v === 'object') {
    for (const k of Object.keys(v as object).sort()) feed(h, (v as Record<string, unknown>)[k], `${key}.${k}`);
  } else {
    h.update(`${key}:${String(v)};`);
  }
}

type Case = [string, () => unknown];
const cases: Record<string, Case[]> = {};
const add = (op: string, name: string, fn: () => unknown) => (cases[op] ??= []).push([name, fn]);

// ---- token log-probs and their backward ---------------------------------------------------------
for (const [N, V, sd] of [[1, 1, 1], [3, 7, 1], [5, 1000, 2], [2, 4099, 30], [17, 129, 0.01], [4, 33000, 3]] as const) {
  const x = randn(N * V, sd, N * 31 + V);
  x[0] = -Infinity;
  if (V > 3) x[V - 1] = 1e4 * (sd > 10 ? 1 : 0) || x[V - 1];
  const t = randint(N, V, N + V);
  if (N > 2) t[1] = -100;
  const g = randn(N, 1, 7 + V);
  const ge = randn(N, 1, 9 + V);
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    const logits = dtype === 'f32' ? x : dtype === 'bf16' ? bf16(x) : f16(x);
    for (const temperature of [1, 0.7]) {
      for (const entropy of [false, true]) {
        add('tokenLogprobs', `${N}x${V} ${dtype} t${temperature} e${entropy}`, () =>
          rk.tokenLogprobs(logits, t, { vocab: V, dtype, temperature, returnEntropy: entropy }),
        );
      }
      add('tokenLogprobsBackward', `${N}x${V} ${dtype} t${temperature}`, () =>
        rk.tokenLogprobsBackward(logits, t, g, { vocab: V, dtype, temperature }),
      );
      add('tokenLogprobsBackward', `${N}x${V} ${dtype} t${temperature} entropy lse`, () => {
        const f = rk.tokenLogprobs(logits, t, { vocab: V, dtype, temperature, returnEntropy: true });
        return rk.tokenLogprobsBackward(logits, t, g, {
          vocab: V, dtype, temperature, gradEntropy: ge, logsumexp: f.logsumexp, entropy: f.entropy,
        });
      });
    }
  }
  // in place: the gradient over (a copy of) the f32 logits, with plain stores
  add('tokenLogprobsBackward', `${N}x${V} f32 t0.7 entropy in place`, () =>
    rk.tokenLogprobsBackward(x.slice(), t, g, { vocab: V, temperature: 0.7, gradEntropy: ge, inPlace: true }),
  );
}

// ---- full-vocabulary divergences ----------------------------------------------------------------
for (const [N, V] of [[1, 5], [3, 1000], [6, 4099]] as const) {
  const a = randn(N * V, 2, N + V);
  const b = randn(N * V, 2, 3 * N + V);
  b[1] = -Infinity;
  const labels = randint(N, V, 5 + V);
  if (N > 1) labels[0] = -100;
  const mask = bits(N, 0.7, V);
  for (const divergence of ['forward_kl', 'reverse_kl', 'jsd'] as const) {
    for (const beta of divergence === 'jsd' ? [0.5, 0, 1, 0.3] : [0.5]) {
      for (const dtype of ['f32', 'bf16'] as const) {
        const la = dtype === 'f32' ? a : bf16(a);
        const lb = dtype === 'f32' ? b : bf16(b);
        add('vocabDivergence', `${N}x${V} ${divergence} b${beta} ${dtype}`, () =>
          rk.vocabDivergence(la, lb, null, { vocab: V, dtype, divergence, ...(divergence === 'jsd' ? { beta } : {}), returnGradient: true, temperature: 0.9 }),
        );
        add('vocabDivergence', `${N}x${V} ${divergence} b${beta} ${dtype} labels`, () =>
          rk.vocabDivergence(la, lb, null, { vocab: V, dtype, divergence, ...(divergence === 'jsd' ? { beta } : {}), labels, returnGradient: true }),
        );
        add('vocabDivergence', `${N}x${V} ${divergence} b${beta} ${dtype} mask`, () =>
          rk.vocabDivergence(la, lb, mask, { vocab: V, dtype, divergence, ...(divergence === 'jsd' ? { beta } : {}), returnGradient: true, gradOutput: 0.5 }),
        );
      }
    }
    // in place over (a copy of) the f32 logits: plain stores
    add('vocabDivergence', `${N}x${V} ${divergence} f32 in place`, () =>
      rk.vocabDivergence(a.slice(), b, mask, { vocab: V, divergence, returnGradient: true, inPlace: true }),
    );
  }
}

// ---- DRAKES: Gumbel-softmax and the generalised-KL rate integrand --------------------------------
for (const [N, V] of [[1, 5], [3, 1000], [6, 4099]] as const) {
  const a = randn(N * V, 2, 7 * N + V);
  const b = randn(N * V, 2, 11 * N + V);
  a[2] = -Infinity;
  const g = randn(N * V, 1, 13 * N + V);
  const mask = bits(N, 0.7, V + 1);
  for (const dtype of ['f32', 'bf16'] as const) {
    const la = dtype === 'f32' ? a : bf16(a);
    const lb = dtype === 'f32' ? b : bf16(b);
    add('gumbelSoftmax', `${N}x${V} ${dtype}`, () => rk.gumbelSoftmax(la, { vocab: V, dtype, seed: 17, temperature: 0.7 }));
    add('gumbelSoftmax', `${N}x${V} ${dtype} hard`, () => rk.gumbelSoftmax(la, { vocab: V, dtype, seed: 2 ** 40 + 3, hard: true }));
    add('gumbelSoftmaxBackward', `${N}x${V} ${dtype}`, () => rk.gumbelSoftmaxBackward(la, g, { vocab: V, dtype, seed: 17, temperature: 0.7 }));
    add('drakesKl', `${N}x${V} ${dtype}`, () => rk.drakesKl(la, lb, null, { vocab: V, dtype, moveChance: 0.3, returnGradient: true, returnOldGradient: true }));
    add('drakesKl', `${N}x${V} ${dtype} mask`, () => rk.drakesKl(la, lb, mask, { vocab: V, dtype, moveChance: 0.6, returnGradient: true, gradOutput: 0.5 }));
  }
}

// ---- policy losses and KL ------------------------------------------------------------------------
for (const [B, T] of [[1, 1], [3, 7], [8, 129], [5, 1000]] as const) {
  const n = B * T;
  const lp = randn(n, 0.5, n + 1);
  const old = new Float32Array(n).map((_, i) => lp[i] + 0.3 * randn(1, 1, i + n)[0]);
  const ref = randn(n, 0.5, n + 3);
  const ent = randn(n, 1, n + 4).map(Math.abs);
  const advSeq = randn(B, 1, B + 5);
  const advTok = randn(n, 1, n + 6);
  const m8 = bits(n, 0.8, n + 7);
  const mf = new Float32Array(n).map((_, i) => (m8[i] ? 0.5 + (i % 3) : 0));
  for (const variant of ['ppo', 'gspo', 'cispo', 'sapo', 'gpg'] as const) {
    for (const aggregation of ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum', 'seq-mean-token-sum-norm'] as const) {
      for (const [mname, mask] of [['null', null], ['u8', m8], ['f32', mf]] as const) {
        for (const adv of [advSeq, advTok]) {
          add('policyLoss', `${B}x${T} ${variant} ${aggregation} ${mname} a${adv.length}`, () =>
            rk.policyLoss(lp, old, adv, mask, { seqLen: T, variant, aggregation }),
          );
        }
      }
      for (const klEstimator of ['k1', 'k2', 'k3', 'abs', 'k3+'] as const) {
        add('policyLoss', `${B}x${T} ${variant} ${aggregation} ${klEstimator} ref ent`, () =>
          rk.policyLoss(lp, old, advTok, m8, {
            seqLen: T, variant, aggregation, refLogprobs: ref, beta: 0.04, klEstimator, entropy: ent, entropyCoef: 0.01,
            // each variant gets the options it reads (the others are rejected; they never changed a result)
            epsilonHigh: variant === 'cispo' ? 4 : variant === 'sapo' || variant === 'gpg' ? undefined : 0.28,
            dualClip: variant === 'ppo' || variant === 'gspo' ? 3 : undefined, delta: variant === 'ppo' ? 1.5 : undefined,
            normalizer: aggregation === 'token-mean' ? 17 : undefined,
            ...(variant === 'sapo' ? { sapoTemperaturePos: 0.9, sapoTemperatureNeg: 1.2 } : {}),
          }),
        );
      }
    }
  }
  for (const estimator of ['k1', 'k2', 'k3', 'abs', 'k3+'] as const) {
    const big = new Float32Array(n).map((_, i) => (i % 5 === 0 ? 30 * lp[i] : lp[i]));
    for (const [mname, mask] of [['none', undefined], ['u8', m8], ['f32', mf]] as const) {
      add('klPenalty', `${n} ${estimator} ${mname}`, () => rk.klPenalty(big, ref, mask, { estimator }));
    }
  }
}

// ---- sequence ops (valueLoss, geoMeanPolicyLoss) ---------------------------------------------------
for (const [B, T] of [[1, 1], [3, 7], [9, 130]] as const) {
  const n = B * T;
  const a = randn(n, 1, n + 51), b = randn(n, 1, n + 52), c = randn(n, 1, n + 53);
  const m8 = bits(n, 0.8, n + 54);
  const mf = new Float32Array(n).map((_, i) => (m8[i] ? 0.5 + (i % 3) : 0));
  for (const mask of [null, m8, mf]) {
    for (const aggregation of ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum', 'seq-mean-token-sum-norm'] as const) {
      add('valueLoss', `${B}x${T} ${aggregation} ${mask?.constructor.name}`, () =>
        rk.valueLoss(a, b, c, mask, { seqLen: T, aggregation, cliprangeValue: 0.3 }),
      );
    }
    for (const adv of [randn(B, 1, B + 55), c]) {
      add('geoMeanPolicyLoss', `${B}x${T} a${adv.length} ${mask?.constructor.name}`, () =>
        rk.geoMeanPolicyLoss(a, a.map((x, i) => x + 0.3 * b[i]), adv, mask, { seqLen: T, epsilonLow: 0.3, epsilonHigh: 0.2 }),
      );
    }
  }
}

// ---- pairwise seed-paper losses (d3poLoss, prdpLoss) ---------------------------------------------
for (const [B, T] of [[1, 1], [3, 7], [9, 50]] as const) {
  const n = B * T;
  const a = randn(n, 1, n + 61), b = randn(n, 1, n + 62), e = randn(n, 0.1, n + 63), f = randn(n, 0.1, n + 64);
  const m8 = bits(n, 0.8, n + 65);
  const mf = new Float32Array(n).map((_, i) => (m8[i] ? 0.5 + (i % 3) : 0));
  const h = randn(B, 1, B + 66), r = randn(B, 1, B + 67);
  for (const mask of [null, m8, mf]) {
    add('d3poLoss', `${B}x${T} ${mask?.constructor.name}`, () =>
      rk.d3poLoss(a, b, a.map((x, i) => x + e[i]), b.map((x, i) => x + f[i]), h, h.map((x) => -x), mask, { seqLen: T, beta: 2 }),
    );
    add('prdpLoss', `${B}x${T} ${mask?.constructor.name}`, () =>
      rk.prdpLoss(a, b, a.map((x, i) => x + e[i]), b.map((x, i) => x + f[i]), h, r, mask, { seqLen: T, epsilon: 0.1 }),
    );
    add('prdpLoss', `${B}x${T} ${mask?.constructor.name} mean`, () =>
      rk.prdpLoss(a, b, a.map((x, i) => x + e[i]), b.map((x, i) => x + f[i]), h, r, mask, { seqLen: T, epsilon: 0.05, beta: 2, stepReduction: 'mean' }),
    );
  }
}

// ---- preferenceStrengthLoss ----------------------------------------------------------------------
for (const [P, M] of [[1, 1], [7, 3], [130, 10]] as const) {
  const rc = randn(P, 2, P + 71), rr = randn(P, 2, P + 72), ec = randn(P * M, 1, P + 73), er = randn(P * M, 1, P + 74);
  for (const v of [{}, { labelSmoothing: 0.1, stdCorrection: 0 }, { adaptiveMargin: false, flipNegative: false }]) {
    add('preferenceStrengthLoss', `${P}x${M} ${JSON.stringify(v)}`, () =>
      rk.preferenceStrengthLoss(rc, rr, { ensembleChosen: ec, ensembleRejected: er, ...v }),
    );
  }
}

// ---- p3oLoss -------------------------------------------------------------------------------------
for (const [B, T] of [[1, 1], [3, 7], [9, 50]] as const) {
  const n = B * T;
  const o1 = randn(n, 1, n + 81), o2 = randn(n, 1, n + 82);
  const e1 = randn(n, 0.3 / Math.sqrt(T), n + 83), e2 = randn(n, 0.3 / Math.sqrt(T), n + 84);
  const l1 = o1.map((x, i) => x + e1[i]), l2 = o2.map((x, i) => x + e2[i]);
  const r1 = randn(B, 1, B + 85), r2 = randn(B, 1, B + 86);
  const m1 = bits(n, 0.8, n + 87), m2 = bits(n, 0.8, n + 88);
  for (const clip of ['separate', 'joint'] as const) {
    for (const [k, a, b] of [['none', null, null], ['both', m1, m2], ['first', m1, null]] as const) {
      add('p3oLoss', `${B}x${T} ${clip} ${k}`, () => rk.p3oLoss(l1, l2, o1, o2, r1, r2, a, b, { seqLen: T, clip, epsilon: 0.1 }));
    }
  }
}
// p3oLoss surrogate 'trlx' (its own key, so the ratio cases' hash above stays as it was)
for (const [B, T] of [[1, 1], [3, 7], [9, 50]] as const) {
  const n = B * T;
  const o1 = randn(n, 1, n + 81), o2 = randn(n, 1, n + 82);
  const e1 = randn(n, 0.3 / Math.sqrt(T), n + 83), e2 = randn(n, 0.3 / Math.sqrt(T), n + 84);
  const l1 = o1.map((x, i) => x + e1[i]), l2 = o2.map((x, i) => x + e2[i]);
  const f1 = o1.map((x, i) => x - e2[i]), f2 = o2.map((x, i) => x + 2 * e1[i]);
  const r1 = randn(B, 1, B + 85), r2 = randn(B, 1, B + 86);
  const m1 = bits(n, 0.8, n + 87), m2 = bits(n, 0.8, n + 88);
  const variants = [{}, { clip: 'token' }, { weightClip: 1.2, beta: 0.2, normalizeByTokens: false }, { scaleByStd: true }, { clip: 'token', scaleByStd: true, epsilon: 0.05 }] as const;
  for (const v of variants) {
    for (const [k, a, b] of [['none', null, null], ['both', m1, m2], ['first', m1, null]] as const) {
      add('p3oLoss.trlx', `${B}x${T} ${JSON.stringify(v)} ${k}`, () =>
        rk.p3oLoss(l1, l2, o1, o2, r1, r2, a, b, { seqLen: T, surrogate: 'trlx', refLogprobs1: f1, refLogprobs2: f2, ...v }),
      );
    }
  }
}

// ---- preference losses ---------------------------------------------------------------------------
const LOSSES = ['sigmoid', 'robust', 'hinge', 'ipo', 'exo_pair', 'nca_pair', 'bco_pair', 'sppo_hard', 'apo_zero',
  'apo_down', 'discopop', 'simpo', 'cpo', 'orpo', 'bt'] as const;
const REF_FREE = new Set(['simpo', 'cpo', 'orpo', 'bt']);
const FDIV = new Set(['sigmoid', 'robust', 'hinge', 'ipo', 'exo_pair', 'discopop']);
for (const P of [1, 3, 8, 37, 1029]) {
  const c = randn(P, 3, P + 11).map((v) => v - 20);
  const r = randn(P, 3, P + 12).map((v) => v - 21);
  const rc = randn(P, 3, P + 13).map((v) => v - 20);
  const rr = randn(P, 3, P + 14).map((v) => v - 21);
  const cl = randint(P, 50, P + 15).map((v) => v + 1);
  const rl = randint(P, 50, P + 16).map((v) => v + 1);
  const prob = new Float32Array(P).map((_, i) => (i % 4) / 4 + 0.1);
  const marginArr = randn(P, 0.5, P + 17);
  for (const loss of LOSSES) {
    const refs = REF_FREE.has(loss) ? {} : { refChosenLogps: rc, refRejectedLogps: rr };
    const lens = ['ipo', 'simpo', 'cpo', 'orpo', 'sigmoid'].includes(loss) ? { chosenLengths: cl, rejectedLengths: rl } : {};
    add('preferenceLoss', `${P} ${loss}`, () => rk.preferenceLoss(c, r, { lossType: loss, ...refs, ...lens }));
    add('preferenceLoss', `${P} ${loss} opts`, () =>
      rk.preferenceLoss(c, r, {
        lossType: loss, ...refs, ...lens, beta: 0.3,
        ...(['sigmoid', 'robust', 'exo_pair', 'simpo', 'cpo'].includes(loss) ? { labelSmoothing: 0.1 } : {}),
        ...(loss === 'simpo' ? { gamma: 0.7 } : {}),
        ...(loss === 'bt' ? { preferenceProb: prob } : {}),
        ...(loss === 'bt' ? { margin: marginArr } : {}),
        ...(loss === 'cpo' ? { alpha: 0.5 } : {}),
      }),
    );
    if (FDIV.has(loss)) {
      for (const fDivergence of ['forward_kl', 'js_divergence', 'alpha_divergence'] as const) {
        add('preferenceLoss', `${P} ${loss} ${fDivergence}`, () =>
          rk.preferenceLoss(c, r, { lossType: loss, ...refs, ...lens, fDivergence, ...(fDivergence === 'alpha_divergence' ? { fAlpha: 0.7 } : {}) }),
        );
      }
    }
  }
  add('preferenceLoss', `${P} sigmoid nll`, () =>
    rk.preferenceLoss(c, r, { lossType: 'sigmoid', refChosenLogps: rc, refRejectedLogps: rr, chosenLengths: cl, rejectedLengths: rl, nllWeight: 0.5 }),
  );
  const desirable = bits(P, 0.5, P + 18);
  for (const ref of [undefined, rc]) {
    add('ktoLoss', `${P} ref${ref ? 1 : 0}`, () =>
      rk.ktoLoss(c, { desirable, kl: 0.3, refLogps: ref, beta: 0.2, desirableWeight: 1.3, undesirableWeight: 0.8 }),
    );
  }
  for (const T of [1, 9]) {
    const n = P * T;
    const cm = bits(n, 0.8, n + 19);
    const rm = bits(n, 0.6, n + 26);
    const cf = new Float32Array(n).map((_, i) => (i % 3 === 0 ? 0 : 1 + (i % 2)));
    const rf = new Float32Array(n).map((_, i) => (i % 4 === 0 ? 0 : 0.5));
    add('tokenWeightedDpoLoss', `${P}x${T}`, () =>
      rk.tokenWeightedDpoLoss(randn(n, 1, n + 20), randn(n, 1, n + 21), cm, rm, {
        seqLen: T, refChosenLogps: randn(n, 1, n + 22), refRejectedLogps: randn(n, 1, n + 23),
        chosenTokenRewards: randn(n, 1, n + 24), rejectedTokenRewards: randn(n, 1, n + 25),
        beta: 0.2, alpha: 0.7,
      }),
    );
    add('tokenWeightedDpoLoss', `${P}x${T} f32 masks`, () =>
      rk.tokenWeightedDpoLoss(randn(n, 1, n + 20), randn(n, 1, n + 21), cf, rf, {
        seqLen: T, refChosenLogps: randn(n, 1, n + 22), refRejectedLogps: randn(n, 1, n + 23),
        chosenTokenRewards: randn(n, 1, n + 24), rejectedTokenRewards: randn(n, 1, n + 25),
      }),
    );
  }
}

// ---- advantages ----------------------------------------------------------------------------------
for (const [G, S] of [[1, 1], [4, 2], [8, 8], [16, 5], [64, 16], [512, 9], [4096, 8]] as const) {
  const n = G * S;
  const rew = randn(n, 1, n + 31);
  for (let i = 0; i < n; i += 7) rew[i] = Math.round(rew[i]); // ties and zero-variance groups
  const ids = randint(n, Math.max(1, Math.floor(n / S)), n + 32);
  const lengths = randint(n, 100, n + 33).map((v) => v + 1);
  for (const estimator of ['grpo', 'rloo', 'reinforce_pp_baseline', 'opo', 'passk', 'bnpo'] as const) {
    for (const scale of ['group', 'batch', 'none'] as const) {
      add('groupAdvantages', `${n} g${S} ${estimator} ${scale}`, () =>
        rk.groupAdvantages(rew, { groupSize: S, estimator, scale, ...(estimator === 'opo' ? { lengths } : {}) }),
      );
    }
    add('groupAdvantages', `${n} ids ${estimator}`, () =>
      rk.groupAdvantages(rew, { groupIds: ids, estimator, eps: 1e-4, ...(estimator === 'opo' ? { lengths } : {}) }),
    );
  }
  if (n % 3 === 0 || n >= 8) {
    const K = 3;
    const m = randn(n * K, 1, n + 34);
    const nn = Math.floor(n / S) * S;
    for (const multiReward of ['sum_then_normalize', 'normalize_then_sum'] as const) {
      add('groupAdvantages', `${n} multi ${multiReward}`, () =>
        rk.groupAdvantages(m.subarray(0, nn * K), { groupSize: S, numRewards: K, rewardWeights: [1, 0.5, 2], multiReward }),
      );
    }
    add('groupAdvantages', `${n} passk clipped`, () =>
      rk.groupAdvantages(rew, { groupSize: S, estimator: 'grpo', rewardMin: -0.5, rewardMax: 0.5 }),
    );
  }
  for (const method of ['mean', 'min', 'uwo'] as const) {
    add('ensembleRewards', `${n} ${method}`, () =>
      rk.ensembleRewards(randn(n * 3, 1, n + 35), { numModels: 3, method, ...(method === 'uwo' ? { lambda: 0.4 } : {}) }),
    );
  }
}
for (const [B, T] of [[1, 1], [3, 7], [8, 129], [33, 100]] as const) {
  const n = B * T;
  const v = randn(n, 1, n + 41);
  const r = randn(n, 1, n + 42);
  const m8 = bits(n, 0.8, n + 43);
  const mf = new Float32Array(n).map((_, i) => (m8[i] ? 1 : 0));
  for (const mask of [m8, mf]) {
    for (const whiten of [false, true]) {
      add('gae', `${B}x${T} w${whiten} ${mask.constructor.name}`, () => rk.gae(v, r, mask, { seqLen: T, gamma: 0.99, lambda: 0.95, whiten }));
    }
    add('discountedReturns', `${B}x${T} ${mask.constructor.name}`, () => rk.discountedReturns(r, mask, { seqLen: T, gamma: 0.97 }));
    for (const shiftMean of [true, false]) {
      for (const unbiased of [true, false]) {
        add('maskedWhiten', `${n} s${shiftMean} u${unbiased} ${mask.constructor.name}`, () =>
          rk.maskedWhiten(v, mask, { shiftMean, unbiased, eps: 1e-6 }),
        );
      }
    }
  }
}

// The multi-objective ops (lib/moo/): sizes with ties and duplicates, every mask kind, shared and per-row logZ.
for (const [B, T, K] of [[1, 1, 1], [7, 3, 2], [33, 17, 3], [130, 9, 5]] as const) {
  const n = B * T;
  const pts = randn(B * K, 1, n + 51).map((x) => Math.round(x * 4) / 4);
  add('paretoFront', `B${B} K${K}`, () => rk.paretoFront(pts, { numObjectives: K }));
  const G = randn(K * (n * 97 + 1), 1e-2, n + 52);
  add('rewardWeightUpdate', `K${K} P${n * 97 + 1}`, () => rk.rewardWeightUpdate(G, new Float32Array(K).fill(1 / K), { lr: 1e-5 }));
  const lpf = randn(n, 1, n + 53), lpb = randn(n, 1, n + 54), logR = randn(B, 1, n + 55), zRow = randn(B, 1, n + 56), zOne = randn(1, 1, n + 57);
  const m8 = bits(n, 0.8, n + 58);
  const mf = new Float32Array(n).map((_, i) => (m8[i] ? 0.5 + (i % 3) : 0));
  for (const mask of [null, m8, mf]) {
    for (const z of [zOne, zRow]) {
      const tag = `${B}x${T} ${mask ? mask.constructor.name : 'none'} z${z.length}`;
      add('trajectoryBalanceLoss', tag, () => rk.trajectoryBalanceLoss(lpf, lpb, logR, z, mask, { seqLen: T }));
      add('orderPreservingLoss', `${tag} K${K}`, () => rk.orderPreservingLoss(lpf, lpb, pts, z, mask, { seqLen: T, numObjectives: K }));
    }
  }
  const front = Float64Array.from(randn((B % 9) * K, 1, n + 59)).map((x) => Math.round(x * 4) / 4);
  const cur = Float64Array.from(randn(K, 1, n + 60));
  add('hypervolumeMetaReward', `M${B % 9} K${K}`, () => rk.hypervolumeMetaReward(logR, cur, front, new Float64Array(K).fill(-2)));
}

// gatedRewards, discountedCumsum, lagrangianMix (docs/papers/)
for (const [B, T] of [[1, 1], [3, 7], [33, 100]] as const) {
  const n = B * T;
  const r = randn(n, 1, n + 52);
  const m8 = bits(n, 0.7, n + 53);
  const mf = new Float32Array(n).map((_, i) => (m8[i] ? 0.5 : 0));
  for (const mask of [null, m8, mf]) {
    const mk = mask ? mask.constructor.name : 'null';
    add('gatedRewards', `${B}x${T} ${mk}`, () => rk.gatedRewards(randn(B, 1, n + 54), r, mask, { seqLen: T, threshold: 0 }));
    for (const adjoint of [false, true]) {
      add('discountedCumsum', `${B}x${T} a${adjoint} ${mk}`, () => rk.discountedCumsum(r, mask, { seqLen: T, gamma: 0.9, adjoint }));
    }
  }
  add('lagrangianMix', `${n} K=3`, () => {
    const o = rk.lagrangianMix(randn(3 * n, 1, n + 55), r, Float32Array.of(0.3, -1, 2), { numRewards: 3, gradMixed: randn(n, 1, n + 56) });
    return [o.mixed, o.gradXi!];
  });
}

// ---- policyLossFromLogits (tokenLogprobs + policyLoss + tokenLogprobsBackward in one call) --------
for (const [B, T, V] of [[1, 1, 7], [3, 7, 1001], [2, 9, 4097]] as const) {
  const n = B * T;
  const x = randn(n * V, 2, 7 * n + V);
  x[1] = -Infinity;
  const t = randint(n, V, n + 3 * V);
  t[0] = t[0] === 1 ? 0 : t[0];
  if (n > 2) t[2] = -100;
  const old = randn(n, 0.5, n + 11).map((v, i) => v - 0.2 * (i % 3));
  const ref = randn(n, 0.5, n + 12);
  const advSeq = randn(B, 1, B + 13);
  const advTok = randn(n, 1, n + 14);
  const m8 = bits(n, 0.8, n + 15);
  const mf = new Float32Array(n).map((_, i) => (m8[i] ? 0.5 + (i % 3) : 0));
  const tw = new Float32Array(n).map((_, i) => 0.5 + (i % 4) * 0.25);
  for (const variant of ['ppo', 'gspo', 'cispo', 'sapo', 'gpg'] as const) {
    for (const [mname, mask] of [['null', null], ['u8', m8], ['f32', mf]] as const) {
      const adv = mname === 'u8' ? advTok : advSeq;
      add('policyLossFromLogits', `${B}x${T}x${V} ${variant} ${mname}`, () =>
        rk.policyLossFromLogits(x, t, old, adv, mask, { vocab: V, seqLen: T, variant }),
      );
    }
    add('policyLossFromLogits', `${B}x${T}x${V} ${variant} ref ent tw t0.7 bf16 grad`, () =>
      rk.policyLossFromLogits(x, t, old, advTok, m8, {
        vocab: V, seqLen: T, variant, temperature: 0.7, refLogprobs: ref, beta: 0.04, klEstimator: 'k3', entropyCoef: 0.01, tokenWeights: tw, gradDtype: 'bf16',
        ...(variant === 'ppo' ? { dualClip: 3, delta: 1.5, epsilonHigh: 0.28 } : {}),
      }),
    );
  }
  for (const dtype of ['bf16', 'f16'] as const) {
    const logits = dtype === 'bf16' ? bf16(x) : f16(x);
    for (const gradDtype of ['f32', 'bf16'] as const) {
      add('policyLossFromLogits', `${B}x${T}x${V} ${dtype} logits ${gradDtype} grad`, () =>
        rk.policyLossFromLogits(logits, t, old, advSeq, mf, { vocab: V, seqLen: T, dtype, gradDtype, returnEntropy: true, aggregation: 'seq-mean-token-sum' }),
      );
    }
  }
  add('policyLossFromLogits', `${B}x${T}x${V} ppo f32 in place`, () =>
    rk.policyLossFromLogits(x.slice(), t, old, advSeq, m8, { vocab: V, seqLen: T, inPlace: true, entropyCoef: 0.01, returnEntropy: true }),
  );
  add('policyLossFromLogits', `${B}x${T}x${V} cispo f32 in place, no entropy term`, () =>
    rk.policyLossFromLogits(x.slice(), t, old, advSeq, mf, { vocab: V, seqLen: T, variant: 'cispo', inPlace: true, refLogprobs: ref, beta: 0.04, returnEntropy: true }),
  );
  add('policyLossFromLogits', `${B}x${T}x${V} ppo bf16 in place`, () =>
    rk.policyLossFromLogits(bf16(x), t, old, advSeq, m8, { vocab: V, seqLen: T, dtype: 'bf16', gradDtype: 'bf16', inPlace: true }),
  );
  add('policyLossFromLogits', `${B}x${T}x${V} gspo bf16 in place`, () =>
    rk.policyLossFromLogits(bf16(x), t, old, advSeq, m8, { vocab: V, seqLen: T, variant: 'gspo', dtype: 'bf16', gradDtype: 'bf16', inPlace: true, entropyCoef: -0.01 }),
  );
}

// ---- run ------------------------------------------------------------------------------------------
const levels = (['scalar', 'avx2', 'avx512'] as const).filter((l) => {
  try {
    rk.setSimdLevel(l);
    return rk.simdLevel().active === l;
  } catch {
    return false;
  }
});
const hashes: Record<string, string> = {};
let errors = 0;
for (const level of levels) {
  rk.setSimdLevel(level);
  for (const [op, list] of Object.entries(cases)) {
    const h = createHash('sha256');
    for (const [name, fn] of list) {
      h.update(name);
      let v: unknown;
      try {
        v = fn();
      } catch (err) {
        v = `error: ${(err as Error).message}`;
        errors++;
        if (process.env.BATTERY_VERBOSE) console.log(`${op} ${name}: ${(err as Error).message}`);
      }
      feed(h, v);
    }
    hashes[`${op}/${level}`] = h.digest('hex').slice(0, 16);
  }
}
const total = createHash('sha256').update(JSON.stringify(hashes)).digest('hex').slice(0, 16);
let count = 0;
for (const list of Object.values(cases)) count += list.length;
for (const [k, v] of Object.entries(hashes)) console.log(`${k.padEnd(32)} ${v}`);
console.log(`battery: ${count} cases x ${levels.length} SIMD levels (${errors} calls threw, hashed by message), total ${total}`);

if (process.argv.includes('--write')) {
  const prev = fs.existsSync(store) ? (JSON.parse(fs.readFileSync(store, 'utf8')) as Record<string, string>) : {};
  fs.writeFileSync(store, JSON.stringify({ ...prev, ...hashes }, null, 2) + '\n');
  console.log(`battery: wrote ${store}`);
}
if (process.argv.includes('--check')) {
  const want = JSON.parse(fs.readFileSync(store, 'utf8')) as Record<string, string>;
  const bad = Object.entries(hashes).filter(([k, v]) => want[k] !== undefined && want[k] !== v);
  const missing = Object.keys(hashes).filter((k) => want[k] === undefined);
  for (const [k, v] of bad) console.log(`battery: CHANGED ${k}: ${want[k]} -> ${v}`);
  for (const k of missing) console.log(`battery: no stored hash for ${k}`);
  if (bad.length > 0 || missing.length > 0) process.exit(1);
  console.log('battery: every hash matches the stored one');
}
