// Float64 reference of rolloutCorrection, written from docs/policy.md#rolloutcorrection as the peers
// compute it: whole (B, T) matrices, then verl's masked_sum / masked_mean (sum(x m) / (sum m + 1e-8))
// and TRL's boolean-mask selections. No row-wise cleverness: each quantity from its definition.

export type RcMode = 'token_truncate' | 'token_mask' | 'sequence_truncate' | 'sequence_mask' | 'none';
export type RcCriterion =
  | 'token_k1' | 'token_k2' | 'token_k3' | 'seq_sum_k1' | 'seq_sum_k2' | 'seq_sum_k3'
  | 'seq_mean_k1' | 'seq_mean_k2' | 'seq_mean_k3' | 'seq_max_k2' | 'seq_max_k3';

export interface RefRcOptions {
  seqLen: number;
  mode: RcMode;
  /** 0: none. */
  clipMin: number;
  /** null: none. */
  clipMax: number | null;
  batchNormalize: boolean;
  offPolicyMaskThreshold?: number;
  /** criterion -> [lower, upper] ratio bounds (k1) or upper bound. */
  rejection: Partial<Record<RcCriterion, number | [number, number]>>;
}

export interface RefRcResult {
  weights: Float64Array | null;
  mask: Float64Array;
  metrics: Record<string, number>;
}

const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);

export function refRolloutCorrection(
  trainer: ArrayLike<number>,
  rollout: ArrayLike<number>,
  advantages: ArrayLike<number> | null,
  mask: ArrayLike<number> | null,
  o: RefRcOptions,
): RefRcResult {
  const n = trainer.length, T = o.seqLen, B = n / T;
  const m = Float64Array.from({ length: n }, (_, i) => (mask === null ? 1 : mask[i]));
  const valid = (i: number) => m[i] > 0;
  const row = (b: number) => Array.from({ length: T }, (_, t) => b * T + t);
  // verl_F.masked_sum / masked_mean over everything or one row
  const msum = (x: (i: number) => number, idx: number[]) => idx.reduce((s, i) => s + (valid(i) ? x(i) * m[i] : 0), 0);
  const mmean = (x: (i: number) => number, idx: number[]) => msum(x, idx) / (idx.reduce((s, i) => s + m[i], 0) + 1e-8);
  const all = Array.from({ length: n }, (_, i) => i);
  const rows = Array.from({ length: B }, (_, b) => row(b));
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;

  const d = (i: number) => trainer[i] - rollout[i];
  const ds = (i: number) => clamp(d(i), -20, 20);
  const S = rows.map((r) => msum(d, r)); // sequence log-ratio

  // ---- importance weights ----
  const seq = o.mode.startsWith('sequence');
  const truncate = o.mode.endsWith('truncate');
  const isOn = o.mode !== 'none';
  const hiC = o.clipMax ?? Infinity;
  const bound = (w0: number) =>
    truncate ? Math.min(Math.max(w0, o.clipMin), hiC) : w0 < o.clipMin || w0 > hiC ? 0 : w0;
  const w0 = (i: number) => (seq ? Math.exp(clamp(S[Math.floor(i / T)], -20, 20)) : Math.exp(ds(i)));
  const wIs = (i: number) => (isOn ? bound(w0(i)) : 1);

  // ---- TRL off-policy mask ----
  const opsm = o.offPolicyMaskThreshold !== undefined;
  const keepO = (i: number) => {
    if (!opsm) return true;
    const b = Math.floor(i / T);
    const A = advantages!.length === n ? advantages![i] : advantages![b];
    const kl = rows[b].reduce((s, j) => s + (rollout[j] - trainer[j]) * m[j], 0) / Math.max(rows[b].reduce((s, j) => s + m[j], 0), 1);
    return A >= 0 || kl <= o.offPolicyMaskThreshold!;
  };

  // ---- verl rejection ----
  const k1 = (i: number) => -ds(i), k2 = (i: number) => 0.5 * ds(i) ** 2, k3 = (i: number) => Math.exp(ds(i)) - 1 - ds(i);
  const kf = { k1, k2, k3 } as const;
  const keepR = new Array<boolean>(n).fill(true);
  for (const [name, thr] of Object.entries(o.rejection) as [RcCriterion, number | [number, number]][]) {
    const isK1 = name.endsWith('k1');
    const [lo, hi] = Array.isArray(thr) ? thr : isK1 ? [1 / thr, thr] : [0, thr];
    const pass = (v: number) => (isK1 ? v >= Math.log(lo) && v <= Math.log(hi) : v <= hi);
    const f = kf[name.slice(-2) as 'k1' | 'k2' | 'k3'];
    for (let b = 0; b < B; b++) {
      let stat = 0;
      if (name.startsWith('seq_sum')) stat = msum(f, rows[b]);
      else if (name.startsWith('seq_mean')) stat = mmean(f, rows[b]);
      else if (name.startsWith('seq_max')) {
        const v = rows[b].filter(valid).map(f);
        stat = v.length ? Math.max(...v) : 0;
      }
      for (const i of rows[b]) if (!pass(name.startsWith('token') ? f(i) : stat)) keepR[i] = false;
    }
  }
  const outMask = Float64Array.from(all, (i) => (valid(i) && keepR[i] ? m[i] : 0));

  // ---- metrics ----
  const metrics: Record<string, number> = {};
  const tokenCount = all.reduce((s, i) => s + m[i], 0);
  const validIdx = all.filter(valid);
  let factor = 1;
  if (isOn) {
    const thrHi = hiC;
    const thrLo = o.clipMin > 0 ? o.clipMin : o.clipMax !== null ? 1 / o.clipMax : 0;
    metrics.isMean = mmean(w0, all);
    if (seq) {
      metrics.isMax = Math.exp(Math.min(Math.max(...S), 20));
      metrics.isMin = Math.exp(Math.min(...S));
      metrics.isFractionHigh = mean(S.map((s) => (s > Math.log(thrHi) ? 1 : 0)));
      metrics.isFractionLow = mean(S.map((s) => (s < Math.log(thrLo) ? 1 : 0)));
    } else {
      metrics.isMax = validIdx.length ? Math.max(...validIdx.map(w0)) : 0;
      metrics.isMin = validIdx.length ? Math.min(...validIdx.map(w0)) : 0;
      metrics.isFractionHigh = mmean((i) => (w0(i) > thrHi ? 1 : 0), all);
      metrics.isFractionLow = mmean((i) => (w0(i) < thrLo ? 1 : 0), all);
    }
    const c = (i: number) => clamp(w0(i), thrLo, thrHi);
    const mc = mmean(c, all);
    metrics.isStd = tokenCount > 1 ? Math.sqrt(Math.max(mmean((i) => c(i) ** 2, all) - mc * mc, 0)) : 0;
    metrics.isEffSampleSize = validIdx.length ? 1 / mmean((i) => (c(i) / (mc + 1e-8)) ** 2, all) : 0;
    const sw = rows.map((r) => mmean(w0, r));
    const swm = mean(sw);
    metrics.isSeqMean = swm;
    metrics.isSeqStd = B > 1 ? Math.sqrt(sw.reduce((s, x) => s + (x - swm) ** 2, 0) / (B - 1)) : 0;
    metrics.isSeqMax = Math.max(...sw);
    metrics.isSeqMin = Math.min(...sw);
    metrics.isSeqMaxDeviation = Math.max(...sw.map((x) => Math.abs(x - 1)));
    metrics.isSeqFractionHigh = mean(sw.map((x) => (x > thrHi ? 1 : 0)));
    metrics.isSeqFractionLow = mean(sw.map((x) => (x < thrLo ? 1 : 0)));
    if (o.batchNormalize) {
      let bm: number;
      if (seq) {
        const nonEmpty = rows.filter((r) => r.reduce((s, i) => s + m[i], 0) > 0);
        bm = nonEmpty.reduce((s, r) => s + mmean(wIs, r), 0) / Math.max(nonEmpty.length, 1e-8);
      } else {
        bm = mmean(wIs, all);
      }
      factor = bm > 1e-8 ? bm : 1;
      metrics.isBatchNormFactor = factor;
    }
    // TRL: the final ratio, per unmasked token (token modes) or per sequence (sequence modes)
    const ratios = seq ? rows.map((r) => bound(Math.exp(clamp(S[r[0] / T], -20, 20)))) : validIdx.map(wIs);
    metrics.isRatioMin = ratios.length ? Math.min(...ratios) : 0;
    metrics.isRatioMean = ratios.length ? mean(ratios) : 0;
    metrics.isRatioMax = ratios.length ? Math.max(...ratios) : 0;
  }
  const delta = validIdx.map((i) => Math.abs(d(i)));
  metrics.logpDiffMean = delta.length ? mean(delta) : 0;
  metrics.logpDiffMax = delta.length ? Math.max(...delta) : 0;
  const mt = rows.map((r) => mmean((i) => trainer[i], r));
  const mq = rows.map((r) => mmean((i) => rollout[i], r));
  metrics.trainingPpl = mean(mt.map((x) => Math.exp(-x)));
  metrics.trainingLogPpl = mean(mt.map((x) => -x));
  metrics.kl = mmean((i) => rollout[i] - trainer[i], all);
  metrics.k3Kl = mmean((i) => Math.exp(d(i)) - d(i) - 1, all);
  metrics.rolloutPpl = mean(mq.map((x) => Math.exp(-x)));
  metrics.rolloutLogPpl = mean(mq.map((x) => -x));
  const lpd = mq.map((x, b) => x - mt[b]);
  metrics.logPplDiff = mean(lpd);
  metrics.logPplAbsDiff = mean(lpd.map(Math.abs));
  metrics.logPplDiffMax = Math.max(...lpd);
  metrics.logPplDiffMin = Math.min(...lpd);
  metrics.pplRatio = mean(lpd.map(Math.exp));
  metrics.chi2Token = mmean((i) => Math.exp(ds(i)) ** 2, all) - 1;
  metrics.chi2Seq = mean(S.map((s) => Math.exp(2 * clamp(s, -20, 20)))) - 1;
  if (Object.keys(o.rejection).length) {
    metrics.rsMaskedFraction = mmean((i) => (keepR[i] ? 0 : 1), all);
    metrics.rsSeqMaskedFraction = mean(rows.map((r) => (r.some((i) => valid(i) && !keepR[i]) ? 1 : 0)));
  }
  if (opsm) metrics.offPolicyMaskedFraction = mmean((i) => (keepO(i) ? 0 : 1), all);
  metrics.tokenCount = tokenCount;

  const hasW = isOn || opsm;
  const weights = hasW ? Float64Array.from(all, (i) => (valid(i) ? (keepO(i) ? wIs(i) : 0) / factor : 0)) : null;
  return { weights, mask: outMask, metrics };
}
