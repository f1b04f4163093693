// Host-side mistakes give host-side TypeScript errors (issue 10, item 3): bad calls compiled with
// the TypeScript compiler API against the library's own types; each diagnostic names the host
// type and never the DeviceArray signature. tests/api-types.check.ts holds the type-level checks
// of the results (compiled by `npx tsc -p tsconfig.check.json`).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Diagnostics of each snippet (flattened message text), compiled in one program. */
function diagnose(snippets: readonly string[]): string[][] {
  const cfg = ts.getParsedCommandLineOfConfigFile(path.join(root, 'tsconfig.check.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  })!;
  const files = snippets.map((_, i) => path.join(root, 'tests', `__api_types_snippet_${i}.ts`));
  const prelude = [
    "import * as rk from '../lib/index.js';",
    'declare const lp: Float32Array, logits: Float32Array, ids: Int32Array, u8: Uint8Array, bools: boolean[], dev: rk.DeviceArray;',
    'const T = 2;',
  ].join('\n');
  const texts = new Map(files.map((f, i) => [f, `${prelude}\n${snippets[i]}\nexport {};\n`]));
  const host = ts.createCompilerHost(cfg.options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, lang, ...rest) => (texts.has(f) ? ts.createSourceFile(f, texts.get(f)!, lang) : getSourceFile(f, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (f) => texts.has(f) || fileExists(f);
  const program = ts.createProgram(files, { ...cfg.options, noEmit: true }, host);
  return files.map((f) => ts.getPreEmitDiagnostics(program, program.getSourceFile(f)).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')));
}

// [a bad host call, what its diagnostic must name]
const BAD: [string, RegExp][] = [
  ['rk.policyLoss(lp, lp, lp, bools, { seqLen: T });', /'boolean\[\]' is not assignable to parameter of type 'TokenMask \| null'/],
  ['rk.klPenalty(lp, lp, bools);', /'boolean\[\]' is not assignable to parameter of type 'TokenMask \| null \| undefined'/],
  ['rk.gae(lp, lp, bools, { seqLen: T });', /'boolean\[\]' is not assignable to parameter of type 'TokenMask \| null'/],
  ['rk.valueLoss(lp, lp, lp, bools, { seqLen: T });', /'boolean\[\]' is not assignable to parameter of type 'TokenMask \| null'/],
  ['rk.tokenWeightedDpoLoss(lp, lp, bools, null, { seqLen: T, refChosenLogps: lp, refRejectedLogps: lp, chosenTokenRewards: lp, rejectedTokenRewards: lp });', /'boolean\[\]' is not assignable to parameter of type 'TokenMask \| null'/],
  ['rk.vocabDivergence(logits, logits, bools, { vocab: 2 });', /'boolean\[\]' is not assignable to parameter of type 'Uint8Array/],
  ['rk.policyLoss(lp, lp, lp, null, { seqLen: T, epsilon: 0.2 });', /'epsilon' does not exist in type 'PolicyLossOptionsOf</],
  ['rk.tokenLogprobs(logits, ids, { vocab: 2, entropy: true });', /'entropy' does not exist in type 'TokenLogprobsOptions/],
  ['rk.tokenLogprobs(logits, [1, 2], { vocab: 2 });', /'number\[\]' is not assignable to parameter of type 'TokenIds'/],
  ['rk.tokenLogprobsBackward(logits, ids, [0.5], { vocab: 2 });', /'number\[\]' is not assignable to parameter of type 'Float32Array/],
  ['rk.vocabDivergence(logits, logits, null, { vocab: 2, gradient: true });', /'gradient' does not exist in type 'VocabDivergenceOptions/],
  ['rk.preferenceLoss(lp, lp, { loss: "ipo" });', /'loss' does not exist in type 'PreferenceLossOptions'/],
  ['rk.preferenceLoss(lp, new Float64Array(2));', /'Float64Array<ArrayBuffer>' is not assignable to parameter of type 'Float32Array/],
  ['rk.ktoLoss(lp, { desirable: bools, kl: 0 });', /'boolean\[\]' is missing the following properties from type 'Uint8Array/],
  ['rk.groupAdvantages(lp, { groupSize: 2, scale_rewards: "batch" });', /'scale_rewards' does not exist in type 'GroupAdvantagesOptions'/],
  ['rk.maskedWhiten(lp, u8, { shift_mean: true });', /'shift_mean' does not exist in type 'MaskedWhitenOptions'/],
  ['rk.discountedReturns(lp, bools, { seqLen: T });', /'boolean\[\]' is not assignable to parameter of type 'TokenMask \| null'/],
  ['rk.ensembleRewards(lp, { numModels: "2" });', /'string' is not assignable to type 'number'/],
  ['rk.geoMeanPolicyLoss(lp, lp, lp, bools, { seqLen: T });', /'boolean\[\]' is not assignable to parameter of type 'TokenMask \| null'/],
  ['void rk.policyLossAsync(lp, lp, lp, bools, { seqLen: T });', /'boolean\[\]' is not assignable to parameter of type 'TokenMask \| null'/],
  ['void rk.tokenLogprobsAsync(logits, ids, { vocab: 2, entropy: true });', /'entropy' does not exist in type 'TokenLogprobsOptions/],
];
// Calls that must compile (the device form picked by a DeviceArray; nulls; BigInt64Array ids).
const GOOD = [
  'rk.policyLoss(dev, dev, dev, null, { seqLen: T });',
  'rk.policyLoss(lp, lp, lp, u8, { seqLen: T });',
  'rk.klPenalty(lp, lp); rk.klPenalty(lp, lp, null, { estimator: "k1" }); rk.klPenalty(dev, dev, dev);',
  'rk.tokenLogprobs(logits, new BigInt64Array(2), { vocab: 2, returnEntropy: true }).entropy.fill(0);',
  'rk.vocabDivergence(dev, dev, null, { vocab: 2, returnGradient: true }).gradient.free();',
];

describe('TypeScript diagnostics of host calls', () => {
  const diags = diagnose([...BAD.map(([s]) => s), ...GOOD]);
  BAD.forEach(([snippet, want], i) => {
    it(snippet, () => {
      const text = diags[i].join('\n');
      expect(diags[i].length, text).toBe(1);
      expect(text).toMatch(want);
      expect(text).not.toMatch(/DeviceArray/);
      expect(text).not.toMatch(/No overload matches this call/);
    });
  });
  GOOD.forEach((snippet, j) => {
    it(`compiles: ${snippet}`, () => {
      expect(diags[BAD.length + j]).toEqual([]);
    });
  });
});
