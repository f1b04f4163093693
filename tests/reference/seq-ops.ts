// Float64 references of the two sequence ops (docs/policy.md), written from their formulas:
// valueLoss (verl compute_value_loss) and geoMeanPolicyLoss (GMPO, verl compute_policy_loss_geo_mean).
// Shared by tests/value-loss.test.ts, tests/geo-mean-policy-loss.test.ts and the property tests.

export type RefAggregation = 'token-mean' | 'seq-mean-token-mean' | 'seq-mean-token-sum' | 'seq-mean-token-sum-norm';

export interface RefValueLoss {
  loss: number;
  grad: Float64Array;
  clipFraction: number;
  tokenCount: number;
}

/** float64 reference: 0.5 * agg(max((v - R)^2, (clip(v, old - c, old + c) - R)^2)). */
export function refValueLoss(
  v: ArrayLike<number>, R: ArrayLike<number>, old: ArrayLike<number>, mask: ArrayLike<number> | null,
  T: number, c: number, agg: RefAggregation, normalizer = 0,
): RefValueLoss {
  const n = v.length, B = n / T;
  const m = (i: number) => (mask ? mask[i] : 1);
  const rowM = new Float64Array(B);
  let total = 0;
  for (let i = 0; i < n; i++) rowM[Math.floor(i / T)] += m(i);
  for (let b = 0; b < B; b++) total += rowM[b];
  const f = (b: number) => {
    const nz = normalizer > 0;
    switch (agg) {
      case 'token-mean': return (nz ? normalizer : total) > 0 ? 1 / (nz ? normalizer : total) : 0;
      case 'seq-mean-token-mean': return rowM[b] > 0 ? 1 / (rowM[b] * (nz ? normalizer : B)) : 0;
      case 'seq-mean-token-sum': return 1 / (nz ? normalizer : B);
      default: return 1 / (nz ? normalizer : B * T);
    }
  };
  let loss = 0, clipped = 0;
  const grad = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const w = m(i) * f(Math.floor(i / T));
    const vc = Math.min(Math.max(v[i], old[i] - c), old[i] + c);
    const l1 = (v[i] - R[i]) ** 2, l2 = (vc - R[i]) ** 2;
    if (m(i) !== 0) {
      loss += 0.5 * w * Math.max(l1, l2);
      clipped += m(i) * (l2 > l1 ? 1 : 0);
      grad[i] = l2 > l1 ? 0 : w * (v[i] - R[i]);
    }
  }
  return { loss, grad, clipFraction: total > 0 ? clipped / total : 0, tokenCount: total };
}

/** float64 reference: mean_i -A_i exp(S_i), S_i the masked mean of the sign-side clamped log-ratios. */
export function refGeoMean(
  lp: ArrayLike<number>, old: ArrayLike<number>, adv: ArrayLike<number>, mask: ArrayLike<number> | null,
  T: number, eLo: number, eHi: number,
) {
  const n = lp.length, B = n / T;
  const A = (i: number) => (adv.length === n ? adv[i] : adv[Math.floor(i / T)]);
  const m = (i: number) => (mask ? mask[i] : 1);
  let loss = 0, total = 0, hi = 0, lo = 0, kl = 0;
  for (let b = 0; b < B; b++) {
    let sm = 0, sc = 0, sa = 0;
    for (let t = 0; t < T; t++) {
      const i = b * T + t, d = lp[i] - old[i], s = Math.sign(A(i));
      const dc = Math.min(Math.max(d, -eLo), eHi);
      sm += m(i);
      sc += m(i) * s * Math.min(s * d, s * dc);
      sa += m(i) * A(i);
      if (m(i) !== 0) {
        const clipped = d !== dc;
        hi += m(i) * (clipped && A(i) > 0 ? 1 : 0);
        lo += m(i) * (clipped && A(i) < 0 ? 1 : 0);
        kl += m(i) * -d;
      }
    }
    total += sm;
    loss += (-(sa / (sm + 1e-8)) * Math.exp(sc / (sm + 1e-8))) / B;
  }
  const mean = (x: number) => (total > 0 ? x / total : 0);
  return { loss, clipFraction: mean(hi), clipFractionLower: mean(lo), ppoKl: mean(kl), tokenCount: total };
}
