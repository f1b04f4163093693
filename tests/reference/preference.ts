// Float64 reference of the preference losses, written from docs/preference.md (checked against
// TRL DPOTrainer.dpo_loss / CPOTrainer / ORPOTrainer / KTOTrainer / RewardTrainer and Liger
// chunked_loss). Forward only: the tests check the native gradients against central finite
// differences of these functions.

/** log(1 + e^x) without overflow. */
export function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}
/** log s(x) = -softplus(-x). */
export function logSigmoid(x: number): number {
  return -softplus(-x);
}
export function sigmoid(x: number): number {
  return Math.exp(logSigmoid(x));
}
/** TRL cap_exp for float32: exp(min(v, log(FLT_MAX))). */
const CAP = Math.log(3.4028234663852886e38);
export function capExp(v: number): number {
  return Math.exp(Math.min(v, CAP));
}

export interface RefPreferenceInputs {
  chosen: ArrayLike<number>;
  rejected: ArrayLike<number>;
  refChosen?: ArrayLike<number>;
  refRejected?: ArrayLike<number>;
  chosenLengths?: ArrayLike<number>;
  rejectedLengths?: ArrayLike<number>;
  margin?: number | ArrayLike<number>;
  preferenceProb?: ArrayLike<number>;
}
export interface RefPreferenceOptions {
  /** One loss, or a list combined with lossWeights (TRL loss_type list). */
  loss: string | readonly string[];
  lossWeights?: readonly number[];
  /** ipo / sigmoid_norm with an f-divergence: 'score' f(c)/Lw (TRL f2cd577, default), 'log_ratio' f(c/Lw) (TRL v0.19-v0.28). */
  lengthAverage?: string;
  beta: number;
  labelSmoothing?: number;
  gamma?: number;
  alpha?: number;
  tau?: number;
  nllWeight?: number;
  fDivergence?: string;
  fAlpha?: number;
}
export interface RefPreferenceResult {
  loss: number;
  losses: Float64Array;
  chosenRewards: Float64Array;
  rejectedRewards: Float64Array;
  rewardAccuracy: number;
  rewardMargin: number;
}

/** f(u) of f-DPO: the term whose chosen-minus-rejected difference replaces c - rho. */
function fOf(kind: string, a: number, u: number): number {
  switch (kind) {
    case 'forward_kl': return -capExp(-u);
    case 'js_divergence': return Math.log(2) + u - softplus(u); // log(2u / (1 + u))
    case 'alpha_divergence': return (1 - capExp(-a * u)) / a;
    default: return u;
  }
}

/**
 * The f-DPO score of TRL f2cd577 (dpo_trainer.py `_compute_loss`), written in TRL's own terms:
 * forward_kl -exp(-u), js_divergence logsigmoid(u), alpha_divergence exp((A-1) u) / (A-1) with TRL's
 * coefficient A = 1 - fAlpha (exponent capped like every exponent here).
 */
function fScoreTrl(kind: string, fAlpha: number, u: number): number {
  switch (kind) {
    case 'forward_kl': return -capExp(-u);
    case 'js_divergence': return logSigmoid(u);
    case 'alpha_divergence': {
      const A = 1 - fAlpha;
      return capExp((A - 1) * u) / (A - 1);
    }
    default: return u;
  }
}

/** ORPO log-odds of an average log-prob a < 0: log(p / (1 - p)) with p = e^a. */
function logOdds(a: number): number {
  const aa = Math.min(a, -1e-12);
  return aa - Math.log(-Math.expm1(aa));
}

export function refPreferenceLoss(x: RefPreferenceInputs, o: RefPreferenceOptions): RefPreferenceResult {
  if (typeof o.loss !== 'string' || ['aot', 'aot_unpaired', 'sft'].includes(o.loss)) return refGeneral(x, o);
  const n = x.chosen.length;
  const beta = o.beta, e = o.labelSmoothing ?? 0;
  const losses = new Float64Array(n), rc = new Float64Array(n), rr = new Float64Array(n);
  // cDPO-style smoothed logistic loss of a logit z.
  const smoothed = (z: number) => -(1 - e) * logSigmoid(z) - e * logSigmoid(-z);
  for (let i = 0; i < n; i++) {
    const w = x.chosen[i], l = x.rejected[i];
    const Lw = x.chosenLengths ? x.chosenLengths[i] : 1, Ll = x.rejectedLengths ? x.rejectedLengths[i] : 1;
    let L: number;
    switch (o.loss) {
      case 'simpo': {
        const z = w / Lw - l / Ll - (o.gamma ?? 0.5) / beta;
        L = smoothed(beta * z);
        rc[i] = (beta * w) / Lw;
        rr[i] = (beta * l) / Ll;
        break;
      }
      case 'cpo': {
        L = smoothed(beta * (w - l)) + (o.alpha ?? 1) * (o.alpha === 0 ? 0 : -w / Lw);
        rc[i] = beta * w;
        rr[i] = beta * l;
        break;
      }
      case 'orpo': {
        const aw = w / Lw, al = l / Ll;
        L = -aw - beta * logSigmoid(logOdds(aw) - logOdds(al));
        rc[i] = beta * aw;
        rr[i] = beta * al;
        break;
      }
      case 'bt': {
        const m = x.margin === undefined ? 0 : typeof x.margin === 'number' ? x.margin : x.margin[i];
        const d = w - l - m;
        const q = x.preferenceProb ? x.preferenceProb[i] : 1 - e;
        L = -(q * logSigmoid(d) + (1 - q) * logSigmoid(-d));
        rc[i] = w;
        rr[i] = l;
        break;
      }
      default: {
        const avg = o.loss === 'ipo' || o.loss === 'sigmoid_norm';
        const cs = w - (x.refChosen ? x.refChosen[i] : 0), rs = l - (x.refRejected ? x.refRejected[i] : 0);
        const c = cs / (avg ? Lw : 1);
        const rho = rs / (avg ? Ll : 1);
        rc[i] = beta * (o.loss === 'sigmoid_norm' ? cs : c);
        rr[i] = beta * (o.loss === 'sigmoid_norm' ? rs : rho);
        const fa = o.fAlpha ?? 1, fk = o.fDivergence ?? 'reverse_kl';
        // TRL f2cd577 divides the f-DPO scores by the length; TRL v0.19-v0.28 applied f to the averaged log-ratio.
        const h = avg && (o.lengthAverage ?? 'score') === 'score'
          ? fScoreTrl(fk, fa, cs) / Lw - fScoreTrl(fk, fa, rs) / Ll
          : fOf(fk, fa, c) - fOf(fk, fa, rho);
        const z = beta * h;
        switch (o.loss) {
          case 'sigmoid': L = smoothed(z); break;
          case 'robust': L = (-(1 - e) * logSigmoid(z) + e * logSigmoid(-z)) / (1 - 2 * e); break;
          case 'hinge': L = Math.max(0, 1 - z); break;
          case 'ipo': L = (h - 1 / (2 * beta)) ** 2; break;
          case 'sigmoid_norm': L = -logSigmoid(z); break;
          case 'exo_pair': {
            const ee = e === 0 ? 1e-3 : e;
            L = sigmoid(z) * (logSigmoid(z) - Math.log(1 - ee)) + sigmoid(-z) * (logSigmoid(-z) - Math.log(ee));
            break;
          }
          case 'discopop': {
            const t = o.tau ?? 0.05;
            const mod = sigmoid(z / t);
            // exp(-z) * mod computed as exp(-z + log mod), capped like every exponent here.
            L = -logSigmoid(z) * (1 - mod) + capExp(-z + logSigmoid(z / t));
            break;
          }
          case 'nca_pair':
            L = -logSigmoid(beta * c) - 0.5 * logSigmoid(-beta * c) - 0.5 * logSigmoid(-beta * rho);
            break;
          case 'bco_pair': L = -logSigmoid(beta * c) - logSigmoid(-beta * rho); break;
          case 'sppo_hard': L = (c - 0.5 / beta) ** 2 + (rho + 0.5 / beta) ** 2; break;
          case 'apo_zero': L = 1 - sigmoid(beta * c) + sigmoid(beta * rho); break;
          case 'apo_down': L = sigmoid(beta * c) + 1 - sigmoid(beta * (c - rho)); break;
          default: throw new Error(`reference: unknown loss ${o.loss}`);
        }
      }
    }
    if (o.nllWeight) L += o.nllWeight * (-w / Lw);
    losses[i] = L;
  }
  let sum = 0, acc = 0, margin = 0;
  for (let i = 0; i < n; i++) {
    sum += losses[i];
    acc += rc[i] > rr[i] ? 1 : 0;
    margin += rc[i] - rr[i];
  }
  return { loss: sum / n, losses, chosenRewards: rc, rejectedRewards: rr, rewardAccuracy: acc / n, rewardMargin: margin / n };
}

/** torch.sort order: ascending, NaN last; ties keep the index order (a stable sort). Returns the pair at each rank. */
function sortedIndex(key: Float64Array): number[] {
  const idx = Array.from(key, (_, i) => i);
  return idx.sort((a, b) => {
    const na = Number.isNaN(key[a]), nb = Number.isNaN(key[b]);
    if (na !== nb) return na ? 1 : -1;
    if (!na && key[a] !== key[b]) return key[a] - key[b];
    return a - b;
  });
}

/**
 * The general path: a list of losses sum_k w_k mean_i L_k,i, and the batch losses of TRL
 * dpo_trainer: 'aot' / 'aot_unpaired' (sorted log-ratios paired by rank; pair i carries the loss at
 * the rank of its policy log-ratio, resp. its chosen log-ratio), 'sft' (-sum w / sum Lw for every
 * pair). Rewards beta (w - rw), beta (l - rl).
 */
function refGeneral(x: RefPreferenceInputs, o: RefPreferenceOptions): RefPreferenceResult {
  const n = x.chosen.length, beta = o.beta, e = o.labelSmoothing ?? 0;
  const list = typeof o.loss === 'string' ? [o.loss] : o.loss;
  const weights = o.lossWeights ?? list.map(() => 1);
  const losses = new Float64Array(n), rc = new Float64Array(n), rr = new Float64Array(n);
  const rw = (i: number) => (x.refChosen ? x.refChosen[i] : 0), rl = (i: number) => (x.refRejected ? x.refRejected[i] : 0);
  for (let i = 0; i < n; i++) {
    rc[i] = beta * (x.chosen[i] - rw(i));
    rr[i] = beta * (x.rejected[i] - rl(i));
  }
  const smoothed = (z: number) => -(1 - e) * logSigmoid(z) - e * logSigmoid(-z);
  list.forEach((loss, k) => {
    const wk = weights[k];
    let Lk: ArrayLike<number>;
    if (loss === 'aot' || loss === 'aot_unpaired') {
      const a = new Float64Array(n), b = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        a[i] = loss === 'aot' ? x.chosen[i] - x.rejected[i] : x.chosen[i] - rw(i);
        b[i] = loss === 'aot' ? rw(i) - rl(i) : x.rejected[i] - rl(i);
      }
      const pa = sortedIndex(a), pb = sortedIndex(b);
      const out = new Float64Array(n);
      for (let r = 0; r < n; r++) out[pa[r]] = smoothed(beta * (a[pa[r]] - b[pb[r]]));
      Lk = out;
    } else if (loss === 'sft') {
      let sw = 0, sl = 0;
      for (let i = 0; i < n; i++) {
        sw += x.chosen[i];
        sl += x.chosenLengths![i];
      }
      Lk = new Float64Array(n).fill(-sw / sl);
    } else {
      Lk = refPreferenceLoss(x, { ...o, loss, lossWeights: undefined, nllWeight: 0 }).losses;
    }
    for (let i = 0; i < n; i++) losses[i] += wk * Lk[i];
  });
  let sum = 0, acc = 0, margin = 0;
  for (let i = 0; i < n; i++) {
    if (o.nllWeight) losses[i] += o.nllWeight * (-x.chosen[i] / x.chosenLengths![i]);
    sum += losses[i];
    acc += rc[i] > rr[i] ? 1 : 0;
    margin += rc[i] - rr[i];
  }
  return { loss: sum / n, losses, chosenRewards: rc, rejectedRewards: rr, rewardAccuracy: acc / n, rewardMargin: margin / n };
}

export interface RefKtoResult {
  loss: number;
  losses: Float64Array;
  rewards: Float64Array;
  desirableRewardMean: number;
  undesirableRewardMean: number;
}

/** KTO (TRL KTOTrainer.kto_loss with the KL estimate z0 given). */
export function refKtoLoss(
  logp: ArrayLike<number>,
  ref: ArrayLike<number> | undefined,
  desirable: ArrayLike<number>,
  o: { beta: number; kl: number; desirableWeight?: number; undesirableWeight?: number },
): RefKtoResult {
  const n = logp.length;
  const losses = new Float64Array(n), rewards = new Float64Array(n);
  let sum = 0, sd = 0, nd = 0, su = 0, nu = 0;
  for (let i = 0; i < n; i++) {
    const r = logp[i] - (ref ? ref[i] : 0);
    rewards[i] = o.beta * r;
    if (desirable[i]) {
      losses[i] = (o.desirableWeight ?? 1) * (1 - sigmoid(o.beta * (r - o.kl)));
      sd += rewards[i];
      nd++;
    } else {
      losses[i] = (o.undesirableWeight ?? 1) * (1 - sigmoid(o.beta * (o.kl - r)));
      su += rewards[i];
      nu++;
    }
    sum += losses[i];
  }
  return { loss: sum / n, losses, rewards, desirableRewardMean: nd ? sd / nd : NaN, undesirableRewardMean: nu ? su / nu : NaN };
}

export interface RefTgdpoResult {
  loss: number;
  losses: Float64Array;
  chosenRewards: Float64Array;
  rejectedRewards: Float64Array;
}

/** TGDPO: z = sum_t m beta (1 + a beta rw) d_w - sum_t m beta (1 - a beta rl) d_l, L = -log s(z). */
export function refTokenWeightedDpo(
  x: {
    chosen: ArrayLike<number>;
    rejected: ArrayLike<number>;
    refChosen: ArrayLike<number>;
    refRejected: ArrayLike<number>;
    chosenTokenRewards: ArrayLike<number>;
    rejectedTokenRewards: ArrayLike<number>;
    chosenMask: ArrayLike<number>;
    rejectedMask: ArrayLike<number>;
  },
  seqLen: number,
  beta: number,
  alpha: number,
): RefTgdpoResult {
  const B = x.chosen.length / seqLen;
  const losses = new Float64Array(B), cr = new Float64Array(B), rr = new Float64Array(B);
  let sum = 0;
  for (let b = 0; b < B; b++) {
    let zw = 0, zl = 0;
    for (let t = b * seqLen; t < (b + 1) * seqLen; t++) {
      zw += x.chosenMask[t] * beta * (1 + alpha * beta * x.chosenTokenRewards[t]) * (x.chosen[t] - x.refChosen[t]);
      zl += x.rejectedMask[t] * beta * (1 - alpha * beta * x.rejectedTokenRewards[t]) * (x.rejected[t] - x.refRejected[t]);
    }
    cr[b] = zw;
    rr[b] = zl;
    losses[b] = -logSigmoid(zw - zl);
    sum += losses[b];
  }
  return { loss: sum / B, losses, chosenRewards: cr, rejectedRewards: rr };
}

/**
 * LD-DPO sequence log-probs, written after TRL f2cd577 DPOTrainer._compute_loss (ld_alpha): token
 * log-probs zeroed outside the completion mask, comp_pos = cumsum(mask), shared = min of the pair's
 * completion lengths, shared_mask = 0 < comp_pos <= shared, tail_mask = comp_pos > shared,
 * logps = sum(x * shared_mask) + alpha * sum(x * tail_mask). Masks null = every token.
 */
export function refLdDpoLogps(
  chosen: ArrayLike<number>, rejected: ArrayLike<number>, chosenMask: ArrayLike<number> | null, rejectedMask: ArrayLike<number> | null,
  T: number, alpha: number,
): { chosen: Float64Array; rejected: Float64Array } {
  const P = chosen.length / T;
  const out = { chosen: new Float64Array(P), rejected: new Float64Array(P) };
  const len = (m: ArrayLike<number> | null, b: number) => {
    let n = 0;
    for (let t = 0; t < T; t++) n += m === null || m[b * T + t] ? 1 : 0;
    return n;
  };
  const row = (x: ArrayLike<number>, m: ArrayLike<number> | null, b: number, shared: number) => {
    let pos = 0, s = 0, tail = 0;
    for (let t = 0; t < T; t++) {
      const on = m === null || m[b * T + t] ? 1 : 0;
      pos += on;
      const v = on ? x[b * T + t] : 0;
      if (pos > 0 && pos <= shared) s += v;
      if (pos > shared) tail += v;
    }
    return s + alpha * tail;
  };
  for (let b = 0; b < P; b++) {
    const shared = Math.min(len(chosenMask, b), len(rejectedMask, b));
    out.chosen[b] = row(chosen, chosenMask, b, shared);
    out.rejected[b] = row(rejected, rejectedMask, b, shared);
  }
  return out;
}
