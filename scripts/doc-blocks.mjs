#!/usr/bin/env node
// Type-checks every ```ts block of README.md and docs/*.md against the built types, as a user's
// project sees them, and runs the blocks marked runnable (`npm run docs:check`; a step of .ci/run).
//
// - Every ```ts block is a complete module: it imports what it uses from 'reward-kernels' and
//   declares its inputs (`declare const logits: Float32Array;` where the values do not matter).
//   A block fenced ```ts runnable is also compiled to JavaScript and run with Node; it must exit 0
//   within 2 minutes (keep it small). The README's quick start and GRPO step are runnable.
// - A block that is meant as a fragment can be completed by a hidden prelude: an HTML comment
//   directly above its fence, which Markdown renders as nothing,
//       <!-- ts-prelude
//       import { policyLoss } from 'reward-kernels';
//       declare const logprobs: Float32Array;
//       -->
//   whose lines are put before the block's own. There is no way to skip a block: one that is not
//   TypeScript is fenced as ```text.
// - The blocks are written into a temporary project whose node_modules/reward-kernels links to
//   this repository, so 'reward-kernels' resolves through package.json "exports" to dist/*.d.ts
//   and dist/*.js exactly as in a consumer (build dist/ first: `npm run build:ts`). The compiler
//   settings are the strict ones a user is likely to have (strict, NodeNext, no skipLibCheck, so
//   the shipped .d.ts files are checked too).
// Errors are reported as the Markdown file, line and column of the source. Exit 1 on any error.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUN_TIMEOUT_MS = 120_000;
const MARKERS = new Set(['runnable']);

const mdFiles = [
  'README.md',
  ...fs
    .readdirSync(path.join(root, 'docs'), { recursive: true })
    .map((f) => String(f).split(path.sep).join('/'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];

/** @typedef {{ file: string, line: number, code: string[], prelude: string[], runnable: boolean, name: string }} Block */
/** @type {Block[]} */
const blocks = [];
const problems = [];
for (const file of mdFiles) {
  const lines = fs.readFileSync(path.join(root, file), 'utf8').split('\n');
  // CommonMark fences: 3 or more backticks, an info string without backticks (else the line is
  // inline code), closed by a line of at least as many backticks.
  const closing = (from, ticks) => lines.findIndex((l, j) => j > from && new RegExp(`^\\s*\`{${ticks},}\\s*$`).test(l));
  for (let i = 0; i < lines.length; i++) {
    const fence = /^\s*(`{3,})([^`]*)$/.exec(lines[i]);
    if (!fence) continue;
    const open = /^\s*(ts|typescript)\b(.*)$/.exec(fence[2]);
    if (!open) {
      // a block of another language: skip it, so that a ```ts line inside it is not taken for a fence
      const close = closing(i, fence[1].length);
      if (close > i) i = close;
      else break;
      continue;
    }
    const words = open[2].trim().split(/\s+/).filter(Boolean);
    for (const w of words) {
      if (!MARKERS.has(w)) problems.push(`${file}:${i + 1}: unknown marker '${w}' after \`\`\`ts (known: ${[...MARKERS].join(', ')})`);
    }
    const close = closing(i, fence[1].length);
    if (close < 0) {
      problems.push(`${file}:${i + 1}: the \`\`\`ts block is never closed`);
      break;
    }
    // a hidden prelude: <!-- ts-prelude ... --> ending on the line just above the fence
    let prelude = [];
    if (i > 0 && /^\s*-->\s*$/.test(lines[i - 1])) {
      const start = lines.slice(0, i - 1).findLastIndex((l) => /^\s*<!--/.test(l));
      if (start >= 0 && /^\s*<!--\s*ts-prelude\s*$/.test(lines[start])) prelude = lines.slice(start + 1, i - 1);
    }
    blocks.push({
      file,
      line: i + 2, // the Markdown line of the block's first line of code
      code: lines.slice(i + 1, close),
      prelude,
      runnable: words.includes('runnable'),
      name: `b${String(blocks.length + 1).padStart(3, '0')}`,
    });
    i = close;
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rk-doc-blocks-'));
try {
  fs.mkdirSync(path.join(tmp, 'src'));
  fs.mkdirSync(path.join(tmp, 'node_modules'));
  fs.symlinkSync(root, path.join(tmp, 'node_modules', 'reward-kernels'), 'dir');
  // the optional peer the tfjs adapter's examples import (a devDependency here)
  fs.symlinkSync(path.join(root, 'node_modules', '@tensorflow'), path.join(tmp, 'node_modules', '@tensorflow'), 'dir');
  fs.writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name: 'doc-blocks', private: true, type: 'module' }));
  fs.writeFileSync(
    path.join(tmp, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2023', 'DOM'],
          types: ['node'],
          typeRoots: [path.join(root, 'node_modules', '@types')],
          strict: true,
          skipLibCheck: false,
          rootDir: 'src',
          outDir: 'out',
          pretty: false,
        },
        include: ['src/*.ts'],
      },
      null,
      2,
    ),
  );
  for (const b of blocks) {
    // `export {}` makes every block a module of its own (no clashes between blocks' names)
    fs.writeFileSync(path.join(tmp, 'src', `${b.name}.ts`), [...b.prelude, ...b.code, 'export {};', ''].join('\n'));
  }

  const byName = new Map(blocks.map((b) => [b.name, b]));
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(tmp, 'tsconfig.json')], { cwd: tmp, encoding: 'utf8' });
  const compileSeconds = ((Date.now() - t0) / 1000).toFixed(1);
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  let typeErrors = 0;
  let thirdParty = 0;
  for (const raw of out.split('\n')) {
    if (!raw.trim()) continue;
    // TensorFlow.js's own .d.ts files do not pass strict, DOM-less checks (tfjs-layers' index
    // signatures); they are not ours to fix, so their errors are counted but not failed on.
    if (/node_modules\/@tensorflow\/[^(]*\.d\.ts\(\d+,\d+\): error/.test(raw)) {
      thirdParty++;
      continue;
    }
    const m = /^src\/(b\d+)\.ts\((\d+),(\d+)\): (.*)$/.exec(raw);
    const b = m && byName.get(m[1]);
    if (b) {
      const n = Number(m[2]) - 1 - b.prelude.length;
      const where = n >= 0 && n < b.code.length ? `${b.file}:${b.line + n}:${m[3]}` : `${b.file}:${b.line} (prelude line ${Number(m[2])})`;
      problems.push(`${where}: ${m[4]}`);
      typeErrors++;
    } else if (/error TS\d+/.test(raw) || /^\S.*\(\d+,\d+\): /.test(raw)) {
      problems.push(raw.replace(tmp, '<doc-blocks>')); // an error outside the blocks (the shipped .d.ts)
      typeErrors++;
    } else if (!/^\s/.test(raw)) {
      problems.push(raw.replace(tmp, '<doc-blocks>'));
    }
  }
  if (r.status !== 0 && typeErrors === 0 && thirdParty === 0) problems.push(`tsc exited ${r.status} with no error we could place:\n${out}`);
  console.log(`doc-blocks: ${blocks.length} \`\`\`ts blocks in ${mdFiles.length} files type-checked against dist/*.d.ts in ${compileSeconds} s, ${typeErrors} error(s)${thirdParty ? ` (and ${thirdParty} in @tensorflow's own .d.ts, ignored)` : ''}`);

  let ran = 0;
  if (typeErrors === 0) {
    for (const b of blocks.filter((x) => x.runnable)) {
      const js = path.join(tmp, 'out', `${b.name}.js`);
      const t1 = Date.now();
      const run = spawnSync(process.execPath, [js], { cwd: tmp, encoding: 'utf8', timeout: RUN_TIMEOUT_MS });
      const secs = ((Date.now() - t1) / 1000).toFixed(1);
      const output = `${run.stdout ?? ''}${run.stderr ?? ''}`.trimEnd();
      if (run.status === 0) {
        ran++;
        const shown = output.split('\n').slice(-3).map((l) => `    ${l.length > 160 ? `${l.slice(0, 157)}...` : l}`);
        console.log(`doc-blocks: ran ${b.file}:${b.line - 1} in ${secs} s${shown.length && output ? `\n${shown.join('\n')}` : ''}`);
      } else {
        const why = run.error ? String(run.error.message) : `exit ${run.status}${run.signal ? ` (${run.signal})` : ''}`;
        problems.push(`${b.file}:${b.line - 1}: the runnable block failed (${why}):\n${output.split('\n').slice(-15).join('\n')}`);
      }
    }
  }
  const runnable = blocks.filter((x) => x.runnable).length;
  if (runnable === 0) problems.push('no block is marked runnable (```ts runnable)');
  for (const p of problems) console.error(`doc-blocks: ${p}`);
  console.log(`doc-blocks: ${blocks.length} blocks, ${runnable} runnable, ${ran} ran, ${problems.length} problem(s)`);
  process.exitCode = problems.length ? 1 : 0;
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
