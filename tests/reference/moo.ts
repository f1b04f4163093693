// Float64 references of the multi-objective ops (lib/moo/), written from the formulas of
// docs/papers/dynamic-reward-weighting.md and docs/papers/op-gfn.md.

/** botorch is_non_dominated(Y, deduplicate=False), maximisation: 1 unless another point is >= everywhere and > somewhere. */
export function refParetoFront(points: ArrayLike<number>, K: number): Uint8Array {
  const B = points.length / K;
  const out = new Uint8Array(B);
  for (let i = 0; i < B; i++) {
    let dominated = false;
    for (let j = 0; j < B && !dominated; j++) {
      if (j === i) continue;
      let ge = true, gt = false;
      for (let k = 0; k < K; k++) {
        const q = points[j * K + k], p = points[i * K + k];
        if (!(q >= p)) ge = false;
        if (q > p) gt = true;
      }
      dominated = ge && gt;
    }
    out[i] = dominated ? 0 : 1;
  }
  return out;
}

/** s = (G G^T) 1 and w' = softmax(log w + lr s / mu), all in float64. */
export function refRewardWeightUpdate(G: ArrayLike<number>, w: ArrayLike<number>, lr: number, mu: number) {
  const K = w.length, P = G.length / K;
  const gram = new Float64Array(K * K);
  for (let i = 0; i < K; i++) {
    for (let j = 0; j < K; j++) {
      let s = 0;
      for (let c = 0; c < P; c++) s += G[i * P + c] * G[j * P + c];
      gram[i * K + j] = s;
    }
  }
  const scores = new Float64Array(K), z = new Float64Array(K);
  for (let i = 0; i < K; i++) {
    for (let j = 0; j < K; j++) scores[i] += gram[i * K + j];
    z[i] = Math.log(w[i]) + (lr * scores[i]) / mu;
  }
  const m = Math.max(...z);
  let sum = 0;
  for (let i = 0; i < K; i++) sum += Math.exp(z[i] - m);
  const weights = Float64Array.from(z, (x) => Math.exp(x - m) / sum);
  return { gram, scores, weights };
}

/**
 * The hypervolume of the paper's code (hypervolumn_contribution.py _hypervolume), recursively as
 * written there: sort by the first coordinate, slice, recurse on the rest; 1-D: max - ref.
 */
export function refHypervolume(points: number[][], ref: number[]): number {
  if (points.length === 0) return 0;
  if (ref.length === 1) return Math.max(...points.map((p) => p[0])) - ref[0];
  let pts = [...points].sort((a, b) => a[0] - b[0]);
  let hv = 0;
  let ref0 = ref[0];
  while (pts.length > 0) {
    const p0 = pts[0];
    const width = p0[0] - ref0;
    if (width > 0) {
      hv += width * refHypervolume(pts.map((p) => p.slice(1)), ref.slice(1));
      ref0 = p0[0];
    }
    pts = pts.filter((p) => p[0] > p0[0]);
  }
  return hv;
}

/** compute_score: the buffer (reference first), maximise flags, then the contribution and the meta-reward. */
export function refHvMetaReward(front: number[][], current: number[], reference: number[], maximize: boolean[]) {
  const s = (p: number[]) => p.map((x, k) => (maximize[k] ? x : -x));
  const ref = s(reference), prev = front.map(s), cur = s(current);
  const without = refHypervolume(prev, ref);
  const withCur = refHypervolume([...prev, cur], ref);
  const contribution = Math.max(withCur - without, 0);
  return { without, withCur, contribution, meta: 0.5 + 1.5 * Math.tanh(contribution) };
}

/** The dominated volume by brute force on the grid of all coordinates (points >= ref assumed), an independent check. */
export function bruteHypervolume(points: number[][], ref: number[]): number {
  const K = ref.length;
  const axes = Array.from({ length: K }, (_, k) => [...new Set([ref[k], ...points.map((p) => p[k])])].sort((a, b) => a - b));
  let vol = 0;
  const idx = new Array<number>(K).fill(0);
  const rec = (d: number) => {
    if (d === K) {
      // The cell [axes[k][idx[k]], axes[k][idx[k] + 1]]: dominated when some point is >= its upper corner.
      const hi = idx.map((i, k) => axes[k][i + 1]);
      if (points.some((p) => p.every((x, k) => x >= hi[k]))) {
        let v = 1;
        for (let k = 0; k < K; k++) v *= axes[k][idx[k] + 1] - axes[k][idx[k]];
        vol += v;
      }
      return;
    }
    for (let i = 0; i + 1 < axes[d].length; i++) {
      idx[d] = i;
      rec(d + 1);
    }
  };
  rec(0);
  return vol;
}

/** r_b = logZ_b + sum_t m logPF - sum_t m logPB. */
export function refLogRewardHat(lpf: ArrayLike<number>, lpb: ArrayLike<number>, logZ: ArrayLike<number>, mask: ArrayLike<number> | null, T: number): Float64Array {
  const B = lpf.length / T;
  const r = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let s = logZ.length === 1 ? logZ[0] : logZ[b];
    for (let t = 0; t < T; t++) {
      const m = mask ? mask[b * T + t] : 1;
      s += m * lpf[b * T + t] - m * lpb[b * T + t];
    }
    r[b] = s;
  }
  return r;
}

/** Trajectory balance: mean_b (r_b - logR_b)^2. */
export function refTbLoss(lpf: ArrayLike<number>, lpb: ArrayLike<number>, logR: ArrayLike<number>, logZ: ArrayLike<number>, mask: ArrayLike<number> | null, T: number) {
  const r = refLogRewardHat(lpf, lpb, logZ, mask, T);
  const res = Float64Array.from(r, (x, b) => x - logR[b]);
  let loss = 0;
  for (const d of res) loss += d * d;
  return { loss: loss / r.length, residuals: res, g: Float64Array.from(res, (d) => (2 * d) / r.length) };
}

/** Order-preserving loss: logsumexp(r) - mean over the front of r. */
export function refOpLoss(lpf: ArrayLike<number>, lpb: ArrayLike<number>, objectives: ArrayLike<number>, logZ: ArrayLike<number>, mask: ArrayLike<number> | null, T: number, K: number) {
  const r = refLogRewardHat(lpf, lpb, logZ, mask, T);
  const front = refParetoFront(objectives, K);
  const nf = front.reduce((a, x) => a + x, 0);
  const m = Math.max(...r);
  let se = 0;
  for (const x of r) se += Math.exp(x - m);
  const lse = m + Math.log(se);
  let loss = lse;
  for (let b = 0; b < r.length; b++) if (front[b]) loss -= r[b] / nf;
  const g = Float64Array.from(r, (x, b) => Math.exp(x - lse) - (front[b] ? 1 / nf : 0));
  return { loss, r, front, nf, g };
}

/** The step gradients of a per-row gradient g: g m wrt logPF, -g m wrt logPB; logZ: g (or its sum). */
export function refStepGrads(g: Float64Array, mask: ArrayLike<number> | null, T: number, zLen: number) {
  const B = g.length;
  const pf = new Float64Array(B * T), pb = new Float64Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const m = mask ? mask[b * T + t] : 1;
      pf[b * T + t] = g[b] * m;
      pb[b * T + t] = -g[b] * m;
    }
  }
  const z = zLen === 1 ? Float64Array.of(g.reduce((a, x) => a + x, 0)) : g;
  return { pf, pb, z };
}
