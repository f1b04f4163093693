// Float64 reference of the policy losses and KL estimators, written from docs/policy.md (with
// the verl/TRL details noted in docs/policy.md). Plain loops, no cleverness: the loss matrix first,
// then the aggregation exactly as defined.
//
// Stop-gradient parts are evaluated at `detached` (default: the log-probs themselves), so a central
// finite difference in `logprobs` with `detached` held fixed gives the gradient autograd would give
// (GSPO's sg(s_i), CISPO's sg(min(r, epsHigh)), k3+'s straight-through value).

export type Variant = 'ppo' | 'gspo' | 'cispo' | 'sapo' | 'gpg';
export type Aggregation = 'token-mean' | 'seq-mean-token-mean' | 'seq-mean-token-sum' | 'seq-mean-token-sum-norm';
export type Estimator = 'k1' | 'k2' | 'k3' | 'abs' | 'k3+';

export interface RefPolicyOptions {
  seqLen: number;
  variant: Variant;
  aggregation: Aggregation;
  epsilonLow: number;
  epsilonHigh: number;
  dualClip?: number;
  delta?: number;
  normalizer?: number;
  refLogprobs?: ArrayLike<number>;
  beta: number;
  klEstimator: Estimator;
  entropy?: ArrayLike<number>;
  entropyCoef: number;
  /** policyLoss options.tokenWeights: multiplies the policy term (not KL, not entropy), as TRL and verl. */
  tokenWeights?: ArrayLike<number>;
  tauPos: number;
  tauNeg: number;
}

export interface RefPolicyResult {
  loss: number;
  /** sum_t w_t |L_t|: the scale of the terms the loss sums (what a cancelling sum is relative to). */
  lossScale: number;
  grad: Float64Array;
  gradEntropy: Float64Array;
  metrics: {
    clipFraction: number;
    clipLowFraction: number;
    clipHighFraction: number;
    dualClipFraction: number;
    approxKl: number;
    kl: number;
    entropy: number;
    tokenCount: number;
  };
}

const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** verl k3 value with both clamps, from d = logprobs - ref. */
function k3Value(d: number): number {
  const x = clamp(-d, -20, 20);
  return clamp(Math.exp(x) - x - 1, -10, 10);
}

/** KL estimate and its derivative w.r.t. logprobs, d = logprobs - ref (k3+ uses k2's gradient). */
export function refKl(est: Estimator, d: number): { value: number; grad: number } {
  switch (est) {
    case 'k1':
      return { value: d, grad: 1 };
    case 'abs':
      return { value: Math.abs(d), grad: Math.sign(d) };
    case 'k2':
      return { value: 0.5 * d * d, grad: d };
    case 'k3': {
      const x = -d;
      const k = Math.exp(clamp(x, -20, 20)) - clamp(x, -20, 20) - 1;
      const pass = x >= -20 && x <= 20 && k <= 10 && k >= -10;
      return { value: k3Value(d), grad: pass ? 1 - Math.exp(x) : 0 };
    }
    case 'k3+':
      return { value: k3Value(d), grad: d };
  }
}

/** The k3+ surrogate: k2(d) - k2(d0) + k3(d0), whose derivative in d is k2's. */
function klSurrogate(est: Estimator, d: number, d0: number): number {
  if (est === 'k3+') return 0.5 * d * d - 0.5 * d0 * d0 + k3Value(d0);
  return refKl(est, d).value;
}

export function refPolicyLoss(
  logprobs: ArrayLike<number>,
  oldLogprobs: ArrayLike<number>,
  advantages: ArrayLike<number>,
  mask: ArrayLike<number> | null,
  o: RefPolicyOptions,
  detached: ArrayLike<number> = logprobs,
): RefPolicyResult {
  const n = logprobs.length;
  const T = o.seqLen;
  const B = n / T;
  const perToken = advantages.length === n;
  const mk = (i: number) => (mask === null ? 1 : mask[i]);
  const adv = (b: number, i: number) => (perToken ? advantages[i] : advantages[b]);
  const Lmat = new Float64Array(n);
  const gmat = new Float64Array(n);
  let low = 0, high = 0, dual = 0, approx = 0, klSum = 0, entSum = 0, msum = 0;
  const lo = 1 - o.epsilonLow, hi = 1 + o.epsilonHigh;

  for (let b = 0; b < B; b++) {
    // GSPO: log s_b = masked mean of (detached - old).
    let M = 0, md = 0;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (mk(i) > 0) {
        M += mk(i);
        md += mk(i) * (detached[i] - oldLogprobs[i]);
      }
    }
    const logS = M > 0 ? md / M : 0;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      const m = mk(i);
      if (!(m > 0)) continue;
      const l = logprobs[i], l0 = detached[i];
      const A = adv(b, i);
      const d = l - oldLogprobs[i], d0 = l0 - oldLogprobs[i];
      let L = 0, g = 0;
      if (o.variant === 'ppo' || o.variant === 'gspo') {
        // ratio (live) and its derivative; the clip metrics use the detached value
        let r: number, dr: number, r0: number;
        if (o.variant === 'ppo') {
          r = Math.exp(clamp(d, -20, 20));
          dr = d >= -20 && d <= 20 ? r : 0;
          r0 = Math.exp(clamp(d0, -20, 20));
        } else {
          const lr = l - l0 + logS;
          r = Math.exp(Math.min(lr, 10));
          dr = lr <= 10 ? r : 0;
          r0 = Math.exp(Math.min(logS, 10));
        }
        const capped = o.delta !== undefined && r > o.delta;
        const L1 = -A * (capped ? o.delta! : r);
        const L2 = -A * clamp(r, lo, hi);
        L = Math.max(L1, L2);
        g = L1 >= L2 && !capped ? -A * dr : 0;
        if (o.dualClip !== undefined && A < 0 && L > -A * o.dualClip) {
          L = -A * o.dualClip;
          g = 0;
          dual += m;
        }
        if (r0 < lo && A < 0) low += m;
        if (r0 > hi && A > 0) high += m;
      } else if (o.variant === 'cispo') {
        const r0 = Math.exp(clamp(d0, -20, 20));
        const w = Math.min(r0, o.epsilonHigh);
        L = -w * A * l;
        g = -w * A;
        if (r0 > o.epsilonHigh && A > 0) high += m;
      } else if (o.variant === 'sapo') {
        const tau = A > 0 ? o.tauPos : o.tauNeg;
        const r = Math.exp(clamp(d, -20, 20));
        const s = sigmoid(tau * (r - 1));
        L = -(4 / tau) * s * A;
        g = d >= -20 && d <= 20 ? -4 * s * (1 - s) * r * A : 0;
      } else {
        L = -A * l;
        g = -A;
      }
      approx += m * 0.5 * d0 * d0;
      if (o.tokenWeights) {
        L *= o.tokenWeights[i];
        g *= o.tokenWeights[i];
      }
      if (o.refLogprobs) {
        const kd = l - o.refLogprobs[i], kd0 = l0 - o.refLogprobs[i];
        L += o.beta * klSurrogate(o.klEstimator, kd, kd0);
        g += o.beta * refKl(o.klEstimator, kd).grad;
        klSum += m * refKl(o.klEstimator, kd0).value;
      }
      if (o.entropy) {
        L -= o.entropyCoef * o.entropy[i];
        entSum += m * o.entropy[i];
      }
      Lmat[i] = L;
      gmat[i] = g;
      msum += m;
    }
  }

  // Aggregation weights w_i, loss = sum w L.
  const w = new Float64Array(n);
  for (let b = 0; b < B; b++) {
    let M = 0;
    for (let t = 0; t < T; t++) M += mk(b * T + t) > 0 ? mk(b * T + t) : 0;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      const m = mk(i);
      if (!(m > 0)) continue;
      switch (o.aggregation) {
        case 'token-mean': {
          const den = o.normalizer ?? msum;
          w[i] = den > 0 ? m / den : 0;
          break;
        }
        case 'seq-mean-token-mean':
          w[i] = m / M / (o.normalizer ?? B);
          break;
        case 'seq-mean-token-sum':
          w[i] = m / (o.normalizer ?? B);
          break;
        case 'seq-mean-token-sum-norm':
          w[i] = m / (o.normalizer ?? B * T);
          break;
      }
    }
  }
  let loss = 0, lossScale = 0;
  const grad = new Float64Array(n);
  const gradEntropy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (w[i] === 0) continue;
    loss += w[i] * Lmat[i];
    lossScale += w[i] * Math.abs(Lmat[i]);
    grad[i] = w[i] * gmat[i];
    gradEntropy[i] = -o.entropyCoef * w[i];
  }
  const frac = (x: number) => (msum > 0 ? x / msum : 0);
  return {
    loss,
    lossScale,
    grad,
    gradEntropy,
    metrics: {
      clipFraction: frac(low + high),
      clipLowFraction: frac(low),
      clipHighFraction: frac(high),
      dualClipFraction: frac(dual),
      approxKl: frac(approx),
      kl: frac(klSum),
      entropy: frac(entSum),
      tokenCount: msum,
    },
  };
}

/** Elementwise klPenalty reference: values, gradients and the weighted mean. */
export function refKlPenalty(
  logprobs: ArrayLike<number>,
  ref: ArrayLike<number>,
  est: Estimator,
  mask: ArrayLike<number> | null,
): { kl: Float64Array; grad: Float64Array; mean: number } {
  const n = logprobs.length;
  const kl = new Float64Array(n), grad = new Float64Array(n);
  let sm = 0, sk = 0;
  for (let i = 0; i < n; i++) {
    const m = mask === null ? 1 : mask[i];
    if (!(m > 0)) continue;
    const r = refKl(est, logprobs[i] - ref[i]);
    kl[i] = r.value;
    grad[i] = r.grad;
    sm += m;
    sk += m * r.value;
  }
  return { kl, grad, mean: sm > 0 ? sk / sm : 0 };
}
