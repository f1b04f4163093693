// npm run bench [-- family ...] [-- --quick] [-- --readme]
// Measures the read bandwidth once, runs every bench/<family>.bench.ts (or those named), prints a
// table, writes bench/results/<family>.json and bench/results/latest.md, and with --readme replaces
// the benchmark table of docs/benchmarks.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { getNumThreads, measureReadBandwidth, simdLevel } from '../lib/index.js';
import { benchDir, formatRow, markdownTable, type BenchContext, type BenchSection } from './harness.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const readme = args.includes('--readme');
const only = args.filter((a) => !a.startsWith('--'));

const files = fs
  .readdirSync(benchDir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.includes(f.replace('.bench.ts', '')))
  .sort((a, b) => (a === 'logprobs.bench.ts' ? -1 : b === 'logprobs.bench.ts' ? 1 : a.localeCompare(b)));

const ctx: BenchContext = {
  readBandwidthGBs: measureReadBandwidth(512 * 1024 * 1024, 7),
  threads: getNumThreads(),
  quick,
};
const machine = `${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores, ` +
  `${ctx.threads} kernel threads, SIMD ${simdLevel().active}, Node ${process.versions.node}`;
console.log(`${machine}\nstreaming-read bandwidth: ${ctx.readBandwidthGBs.toFixed(1)} GB/s\n`);

const sections: BenchSection[] = [];
for (const f of files) {
  const mod = (await import(pathToFileURL(path.join(benchDir, f)).href)) as {
    default: (ctx: BenchContext) => Promise<BenchSection>;
  };
  const section = await mod.default(ctx);
  sections.push(section);
  const rows = section.rows.map((r) => formatRow(r, ctx));
  console.log(`## ${section.family}\n${markdownTable(rows)}\n`);
  fs.mkdirSync(path.join(benchDir, 'results'), { recursive: true });
  fs.writeFileSync(
    path.join(benchDir, 'results', `${section.family}.json`),
    JSON.stringify({ date: new Date().toISOString(), machine, readBandwidthGBs: ctx.readBandwidthGBs, threads: ctx.threads, rows: section.rows }, null, 2) + '\n',
  );
}

const md =
  `Measured ${new Date().toISOString().slice(0, 10)} on ${machine}; streaming-read bandwidth ` +
  `${ctx.readBandwidthGBs.toFixed(1)} GB/s (native probe, same run).\n\n` +
  sections.map((s) => `#### ${s.family}\n\n${markdownTable(s.rows.map((r) => formatRow(r, ctx)))}`).join('\n\n') + '\n';
if (!quick && only.length === 0) fs.writeFileSync(path.join(benchDir, 'results', 'latest.md'), md);
if (readme) {
  const readmePath = path.join(benchDir, '..', 'docs', 'benchmarks.md');
  const text = fs.readFileSync(readmePath, 'utf8');
  const start = '<!-- bench:start -->', end = '<!-- bench:end -->';
  const a = text.indexOf(start), b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error('docs/benchmarks.md has no <!-- bench:start --> ... <!-- bench:end --> block');
  fs.writeFileSync(readmePath, text.slice(0, a + start.length) + '\n' + md + text.slice(b));
  console.log('docs/benchmarks.md benchmark table updated');
}
