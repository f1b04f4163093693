// groupAdvantages' small-call path. A trainer calls groupAdvantages once per step on a few dozen
// rewards, where the N-API call costs more than the arithmetic. Below the threshold, contiguous
// groups with estimators grpo, rloo, opo and passk (sum_then_normalize) are computed here, in
// double, in the same order as the C++ kernel (native/kernels/advantages.cc group_stat / estimate),
// so both give the same float32 results (tests/advantages.test.ts checks them bit for bit).
import type { AdvantageEstimator, AdvantageScale, MultiRewardMode } from './enums.js';

let smallN = 512;
/** @internal Tests force one path or the other (0 = always native). Returns the previous value. */
export function _setSmallPathThreshold(n: number): number {
  const prev = smallN;
  smallN = n;
  return prev;
}

/** Whether a host call of n samples with these options takes the TypeScript path. */
export function takesSmallPath(n: number, groupSize: number, estimator: AdvantageEstimator, multi: MultiRewardMode): boolean {
  return n <= smallN && groupSize > 0 && multi === 'sum_then_normalize' &&
    (estimator === 'grpo' || estimator === 'rloo' || estimator === 'opo' || estimator === 'passk');
}

/** Fills adv, gmean and gstd; returns the number of zero-std groups. */
export function smallPath(
  r: Float32Array, K: number, w: Float64Array | null, G: number, estimator: AdvantageEstimator, scaling: AdvantageScale,
  eps: number, lengths: Int32Array | null, adv: Float32Array, gmean: Float32Array, gstd: Float32Array,
): number {
  const passk = estimator === 'passk';
  const stdScaled = estimator === 'grpo' || passk;
  const rloo = estimator === 'rloo';
  const n = adv.length;
  let x: Float32Array | Float64Array = r;
  if (K > 1 || w) {
    const xs = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0, any = false;
      for (let k = 0; k < K; k++) {
        const v = r[i * K + k];
        if (v !== v) continue;
        s += (w ? w[k] : 1) * v;
        any = true;
      }
      xs[i] = any ? s : NaN;
    }
    x = xs;
  }
  let denomBatch = 1;
  if (scaling === 'batch' && stdScaled) {
    let c = 0, s = 0;
    for (let i = 0; i < n; i++) if (x[i] === x[i]) c += 1;
    for (let i = 0; i < n; i++) if (x[i] === x[i]) s += x[i];
    let sd = 0;
    if (c >= 2) {
      const m = s / c;
      let ss = 0;
      for (let i = 0; i < n; i++) if (x[i] === x[i]) ss += (x[i] - m) * (x[i] - m);
      sd = Math.sqrt(ss / (c - 1));
    }
    denomBatch = sd + eps;
  }
  const lens = estimator === 'opo' ? lengths : null;
  let zero = 0;
  for (let g = 0, b = 0; b < n; g++, b += G) {
    const e = b + G;
    // four interleaved accumulators combined as (a0 + a1) + (a2 + a3), as the kernel's group_stat
    // (a missing reward adds 0 there too)
    let c = 0, a0 = 0, a1 = 0, a2 = 0, a3 = 0, mn = Infinity, mx = -Infinity, best = -1, sl = 0, slx = 0;
    let i = b;
    for (; i + 4 <= e; i += 4) {
      const v0 = x[i], v1 = x[i + 1], v2 = x[i + 2], v3 = x[i + 3];
      if (v0 === v0) { c++; a0 += v0; if (v0 < mn) mn = v0; if (v0 > mx) mx = v0; }
      if (v1 === v1) { c++; a1 += v1; if (v1 < mn) mn = v1; if (v1 > mx) mx = v1; }
      if (v2 === v2) { c++; a2 += v2; if (v2 < mn) mn = v2; if (v2 > mx) mx = v2; }
      if (v3 === v3) { c++; a3 += v3; if (v3 < mn) mn = v3; if (v3 > mx) mx = v3; }
    }
    if (i < e) { const v = x[i]; if (v === v) { c++; a0 += v; if (v < mn) mn = v; if (v > mx) mx = v; } }
    if (i + 1 < e) { const v = x[i + 1]; if (v === v) { c++; a1 += v; if (v < mn) mn = v; if (v > mx) mx = v; } }
    if (i + 2 < e) { const v = x[i + 2]; if (v === v) { c++; a2 += v; if (v < mn) mn = v; if (v > mx) mx = v; } }
    if (lens) {
      for (let k = b; k < e; k++) {
        const v = x[k];
        if (v !== v) continue;
        sl += lens[k];
        slx += lens[k] * v;
      }
    }
    const sum = a0 + a1 + (a2 + a3);
    let mean = NaN, base = NaN, sc = NaN, second = -Infinity;
    if (c > 0) {
      if (mn === mx) mean = mn;
      else {
        mean = sum / c;
        let q0 = 0, q1 = 0, q2 = 0, q3 = 0, k = b;
        for (; k + 4 <= e; k += 4) {
          const d0 = x[k] - mean, d1 = x[k + 1] - mean, d2 = x[k + 2] - mean, d3 = x[k + 3] - mean;
          if (d0 === d0) q0 += d0 * d0;
          if (d1 === d1) q1 += d1 * d1;
          if (d2 === d2) q2 += d2 * d2;
          if (d3 === d3) q3 += d3 * d3;
        }
        if (k < e) { const d = x[k] - mean; if (d === d) q0 += d * d; }
        if (k + 1 < e) { const d = x[k + 1] - mean; if (d === d) q1 += d * d; }
        if (k + 2 < e) { const d = x[k + 2] - mean; if (d === d) q2 += d * d; }
        var ss = q0 + q1 + (q2 + q3);
      }
      if (c >= 2) {
        const equal = mn === mx;
        if (equal) zero++;
        sc = equal ? 0 : Math.sqrt(ss! / (c - 1));
        base = lens && !equal && sl > 0 ? slx / sl : mean;
        if (passk) {
          for (let i = b; i < e && best < 0; i++) if (x[i] === mx) best = i;
          for (let i = b; i < e; i++) {
            const v = x[i];
            if (i === best || v !== v) continue;
            if (v > second) second = v;
          }
        }
      } else {
        base = 0;
        sc = 1;
      }
    }
    gmean[g] = base;
    gstd[g] = sc;
    let mul = 1;
    if (stdScaled) mul = 1 / (scaling === 'group' ? sc + eps : scaling === 'batch' ? denomBatch : 1);
    else if (rloo && c >= 2) {
      mul = c / (c - 1);
      base = mean;
    }
    if (passk) {
      for (let i = b; i < e; i++) adv[i] = c >= 2 && i === best ? (mx - second) * mul : 0;
      continue;
    }
    for (let i = b; i < e; i++) {
      const v = x[i];
      adv[i] = v === v ? (v - base) * mul : 0;
    }
  }
  return zero;
}
