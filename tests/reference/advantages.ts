// Float64 reference of the advantage kernels, written from the formulas in docs/advantages.md and
// the conventions in docs/advantages.md (verl singleton groups, TRL NaN-as-missing, GDPO, BNPO).
// Plain and direct: groups as lists of indices, statistics recomputed from the definitions.

export interface RefGroupOptions {
  groupSize?: number;
  groupIds?: ArrayLike<number>;
  estimator?: 'grpo' | 'rloo' | 'reinforce_pp_baseline' | 'opo' | 'passk' | 'bnpo' | 'gpg';
  /** gpg (verl compute_gpg_outcome_advantage): A = alpha (r - mean) / fNorm, alpha = bsz / max(1, count_nonzero). */
  fNorm?: number;
  /** A group with one valid reward: baseline 0 (verl) or its own reward (TRL: nanmean of one value; A = 0). */
  singletonBaseline?: 'zero' | 'self';
  scale?: 'group' | 'batch' | 'none';
  eps?: number;
  numRewards?: number;
  rewardWeights?: ArrayLike<number>;
  multiReward?: 'sum_then_normalize' | 'normalize_then_sum';
  lengths?: ArrayLike<number>;
  rewardMin?: number;
  rewardMax?: number;
}

export interface RefGroupResult {
  advantages: Float64Array;
  groupMean: Float64Array;
  groupStd: Float64Array;
  zeroStdGroups: number;
}

function members(n: number, o: RefGroupOptions): number[][] {
  if (o.groupSize !== undefined) {
    const out: number[][] = [];
    for (let g = 0; g < n / o.groupSize; g++) out.push(Array.from({ length: o.groupSize }, (_, j) => g * o.groupSize! + j));
    return out;
  }
  const ids = o.groupIds!;
  let max = -1;
  for (let i = 0; i < n; i++) max = Math.max(max, ids[i]);
  const out: number[][] = Array.from({ length: max + 1 }, () => []);
  for (let i = 0; i < n; i++) out[ids[i]].push(i);
  return out;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Unbiased std (n - 1). */
const std = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};
const allEqual = (xs: number[]) => xs.every((x) => x === xs[0]);

/** Lanczos log-gamma (g = 7, n = 9), ~1e-15 relative for x > 0. */
export function lgamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

export function betaPdf(p: number, a: number, b: number): number {
  const xlogy = (x: number, y: number) => (x === 0 ? 0 : x * Math.log(y));
  return Math.exp(xlogy(a - 1, p) + xlogy(b - 1, 1 - p) - (lgamma(a) + lgamma(b) - lgamma(a + b)));
}

export function refGroupAdvantages(rewards: ArrayLike<number>, o: RefGroupOptions): RefGroupResult {
  const K = o.numRewards ?? 1;
  const n = rewards.length / K;
  const eps = o.eps ?? 1e-4;
  const est = o.estimator ?? 'grpo';
  const scale = o.scale ?? 'group';
  const w = o.rewardWeights ?? new Array(K).fill(1);
  const groups = members(n, o);
  const G = groups.length;
  const adv = new Float64Array(n);

  if (o.multiReward === 'normalize_then_sum') {
    // GDPO (TRL): per reward and group nanmean / nanstd; z = 0 where a reward has < 2 values or no spread.
    const gm = new Float64Array(G * K), gs = new Float64Array(G * K);
    const comb = new Array<number>(n).fill(NaN);
    let zero = 0;
    groups.forEach((mem, g) => {
      let flat = true;
      for (let k = 0; k < K; k++) {
        const valid = mem.filter((i) => !Number.isNaN(rewards[i * K + k]));
        const xs = valid.map((i) => rewards[i * K + k]);
        gm[g * K + k] = xs.length ? (allEqual(xs) ? xs[0] : mean(xs)) : NaN;
        gs[g * K + k] = xs.length >= 2 ? (allEqual(xs) ? 0 : std(xs)) : xs.length === 1 ? 0 : NaN;
        const spread = xs.length >= 2 && !allEqual(xs);
        if (spread) flat = false;
        for (const i of valid) {
          const z = spread ? (rewards[i * K + k] - gm[g * K + k]) / (gs[g * K + k] + eps) : 0;
          comb[i] = (Number.isNaN(comb[i]) ? 0 : comb[i]) + w[k] * z;
        }
      }
      if (flat && mem.filter((i) => !Number.isNaN(comb[i])).length >= 2) zero++;
    });
    const valid = comb.filter((x) => !Number.isNaN(x));
    const m = valid.length ? mean(valid) : NaN;
    const s = valid.length >= 2 ? std(valid) : 0;
    for (let i = 0; i < n; i++) adv[i] = Number.isNaN(comb[i]) ? 0 : (comb[i] - m) / (s + eps);
    return { advantages: adv, groupMean: gm, groupStd: gs, zeroStdGroups: zero };
  }

  // Weighted sum of the rewards present; NaN when none is.
  const x = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let s = 0, any = false;
    for (let k = 0; k < K; k++) {
      const v = rewards[i * K + k];
      if (!Number.isNaN(v)) {
        s += w[k] * v;
        any = true;
      }
    }
    x[i] = any ? s : NaN;
    if (est === 'bnpo') x[i] = (x[i] - (o.rewardMin ?? 0)) / ((o.rewardMax ?? 1) - (o.rewardMin ?? 0));
  }
  const gm = new Float64Array(G), gs = new Float64Array(G);
  const base: number[] = [], cnt: number[] = [];
  let zero = 0;
  groups.forEach((mem, g) => {
    const v = mem.filter((i) => !Number.isNaN(x[i]));
    const xs = v.map((i) => x[i]);
    cnt.push(xs.length);
    if (xs.length === 0) {
      base.push(NaN);
      gm[g] = NaN;
      gs[g] = NaN;
      return;
    }
    if (xs.length === 1) {
      const b = o.singletonBaseline === 'self' ? xs[0] : 0;
      base.push(b);
      gm[g] = b;
      gs[g] = 1;
      return;
    }
    const eq = allEqual(xs);
    if (eq) zero++;
    let b = eq ? xs[0] : mean(xs);
    if (est === 'opo' && !eq) {
      const L = v.map((i) => o.lengths![i]);
      const sl = L.reduce((a, c) => a + c, 0);
      if (sl > 0) b = v.reduce((a, i, j) => a + L[j] * x[i], 0) / sl;
    }
    base.push(b);
    gm[g] = b;
    gs[g] = eq ? 0 : std(xs);
  });

  const allValid = x.filter((v) => !Number.isNaN(v));
  const batchStd = allValid.length >= 2 ? std(allValid) : 0;
  const denom = (g: number) => (scale === 'group' ? gs[g] + eps : scale === 'batch' ? batchStd + eps : 1);

  if (est === 'bnpo') {
    const ps = base.filter((_, g) => cnt[g] > 0);
    let alpha = 1, beta = 1;
    if (ps.length >= 2) {
      const pbar = mean(ps);
      const pvar = std(ps) ** 2;
      if (pvar > 0) {
        const c = (pbar * (1 - pbar)) / pvar - 1;
        alpha = Math.max(1, 1 + (c * pbar) / 3);
        beta = Math.max(1, 1 + (c * (1 - pbar)) / 3);
      }
    }
    groups.forEach((mem, g) => {
      const wgt = cnt[g] > 0 ? Math.min(1 / betaPdf(base[g], alpha, beta), 1e6) : 0;
      for (const i of mem) adv[i] = Number.isNaN(x[i]) ? 0 : wgt * (x[i] - base[g]);
    });
    return { advantages: adv, groupMean: gm, groupStd: gs, zeroStdGroups: zero };
  }

  groups.forEach((mem, g) => {
    const v = mem.filter((i) => !Number.isNaN(x[i]));
    for (const i of mem) {
      if (Number.isNaN(x[i])) {
        adv[i] = 0;
        continue;
      }
      switch (est) {
        case 'grpo':
          adv[i] = (x[i] - base[g]) / denom(g);
          break;
        case 'rloo': {
          // leave-one-out mean of the others
          if (v.length < 2) adv[i] = o.singletonBaseline === 'self' ? 0 : x[i];
          else adv[i] = x[i] - v.filter((j) => j !== i).reduce((a, j) => a + x[j], 0) / (v.length - 1);
          break;
        }
        case 'opo':
        case 'reinforce_pp_baseline':
          adv[i] = x[i] - base[g];
          break;
        case 'gpg': {
          const m = x.filter((y) => !Number.isNaN(y) && y !== 0).length;
          adv[i] = ((n / Math.max(1, m)) * (x[i] - base[g])) / (o.fNorm ?? 1);
          break;
        }
        case 'passk': {
          if (v.length < 2) {
            adv[i] = 0;
            break;
          }
          let best = v[0];
          for (const j of v) if (x[j] > x[best]) best = j;
          if (i !== best) {
            adv[i] = 0;
            break;
          }
          const rest = v.filter((j) => j !== best).map((j) => x[j]);
          adv[i] = (x[best] - Math.max(...rest)) / denom(g);
          break;
        }
      }
    }
  });
  if (est === 'reinforce_pp_baseline') {
    // verl masked_whiten over tokens: each sequence weighs its length (1 without lengths).
    const idx = [...Array(n).keys()].filter((i) => !Number.isNaN(x[i]));
    const wt = (i: number) => (o.lengths ? o.lengths[i] : 1);
    const W = idx.reduce((a, i) => a + wt(i), 0);
    const m = W > 0 ? idx.reduce((a, i) => a + wt(i) * adv[i], 0) / W : 0;
    const ss = idx.reduce((a, i) => a + wt(i) * (adv[i] - m) ** 2, 0);
    const v = W > 1 ? ss / (W - 1) : W > 0 ? ss / W : 0;
    for (let i = 0; i < n; i++) adv[i] = Number.isNaN(x[i]) ? 0 : (adv[i] - m) / Math.sqrt(v + 1e-8);
  }
  return { advantages: adv, groupMean: gm, groupStd: gs, zeroStdGroups: zero };
}

export function refEnsemble(r: ArrayLike<number>, M: number, method: 'mean' | 'min' | 'uwo', lambda = 0): Float64Array {
  const n = r.length / M;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const xs: number[] = [];
    for (let j = 0; j < M; j++) if (!Number.isNaN(r[i * M + j])) xs.push(r[i * M + j]);
    if (!xs.length) {
      out[i] = NaN;
      continue;
    }
    const m = mean(xs);
    if (method === 'mean') out[i] = m;
    else if (method === 'min') out[i] = Math.min(...xs);
    else out[i] = m - (lambda * xs.reduce((a, x) => a + (x - m) ** 2, 0)) / xs.length;
  }
  return out;
}

const on = (mask: ArrayLike<number>, i: number) => mask[i] !== 0;

/** verl compute_gae_advantage_return with 0/1 masks, masked positions set to 0 (no whitening). */
export function refGae(values: ArrayLike<number>, rewards: ArrayLike<number>, mask: ArrayLike<number>, T: number, gamma: number, lam: number) {
  const n = values.length;
  const adv = new Float64Array(n), ret = new Float64Array(n);
  for (let b = 0; b < n / T; b++) {
    // the response positions of the row, in order; the recursion runs over them only
    const pos = [...Array(T).keys()].map((t) => b * T + t).filter((i) => on(mask, i));
    let nextA = 0;
    for (let k = pos.length - 1; k >= 0; k--) {
      const i = pos[k];
      const nextV = k + 1 < pos.length ? values[pos[k + 1]] : 0;
      const delta = rewards[i] + gamma * nextV - values[i];
      nextA = delta + gamma * lam * nextA;
      adv[i] = nextA;
      ret[i] = nextA + values[i];
    }
  }
  return { advantages: adv, returns: ret };
}

/** G_t = sum_k gamma^k r over the following response tokens of the row. */
export function refDiscounted(rewards: ArrayLike<number>, mask: ArrayLike<number>, T: number, gamma: number): Float64Array {
  const n = rewards.length;
  const out = new Float64Array(n);
  for (let b = 0; b < n / T; b++) {
    const pos = [...Array(T).keys()].map((t) => b * T + t).filter((i) => on(mask, i));
    pos.forEach((i, k) => {
      let s = 0;
      for (let j = k; j < pos.length; j++) s += gamma ** (j - k) * rewards[pos[j]];
      out[i] = s;
    });
  }
  return out;
}

export function refWhiten(x: ArrayLike<number>, mask: ArrayLike<number>, shiftMean = true, unbiased = true, eps = 1e-8): Float64Array {
  const n = x.length;
  let W = 0, s = 0;
  for (let i = 0; i < n; i++) if (mask[i] !== 0) { W += mask[i]; s += mask[i] * x[i]; }
  const out = new Float64Array(n);
  if (W <= 0) return out;
  const m = s / W;
  let ss = 0;
  for (let i = 0; i < n; i++) if (mask[i] !== 0) ss += mask[i] * (x[i] - m) ** 2;
  let v = ss / W;
  if (unbiased && W > 1) v *= W / (W - 1);
  for (let i = 0; i < n; i++) out[i] = mask[i] === 0 ? 0 : (x[i] - m) / Math.sqrt(v + eps) + (shiftMean ? 0 : m);
  return out;
}

// ---- verl's token-level estimators and the KL reward (verl core_algos.py at b178a3c) ------------
// Written from verl's tensor code, one array op at a time, in float64. mask: weights, null = ones.

const ones = (n: number) => new Float64Array(n).fill(1);

/** verl compute_reinforce_plus_plus_outcome_advantage: returns with the reset, then masked_whiten * mask. */
export function refReinforcePP(r: ArrayLike<number>, mask: ArrayLike<number> | null, T: number, gamma: number) {
  const n = r.length, B = n / T, m = mask ?? ones(n);
  const returns = new Float64Array(n);
  const running = new Float64Array(B);
  for (let t = T - 1; t >= 0; t--) {
    for (let b = 0; b < B; b++) {
      running[b] = r[b * T + t] + gamma * running[b];
      returns[b * T + t] = running[b];
      running[b] = running[b] * m[b * T + t];
    }
  }
  // the kernel whitens the f32 returns (verl: the returns in the rewards' dtype)
  const w = refWhiten(Float32Array.from(returns), m);
  const advantages = w.map((v, i) => v * m[i]);
  return { advantages, returns };
}

/** (r * mask).flip(-1).cumsum(-1).flip(-1) */
function refRewardToGo(r: ArrayLike<number>, m: ArrayLike<number>, T: number): Float64Array {
  const n = r.length, out = new Float64Array(n);
  for (let b = 0; b < n / T; b++) {
    let s = 0;
    for (let t = T - 1; t >= 0; t--) out[b * T + t] = s += r[b * T + t] * m[b * T + t];
  }
  return out;
}

/** verl compute_remax_outcome_advantage. */
export function refRemax(r: ArrayLike<number>, mask: ArrayLike<number> | null, T: number, baselines: ArrayLike<number>) {
  const m = mask ?? ones(r.length);
  const returns = refRewardToGo(r, m, T);
  const advantages = returns.map((g, i) => g - baselines[Math.floor(i / T)] * m[i]);
  return { advantages, returns };
}

export interface RefOtbOptions {
  groupIds: ArrayLike<number>;
  logprobs: ArrayLike<number>;
  sumPiSquared: ArrayLike<number>;
  isWeights?: ArrayLike<number>;
  handleZeroTail: boolean;
  eps: number;
}

/** verl's w_cumulative: cumsum((1 - 2 exp(lp) + sum_pi^2) rho^2 * mask). */
function refWCum(m: ArrayLike<number>, T: number, o: RefOtbOptions): Float64Array {
  const n = m.length, out = new Float64Array(n);
  for (let b = 0; b < n / T; b++) {
    let s = 0;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      let w = 1 - 2 * Math.exp(o.logprobs[i]) + o.sumPiSquared[i];
      if (o.isWeights) w *= o.isWeights[i] ** 2;
      out[i] = s += w * m[i];
    }
  }
  return out;
}

/** The member whose baseline verl zeroes from `second` on (sorted lengths; unique max above the second). */
function refZeroTail(lengths: number[]): { at: number; second: number } | null {
  const sorted = [...lengths].sort((a, b) => a - b);
  const max = sorted[sorted.length - 1], second = sorted[sorted.length - 2];
  const at = lengths.flatMap((L, k) => (L === max ? [k] : []));
  return at.length === 1 && max > second ? { at: at[0], second } : null;
}

function groupsOf(ids: ArrayLike<number>, keep: (b: number) => boolean): Map<number, number[]> {
  const g = new Map<number, number[]>();
  for (let b = 0; b < ids.length; b++) if (keep(b)) (g.get(ids[b]) ?? g.set(ids[b], []).get(ids[b])!).push(b);
  return g;
}

/** verl compute_optimal_token_baseline_advantage. */
export function refOtb(r: ArrayLike<number>, mask: ArrayLike<number> | null, T: number, o: RefOtbOptions) {
  const n = r.length, B = n / T, m = mask ?? ones(n);
  const returns = refRewardToGo(r, m, T);
  const W = refWCum(m, T, o);
  const base = new Float64Array(n);
  for (const idx of groupsOf(o.groupIds, () => true).values()) {
    if (idx.length === 1) continue;
    for (let t = 0; t < T; t++) {
      let num = 0, den = 0;
      for (const b of idx) {
        num += returns[b * T + t] * W[b * T + t] * m[b * T + t];
        den += W[b * T + t] * m[b * T + t];
      }
      for (const b of idx) base[b * T + t] = num / (den + o.eps);
    }
    if (o.handleZeroTail) {
      const lengths = idx.map((b) => { let L = 0; for (let t = 0; t < T; t++) L += m[b * T + t] !== 0 ? 1 : 0; return L; });
      const z = refZeroTail(lengths);
      if (z) for (let t = z.second; t < T; t++) base[idx[z.at] * T + t] = 0;
    }
  }
  // 0 at a token of weight 0 (the documented rule; verl's (G - B) * w is NaN there when eps = 0 and
  // the column has no weight in the whole group, as B = 0 / 0)
  const advantages = returns.map((g, i) => (m[i] === 0 ? 0 : (g - base[i]) * m[i]));
  void B;
  return { advantages, returns };
}

/** verl compute_multi_turn_optimal_token_baseline_advantage (response tokens compacted per row). */
export function refTirOtb(r: ArrayLike<number>, mask: ArrayLike<number> | null, T: number, o: RefOtbOptions) {
  const n = r.length, B = n / T, m = mask ?? ones(n);
  const returns = refRewardToGo(r, m, T);
  const Wc = refWCum(m, T, o);
  const pos: number[][] = [];
  for (let b = 0; b < B; b++) {
    pos.push([]);
    for (let t = 0; t < T; t++) if (m[b * T + t] !== 0) pos[b].push(t);
  }
  const L = pos.map((p) => p.length), maxL = Math.max(0, ...L);
  const allW = pos.map((p, b) => Float64Array.from({ length: maxL }, (_, k) => (k < p.length ? Wc[b * T + p[k]] : 0)));
  const allR = pos.map((p, b) => Float64Array.from({ length: maxL }, (_, k) => (k < p.length ? returns[b * T + p[k]] : 0)));
  const base = pos.map(() => new Float64Array(maxL));
  for (const idx of groupsOf(o.groupIds, (b) => L[b] > 0).values()) {
    if (idx.length === 1) continue;
    for (let k = 0; k < maxL; k++) {
      let num = 0, den = 0;
      for (const b of idx) { num += allR[b][k] * allW[b][k]; den += allW[b][k]; }
      for (const b of idx) base[b][k] = num / (den + o.eps);
    }
    if (o.handleZeroTail) {
      const z = refZeroTail(idx.map((b) => L[b]));
      if (z) for (let k = z.second; k < maxL; k++) base[idx[z.at]][k] = 0;
    }
  }
  const advantages = new Float64Array(n);
  for (let b = 0; b < B; b++) pos[b].forEach((t, k) => { advantages[b * T + t] = (allR[b][k] - base[b][k]) * m[b * T + t]; });
  return { advantages, returns };
}

/** verl kl_penalty_forward, in float64. */
export function refKlEstimate(est: 'k1' | 'k2' | 'k3' | 'abs' | 'k3+', lp: number, ref: number): number {
  if (est === 'k1') return lp - ref;
  if (est === 'abs') return Math.abs(lp - ref);
  if (est === 'k2') return 0.5 * (lp - ref) ** 2;
  const kl = Math.min(20, Math.max(-20, ref - lp));
  return Math.min(10, Math.max(-10, Math.exp(kl) - kl - 1));
}

/** verl apply_kl_penalty: token_level_rewards and current_kl. */
export function refKlRewards(
  scores: ArrayLike<number>, lp: ArrayLike<number>, ref: ArrayLike<number>, mask: ArrayLike<number> | null, T: number,
  beta: number, est: 'k1' | 'k2' | 'k3' | 'abs' | 'k3+',
) {
  const n = scores.length, B = n / T, m = mask ?? ones(n);
  const kld = Float64Array.from({ length: n }, (_, i) => (m[i] === 0 ? 0 : refKlEstimate(est, lp[i], ref[i]) * m[i]));
  const rewards = Float64Array.from({ length: n }, (_, i) => scores[i] - beta * kld[i]);
  let total = 0;
  for (let b = 0; b < B; b++) {
    let s = 0, sm = 0;
    for (let t = 0; t < T; t++) { s += kld[b * T + t] * m[b * T + t]; sm += m[b * T + t]; }
    total += s / (sm + 1e-8);
  }
  return { rewards, klMean: B > 0 ? total / B : 0 };
}
