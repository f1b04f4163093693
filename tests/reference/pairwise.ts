// Float64 references of the pairwise seed-paper losses (lib/pairwise/), written from their formulas
// (docs/papers/d3po.md).
type Arr = ArrayLike<number>;

const softplus = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));
const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const maskAt = (mask: Arr | null, i: number) => (mask === null ? 1 : Number(mask[i]));
const perRow = (a: Arr, n: number, T: number, i: number) => (a.length === n ? a[i] : a[Math.floor(i / T)]);

/** D3PO: the mean over masked steps of -log s(beta (h0 log rho0 + h1 log rho1)), rho clamped. */
export function refD3po(
  lp0: Arr, lp1: Arr, ref0: Arr, ref1: Arr, h0: Arr, h1: Arr, mask: Arr | null, T: number, beta = 0.1, eps = 0.1,
) {
  const n = lp0.length;
  const lo = Math.log(1 - eps), hi = Math.log(1 + eps);
  let total = 0;
  for (let i = 0; i < n; i++) total += maskAt(mask, i);
  const f = total > 0 ? 1 / total : 0;
  let loss = 0, clip = 0, acc = 0;
  const g0 = new Float64Array(n), g1 = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const m = maskAt(mask, i);
    if (m === 0) continue;
    const d0 = lp0[i] - ref0[i], d1 = lp1[i] - ref1[i];
    const c0 = Math.min(Math.max(d0, lo), hi), c1 = Math.min(Math.max(d1, lo), hi);
    const a = perRow(h0, n, T, i), b = perRow(h1, n, T, i);
    const z = beta * (a * c0 + b * c1);
    loss += m * f * softplus(-z);
    const g = -m * f * sigmoid(-z) * beta;
    g0[i] = d0 >= lo && d0 <= hi ? g * a : 0;
    g1[i] = d1 >= lo && d1 <= hi ? g * b : 0;
    clip += m * (d0 < lo || d0 > hi || d1 < lo || d1 > hi ? 1 : 0);
    acc += m * (z > 0 ? 1 : 0);
  }
  return { loss, grad0: g0, grad1: g1, clipFraction: total > 0 ? clip / total : 0, accuracy: total > 0 ? acc / total : 0, tokenCount: total };
}

/**
 * DNO's soft-label Bradley-Terry loss (Rosset et al. 2024, Direct Nash Optimization, Algorithm 1's
 * regression onto the preference probability), from the raw sequence log-probs:
 * z = eta [(l1 - lt1) - (l2 - lt2)], L = mean_i -(p log s(z) + (1 - p) log s(-z)),
 * dL/dz_i = (s(z_i) - p_i) / P, so dL/dl1 = eta (s(z) - p) / P = -dL/dl2.
 */
export function refDnoSoftBt(l1: Arr, lt1: Arr, l2: Arr, lt2: Arr, p: Arr, eta: number) {
  const P = l1.length;
  let loss = 0;
  const losses = new Float64Array(P), g1 = new Float64Array(P), g2 = new Float64Array(P);
  for (let i = 0; i < P; i++) {
    const z = eta * ((l1[i] - lt1[i]) - (l2[i] - lt2[i]));
    losses[i] = p[i] * softplus(-z) + (1 - p[i]) * softplus(z);
    loss += losses[i] / P;
    const dz = (sigmoid(z) - p[i]) / P;
    g1[i] = eta * dz;
    g2[i] = -eta * dz;
  }
  return { loss, losses, gradL1: g1, gradL2: g2 };
}

/**
 * PRDP (arXiv 2402.08714v2) written in the paper's terms: per step r_t = l - l_ref (Eq. 19), clipped to
 * [r_old,t - eps, r_old,t + eps] with r_old,t = l_old - l_ref (Eq. 20); the trajectory's r the masked sum
 * (Eq. 21) or masked mean (Appendix G) of its steps; per pair max((dr - y)^2, (dr_clip - y)^2) with
 * y = (r_a - r_b) / beta (Eqs. 14, 17, 18); the mean over pairs. `refA`/`refB` null: l_ref = l_old.
 */
export function refPrdp(
  lpA: Arr, lpB: Arr, oldA: Arr, oldB: Arr, rA: Arr, rB: Arr, mask: Arr | null, T: number, beta = 0.1, eps = 1e-4,
  stepReduction: 'sum' | 'mean' = 'sum', refA: Arr | null = null, refB: Arr | null = null,
) {
  const n = lpA.length, B = n / T;
  const gA = new Float64Array(n), gB = new Float64Array(n);
  const clampTo = (x: number, lo: number, hi: number) => (x < lo ? lo : x > hi ? hi : x);
  let loss = 0, clip = 0, total = 0;
  for (let b = 0; b < B; b++) {
    let s = 0, sc = 0, msum = 0;
    for (let t = 0; t < T; t++) {
      const i = b * T + t, m = maskAt(mask, i);
      msum += m;
      if (m === 0) continue;
      const ra = lpA[i] - (refA ? refA[i] : oldA[i]), rb = lpB[i] - (refB ? refB[i] : oldB[i]);
      const oa = refA ? oldA[i] - refA[i] : 0, ob = refB ? oldB[i] - refB[i] : 0;
      s += m * (ra - rb);
      sc += m * (clampTo(ra, oa - eps, oa + eps) - clampTo(rb, ob - eps, ob + eps));
    }
    const k = stepReduction === 'sum' ? 1 : msum > 0 ? 1 / msum : 0;
    const y = (rA[b] - rB[b]) / beta;
    const u = k * s - y, v = k * sc - y;
    const clipped = v * v > u * u;
    const e = clipped ? v : u;
    loss += (e * e) / B;
    for (let t = 0; t < T; t++) {
      const i = b * T + t, m = maskAt(mask, i);
      if (m === 0) continue;
      const dA = lpA[i] - oldA[i], dB = lpB[i] - oldB[i];
      const inA = dA >= -eps && dA <= eps, inB = dB >= -eps && dB <= eps;
      gA[i] = clipped && !inA ? 0 : (2 / B) * e * k * m;
      gB[i] = clipped && !inB ? 0 : (-2 / B) * e * k * m;
      clip += m * (inA && inB ? 0 : 1);
      total += m;
    }
  }
  return { loss, gradA: gA, gradB: gB, clipFraction: total > 0 ? clip / total : 0, tokenCount: total };
}

/** Secrets of RLHF II: ensemble margin mean / std per pair, adaptive-margin BT with flip and smoothing. */
export function refPreferenceStrength(
  rc: Arr, rr: Arr, ec: Arr, er: Arr,
  o: { adaptiveMargin?: boolean; flipNegative?: boolean; labelSmoothing?: number; stdCorrection?: number } = {},
) {
  const P = rc.length, M = ec.length / P;
  const adaptive = o.adaptiveMargin ?? true, flip = o.flipNegative ?? true, e = o.labelSmoothing ?? 0, corr = o.stdCorrection ?? 1;
  const losses = new Float64Array(P), gc = new Float64Array(P), gr = new Float64Array(P), mean = new Float64Array(P), std = new Float64Array(P);
  let loss = 0, flips = 0;
  for (let i = 0; i < P; i++) {
    const d: number[] = [];
    for (let m = 0; m < M; m++) d.push(ec[m * P + i] - er[m * P + i]);
    const mu = d.reduce((a, b) => a + b, 0) / M;
    const den = M - corr;
    const sd = den > 0 ? Math.sqrt(d.reduce((a, b) => a + (b - mu) ** 2, 0) / den) : 0;
    const s = flip && mu < 0 ? -1 : 1;
    const z = s * (rc[i] - rr[i]) - (adaptive ? s * mu : 0);
    losses[i] = (1 - e) * softplus(-z) + e * softplus(z);
    const dz = -(1 - e) * sigmoid(-z) + e * sigmoid(z);
    gc[i] = (s * dz) / P;
    gr[i] = (-s * dz) / P;
    mean[i] = mu;
    std[i] = sd;
    loss += losses[i] / P;
    flips += s < 0 ? 1 : 0;
  }
  return { loss, losses, gradChosen: gc, gradRejected: gr, mean, std, flipFraction: flips / P };
}

/** P3O (docs/papers/p3o.md): the mean over pairs of the separate-clip or joint-clip pairwise PPO loss. */
export function refP3o(
  lp1: Arr, lp2: Arr, old1: Arr, old2: Arr, r1: Arr, r2: Arr, m1: Arr | null, m2: Arr | null, T: number,
  clip: 'separate' | 'joint' = 'separate', eps = 0.2,
) {
  const n = lp1.length, B = n / T;
  // -min(rho A, clip(rho) A) and d/dlog rho; clipped when the clipped branch is strictly smaller
  const term = (rho: number, A: number) => {
    if (A === 0) return { l: 0, d: 0, c: 0 };
    const u = rho * A, v = Math.min(Math.max(rho, 1 - eps), 1 + eps) * A;
    return v < u ? { l: -v, d: 0, c: 1 } : { l: -u, d: -u, c: 0 };
  };
  let loss = 0, clipped = 0;
  const g1 = new Float64Array(n), g2 = new Float64Array(n);
  for (let b = 0; b < B; b++) {
    let s1 = 0, s2 = 0;
    for (let t = b * T; t < (b + 1) * T; t++) {
      s1 += maskAt(m1, t) * (lp1[t] - old1[t]);
      s2 += maskAt(m2, t) * (lp2[t] - old2[t]);
    }
    const dr = r1[b] - r2[b];
    let d1: number, d2: number;
    if (clip === 'joint') {
      const j = term(Math.exp(s1 - s2), dr);
      loss += j.l;
      clipped += j.c;
      d1 = j.d;
      d2 = -j.d;
    } else {
      const a = term(Math.exp(s1), dr / 2), c = term(Math.exp(s2), -dr / 2);
      loss += a.l + c.l;
      clipped += a.c + c.c;
      d1 = a.d;
      d2 = c.d;
    }
    for (let t = b * T; t < (b + 1) * T; t++) {
      g1[t] = (d1 * maskAt(m1, t)) / B;
      g2[t] = (d2 * maskAt(m2, t)) / B;
    }
  }
  return { loss: loss / B, grad1: g1, grad2: g2, clipFraction: clipped / (clip === 'joint' ? B : 2 * B) };
}
