// Float64 reference of gatedRewards (G-RA), discountedCumsum (SubPO step returns) and lagrangianMix
// (Constrained RLHF), written from the formulas in docs/papers/g-ra.md, docs/papers/subpo.md and
// docs/papers/constrained-rlhf.md, as direct sums (no recursion), plus their gradients.

const on = (m: ArrayLike<number> | null, i: number) => (m === null ? 1 : m[i] !== 0 ? 1 : 0);

/** R_b = h_b + 1[h_b >= delta] sum_t m_bt low_bt. */
export function refGatedRewards(high: ArrayLike<number>, low: ArrayLike<number>, mask: ArrayLike<number> | null, T: number, delta: number): Float64Array {
  const B = high.length;
  const out = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let t = 0; t < T; t++) s += on(mask, b * T + t) * low[b * T + t];
    out[b] = high[b] >= delta ? high[b] + s : high[b];
  }
  return out;
}

/** G_t = sum_{s >= t} gamma^(s - t) m_s x_s (adjoint: y_s = m_s sum_{t <= s} gamma^(s - t) x_t), as direct double sums. */
export function refDiscountedCumsum(x: ArrayLike<number>, mask: ArrayLike<number> | null, T: number, gamma: number, adjoint = false): Float64Array {
  const n = x.length;
  const out = new Float64Array(n);
  for (let b = 0; b < n / T; b++) {
    for (let t = 0; t < T; t++) {
      let s = 0;
      if (!adjoint) for (let u = t; u < T; u++) s += gamma ** (u - t) * on(mask, b * T + u) * x[b * T + u];
      else for (let u = 0; u <= t; u++) s += gamma ** (t - u) * x[b * T + u];
      out[b * T + t] = adjoint ? on(mask, b * T + t) * s : s;
    }
  }
  return out;
}

const sig = (x: number) => 1 / (1 + Math.exp(-x));

/** A_mix = (K - sum_i s(xi_i)) A_KL + sum_i s(xi_i) A_i; adv is (K, N) row-major. */
export function refLagrangianMix(adv: ArrayLike<number>, kl: ArrayLike<number>, xi: ArrayLike<number>): Float64Array {
  const K = xi.length, N = kl.length;
  let sum = 0;
  for (let i = 0; i < K; i++) sum += sig(xi[i]);
  const out = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let a = (K - sum) * kl[n];
    for (let i = 0; i < K; i++) a += sig(xi[i]) * adv[i * N + n];
    out[n] = a;
  }
  return out;
}

/** dL/dxi_i = s'(xi_i) sum_n g_n (A_i,n - A_KL,n) for L = sum_n g_n A_mix,n. */
export function refLagrangianGradXi(adv: ArrayLike<number>, kl: ArrayLike<number>, xi: ArrayLike<number>, g: ArrayLike<number>): Float64Array {
  const K = xi.length, N = kl.length;
  const out = new Float64Array(K);
  for (let i = 0; i < K; i++) {
    let s = 0;
    for (let n = 0; n < N; n++) s += g[n] * (adv[i * N + n] - kl[n]);
    out[i] = sig(xi[i]) * (1 - sig(xi[i])) * s;
  }
  return out;
}

/** xi_i - lr s'(xi_i) (J_i - theta_i). */
export function refMultiplierUpdate(xi: ArrayLike<number>, J: ArrayLike<number>, theta: ArrayLike<number>, lr: number): Float64Array {
  return Float64Array.from(xi, (x, i) => x - lr * sig(x) * (1 - sig(x)) * (J[i] - theta[i]));
}
