// Float64 reference of docs/logprobs.md, written from the formulas:
//   z' = z / tau, lse = log sum_j exp(z'_j), logp = z'_y - lse, H = lse - sum_j p_j z'_j
//   dL/dz_j = (1/tau) ( g (1[j=y] - p_j) - h p_j (z'_j - lse + H) )

export interface RefLogprobs {
  logp: Float64Array;
  lse: Float64Array;
  entropy: Float64Array;
}

export function refTokenLogprobs(
  z: ArrayLike<number>,
  targets: ArrayLike<number>,
  vocab: number,
  temperature = 1,
  ignoreIndex = -100,
): RefLogprobs {
  const n = z.length / vocab;
  const logp = new Float64Array(n), lse = new Float64Array(n), entropy = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const y = targets[r];
    if (y === ignoreIndex) continue;
    const o = r * vocab;
    let m = -Infinity;
    for (let j = 0; j < vocab; j++) m = Math.max(m, z[o + j] / temperature);
    let s = 0;
    for (let j = 0; j < vocab; j++) s += Math.exp(z[o + j] / temperature - m);
    const l = m + Math.log(s);
    let pz = 0; // sum_j p_j (z'_j - lse), p_j = 0 terms skipped (they are 0 * -inf at -inf logits)
    for (let j = 0; j < vocab; j++) {
      const d = z[o + j] / temperature - l;
      const p = Math.exp(d);
      if (p > 0) pz += p * d;
    }
    lse[r] = l;
    logp[r] = z[o + y] / temperature - l;
    entropy[r] = -pz;
  }
  return { logp, lse, entropy };
}

export function refTokenLogprobsBackward(
  z: ArrayLike<number>,
  targets: ArrayLike<number>,
  vocab: number,
  gradLogp: ArrayLike<number>,
  gradEntropy: ArrayLike<number> | null,
  temperature = 1,
  ignoreIndex = -100,
): Float64Array {
  const n = z.length / vocab;
  const f = refTokenLogprobs(z, targets, vocab, temperature, ignoreIndex);
  const grad = new Float64Array(z.length);
  for (let r = 0; r < n; r++) {
    const y = targets[r];
    if (y === ignoreIndex) continue;
    const g = gradLogp[r], h = gradEntropy ? gradEntropy[r] : 0;
    const o = r * vocab;
    for (let j = 0; j < vocab; j++) {
      const d = z[o + j] / temperature - f.lse[r];
      const p = Math.exp(d);
      const hterm = p > 0 ? h * p * (d + f.entropy[r]) : 0;
      grad[o + j] = ((j === y ? g : 0) - g * p - hterm) / temperature;
    }
  }
  return grad;
}

/** The scalar loss sum_r g_r logp_r + h_r H_r whose gradient the backward computes. */
export function refLoss(
  z: ArrayLike<number>,
  targets: ArrayLike<number>,
  vocab: number,
  gradLogp: ArrayLike<number>,
  gradEntropy: ArrayLike<number> | null,
  temperature = 1,
  ignoreIndex = -100,
): number {
  const f = refTokenLogprobs(z, targets, vocab, temperature, ignoreIndex);
  let L = 0;
  for (let r = 0; r < f.logp.length; r++) {
    if (targets[r] === ignoreIndex) continue;
    L += gradLogp[r] * f.logp[r] + (gradEntropy ? gradEntropy[r] * f.entropy[r] : 0);
  }
  return L;
}
