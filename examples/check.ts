// npm run examples:check: runs every example with few steps and exits non-zero unless
//  - GRPO's mean reward rises by at least 0.3 within 60 steps (step 1 vs the mean of steps 56-60),
//  - DPO's held-out preference accuracy reaches at least 0.65 within 60 steps,
//  - the onnxruntime example's log-probs and entropies match a float64 log-softmax (1e-5),
//  - the remote trainer's loss and dL/dlogp match a float64 evaluation of the formula (1e-5).

import { runDpo } from './dpo/dpo.js';
import { rewardRise, runGrpo } from './grpo/grpo.js';
import { runOnnx } from './onnx/onnx.js';
import { DEFAULT_BATCHES, handle, readBatches, reference } from './remote-trainer/trainer.js';

let failures = 0;
function check(name: string, ok: boolean, detail: string): void {
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}: ${detail}`);
  if (!ok) failures++;
}

const t0 = performance.now();

const grpo = runGrpo(60);
const rise = rewardRise(grpo.rewards);
check('grpo', rise.rise >= 0.3, `mean reward ${rise.first.toFixed(3)} -> ${rise.last.toFixed(3)} (+${rise.rise.toFixed(3)}, need +0.3) in 60 steps, ${grpo.seconds.toFixed(1)} s`);

const dpo = runDpo(60);
const acc = dpo.accuracy[dpo.accuracy.length - 1]!.value;
check('dpo', acc >= 0.65, `held-out accuracy ${dpo.accuracy[0]!.value.toFixed(3)} -> ${acc.toFixed(3)} (need 0.65) in 60 steps, ${dpo.seconds.toFixed(1)} s`);

const onnx = await runOnnx();
check(
  'onnx',
  onnx.maxLogpDiff <= 1e-5 && onnx.maxEntropyDiff <= 1e-5,
  `max |logp - float64| ${onnx.maxLogpDiff.toExponential(2)}, max |H - float64| ${onnx.maxEntropyDiff.toExponential(2)} (need <= 1e-5)`,
);

let worstGrad = 0;
let worstLoss = 0;
let batches = 0;
for await (const msg of readBatches(DEFAULT_BATCHES)) {
  const reply = handle(msg);
  const ref = reference(msg);
  let num = 0;
  let den = 0;
  ref.grad.forEach((g, i) => {
    num = Math.max(num, Math.abs(reply.gradLogprobs[i]! - g));
    den = Math.max(den, Math.abs(g));
  });
  worstGrad = Math.max(worstGrad, num / den);
  worstLoss = Math.max(worstLoss, Math.abs(reply.loss - ref.loss) / Math.max(Math.abs(ref.loss), 1e-3));
  batches++;
}
check(
  'remote-trainer',
  batches === 3 && worstGrad <= 1e-5 && worstLoss <= 1e-5,
  `${batches} batches: max relative difference vs float64: dL/dlogp ${worstGrad.toExponential(2)}, loss ${worstLoss.toExponential(2)} (need <= 1e-5)`,
);

console.log(`examples:check ${failures === 0 ? 'passed' : `FAILED (${failures})`} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
process.exit(failures === 0 ? 0 : 1);
