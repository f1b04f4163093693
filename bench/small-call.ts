import { preferenceLoss, groupAdvantages } from '../dist/index.js';
const P = 8;
const c = new Float32Array(P).map((_, i) => -10 - i), r = new Float32Array(P).map((_, i) => -11 + i * 0.3);
const rc = c.map((x) => x + 0.1), rr = r.map((x) => x - 0.2);
const opts = { refChosenLogps: rc, refRejectedLogps: rr };
const n = 64;
const rew = new Float32Array(n).map((_, i) => Math.sin(i));
function t(name: string, f: () => unknown, N = 20000) {
  for (let i = 0; i < 20000; i++) f();
  let best = Infinity;
  for (let k = 0; k < 25; k++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) f();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / N / 1000);
  }
  console.log(name, best.toFixed(3), 'us (min of 25 batches)');
}
t('preferenceLoss P=8', () => preferenceLoss(c, r, opts));
t('groupAdvantages n=64', () => groupAdvantages(rew, { groupSize: 16 }));
