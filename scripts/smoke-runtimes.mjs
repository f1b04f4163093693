// Smoke test for JavaScript runtimes: imports the package and checks tokenLogprobs (with its backward),
// groupAdvantages, policyLoss, preferenceLoss and two Async forms against numbers computed here in
// float64 from the formulas. Plain JavaScript, no test runner, so that it runs as is under Node, Bun
// and Deno (`npm run smoke:runtimes` runs all three; .ci/run runs it in the consumer project too):
//
//   node scripts/smoke-runtimes.mjs [module]
//   bun scripts/smoke-runtimes.mjs [module]
//   deno run --allow-read --allow-env --allow-ffi scripts/smoke-runtimes.mjs [module]
//
// `module` is what to import, 'reward-kernels' by default (the package itself inside the repository,
// through its "exports"; the installed one in a consumer project). Exits 1 on the first mismatch.
const spec = globalThis.process?.argv?.[2] ?? 'reward-kernels';
const runtime =
  typeof globalThis.Bun !== 'undefined'
    ? `bun ${globalThis.Bun.version}`
    : typeof globalThis.Deno !== 'undefined'
      ? `deno ${globalThis.Deno.version.deno}`
      : `node ${process.versions.node}`;

const rk = await import(spec);
let checks = 0;

function close(name, got, want, tol = 2e-6) {
  const g = typeof got === 'number' ? [got] : Array.from(got);
  const w = typeof want === 'number' ? [want] : Array.from(want);
  if (g.length !== w.length) throw new Error(`${runtime}: ${name}: length ${g.length}, expected ${w.length}`);
  for (let i = 0; i < w.length; i++) {
    const err = Math.abs(g[i] - w[i]);
    if (!(err <= tol * Math.max(1, Math.abs(w[i])))) {
      throw new Error(`${runtime}: ${name}[${i}] = ${g[i]}, expected ${w[i]} (difference ${err})`);
    }
  }
  checks++;
}

// --- tokenLogprobs and its backward: 3 rows over V = 5, the last one ignored (-100) ---
const V = 5;
const logits = Float32Array.from([1, 2, 3, 4, 5, 0.5, -1, 0, 2, -Infinity, 3, 1, 4, 1, 5]);
const targets = Int32Array.from([4, 1, -100]);
const rows = targets.length;
const wantLp = [];
const wantH = [];
const probs = [];
for (let r = 0; r < rows; r++) {
  const x = Array.from(logits.subarray(r * V, (r + 1) * V));
  const m = Math.max(...x);
  const lse = m + Math.log(x.reduce((s, v) => s + Math.exp(v - m), 0));
  const p = x.map((v) => Math.exp(v - lse));
  probs.push(p);
  const ignored = targets[r] < 0;
  wantLp.push(ignored ? 0 : x[targets[r]] - lse);
  wantH.push(ignored ? 0 : -p.reduce((s, pv, j) => s + (pv > 0 ? pv * (x[j] - lse) : 0), 0));
}
const tl = rk.tokenLogprobs(logits, targets, { vocab: V, returnEntropy: true });
close('tokenLogprobs logprobs', tl.logprobs, wantLp);
close('tokenLogprobs entropy', tl.entropy, wantH);

// d/dlogits of sum_r g_r logp_r = g_r (onehot(target) - p), 0 on ignored rows; into an `out` buffer
const gradLp = Float32Array.from([0.5, -2, 7]);
const wantGrad = [];
for (let r = 0; r < rows; r++) {
  for (let j = 0; j < V; j++) wantGrad.push(targets[r] < 0 ? 0 : gradLp[r] * ((j === targets[r] ? 1 : 0) - probs[r][j]));
}
const gradLogits = new Float32Array(rows * V);
const back = rk.tokenLogprobsBackward(logits, targets, gradLp, { vocab: V, out: gradLogits });
if (back !== gradLogits) throw new Error(`${runtime}: tokenLogprobsBackward did not return its out buffer`);
close('tokenLogprobsBackward', gradLogits, wantGrad);

// --- groupAdvantages: TRL GRPO, (r - mean_g) / (std_g + 1e-4) with the unbiased std ---
const G = 4;
const rewards = Float32Array.from([1, 0, 0, 1, 0.5, 0.25, 1, 0]);
const wantAdv = [];
for (let g = 0; g < rewards.length / G; g++) {
  const r = Array.from(rewards.subarray(g * G, (g + 1) * G));
  const mean = r.reduce((s, v) => s + v, 0) / G;
  const std = Math.sqrt(r.reduce((s, v) => s + (v - mean) ** 2, 0) / (G - 1));
  for (const v of r) wantAdv.push((v - mean) / (std + 1e-4));
}
const ga = rk.groupAdvantages(rewards, { groupSize: G });
close('groupAdvantages', ga.advantages, wantAdv);

// --- policyLoss: PPO clip (0.2, 0.28), token-mean over the mask ---
const B = 3;
const T = 3;
const lp = Float32Array.from([-1.0, -0.5, -2.0, -0.3, -1.2, -0.7, -2.2, -0.1, -0.9]);
const oldLp = Float32Array.from([-1.1, -0.2, -2.0, -0.9, -1.0, -0.7, -2.0, -0.4, -3.0]);
const adv = Float32Array.from([1.5, -0.8, 0.4]);
const mask = Uint8Array.from([1, 1, 1, 1, 1, 0, 1, 1, 0]);
const [lo, hi] = [0.2, 0.28];
let lossSum = 0;
let count = 0;
const gradTok = new Array(B * T).fill(0);
for (let i = 0; i < B * T; i++) {
  if (!mask[i]) continue;
  const a = adv[Math.floor(i / T)];
  const r = Math.exp(lp[i] - oldLp[i]);
  const unclipped = -a * r;
  const clipped = -a * Math.min(Math.max(r, 1 - lo), 1 + hi);
  lossSum += Math.max(unclipped, clipped);
  gradTok[i] = unclipped >= clipped ? -a * r : 0;
  count++;
}
const wantPl = lossSum / count;
const wantPlGrad = gradTok.map((g) => g / count);
const plOptions = { seqLen: T, epsilonLow: lo, epsilonHigh: hi };
const pl = rk.policyLoss(lp, oldLp, adv, mask, plOptions);
close('policyLoss loss', pl.loss, wantPl);
close('policyLoss gradLogprobs', pl.gradLogprobs, wantPlGrad);

// --- preferenceLoss: DPO (sigmoid) with a reference model, beta 0.1 ---
const chosen = Float32Array.from([-42.1, -37.9, -12.5]);
const rejected = Float32Array.from([-45.3, -36.2, -13.0]);
const refChosen = Float32Array.from([-43.0, -38.4, -12.0]);
const refRejected = Float32Array.from([-44.8, -36.0, -14.5]);
const beta = 0.1;
const P = chosen.length;
const sig = (x) => 1 / (1 + Math.exp(-x));
let wantDpo = 0;
const wantGc = [];
for (let i = 0; i < P; i++) {
  const x = beta * (chosen[i] - refChosen[i] - (rejected[i] - refRejected[i]));
  wantDpo += -Math.log(sig(x)) / P;
  wantGc.push((-(1 - sig(x)) * beta) / P);
}
const dpo = rk.preferenceLoss(chosen, rejected, { refChosenLogps: refChosen, refRejectedLogps: refRejected, beta });
close('preferenceLoss loss', dpo.loss, wantDpo);
close('preferenceLoss gradChosen', dpo.gradChosen, wantGc);
close('preferenceLoss gradRejected', dpo.gradRejected, wantGc.map((g) => -g));

// --- Async forms (native async work off the JavaScript thread): the same numbers ---
const [tlA, plA] = await Promise.all([
  rk.tokenLogprobsAsync(logits, targets, { vocab: V, returnEntropy: true }),
  rk.policyLossAsync(lp, oldLp, adv, mask, plOptions),
]);
close('tokenLogprobsAsync logprobs', tlA.logprobs, wantLp);
close('tokenLogprobsAsync entropy', tlA.entropy, wantH);
close('policyLossAsync loss', plA.loss, wantPl);
close('policyLossAsync gradLogprobs', plA.gradLogprobs, wantPlGrad);

// --- bad input is a TypeError naming the argument, before native code runs ---
try {
  rk.tokenLogprobs(new Float64Array(5), targets, { vocab: V });
  throw new Error(`${runtime}: a Float64Array of logits was accepted`);
} catch (err) {
  if (!(err instanceof TypeError) || !String(err.message).includes('logits')) throw err;
  checks++;
}

console.log(`smoke: ${runtime}: ${checks} checks passed (${spec}, SIMD ${rk.simdLevel().active}, ${rk.getNumThreads()} threads)`);
