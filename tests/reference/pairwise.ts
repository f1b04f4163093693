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

export interface P3oTrlxRefOptions {
  clip?: 'joint' | 'token';
  epsilon?: number;
  beta?: number;
  weightClip?: number;
  scaleByStd?: boolean;
  normalizeByTokens?: boolean;
}

/**
 * P3O as the authors' code computes it (thwu1/trlx 124f2cec, AccelerateP3OTrainer.p3o_loss and its
 * caller `loss`), in float64, written from that code's formula:
 *   logratio_i = sum_t (l_i * m_i - ref_i * m_i),  old_logratio_i = sum_t (old_i - ref_i) * m_i
 *   q_diff = r_1 - r_2 - kl_coef (logratio_1 - logratio_2)  [/ torch.std(q_diff), unbiased]   (detached)
 *   ratio = exp((logratio_1 - old_logratio_1) + (logratio_2 - old_logratio_2)), w = clamp(ratio, 1/c, c)   (detached)
 *   joint: loss1 = -q w D, loss1_clip = -q w clamp(D, dO - eps, dO + eps), D = logratio_1 - logratio_2,
 *          loss = sum(max) / n (avg_tokenwise) or mean(max) / 2; clipfrac = #(loss1_clip > loss1) / B
 *   token: W = -q w; sum over every token of max(W x, W clamp(x, xo -+ eps)) with x = l_1 m_1, xo = old_1 m_1,
 *          and of max(-W x, -W clamp(...)) for response 2, / n; clipfrac = #clipped counted tokens / n
 * n = the counted tokens of both responses. Gradients by torch's rules: max gives the whole gradient to
 * the larger side and half to each on a tie; clamp passes the gradient inside [lo, hi] (inclusive).
 * `frozen` holds q (after scaling) and w of the base point, so that a finite difference of the loss
 * at a perturbed point sees them detached, as autograd does. n = 0 (every token masked): the code's
 * 0/0; this reference, like the op, returns 0.
 */
export function refP3oTrlx(
  lp1: Arr, lp2: Arr, old1: Arr, old2: Arr, ref1: Arr, ref2: Arr, r1: Arr, r2: Arr, m1: Arr | null, m2: Arr | null, T: number,
  o: P3oTrlxRefOptions = {}, frozen?: { q: Float64Array; w: Float64Array },
) {
  const { clip = 'joint', epsilon: eps = 0.2, beta = 0.05, weightClip: c = 10, scaleByStd = false, normalizeByTokens = true } = o;
  const len = lp1.length, B = len / T;
  const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);
  // torch.maximum(a, b)'s gradient shares: [to a, to b]
  const maxShare = (a: number, b: number) => (a > b ? [1, 0] : b > a ? [0, 1] : [0.5, 0.5]);
  const inside = (x: number, lo: number, hi: number) => (x >= lo && x <= hi ? 1 : 0);
  const L1 = new Float64Array(B), L2 = new Float64Array(B), O1 = new Float64Array(B), O2 = new Float64Array(B);
  let n = 0;
  for (let b = 0; b < B; b++) {
    for (let t = b * T; t < (b + 1) * T; t++) {
      const a = maskAt(m1, t), d = maskAt(m2, t);
      L1[b] += lp1[t] * a - ref1[t] * a;
      L2[b] += lp2[t] * d - ref2[t] * d;
      O1[b] += (old1[t] - ref1[t]) * a;
      O2[b] += (old2[t] - ref2[t]) * d;
      n += a + d;
    }
  }
  let q: Float64Array = new Float64Array(B), w: Float64Array = new Float64Array(B);
  if (frozen) {
    q = frozen.q;
    w = frozen.w;
  } else {
    for (let b = 0; b < B; b++) q[b] = r1[b] - r2[b] - beta * (L1[b] - L2[b]);
    if (scaleByStd) {
      let mean = 0;
      for (let b = 0; b < B; b++) mean += q[b] / B;
      let v = 0;
      for (let b = 0; b < B; b++) v += (q[b] - mean) ** 2 / (B - 1);
      const sd = Math.sqrt(v);
      for (let b = 0; b < B; b++) q[b] /= sd;
    }
    for (let b = 0; b < B; b++) w[b] = clamp(Math.exp(L1[b] - O1[b] + (L2[b] - O2[b])), 1 / c, c);
  }
  const g1 = new Float64Array(len), g2 = new Float64Array(len);
  let total = 0, clipped = 0;
  if (clip === 'joint') {
    const N = normalizeByTokens ? n : 2 * B;
    for (let b = 0; b < B; b++) {
      const D = L1[b] - L2[b], dO = O1[b] - O2[b], lo = dO - eps, hi = dO + eps;
      const loss1 = -q[b] * w[b] * D, loss1c = -q[b] * w[b] * clamp(D, lo, hi);
      total += Math.max(loss1, loss1c);
      if (loss1c > loss1) clipped++;
      const [sa, sb] = maxShare(loss1, loss1c);
      const dD = N > 0 ? (-q[b] * w[b] * (sa + sb * inside(D, lo, hi))) / N : 0; // d loss / d D
      for (let t = b * T; t < (b + 1) * T; t++) {
        g1[t] = dD * maskAt(m1, t);
        g2[t] = -dD * maskAt(m2, t);
      }
    }
    return { loss: N > 0 ? total / N : 0, grad1: g1, grad2: g2, clipFraction: clipped / B, q, w };
  }
  for (let b = 0; b < B; b++) {
    const W = -q[b] * w[b];
    for (let t = b * T; t < (b + 1) * T; t++) {
      for (const [lp, old, m, sign, g] of [[lp1, old1, m1, 1, g1], [lp2, old2, m2, -1, g2]] as const) {
        const mt = maskAt(m, t), x = lp[t] * mt, xo = old[t] * mt, lo = xo - eps, hi = xo + eps;
        const a = sign * W * x, bb = sign * W * clamp(x, lo, hi);
        total += Math.max(a, bb);
        if (bb > a) clipped += mt;
        const [sa, sb] = maxShare(a, bb);
        g[t] = n > 0 ? (sign * W * (sa + sb * inside(x, lo, hi)) * mt) / n : 0;
      }
    }
  }
  return { loss: n > 0 ? total / n : 0, grad1: g1, grad2: g2, clipFraction: n > 0 ? clipped / n : 0, q, w };
}
